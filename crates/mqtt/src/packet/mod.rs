//! MQTT control packets as plain values, and their wire encoding.
//!
//! One module per packet type, each holding the struct and its `decode_body` /
//! `encode_body` functions (the h2 layout). [`decode`] reads the fixed header
//! and dispatches; [`Packet::encode`] writes a whole packet.
//!
//! The same types serve MQTT 3.1.1 and 5.0. Fields that exist only in MQTT 5
//! (properties, most reason codes) are ignored when encoding for 3.1.1 and take
//! their defaults when decoding 3.1.1.

mod ack;
mod auth;
mod connack;
mod connect;
mod disconnect;
mod filter_list;
mod publish;
mod reason_list;
mod short_form;
mod suback;
mod subscribe;
mod unsuback;
mod unsubscribe;

pub use ack::Ack;
pub use auth::Auth;
pub use connack::ConnAck;
pub use connect::{Connect, Will};
pub use disconnect::Disconnect;
pub use publish::Publish;
pub use suback::SubAck;
pub use subscribe::{RetainHandling, Subscribe, Subscription, SubscriptionOptions};
pub use unsuback::UnsubAck;
pub use unsubscribe::Unsubscribe;

use bytes::{Buf, BytesMut};

use crate::codec::{self, Counter, Reader, Sink, VarInt};
use crate::{DecodeError, EncodeError, ProtocolVersion};

/// The largest packet MQTT can express: a remaining length of 268,435,455 bytes
/// plus a 5-byte fixed header.
pub const MAX_PACKET_SIZE: usize = 268_435_455 + 5;

/// An MQTT control packet.
///
/// Packets are decoded, queued and moved on every message, so each variant is
/// small: property sets are boxed only when one is set
/// ([`BoxedProperties`](crate::properties::BoxedProperties)), and CONNECT, the
/// largest and sent once per connection, is boxed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT (client → server).
    Connect(Box<Connect>),
    /// CONNACK (server → client).
    ConnAck(ConnAck),
    /// PUBLISH (both directions).
    Publish(Publish),
    /// PUBACK (both directions).
    PubAck(Ack),
    /// PUBREC (QoS 2, both directions).
    PubRec(Ack),
    /// PUBREL (QoS 2, both directions).
    PubRel(Ack),
    /// PUBCOMP (QoS 2, both directions).
    PubComp(Ack),
    /// SUBSCRIBE (client → server).
    Subscribe(Subscribe),
    /// SUBACK (server → client).
    SubAck(SubAck),
    /// UNSUBSCRIBE (client → server).
    Unsubscribe(Unsubscribe),
    /// UNSUBACK (server → client).
    UnsubAck(UnsubAck),
    /// PINGREQ (client → server).
    PingReq,
    /// PINGRESP (server → client).
    PingResp,
    /// DISCONNECT (client → server; both directions in MQTT 5).
    Disconnect(Disconnect),
    /// AUTH (MQTT 5 only, both directions).
    Auth(Auth),
}

/// The packet type nibble of the fixed header, for errors and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum PacketType {
    Connect = 1,
    ConnAck = 2,
    Publish = 3,
    PubAck = 4,
    PubRec = 5,
    PubRel = 6,
    PubComp = 7,
    Subscribe = 8,
    SubAck = 9,
    Unsubscribe = 10,
    UnsubAck = 11,
    PingReq = 12,
    PingResp = 13,
    Disconnect = 14,
    Auth = 15,
}

impl PacketType {
    /// The packet type of a fixed header's high nibble; `None` for 0.
    pub fn from_nibble(nibble: u8) -> Option<PacketType> {
        Some(match nibble {
            1 => PacketType::Connect,
            2 => PacketType::ConnAck,
            3 => PacketType::Publish,
            4 => PacketType::PubAck,
            5 => PacketType::PubRec,
            6 => PacketType::PubRel,
            7 => PacketType::PubComp,
            8 => PacketType::Subscribe,
            9 => PacketType::SubAck,
            10 => PacketType::Unsubscribe,
            11 => PacketType::UnsubAck,
            12 => PacketType::PingReq,
            13 => PacketType::PingResp,
            14 => PacketType::Disconnect,
            15 => PacketType::Auth,
            _ => return None,
        })
    }

    /// The fixed low nibble of every packet type but PUBLISH.
    fn required_flags(self) -> u8 {
        match self {
            PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => 0b0010,
            _ => 0,
        }
    }

