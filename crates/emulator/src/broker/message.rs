//! Application messages as the broker routes, queues, retains and stores them.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use iotcore_mqtt::packet::Publish;
use iotcore_mqtt::properties::BoxedProperties;
use iotcore_mqtt::topic::TopicName;
use iotcore_mqtt::{Properties, QoS};

/// AWS clamps MQTT 5 Message Expiry Intervals to 1 s … 7 days (§1.7).
const MAX_MESSAGE_EXPIRY: u32 = 604_800;

/// A message accepted from a publisher (or a will), shared by every delivery of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Message {
    /// Topic name, shared with every PUBLISH made from the message.
    pub(crate) topic: TopicName,
    /// Payload.
    pub(crate) payload: Bytes,
    /// QoS it was published with (0 or 1).
    pub(crate) qos: QoS,
    /// RETAIN flag as published.
    pub(crate) retain: bool,
    /// The MQTT 5 properties forwarded to subscribers: payload format, content
    /// type, response topic, correlation data, user properties. Boxed only when
    /// there are some (most messages have none): a message is shared by every
    /// delivery, and `Properties` is large.
    properties: BoxedProperties,
    /// When an MQTT 5 Message Expiry Interval runs out.
    pub(crate) expires_at: Option<SystemTime>,
}

impl Message {
    /// The message a client's PUBLISH carries (topic alias already resolved).
    pub(crate) fn from_publish(publish: &Publish, now: SystemTime) -> Message {
        Message::new(
            publish.topic.clone(),
            publish.payload.clone(),
            publish.qos,
            publish.retain,
            &publish.properties,
            now,
        )
    }

    /// A message from its parts; only the forwardable MQTT 5 properties are kept.
    pub(crate) fn new(
        topic: TopicName,
        payload: Bytes,
        qos: QoS,
        retain: bool,
        properties: &Properties,
        now: SystemTime,
    ) -> Message {
        let expires_at = properties
            .message_expiry_interval
            .map(|secs| now + Duration::from_secs(secs.clamp(1, MAX_MESSAGE_EXPIRY).into()));
        let forwarded = Properties {
            payload_format_indicator: properties.payload_format_indicator,
            content_type: properties.content_type.clone(),
            response_topic: properties.response_topic.clone(),
            correlation_data: properties.correlation_data.clone(),
            user_properties: properties.user_properties.clone(),
            ..Properties::default()
        };
        Message {
            topic,
            payload,
            qos,
            retain,
            properties: forwarded.into(),
            expires_at,
        }
    }

    /// A message as the store kept it: `properties` are the forwarded ones.
    pub(crate) fn stored(
        topic: TopicName,
        payload: Bytes,
        qos: QoS,
        retain: bool,
        properties: Properties,
        expires_at: Option<SystemTime>,
    ) -> Message {
        Message {
            topic,
            payload,
            qos,
            retain,
            properties: properties.into(),
            expires_at,
        }
    }

    /// The MQTT 5 properties forwarded to subscribers (see [`Message::new`]).
    pub(crate) fn properties(&self) -> &Properties {
        &self.properties
    }

