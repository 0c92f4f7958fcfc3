//! UNSUBACK: the server's answer to UNSUBSCRIBE.

use crate::{Properties, ReasonCode};

/// An UNSUBACK packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsubAck {
    /// The acknowledged packet identifier.
    pub packet_id: u16,
    /// MQTT 5: one code per filter; always empty for MQTT 3.1.1.
    pub reasons: Vec<ReasonCode>,
    /// MQTT 5 properties.
    pub properties: Properties,
}
