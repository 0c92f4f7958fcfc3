//! The connection state the client reports, and why a connection ended.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use iotcore_mqtt::ReasonCode;

use crate::aws_credentials::CredentialsError;
use crate::transport::Door;

/// The state of the client's connection, as published by [`crate::Client::status`].
///
/// A connection that drops goes `Connected` → `Disconnected { reason }` →
/// `Reconnecting { attempt, next_delay }` → `Connecting` → `Connected`, and
/// the client never gives up until [`crate::Client::close`] makes it `Closed`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// A connection attempt (TCP, TLS, CONNECT) is under way.
    Connecting,
    /// The server accepted the connection (CONNACK success).
    Connected {
        /// Whether the server resumed a stored session.
        session_present: bool,
    },
    /// The connection ended, or an attempt failed; a reconnect follows.
    Disconnected {
        /// What ended it.
        reason: DisconnectReason,
    },
    /// Waiting `next_delay` before connection attempt number `attempt`.
    Reconnecting {
        /// 1 for the first retry after a failure, counting up until a
        /// connection has stayed up long enough to reset the backoff.
        attempt: u32,
        /// How long the client waits before that attempt.
        next_delay: Duration,
    },
    /// The client was closed; it will not connect again.
    Closed,
}

impl ConnectionState {
    /// True in the `Connected` state.
    pub fn is_connected(&self) -> bool {
        matches!(self, ConnectionState::Connected { .. })
    }
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionState::Connecting => f.write_str("connecting"),
            ConnectionState::Connected { session_present } => {
                write!(f, "connected (session present: {session_present})")
            }
            ConnectionState::Disconnected { reason } => write!(f, "disconnected: {reason}"),
            ConnectionState::Reconnecting {
                attempt,
                next_delay,
            } => write!(f, "reconnecting: attempt {attempt} in {next_delay:?}"),
            ConnectionState::Closed => f.write_str("closed"),
        }
    }
}

/// A request the server may answer by closing the connection (AWS IoT Core
/// does this on MQTT 3.1.1 when the policy denies it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// A PUBLISH.
    Publish,
    /// A SUBSCRIBE.
    Subscribe,
}

impl Operation {
    /// The IoT policy action that governs this operation.
    pub fn policy_action(self) -> &'static str {
        match self {
            Operation::Publish => "iot:Publish",
            Operation::Subscribe => "iot:Subscribe",
        }
    }

    /// The IoT policy resource type this operation is checked against.
    pub fn policy_resource(self) -> &'static str {
        match self {
            Operation::Publish => "topic",
            Operation::Subscribe => "topicfilter",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Publish => "PUBLISH",
            Operation::Subscribe => "SUBSCRIBE",
        })
    }
}

