//! Typed errors of the codec. Each variant says what was wrong with the input.

use crate::packet::PacketType;
use crate::topic::TopicError;

/// Why bytes from the peer could not be decoded into a packet.
///
/// Any of these is a protocol violation by the peer: the connection should be
/// closed (MQTT 5: DISCONNECT with [`DecodeError::reason_code`] first).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The variable-length remaining length used more than 4 bytes.
    #[error("malformed remaining length (more than 4 bytes)")]
    MalformedRemainingLength,
    /// A variable byte integer inside the packet was longer than 4 bytes.
    #[error("malformed variable byte integer")]
    MalformedVarInt,
    /// The packet is larger than the configured maximum.
    #[error("packet of {size} bytes exceeds the maximum of {max} bytes")]
    PacketTooLarge {
        /// Size of the whole packet, fixed header included.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// Packet type 0 (reserved), or AUTH on an MQTT 3.1.1 connection.
    #[error("invalid packet type {0}")]
    InvalidPacketType(u8),
    /// The fixed-header flags are not those the packet type requires.
    #[error("invalid fixed header flags {flags:#06b} for {packet_type:?}")]
    InvalidFlags {
        /// The packet type.
        packet_type: PacketType,
        /// The low nibble received.
        flags: u8,
    },
    /// The packet ended before a field was complete.
    #[error("{packet_type:?} is truncated: a field runs past the end of the packet")]
    Truncated {
        /// The packet type.
        packet_type: PacketType,
    },
    /// Bytes remain after the last field of the packet.
    #[error("{packet_type:?} has {extra} unexpected trailing bytes")]
    TrailingBytes {
        /// The packet type.
        packet_type: PacketType,
        /// How many bytes were left over.
        extra: usize,
    },
    /// A string is not valid UTF-8, or holds U+0000.
    #[error("invalid UTF-8 string")]
    InvalidUtf8,
    /// CONNECT protocol name is not "MQTT".
    #[error("invalid protocol name")]
    InvalidProtocolName,
    /// CONNECT protocol level is neither 4 (3.1.1) nor 5 (5.0).
    #[error("unsupported protocol level {0}")]
    UnsupportedProtocolVersion(u8),
    /// CONNECT flags violate the specification (reserved bit, will flags, password without user name in 3.1.1…).
    #[error("invalid CONNECT flags {0:#010b}")]
    InvalidConnectFlags(u8),
    /// A QoS of 3.
    #[error("invalid QoS {0}")]
    InvalidQoS(u8),
    /// A packet identifier of 0 where a non-zero one is required.
    #[error("packet identifier 0 is not allowed")]
    ZeroPacketId,
    /// An invalid topic name in PUBLISH or a will.
    #[error("invalid topic name: {0}")]
    InvalidTopicName(TopicError),
    /// An invalid topic filter in SUBSCRIBE or UNSUBSCRIBE.
    #[error("invalid topic filter: {0}")]
    InvalidTopicFilter(TopicError),
    /// SUBSCRIBE or UNSUBSCRIBE with no topic filter.
    #[error("{packet_type:?} carries no topic filter")]
    NoTopicFilters {
        /// The packet type.
        packet_type: PacketType,
    },
    /// Reserved bits of subscription options are set, or retain handling is 3.
    #[error("invalid subscription options {0:#010b}")]
    InvalidSubscriptionOptions(u8),
    /// A reason code not allowed in this packet.
    #[error("reason code {code:#04x} is not valid in {packet_type:?}")]
    InvalidReasonCode {
        /// The packet type.
        packet_type: PacketType,
        /// The code received.
        code: u8,
    },
    /// An unknown property identifier.
    #[error("unknown property identifier {0:#04x}")]
    UnknownProperty(u8),
    /// A property that the specification does not allow in this packet.
    #[error("property {property:#04x} is not allowed in {packet_type:?}")]
    PropertyNotAllowed {
        /// The packet type.
        packet_type: PacketType,
        /// The property identifier.
        property: u8,
    },
    /// A property that may appear once appeared twice.
    #[error("property {0:#04x} appears more than once")]
    DuplicateProperty(u8),
    /// A property value out of its allowed range (e.g. Receive Maximum 0).
    #[error("invalid value for property {0:#04x}")]
    InvalidPropertyValue(u8),
    /// CONNACK acknowledge flags with reserved bits set, or a session present
    /// flag together with a failure reason code.
    #[error("invalid CONNACK flags {flags:#010b} with reason code {code:#04x}")]
    InvalidConnAckFlags {
        /// The acknowledge flags byte.
        flags: u8,
        /// The reason (return) code byte.
        code: u8,
    },
    /// SUBACK (or MQTT 5 UNSUBACK) without a single reason code.
    #[error("{packet_type:?} carries no reason code")]
    NoReasonCodes {
        /// The packet type.
        packet_type: PacketType,
    },
}

