//! Greengrass client devices: discovery of the core devices a device may
//! connect to.
//!
//! [`discover`] asks AWS IoT Greengrass's discovery API
//! (`GET /greengrass/discover/thing/<thing>`, mutual TLS with the device's IoT
//! certificate) which core devices the thing is associated with, their
//! local brokers' addresses and the CAs of those brokers' certificates. The
//! answer ([`DiscoverResponse`]) lists them in the order to try them:
//! [`DiscoverResponse::candidates`] walks every (group, core, address).
//!
//! A refusal is a typed [`DiscoveryError`] that says what to check: the
//! `greengrass:Discover` policy (403), the association and the core's
//! connectivity information (404), the certificate's status and attachment
//! (the connection closed unanswered).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use iotcore::Identity;
//! use iotcore::greengrass::{DiscoveryEndpoint, discover};
//!
//! let identity = Identity::from_files("dev1.cert.pem".as_ref(), "dev1.private.key".as_ref())?;
//! // AWS: greengrass-ats.iot.<region>.amazonaws.com:443 with ALPN x-amzn-http-ca.
//! let endpoint = DiscoveryEndpoint::aws("eu-west-1");
//! // The emulator: its MQTT port with that ALPN (or its API port without), its CA.
//! # let _ = endpoint;
//! let endpoint = DiscoveryEndpoint::new("localhost", 8883)
//!     .alpn(true)
//!     .root_ca_pem_file("dev1/root-ca.pem")?;
//! let response = discover(&identity, &endpoint, "dev1").await?;
//! for (group, core, address) in response.candidates() {
//!     println!(
//!         "{} at {}:{} ({} CAs)",
//!         core.thing_arn, address.host_address, address.port, group.cas.len()
//!     );
//! }
//! # Ok(()) }
//! ```

mod error;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use rustls::pki_types::CertificateDer;

pub use error::DiscoveryError;
pub use iotcore_model::greengrass::{ConnectivityInfo, Core, DiscoverResponse, GgGroup};

use crate::credentials::{self, Identity};
use crate::status::DisconnectReason;
use crate::transport::tcp;
use crate::transport::tls::{TlsSetup, classify_io_error, client_config, server_name};

/// The ALPN protocol of AWS IoT's HTTPS endpoints with client certificates on
/// port 443 (discovery's too).
pub const AWS_HTTP_ALPN: &[u8] = b"x-amzn-http-ca";

/// How long [`discover`] waits for its answer by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The most of a response body read (a discovery response is a few KB).
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The most of an unexpected body kept for an error message.
const MAX_ERROR_BODY_CHARS: usize = 512;

/// A core device's address that a client connected to
/// ([`crate::Client::greengrass_core`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreAddress {
    /// The core device's thing ARN.
    pub core_thing_arn: String,
    /// The host from its connectivity information.
    pub host: String,
    /// The port.
    pub port: u16,
}

/// Where discovery is asked, and how the TLS connection is set up.
#[derive(Debug, Clone)]
pub struct DiscoveryEndpoint {
    host: String,
    port: u16,
    server_name: Option<String>,
    alpn: Option<bool>,
    roots: Vec<CertificateDer<'static>>,
    amazon_roots: bool,
    timeout: Duration,
}

impl DiscoveryEndpoint {
    /// AWS's discovery endpoint in `region`:
    /// `greengrass-ats.iot.<region>.amazonaws.com`, port 443 with ALPN
    /// `x-amzn-http-ca`, verified against Amazon's root CAs.
    pub fn aws(region: &str) -> DiscoveryEndpoint {
        DiscoveryEndpoint::new(format!("greengrass-ats.iot.{region}.amazonaws.com"), 443)
    }

