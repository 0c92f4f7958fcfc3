//! Accepting a connection on the MQTT port: the TLS handshake, the choice of
//! door, authentication. What comes out is a byte stream, the [`Door`] it came
//! through and the [`Principal`] it authenticated as, handed to
//! [`crate::connection::serve`], which serves the MQTT session and knows
//! nothing of TLS.
//!
//! The doors (docs/aws-iot-core-behaviour.md §1.1, §1.11), chosen per
//! connection after the handshake:
//! * ALPN `x-amzn-http-ca`: the HTTPS API (a device's HTTPS publish);
//! * ALPN `mqtt`: MQTT with a custom authorizer, which decides at CONNECT
//!   from the username's query, the password and the TLS server name
//!   ([`crate::authorizer`]);
//! * otherwise the first byte decides ([`what_arrived`]): an MQTT CONNECT
//!   (0x10) is MQTT over mutual TLS, which needs a client certificate (the
//!   principal); an HTTP request is the WebSocket door ([`websocket`]: `GET
//!   /mqtt`, SigV4, the access key is the principal; without a signature a
//!   custom authorizer decides at CONNECT, from the upgrade's headers and
//!   query too); anything else is refused with a log line that says what
//!   arrived.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::api::server::HttpOverTls;
use crate::authorizer::{AuthRequest, Authorization};
use crate::connection::{Shared, serve};
use crate::pki::certificate_id;
use crate::tls::{ALPN_HTTP_CA, ALPN_MQTT, TlsConfigs};
pub(crate) use websocket::WebSocketAuth;

pub(crate) mod websocket;

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client may take to send its first bytes after the handshake.
const FIRST_BYTES_TIMEOUT: Duration = Duration::from_secs(10);

/// How many of the first bytes are read to choose the door, and a refusal's
/// log line shows. The reader that peeks at them stays under the connection
/// for its whole life: a small buffer (reads larger than it go straight
/// through) instead of `BufReader`'s default 8 KiB, which was the largest
/// single cost of an idle connection.
const SHOWN_BYTES: usize = 16;

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
    /// Checks the signatures of WebSocket upgrades.
    pub(crate) websocket: Arc<WebSocketAuth>,
}

/// The way a connection came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Door {
    /// MQTT over TLS with a client certificate (ALPN `x-amzn-mqtt-ca` or none).
    MqttCertificate,
    /// MQTT over WebSocket (`GET /mqtt`), the upgrade signed with SigV4.
    WebSocketSigV4,
    /// MQTT over TLS with ALPN `mqtt`: a custom authorizer.
    MqttCustomAuth,
    /// MQTT over WebSocket without SigV4: a custom authorizer.
    WebSocketCustomAuth,
}

impl fmt::Display for Door {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Door::MqttCertificate => "MQTT over mutual TLS",
            Door::WebSocketSigV4 => "MQTT over WebSocket with SigV4",
            Door::MqttCustomAuth => "MQTT with a custom authorizer (ALPN mqtt)",
            Door::WebSocketCustomAuth => "MQTT over WebSocket with a custom authorizer",
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
    /// An access key from `iotcore credentials create` (what an IAM
    /// identity's keys are on AWS) that signed a WebSocket upgrade.
    AccessKey {
        /// The access key id.
        access_key_id: String,
    },
    /// What a custom authorizer answered for the connection.
    CustomAuthorizer(Arc<Authorization>),
}

impl Principal {
    /// What lifecycle events call `principalIdentifier`: the certificate id,
    /// the access key id, or the custom authorizer's `principalId`.
    pub(crate) fn identifier(&self) -> &str {
        match self {
            Principal::Certificate { id } => id,
            Principal::AccessKey { access_key_id } => access_key_id,
            Principal::CustomAuthorizer(authorization) => &authorization.principal_id,
        }
    }

    /// When a custom authorizer wants to be asked again: its
    /// `refreshAfterInSeconds`.
    pub(crate) fn refresh_after(&self) -> Option<Duration> {
        match self {
            Principal::CustomAuthorizer(authorization) => authorization.refresh_after,
            _ => None,
        }
    }

    /// How long the connection may last: a custom authorizer's
    /// `disconnectAfterInSeconds`.
    pub(crate) fn lifetime(&self) -> Option<Duration> {
        match self {
            Principal::CustomAuthorizer(authorization) => authorization.disconnect_after,
            _ => None,
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Certificate { id } => write!(f, "certificate {id}"),
            Principal::AccessKey { access_key_id } => write!(f, "access key {access_key_id}"),
            Principal::CustomAuthorizer(a) => write!(
                f,
                "principal {} of custom authorizer {}",
                a.principal_id, a.authorizer
            ),
        }
    }
}

/// Who a connection is, as far as accepting it could tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Identity {
    /// Authenticated while accepting (a certificate, a SigV4 signature), or
    /// by a custom authorizer at CONNECT.
    Known(Principal),
    /// A custom authorizer decides at CONNECT, from what the door saw (TLS
    /// server name, the upgrade's headers and query) and the CONNECT.
    AtConnect(Box<AuthRequest>),
}

impl Identity {
    /// The principal, once known.
    pub(crate) fn principal(&self) -> Option<&Principal> {
        match self {
            Identity::Known(principal) => Some(principal),
            Identity::AtConnect(_) => None,
        }
    }

    /// The principal's identifier; empty before a custom authorizer decided.
    pub(crate) fn identifier(&self) -> &str {
        self.principal().map_or("", Principal::identifier)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Known(principal) => principal.fmt(f),
            Identity::AtConnect(_) => f.write_str("a custom authorizer's principal (at CONNECT)"),
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
    pub(crate) identity: Identity,
}

impl fmt::Debug for Accepted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accepted")
            .field("door", &self.door)
            .field("identity", &self.identity)
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
    // Boxed: accepting's state (the TLS stream, kept whole by the future
    // across its steps) is freed once the connection is accepted, instead of
    // sizing the task of every connection for its life.
    let Some(accepted) = Box::pin(arrive(&shared, tcp, peer)).await else {
        return;
    };
    serve(shared, accepted, peer, id).await;
}