    /// Checks the low nibble of the fixed header.
    fn check_flags(self, flags: u8) -> Result<(), DecodeError> {
        if self == PacketType::Publish {
            return Publish::check_flags(flags);
        }
        if flags != self.required_flags() {
            return Err(DecodeError::InvalidFlags {
                packet_type: self,
                flags,
            });
        }
        Ok(())
    }
}

impl Packet {
    /// The type of this packet.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq => PacketType::PingReq,
            Packet::PingResp => PacketType::PingResp,
            Packet::Disconnect(_) => PacketType::Disconnect,
            Packet::Auth(_) => PacketType::Auth,
        }
    }

    /// Appends the wire form of this packet to `out`.
    ///
    /// `version` selects MQTT 3.1.1 or 5.0 framing (a CONNECT always uses its
    /// own [`Connect::protocol`]). Fails, leaving `out` unchanged, when a field
    /// cannot be represented: a string longer than 65,535 bytes, a packet
    /// larger than [`MAX_PACKET_SIZE`], or an MQTT 5-only packet (AUTH) for 3.1.1.
    /// It also refuses what [`decode`] would refuse (zero packet identifiers,
    /// invalid topics, reason codes or properties not allowed in the packet),
    /// so whatever encodes also decodes. MQTT 5-only fields are ignored for
    /// 3.1.1 (SUBACK failures are sent as 0x80).
    pub fn encode(&self, version: ProtocolVersion, out: &mut BytesMut) -> Result<(), EncodeError> {
        let version = self.wire_version(version);
        let remaining = self.remaining_len(version)?;
        let first_byte = ((self.packet_type() as u8) << 4) | self.flags();
        write_packet(out, first_byte, remaining, |out| {
            self.encode_body(version, out)
        })
    }

    /// The number of bytes [`Packet::encode`] would append, fixed header
    /// included; fails as `encode` would. Use it to respect a peer's maximum
    /// packet size.
    pub fn encoded_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        Ok(packet_len(self.remaining_len(self.wire_version(version))?))
    }

    /// CONNECT carries its own protocol level.
    fn wire_version(&self, version: ProtocolVersion) -> ProtocolVersion {
        match self {
            Packet::Connect(c) => c.protocol,
            _ => version,
        }
    }

    /// Measures the body, running every check that can fail.
    fn remaining_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        measure_body(|count| self.encode_body(version, count))
    }

    /// The low nibble of the fixed header.
    fn flags(&self) -> u8 {
        match self {
            Packet::Publish(p) => p.flags(),
            other => other.packet_type().required_flags(),
        }
    }

    fn encode_body<S: Sink>(&self, version: ProtocolVersion, s: &mut S) -> Result<(), EncodeError> {
        match self {
            Packet::Connect(p) => p.encode_body(s),
            Packet::ConnAck(p) => p.encode_body(version, s),
            Packet::Publish(p) => p.encode_body(version, s),
            Packet::PubAck(p) | Packet::PubRec(p) | Packet::PubRel(p) | Packet::PubComp(p) => {
                p.encode_body(self.packet_type(), version, s)
            }
            Packet::Subscribe(p) => p.encode_body(version, s),
            Packet::SubAck(p) => p.encode_body(version, s),
            Packet::Unsubscribe(p) => p.encode_body(version, s),
            Packet::UnsubAck(p) => p.encode_body(version, s),
            Packet::PingReq | Packet::PingResp => Ok(()),
            Packet::Disconnect(p) => p.encode_body(version, s),
            Packet::Auth(p) => match version {
                ProtocolVersion::V311 => Err(EncodeError::NotInProtocol(PacketType::Auth)),
                ProtocolVersion::V5 => p.encode_body(s),
            },
        }
    }
}

/// The size of a body that `encode_body` writes into a counting sink, running
/// every check the encoder runs; fails when MQTT cannot express it.
pub(crate) fn measure_body(
    encode_body: impl FnOnce(&mut Counter) -> Result<(), EncodeError>,
) -> Result<usize, EncodeError> {
    let mut count = Counter::default();
    encode_body(&mut count)?;
    if count.0 > codec::MAX_VARINT {
        return Err(EncodeError::PacketTooLarge(1 + 4 + count.0));
    }
    Ok(count.0)
}

/// Appends a packet to `out`: its first byte, the `remaining` length and the
/// body `encode_body` writes (measured beforehand as `remaining` bytes). On an
/// error `out` is left as it was.
pub(crate) fn write_packet(
    out: &mut BytesMut,
    first_byte: u8,
    remaining: usize,
    encode_body: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.reserve(packet_len(remaining));
    out.put_u8(first_byte);
    codec::put_varint(out, remaining);
    if let Err(e) = encode_body(out) {
        out.truncate(start);
        return Err(e);
    }
    debug_assert_eq!(out.len() - start, packet_len(remaining));
    Ok(())
}

