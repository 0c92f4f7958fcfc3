//! AUTH: MQTT 5 enhanced authentication exchange.

use crate::{Properties, ReasonCode};

/// An AUTH packet (MQTT 5 only).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Auth {
    /// 0x00 success, 0x18 continue authentication, 0x19 re-authenticate.
    pub reason: ReasonCode,
    /// Authentication method and data.
    pub properties: Properties,
}