/// Why a connection ended or a connection attempt failed.
///
/// Each message says whose side the problem is on and what to check.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// TCP could not connect, or the connection failed with an I/O error.
    #[error("network error: {detail}")]
    Network {
        /// The operating system's description.
        detail: String,
    },
    /// TCP, TLS and CONNACK did not complete within the connect timeout.
    #[error(
        "no CONNACK within {after:?} of starting to connect: the endpoint is unreachable or overloaded"
    )]
    ConnectTimeout {
        /// The per-attempt connect timeout.
        after: Duration,
    },
    /// This client did not trust the server's certificate.
    #[error(
        "the server's certificate is not trusted: {detail}. Check the endpoint name, and the root CA: \
         Amazon Root CA 1 and 3 are built in, a local emulator needs its CA passed to root_ca_pem_file"
    )]
    ServerCertificateUntrusted {
        /// What the certificate verifier reported.
        detail: String,
    },
    /// The server refused this client's certificate during the TLS handshake.
    #[error(
        "the server rejected the client certificate ({detail}): register it and set it ACTIVE in \
         this account and region (or in the emulator)"
    )]
    ClientCertificateRejected {
        /// The TLS alert or error received.
        detail: String,
    },
    /// Another TLS failure.
    #[error("TLS error: {detail}")]
    Tls {
        /// The TLS library's description.
        detail: String,
    },
    /// The server answered CONNECT with a failure code.
    #[error("the server refused the connection with CONNACK {reason}{}", connack_hint(*reason))]
    ConnectionRefused {
        /// The CONNACK reason code (MQTT 3.1.1 codes mapped to MQTT 5).
        reason: ReasonCode,
    },
    /// The server closed the connection after CONNECT without a CONNACK.
    #[error(
        "the server closed the connection before CONNACK: AWS IoT Core does this on MQTT 3.1.1 when \
         the certificate is inactive or its policy does not allow iot:Connect on client/{client_id}"
    )]
    ClosedBeforeConnAck {
        /// The client id that was sent.
        client_id: String,
    },
    /// The server closed the connection right after a publish or subscribe.
    #[error(
        "the server closed the connection right after {operation} {topic:?}: AWS IoT Core does this \
         when the certificate's policy does not allow {} on {}/{topic}; check the policy attached \
         to the certificate",
        operation.policy_action(),
        operation.policy_resource()
    )]
    PolicyDenialSuspected {
        /// The request that preceded the hang-up.
        operation: Operation,
        /// Its topic (publish) or topic filter (subscribe).
        topic: String,
    },
    /// The server closed the connection with no request pending.
    #[error("the server closed the connection")]
    ServerClosed,
    /// The server sent an MQTT 5 DISCONNECT.
    #[error("the server sent DISCONNECT {reason}{}", reason_string.as_deref().map(|s| format!(": {s}")).unwrap_or_default())]
    ServerDisconnect {
        /// The DISCONNECT reason code.
        reason: ReasonCode,
        /// The server's reason string, if any.
        reason_string: Option<String>,
    },
    /// Nothing came back from the server within 1.5 × keep-alive of a PINGREQ.
    #[error(
        "the server did not answer within 1.5 x keep-alive ({keep_alive:?}): the link is half-open \
         or the server is gone"
    )]
    KeepAliveTimeout {
        /// The negotiated keep-alive.
        keep_alive: Duration,
    },
    /// The HTTP proxy could not be reached or broke the tunnel.
    #[error("the HTTP proxy {proxy} failed: {detail}")]
    Proxy {
        /// The proxy's `host:port`.
        proxy: String,
        /// What went wrong.
        detail: String,
    },
    /// The HTTP proxy answered CONNECT with an error status.
    #[error(
        "the HTTP proxy {proxy} refused the tunnel ({detail}){}",
        proxy_hint(*status)
    )]
    ProxyRefused {
        /// The proxy's `host:port`.
        proxy: String,
        /// The HTTP status (407: the proxy wants other credentials).
        status: u16,
        /// The status line and the start of the proxy's answer.
        detail: String,
    },
    /// The server refused the WebSocket upgrade (AWS IoT Core: 403 with
    /// its reason when the signature or the authorizer's token is refused).
    #[error("the server refused the WebSocket upgrade of {door} ({detail}){}", upgrade_hint(*door, *status))]
    UpgradeRefused {
        /// The door tried.
        door: Door,
        /// The HTTP status.
        status: u16,
        /// The status line and the start of the server's answer.
        detail: String,
    },
    /// The WebSocket upgrade failed otherwise.
    #[error("{door}: the WebSocket upgrade failed: {detail}")]
    WebSocket {
        /// The door tried.
        door: Door,
        /// What went wrong.
        detail: String,
    },
    /// The credentials provider gave no credentials for the SigV4 signature.
    #[error("no AWS credentials to sign the WebSocket upgrade: {source}")]
    CredentialsUnavailable {
        /// The provider's error.
        #[source]
        source: CredentialsError,
    },
    /// The server refused the login of a door other than mutual TLS: a
    /// CONNACK failure code, or (`reason: None`) a hang-up before CONNACK.
    #[error(
        "the server refused the connection through {door}{}: {}",
        reason.map(|r| format!(" with CONNACK {r}")).unwrap_or_else(|| " by closing it before CONNACK".into()),
        door.credentials_hint()
    )]
    LoginRefused {
        /// The door tried.
        door: Door,
        /// The CONNACK reason code, if the server sent one.
        reason: Option<ReasonCode>,
    },
    /// The server sent bytes that break MQTT.
    #[error("the server broke the MQTT protocol: {detail}")]
    Protocol {
        /// What was wrong.
        detail: String,
    },
    /// Greengrass discovery, asked for the core to connect to, failed.
    #[error("Greengrass discovery failed: {detail}")]
    DiscoveryFailed {
        /// The service refused the thing (403, 404, or the connection closed
        /// for its certificate), rather than being unreachable.
        refused: bool,
        /// What failed, and what to check.
        detail: String,
    },
}

fn proxy_hint(status: u16) -> &'static str {
    match status {
        407 => {
            ": pass the proxy's user name and password in its URL, http://user:password@host:port"
        }
        403 => ": the proxy does not allow tunnels to this endpoint and port",
        _ => "",
    }
}

fn upgrade_hint(door: Door, status: u16) -> &'static str {
    match (door, status) {
        (Door::WebSocketSigV4, 401 | 403) => {
            ": the signature was refused: check the access key, its secret, the session token of \
             temporary credentials, the region and the clock (SigV4 allows about 5 minutes of skew)"
        }
        (_, 401 | 403) => ": the custom authorizer refused the token or its signature",
        _ => "",
    }
}