/// What the sessions' outboxes encode: a [`Packet`], or a [`Publish`] they
/// keep for redelivery (encoded in place, not cloned into a `Packet`).
pub(crate) trait Encode {
    /// Appends the wire form to `out`; see [`Packet::encode`].
    fn encode_into(&self, version: ProtocolVersion, out: &mut BytesMut) -> Result<(), EncodeError>;
}

impl Encode for Packet {
    fn encode_into(&self, version: ProtocolVersion, out: &mut BytesMut) -> Result<(), EncodeError> {
        self.encode(version, out)
    }
}

impl Encode for Publish {
    fn encode_into(&self, version: ProtocolVersion, out: &mut BytesMut) -> Result<(), EncodeError> {
        self.encode(version, out)
    }
}

/// The whole packet's size for a body of `remaining` bytes: type byte, length, body.
pub(crate) fn packet_len(remaining: usize) -> usize {
    1 + codec::varint_len(remaining) + remaining
}

/// Decodes one packet from the front of `buf`.
///
/// Returns `Ok(None)` when `buf` does not yet hold a whole packet (nothing is
/// consumed), and `Ok(Some(packet))` after removing exactly that packet's bytes
/// from `buf`. Publish payloads are zero-copy slices of `buf`'s storage.
///
/// `version` is the protocol level negotiated on the connection; a CONNECT is
/// decoded with the level it carries. `max_packet_size` bounds the whole
/// packet (fixed header included): a larger one fails with
/// [`DecodeError::PacketTooLarge`] as soon as its header is read, before its
/// body arrives. Never panics, whatever the input.
///
/// On an error the connection must be closed: an error found in the fixed
/// header consumes nothing, one found in the body consumes the packet.
pub fn decode(
    buf: &mut BytesMut,
    version: ProtocolVersion,
    max_packet_size: usize,
) -> Result<Option<Packet>, DecodeError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let nibble = first >> 4;
    let packet_type = match PacketType::from_nibble(nibble) {
        Some(PacketType::Auth) if version == ProtocolVersion::V311 => {
            return Err(DecodeError::InvalidPacketType(nibble));
        }
        Some(t) => t,
        None => return Err(DecodeError::InvalidPacketType(nibble)),
    };
    let flags = first & 0x0F;
    packet_type.check_flags(flags)?;
    let (remaining, len_bytes) = match codec::parse_varint(&buf[1..]) {
        VarInt::Complete(value, len) => (value, len),
        VarInt::Incomplete => return Ok(None),
        VarInt::Malformed => return Err(DecodeError::MalformedRemainingLength),
    };
    let size = 1 + len_bytes + remaining;
    if size > max_packet_size {
        return Err(DecodeError::PacketTooLarge {
            size,
            max: max_packet_size,
        });
    }
    if buf.len() < size {
        return Ok(None);
    }
    buf.advance(1 + len_bytes);
    let r = Reader::new(buf.split_to(remaining).freeze(), packet_type);
    let packet = match packet_type {
        PacketType::Connect => Packet::Connect(Box::new(Connect::decode_body(r)?)),
        PacketType::ConnAck => Packet::ConnAck(ConnAck::decode_body(r, version)?),
        PacketType::Publish => Packet::Publish(Publish::decode_body(r, flags, version)?),
        PacketType::PubAck => Packet::PubAck(Ack::decode_body(r, version)?),
        PacketType::PubRec => Packet::PubRec(Ack::decode_body(r, version)?),
        PacketType::PubRel => Packet::PubRel(Ack::decode_body(r, version)?),
        PacketType::PubComp => Packet::PubComp(Ack::decode_body(r, version)?),
        PacketType::Subscribe => Packet::Subscribe(Subscribe::decode_body(r, version)?),
        PacketType::SubAck => Packet::SubAck(SubAck::decode_body(r, version)?),
        PacketType::Unsubscribe => Packet::Unsubscribe(Unsubscribe::decode_body(r, version)?),
        PacketType::UnsubAck => Packet::UnsubAck(UnsubAck::decode_body(r, version)?),
        PacketType::PingReq => {
            r.finish()?;
            Packet::PingReq
        }
        PacketType::PingResp => {
            r.finish()?;
            Packet::PingResp
        }
        PacketType::Disconnect => Packet::Disconnect(Disconnect::decode_body(r, version)?),
        PacketType::Auth => Packet::Auth(Auth::decode_body(r)?),
    };
    Ok(Some(packet))
}

#[cfg(test)]
mod tests;
