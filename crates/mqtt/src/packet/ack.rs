//! PUBACK, PUBREC, PUBREL and PUBCOMP share one body layout.

use crate::{Properties, ReasonCode};

/// The body of PUBACK, PUBREC, PUBREL and PUBCOMP.
///
/// In MQTT 3.1.1 only `packet_id` is on the wire; the reason decodes as
/// [`ReasonCode::SUCCESS`]. In MQTT 5 a success reason with no properties is
/// encoded in the 2-byte short form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    /// The acknowledged packet identifier.
    pub packet_id: u16,
    /// MQTT 5 reason code.
    pub reason: ReasonCode,
    /// MQTT 5 properties.
    pub properties: Properties,
}