/// The TLS handshake and the door of a new connection; `None` when it was
/// refused, or was an HTTPS API connection (served here until it ends).
async fn arrive(shared: &Shared, tcp: TcpStream, peer: SocketAddr) -> Option<Accepted> {
    // Boxed: the handshake's state is freed once it is done.
    let tls = Box::pin(handshake(&shared.doors.tls, tcp, peer)).await?;
    let certificate = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|cert| certificate_id(cert));
    let server_name = tls.get_ref().1.server_name().map(str::to_owned);
    if tls.get_ref().1.alpn_protocol() == Some(ALPN_MQTT) {
        return Some(Accepted {
            stream: Box::new(tls),
            door: Door::MqttCustomAuth,
            identity: Identity::AtConnect(Box::new(AuthRequest {
                server_name,
                ..AuthRequest::default()
            })),
        });
    }
    if tls.get_ref().1.alpn_protocol() == Some(ALPN_HTTP_CA) {
        shared
            .doors
            .http
            .serve(Box::new(tls), certificate, peer)
            .await;
        return None;
    }
    let accepted = Box::pin(choose_door(
        &shared.doors,
        tls,
        certificate,
        server_name,
        peer,
    ))
    .await?;
    tracing::debug!(%peer, door = %accepted.door, principal = %accepted.identity, "connection accepted");
    Some(accepted)
}

/// What the first byte of a connection says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// An MQTT CONNECT (fixed header 0x10).
    Mqtt,
    /// An HTTP request: its method starts with an uppercase ASCII letter.
    Http,
    /// Neither.
    Other,
}

/// Tells MQTT from HTTP by the first byte, as AWS's port 443 must.
pub(crate) fn what_arrived(first: u8) -> Arrival {
    match first {
        0x10 => Arrival::Mqtt,
        b'A'..=b'Z' => Arrival::Http,
        _ => Arrival::Other,
    }
}

/// Peeks at the first bytes and serves the door they ask for (the WebSocket
/// upgrade happens here); `None` when the connection is refused or ends.
async fn choose_door(
    doors: &Doors,
    tls: TlsStream<TcpStream>,
    certificate: Option<String>,
    server_name: Option<String>,
    peer: SocketAddr,
) -> Option<Accepted> {
    let mut stream = BufReader::with_capacity(SHOWN_BYTES, tls);
    let first = match tokio::time::timeout(FIRST_BYTES_TIMEOUT, stream.fill_buf()).await {
        Ok(Ok([])) => {
            tracing::debug!(%peer, "the client closed the connection before sending anything");
            return None;
        }
        Ok(Ok(bytes)) => bytes[0],
        Ok(Err(e)) => {
            tracing::info!(%peer, "reading the first bytes failed: {e}");
            return None;
        }
        Err(_) => {
            tracing::info!(%peer, "closed: nothing received within {FIRST_BYTES_TIMEOUT:?} of the TLS handshake");
            return None;
        }
    };
    match what_arrived(first) {
        Arrival::Mqtt => match certificate {
            Some(id) => Some(Accepted {
                stream: Box::new(stream),
                door: Door::MqttCertificate,
                identity: Identity::Known(Principal::Certificate { id }),
            }),
            None => {
                tracing::warn!(
                    %peer,
                    "refused: MQTT over TLS without a client certificate; present a certificate \
                     issued by this emulator (`iotcore thing create`), or use MQTT over \
                     WebSocket (GET /mqtt, signed with SigV4)"
                );
                None
            }
        },
        Arrival::Http => {
            let (stream, door, identity) =
                websocket::upgrade(stream, peer, server_name, Arc::clone(&doors.websocket)).await?;
            Some(Accepted {
                stream,
                door,
                identity,
            })
        }
        Arrival::Other => {
            let shown = stream.buffer();
            let shown = &shown[..shown.len().min(SHOWN_BYTES)];
            tracing::warn!(
                %peer,
                first_bytes = %hex::encode(shown),
                "refused: neither an MQTT CONNECT (first byte 0x10) nor an HTTP request arrived"
            );
            None
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_byte_tells_mqtt_from_http_from_anything_else() {
        assert_eq!(what_arrived(0x10), Arrival::Mqtt);
        for request in [&b"GET /mqtt"[..], b"POST /topics/t", b"PUT /x"] {
            assert_eq!(what_arrived(request[0]), Arrival::Http);
        }
        // A PUBLISH before CONNECT, a TLS record (a second handshake), text.
        for other in [0x30, 0x16, b'g', 0] {
            assert_eq!(what_arrived(other), Arrival::Other, "{other:#04x}");
        }
    }
}

#[cfg(test)]
mod task_size {
    /// The size of the future an async fn of four owned arguments returns.
    fn future_size<A, B, C, D, Fut>(_: impl FnOnce(A, B, C, D) -> Fut) -> usize {
        std::mem::size_of::<Fut>()
    }

    #[test]
    fn a_connection_task_is_sized_for_serving_not_for_accepting() {
        // Every connection's task holds `accept`'s future for its life: it is
        // `serve`'s future and a few words, nothing of the TLS handshake or
        // the door's choice (4,672 bytes when the TLS stream stayed in it).
        let accept = future_size(super::accept);
        let serve = future_size(super::serve);
        assert!(
            accept <= serve + 256,
            "accept {accept} bytes, serve {serve}"
        );
    }
}
