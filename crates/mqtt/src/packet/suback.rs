//! SUBACK: the server's answer to SUBSCRIBE.

use super::{PacketType, reason_list};
use crate::codec::{Reader, Sink};
use crate::error::{DecodeError, EncodeError};
use crate::properties::BoxedProperties;
use crate::properties::Section;
use crate::{Properties, ProtocolVersion, ReasonCode};

/// A SUBACK packet.
///
/// One reason code per requested filter: the granted QoS (0x00, 0x01, 0x02) or
/// a failure (0x80 and above). MQTT 3.1.1 knows only 0x00–0x02 and 0x80; other
/// failures are sent as 0x80 to a 3.1.1 client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubAck {
    /// The acknowledged packet identifier.
    pub packet_id: u16,
    /// One code per filter, in request order.
    pub reasons: Vec<ReasonCode>,
    /// MQTT 5 properties.
    pub properties: BoxedProperties,
}

impl SubAck {
    /// A SUBACK without properties.
    pub fn new(packet_id: u16, reasons: Vec<ReasonCode>) -> SubAck {
        SubAck {
            packet_id,
            reasons,
            properties: Default::default(),
        }
    }

    /// The four SUBACK return codes MQTT 3.1.1 knows.
    fn valid_v311(reason: ReasonCode) -> bool {
        matches!(reason.0, 0x00 | 0x01 | 0x02 | 0x80)
    }

    pub(crate) fn decode_body(
        mut r: Reader,
        version: ProtocolVersion,
    ) -> Result<SubAck, DecodeError> {
        let packet_id = r.packet_id()?;
        let (properties, reasons) = match version {
            ProtocolVersion::V311 => (
                Properties::default(),
                reason_list::decode(&mut r, SubAck::valid_v311)?,
            ),
            ProtocolVersion::V5 => (
                Properties::decode(&mut r, Section::Packet(PacketType::SubAck))?,
                reason_list::decode(&mut r, |c| c.is_valid_for(PacketType::SubAck))?,
            ),
        };
        Ok(SubAck {
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
            ProtocolVersion::V311 => {
                // Every failure is 0x80 ("Failure") in MQTT 3.1.1.
                let wire = |c: ReasonCode| if c.is_error() { 0x80 } else { c.0 };
                reason_list::encode(&self.reasons, PacketType::SubAck, wire, s)
            }
            ProtocolVersion::V5 => {
                self.properties
                    .encode(Section::Packet(PacketType::SubAck), s)?;
                reason_list::encode(&self.reasons, PacketType::SubAck, |c| c.0, s)
            }
        }
    }
}
