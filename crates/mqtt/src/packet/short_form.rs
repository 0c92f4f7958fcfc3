//! The optional tail shared by PUBACK, PUBREC, PUBREL, PUBCOMP, DISCONNECT and
//! AUTH in MQTT 5: a reason code, then properties, each of which may be left
//! out when the packet ends early (reason code 0x00, no properties).

use crate::codec::{Reader, Sink};
use crate::error::{DecodeError, EncodeError};
use crate::packet::PacketType;
use crate::properties::{BoxedProperties, Section};
use crate::{Properties, ReasonCode};

/// Reads the optional reason code and properties that end the packet; none
/// boxed when there are none (most acknowledgements).
pub(crate) fn decode(r: &mut Reader) -> Result<(ReasonCode, BoxedProperties), DecodeError> {
    let packet_type = r.packet_type();
    if r.remaining() == 0 {
        return Ok((ReasonCode::SUCCESS, BoxedProperties::default()));
    }
    let reason = ReasonCode(r.u8()?);
    if !reason.is_valid_for(packet_type) {
        return Err(DecodeError::InvalidReasonCode {
            packet_type,
            code: reason.0,
        });
    }
    let properties = if r.remaining() == 0 {
        BoxedProperties::default()
    } else {
        Properties::decode(r, Section::Packet(packet_type))?.into()
    };
    Ok((reason, properties))
}

/// How short the encoder may make the tail.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Omit {
    /// Leave out the property length when there are no properties
    /// (acks, DISCONNECT).
    EmptyProperties,
    /// Always write the property length after a reason code (AUTH).
    Nothing,
}

/// Writes the reason code and properties, as short as `omit` allows: nothing
/// at all for success without properties.
pub(crate) fn encode<S: Sink>(
    reason: ReasonCode,
    properties: &Properties,
    packet_type: PacketType,
    omit: Omit,
    s: &mut S,
) -> Result<(), EncodeError> {
    if !reason.is_valid_for(packet_type) {
        return Err(EncodeError::InvalidReasonCode {
            packet_type,
            code: reason.0,
        });
    }
    let no_properties = properties.is_empty();
    if reason == ReasonCode::SUCCESS && no_properties {
        return Ok(());
    }
    s.put_u8(reason.0);
    if no_properties && omit == Omit::EmptyProperties {
        return Ok(());
    }
    properties.encode(Section::Packet(packet_type), s)
}