    /// `host:port`. ALPN `x-amzn-http-ca` is offered on port 443 only (AWS's
    /// port 8443 takes none; [`DiscoveryEndpoint::alpn`] changes it); the
    /// server name (SNI, and the name its certificate must carry) is `host`;
    /// Amazon's root CAs are trusted, plus any added.
    pub fn new(host: impl Into<String>, port: u16) -> DiscoveryEndpoint {
        DiscoveryEndpoint {
            host: host.into(),
            port,
            server_name: None,
            alpn: None,
            roots: Vec::new(),
            amazon_roots: true,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The port (443 offers ALPN unless [`DiscoveryEndpoint::alpn`] says otherwise).
    pub fn port(mut self, port: u16) -> DiscoveryEndpoint {
        self.port = port;
        self
    }

    /// Offer ALPN `x-amzn-http-ca` (or not), whatever the port.
    pub fn alpn(mut self, offer: bool) -> DiscoveryEndpoint {
        self.alpn = Some(offer);
        self
    }

    /// The server name sent as SNI and in `Host`, and verified against the
    /// server's certificate, when it is not the host connected to (e.g. in
    /// regions whose discovery host differs).
    pub fn server_name(mut self, name: impl Into<String>) -> DiscoveryEndpoint {
        self.server_name = Some(name.into());
        self
    }

    /// Also trusts the CA certificates in PEM file `path` (the emulator's CA).
    pub fn root_ca_pem_file(mut self, path: impl AsRef<Path>) -> Result<Self, DiscoveryError> {
        self.roots
            .extend(credentials::roots_from_file(path.as_ref())?);
        Ok(self)
    }

    /// Also trusts the CA certificates in PEM text `pem`.
    pub fn root_ca_pem(mut self, pem: impl AsRef<[u8]>) -> Result<Self, DiscoveryError> {
        self.roots
            .extend(credentials::roots_from_pem(pem.as_ref())?);
        Ok(self)
    }

    /// Whether Amazon Root CA 1 and 3 are trusted (yes by default).
    pub fn amazon_root_cas(mut self, trust: bool) -> DiscoveryEndpoint {
        self.amazon_roots = trust;
        self
    }

    /// How long to wait for the whole exchange ([`DEFAULT_TIMEOUT`] by default).
    pub fn timeout(mut self, timeout: Duration) -> DiscoveryEndpoint {
        self.timeout = timeout;
        self
    }

    /// The discovery host.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    fn name(&self) -> &str {
        self.server_name.as_deref().unwrap_or(&self.host)
    }

    fn offers_alpn(&self) -> bool {
        self.alpn.unwrap_or(self.port == 443)
    }

    fn tls(&self, identity: &Identity) -> Result<TlsSetup, DiscoveryError> {
        let mut roots = if self.amazon_roots {
            credentials::amazon_roots()?
        } else {
            Vec::new()
        };
        roots.extend(self.roots.iter().cloned());
        let alpn = self.offers_alpn().then_some(AWS_HTTP_ALPN);
        Ok(TlsSetup {
            config: client_config(Some(identity), &roots, alpn)?,
            server_name: server_name(self.name())?,
        })
    }
}

/// Asks `endpoint` which Greengrass core devices thing `thing` may connect
/// to, as `identity` (the thing's IoT certificate and key).
///
/// Fails with [`DiscoveryError::Forbidden`] (403),
/// [`DiscoveryError::NotFound`] (404) or [`DiscoveryError::ConnectionClosed`]
/// (no answer: the certificate), each saying what to check; with
/// [`DiscoveryError::Tls`], [`DiscoveryError::Network`] or
/// [`DiscoveryError::Timeout`] when the endpoint cannot be talked to; with
/// [`DiscoveryError::InvalidResponse`] when a 200 is not a discovery response.
pub async fn discover(
    identity: &Identity,
    endpoint: &DiscoveryEndpoint,
    thing: &str,
) -> Result<DiscoverResponse, DiscoveryError> {
    let tls = endpoint.tls(identity)?;
    match tokio::time::timeout(endpoint.timeout, exchange(&tls, endpoint, thing)).await {
        Ok(result) => result,
        Err(_) => Err(DiscoveryError::Timeout {
            endpoint: endpoint.address(),
            seconds: endpoint.timeout.as_secs(),
        }),
    }
}

/// One GET over a new TLS connection, and its answer read.
async fn exchange(
    tls: &TlsSetup,
    endpoint: &DiscoveryEndpoint,
    thing: &str,
) -> Result<DiscoverResponse, DiscoveryError> {
    let closed = |reason: DisconnectReason| refusal(reason, endpoint, thing);
    let tcp = tcp::connect(&endpoint.host, endpoint.port, None)
        .await
        .map_err(closed)?;
    let stream = tls.handshake(tcp).await.map_err(closed)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| http_failure(&e, endpoint, thing))?;
    let driving = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("discovery connection ended: {e}");
        }
    });
    let path = format!(
        "/greengrass/discover/thing/{}",
        utf8_percent_encode(thing, NON_ALPHANUMERIC)
    );
    let request = Request::get(path)
        .header(header::HOST, endpoint.name())
        .body(Empty::<Bytes>::new())
        .map_err(|e| DiscoveryError::InvalidResponse {
            detail: format!("cannot build the request: {e}"),
        })?;
    let answer = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| http_failure(&e, endpoint, thing))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|e| match e.downcast::<hyper::Error>() {
                Ok(e) => http_failure(&e, endpoint, thing),
                Err(e) => DiscoveryError::InvalidResponse {
                    detail: e.to_string(),
                },
            })?
            .to_bytes();
        Ok::<_, DiscoveryError>((status, body))
    }
    .await;
    driving.abort();
    let (status, body) = answer?;
    tracing::debug!(
        thing,
        status = status.as_u16(),
        "Greengrass discovery answered"
    );
    match status {
        StatusCode::OK => {
            serde_json::from_slice(&body).map_err(|e| DiscoveryError::InvalidResponse {
                detail: e.to_string(),
            })
        }
        StatusCode::FORBIDDEN => Err(DiscoveryError::Forbidden {
            thing: thing.to_owned(),
        }),
        StatusCode::NOT_FOUND => Err(DiscoveryError::NotFound {
            thing: thing.to_owned(),
        }),
        status => Err(DiscoveryError::Status {
            status: status.as_u16(),
            body: String::from_utf8_lossy(&body)
                .chars()
                .take(MAX_ERROR_BODY_CHARS)
                .collect(),
        }),
    }
}

