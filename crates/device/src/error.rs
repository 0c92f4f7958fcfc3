//! Errors of the device client.
//!
//! Two types: [`ConfigError`] for problems found while building the client
//! (always the caller's to fix, before anything touches the network), and the
//! opaque [`Error`] for everything at run time, queried through
//! [`Error::kind`] and the other methods so that its insides can change.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use iotcore_mqtt::ReasonCode;
use iotcore_mqtt::topic::TopicError;

use crate::status::DisconnectReason;

/// A problem with the client's configuration, found before connecting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A certificate or key file could not be read.
    #[error(
        "cannot read the {what} file {}: {source}; check the path and the file's permissions",
        path.display()
    )]
    ReadFile {
        /// "client certificate", "private key" or "root CA".
        what: &'static str,
        /// The path given.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A certificate source holds no `CERTIFICATE` PEM block.
    #[error(
        "{origin} holds no PEM certificate (no \"-----BEGIN CERTIFICATE-----\" block): pass the \
         certificate file, not the key or a CSR"
    )]
    NoCertificate {
        /// The file path or "the in-memory ..." description.
        origin: String,
    },
    /// A PEM source is malformed.
    #[error("{origin} is not valid PEM: {detail}")]
    InvalidPem {
        /// The file path or "the in-memory ..." description.
        origin: String,
        /// The PEM parser's description.
        detail: String,
    },
    /// A key source holds no private key block.
    #[error(
        "{origin} holds no private key (expected a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY \
         PEM block)"
    )]
    NoPrivateKey {
        /// The file path or "the in-memory ..." description.
        origin: String,
    },
    /// The private key is encrypted with a passphrase.
    #[error(
        "the private key in {origin} is encrypted: decrypt it once (`openssl pkey -in <file> -out \
         <new-file>`) and protect the new file with file permissions instead"
    )]
    EncryptedPrivateKey {
        /// The file path or "the in-memory ..." description.
        origin: String,
    },
    /// The private key could not be loaded by the TLS library.
    #[error("the private key in {origin} cannot be used: {detail}")]
    UnsupportedPrivateKey {
        /// The file path or "the in-memory ..." description.
        origin: String,
        /// The TLS library's description.
        detail: String,
    },
    /// The certificate could not be parsed.
    #[error("the certificate in {origin} cannot be used: {detail}")]
    InvalidCertificate {
        /// The file path or "the in-memory ..." description.
        origin: String,
        /// The parser's description.
        detail: String,
    },
    /// The private key is not the one the certificate was issued for.
    #[error(
        "the private key in {key} does not belong to the certificate in {certificate}: pass the key \
         that was created together with this certificate"
    )]
    KeyDoesNotMatchCertificate {
        /// Where the certificate came from.
        certificate: String,
        /// Where the key came from.
        key: String,
    },
    /// The offline store ([`crate::ClientBuilder::offline_store`]) cannot be used.
    #[error(transparent)]
    OfflineStore(#[from] crate::offline_store::StoreError),
    /// `connect()` was called without an endpoint.
    #[error(
        "no endpoint set: call .endpoint(\"<prefix>-ats.iot.<region>.amazonaws.com\") (`aws iot \
         describe-endpoint --endpoint-type iot:Data-ATS` prints it)"
    )]
    MissingEndpoint,
    /// The endpoint (or TLS server name) is neither a DNS name nor an IP address.
    #[error("{endpoint:?} is not a valid DNS name or IP address")]
    InvalidEndpoint {
        /// What was given.
        endpoint: String,
    },
    /// `connect()` was called without a client certificate.
    #[error(
        "no client certificate set: call .client_cert_pem_files(cert, key) or \
         .client_cert_pem(cert, key), or choose another door: .websocket(credentials) or \
         .custom_authorizer(authorizer)"
    )]
    MissingClientCertificate,
    /// The keep-alive is outside what AWS IoT Core accepts.
    #[error(
        "keep-alive {requested:?} is outside AWS IoT Core's range of 30 s to 1200 s; pick a value \
         in range, or call .enforce_aws_limits(false) for another broker"
    )]
    KeepAliveOutOfRange {
        /// What was asked for.
        requested: Duration,
    },
    /// The client id is not acceptable.
    #[error("client id {client_id:?} is invalid: {why}")]
    InvalidClientId {
        /// The client id.
        client_id: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A configured topic (will, telemetry, cloud-to-device) is invalid.
    #[error("the {what} {topic:?} is invalid: {source}")]
    InvalidTopic {
        /// Which topic setting.
        what: &'static str,
        /// The topic.
        topic: String,
        /// What is wrong with it.
        #[source]
        source: TopicError,
    },
    /// The persistent-session expiry is longer than the broker allows.
    #[error(
        "session expiry {requested:?} is longer than AWS IoT Core's maximum of 7 days (604800 s)"
    )]
    SessionExpiryTooLong {
        /// What was asked for.
        requested: Duration,
    },
    /// The proxy URL cannot be used.
    #[error("the proxy URL {url:?} cannot be used: {why}")]
    InvalidProxy {
        /// The URL, its password hidden.
        url: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The WebSocket door with SigV4 needs the endpoint's region.
    #[error(
        "no region to sign for: call .region(\"<region>\") (it is read from endpoints of the \
         form …iot.<region>.amazonaws.com)"
    )]
    MissingRegion,
    /// A reconnect, queue or buffer setting is out of range.
    #[error("invalid setting {setting}: {why}")]
    InvalidSetting {
        /// The builder method.
        setting: &'static str,
        /// What is wrong.
        why: &'static str,
    },
}

