//! Messages the device receives.

use bytes::Bytes;
use iotcore_mqtt::packet::Publish;
use iotcore_mqtt::{Properties, QoS};

/// An application message received from the broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    publish: Publish,
}

impl Message {
    pub(crate) fn new(publish: Publish) -> Message {
        Message { publish }
    }

    /// The topic it was published to.
    pub fn topic(&self) -> &str {
        &self.publish.topic
    }

    /// The payload (cheap to clone).
    pub fn payload(&self) -> &Bytes {
        &self.publish.payload
    }

    /// The payload as UTF-8 text, if it is valid UTF-8.
    pub fn payload_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.publish.payload).ok()
    }

    /// The QoS it was delivered with.
    pub fn qos(&self) -> QoS {
        self.publish.qos
    }

    /// True for a retained message delivered because of a subscribe.
    pub fn retain(&self) -> bool {
        self.publish.retain
    }

    /// True when the broker flagged it as a possible redelivery.
    pub fn duplicate(&self) -> bool {
        self.publish.dup
    }

    /// MQTT 5 properties (response topic, correlation data, user properties…);
    /// empty on MQTT 3.1.1.
    pub fn properties(&self) -> &Properties {
        &self.publish.properties
    }

    /// Takes the payload out.
    pub fn into_payload(self) -> Bytes {
        self.publish.payload
    }
}

/// A cloud-to-device message, with the part of its topic after the
/// device's cloud-to-device prefix (`device/{thing}/messages/devicebound/`
/// by default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudToDeviceMessage {
    sub_topic: String,
    message: Message,
}

impl CloudToDeviceMessage {
    pub(crate) fn new(sub_topic: String, message: Message) -> Self {
        CloudToDeviceMessage { sub_topic, message }
    }

    /// The topic after the prefix, e.g. `reboot` for
    /// `device/my-thing/messages/devicebound/reboot`.
    pub fn sub_topic(&self) -> &str {
        &self.sub_topic
    }

    /// The whole message.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The payload.
    pub fn payload(&self) -> &Bytes {
        self.message.payload()
    }

    /// Takes the message out.
    pub fn into_message(self) -> Message {
        self.message
    }
}
