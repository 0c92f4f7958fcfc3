//! CONNACK: the server's answer to CONNECT.

use super::PacketType;
use crate::codec::{Reader, Sink};
use crate::error::{DecodeError, EncodeError};
use crate::properties::BoxedProperties;
use crate::properties::Section;
use crate::{Properties, ProtocolVersion, ReasonCode};

/// MQTT 3.1.1 return codes 0 to 5 and their MQTT 5 reason codes.
const V311_RETURN_CODES: [ReasonCode; 6] = [
    ReasonCode::SUCCESS,
    ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
    ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
    ReasonCode::SERVER_UNAVAILABLE,
    ReasonCode::BAD_USER_NAME_OR_PASSWORD,
    ReasonCode::NOT_AUTHORIZED,
];

/// The 3.1.1 return code sent for a reason code without an equivalent.
const V311_SERVER_UNAVAILABLE: u8 = 3;

/// The session present bit; the other bits are reserved.
const SESSION_PRESENT: u8 = 0x01;

/// A CONNACK packet.
///
/// `reason` uses MQTT 5 reason codes for both versions: an MQTT 3.1.1 return
/// code is mapped to its MQTT 5 equivalent on decode (1 → 0x84, 2 → 0x85,
/// 3 → 0x88, 4 → 0x86, 5 → 0x87) and back on encode; a code without a 3.1.1
/// equivalent is sent as 3 (server unavailable).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnAck {
    /// Whether the server resumed a stored session.
    pub session_present: bool,
    /// Success, or why the connection was refused.
    pub reason: ReasonCode,
    /// MQTT 5 CONNACK properties (empty for 3.1.1).
    pub properties: BoxedProperties,
}

impl ConnAck {
    /// A CONNACK without properties.
    pub fn new(session_present: bool, reason: ReasonCode) -> ConnAck {
        ConnAck {
            session_present,
            reason,
            properties: Default::default(),
        }
    }

    pub(crate) fn decode_body(
        mut r: Reader,
        version: ProtocolVersion,
    ) -> Result<ConnAck, DecodeError> {
        let flags = r.u8()?;
        let code = r.u8()?;
        let invalid_code = DecodeError::InvalidReasonCode {
            packet_type: PacketType::ConnAck,
            code,
        };
        let reason = match version {
            ProtocolVersion::V311 => *V311_RETURN_CODES
                .get(usize::from(code))
                .ok_or(invalid_code)?,
            ProtocolVersion::V5 if ReasonCode(code).is_valid_for(PacketType::ConnAck) => {
                ReasonCode(code)
            }
            ProtocolVersion::V5 => return Err(invalid_code),
        };
        let session_present = flags & SESSION_PRESENT != 0;
        if flags & !SESSION_PRESENT != 0 || (session_present && reason.is_error()) {
            return Err(DecodeError::InvalidConnAckFlags { flags, code });
        }
        let properties = match version {
            ProtocolVersion::V311 => Properties::default(),
            ProtocolVersion::V5 => {
                Properties::decode(&mut r, Section::Packet(PacketType::ConnAck))?
            }
        };
        r.finish()?;
        Ok(ConnAck {
            session_present,
            reason,
            properties: properties.into(),
        })
    }

    pub(crate) fn encode_body<S: Sink>(
        &self,
        version: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        if !self.reason.is_valid_for(PacketType::ConnAck) {
            return Err(EncodeError::InvalidReasonCode {
                packet_type: PacketType::ConnAck,
                code: self.reason.0,
            });
        }
        if self.session_present && self.reason.is_error() {
            return Err(EncodeError::Invalid(
                "a CONNACK refusing the connection cannot have session present set",
            ));
        }
        s.put_u8(if self.session_present {
            SESSION_PRESENT
        } else {
            0
        });
        match version {
            ProtocolVersion::V311 => {
                let code = V311_RETURN_CODES
                    .iter()
                    .position(|&c| c == self.reason)
                    .map_or(V311_SERVER_UNAVAILABLE, |i| i as u8);
                s.put_u8(code);
                Ok(())
            }
            ProtocolVersion::V5 => {
                s.put_u8(self.reason.0);
                self.properties
                    .encode(Section::Packet(PacketType::ConnAck), s)
            }
        }
    }
}
