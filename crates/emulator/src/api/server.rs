//! The HTTPS listener of the API: TLS, HTTP/1.1 and HTTP/2 (hyper), request
//! authentication, the body limit, and a handler that gets authenticated
//! requests.
//!
//! For each request, in order:
//! 1. the caller is the TLS client certificate when one was presented (it chains
//!    to the emulator CA, or the handshake failed); otherwise the request's SigV4
//!    claim is parsed and admitted (scope, clock, access key): a request with
//!    no signature gets 403 `MissingAuthenticationTokenException`;
//! 2. a `Content-Length` over the limit gets 413 `RequestEntityTooLargeException`
//!    before any of the body is kept; a chunked body is kept up to the limit.
//!    (The rest of a refused body is read and discarded, up to 16 MiB, so that
//!    HTTP/1.1 clients, which send the whole body before reading, get the answer);
//! 3. the signature is verified over the body;
//! 4. the handler answers. Every response, the handler's or a refusal, gets an
//!    `x-amzn-RequestId` header (botocore reports it as `RequestId`). A
//!    handler may instead hang up ([`hang_up`]): the connection is closed with
//!    no response (what AWS's discovery does for an inactive certificate).

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, EXPECT, HeaderValue};
use http::{HeaderMap, Method, Request};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::error::AwsError;
use super::query::parse_query;
use super::sigv4::{Claim, RequestParts, SigV4Policy, StoredCredential};
use super::{ApiResponse, REQUEST_ID_HEADER};
use crate::accept::BoxedStream;
use crate::connection::stopped;
use crate::pki::certificate_id;

/// Looks up an access key id: its secret, session token and expiry.
pub(crate) type CredentialLookup = Arc<dyn Fn(&str) -> Option<StoredCredential> + Send + Sync>;

/// The time now; a parameter so that tests can fix it.
pub(crate) type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The default largest request body: 1 MiB. Operations check their own, smaller
/// limits (a shadow document 8 KB, a publish 128 KB).
pub(crate) const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client may take to send a request's headers (HTTP/1.1).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long in-flight requests may take to finish once the emulator stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The most a refused request's body is read (and discarded) before the
/// answer, so that the client can read the answer; see [`drain`].
const DRAIN_LIMIT: u64 = 16 * 1024 * 1024;

/// How long a refused request's body may take to drain.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The response extension of [`hang_up`]'s answer.
#[derive(Clone, Copy, Debug)]
struct HangUp;

/// What a handler answers to close the connection without a response.
pub(crate) fn hang_up() -> ApiResponse {
    let mut response = http::Response::new(Default::default());
    response.extensions_mut().insert(HangUp);
    response
}

/// The error that makes hyper close a connection without answering.
#[derive(Debug, thiserror::Error)]
#[error("the handler hung up without a response")]
struct HungUp;

/// Who made an authenticated request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Caller {
    /// A SigV4-signed request.
    Credentials {
        /// The access key id that signed.
        access_key_id: String,
        /// The credential scope's service (`iot`, `iotdata`, `execute-api`…).
        signing_name: String,
        /// The credential scope's region.
        region: String,
    },
    /// A request over TLS with a client certificate issued by the emulator CA.
    Certificate {
        /// The certificate's id: lowercase hex SHA-256 of its DER.
        certificate_id: String,
    },
}

/// An authenticated request, as the handler gets it.
#[derive(Clone, Debug)]
pub(crate) struct ApiRequest {
    /// The method.
    pub(crate) method: Method,
    /// The path as received, still percent-encoded (match it with
    /// [`RouteTable`](super::route::RouteTable), which decodes labels).
    pub(crate) raw_path: String,
    /// The query's percent-decoded `(key, value)` pairs, in received order.
    pub(crate) query: Vec<(String, String)>,
    /// The headers.
    pub(crate) headers: HeaderMap,
    /// The whole body (at most the server's limit).
    pub(crate) body: Bytes,
    /// Who made the request.
    pub(crate) caller: Caller,
    /// The id of this request, also sent as `x-amzn-RequestId`.
    pub(crate) request_id: String,
    /// The client's address.
    pub(crate) peer: SocketAddr,
}

impl ApiRequest {
    #[cfg(test)]
    /// The first value of query parameter `key`.
    pub(crate) fn query_param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    #[cfg(test)]
    /// Header `name` as text, if present and printable ASCII.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Answers authenticated requests. Implemented for any
/// `Fn(ApiRequest) -> impl Future<Output = ApiResponse>`.
pub(crate) trait Handler: Send + Sync + 'static {
    /// Answers `request`.
    fn handle(&self, request: ApiRequest)
    -> Pin<Box<dyn Future<Output = ApiResponse> + Send + '_>>;
}

impl<F, Fut> Handler for F
where
    F: Fn(ApiRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ApiResponse> + Send + 'static,
{
    fn handle(
        &self,
        request: ApiRequest,
    ) -> Pin<Box<dyn Future<Output = ApiResponse> + Send + '_>> {
        Box::pin(self(request))
    }
}