/// What kind of failure an [`Error`] is, and so whose move it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration is wrong ([`ConfigError`]); fix the builder call.
    Config,
    /// The request breaks a protocol or AWS limit (topic, payload size, QoS);
    /// nothing was sent. Fix the request.
    InvalidRequest,
    /// A QoS 0 publish while the client is not connected; it was dropped.
    /// Publish with QoS 1 to have it queued, or wait for `Connected`.
    Offline,
    /// The offline queue is full; the new request was refused. Slow down or
    /// raise the bounds.
    OfflineQueueFull,
    /// The initial connection failed with a problem that retrying cannot fix
    /// (untrusted server certificate, rejected client certificate, CONNACK
    /// "not authorized"). See [`Error::disconnect_reason`].
    ConnectRefused,
    /// The initial connection did not succeed within the configured attempts
    /// or time. See [`Error::disconnect_reason`] for the last failure.
    ConnectFailed,
    /// The server answered the request with a failure reason code.
    Rejected,
    /// The connection dropped before a QoS 0 publish was written.
    ConnectionLost,
    /// The client is closed; no more requests are accepted.
    Closed,
}

/// An error from the device client.
///
/// Opaque on purpose: ask [`Error::kind`] what happened and whose move it
/// is, and the other methods for details; the message (`Display`) says what
/// to do.
pub struct Error {
    inner: Box<Inner>,
}

