//! UNSUBSCRIBE: a client drops topic filters.

use super::{PacketType, filter_list};
use crate::ProtocolVersion;
use crate::codec::{Reader, Sink};
use crate::error::{DecodeError, EncodeError};
use crate::properties::BoxedProperties;

/// An UNSUBSCRIBE packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Packet identifier (non-zero).
    pub packet_id: u16,
    /// At least one topic filter.
    pub filters: Vec<String>,
    /// MQTT 5 properties.
    pub properties: BoxedProperties,
}

impl Unsubscribe {
    /// An UNSUBSCRIBE without properties.
    pub fn new(packet_id: u16, filters: Vec<String>) -> Unsubscribe {
        Unsubscribe {
            packet_id,
            filters,
            properties: Default::default(),
        }
    }

    pub(crate) fn decode_body(
        r: Reader,
        version: ProtocolVersion,
    ) -> Result<Unsubscribe, DecodeError> {
        let body = filter_list::decode(r, version, |filter, _| Ok(filter))?;
        Ok(Unsubscribe {
            packet_id: body.packet_id,
            filters: body.items,
            properties: body.properties,
        })
    }

    pub(crate) fn encode_body<S: Sink>(
        &self,
        version: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        filter_list::encode(
            PacketType::Unsubscribe,
            self.packet_id,
            &self.properties,
            &self.filters,
            version,
            s,
        )
    }
}

impl filter_list::Entry for String {
    fn filter(&self) -> &str {
        self
    }

    fn options_byte(&self, _: ProtocolVersion) -> Option<u8> {
        None
    }
}
