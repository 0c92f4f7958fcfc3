//! What the server session reports to the broker.

use crate::packet::{Connect, Publish, Subscribe, Unsubscribe};
use crate::properties::BoxedProperties;
use crate::topic::TopicName;
use crate::{EncodeError, ReasonCode};

/// Something that happened on a [`ServerSession`](super::ServerSession),
/// returned by [`poll_event`](super::ServerSession::poll_event) in order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The client sent CONNECT. Answer with [`accept`](super::ServerSession::accept)
    /// or [`reject`](super::ServerSession::reject); packets the client sends
    /// meanwhile are held until then. (Boxed: CONNECT is by far the largest packet.)
    Connect(Box<Connect>),
    /// An application message from the client. For QoS 1, answer with
    /// [`puback`](super::ServerSession::puback). An MQTT 5 topic alias has been
    /// resolved (the topic is set and the Topic Alias property removed).
    Publish(Publish),
    /// The client subscribes; answer with [`suback`](super::ServerSession::suback).
    Subscribe(Subscribe),
    /// The client unsubscribes; answer with [`unsuback`](super::ServerSession::unsuback).
    Unsubscribe(Unsubscribe),
    /// The client acknowledged a QoS 1 delivery; its packet identifier is free.
    Delivered {
        /// The identifier [`send_publish`](super::ServerSession::send_publish) returned.
        packet_id: u16,
        /// MQTT 5 PUBACK reason (a client may refuse a message); success on 3.1.1.
        reason: ReasonCode,
    },
    /// A delivery was dropped without being sent.
    PublishDropped {
        /// Its topic.
        topic: TopicName,
        /// Why.
        reason: DropReason,
    },
    /// An MQTT 3.1.1 SUBSCRIBE asking for QoS 2 was ignored without SUBACK,
    /// as AWS IoT Core does ([`Qos2Subscribe::Refuse`](super::Qos2Subscribe::Refuse)).
    SubscribeIgnored(Subscribe),
    /// The client sent DISCONNECT; the session is closed.
    Disconnected {
        /// MQTT 5 reason; success on 3.1.1.
        reason: ReasonCode,
        /// Whether the will must still be published: only for MQTT 5 reason
        /// 0x04 (disconnect with will message); a normal DISCONNECT discards it.
        publish_will: bool,
        /// MQTT 5 DISCONNECT properties (a new Session Expiry Interval…).
        properties: BoxedProperties,
    },
    /// Nothing was received for 1.5 × the keep-alive: the session is closed
    /// (MQTT 5: DISCONNECT 0x8D queued). Publish the will.
    KeepAliveTimeout,
    /// No CONNECT arrived within the connect timeout; the session is closed.
    ConnectTimeout,
}

/// Why a delivery was dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// Larger than the client's MQTT 5 Maximum Packet Size.
    TooLarge {
        /// Encoded size in bytes.
        size: usize,
        /// The client's limit.
        max: usize,
    },
    /// All 65,535 packet identifiers are held by unacknowledged deliveries.
    PacketIdsExhausted,
    /// The message cannot be encoded (a topic or property longer than 65,535 bytes…).
    Encode(EncodeError),
}