impl DecodeError {
    /// The MQTT 5 reason code to send in a DISCONNECT for this error.
    pub fn reason_code(&self) -> crate::ReasonCode {
        match self {
            DecodeError::PacketTooLarge { .. } => crate::ReasonCode::PACKET_TOO_LARGE,
            DecodeError::InvalidTopicName(_) => crate::ReasonCode::TOPIC_NAME_INVALID,
            DecodeError::InvalidTopicFilter(_) => crate::ReasonCode::TOPIC_FILTER_INVALID,
            // The specification calls these a "Protocol Error", not a
            // malformed packet.
            DecodeError::InvalidPacketType(_)
            | DecodeError::UnsupportedProtocolVersion(_)
            | DecodeError::DuplicateProperty(_)
            | DecodeError::InvalidPropertyValue(_) => crate::ReasonCode::PROTOCOL_ERROR,
            _ => crate::ReasonCode::MALFORMED_PACKET,
        }
    }
}

/// Why a packet could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A string or binary field is longer than 65,535 bytes.
    #[error("a string or binary field of {0} bytes exceeds 65,535 bytes")]
    FieldTooLong(usize),
    /// The packet would exceed the largest remaining length MQTT can express.
    #[error("packet of {0} bytes is too large for MQTT")]
    PacketTooLarge(usize),
    /// The packet does not exist in the protocol version (AUTH in 3.1.1).
    #[error("{0:?} does not exist in MQTT 3.1.1")]
    NotInProtocol(PacketType),
    /// A field is inconsistent (QoS > 0 without a packet identifier, or the reverse).
    #[error("invalid packet: {0}")]
    Invalid(&'static str),
    /// A string field holds U+0000, which MQTT forbids.
    #[error("a string field contains U+0000")]
    NulCharacter,
    /// A packet identifier of 0; use 1 to 65,535.
    #[error("packet identifier 0 is not allowed; use 1 to 65,535")]
    ZeroPacketId,
    /// An invalid topic name in PUBLISH or a will.
    #[error("invalid topic name: {0}")]
    InvalidTopicName(TopicError),
    /// An invalid topic filter in SUBSCRIBE or UNSUBSCRIBE.
    #[error("invalid topic filter: {0}")]
    InvalidTopicFilter(TopicError),
    /// SUBSCRIBE or UNSUBSCRIBE without a topic filter.
    #[error("{packet_type:?} needs at least one topic filter")]
    NoTopicFilters {
        /// The packet type.
        packet_type: PacketType,
    },
    /// SUBACK (or MQTT 5 UNSUBACK) without a reason code.
    #[error("{packet_type:?} needs at least one reason code")]
    NoReasonCodes {
        /// The packet type.
        packet_type: PacketType,
    },
    /// A reason code the specification does not allow in this packet.
    #[error("reason code {code:#04x} is not valid in {packet_type:?}")]
    InvalidReasonCode {
        /// The packet type.
        packet_type: PacketType,
        /// The offending code.
        code: u8,
    },
    /// A property set that the specification does not allow in this packet.
    #[error("property {property:#04x} is not allowed in {packet_type:?}")]
    PropertyNotAllowed {
        /// The packet type.
        packet_type: PacketType,
        /// The property identifier.
        property: u8,
    },
    /// A property value out of its allowed range (e.g. Receive Maximum 0).
    #[error("invalid value for property {0:#04x}")]
    InvalidPropertyValue(u8),
}
