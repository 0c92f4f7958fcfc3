//! UNSUBSCRIBE: a client drops topic filters.

use super::PacketType;
use crate::codec::{self, Reader, Sink};
use crate::error::{DecodeError, EncodeError};
use crate::properties::Section;
use crate::topic::validate_topic_filter;
use crate::{Properties, ProtocolVersion};

/// An UNSUBSCRIBE packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Packet identifier (non-zero).
    pub packet_id: u16,
    /// At least one topic filter.
    pub filters: Vec<String>,
    /// MQTT 5 properties.
    pub properties: Properties,
}

impl Unsubscribe {
    /// An UNSUBSCRIBE without properties.
    pub fn new(packet_id: u16, filters: Vec<String>) -> Unsubscribe {
        Unsubscribe {
            packet_id,
            filters,
            properties: Properties::default(),
        }
    }

    pub(crate) fn decode_body(
        mut r: Reader,
        version: ProtocolVersion,
    ) -> Result<Unsubscribe, DecodeError> {
        let packet_id = r.packet_id()?;
        let properties = match version {
            ProtocolVersion::V311 => Properties::default(),
            ProtocolVersion::V5 => {
                Properties::decode(&mut r, Section::Packet(PacketType::Unsubscribe))?
            }
        };
        let mut filters = Vec::new();
        while r.remaining() > 0 {
            let filter = r.string()?;
            validate_topic_filter(&filter).map_err(DecodeError::InvalidTopicFilter)?;
            filters.push(filter);
        }
        if filters.is_empty() {
            return Err(DecodeError::NoTopicFilters {
                packet_type: PacketType::Unsubscribe,
            });
        }
        Ok(Unsubscribe {
            packet_id,
            filters,
            properties,
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
        if self.filters.is_empty() {
            return Err(EncodeError::NoTopicFilters {
                packet_type: PacketType::Unsubscribe,
            });
        }
        s.put_u16(self.packet_id);
        if version == ProtocolVersion::V5 {
            self.properties
                .encode(Section::Packet(PacketType::Unsubscribe), s)?;
        }
        for filter in &self.filters {
            validate_topic_filter(filter).map_err(EncodeError::InvalidTopicFilter)?;
            codec::put_str(s, filter)?;
        }
        Ok(())
    }
}
