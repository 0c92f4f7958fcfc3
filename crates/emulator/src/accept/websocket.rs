//! MQTT over WebSocket: the HTTP/1.1 `GET /mqtt` upgrade on the MQTT port,
//! served by hyper, authenticated by a presigned SigV4 query; the WebSocket
//! framing after it is tokio-tungstenite's ([`WebSocketBytes`] only turns its
//! binary messages into a byte stream).
//!
//! AWS's rules (docs/aws-iot-core-behaviour.md §1.11; research
//! wave2-protocols.md §1.1–1.2): the path `/mqtt` (`//mqtt`, what the browser
//! SDK sends, too); subprotocol `mqtt` (the CRT SDKs) or `mqttv3.1` (the
//! browser and JS v1 SDKs), echoed; SigV4 with the credential scope service
//! `iotdevicegateway` (or `iotdata`, older clients), exactly the headers named
//! in `X-Amz-SignedHeaders`, the `Host` as received, ±5 minutes of clock skew,
//! and for temporary credentials their `X-Amz-Security-Token`, appended after
//! signing (a presigner that signed it is refused, as AWS refuses it). An
//! upgrade without a signature is for a custom authorizer (when the emulator
//! has one), which decides at CONNECT with the upgrade's headers and query
//! and the CONNECT's username and password. Every
//! refusal is an HTTP 403 (404 for another path, 400 for a request that is not
//! a WebSocket upgrade) with AWS's message, and a log line that says why.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Sink, Stream};
use http::header::{
    CONNECTION, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::{BoxedStream, Door, Identity, Principal};
use crate::api::error::AwsError;
use crate::api::query::parse_query;
use crate::api::server::{Clock, CredentialLookup};
use crate::api::sigv4::{RequestParts, SigV4Policy, authenticate as authenticate_sigv4};
use crate::authorizer::{AuthRequest, HttpContext};

/// How long a client may take to send the upgrade request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The subprotocols accepted, in order of preference: `mqtt` (the CRT SDKs,
/// paho) and `mqttv3.1` (AWS's browser MQTT 3.1.1 client and JS v1).
const SUBPROTOCOLS: [&str; 2] = ["mqtt", "mqttv3.1"];

/// The largest WebSocket message accepted: an MQTT packet's limit plus room.
const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// What the WebSocket door checks signatures with.
#[derive(Clone)]
pub(crate) struct WebSocketAuth {
    /// The access keys the emulator issued.
    pub(crate) credentials: CredentialLookup,
    /// Signing names, region and clock skew accepted.
    pub(crate) policy: SigV4Policy,
    /// The clock `X-Amz-Date` is checked against.
    pub(crate) clock: Clock,
    /// Whether any custom authorizer exists (an unsigned upgrade is then
    /// for one).
    pub(crate) custom_authorizers: Arc<dyn Fn() -> bool + Send + Sync>,
}

impl fmt::Debug for WebSocketAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketAuth")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// A handshake refused: the HTTP answer and why, for the log.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    error: AwsError,
    why: String,
}

impl Refusal {
    fn new(status: StatusCode, error: AwsError, why: impl Into<String>) -> Refusal {
        Refusal {
            status,
            error,
            why: why.into(),
        }
    }

    fn bad_request(why: impl Into<String>) -> Refusal {
        let why = why.into();
        Refusal::new(
            StatusCode::BAD_REQUEST,
            AwsError::invalid_request(why.clone()),
            why,
        )
    }

    /// The answer, which closes the connection: one upgrade per connection.
    fn response(self) -> Response<Full<Bytes>> {
        let mut response = self.error.into_response();
        *response.status_mut() = self.status;
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        response
    }
}

/// A handshake the door accepts.
#[derive(Debug)]
struct Accepted {
    key: HeaderValue,
    subprotocol: &'static str,
    door: Door,
    identity: Identity,
}

