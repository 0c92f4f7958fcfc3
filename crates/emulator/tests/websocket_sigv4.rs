//! MQTT over WebSocket with SigV4 on the MQTT port: AWS's Python SDK v2
//! (`websockets_with_default_aws_signing`, MQTT 3.1.1 and 5, static and
//! temporary credentials) and paho-mqtt with a presigned URL publish,
//! subscribe and receive; an access key's policy decides what it may do;
//! refused upgrades get 403 with AWS's error; the port still refuses MQTT over
//! TLS without a client certificate, and whatever is neither MQTT nor HTTP.
//!
//! Needs `scripts/setup-peers` to have run.

mod support;

use std::ffi::OsString;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SessionTokenMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use iotcore_emulator::control::AccessKeyOptions;
use iotcore_test_support::{PeerOutput, run_peer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use support::{Setup, ca_file, create_policy};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// An access key issued by the emulator.
struct Key {
    id: String,
    secret: String,
    token: Option<String>,
}

fn issue_key(setup: &Setup, policy: Option<&str>, temporary: bool) -> Key {
    let options = AccessKeyOptions {
        policy: policy.map(str::to_owned),
        temporary: temporary.then(|| Duration::from_secs(3600)),
    };
    let record = setup
        .emulator
        .control()
        .create_access_key("websocket-test", &options)
        .expect("access key issued");
    Key {
        id: record.access_key_id,
        secret: record.secret_access_key,
        token: record.session_token,
    }
}

fn key_args(key: &Key) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "--access-key-id".into(),
        key.id.clone().into(),
        "--secret-access-key".into(),
        key.secret.clone().into(),
    ];
    if let Some(token) = &key.token {
        args.extend(["--session-token".into(), token.clone().into()]);
    }
    args
}

/// `awsiot_pubsub.py` over WebSocket with `key`: subscribes to `topic`,
/// publishes three messages and waits for them.
async fn awsiot_over_websocket(
    setup: &Setup,
    key: &Key,
    protocol: &str,
    topic: &str,
) -> PeerOutput {
    let client_id = format!("ws-{protocol}");
    support::awsiot_loop(
        setup,
        "websocket-sigv4",
        &client_id,
        protocol,
        topic,
        &key_args(key),
    )
    .await
}