fn connack_hint(reason: ReasonCode) -> &'static str {
    match reason {
        ReasonCode::NOT_AUTHORIZED => {
            ": check that the certificate is ACTIVE and its policy allows iot:Connect for this client id"
        }
        ReasonCode::BAD_USER_NAME_OR_PASSWORD => ": check the user name and password",
        ReasonCode::CLIENT_IDENTIFIER_NOT_VALID => {
            ": the client id is not allowed (AWS: at most 128 bytes, no leading '$')"
        }
        ReasonCode::QUOTA_EXCEEDED => ": an account or connection quota was exceeded; retry later",
        _ => "",
    }
}

impl DisconnectReason {
    /// True when retrying cannot help until someone changes a certificate,
    /// a CA or a policy. The initial [`crate::ClientBuilder::connect`] fails
    /// fast on these; a running client keeps retrying with backoff anyway.
    pub fn needs_configuration_change(&self) -> bool {
        match self {
            DisconnectReason::ServerCertificateUntrusted { .. }
            | DisconnectReason::ClientCertificateRejected { .. } => true,
            DisconnectReason::DiscoveryFailed { refused, .. } => *refused,
            DisconnectReason::ProxyRefused { status, .. }
            | DisconnectReason::UpgradeRefused { status, .. } => {
                matches!(status, 400 | 401 | 403 | 404 | 407)
            }
            DisconnectReason::CredentialsUnavailable { source } => {
                !matches!(source, CredentialsError::Provider(_))
            }
            DisconnectReason::LoginRefused { reason, .. } => reason.is_none_or(|r| {
                matches!(
                    r,
                    ReasonCode::NOT_AUTHORIZED | ReasonCode::BAD_USER_NAME_OR_PASSWORD
                )
            }),
            DisconnectReason::ConnectionRefused { reason } => matches!(
                *reason,
                ReasonCode::NOT_AUTHORIZED
                    | ReasonCode::BAD_USER_NAME_OR_PASSWORD
                    | ReasonCode::CLIENT_IDENTIFIER_NOT_VALID
                    | ReasonCode::UNSUPPORTED_PROTOCOL_VERSION
                    | ReasonCode::BANNED
            ),
            _ => false,
        }
    }
}

/// Which connection the client is on, and the last one that began without
/// the broker's stored session: what a request waiting for a reply across a
/// reconnect needs to know (see [`crate::service`]).
///
/// Connections are numbered from 1. The driver calls
/// [`connected`](Self::connected) before it reports `Connected`, so a reader
/// woken by that state change sees the new numbers.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    connections: AtomicU64,
    last_fresh: AtomicU64,
}

impl Sessions {
    /// A connection was accepted; `session_present` as CONNACK said.
    pub(crate) fn connected(&self, session_present: bool) {
        let number = self.connections.fetch_add(1, Ordering::SeqCst) + 1;
        if !session_present {
            self.last_fresh.fetch_max(number, Ordering::SeqCst);
        }
    }

    /// The number of the current (or last) connection; 0 before the first.
    pub(crate) fn current(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }

    /// True when a connection after number `connection` began with a fresh
    /// session: whatever the broker held for the client during the outage
    /// before it (QoS 1 messages not yet delivered) is gone.
    pub(crate) fn fresh_since(&self, connection: u64) -> bool {
        self.last_fresh.load(Ordering::SeqCst) > connection
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_denial_reason_names_the_topic_and_the_policy_action() {
        let reason = DisconnectReason::PolicyDenialSuspected {
            operation: Operation::Subscribe,
            topic: "cmd/dev-1/#".into(),
        };
        let text = reason.to_string();
        assert!(text.contains("\"cmd/dev-1/#\""), "{text}");
        assert!(
            text.contains("iot:Subscribe on topicfilter/cmd/dev-1/#"),
            "{text}"
        );
        assert!(text.contains("policy"), "{text}");
    }

    #[test]
    fn not_authorized_connack_is_a_configuration_problem_and_server_busy_is_not() {
        let denied = DisconnectReason::ConnectionRefused {
            reason: ReasonCode::NOT_AUTHORIZED,
        };
        assert!(denied.needs_configuration_change());
        assert!(denied.to_string().contains("iot:Connect"));
        let busy = DisconnectReason::ConnectionRefused {
            reason: ReasonCode::SERVER_BUSY,
        };
        assert!(!busy.needs_configuration_change());
    }

    #[test]
    fn sessions_tell_whether_a_fresh_session_followed_a_connection() {
        let sessions = Sessions::default();
        assert_eq!(sessions.current(), 0);
        sessions.connected(false);
        assert_eq!(sessions.current(), 1);
        assert!(
            !sessions.fresh_since(1),
            "the first connection follows nothing"
        );
        sessions.connected(true);
        assert!(!sessions.fresh_since(1), "connection 2 resumed the session");
        sessions.connected(false);
        assert!(sessions.fresh_since(1));
        assert!(sessions.fresh_since(2));
        assert!(!sessions.fresh_since(3));
    }
}