/// Serves the upgrade request on `io` (a TLS stream whose first bytes are an
/// HTTP request); on success, the WebSocket's bytes and who signed.
pub(crate) async fn upgrade<S>(
    io: S,
    peer: SocketAddr,
    server_name: Option<String>,
    auth: Arc<WebSocketAuth>,
) -> Option<(BoxedStream, Door, Identity)>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (tx, rx) = oneshot::channel();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let service = service_fn(move |mut request: Request<Incoming>| {
        let (tx, auth) = (Arc::clone(&tx), Arc::clone(&auth));
        let server_name = server_name.clone();
        async move {
            let response = match check(&request, &auth) {
                Ok(mut accepted) => {
                    if let Identity::AtConnect(auth_request) = &mut accepted.identity {
                        auth_request.server_name = server_name.clone();
                    }
                    let on_upgrade = hyper::upgrade::on(&mut request);
                    let response = switching_protocols(&accepted);
                    let sender = tx.lock().unwrap_or_else(PoisonError::into_inner).take();
                    if let Some(sender) = sender {
                        let _ = sender.send((on_upgrade, accepted.door, accepted.identity));
                    }
                    response
                }
                Err(refusal) => {
                    tracing::warn!(
                        %peer,
                        method = %request.method(),
                        path = %request.uri().path(),
                        status = refusal.status.as_u16(),
                        "WebSocket handshake refused: {}",
                        refusal.why
                    );
                    refusal.response()
                }
            };
            Ok::<_, Infallible>(response)
        }
    });
    // No keep-alive setting: hyper would add `connection: close` to the 101,
    // which the CRT refuses; a refusal says `connection: close` itself.
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    if let Err(e) = connection.await {
        tracing::info!(%peer, "WebSocket handshake failed: {e}");
    }
    let (on_upgrade, door, identity) = rx.await.ok()?;
    let upgraded = match on_upgrade.await {
        Ok(upgraded) => upgraded,
        Err(e) => {
            tracing::info!(%peer, "WebSocket upgrade failed: {e}");
            return None;
        }
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES));
    let ws =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
    Some((Box::new(WebSocketBytes::new(ws)), door, identity))
}

/// Checks an upgrade request: path, upgrade headers, subprotocol, signature.
fn check<B>(request: &Request<B>, auth: &WebSocketAuth) -> Result<Accepted, Refusal> {
    let path = request.uri().path();
    if path != "/mqtt" && path != "//mqtt" {
        return Err(Refusal::new(
            StatusCode::NOT_FOUND,
            AwsError::new(
                StatusCode::NOT_FOUND,
                "NotFoundException",
                format!("MQTT over WebSocket is served at /mqtt, not {path}"),
            ),
            format!("the path is {path}, not /mqtt"),
        ));
    }
    let headers = request.headers();
    let upgrade = headers
        .get(UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if request.method() != http::Method::GET || !upgrade {
        return Err(Refusal::bad_request(format!(
            "{} {path} is not a WebSocket upgrade (GET with Upgrade: websocket)",
            request.method()
        )));
    }
    if headers
        .get(SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err(Refusal::bad_request(
            "Sec-WebSocket-Version must be 13 (RFC 6455)",
        ));
    }
    let Some(key) = headers.get(SEC_WEBSOCKET_KEY).cloned() else {
        return Err(Refusal::bad_request("the upgrade has no Sec-WebSocket-Key"));
    };
    let offered: Vec<&str> = headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let Some(subprotocol) = SUBPROTOCOLS
        .into_iter()
        .find(|p| offered.iter().any(|o| o.eq_ignore_ascii_case(p)))
    else {
        return Err(Refusal::bad_request(format!(
            "Sec-WebSocket-Protocol offers {offered:?}; AWS IoT Core speaks \"mqtt\" (or \"mqttv3.1\")"
        )));
    };
    let (door, identity) = authenticate(request, auth)?;
    Ok(Accepted {
        key,
        subprotocol,
        door,
        identity,
    })
}

/// Whether the door takes the upgrade `request`, or why not: [`check`]
/// without what an accepted upgrade carries (the fuzz entry point).
pub(crate) fn check_upgrade<B>(request: &Request<B>, auth: &WebSocketAuth) -> Result<(), String> {
    check(request, auth)
        .map(drop)
        .map_err(|refusal| refusal.why)
}

/// Verifies the presigned SigV4 query of the upgrade request; without one,
/// the connection is for a custom authorizer, if there is any.
fn authenticate<B>(
    request: &Request<B>,
    auth: &WebSocketAuth,
) -> Result<(Door, Identity), Refusal> {
    let forbidden = |error: AwsError, why: String| Refusal::new(StatusCode::FORBIDDEN, error, why);
    let query = parse_query(request.uri().query().unwrap_or_default())
        .map_err(|e| forbidden(e.clone(), e.to_string()))?;
    let parts = RequestParts::of(request.method(), request.uri(), request.headers(), &query);
    let token_sent = query.iter().any(|(k, _)| k == "X-Amz-Security-Token");
    let verified = authenticate_sigv4(&parts, b"", &auth.policy, (auth.clock)(), |id| {
        (auth.credentials)(id)
    });
    match verified {
        Ok(Some(verified)) => Ok((
            Door::WebSocketSigV4,
            Identity::Known(Principal::AccessKey {
                access_key_id: verified.access_key_id,
            }),
        )),
        Ok(None) if (auth.custom_authorizers)() => Ok((
            Door::WebSocketCustomAuth,
            Identity::AtConnect(Box::new(AuthRequest {
                http: Some(http_context(request)),
                ..AuthRequest::default()
            })),
        )),
        Ok(None) => Err(forbidden(
            AwsError::missing_authentication_token(),
            "the upgrade carries no SigV4 signature (X-Amz-Algorithm, X-Amz-Credential, \
             X-Amz-Date, X-Amz-SignedHeaders, X-Amz-Signature)"
                .to_owned(),
        )),
        Err(e) => {
            let mut why = format!("SigV4: {e}");
            if token_sent && e.code() == "InvalidSignatureException" {
                why.push_str(
                    " (X-Amz-Security-Token must be appended after signing, not signed: \
                     AWS IoT refuses a signed token)",
                );
            }
            Err(forbidden(e, why))
        }
    }
}

/// The upgrade's headers (names in lowercase, repeated ones joined with
/// `,`) and query, for a custom authorizer's event.
fn http_context<B>(request: &Request<B>) -> HttpContext {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in request.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push(',');
                v.push_str(&value);
            })
            .or_insert(value);
    }
    HttpContext {
        headers,
        query_string: request
            .uri()
            .query()
            .map_or_else(String::new, |q| format!("?{q}")),
    }
}