    /// True once its Message Expiry Interval has run out.
    pub(crate) fn is_expired(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// The PUBLISH to send for this message at `qos` with `retain`, or `None` if
    /// it has expired. The remaining expiry is sent in whole seconds, rounded down
    /// (AWS sends ≤ 999 ms as 0). The packet id is left for the session to assign.
    pub(crate) fn to_publish(&self, qos: QoS, retain: bool, now: SystemTime) -> Option<Publish> {
        let mut properties = self.properties.clone();
        if let Some(at) = self.expires_at {
            let remaining = at.duration_since(now).ok().filter(|d| !d.is_zero())?;
            properties.message_expiry_interval =
                Some(u32::try_from(remaining.as_secs()).unwrap_or(u32::MAX));
        }
        Some(Publish {
            dup: false,
            qos,
            retain,
            topic: self.topic.clone(),
            packet_id: None,
            payload: self.payload.clone(),
            properties,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(expiry: Option<u32>) -> Properties {
        Properties {
            message_expiry_interval: expiry,
            topic_alias: Some(3),
            content_type: Some("text/plain".into()),
            user_properties: vec![("k".into(), "v".into())],
            ..Properties::default()
        }
    }

    #[test]
    fn only_forwardable_properties_are_kept() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let m = Message::new(
            "t".into(),
            Bytes::from_static(b"x"),
            QoS::AtLeastOnce,
            false,
            &props(None),
            now,
        );
        assert_eq!(m.properties().topic_alias, None);
        assert_eq!(m.properties().content_type.as_deref(), Some("text/plain"));
        assert_eq!(
            m.properties().user_properties,
            [("k".to_string(), "v".to_string())]
        );
        assert_eq!(m.expires_at, None);
        let p = m.to_publish(QoS::AtMostOnce, true, now).unwrap();
        assert_eq!(
            (p.qos, p.retain, p.packet_id),
            (QoS::AtMostOnce, true, None)
        );
        assert_eq!(p.properties.message_expiry_interval, None);

        // Only properties that are not forwarded: none kept.
        let unforwarded = Properties {
            topic_alias: Some(3),
            message_expiry_interval: Some(60),
            ..Properties::default()
        };
        let m = Message::new(
            "t".into(),
            Bytes::new(),
            QoS::AtLeastOnce,
            false,
            &unforwarded,
            now,
        );
        assert_eq!(m.properties(), &Properties::default());
        assert!(m.expires_at.is_some());
    }

    #[test]
    fn every_delivery_shares_the_topic_of_the_message_and_of_its_publish() {
        // Fan-out makes one PUBLISH per subscriber from one message: none of
        // them copies the topic (a `String` anywhere on the way would).
        let now = SystemTime::UNIX_EPOCH;
        let received = Publish::new("dt/dev1/temp", "21.5", QoS::AtLeastOnce);
        let message = Message::from_publish(&received, now);
        assert_eq!(message.topic, "dt/dev1/temp");
        assert_eq!(message.topic.as_ptr(), received.topic.as_ptr());
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
            let delivery = message.to_publish(qos, false, now).unwrap();
            assert_eq!(delivery.topic, "dt/dev1/temp");
            assert_eq!(delivery.topic.as_ptr(), message.topic.as_ptr());
        }
    }

    #[test]
    fn expiry_is_clamped_and_counts_down() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let zero = Message::new(
            "t".into(),
            Bytes::new(),
            QoS::AtMostOnce,
            false,
            &props(Some(0)),
            now,
        );
        assert_eq!(zero.expires_at, Some(now + Duration::from_secs(1)));
        let long = Message::new(
            "t".into(),
            Bytes::new(),
            QoS::AtMostOnce,
            false,
            &props(Some(u32::MAX)),
            now,
        );
        assert_eq!(long.expires_at, Some(now + Duration::from_secs(604_800)));

        let m = Message::new(
            "t".into(),
            Bytes::new(),
            QoS::AtMostOnce,
            false,
            &props(Some(10)),
            now,
        );
        let later = now + Duration::from_millis(3_500);
        assert_eq!(
            m.to_publish(QoS::AtMostOnce, false, later)
                .unwrap()
                .properties
                .message_expiry_interval,
            Some(6)
        );
        let last_ms = now + Duration::from_millis(9_999);
        assert_eq!(
            m.to_publish(QoS::AtMostOnce, false, last_ms)
                .unwrap()
                .properties
                .message_expiry_interval,
            Some(0)
        );
        assert!(!m.is_expired(last_ms));
        let end = now + Duration::from_secs(10);
        assert!(m.is_expired(end));
        assert_eq!(m.to_publish(QoS::AtMostOnce, false, end), None);
    }
}
