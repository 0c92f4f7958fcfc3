//! Requests the server session refuses.

use crate::EncodeError;

/// Why a [`ServerSession`](super::ServerSession) refused a call from the
/// broker. These are mistakes of the caller, never of the peer; nothing was
/// sent and the session is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The call does not fit the session's state (e.g. `accept` twice, or
    /// `puback` before the connection was accepted).
    #[error("{operation} is not possible while the session is {state}")]
    InvalidState {
        /// The method called.
        operation: &'static str,
        /// The session's state.
        state: &'static str,
    },
    /// An acknowledgement for a packet identifier the client has nothing outstanding on.
    #[error(
        "{operation}: the client has no outstanding request with packet identifier {packet_id}"
    )]
    UnknownPacketId {
        /// The method called.
        operation: &'static str,
        /// The identifier given.
        packet_id: u16,
    },
    /// A SUBACK or UNSUBACK whose reason codes do not match the request's filters one to one.
    #[error("{operation} {packet_id}: {got} reason codes given for {expected} topic filters")]
    ReasonCountMismatch {
        /// The method called.
        operation: &'static str,
        /// The identifier given.
        packet_id: u16,
        /// Number of filters in the request.
        expected: usize,
        /// Number of reason codes given.
        got: usize,
    },
    /// `accept` of an MQTT 5 client that sent an empty client id, without an
    /// Assigned Client Identifier in the CONNACK properties: the server must
    /// give the client the id it assigned [MQTT-3.1.3-7].
    #[error("the client sent an empty client id: accept needs the Assigned Client Identifier")]
    AssignedClientIdRequired,
    /// The packet cannot be encoded (a property string longer than 65,535 bytes…).
    #[error("cannot encode the packet: {0}")]
    Encode(#[from] EncodeError),
}
