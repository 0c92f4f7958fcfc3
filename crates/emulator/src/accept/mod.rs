//! Accepting a connection on the MQTT port: the TLS handshake, the choice of
//! door, authentication. What comes out is a byte stream, the [`Door`] it came
//! through and the [`Principal`] it authenticated as, handed to
//! [`crate::connection::serve`], which serves the MQTT session and knows
//! nothing of TLS.
//!
//! The doors (docs/aws-iot-core-behaviour.md §1.1):
//! * ALPN `x-amzn-http-ca`: the HTTPS API (a device's HTTPS publish);
//! * ALPN `x-amzn-mqtt-ca` or none, with a client certificate: MQTT over
//!   mutual TLS; the principal is the certificate.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::api::server::HttpOverTls;
use crate::connection::{Shared, serve};
use crate::pki::certificate_id;
use crate::tls::{ALPN_HTTP_CA, TlsConfigs};

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A byte stream in both directions: what a session is served over.
pub(crate) trait ByteStream: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> ByteStream for T {}

/// A boxed [`ByteStream`]: TLS, or MQTT over WebSocket over TLS.
pub(crate) type BoxedStream = Box<dyn ByteStream>;

/// What accepting needs.
#[derive(Debug)]
pub(crate) struct Doors {
    /// TLS server configurations, chosen per ClientHello.
    pub(crate) tls: TlsConfigs,
    /// Serves HTTPS to clients that chose ALPN `x-amzn-http-ca`.
    pub(crate) http: HttpOverTls,
}

/// The way a connection came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Door {
    /// MQTT over TLS with a client certificate (ALPN `x-amzn-mqtt-ca` or none).
    MqttCertificate,
}

impl fmt::Display for Door {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Door::MqttCertificate => "MQTT over mutual TLS",
        })
    }
}

/// Who a connection authenticated as: what its policies come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Principal {
    /// A client certificate issued by the emulator's CA.
    Certificate {
        /// The certificate id (lowercase hex SHA-256 of its DER).
        id: String,
    },
}

impl Principal {
    /// What lifecycle events call `principalIdentifier`: the certificate id.
    pub(crate) fn identifier(&self) -> &str {
        match self {
            Principal::Certificate { id } => id,
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Certificate { id } => write!(f, "certificate {id}"),
        }
    }
}

/// A connection accepted and authenticated, ready to be served.
pub(crate) struct Accepted {
    /// The bytes of the MQTT session.
    pub(crate) stream: BoxedStream,
    /// The way it came in.
    pub(crate) door: Door,
    /// Who it is.
    pub(crate) principal: Principal,
}

impl fmt::Debug for Accepted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accepted")
            .field("door", &self.door)
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

/// Accepts one TCP connection of the MQTT port: TLS, then its door; serves
/// the MQTT session it carries (or the HTTPS API) until it ends.
pub(crate) async fn accept(
    shared: Arc<Shared>,
    tcp: TcpStream,
    peer: SocketAddr,
    id: crate::broker::session::ConnectionId,
) {
    // Boxed: the handshake's state is freed once it is done instead of sizing
    // the task of every idle connection.
    let Some(tls) = Box::pin(handshake(&shared.doors.tls, tcp, peer)).await else {
        return;
    };
    let certificate = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|cert| certificate_id(cert));
    if tls.get_ref().1.alpn_protocol() == Some(ALPN_HTTP_CA) {
        shared
            .doors
            .http
            .serve(Box::new(tls), certificate, peer)
            .await;
        return;
    }
    let Some(id_of_certificate) = certificate else {
        // Unreachable while client authentication is mandatory; refuse anyway.
        tracing::warn!(%peer, "TLS client without a certificate refused");
        return;
    };
    let accepted = Accepted {
        stream: Box::new(tls),
        door: Door::MqttCertificate,
        principal: Principal::Certificate {
            id: id_of_certificate,
        },
    };
    serve(shared, accepted, peer, id).await;
}

async fn handshake(
    configs: &TlsConfigs,
    tcp: TcpStream,
    peer: SocketAddr,
) -> Option<TlsStream<TcpStream>> {
    let tls = async {
        let start =
            tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp).await?;
        let config = configs.for_client(&start.client_hello());
        start.into_stream(config).await
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            tracing::info!(%peer, "TLS handshake failed: {e}");
            None
        }
        Err(_) => {
            tracing::info!(%peer, "TLS handshake did not complete within {HANDSHAKE_TIMEOUT:?}");
            None
        }
    }
}
