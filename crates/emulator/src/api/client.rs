//! A SigV4-signed HTTPS client for a running emulator's API.
//!
//! It lives in the emulator crate, not in the CLI, so that the `iotcore`
//! command, the emulator's own tests and any Rust test of a user's can share
//! one client that signs exactly as the server verifies (both sides use the
//! `aws-sigv4` crate through one function), without adding HTTP or signing
//! dependencies to the CLI.
//!
//! ```no_run
//! # async fn demo(ca_pem: &str) -> Result<(), iotcore_emulator::api::client::ApiClientError> {
//! use iotcore_emulator::api::client::{ApiClient, ApiCredentials, Method, encode_label};
//!
//! let client = ApiClient::new(
//!     "https://127.0.0.1:8443",
//!     ca_pem,
//!     ApiCredentials::new("AKIDEXAMPLE", "secret"),
//! )?;
//! let thing = client
//!     .call(Method::GET, &format!("/things/{}", encode_label("my thing")), None)
//!     .await?;
//! println!("{thing}");
//! # Ok(())
//! # }
//! ```
//!
//! Each call opens one TLS connection (HTTP/1.1), which is what a command-line
//! tool needs; it trusts only the emulator's CA. A non-2xx answer becomes
//! [`ApiClientError::Service`] with AWS's error code and message, read with
//! botocore's rules (code from `x-amzn-ErrorType`, else the body's `__type` or
//! `code`; message from `message` or `Message`).

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use aws_sigv4::http_request::{SignableBody, SignableRequest};
use bytes::Bytes;
use http::header::{HOST, HeaderName, HeaderValue, USER_AGENT};
use http::uri::PathAndQuery;
use http::{HeaderMap, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::sigv4::{Scope, SigningKey, sign_v4};

/// The HTTP method type [`ApiClient::call`] takes.
pub use http::Method;

/// The region requests are signed for unless [`ApiClient::with_region`] says otherwise.
pub const DEFAULT_REGION: &str = "us-east-1";

/// The signing name of AWS IoT's control plane.
pub const CONTROL_PLANE_SIGNING_NAME: &str = "iot";

/// The largest response body read: 64 MiB.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Characters a path label keeps unencoded: RFC 3986's unreserved set.
const LABEL_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes `label` for one path segment or query value, as AWS SDKs
/// do: everything but `A-Z a-z 0-9 - _ . ~` is encoded, `/` as `%2F`, `$` as `%24`.
pub fn encode_label(label: &str) -> String {
    utf8_percent_encode(label, LABEL_ENCODE).to_string()
}

/// An access key to sign requests with.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiCredentials {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token of temporary credentials.
    pub session_token: Option<String>,
}

impl ApiCredentials {
    /// Long-term credentials: an access key id and its secret.
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        ApiCredentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
        }
    }
}

