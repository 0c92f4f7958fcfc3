//! What the client session reports to its driver.

use crate::ReasonCode;
use crate::packet::Publish;
use crate::properties::BoxedProperties;

/// Something that happened on a [`ClientSession`](super::ClientSession),
/// returned by [`poll_event`](super::ClientSession::poll_event) in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The server accepted the connection. Unacknowledged publishes, pending
    /// requests and (when `session_present` is false) the subscriptions have
    /// been queued for sending again.
    Connected {
        /// Whether the server resumed a stored session.
        session_present: bool,
        /// MQTT 5 CONNACK properties (limits, assigned client id…).
        properties: BoxedProperties,
    },
    /// The server refused the connection (CONNACK with a failure code; MQTT
    /// 3.1.1 return codes are mapped to MQTT 5 codes). Close the transport.
    ConnectionRefused {
        /// Why.
        reason: ReasonCode,
        /// MQTT 5 CONNACK properties (reason string, server reference…).
        properties: BoxedProperties,
    },
    /// A QoS 1 publish was acknowledged; its packet identifier is free again.
    PublishAcked {
        /// The identifier returned by [`publish`](super::ClientSession::publish).
        packet_id: u16,
        /// MQTT 5 reason (0x00 success, 0x10 no matching subscribers, or a
        /// failure such as 0x87 not authorized); always success on 3.1.1.
        reason: ReasonCode,
        /// MQTT 5 PUBACK properties (reason string…).
        properties: BoxedProperties,
    },
    /// A queued QoS 1 publish could not be sent because it is larger than the
    /// Maximum Packet Size of the server it reconnected to; it is dropped and
    /// its packet identifier freed.
    PublishDropped {
        /// The identifier returned by [`publish`](super::ClientSession::publish).
        packet_id: u16,
        /// Encoded size in bytes.
        size: usize,
        /// The server's limit.
        max: usize,
    },
    /// An application message from the server. A QoS 1 message has already
    /// been acknowledged; an MQTT 5 topic alias has been resolved (the topic is
    /// set and the Topic Alias property removed).
    Message(Publish),
    /// The server answered a [`subscribe`](super::ClientSession::subscribe).
    Subscribed {
        /// The identifier returned by `subscribe`.
        packet_id: u16,
        /// One code per filter, in request order: granted QoS (0x00, 0x01) or a failure (≥ 0x80).
        reasons: Vec<ReasonCode>,
        /// MQTT 5 SUBACK properties.
        properties: BoxedProperties,
    },
    /// The server answered an [`unsubscribe`](super::ClientSession::unsubscribe).
    Unsubscribed {
        /// The identifier returned by `unsubscribe`.
        packet_id: u16,
        /// MQTT 5: one code per filter; empty on 3.1.1.
        reasons: Vec<ReasonCode>,
        /// MQTT 5 UNSUBACK properties.
        properties: BoxedProperties,
    },
    /// The server did not have our session (session present = 0): the session
    /// re-sent a SUBSCRIBE for these active subscriptions on its own.
    Resubscribing {
        /// Identifier of that SUBSCRIBE (not one the caller was given).
        packet_id: u16,
        /// The filters it carries.
        filters: Vec<String>,
    },
    /// The server answered a SUBSCRIBE announced by [`Event::Resubscribing`].
    /// A filter with a failure code is no longer an active subscription.
    Resubscribed {
        /// Identifier of that SUBSCRIBE.
        packet_id: u16,
        /// The filters it carried.
        filters: Vec<String>,
        /// One code per filter.
        reasons: Vec<ReasonCode>,
    },
    /// The server closed the connection with an MQTT 5 DISCONNECT. Close the
    /// transport; unacknowledged publishes and subscriptions are kept.
    ServerDisconnect {
        /// Why (0x8E session taken over, 0x8B shutting down…).
        reason: ReasonCode,
        /// DISCONNECT properties (reason string, server reference…).
        properties: BoxedProperties,
    },
    /// Nothing arrived from the server in time: no CONNACK within the
    /// keep-alive after CONNECT, or no packet within half the keep-alive after
    /// a PINGREQ. The link is presumed dead: close the transport and connect again.
    KeepAliveTimeout,
}
