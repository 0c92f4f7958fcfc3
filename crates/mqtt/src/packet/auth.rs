//! AUTH: MQTT 5 enhanced authentication exchange.

use super::PacketType;
use super::short_form::{self, Omit};
use crate::ReasonCode;
use crate::codec::{Reader, Sink};
use crate::error::{DecodeError, EncodeError};
use crate::properties::BoxedProperties;

/// An AUTH packet (MQTT 5 only).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Auth {
    /// 0x00 success, 0x18 continue authentication, 0x19 re-authenticate.
    pub reason: ReasonCode,
    /// Authentication method and data.
    pub properties: BoxedProperties,
}

impl Auth {
    /// The body of an AUTH; the caller has refused it on MQTT 3.1.1.
    pub(crate) fn decode_body(mut r: Reader) -> Result<Auth, DecodeError> {
        let (reason, properties) = short_form::decode(&mut r)?;
        r.finish()?;
        Ok(Auth { reason, properties })
    }

    /// The body of an AUTH; the caller has refused to encode it for MQTT 3.1.1.
    pub(crate) fn encode_body<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        short_form::encode(
            self.reason,
            &self.properties,
            PacketType::Auth,
            Omit::Nothing,
            s,
        )
    }
}
