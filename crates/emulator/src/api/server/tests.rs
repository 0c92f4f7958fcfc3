//! The server over real TLS connections on loopback: signed calls from the API
//! client, every refusal on the wire, client certificates, HTTP/2, garbage,
//! shutdown; and botocore's own signer and error parser when Python has boto3.

use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use http::StatusCode;
use http_body_util::{BodyExt, Full};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

use super::*;
use crate::api::client::{
    ApiClient, ApiClientError, ApiCredentials, RawResponse, ServiceError, encode_label,
};
use crate::api::error::ERROR_TYPE_HEADER;
use crate::api::tls::server_config_from_pki;
use crate::pki::{KeyAlgorithm, Pki};

/// Longest wait for something the server must do; a safety net against a hung
/// test, never a performance threshold.
const PATIENCE: Duration = Duration::from_secs(20);

const AKID: &str = "AKIAIOTCOREEXAMPLE01";
const SECRET: &str = "emulator/secret+key/EXAMPLE";
const TEMP_AKID: &str = "ASIAIOTCOREEXAMPLE01";
const TOKEN: &str = "session/token+value==";
const EXPIRED_AKID: &str = "ASIAIOTCOREEXPIRED01";

/// One PKI for every test (its files are gone once made; the keys stay in memory).
fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        Pki::load_or_create(dir.path()).unwrap()
    })
}

fn credentials() -> CredentialLookup {
    Arc::new(|id: &str| match id {
        AKID => Some(StoredCredential {
            secret_access_key: SECRET.into(),
            session_token: None,
            expires_at: None,
        }),
        TEMP_AKID => Some(StoredCredential {
            secret_access_key: SECRET.into(),
            session_token: Some(TOKEN.into()),
            expires_at: Some(SystemTime::now() + Duration::from_secs(3600)),
        }),
        EXPIRED_AKID => Some(StoredCredential {
            secret_access_key: SECRET.into(),
            session_token: Some(TOKEN.into()),
            expires_at: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1)),
        }),
        _ => None,
    })
}

/// What the echo handler saw.
#[derive(Default)]
struct Seen(Mutex<Vec<ApiRequest>>);

/// Echoes what it got as JSON; `/error` answers AWS's ResourceNotFoundException;
/// `GET /things/{name}` answers a DescribeThing shape naming what it saw.
struct Echo {
    seen: Arc<Seen>,
}

impl Handler for Echo {
    fn handle(
        &self,
        request: ApiRequest,
    ) -> Pin<Box<dyn Future<Output = ApiResponse> + Send + '_>> {
        Box::pin(async move {
            self.seen.0.lock().unwrap().push(request.clone());
            if request.raw_path == "/panic" {
                panic!("the echo handler was asked to panic");
            }
            if request.raw_path == "/error" || request.raw_path == "/things/missing" {
                return AwsError::new(
                    StatusCode::NOT_FOUND,
                    "ResourceNotFoundException",
                    "Thing x does not exist",
                )
                .into_response();
            }
            let caller = match &request.caller {
                Caller::Credentials {
                    access_key_id,
                    signing_name,
                    region,
                } => {
                    json!({"accessKeyId": access_key_id, "signingName": signing_name, "region": region})
                }
                Caller::Certificate { certificate_id } => json!({"certificateId": certificate_id}),
            };
            let body = json!({
                "thingName": request.raw_path,
                "defaultClientId": request.method.as_str(),
                "thingArn": caller.to_string(),
                "method": request.method.as_str(),
                "rawPath": request.raw_path,
                "query": request.query,
                "caller": caller,
                "body": String::from_utf8_lossy(&request.body),
            });
            let mut response = http::Response::new(Full::new(Bytes::from(body.to_string())));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        })
    }
}

struct Fixture {
    addr: SocketAddr,
    seen: Arc<Seen>,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
}

impl Fixture {
    async fn start() -> Fixture {
        Fixture::start_with(|_| {}).await
    }

    async fn start_with(tweak: impl FnOnce(&mut ApiServerConfig)) -> Fixture {
        let tls = server_config_from_pki(pki()).unwrap();
        let mut config = ApiServerConfig::new(tls, credentials());
        tweak(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Seen::default());
        let (stop, closing) = watch::channel(false);
        let handler = Arc::new(Echo {
            seen: Arc::clone(&seen),
        });
        let server = tokio::spawn(serve(listener, config, handler, closing));
        Fixture {
            addr,
            seen,
            stop,
            server,
        }
    }

    fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    fn client(&self) -> ApiClient {
        self.client_as(AKID, SECRET)
    }

    fn client_as(&self, akid: &str, secret: &str) -> ApiClient {
        ApiClient::new(
            &self.url(),
            pki().ca_pem(),
            ApiCredentials::new(akid, secret),
        )
        .unwrap()
    }

    fn last_seen(&self) -> ApiRequest {
        self.seen
            .0
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the handler saw no request")
    }

    fn seen_count(&self) -> usize {
        self.seen.0.lock().unwrap().len()
    }

    async fn stop(self) {
        self.stop.send_replace(true);
        tokio::time::timeout(PATIENCE, self.server)
            .await
            .expect("the server did not stop")
            .unwrap();
    }
}

async fn send_signed(
    client: &ApiClient,
    method: Method,
    target: &str,
    body: &[u8],
    edit: impl FnOnce(&mut http::Request<Full<Bytes>>),
) -> RawResponse {
    let mut request = client
        .signed_request(
            method,
            target,
            &[],
            Bytes::copy_from_slice(body),
            SystemTime::now(),
        )
        .unwrap();
    edit(&mut request);
    client.exchange(request).await.unwrap()
}

/// Asserts an AWS error answer: status, `x-amzn-ErrorType`, JSON body with
/// `message`, and a request id. Returns the message.
fn assert_refused(response: &RawResponse, status: StatusCode, code: &str) -> String {
    assert_eq!(response.status, status, "{response:?}");
    assert_eq!(response.headers[ERROR_TYPE_HEADER], code, "{response:?}");
    assert_eq!(response.headers["content-type"], "application/json");
    assert!(response.headers.contains_key(REQUEST_ID_HEADER));
    let body: Value = serde_json::from_slice(&response.body).expect("a JSON body");
    assert_eq!(body["__type"], code);
    body["message"].as_str().expect("a message").to_owned()
}