/// The error of a connection that failed before an answer.
fn refusal(reason: DisconnectReason, endpoint: &DiscoveryEndpoint, thing: &str) -> DiscoveryError {
    match reason {
        DisconnectReason::ClientCertificateRejected { detail } => {
            DiscoveryError::ConnectionClosed {
                thing: thing.to_owned(),
                detail: format!("the server refused the client certificate: {detail}"),
            }
        }
        DisconnectReason::ServerCertificateUntrusted { detail }
        | DisconnectReason::Tls { detail } => DiscoveryError::Tls { detail },
        other => DiscoveryError::Network {
            endpoint: endpoint.address(),
            detail: other.to_string(),
        },
    }
}

/// The error of an HTTP exchange that broke off: a connection closed (or a
/// certificate refused) before the answer is [`DiscoveryError::ConnectionClosed`].
fn http_failure(e: &hyper::Error, endpoint: &DiscoveryEndpoint, thing: &str) -> DiscoveryError {
    let io = std::error::Error::source(e).and_then(|s| s.downcast_ref::<std::io::Error>());
    let closed = e.is_incomplete_message()
        || e.is_closed()
        || io.is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
            )
        });
    if closed {
        return DiscoveryError::ConnectionClosed {
            thing: thing.to_owned(),
            detail: io.map_or_else(|| e.to_string(), ToString::to_string),
        };
    }
    match io {
        Some(io) => refusal(classify_io_error(io), endpoint, thing),
        None => DiscoveryError::Network {
            endpoint: endpoint.address(),
            detail: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpn_is_offered_on_443_unless_told_otherwise() {
        let aws = DiscoveryEndpoint::aws("eu-west-1");
        assert_eq!(
            aws.address(),
            "greengrass-ats.iot.eu-west-1.amazonaws.com:443"
        );
        assert!(aws.offers_alpn());
        assert!(!aws.clone().port(8443).offers_alpn());
        assert!(
            DiscoveryEndpoint::new("localhost", 8883)
                .alpn(true)
                .offers_alpn()
        );
        assert!(!aws.alpn(false).offers_alpn());
    }

    #[test]
    fn the_server_name_defaults_to_the_host() {
        let endpoint = DiscoveryEndpoint::new("10.0.0.5", 8443);
        assert_eq!(endpoint.name(), "10.0.0.5");
        let endpoint = endpoint.server_name("greengrass-ats.iot.cn-north-1.amazonaws.com.cn");
        assert_eq!(
            endpoint.name(),
            "greengrass-ats.iot.cn-north-1.amazonaws.com.cn"
        );
    }

    #[test]
    fn errors_say_what_to_check() {
        let forbidden = DiscoveryError::Forbidden {
            thing: "dev1".into(),
        };
        assert!(forbidden.to_string().contains("greengrass:Discover"));
        assert!(forbidden.to_string().contains(":thing/dev1"));
        let not_found = DiscoveryError::NotFound {
            thing: "dev1".into(),
        };
        assert!(not_found.to_string().contains("associate"));
        let closed = DiscoveryError::ConnectionClosed {
            thing: "dev1".into(),
            detail: "eof".into(),
        };
        assert!(closed.to_string().contains("ACTIVE and attached"));
    }
}