fn received_payloads(output: &PeerOutput) -> Vec<String> {
    output
        .events_named("received")
        .iter()
        .map(|e| e["payload"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn the_python_sdk_loops_messages_over_websocket(protocol: &str, temporary: bool) {
    let setup = Setup::start().await;
    let key = issue_key(&setup, None, temporary);
    assert_eq!(
        key.token.is_some(),
        temporary,
        "temporary keys have a token"
    );
    let output = awsiot_over_websocket(&setup, &key, protocol, "dt/ws/loop").await;
    output.assert_success();
    assert_eq!(
        received_payloads(&output),
        ["msg-0", "msg-1", "msg-2"],
        "{output}"
    );
    assert!(output.events_named("interrupted").is_empty(), "{output}");
}

#[tokio::test]
async fn the_aws_python_sdk_publishes_and_receives_over_websocket_sigv4_mqtt311() {
    the_python_sdk_loops_messages_over_websocket("3", false).await;
}

#[tokio::test]
async fn the_aws_python_sdk_publishes_and_receives_over_websocket_sigv4_mqtt5() {
    the_python_sdk_loops_messages_over_websocket("5", false).await;
}

#[tokio::test]
async fn temporary_credentials_with_their_session_token_connect_over_mqtt311() {
    the_python_sdk_loops_messages_over_websocket("3", true).await;
}

#[tokio::test]
async fn temporary_credentials_with_their_session_token_connect_over_mqtt5() {
    the_python_sdk_loops_messages_over_websocket("5", true).await;
}

#[tokio::test]
async fn the_python_sdk_with_a_wrong_secret_cannot_connect() {
    let setup = Setup::start().await;
    let mut key = issue_key(&setup, None, false);
    key.secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned();
    let output = awsiot_over_websocket(&setup, &key, "3", "dt/ws/x").await;
    assert!(!output.success(), "{output}");
    let errors = output.events_named("error");
    assert_eq!(errors[0]["stage"], "connect", "{output}");
    assert!(
        errors[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("WEBSOCKET_UPGRADE_FAILURE")),
        "{output}"
    );
}

#[tokio::test]
async fn paho_publishes_and_receives_over_websocket_with_a_presigned_url() {
    let setup = Setup::start().await;
    for (protocol, temporary) in [("3", false), ("5", true)] {
        let key = issue_key(&setup, None, temporary);
        let mut args: Vec<OsString> = [
            "--port",
            &setup.addr().port().to_string(),
            "--client-id",
            &format!("paho-ws-{protocol}"),
            "--protocol",
            protocol,
            "--subscribe",
            "dt/paho/ws",
            "--publish",
            "dt/paho/ws",
            "--publish-count",
            "2",
            "--expect",
            "2",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        args.extend(["--ca".into(), ca_file(&setup).into()]);
        args.extend(key_args(&key));
        let output = run_peer("paho_client.py", &args).await;
        output.assert_success();
        assert_eq!(received_payloads(&output), ["msg-0", "msg-1"], "{output}");
    }
}

#[tokio::test]
async fn an_access_keys_policy_decides_what_it_may_do_over_websocket() {
    let setup = Setup::start().await;
    create_policy(
        setup.emulator.control(),
        "ws-narrow",
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"iot:Connect","Resource":"*"},
            {"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":"arn:aws:iot:us-east-1:123456789012:topic/dt/allowed/*"},
            {"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:us-east-1:123456789012:topicfilter/dt/allowed/*"}
        ]}"#,
    );
    let key = issue_key(&setup, Some("ws-narrow"), false);
    let allowed = awsiot_over_websocket(&setup, &key, "5", "dt/allowed/x").await;
    allowed.assert_success();
    assert_eq!(received_payloads(&allowed).len(), 3, "{allowed}");

    // MQTT 5: SUBACK 0x87 for the filter outside the policy.
    let refused = awsiot_over_websocket(&setup, &key, "5", "dt/other/x").await;
    assert!(!refused.success(), "{refused}");
    let errors = refused.events_named("error");
    assert!(
        errors.iter().any(|e| e["stage"] == "subscribe"),
        "iot:Subscribe is refused first: {refused}"
    );
}

// ----- Refusals, with a raw client -----

/// A TLS connection without a client certificate.
async fn tls_without_certificate(setup: &Setup) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(setup.emulator.ca_pem().as_bytes()).expect("CA"))
        .expect("CA trusted");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(setup.addr()).await.expect("TCP");
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("TLS without a client certificate is accepted")
}

/// How a test signs an upgrade.
struct Signing<'a> {
    key: &'a Key,
    time: SystemTime,
    token: SessionTokenMode,
}

/// `GET /mqtt` presigned by `aws-sigv4` for the emulator's host, with the
/// upgrade headers (subprotocol `subprotocol`).
fn presigned_upgrade(
    setup: &Setup,
    signing: &Signing<'_>,
    subprotocol: &str,
) -> http::Request<Empty<Bytes>> {
    let host = format!("localhost:{}", setup.addr().port());
    let url = format!("https://{host}/mqtt");
    let identity = Credentials::new(
        &signing.key.id,
        &signing.key.secret,
        signing.key.token.clone(),
        None,
        "test",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(300));
    settings.session_token_mode = signing.token;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("iotdevicegateway")
        .time(signing.time)
        .settings(settings)
        .build()
        .expect("signing parameters")
        .into();
    let signable = SignableRequest::new(
        "GET",
        &url,
        [("host", host.as_str())].into_iter(),
        SignableBody::Bytes(b""),
    )
    .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("signed").into_parts();
    let mut request = http::Request::get("/mqtt")
        .header("host", &host)
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-protocol", subprotocol)
        .body(Empty::new())
        .expect("request");
    instructions.apply_to_request_http1x(&mut request);
    request
}

/// Sends `request` over a new TLS connection: the status, the
/// `x-amzn-ErrorType` header and the JSON body.
async fn send(setup: &Setup, request: http::Request<Empty<Bytes>>) -> (u16, String, Value) {
    let tls = tls_without_certificate(setup).await;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("HTTP/1.1");
    tokio::spawn(connection.with_upgrades());
    let response = sender.send_request(request).await.expect("a response");
    let status = response.status().as_u16();
    let error_type = response
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let subprotocol = response
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if status == 101 {
        return (status, subprotocol, Value::Null);
    }
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, error_type, body)
}