/// `101 Switching Protocols` with the accept key and the chosen subprotocol.
fn switching_protocols(accepted: &Accepted) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(accepted.key.as_bytes())) {
        headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    }
    headers.insert(
        SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(accepted.subprotocol),
    );
    response
}

/// A WebSocket's binary messages as a byte stream: each write is one binary
/// message; reads return the messages' bytes in order, however the client cut
/// them. Pings are answered by tungstenite; a text message is an error (MQTT
/// over WebSocket is binary); a close ends the stream.
pub(crate) struct WebSocketBytes<S> {
    ws: WebSocketStream<S>,
    /// What is left of the message being read.
    pending: Bytes,
}

impl<S> WebSocketBytes<S> {
    /// Wraps an established WebSocket.
    pub(crate) fn new(ws: WebSocketStream<S>) -> Self {
        WebSocketBytes {
            ws,
            pending: Bytes::new(),
        }
    }
}

fn io_error(e: tokio_tungstenite::tungstenite::Error) -> io::Error {
    use tokio_tungstenite::tungstenite::Error;
    match e {
        Error::Io(e) => e,
        Error::ConnectionClosed | Error::AlreadyClosed => io::ErrorKind::BrokenPipe.into(),
        other => io::Error::new(io::ErrorKind::InvalidData, other),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WebSocketBytes<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.pending.is_empty() {
            match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(data))) => self.pending = data,
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a text WebSocket message: MQTT over WebSocket uses binary messages",
                    )));
                }
                Some(Ok(Message::Close(_))) | None => return Poll::Ready(Ok(())),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Err(e)) => return Poll::Ready(Err(io_error(e))),
            }
        }
        let n = self.pending.len().min(buf.remaining());
        let chunk = self.pending.split_to(n);
        buf.put_slice(&chunk);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WebSocketBytes<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut ws = Pin::new(&mut self.ws);
        ready!(ws.as_mut().poll_ready(cx)).map_err(io_error)?;
        ws.start_send(Message::Binary(Bytes::copy_from_slice(buf)))
            .map_err(io_error)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(io_error)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_close(cx).map_err(io_error)
    }
}

#[cfg(test)]
mod tests;
