//! The bytes a session has queued for its transport.

use bytes::{Bytes, BytesMut};

use crate::packet::Encode;
use crate::{EncodeError, ProtocolVersion};

/// Why a packet was not queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The codec cannot represent the packet.
    Encode(EncodeError),
    /// The encoded packet is larger than the peer accepts.
    TooLarge {
        /// Encoded size in bytes.
        size: usize,
        /// The peer's Maximum Packet Size.
        max: usize,
    },
}

/// Encoded packets waiting to be written, coalesced into one buffer.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    buf: BytesMut,
}

impl Outbox {
    /// Encodes `packet` at the end of the buffer, unless it cannot be encoded
    /// or is larger than `max_size` bytes; then the buffer is left unchanged.
    pub(crate) fn push(
        &mut self,
        packet: &impl Encode,
        version: ProtocolVersion,
        max_size: usize,
    ) -> Result<(), PushError> {
        let start = self.buf.len();
        packet
            .encode_into(version, &mut self.buf)
            .map_err(PushError::Encode)?;
        let size = self.buf.len() - start;
        if size > max_size {
            self.buf.truncate(start);
            return Err(PushError::TooLarge {
                size,
                max: max_size,
            });
        }
        Ok(())
    }

    /// Everything queued so far, or `None` when nothing is.
    pub(crate) fn take(&mut self) -> Option<Bytes> {
        if self.buf.is_empty() {
            None
        } else {
            Some(self.buf.split().freeze())
        }
    }

    /// Drops everything queued (the transport it was meant for is gone).
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
    }
}
