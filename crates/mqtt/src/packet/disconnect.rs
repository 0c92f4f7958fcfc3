//! DISCONNECT: an orderly end of the connection.

use crate::{Properties, ReasonCode};

/// A DISCONNECT packet (reason and properties are MQTT 5 only).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Disconnect {
    /// Why the connection ends; `SUCCESS` (0x00) is a normal disconnect.
    pub reason: ReasonCode,
    /// MQTT 5 properties (session expiry, reason string, server reference).
    pub properties: Properties,
}