impl fmt::Debug for ApiCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// An error answer of the API: AWS's error code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceError {
    /// The HTTP status.
    pub status: StatusCode,
    /// AWS's error code, e.g. `ResourceNotFoundException`.
    pub code: String,
    /// The message.
    pub message: String,
    /// The `x-amzn-RequestId` of the answer.
    pub request_id: Option<String>,
    /// The JSON body (`Null` if the body was not JSON).
    pub body: Value,
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ServiceError {}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiClientError {
    /// The endpoint URL is not `https://host[:port]`.
    #[error("invalid API endpoint {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The CA certificate PEM holds no usable certificate.
    #[error("the emulator CA certificate cannot be used: {0}")]
    Ca(String),
    /// The path, a header or the body cannot be sent.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The request could not be signed.
    #[error("cannot sign the request: {0}")]
    Signing(String),
    /// The TCP connection failed (is the emulator running with its API on?).
    #[error("cannot connect to {endpoint}: {source}")]
    Connect {
        /// `host:port`.
        endpoint: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The TLS handshake failed (is the CA the emulator's?).
    #[error("TLS handshake with {endpoint} failed: {source}")]
    Tls {
        /// `host:port`.
        endpoint: String,
        /// The TLS error.
        source: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("HTTP exchange with {endpoint} failed: {source}")]
    Http {
        /// `host:port`.
        endpoint: String,
        /// hyper's error.
        source: hyper::Error,
    },
    /// The answer could not be read or is not the JSON expected.
    #[error("unreadable answer ({status}): {reason}")]
    InvalidResponse {
        /// The HTTP status.
        status: StatusCode,
        /// What is wrong.
        reason: String,
    },
    /// The API answered with an AWS error.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// A whole response: status, headers and body.
#[derive(Clone, Debug)]
pub struct RawResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl RawResponse {
    /// `Ok(self)` for a 2xx answer, the AWS error it carries otherwise.
    pub fn error_for_status(self) -> Result<RawResponse, ServiceError> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(service_error(&self))
        }
    }
}

/// A signed client of one emulator's HTTPS API.
#[derive(Clone)]
pub struct ApiClient {
    /// `host[:port]` as in the URL: the `Host` header.
    authority: String,
    /// Host without brackets, for TCP.
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    connector: TlsConnector,
    credentials: ApiCredentials,
    region: String,
    signing_name: String,
}

impl fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiClient")
            .field("authority", &self.authority)
            .field("credentials", &self.credentials)
            .field("region", &self.region)
            .field("signing_name", &self.signing_name)
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// A client of the API at `base_url` (`https://127.0.0.1:PORT`), trusting
    /// the CA in `ca_pem` only, signing with `credentials` for the `iot`
    /// service in [`DEFAULT_REGION`].
    pub fn new(
        base_url: &str,
        ca_pem: &str,
        credentials: ApiCredentials,
    ) -> Result<ApiClient, ApiClientError> {
        let invalid = |reason: &str| ApiClientError::InvalidUrl {
            url: base_url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = base_url
            .parse()
            .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
        if uri.scheme_str() != Some("https") {
            return Err(invalid("the scheme must be https"));
        }
        if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
            return Err(invalid("the URL must not have a path or query"));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| invalid("the URL has no host"))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = authority.port_u16().unwrap_or(443);
        let server_name = ServerName::try_from(host.clone())
            .map_err(|e| invalid(&format!("the host is not a DNS name or IP address: {e}")))?;
        let connector = TlsConnector::from(client_config(ca_pem)?);
        Ok(ApiClient {
            authority: authority.as_str().to_owned(),
            host,
            port,
            server_name,
            connector,
            credentials,
            region: DEFAULT_REGION.to_owned(),
            signing_name: CONTROL_PLANE_SIGNING_NAME.to_owned(),
        })
    }

    /// The same client signing for `region`.
    pub fn with_region(mut self, region: impl Into<String>) -> ApiClient {
        self.region = region.into();
        self
    }

    /// The same client signing for another service, e.g. `iotdata` for the
    /// HTTP data plane.
    pub fn with_signing_name(mut self, signing_name: impl Into<String>) -> ApiClient {
        self.signing_name = signing_name.into();
        self
    }

    /// The region requests are signed for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Calls an operation: `path_and_query` is already percent-encoded (see
    /// [`encode_label`]); `body`, if any, is sent as JSON. Returns the JSON
    /// answer (`Null` for an empty body), or the AWS error of a non-2xx answer
    /// as [`ApiClientError::Service`].
    pub async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Value>,
    ) -> Result<Value, ApiClientError> {
        let (headers, body): (&[(&str, &str)], Bytes) = match body {
            Some(json) => (
                &[("content-type", "application/json")],
                Bytes::from(json.to_string()),
            ),
            None => (&[], Bytes::new()),
        };
        let response = self
            .send(method, path_and_query, headers, body)
            .await?
            .error_for_status()?;
        if response.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&response.body).map_err(|e| ApiClientError::InvalidResponse {
            status: response.status,
            reason: format!("the body is not JSON: {e}"),
        })
    }

    /// Sends a signed request with extra `headers` (signed too) and a raw body,
    /// and returns the whole answer whatever its status.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<RawResponse, ApiClientError> {
        let request =
            self.signed_request(method, path_and_query, headers, body, SystemTime::now())?;
        self.exchange(request).await
    }

    /// Builds the request and signs it with `aws-sigv4` at `time`.
    pub(crate) fn signed_request(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Bytes,
        time: SystemTime,
    ) -> Result<http::Request<Full<Bytes>>, ApiClientError> {
        let path = PathAndQuery::try_from(path_and_query)
            .map_err(|e| ApiClientError::InvalidRequest(format!("{path_and_query:?}: {e}")))?;
        let mut signed: Vec<(&str, &str)> = vec![("host", &self.authority)];
        signed.extend_from_slice(headers);
        let signable = SignableRequest::new(
            method.as_str(),
            format!("https://{}{}", self.authority, path.as_str()),
            signed.iter().copied(),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| ApiClientError::InvalidRequest(e.to_string()))?;
        let key = SigningKey {
            access_key_id: &self.credentials.access_key_id,
            secret_access_key: &self.credentials.secret_access_key,
            session_token: self.credentials.session_token.as_deref(),
        };
        let scope = Scope {
            region: &self.region,
            service: &self.signing_name,
            time,
        };
        let (instructions, _) = sign_v4(signable, &key, &scope, None)
            .map_err(|e| ApiClientError::Signing(e.to_string()))?
            .into_parts();
        let mut request = http::Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = Uri::from(path);
        let map = request.headers_mut();
        map.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("iotcore/", env!("CARGO_PKG_VERSION"))),
        );
        for (name, value) in signed.iter().copied().chain(instructions.headers()) {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| ApiClientError::InvalidRequest(format!("header {name:?}: {e}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|e| ApiClientError::InvalidRequest(format!("header {name}: {e}")))?;
            map.append(name, value);
        }
        if !map.contains_key(HOST) {
            return Err(ApiClientError::InvalidRequest("no Host header".into()));
        }
        Ok(request)
    }

    /// Sends `request` over a new TLS connection and reads the whole answer.
    pub(crate) async fn exchange(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> Result<RawResponse, ApiClientError> {
        let endpoint = format!("{}:{}", self.host, self.port);
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|source| ApiClientError::Connect {
                endpoint: endpoint.clone(),
                source,
            })?;
        let tls = self
            .connector
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|source| ApiClientError::Tls {
                endpoint: endpoint.clone(),
                source,
            })?;
        let http_error = |source| ApiClientError::Http {
            endpoint: endpoint.clone(),
            source,
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(http_error)?;
        let driver = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("API client connection ended: {e}");
            }
        });
        let response = sender.send_request(request).await.map_err(http_error)?;
        let (head, body) = response.into_parts();
        let body = Limited::new(body, MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| ApiClientError::InvalidResponse {
                status: head.status,
                reason: format!("the body could not be read: {e}"),
            })?
            .to_bytes();
        drop(sender);
        driver.abort();
        Ok(RawResponse {
            status: head.status,
            headers: head.headers,
            body,
        })
    }
}

