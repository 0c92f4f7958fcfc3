//! UNSUBACK: the server's answer to UNSUBSCRIBE.

use super::{PacketType, reason_list};
use crate::codec::{Reader, Sink};
use crate::error::{DecodeError, EncodeError};
use crate::properties::BoxedProperties;
use crate::properties::Section;
use crate::{Properties, ProtocolVersion, ReasonCode};

/// An UNSUBACK packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsubAck {
    /// The acknowledged packet identifier.
    pub packet_id: u16,
    /// MQTT 5: one code per filter; always empty for MQTT 3.1.1.
    pub reasons: Vec<ReasonCode>,
    /// MQTT 5 properties.
    pub properties: BoxedProperties,
}

impl UnsubAck {
    /// An UNSUBACK without properties; `reasons` is ignored for MQTT 3.1.1.
    pub fn new(packet_id: u16, reasons: Vec<ReasonCode>) -> UnsubAck {
        UnsubAck {
            packet_id,
            reasons,
            properties: Default::default(),
        }
    }

    pub(crate) fn decode_body(
        mut r: Reader,
        version: ProtocolVersion,
    ) -> Result<UnsubAck, DecodeError> {
        let packet_id = r.packet_id()?;
        let (properties, reasons) = match version {
            ProtocolVersion::V311 => (Properties::default(), Vec::new()),
            ProtocolVersion::V5 => (
                Properties::decode(&mut r, Section::Packet(PacketType::UnsubAck))?,
                reason_list::decode(&mut r, |c| c.is_valid_for(PacketType::UnsubAck))?,
            ),
        };
        r.finish()?;
        Ok(UnsubAck {
            packet_id,
            reasons,
            properties: properties.into(),
        })
    }

    pub(crate) fn encode_body<S: Sink>(
        &self,
        version: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        if self.packet_id == 0 {
            return Err(EncodeError::ZeroPacketId);
        }
        s.put_u16(self.packet_id);
        match version {
            ProtocolVersion::V311 => Ok(()),
            ProtocolVersion::V5 => {
                self.properties
                    .encode(Section::Packet(PacketType::UnsubAck), s)?;
                reason_list::encode(&self.reasons, PacketType::UnsubAck, |c| c.0, s)
            }
        }
    }
}