/// How the server authenticates and limits requests.
#[derive(Clone)]
pub(crate) struct ApiServerConfig {
    /// The TLS configuration (see [`super::tls::server_config`]).
    pub(crate) tls: Arc<rustls::ServerConfig>,
    /// The access keys the emulator issued.
    pub(crate) credentials: CredentialLookup,
    /// Signing names, region and clock skew accepted.
    pub(crate) policy: SigV4Policy,
    /// The largest request body, in bytes.
    pub(crate) max_body_bytes: usize,
    /// The clock SigV4 dates are checked against.
    pub(crate) clock: Clock,
}

impl ApiServerConfig {
    /// A configuration with the API's SigV4 policy, a 1 MiB body limit and the
    /// system clock.
    pub(crate) fn new(tls: Arc<rustls::ServerConfig>, credentials: CredentialLookup) -> Self {
        ApiServerConfig {
            tls,
            credentials,
            policy: SigV4Policy::api(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            clock: Arc::new(SystemTime::now),
        }
    }
}

impl fmt::Debug for ApiServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiServerConfig")
            .field("policy", &self.policy)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

struct Shared<H> {
    config: ApiServerConfig,
    handler: Arc<H>,
}

/// Serves the API on `listener` until `closing` turns true, then lets
/// in-flight requests finish (at most a few seconds) and returns.
pub(crate) async fn serve<H: Handler>(
    listener: TcpListener,
    config: ApiServerConfig,
    handler: Arc<H>,
    closing: watch::Receiver<bool>,
) {
    let shared = Arc::new(Shared { config, handler });
    let acceptor = TlsAcceptor::from(Arc::clone(&shared.config.tls));
    crate::listener::run(listener, closing.clone(), "api", move |tcp, peer, _| {
        serve_connection(
            Arc::clone(&shared),
            acceptor.clone(),
            tcp,
            peer,
            closing.clone(),
        )
    })
    .await;
}

async fn serve_connection<H: Handler>(
    shared: Arc<Shared<H>>,
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    mut closing: watch::Receiver<bool>,
) {
    let tls = tokio::select! {
        () = stopped(&mut closing) => return,
        handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)) => match handshake {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                tracing::debug!(%peer, "API: TLS handshake failed: {e}");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "API: TLS handshake timed out");
                return;
            }
        },
    };
    let certificate = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|der| certificate_id(der));
    serve_http(shared, tls, certificate, peer, closing).await;
}

/// Serves HTTP on an established TLS connection until it ends or the
/// emulator stops; `certificate`, the id of the client certificate if one was
/// presented, authenticates it.
async fn serve_http<H: Handler, S>(
    shared: Arc<Shared<H>>,
    io: S,
    certificate: Option<String>,
    peer: SocketAddr,
    mut closing: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request: Request<Incoming>| {
        let shared = Arc::clone(&shared);
        let certificate = certificate.clone();
        async move {
            let response = respond(shared, request, certificate, peer).await;
            if response.extensions().get::<HangUp>().is_some() {
                return Err(HungUp);
            }
            Ok(response)
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let finished = tokio::select! {
        result = connection.as_mut() => Some(result),
        () = stopped(&mut closing) => None,
    };
    let result = match finished {
        Some(result) => result,
        None => {
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(SHUTDOWN_GRACE, connection).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::debug!(%peer, "API: a connection outlived the shutdown grace period");
                    return;
                }
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, "API: connection ended with an error: {e}");
    }
}

/// Serves the API on TLS connections another listener accepted (the MQTT
/// port's, for clients that chose ALPN `x-amzn-http-ca`).
#[derive(Clone)]
pub(crate) struct HttpOverTls(Arc<ServeTls>);

/// Serves one TLS connection (its stream, the client certificate's id if
/// any, the peer) until it ends.
type ServeTls = dyn Fn(BoxedStream, Option<String>, SocketAddr) -> Pin<Box<dyn Future<Output = ()> + Send>>
    + Send
    + Sync;

impl HttpOverTls {
    /// Serves HTTP on `tls` (from `peer`, with the client certificate
    /// `certificate` if one was presented) until the connection ends.
    pub(crate) async fn serve(
        &self,
        tls: BoxedStream,
        certificate: Option<String>,
        peer: SocketAddr,
    ) {
        (self.0)(tls, certificate, peer).await;
    }
}

impl fmt::Debug for HttpOverTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HttpOverTls")
    }
}

/// An [`HttpOverTls`] that answers with `handler`, authenticated and limited
/// as `config` says (its TLS configuration is not used: the connection is
/// already established).
pub(crate) fn http_over_tls<H: Handler>(
    config: ApiServerConfig,
    handler: Arc<H>,
    closing: watch::Receiver<bool>,
) -> HttpOverTls {
    let shared = Arc::new(Shared { config, handler });
    HttpOverTls(Arc::new(move |tls, certificate, peer| {
        Box::pin(serve_http(
            Arc::clone(&shared),
            tls,
            certificate,
            peer,
            closing.clone(),
        ))
    }))
}

