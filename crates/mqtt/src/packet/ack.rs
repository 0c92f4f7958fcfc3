//! PUBACK, PUBREC, PUBREL and PUBCOMP share one body layout.

use super::PacketType;
use super::short_form::{self, Omit};
use crate::codec::{Reader, Sink};
use crate::error::{DecodeError, EncodeError};
use crate::properties::BoxedProperties;
use crate::{ProtocolVersion, ReasonCode};

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
    pub properties: BoxedProperties,
}

impl Ack {
    /// A successful acknowledgement of `packet_id`, without properties.
    pub fn new(packet_id: u16) -> Ack {
        Ack::with_reason(packet_id, ReasonCode::SUCCESS)
    }

    /// An acknowledgement of `packet_id` with an MQTT 5 reason code.
    pub fn with_reason(packet_id: u16, reason: ReasonCode) -> Ack {
        Ack {
            packet_id,
            reason,
            properties: Default::default(),
        }
    }

    pub(crate) fn decode_body(mut r: Reader, version: ProtocolVersion) -> Result<Ack, DecodeError> {
        let packet_id = r.packet_id()?;
        let (reason, properties) = match version {
            ProtocolVersion::V311 => (ReasonCode::SUCCESS, Default::default()),
            ProtocolVersion::V5 => short_form::decode(&mut r)?,
        };
        r.finish()?;
        Ok(Ack {
            packet_id,
            reason,
            properties,
        })
    }

    pub(crate) fn encode_body<S: Sink>(
        &self,
        packet_type: PacketType,
        version: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        if self.packet_id == 0 {
            return Err(EncodeError::ZeroPacketId);
        }
        s.put_u16(self.packet_id);
        match version {
            ProtocolVersion::V311 => Ok(()),
            ProtocolVersion::V5 => short_form::encode(
                self.reason,
                &self.properties,
                packet_type,
                Omit::EmptyProperties,
                s,
            ),
        }
    }
}
