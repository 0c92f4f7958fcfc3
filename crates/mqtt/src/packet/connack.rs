//! CONNACK: the server's answer to CONNECT.

use crate::{Properties, ReasonCode};

/// A CONNACK packet.
///
/// `reason` uses MQTT 5 reason codes for both versions: an MQTT 3.1.1 return
/// code is mapped to its MQTT 5 equivalent on decode (1 → 0x84, 2 → 0x85,
/// 3 → 0x88, 4 → 0x86, 5 → 0x87) and back on encode; a code without a 3.1.1
/// equivalent is sent as 3 (server unavailable).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnAck {
    /// Whether the server resumed a stored session.
    pub session_present: bool,
    /// Success, or why the connection was refused.
    pub reason: ReasonCode,
    /// MQTT 5 CONNACK properties (empty for 3.1.1).
    pub properties: Properties,
}