fn client_config(ca_pem: &str) -> Result<Arc<rustls::ClientConfig>, ApiClientError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| ApiClientError::Ca(e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| ApiClientError::Ca(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(ApiClientError::Ca("the PEM holds no certificate".into()));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ApiClientError::Ca(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The AWS error an answer carries, read with botocore's rest-json rules.
fn service_error(response: &RawResponse) -> ServiceError {
    let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_owned);
    let from_header = response
        .headers
        .get(super::error::ERROR_TYPE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(':').next().unwrap_or(v).to_owned());
    let from_type = text("__type").map(|t| match t.rsplit_once('#') {
        Some((_, code)) => code.to_owned(),
        None => t,
    });
    let code = from_header
        .or(from_type)
        .or_else(|| text("code"))
        .or_else(|| text("Code"))
        .unwrap_or_else(|| response.status.as_u16().to_string());
    let message = text("message")
        .or_else(|| text("Message"))
        .or_else(|| text("errorMessage"))
        .unwrap_or_else(|| {
            response
                .status
                .canonical_reason()
                .unwrap_or_default()
                .to_owned()
        });
    let request_id = response
        .headers
        .get(super::REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    ServiceError {
        status: response.status,
        code,
        message,
        request_id,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> RawResponse {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        RawResponse {
            status: StatusCode::from_u16(status).unwrap(),
            headers: map,
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn the_error_code_comes_from_the_header_first_then_the_body() {
        let e = service_error(&response(
            404,
            &[
                (
                    "x-amzn-ErrorType",
                    "ResourceNotFoundException:http://internal/",
                ),
                ("x-amzn-RequestId", "r-1"),
            ],
            r#"{"message":"Thing x does not exist","__type":"Other"}"#,
        ));
        assert_eq!(e.code, "ResourceNotFoundException");
        assert_eq!(e.message, "Thing x does not exist");
        assert_eq!(e.request_id.as_deref(), Some("r-1"));
        assert_eq!(
            e.to_string(),
            "ResourceNotFoundException: Thing x does not exist"
        );

        let e = service_error(&response(
            400,
            &[],
            r#"{"Message":"m","__type":"com.amazonaws.iot#InvalidRequestException"}"#,
        ));
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("InvalidRequestException", "m")
        );

        let e = service_error(&response(409, &[], r#"{"code":"Conflict"}"#));
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("Conflict", "Conflict")
        );

        let e = service_error(&response(502, &[], "<html>bad gateway</html>"));
        assert_eq!((e.code.as_str(), e.body.clone()), ("502", Value::Null));
    }

    #[test]
    fn labels_are_encoded_as_aws_sdks_encode_them() {
        assert_eq!(
            encode_label("$aws/things/a b+c"),
            "%24aws%2Fthings%2Fa%20b%2Bc"
        );
        assert_eq!(encode_label("Thing-1_x.y~z"), "Thing-1_x.y~z");
    }

    #[test]
    fn bad_endpoints_and_cas_are_refused() {
        let creds = ApiCredentials::new("a", "b");
        for url in [
            "http://127.0.0.1:1",
            "https://127.0.0.1:1/path",
            "not a url",
            "https://",
        ] {
            assert!(
                matches!(
                    ApiClient::new(url, "", creds.clone()),
                    Err(ApiClientError::InvalidUrl { .. })
                ),
                "{url}"
            );
        }
        assert!(matches!(
            ApiClient::new("https://127.0.0.1:1", "no pem here", creds),
            Err(ApiClientError::Ca(_))
        ));
    }

    #[test]
    fn credentials_debug_hides_the_secret() {
        let creds = ApiCredentials {
            session_token: Some("zz-token-zz".into()),
            ..ApiCredentials::new("AKID", "very-secret")
        };
        let text = format!("{creds:?}");
        assert!(text.contains("AKID"), "{text}");
        assert!(
            !text.contains("very-secret") && !text.contains("zz-token-zz"),
            "{text}"
        );
    }
}
