//! PUBLISH: an application message.

use bytes::Bytes;

use crate::{Properties, QoS};

/// A PUBLISH packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    /// Set on a redelivery of a QoS 1 or 2 message.
    pub dup: bool,
    /// Delivery QoS.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
    /// Topic name (may be empty in MQTT 5 when a topic alias is used).
    pub topic: String,
    /// Packet identifier: `Some` (non-zero) exactly when `qos` > 0.
    pub packet_id: Option<u16>,
    /// The payload, a zero-copy slice of the received buffer.
    pub payload: Bytes,
    /// MQTT 5 PUBLISH properties (empty for 3.1.1).
    pub properties: Properties,
}
