//! Primitive readers and writers shared by the packet modules: variable byte
//! integers, two-byte-length strings and binary data, and properties.
//!
//! Decoding reads from a [`Reader`] over the body of one packet (a [`Bytes`]
//! slice, so binary fields are zero-copy). Encoding writes into a [`Sink`]:
//! every packet is encoded twice, once into a [`Counter`] to learn its
//! remaining length (and to run every check that can fail), then into the
//! output buffer.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError};
use crate::packet::PacketType;
use crate::topic::TopicName;

/// The largest value a variable byte integer can hold.
pub(crate) const MAX_VARINT: usize = 268_435_455;

/// Outcome of parsing a variable byte integer from a possibly short buffer.
pub(crate) enum VarInt {
    /// The value and how many bytes it used.
    Complete(usize, usize),
    /// The buffer ends before the last byte of the integer.
    Incomplete,
    /// A fourth byte still had its continuation bit set.
    Malformed,
}

/// Parses a variable byte integer (at most 4 bytes) from the front of `bytes`.
pub(crate) fn parse_varint(bytes: &[u8]) -> VarInt {
    let mut value = 0usize;
    for (i, &b) in bytes.iter().take(4).enumerate() {
        value |= usize::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return VarInt::Complete(value, i + 1);
        }
    }
    if bytes.len() >= 4 {
        VarInt::Malformed
    } else {
        VarInt::Incomplete
    }
}

/// Number of bytes the variable byte integer encoding of `v` takes.
pub(crate) fn varint_len(v: usize) -> usize {
    match v {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// A cursor over the body of one packet. Every read is bounds-checked and
/// fails with [`DecodeError::Truncated`] instead of panicking.
pub(crate) struct Reader {
    buf: Bytes,
    pos: usize,
    packet_type: PacketType,
}

impl Reader {
    /// A reader over `buf`, reporting errors against `packet_type`.
    pub(crate) fn new(buf: Bytes, packet_type: PacketType) -> Reader {
        Reader {
            buf,
            pos: 0,
            packet_type,
        }
    }

    /// The packet type errors are reported against.
    pub(crate) fn packet_type(&self) -> PacketType {
        self.packet_type
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn truncated(&self) -> DecodeError {
        DecodeError::Truncated {
            packet_type: self.packet_type,
        }
    }

    /// Takes the next `n` bytes as a zero-copy slice.
    pub(crate) fn take(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        if n > self.remaining() {
            return Err(self.truncated());
        }
        let out = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    fn take_slice(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        if n > self.remaining() {
            return Err(self.truncated());
        }
        let start = self.pos;
        self.pos += n;
        Ok(&self.buf[start..start + n])
    }

    /// Takes everything not read yet.
    pub(crate) fn rest(&mut self) -> Bytes {
        let out = self.buf.slice(self.pos..);
        self.pos = self.buf.len();
        out
    }

    /// Reads one byte.
    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take_slice(1)?[0])
    }

    /// Reads a big-endian two-byte integer.
    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take_slice(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Reads a big-endian four-byte integer.
    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take_slice(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a variable byte integer.
    pub(crate) fn varint(&mut self) -> Result<usize, DecodeError> {
        match parse_varint(&self.buf[self.pos..]) {
            VarInt::Complete(v, n) => {
                self.pos += n;
                Ok(v)
            }
            VarInt::Incomplete => Err(self.truncated()),
            VarInt::Malformed => Err(DecodeError::MalformedVarInt),
        }
    }

    /// Reads a non-zero packet identifier.
    pub(crate) fn packet_id(&mut self) -> Result<u16, DecodeError> {
        match self.u16()? {
            0 => Err(DecodeError::ZeroPacketId),
            id => Ok(id),
        }
    }

    /// Reads a two-byte-length UTF-8 string without U+0000.
    pub(crate) fn string(&mut self) -> Result<String, DecodeError> {
        self.str().map(str::to_owned)
    }

    /// Reads a two-byte-length UTF-8 string without U+0000 as a topic name,
    /// copied once into its shared allocation.
    pub(crate) fn topic_name(&mut self) -> Result<TopicName, DecodeError> {
        self.str().map(TopicName::from)
    }

    /// Reads a two-byte-length UTF-8 string without U+0000, borrowed.
    fn str(&mut self) -> Result<&str, DecodeError> {
        let len = usize::from(self.u16()?);
        let raw = self.take_slice(len)?;
        let s = std::str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8)?;
        if s.contains('\0') {
            return Err(DecodeError::InvalidUtf8);
        }
        Ok(s)
    }

    /// Reads two-byte-length binary data as a zero-copy slice.
    pub(crate) fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let len = usize::from(self.u16()?);
        self.take(len)
    }

    /// Splits off the next `n` bytes as a reader of their own (a property
    /// section).
    pub(crate) fn sub_reader(&mut self, n: usize) -> Result<Reader, DecodeError> {
        let buf = self.take(n)?;
        Ok(Reader::new(buf, self.packet_type))
    }

    /// Fails with [`DecodeError::TrailingBytes`] unless everything was read.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(DecodeError::TrailingBytes {
                packet_type: self.packet_type,
                extra,
            }),
        }
    }
}

