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
mod publish;
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

use bytes::BytesMut;

use crate::{DecodeError, EncodeError, ProtocolVersion};

/// The largest packet MQTT can express: a remaining length of 268,435,455 bytes
/// plus a 5-byte fixed header.
pub const MAX_PACKET_SIZE: usize = 268_435_455 + 5;

/// An MQTT control packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT (client → server).
    Connect(Connect),
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
    pub fn encode(&self, version: ProtocolVersion, out: &mut BytesMut) -> Result<(), EncodeError> {
        let _ = (version, out);
        unimplemented!("codec helper")
    }
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
pub fn decode(
    buf: &mut BytesMut,
    version: ProtocolVersion,
    max_packet_size: usize,
) -> Result<Option<Packet>, DecodeError> {
    let _ = (buf, version, max_packet_size);
    unimplemented!("codec helper")
}