fn signing(key: &Key) -> Signing<'_> {
    Signing {
        key,
        time: SystemTime::now(),
        token: SessionTokenMode::Exclude,
    }
}

#[tokio::test]
async fn a_presigned_upgrade_switches_protocols_and_echoes_mqttv3_1() {
    let setup = Setup::start().await;
    let key = issue_key(&setup, None, true);
    let request = presigned_upgrade(&setup, &signing(&key), "mqttv3.1");
    assert_eq!(
        send(&setup, request).await,
        (101, "mqttv3.1".into(), Value::Null)
    );
}

#[tokio::test]
async fn every_sigv4_refusal_is_a_403_with_aws_error() {
    let setup = Setup::start().await;
    let key = issue_key(&setup, None, false);
    let temporary = issue_key(&setup, None, true);

    let wrong_secret = Key {
        secret: "not-the-secret".into(),
        ..issue_key(&setup, None, false)
    };
    let (status, kind, body) = send(
        &setup,
        presigned_upgrade(&setup, &signing(&wrong_secret), "mqtt"),
    )
    .await;
    assert_eq!(
        (status, kind.as_str()),
        (403, "InvalidSignatureException"),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("does not match"),
        "{body}"
    );

    let unknown = Key {
        id: "AKIANOTISSUEDBYEMU".into(),
        secret: key.secret.clone(),
        token: None,
    };
    let (status, kind, _) = send(
        &setup,
        presigned_upgrade(&setup, &signing(&unknown), "mqtt"),
    )
    .await;
    assert_eq!(
        (status, kind.as_str()),
        (403, "UnrecognizedClientException")
    );

    let old = Signing {
        time: SystemTime::now() - Duration::from_secs(10 * 60),
        ..signing(&key)
    };
    let (status, kind, body) = send(&setup, presigned_upgrade(&setup, &old, "mqtt")).await;
    assert_eq!(
        (status, kind.as_str()),
        (403, "InvalidSignatureException"),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Signature expired"),
        "{body}"
    );

    let tokenless = Key {
        id: temporary.id.clone(),
        secret: temporary.secret.clone(),
        token: None,
    };
    let (status, kind, _) = send(
        &setup,
        presigned_upgrade(&setup, &signing(&tokenless), "mqtt"),
    )
    .await;
    assert_eq!(
        (status, kind.as_str()),
        (403, "UnrecognizedClientException"),
        "missing token"
    );

    let signed_token = Signing {
        token: SessionTokenMode::Include,
        ..signing(&temporary)
    };
    let (status, kind, _) = send(&setup, presigned_upgrade(&setup, &signed_token, "mqtt")).await;
    assert_eq!(
        (status, kind.as_str()),
        (403, "InvalidSignatureException"),
        "a signed session token is refused, as AWS IoT refuses it"
    );

    let unsigned = http::Request::get("/mqtt")
        .header("host", "localhost")
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-protocol", "mqtt")
        .body(Empty::new())
        .unwrap();
    let (status, kind, _) = send(&setup, unsigned).await;
    assert_eq!(
        (status, kind.as_str()),
        (403, "MissingAuthenticationTokenException")
    );
}

#[tokio::test]
async fn mqtt_over_tls_without_a_certificate_and_unknown_bytes_are_closed() {
    let setup = Setup::start().await;
    for first_bytes in [
        &b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00"[..],
        b"\x30\x00",
        b"hello",
    ] {
        let mut tls = tls_without_certificate(&setup).await;
        tls.write_all(first_bytes).await.expect("sent");
        let mut rest = Vec::new();
        let read = tokio::time::timeout(
            support::PATIENCE,
            tokio::io::AsyncReadExt::read_to_end(&mut tls, &mut rest),
        )
        .await
        .expect("the emulator closes the connection");
        assert!(
            read.is_err() || rest.is_empty(),
            "no CONNACK, no answer at all for {first_bytes:?}: {rest:?}"
        );
    }
}
