//! Protocol violations by the peer.

use crate::packet::PacketType;
use crate::{DecodeError, QoS, ReasonCode};

/// The peer broke the MQTT protocol; the connection is over.
///
/// Returned by `handle_input` of both sessions. The session has already queued
/// what the protocol asks for (an MQTT 5 DISCONNECT with
/// [`ProtocolError::reason_code`], or for a bad CONNECT a CONNACK refusal):
/// flush [`poll_transmit`](crate::client::ClientSession::poll_transmit), then
/// close the transport. Every variant is the peer's fault, never the caller's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The bytes received are not a valid MQTT packet.
    #[error("malformed packet from the peer: {0}")]
    Decode(#[from] DecodeError),
    /// A packet the peer must not send in the current state (a PUBLISH before
    /// CONNECT, a second CONNECT, a CONNACK from a client, PUBREL for a QoS 2
    /// flow that does not exist…).
    #[error("unexpected {packet_type:?} from the peer {context}")]
    UnexpectedPacket {
        /// The packet received.
        packet_type: PacketType,
        /// When it arrived, e.g. "before CONNACK".
        context: &'static str,
    },
    /// An acknowledgement for a packet identifier with nothing outstanding.
    #[error("{packet_type:?} for packet identifier {packet_id}, which has no request outstanding")]
    UnknownPacketId {
        /// The acknowledgement received.
        packet_type: PacketType,
        /// Its packet identifier.
        packet_id: u16,
    },
    /// A SUBACK or UNSUBACK whose reason codes do not match the request's filters one to one.
    #[error("{packet_type:?} {packet_id} carries {got} reason codes for {expected} topic filters")]
    ReasonCountMismatch {
        /// SUBACK or UNSUBACK.
        packet_type: PacketType,
        /// Its packet identifier.
        packet_id: u16,
        /// Number of filters in the request.
        expected: usize,
        /// Number of reason codes received.
        got: usize,
    },
    /// An MQTT 5 topic alias that is 0, above the Topic Alias Maximum we
    /// announced, or used with an empty topic before it was ever set.
    #[error("invalid topic alias {0}")]
    TopicAliasInvalid(u16),
    /// A PUBLISH (or a will) with a QoS this side does not support (QoS 2).
    #[error("QoS {} is not supported", *.0 as u8)]
    QoSNotSupported(QoS),
    /// The peer has more unacknowledged QoS 1 PUBLISHes outstanding than our Receive Maximum.
    #[error("more than {max} unacknowledged QoS 1 publishes (Receive Maximum exceeded)")]
    ReceiveMaximumExceeded {
        /// Our Receive Maximum.
        max: u16,
    },
    /// A packet whose content the specification forbids from this peer (a
    /// client PUBLISH carrying a Subscription Identifier, No Local on a shared
    /// subscription…).
    #[error("{packet_type:?} from the peer {rule}")]
    Forbidden {
        /// The packet received.
        packet_type: PacketType,
        /// What it did that it must not, e.g. "carries a Subscription Identifier".
        rule: &'static str,
    },
    /// An MQTT 3.1.1 CONNECT with an empty client id and CleanSession=0: a
    /// session the client could never resume [MQTT-3.1.3-8].
    #[error("empty client id with CleanSession=0 (a persistent session needs a client id)")]
    ClientIdRejected,
    /// An MQTT 5 CONNECT asking for enhanced authentication (an Authentication
    /// Method), which this side does not support [MQTT-4.12.0-1].
    #[error("enhanced authentication (method {0:?}) is not supported")]
    AuthenticationMethodNotSupported(String),
}

impl ProtocolError {
    /// The MQTT 5 reason code to send in the DISCONNECT for this violation
    /// (in the CONNACK for a CONNECT refused by the protocol).
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            ProtocolError::Decode(e) => e.reason_code(),
            ProtocolError::UnexpectedPacket { .. }
            | ProtocolError::UnknownPacketId { .. }
            | ProtocolError::ReasonCountMismatch { .. } => ReasonCode::PROTOCOL_ERROR,
            ProtocolError::TopicAliasInvalid(_) => ReasonCode::TOPIC_ALIAS_INVALID,
            ProtocolError::QoSNotSupported(_) => ReasonCode::QOS_NOT_SUPPORTED,
            ProtocolError::ReceiveMaximumExceeded { .. } => ReasonCode::RECEIVE_MAXIMUM_EXCEEDED,
            ProtocolError::Forbidden { .. } => ReasonCode::PROTOCOL_ERROR,
            ProtocolError::ClientIdRejected => ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
            ProtocolError::AuthenticationMethodNotSupported(_) => {
                ReasonCode::BAD_AUTHENTICATION_METHOD
            }
        }
    }
}