#[derive(Debug, thiserror::Error)]
enum Inner {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("topic {topic:?} is invalid: {source}; nothing was sent")]
    InvalidTopic {
        topic: String,
        #[source]
        source: TopicError,
    },
    #[error(
        "payload of {size} bytes for {topic:?} exceeds the limit of {max} bytes; nothing was sent"
    )]
    PayloadTooLarge {
        topic: String,
        size: usize,
        max: usize,
    },
    #[error("QoS 2 is not supported by AWS IoT Core; use QoS 0 or 1")]
    QoSNotSupported,
    #[error("the request for {topic:?} cannot be sent: {detail}")]
    Unsendable { topic: String, detail: String },
    #[error(
        "not connected: the QoS 0 publish to {topic:?} was dropped; publish with QoS 1 to queue it \
         while offline, or wait for the Connected status"
    )]
    Offline { topic: String },
    #[error(
        "the offline queue is full ({messages} of {max_messages} messages, {bytes} of {max_bytes} \
         bytes): the request for {topic:?} was refused; wait for the connection or raise \
         .offline_queue_limits()"
    )]
    OfflineQueueFull {
        topic: String,
        messages: usize,
        max_messages: usize,
        bytes: usize,
        max_bytes: usize,
    },
    #[error("connection refused and retrying will not help: {reason}")]
    ConnectRefused { reason: DisconnectReason },
    #[error("could not connect after {attempts} attempts in {elapsed:?}; last failure: {reason}")]
    ConnectFailed {
        attempts: u32,
        elapsed: Duration,
        reason: DisconnectReason,
    },
    #[error("the server rejected the {operation} for {topic:?} with reason {reason}")]
    Rejected {
        operation: &'static str,
        topic: String,
        reason: ReasonCode,
    },
    #[error("the connection dropped before the QoS 0 publish to {topic:?} was written: {reason}")]
    ConnectionLost {
        topic: String,
        reason: DisconnectReason,
    },
    #[error("the client is closed")]
    Closed,
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match &*self.inner {
            Inner::Config(_) => ErrorKind::Config,
            Inner::InvalidTopic { .. }
            | Inner::PayloadTooLarge { .. }
            | Inner::QoSNotSupported
            | Inner::Unsendable { .. } => ErrorKind::InvalidRequest,
            Inner::Offline { .. } => ErrorKind::Offline,
            Inner::OfflineQueueFull { .. } => ErrorKind::OfflineQueueFull,
            Inner::ConnectRefused { .. } => ErrorKind::ConnectRefused,
            Inner::ConnectFailed { .. } => ErrorKind::ConnectFailed,
            Inner::Rejected { .. } => ErrorKind::Rejected,
            Inner::ConnectionLost { .. } => ErrorKind::ConnectionLost,
            Inner::Closed => ErrorKind::Closed,
        }
    }

    /// The topic or topic filter of the request that failed, if any.
    pub fn topic(&self) -> Option<&str> {
        match &*self.inner {
            Inner::InvalidTopic { topic, .. }
            | Inner::PayloadTooLarge { topic, .. }
            | Inner::Unsendable { topic, .. }
            | Inner::Offline { topic }
            | Inner::OfflineQueueFull { topic, .. }
            | Inner::Rejected { topic, .. }
            | Inner::ConnectionLost { topic, .. } => Some(topic),
            _ => None,
        }
    }

    /// The server's reason code, for [`ErrorKind::Rejected`].
    pub fn reason_code(&self) -> Option<ReasonCode> {
        match &*self.inner {
            Inner::Rejected { reason, .. } => Some(*reason),
            Inner::ConnectRefused {
                reason: DisconnectReason::ConnectionRefused { reason },
            } => Some(*reason),
            _ => None,
        }
    }

    /// Why the connection attempt failed or the connection dropped.
    pub fn disconnect_reason(&self) -> Option<&DisconnectReason> {
        match &*self.inner {
            Inner::ConnectRefused { reason }
            | Inner::ConnectFailed { reason, .. }
            | Inner::ConnectionLost { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// The configuration problem, for [`ErrorKind::Config`].
    pub fn config_error(&self) -> Option<&ConfigError> {
        match &*self.inner {
            Inner::Config(e) => Some(e),
            _ => None,
        }
    }

    /// True when the same request may succeed later without any change
    /// (offline, queue full, connection lost).
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::Offline | ErrorKind::OfflineQueueFull | ErrorKind::ConnectionLost
        )
    }

    pub(crate) fn invalid_topic(topic: &str, source: TopicError) -> Error {
        Inner::InvalidTopic {
            topic: topic.to_owned(),
            source,
        }
        .into()
    }

    pub(crate) fn payload_too_large(topic: &str, size: usize, max: usize) -> Error {
        Inner::PayloadTooLarge {
            topic: topic.to_owned(),
            size,
            max,
        }
        .into()
    }

    pub(crate) fn qos_not_supported() -> Error {
        Inner::QoSNotSupported.into()
    }

    pub(crate) fn unsendable(topic: &str, detail: impl fmt::Display) -> Error {
        Inner::Unsendable {
            topic: topic.to_owned(),
            detail: detail.to_string(),
        }
        .into()
    }

    pub(crate) fn offline(topic: &str) -> Error {
        Inner::Offline {
            topic: topic.to_owned(),
        }
        .into()
    }

    pub(crate) fn offline_queue_full(topic: &str, full: crate::offline_queue::QueueFull) -> Error {
        Inner::OfflineQueueFull {
            topic: topic.to_owned(),
            messages: full.messages,
            max_messages: full.max_messages,
            bytes: full.bytes,
            max_bytes: full.max_bytes,
        }
        .into()
    }

    pub(crate) fn connect_refused(reason: DisconnectReason) -> Error {
        Inner::ConnectRefused { reason }.into()
    }

    pub(crate) fn connect_failed(
        attempts: u32,
        elapsed: Duration,
        reason: DisconnectReason,
    ) -> Error {
        Inner::ConnectFailed {
            attempts,
            elapsed,
            reason,
        }
        .into()
    }

    pub(crate) fn rejected(operation: &'static str, topic: &str, reason: ReasonCode) -> Error {
        Inner::Rejected {
            operation,
            topic: topic.to_owned(),
            reason,
        }
        .into()
    }

    pub(crate) fn connection_lost(topic: &str, reason: DisconnectReason) -> Error {
        Inner::ConnectionLost {
            topic: topic.to_owned(),
            reason,
        }
        .into()
    }

    pub(crate) fn closed() -> Error {
        Inner::Closed.into()
    }
}

impl From<Inner> for Error {
    fn from(inner: Inner) -> Error {
        Error {
            inner: Box::new(inner),
        }
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Error {
        Inner::Config(e).into()
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind())
            .field("detail", &self.inner)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_send_sync_and_small() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Error>();
        assert_send_sync::<ConfigError>();
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn rejected_error_exposes_topic_and_reason_code() {
        let e = Error::rejected("publish", "dt/x", ReasonCode::NOT_AUTHORIZED);
        assert_eq!(e.kind(), ErrorKind::Rejected);
        assert_eq!(e.topic(), Some("dt/x"));
        assert_eq!(e.reason_code(), Some(ReasonCode::NOT_AUTHORIZED));
        assert!(!e.is_transient());
        assert!(e.to_string().contains("Not authorized"), "{e}");
    }
}