#[tokio::test]
async fn a_signed_call_reaches_the_handler_with_its_caller_path_query_and_body() {
    let fx = Fixture::start().await;
    let target = format!(
        "/topics/{}?qos=1&retain=true&a=2&a=1",
        encode_label("$aws/things/t 1/shadow/update")
    );
    let answer = fx
        .client()
        .call(
            Method::POST,
            &target,
            Some(json!({"state": {"reported": {"x": 1}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        answer["caller"],
        json!({"accessKeyId": AKID, "signingName": "iot", "region": "us-east-1"})
    );
    let seen = fx.last_seen();
    assert_eq!(
        seen.raw_path,
        "/topics/%24aws%2Fthings%2Ft%201%2Fshadow%2Fupdate"
    );
    assert_eq!(seen.query_param("qos"), Some("1"));
    assert_eq!(
        seen.query,
        [("qos", "1"), ("retain", "true"), ("a", "2"), ("a", "1")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(&seen.body[..], br#"{"state":{"reported":{"x":1}}}"#);
    assert_eq!(seen.peer.ip(), fx.addr.ip());
    assert_eq!(seen.request_id.len(), 36);
    fx.stop().await;
}

#[tokio::test]
async fn every_response_carries_a_fresh_request_id() {
    let fx = Fixture::start().await;
    let client = fx.client();
    let a = send_signed(&client, Method::GET, "/things", b"", |_| {}).await;
    let b = send_signed(&client, Method::GET, "/things", b"", |_| {}).await;
    let id = |r: &RawResponse| r.headers[REQUEST_ID_HEADER].to_str().unwrap().to_owned();
    assert_eq!(a.status, StatusCode::OK);
    assert_ne!(id(&a), id(&b));
    assert_eq!(
        fx.last_seen().request_id,
        id(&b),
        "the handler sees the id sent back"
    );
    fx.stop().await;
}

#[tokio::test]
async fn a_handler_error_reaches_the_client_as_code_and_message() {
    let fx = Fixture::start().await;
    let error = fx
        .client()
        .call(Method::GET, "/error", None)
        .await
        .unwrap_err();
    let ApiClientError::Service(ServiceError {
        status,
        code,
        message,
        request_id,
        ..
    }) = &error
    else {
        panic!("not a service error: {error:?}");
    };
    assert_eq!(*status, StatusCode::NOT_FOUND);
    assert_eq!(code, "ResourceNotFoundException");
    assert_eq!(message, "Thing x does not exist");
    assert!(request_id.is_some());
    assert_eq!(
        error.to_string(),
        "ResourceNotFoundException: Thing x does not exist"
    );
    fx.stop().await;
}

#[tokio::test]
async fn a_panicking_handler_costs_one_internal_failure_not_the_connection() {
    let fx = Fixture::start().await;
    let client = fx.client();
    let r = send_signed(&client, Method::GET, "/panic", b"", |_| {}).await;
    let m = assert_refused(
        &r,
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalFailureException",
    );
    assert!(m.contains("request id"), "{m}");
    let ok = send_signed(&client, Method::GET, "/things", b"", |_| {}).await;
    assert_eq!(ok.status, StatusCode::OK);
    fx.stop().await;
}

#[tokio::test]
async fn an_unsigned_request_gets_missing_authentication_token() {
    let fx = Fixture::start().await;
    let response = send_signed(&fx.client(), Method::GET, "/things", b"", |r| {
        r.headers_mut().remove(http::header::AUTHORIZATION);
    })
    .await;
    let message = assert_refused(
        &response,
        StatusCode::FORBIDDEN,
        "MissingAuthenticationTokenException",
    );
    assert_eq!(message, "Missing Authentication Token");
    assert_eq!(fx.seen_count(), 0);
    fx.stop().await;
}

#[tokio::test]
async fn refusals_on_the_wire_carry_aws_codes() {
    let fx = Fixture::start().await;
    let client = fx.client();
    let set = |name: &'static str, value: &'static str| {
        move |r: &mut http::Request<Full<Bytes>>| {
            r.headers_mut()
                .insert(name, HeaderValue::from_static(value));
        }
    };

    let r = send_signed(
        &client,
        Method::GET,
        "/things",
        b"",
        set("authorization", "Bearer x"),
    )
    .await;
    let m = assert_refused(&r, StatusCode::FORBIDDEN, "IncompleteSignatureException");
    assert!(
        m.starts_with("Authorization header requires 'Credential' parameter."),
        "{m}"
    );

    let r = send_signed(
        &client,
        Method::GET,
        "/things",
        b"",
        set("authorization", "AWS4-HMAC-SHA256 Credential"),
    )
    .await;
    let m = assert_refused(&r, StatusCode::FORBIDDEN, "IncompleteSignatureException");
    assert!(m.contains("missing equal-sign"), "{m}");

    let r = send_signed(
        &client,
        Method::GET,
        "/things",
        b"",
        set("x-amz-date", "yesterday"),
    )
    .await;
    let m = assert_refused(&r, StatusCode::FORBIDDEN, "IncompleteSignatureException");
    assert!(
        m.starts_with("Date must be in ISO-8601 'basic format'"),
        "{m}"
    );

    let r = send_signed(&client, Method::GET, "/things", b"", |r| {
        r.headers_mut().remove("x-amz-date");
    })
    .await;
    assert_refused(&r, StatusCode::FORBIDDEN, "IncompleteSignatureException");

    let r = send_signed(
        &fx.client_as("AKIAUNKNOWN", SECRET),
        Method::GET,
        "/things",
        b"",
        |_| {},
    )
    .await;
    let m = assert_refused(&r, StatusCode::FORBIDDEN, "UnrecognizedClientException");
    assert_eq!(m, "The security token included in the request is invalid.");

    let r = send_signed(
        &fx.client_as(AKID, "wrong"),
        Method::GET,
        "/things",
        b"",
        |_| {},
    )
    .await;
    let m = assert_refused(&r, StatusCode::FORBIDDEN, "InvalidSignatureException");
    assert!(
        m.starts_with("The request signature we calculated does not match"),
        "{m}"
    );

    let s3 = fx.client().with_signing_name("s3");
    let r = send_signed(&s3, Method::GET, "/things", b"", |_| {}).await;
    let m = assert_refused(&r, StatusCode::FORBIDDEN, "InvalidSignatureException");
    assert!(
        m.starts_with("Credential should be scoped to correct service"),
        "{m}"
    );

    // A changed body after signing.
    let r = send_signed(&client, Method::POST, "/things/t", b"{}", |r| {
        *r.body_mut() = Full::new(Bytes::from_static(b"[]"));
    })
    .await;
    assert_refused(&r, StatusCode::FORBIDDEN, "InvalidSignatureException");

    // Temporary credentials: the token is required, and expiry is enforced.
    let temp = ApiClient::new(
        &fx.url(),
        pki().ca_pem(),
        ApiCredentials {
            session_token: Some(TOKEN.into()),
            ..ApiCredentials::new(TEMP_AKID, SECRET)
        },
    )
    .unwrap();
    let r = send_signed(&temp, Method::GET, "/things", b"", |_| {}).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send_signed(
        &fx.client_as(TEMP_AKID, SECRET),
        Method::GET,
        "/things",
        b"",
        |_| {},
    )
    .await;
    assert_refused(&r, StatusCode::FORBIDDEN, "UnrecognizedClientException");
    let expired = ApiClient::new(
        &fx.url(),
        pki().ca_pem(),
        ApiCredentials {
            session_token: Some(TOKEN.into()),
            ..ApiCredentials::new(EXPIRED_AKID, SECRET)
        },
    )
    .unwrap();
    let r = send_signed(&expired, Method::GET, "/things", b"", |_| {}).await;
    let m = assert_refused(&r, StatusCode::FORBIDDEN, "ExpiredTokenException");
    assert_eq!(m, "The security token included in the request is expired");

    assert_eq!(
        fx.seen_count(),
        1,
        "only the valid temporary-credential call got through"
    );
    fx.stop().await;
}

#[tokio::test]
async fn a_skewed_clock_and_a_foreign_region_are_invalid_signatures() {
    let fx = Fixture::start_with(|config| {
        config.clock = Arc::new(|| SystemTime::now() + Duration::from_secs(600));
        config.policy = SigV4Policy::api().with_region("eu-west-1");
    })
    .await;
    let r = send_signed(
        &fx.client().with_region("eu-west-1"),
        Method::GET,
        "/things",
        b"",
        |_| {},
    )
    .await;
    let m = assert_refused(&r, StatusCode::FORBIDDEN, "InvalidSignatureException");
    assert!(m.starts_with("Signature expired: "), "{m}");
    assert!(m.ends_with(" - 5 min.)"), "{m}");
    let r = send_signed(&fx.client(), Method::GET, "/things", b"", |_| {}).await;
    let m = assert_refused(&r, StatusCode::FORBIDDEN, "InvalidSignatureException");
    assert!(
        m.starts_with("Credential should be scoped to a valid region, not 'us-east-1'"),
        "{m}"
    );
    fx.stop().await;
}

#[tokio::test]
async fn an_oversize_body_is_refused_before_it_is_read() {
    let fx = Fixture::start_with(|config| config.max_body_bytes = 16).await;
    let client = fx.client();
    let ok = send_signed(&client, Method::POST, "/topics/t", &[b'x'; 16], |_| {}).await;
    assert_eq!(ok.status, StatusCode::OK);
    let r = send_signed(&client, Method::POST, "/topics/t", &[b'x'; 17], |_| {}).await;
    let m = assert_refused(
        &r,
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestEntityTooLargeException",
    );
    assert!(m.contains("16 bytes"), "{m}");

    // Chunked, without a Content-Length: read up to the limit, then refused.
    let request = client
        .signed_request(
            Method::POST,
            "/topics/t",
            &[],
            Bytes::from_static(b"{}"),
            SystemTime::now(),
        )
        .unwrap();
    let mut head = String::from("POST /topics/t HTTP/1.1\r\n");
    for (name, value) in request.headers() {
        head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
    }
    head.push_str("transfer-encoding: chunked\r\nconnection: close\r\n\r\n");
    let mut wire = head.into_bytes();
    for _ in 0..4 {
        wire.extend_from_slice(b"8\r\n01234567\r\n");
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    let answer = raw_exchange(fx.addr, &wire).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("RequestEntityTooLargeException"),
        "{answer}"
    );
    assert_eq!(fx.seen_count(), 1);
    fx.stop().await;
}

#[tokio::test]
async fn a_client_expecting_100_continue_gets_the_refusal_instead() {
    let fx = Fixture::start().await;
    let tcp = TcpStream::connect(fx.addr).await.unwrap();
    let mut tls = tls_connector(None, &[])
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(
        b"PUT /things/t HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\
          Expect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    let mut answer = vec![0; 4096];
    let n = tokio::time::timeout(PATIENCE, tls.read(&mut answer))
        .await
        .expect("no answer without the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(
        answer.contains("MissingAuthenticationTokenException"),
        "{answer}"
    );
    fx.stop().await;
}

/// A TLS client of the fixture's server, with an optional client certificate.
fn tls_connector(identity: Option<(&str, &str)>, alpn: &[&[u8]]) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki().ca_der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(config))
}

/// Writes `wire` over TLS and reads until the server closes.
async fn raw_exchange(addr: SocketAddr, wire: &[u8]) -> String {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut tls = tls_connector(None, &[])
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(wire).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, tls.read_to_end(&mut answer))
        .await
        .expect("the server did not close the connection");
    String::from_utf8_lossy(&answer).into_owned()
}

/// An unsigned HTTP/1.1 request over TLS with a client certificate.
async fn unsigned_with_certificate(
    addr: SocketAddr,
    identity: (&str, &str),
) -> Result<RawResponse, String> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = tls_connector(Some(identity), &[])
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let request = http::Request::builder()
        .uri("/things/t1")
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let (head, body) = response.into_parts();
    Ok(RawResponse {
        status: head.status,
        headers: head.headers,
        body: body.collect().await.unwrap().to_bytes(),
    })
}

#[tokio::test]
async fn a_client_certificate_of_the_emulator_ca_is_the_caller() {
    let fx = Fixture::start().await;
    let device = pki()
        .issue_device_certificate("thing-1", KeyAlgorithm::EcdsaP256)
        .unwrap();
    let response =
        unsigned_with_certificate(fx.addr, (&device.certificate_pem, &device.private_key_pem))
            .await
            .unwrap();
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        fx.last_seen().caller,
        Caller::Certificate {
            certificate_id: device.certificate_id.clone()
        }
    );

    // A certificate of another CA fails the handshake.
    let other = {
        let dir = tempfile::tempdir().unwrap();
        Pki::load_or_create(dir.path())
            .unwrap()
            .issue_device_certificate("stranger", KeyAlgorithm::EcdsaP256)
            .unwrap()
    };
    let refused =
        unsigned_with_certificate(fx.addr, (&other.certificate_pem, &other.private_key_pem)).await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(fx.seen_count(), 1);
    fx.stop().await;
}

#[tokio::test]
async fn http2_requests_are_authenticated_with_the_authority_as_host() {
    let fx = Fixture::start().await;
    let client = fx.client();
    let mut request = client
        .signed_request(
            Method::GET,
            "/things?x=1",
            &[],
            Bytes::new(),
            SystemTime::now(),
        )
        .unwrap();
    let host = request.headers_mut().remove(http::header::HOST).unwrap();
    *request.uri_mut() = format!("https://{}/things?x=1", host.to_str().unwrap())
        .parse()
        .unwrap();
    let tcp = TcpStream::connect(fx.addr).await.unwrap();
    let tls = tls_connector(None, &[b"h2"])
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(fx.last_seen().query_param("x"), Some("1"));
    drop(sender);
    fx.stop().await;
}

#[tokio::test]
async fn garbage_tls_and_non_http_bytes_never_take_the_server_down() {
    let fx = Fixture::start().await;
    // Plain HTTP on the TLS port.
    let mut tcp = TcpStream::connect(fx.addr).await.unwrap();
    tcp.write_all(b"GET /things HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, tcp.read_to_end(&mut sink))
        .await
        .expect("the server did not close a non-TLS connection");
    // Random bytes, then a half-open connection.
    let mut tcp = TcpStream::connect(fx.addr).await.unwrap();
    tcp.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 0, 1, 2, 3])
        .await
        .unwrap();
    drop(tcp);
    // Non-HTTP bytes inside TLS: hyper answers 400 and closes.
    let answer = raw_exchange(fx.addr, b"\x00\x01\x02 hello\r\n\r\n").await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    // A request line with a bad URI.
    let answer = raw_exchange(fx.addr, b"GET /a b c HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    // A query that is not UTF-8 once decoded.
    let answer = raw_exchange(
        fx.addr,
        b"GET /things?a=%FF HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("InvalidRequestException"), "{answer}");
    // Still serving.
    let ok = send_signed(&fx.client(), Method::GET, "/things", b"", |_| {}).await;
    assert_eq!(ok.status, StatusCode::OK);
    fx.stop().await;
}

#[tokio::test]
async fn the_server_stops_on_the_closing_signal_even_with_idle_connections_open() {
    let fx = Fixture::start().await;
    let addr = fx.addr;
    // An idle keep-alive connection and a connection stuck before its handshake.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = tls_connector(None, &[])
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    let idle = tokio::spawn(connection);
    let request = fx
        .client()
        .signed_request(Method::GET, "/things", &[], Bytes::new(), SystemTime::now())
        .unwrap();
    assert_eq!(
        sender.send_request(request).await.unwrap().status(),
        StatusCode::OK
    );
    let _stuck = TcpStream::connect(addr).await.unwrap();

    fx.stop().await;
    tokio::time::timeout(PATIENCE, idle)
        .await
        .expect("the idle connection was not closed")
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the port is still open"
    );
}

#[test]
fn request_ids_look_like_version_4_uuids() {
    let id = new_request_id();
    let parts: Vec<&str> = id.split('-').collect();
    assert_eq!(
        parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
        [8, 4, 4, 4, 12]
    );
    assert!(parts[2].starts_with('4'));
    assert!(id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    assert_ne!(id, new_request_id());
}

/// A Python interpreter with botocore: `$IOTCORE_PYTHON` (or the workspace's
/// `.venv`), else `python3`; `None` if neither has it.
fn python_with_botocore() -> Option<std::path::PathBuf> {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut candidates = Vec::new();
    match std::env::var_os("IOTCORE_PYTHON").filter(|p| !p.is_empty()) {
        Some(python) => candidates.push(python.into()),
        None => candidates.push(workspace.join(".venv/bin/python")),
    }
    candidates.push("python3".into());
    candidates.into_iter().find(|python| {
        std::process::Command::new(python)
            .args(["-c", "import boto3, botocore"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

#[tokio::test]
async fn botocore_signs_what_the_server_verifies_and_parses_what_it_refuses() {
    let Some(python) = python_with_botocore() else {
        eprintln!("skipped: no Python with boto3 (IOTCORE_PYTHON, .venv or python3)");
        return;
    };
    let fx = Fixture::start().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki().ca_pem()).unwrap();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/api_botocore.py");
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(python)
            .arg(script)
            .arg(fx.url())
            .arg(&ca)
            .args([AKID, SECRET, TEMP_AKID, TOKEN])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("botocore peer timed out")
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "peer failed: {stderr}");
    let results: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("peer output is not JSON ({e}): {stderr}"));
    let ok = |case: &str| {
        let r = &results[case];
        assert_eq!(r["ok"], true, "{case}: {r}");
        r["response"].clone()
    };
    let failed = |case: &str, status: u16, code: &str| {
        let r = &results[case];
        assert_eq!(r["ok"], false, "{case}: {r}");
        assert_eq!(r["status"], status, "{case}: {r}");
        assert_eq!(r["code"], code, "{case}: {r}");
        assert_eq!(
            r["request_id"].as_str().map(str::len),
            Some(36),
            "{case}: {r}"
        );
        r["message"].as_str().unwrap_or_default().to_owned()
    };

    let seen: Vec<ApiRequest> = fx.seen.0.lock().unwrap().clone();
    let find = |method: &str, path: &str| {
        seen.iter()
            .find(|r| r.method.as_str() == method && r.raw_path == path)
            .unwrap_or_else(|| panic!("the handler never saw {method} {path}"))
            .clone()
    };

    // Signed by botocore, verified here; the request id comes back as botocore's RequestId.
    let described = ok("describe_thing");
    assert_eq!(described["thingName"], "/things/a%3Ab_c-d");
    let caller: Value = serde_json::from_str(described["thingArn"].as_str().unwrap()).unwrap();
    assert_eq!(caller["signingName"], "iot");
    assert_eq!(caller["accessKeyId"], AKID);
    assert_eq!(
        described["ResponseMetadata"]["RequestId"]
            .as_str()
            .map(str::len),
        Some(36)
    );
    let listed = find("GET", "/things");
    assert_eq!(listed.query_param("thingTypeName"), Some("t y"));
    assert_eq!(listed.query_param("maxResults"), Some("5"));
    ok("list_things");
    ok("create_thing");
    let created = find("POST", "/things/t1");
    let body: Value = serde_json::from_slice(&created.body).unwrap();
    assert_eq!(body["attributePayload"]["attributes"]["k"], "v w");

    // iot-data: signing name iotdata, `$` and `/` of the topic label encoded.
    ok("publish");
    let published = find("POST", "/topics/%24aws%2Fthings%2Fx%2Fshadow%2Fupdate");
    assert_eq!(published.query_param("qos"), Some("1"));
    assert_eq!(&published.body[..], br#"{"state":{}}"#);
    assert!(matches!(
        &published.caller,
        Caller::Credentials { signing_name, .. } if signing_name == "iotdata"
    ));

    // Temporary credentials: botocore signs x-amz-security-token.
    ok("temporary");
    let temporary = find("GET", "/things/t2");
    assert!(matches!(
        &temporary.caller,
        Caller::Credentials { access_key_id, .. } if access_key_id == TEMP_AKID
    ));

    // Errors as botocore's parser reads them.
    assert_eq!(
        failed("missing_thing", 404, "ResourceNotFoundException"),
        "Thing x does not exist"
    );
    assert_eq!(
        results["missing_thing_modeled"],
        "ResourceNotFoundException"
    );
    let m = failed("wrong_secret", 403, "InvalidSignatureException");
    assert!(
        m.starts_with("The request signature we calculated does not match"),
        "{m}"
    );
    assert_eq!(
        failed("unknown_key", 403, "UnrecognizedClientException"),
        "The security token included in the request is invalid."
    );
    // Refused before its body is read: the body is drained so that urllib3,
    // which sends it all before reading, gets the answer.
    failed("unknown_key_publish", 403, "UnrecognizedClientException");
    assert_eq!(
        failed("unsigned", 403, "MissingAuthenticationTokenException"),
        "Missing Authentication Token"
    );
    failed("too_large", 413, "RequestEntityTooLargeException");
    fx.stop().await;
}

/// The shape the control layer plugs in: a route table and a closure handler.
#[tokio::test]
async fn a_closure_over_a_route_table_is_a_handler() {
    #[derive(Debug)]
    enum Op {
        DescribeThing,
    }
    let routes = Arc::new(
        crate::api::route::RouteTable::new([(
            Method::GET,
            "/things/{thingName}",
            Op::DescribeThing,
        )])
        .unwrap(),
    );
    let handler = Arc::new(move |request: ApiRequest| {
        let routes = Arc::clone(&routes);
        async move {
            match routes.find(&request.method, &request.raw_path) {
                Err(no_route) => no_route
                    .into_aws_error(&request.method, &request.raw_path)
                    .into_response(),
                Ok(matched) => match matched.id {
                    Op::DescribeThing => {
                        let name = matched.labels.get("thingName").unwrap_or_default();
                        let body = json!({ "thingName": name }).to_string();
                        http::Response::new(Full::new(Bytes::from(body)))
                    }
                },
            }
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let config = ApiServerConfig::new(server_config_from_pki(pki()).unwrap(), credentials());
    let (stop, closing) = watch::channel(false);
    let server = tokio::spawn(serve(listener, config, handler, closing));

    let client = ApiClient::new(&url, pki().ca_pem(), ApiCredentials::new(AKID, SECRET)).unwrap();
    let thing = client
        .call(
            Method::GET,
            &format!("/things/{}", encode_label("a:b")),
            None,
        )
        .await
        .unwrap();
    assert_eq!(thing, json!({"thingName": "a:b"}));
    let error = client
        .call(Method::GET, "/nowhere", None)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "UnknownOperationException: No operation of this emulator matches GET /nowhere"
    );
    let error = client
        .call(Method::DELETE, "/things/a", None)
        .await
        .unwrap_err();
    assert!(
        error.to_string().starts_with("MethodNotAllowedException: "),
        "{error}"
    );
    stop.send_replace(true);
    tokio::time::timeout(PATIENCE, server)
        .await
        .unwrap()
        .unwrap();
}