/// Authenticates, reads the body, calls the handler, stamps the request id.
async fn respond<H: Handler>(
    shared: Arc<Shared<H>>,
    request: Request<Incoming>,
    certificate: Option<String>,
    peer: SocketAddr,
) -> ApiResponse {
    let request_id = new_request_id();
    let method = request.method().clone();
    let raw_path = request.uri().path().to_owned();
    let mut response = match authenticated(&shared, request, certificate, peer, &request_id).await {
        Ok(api_request) => {
            // On its own task, so that a panicking handler costs one 500
            // answer, not the connection.
            let handling = Arc::clone(&shared);
            match tokio::spawn(async move { handling.handler.handle(api_request).await }).await {
                Ok(response) => response,
                Err(e) => {
                    tracing::error!(%peer, %method, path = %raw_path, request_id, "the API handler failed: {e}");
                    AwsError::internal_failure(format!(
                        "The emulator failed to handle this request (request id {request_id}); \
                         its log says why"
                    ))
                    .into_response()
                }
            }
        }
        Err(refusal) => {
            tracing::info!(%peer, %method, path = %raw_path, request_id, "API request refused: {refusal}");
            refusal.into_response()
        }
    };
    tracing::debug!(%peer, %method, path = %raw_path, request_id, status = %response.status(), "API request");
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, id);
    }
    response
}

async fn authenticated<H: Handler>(
    shared: &Shared<H>,
    request: Request<Incoming>,
    certificate: Option<String>,
    peer: SocketAddr,
    request_id: &str,
) -> Result<ApiRequest, AwsError> {
    let config = &shared.config;
    let (head, body) = request.into_parts();
    let query = match parse_query(head.uri.query().unwrap_or_default()) {
        Ok(query) => query,
        Err(refusal) => {
            drain(&head.headers, body).await;
            return Err(refusal);
        }
    };
    let parts = RequestParts::of(&head.method, &head.uri, &head.headers, &query);
    let admitted = match certificate {
        Some(_) => None,
        None => {
            let admission = Claim::parse(&parts).and_then(|claim| {
                let claim = claim.ok_or_else(AwsError::missing_authentication_token)?;
                claim.admit(&config.policy, (config.clock)(), |id| {
                    (config.credentials)(id)
                })
            });
            match admission {
                Ok(admitted) => Some(admitted),
                Err(refusal) => {
                    drain(&head.headers, body).await;
                    return Err(refusal);
                }
            }
        }
    };
    let body = read_body(&head.headers, body, config.max_body_bytes).await?;
    let caller = match (admitted, certificate) {
        (Some(admitted), _) => {
            let verified = admitted.verify(&parts, &body)?;
            Caller::Credentials {
                access_key_id: verified.access_key_id,
                signing_name: verified.signing_name,
                region: verified.region,
            }
        }
        (None, Some(certificate_id)) => Caller::Certificate { certificate_id },
        (None, None) => return Err(AwsError::missing_authentication_token()),
    };
    Ok(ApiRequest {
        raw_path: head.uri.path().to_owned(),
        method: head.method,
        query,
        headers: head.headers,
        body,
        caller,
        request_id: request_id.to_owned(),
        peer,
    })
}

/// Reads the whole body, refusing more than `limit` bytes: at once when
/// `Content-Length` says so, else as soon as the limit is passed. A refused
/// body is still drained (see [`drain`]).
async fn read_body(
    headers: &HeaderMap,
    mut body: Incoming,
    limit: usize,
) -> Result<Bytes, AwsError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        drain(headers, body).await;
        return Err(AwsError::request_entity_too_large(limit));
    }
    let mut collected = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            AwsError::invalid_request(format!("The request body could not be read: {e}"))
        })?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if collected.len() + data.len() > limit {
            drain(headers, body).await;
            return Err(AwsError::request_entity_too_large(limit));
        }
        collected.extend_from_slice(&data);
    }
    Ok(collected.freeze())
}

/// Reads and discards what is left of a refused request's body, at most
/// [`DRAIN_LIMIT`] bytes for at most [`DRAIN_TIMEOUT`]. HTTP/1.1 clients
/// (urllib3, so botocore) send the whole body before they read the answer:
/// closing on unread bytes would reset the connection under them, and they
/// would report a broken connection instead of AWS's error. A client that sent
/// `Expect: 100-continue` waits for the answer instead, and gets it at once
/// (reading the body would make hyper tell it to send the body).
async fn drain(headers: &HeaderMap, mut body: Incoming) {
    let expects_continue = headers
        .get(EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if expects_continue {
        return;
    }
    let discard = async {
        let mut seen = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(data) = frame.data_ref() {
                seen += data.len() as u64;
                if seen > DRAIN_LIMIT {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, discard).await;
}

/// A random request id shaped like AWS's (a version 4 UUID).
pub(crate) fn new_request_id() -> String {
    crate::ids::new_uuid()
}

#[cfg(test)]
mod tests;
