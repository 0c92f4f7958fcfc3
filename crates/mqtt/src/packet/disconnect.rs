//! DISCONNECT: an orderly end of the connection.

use super::PacketType;
use super::short_form::{self, Omit};
use crate::codec::{Reader, Sink};
use crate::error::{DecodeError, EncodeError};
use crate::properties::BoxedProperties;
use crate::{ProtocolVersion, ReasonCode};

/// A DISCONNECT packet (reason and properties are MQTT 5 only).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Disconnect {
    /// Why the connection ends; `SUCCESS` (0x00) is a normal disconnect.
    pub reason: ReasonCode,
    /// MQTT 5 properties (session expiry, reason string, server reference).
    pub properties: BoxedProperties,
}

impl Disconnect {
    /// A DISCONNECT with `reason` and no properties.
    pub fn new(reason: ReasonCode) -> Disconnect {
        Disconnect {
            reason,
            properties: Default::default(),
        }
    }

    pub(crate) fn decode_body(
        mut r: Reader,
        version: ProtocolVersion,
    ) -> Result<Disconnect, DecodeError> {
        let (reason, properties) = match version {
            ProtocolVersion::V311 => (ReasonCode::SUCCESS, Default::default()),
            ProtocolVersion::V5 => short_form::decode(&mut r)?,
        };
        r.finish()?;
        Ok(Disconnect { reason, properties })
    }

    pub(crate) fn encode_body<S: Sink>(
        &self,
        version: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        match version {
            ProtocolVersion::V311 => Ok(()),
            ProtocolVersion::V5 => short_form::encode(
                self.reason,
                &self.properties,
                PacketType::Disconnect,
                Omit::EmptyProperties,
                s,
            ),
        }
    }
}
