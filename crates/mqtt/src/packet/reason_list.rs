//! The list of reason codes, one per topic filter, that ends SUBACK and the
//! MQTT 5 UNSUBACK.

use super::PacketType;
use crate::ReasonCode;
use crate::codec::{Reader, Sink};
use crate::error::{DecodeError, EncodeError};

/// Reads the rest of the packet as at least one reason code, each accepted
/// by `valid`.
pub(crate) fn decode(
    r: &mut Reader,
    valid: impl Fn(ReasonCode) -> bool,
) -> Result<Vec<ReasonCode>, DecodeError> {
    let packet_type = r.packet_type();
    let codes = r.rest();
    if codes.is_empty() {
        return Err(DecodeError::NoReasonCodes { packet_type });
    }
    codes
        .iter()
        .map(|&code| {
            let reason = ReasonCode(code);
            if valid(reason) {
                Ok(reason)
            } else {
                Err(DecodeError::InvalidReasonCode { packet_type, code })
            }
        })
        .collect()
}

/// Writes at least one reason code, each valid in MQTT 5 for `packet_type`,
/// as `wire` turns it into a byte.
pub(crate) fn encode<S: Sink>(
    reasons: &[ReasonCode],
    packet_type: PacketType,
    wire: impl Fn(ReasonCode) -> u8,
    s: &mut S,
) -> Result<(), EncodeError> {
    if reasons.is_empty() {
        return Err(EncodeError::NoReasonCodes { packet_type });
    }
    for &reason in reasons {
        if !reason.is_valid_for(packet_type) {
            return Err(EncodeError::InvalidReasonCode {
                packet_type,
                code: reason.0,
            });
        }
        s.put_u8(wire(reason));
    }
    Ok(())
}
