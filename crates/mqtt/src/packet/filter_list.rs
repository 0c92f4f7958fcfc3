//! The body SUBSCRIBE and UNSUBSCRIBE share: a packet identifier, MQTT 5
//! properties, then at least one topic filter (SUBSCRIBE follows each with
//! its options byte).

use super::PacketType;
use crate::codec::{self, Reader, Sink};
use crate::error::{DecodeError, EncodeError};
use crate::properties::BoxedProperties;
use crate::properties::Section;
use crate::topic::validate_topic_filter;
use crate::{Properties, ProtocolVersion};

/// A decoded body: packet identifier, properties, one item per filter.
pub(crate) struct Body<T> {
    pub(crate) packet_id: u16,
    pub(crate) properties: BoxedProperties,
    pub(crate) items: Vec<T>,
}

/// Reads the body; `item` makes an entry of a valid filter, reading what
/// follows the filter (if anything) from the reader.
pub(crate) fn decode<T>(
    mut r: Reader,
    version: ProtocolVersion,
    mut item: impl FnMut(String, &mut Reader) -> Result<T, DecodeError>,
) -> Result<Body<T>, DecodeError> {
    let packet_type = r.packet_type();
    let packet_id = r.packet_id()?;
    let properties = match version {
        ProtocolVersion::V311 => Properties::default(),
        ProtocolVersion::V5 => Properties::decode(&mut r, Section::Packet(packet_type))?,
    };
    let mut items = Vec::new();
    while r.remaining() > 0 {
        let filter = r.string()?;
        validate_topic_filter(&filter).map_err(DecodeError::InvalidTopicFilter)?;
        items.push(item(filter, &mut r)?);
    }
    if items.is_empty() {
        return Err(DecodeError::NoTopicFilters { packet_type });
    }
    Ok(Body {
        packet_id,
        properties: properties.into(),
        items,
    })
}

/// An entry of the list: its filter and the options byte after it, if any.
pub(crate) trait Entry {
    /// The topic filter.
    fn filter(&self) -> &str;
    /// The byte written after the filter in `version`, if any.
    fn options_byte(&self, version: ProtocolVersion) -> Option<u8>;
}

/// Writes the body of `packet_type`.
pub(crate) fn encode<T: Entry, S: Sink>(
    packet_type: PacketType,
    packet_id: u16,
    properties: &Properties,
    entries: &[T],
    version: ProtocolVersion,
    s: &mut S,
) -> Result<(), EncodeError> {
    if packet_id == 0 {
        return Err(EncodeError::ZeroPacketId);
    }
    if entries.is_empty() {
        return Err(EncodeError::NoTopicFilters { packet_type });
    }
    s.put_u16(packet_id);
    if version == ProtocolVersion::V5 {
        properties.encode(Section::Packet(packet_type), s)?;
    }
    for entry in entries {
        let filter = entry.filter();
        validate_topic_filter(filter).map_err(EncodeError::InvalidTopicFilter)?;
        codec::put_str(s, filter)?;
        if let Some(byte) = entry.options_byte(version) {
            s.put_u8(byte);
        }
    }
    Ok(())
}