/// Where encoded bytes go: the output buffer, or a [`Counter`] that only
/// measures.
pub(crate) trait Sink {
    /// Writes one byte.
    fn put_u8(&mut self, v: u8);
    /// Writes a big-endian two-byte integer.
    fn put_u16(&mut self, v: u16);
    /// Writes a big-endian four-byte integer.
    fn put_u32(&mut self, v: u32);
    /// Writes raw bytes.
    fn put_slice(&mut self, v: &[u8]);
}

impl Sink for BytesMut {
    fn put_u8(&mut self, v: u8) {
        BufMut::put_u8(self, v);
    }
    fn put_u16(&mut self, v: u16) {
        BufMut::put_u16(self, v);
    }
    fn put_u32(&mut self, v: u32) {
        BufMut::put_u32(self, v);
    }
    fn put_slice(&mut self, v: &[u8]) {
        BufMut::put_slice(self, v);
    }
}

/// A [`Sink`] that counts the bytes written to it.
#[derive(Default)]
pub(crate) struct Counter(pub(crate) usize);

impl Sink for Counter {
    fn put_u8(&mut self, _: u8) {
        self.0 += 1;
    }
    fn put_u16(&mut self, _: u16) {
        self.0 += 2;
    }
    fn put_u32(&mut self, _: u32) {
        self.0 += 4;
    }
    fn put_slice(&mut self, v: &[u8]) {
        self.0 += v.len();
    }
}

/// Writes a variable byte integer; `v` must be at most [`MAX_VARINT`].
pub(crate) fn put_varint<S: Sink>(s: &mut S, mut v: usize) {
    loop {
        let mut byte = (v & 0x7F) as u8;
        v >>= 7;
        if v > 0 {
            byte |= 0x80;
        }
        s.put_u8(byte);
        if v == 0 {
            return;
        }
    }
}

/// Writes a two-byte-length string; fails if it is too long or holds U+0000.
pub(crate) fn put_str<S: Sink>(s: &mut S, v: &str) -> Result<(), EncodeError> {
    if v.contains('\0') {
        return Err(EncodeError::NulCharacter);
    }
    put_binary(s, v.as_bytes())
}

/// Writes two-byte-length binary data; fails if it is longer than 65,535 bytes.
pub(crate) fn put_binary<S: Sink>(s: &mut S, v: &[u8]) -> Result<(), EncodeError> {
    let len = u16::try_from(v.len()).map_err(|_| EncodeError::FieldTooLong(v.len()))?;
    s.put_u16(len);
    s.put_slice(v);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_varint(v: usize) -> Vec<u8> {
        let mut out = BytesMut::new();
        put_varint(&mut out, v);
        out.to_vec()
    }

    #[test]
    fn varint_boundaries_round_trip_with_minimal_length() {
        for (v, len) in [
            (0, 1),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (2_097_151, 3),
            (2_097_152, 4),
            (MAX_VARINT, 4),
        ] {
            let bytes = encode_varint(v);
            assert_eq!(bytes.len(), len, "{v}");
            assert_eq!(varint_len(v), len, "{v}");
            match parse_varint(&bytes) {
                VarInt::Complete(got, n) => assert_eq!((got, n), (v, len)),
                _ => panic!("{v} did not parse"),
            }
        }
    }

    #[test]
    fn varint_with_five_bytes_is_malformed_and_short_input_incomplete() {
        assert!(matches!(
            parse_varint(&[0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
            VarInt::Malformed
        ));
        assert!(matches!(parse_varint(&[0xFF, 0xFF]), VarInt::Incomplete));
        assert!(matches!(parse_varint(&[]), VarInt::Incomplete));
    }

    #[test]
    fn reader_rejects_nul_and_invalid_utf8_in_strings() {
        let mut r = Reader::new(Bytes::from_static(b"\x00\x02a\x00"), PacketType::Publish);
        assert_eq!(r.string(), Err(DecodeError::InvalidUtf8));
        let mut r = Reader::new(Bytes::from_static(b"\x00\x01\xFF"), PacketType::Publish);
        assert_eq!(r.string(), Err(DecodeError::InvalidUtf8));
        let mut r = Reader::new(Bytes::from_static(b"\x00\x05ab"), PacketType::Publish);
        assert_eq!(
            r.string(),
            Err(DecodeError::Truncated {
                packet_type: PacketType::Publish
            })
        );
    }

    #[test]
    fn counter_measures_what_the_buffer_receives() {
        let mut out = BytesMut::new();
        let mut count = Counter::default();
        put_str(&mut out, "héllo").unwrap();
        put_str(&mut count, "héllo").unwrap();
        put_varint(&mut out, 300);
        put_varint(&mut count, 300);
        assert_eq!(out.len(), count.0);
    }

    #[test]
    fn long_fields_and_nul_are_refused_on_encode() {
        let long = "a".repeat(65_536);
        assert_eq!(
            put_str(&mut Counter::default(), &long),
            Err(EncodeError::FieldTooLong(65_536))
        );
        assert_eq!(
            put_str(&mut Counter::default(), "a\0b"),
            Err(EncodeError::NulCharacter)
        );
        assert!(put_str(&mut Counter::default(), &long[..65_535]).is_ok());
    }
}
