//! Custom authorizers whose function is a command (`tests/peers/custom_authorizer.py`):
//! AWS's Python SDK v2 connects with `direct_with_custom_authorizer` (ALPN
//! `mqtt`) and `websockets_with_custom_authorizer`, unsigned and with a signed
//! token, MQTT 3.1.1 and 5, publishes, subscribes and receives; a denial, a
//! narrow policy, `disconnectAfterInSeconds`, and functions that crash or
//! print garbage are each tested.
//!
//! Needs `scripts/setup-peers` to have run.

mod support;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use iotcore_emulator::control::{
    AuthorizerNameRequest, CreateAuthorizerRequest, TestInvokeAuthorizerRequest, TestMqttContext,
};
use iotcore_mqtt::{Packet, ProtocolVersion, ReasonCode};
use iotcore_test_support::{PeerOutput, peer_script, python};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::Value;
use support::{RawClient, Setup, connect_packet, disconnect_reason, subscribe};

const PASSWORD: &str = "let-me-in";

/// The command that runs `custom_authorizer.py` with `args`.
fn function(args: &str) -> String {
    format!(
        "'{}' '{}' {args}",
        python().display(),
        peer_script("custom_authorizer.py").display()
    )
}

fn create(setup: &Setup, name: &str, command: &str, keys: Option<(&str, String)>) {
    let signed = keys.is_some();
    setup
        .emulator
        .control()
        .create_authorizer(CreateAuthorizerRequest {
            authorizer_name: name.into(),
            authorizer_function_arn: command.into(),
            token_key_name: Some("token".into()),
            token_signing_public_keys: keys
                .map(|(name, pem)| BTreeMap::from([(name.to_owned(), pem)])),
            signing_disabled: Some(!signed),
            ..CreateAuthorizerRequest::default()
        })
        .expect("authorizer created");
}

/// `awsiot_pubsub.py` through `door` as a custom authorizer's device:
/// subscribes to `topic`, publishes three messages and waits for them.
async fn awsiot(
    setup: &Setup,
    door: &str,
    protocol: &str,
    topic: &str,
    auth: &[&str],
) -> PeerOutput {
    let auth: Vec<OsString> = auth.iter().map(OsString::from).collect();
    let client_id = format!("custom-{protocol}");
    support::awsiot_loop(setup, door, &client_id, protocol, topic, &auth).await
}

fn payloads(output: &PeerOutput) -> Vec<String> {
    output
        .events_named("received")
        .iter()
        .map(|e| e["payload"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn password_authorizer_loops_messages(door: &str, protocol: &str) {
    let setup = Setup::start().await;
    let event = setup.dir.path().join("event.json");
    let command = function(&format!(
        "--password {PASSWORD} --event-out '{}'",
        event.display()
    ));
    create(&setup, "by-password", &command, None);
    let output = awsiot(
        &setup,
        door,
        protocol,
        "dt/custom/loop",
        &[
            "--authorizer-name",
            "by-password",
            "--auth-password",
            PASSWORD,
        ],
    )
    .await;
    output.assert_success();
    assert_eq!(payloads(&output), ["msg-0", "msg-1", "msg-2"], "{output}");
    let event: Value = serde_json::from_slice(&std::fs::read(&event).expect("event saved"))
        .expect("the event is JSON");
    let mqtt = &event["protocolData"]["mqtt"];
    assert_eq!(mqtt["password"], BASE64.encode(PASSWORD), "{event}");
    assert_eq!(mqtt["clientId"], format!("custom-{protocol}"), "{event}");
    assert!(
        mqtt["username"]
            .as_str()
            .is_some_and(|u| u.contains("x-amz-customauthorizer-name=by-password")),
        "{event}"
    );
    assert_eq!(event["signatureVerified"], false, "{event}");
    let expected_protocols = if door == "custom-auth" {
        serde_json::json!(["tls", "mqtt"])
    } else {
        serde_json::json!(["tls", "http", "mqtt"])
    };
    assert_eq!(event["protocols"], expected_protocols, "{event}");
}

#[tokio::test]
async fn the_python_sdk_connects_with_an_unsigned_custom_authorizer_over_alpn_mqtt_311() {
    password_authorizer_loops_messages("custom-auth", "3").await;
}

#[tokio::test]
async fn the_python_sdk_connects_with_an_unsigned_custom_authorizer_over_alpn_mqtt_5() {
    password_authorizer_loops_messages("custom-auth", "5").await;
}

#[tokio::test]
async fn the_python_sdk_connects_with_a_custom_authorizer_over_websocket_311() {
    password_authorizer_loops_messages("websocket-custom-auth", "3").await;
}

#[tokio::test]
async fn the_python_sdk_connects_with_a_custom_authorizer_over_websocket_5() {
    password_authorizer_loops_messages("websocket-custom-auth", "5").await;
}

/// An RSA key pair: the public key as PEM, and the base64 signature of `token`.
fn signed(token: &str) -> (String, String) {
    let pair = KeyPair::generate(KeySize::Rsa2048).expect("RSA key");
    let der = pair.public_key().as_der().expect("public key");
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        BASE64.encode(der.as_ref())
    );
    let mut signature = vec![0; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        token.as_bytes(),
        &mut signature,
    )
    .expect("signed");
    (pem, BASE64.encode(signature))
}

#[tokio::test]
async fn a_signed_token_connects_over_alpn_mqtt_and_websocket_and_a_forged_one_does_not() {
    let setup = Setup::start().await;
    let token = "device-token-1";
    let (pem, signature) = signed(token);
    let command = function(&format!("--token {token} --signed"));
    create(&setup, "signed", &command, Some(("key1", pem)));
    for (door, protocol) in [("custom-auth", "5"), ("websocket-custom-auth", "3")] {
        let auth = [
            "--authorizer-name",
            "signed",
            "--token-key-name",
            "token",
            "--token",
            token,
            "--token-signature",
            &signature,
        ];
        let output = awsiot(&setup, door, protocol, "dt/custom/signed", &auth).await;
        output.assert_success();
        assert_eq!(payloads(&output).len(), 3, "{output}");
    }
    let (_, other_signature) = signed(token);
    let forged = [
        "--authorizer-name",
        "signed",
        "--token-key-name",
        "token",
        "--token",
        token,
        "--token-signature",
        &other_signature,
    ];
    let output = awsiot(&setup, "custom-auth", "3", "dt/custom/signed", &forged).await;
    assert!(
        !output.success(),
        "a signature by another key is refused: {output}"
    );
    assert_eq!(
        output.events_named("error")[0]["stage"],
        "connect",
        "{output}"
    );
}

#[tokio::test]
async fn a_denial_and_a_publish_outside_the_returned_policy_are_refused() {
    let setup = Setup::start().await;
    create(
        &setup,
        "by-password",
        &function(&format!("--password {PASSWORD}")),
        None,
    );
    let wrong = [
        "--authorizer-name",
        "by-password",
        "--auth-password",
        "wrong",
    ];
    let output = awsiot(&setup, "custom-auth", "5", "dt/custom/x", &wrong).await;
    assert!(!output.success(), "{output}");
    let error = &output.events_named("error")[0];
    assert_eq!(error["stage"], "connect", "{output}");

    let right = [
        "--authorizer-name",
        "by-password",
        "--auth-password",
        PASSWORD,
    ];
    let output = awsiot(&setup, "custom-auth", "5", "other/topic", &right).await;
    assert!(!output.success(), "{output}");
    assert_eq!(
        output.events_named("error")[0]["stage"],
        "subscribe",
        "outside dt/custom/*, SUBACK 0x87: {output}"
    );
}

/// A TLS client without a certificate that offers ALPN `mqtt`.
fn alpn_mqtt_config(setup: &Setup) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(setup.emulator.ca_pem().as_bytes()).expect("CA"))
        .expect("CA trusted");
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"mqtt".to_vec()];
    config
}

/// Connects over ALPN `mqtt` with MQTT 5 as `client_id`, the authorizer
/// `authorizer` named in the username and `password`.
async fn connect_custom(
    setup: &Setup,
    client_id: &str,
    authorizer: &str,
    password: &str,
) -> (RawClient, iotcore_mqtt::packet::ConnAck) {
    let mut client = RawClient::open_with(setup.addr(), alpn_mqtt_config(setup))
        .await
        .expect("TLS with ALPN mqtt");
    let mut connect = connect_packet(client_id, ProtocolVersion::V5);
    connect.username = Some(format!(
        "device?x-amz-customauthorizer-name={authorizer}&SDK=Rust&Version=test"
    ));
    connect.password = Some(Bytes::from(password.to_owned()));
    let connack = client.handshake(connect).await;
    (client, connack)
}

/// A certificate client subscribed to every client's disconnection event.
async fn watch_disconnections(setup: &Setup) -> RawClient {
    let observer = setup.device("observer");
    let (mut watch, _) = RawClient::connect(
        setup.addr(),
        &observer,
        connect_packet("observer", ProtocolVersion::V5),
    )
    .await;
    watch
        .send(&subscribe(
            1,
            &["$aws/events/presence/disconnected/+"],
            iotcore_mqtt::QoS::AtLeastOnce,
        ))
        .await;
    assert!(matches!(watch.recv().await, Some(Packet::SubAck(_))));
    watch
}

/// The next lifecycle event `watch` receives.
async fn next_event(watch: &mut RawClient) -> Value {
    let event = watch.recv_publish().await;
    serde_json::from_slice(&event.payload).expect("JSON event")
}

#[tokio::test]
async fn disconnect_after_in_seconds_ends_the_connection_with_customauth_ttl_expiration() {
    let setup = Setup::start().await;
    create(
        &setup,
        "short",
        &function(&format!("--password {PASSWORD} --disconnect-after 1")),
        None,
    );
    let mut watch = watch_disconnections(&setup).await;

    let (mut device, connack) = connect_custom(&setup, "short-lived", "short", PASSWORD).await;
    assert_eq!(connack.reason, ReasonCode::SUCCESS);
    let closing = device.until_closed().await;
    assert_eq!(
        disconnect_reason(&closing),
        Some(ReasonCode::MAXIMUM_CONNECT_TIME),
        "{closing:?}"
    );
    let event = next_event(&mut watch).await;
    assert_eq!(event["clientId"], "short-lived");
    assert_eq!(event["disconnectReason"], "CUSTOMAUTH_TTL_EXPIRATION");
    assert_eq!(event["principalIdentifier"], "testdevice");
}

#[tokio::test]
async fn refresh_after_in_seconds_runs_the_function_again_and_its_denial_ends_the_connection() {
    let setup = Setup::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let calls = dir.path().join("calls");
    // Allows the first call (refresh after 1 s), denies every later one.
    let allow = r#"{"isAuthenticated":true,"principalId":"refreshing","refreshAfterInSeconds":1,"policyDocuments":["{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"iot:*\",\"Resource\":\"*\"}]}"]}"#;
    let command = format!(
        "cat > /dev/null; echo call >> '{calls}'; \
         if [ \"$(wc -l < '{calls}')\" -eq 1 ]; then echo '{allow}'; \
         else echo '{{\"isAuthenticated\":false}}'; fi",
        calls = calls.display()
    );
    create(&setup, "refreshing", &command, None);
    let mut watch = watch_disconnections(&setup).await;

    let (mut device, connack) = connect_custom(&setup, "refreshed", "refreshing", PASSWORD).await;
    assert_eq!(connack.reason, ReasonCode::SUCCESS);
    let closing = device.until_closed().await;
    assert_eq!(
        disconnect_reason(&closing),
        Some(ReasonCode::NOT_AUTHORIZED),
        "{closing:?}"
    );
    let event = next_event(&mut watch).await;
    assert_eq!(event["clientId"], "refreshed");
    assert_eq!(event["disconnectReason"], "AUTH_ERROR");
    let calls = std::fs::read_to_string(&calls).expect("the function ran");
    assert_eq!(calls.lines().count(), 2, "at CONNECT and at the refresh");
}

#[tokio::test]
async fn a_function_that_crashes_or_prints_garbage_is_a_denial_and_the_emulator_carries_on() {
    let setup = Setup::start().await;
    create(&setup, "crash", "echo boom >&2; exit 7", None);
    create(&setup, "garbage", "cat > /dev/null; echo 'not json'", None);
    create(
        &setup,
        "fine",
        &function(&format!("--password {PASSWORD}")),
        None,
    );
    for authorizer in ["crash", "garbage", "missing"] {
        let (mut client, connack) = connect_custom(&setup, "d", authorizer, PASSWORD).await;
        assert_eq!(connack.reason, ReasonCode::NOT_AUTHORIZED, "{authorizer}");
        client.until_closed().await;
    }
    let (_client, connack) = connect_custom(&setup, "d", "fine", PASSWORD).await;
    assert_eq!(
        connack.reason,
        ReasonCode::SUCCESS,
        "the emulator still serves"
    );
}

#[tokio::test]
async fn test_invoke_authorizer_returns_the_functions_answer() {
    let setup = Setup::start().await;
    let control = setup.emulator.control();
    create(
        &setup,
        "by-password",
        &function(&format!("--password {PASSWORD}")),
        None,
    );
    let answer = control
        .test_invoke_authorizer(TestInvokeAuthorizerRequest {
            authorizer_name: "by-password".into(),
            mqtt_context: Some(TestMqttContext {
                username: Some("u".into()),
                password: Some(BASE64.encode(PASSWORD)),
                client_id: Some("c".into()),
            }),
            ..TestInvokeAuthorizerRequest::default()
        })
        .await
        .expect("invoked");
    assert!(answer.is_authenticated);
    assert_eq!(answer.principal_id, "testdevice");
    assert_eq!(answer.disconnect_after_in_seconds, Some(86400));
    let policy: Value = serde_json::from_str(&answer.policy_documents[0]).expect("a JSON string");
    assert_eq!(policy["Version"], "2012-10-17");

    create(&setup, "garbage", "echo nope", None);
    let garbage = control
        .test_invoke_authorizer(TestInvokeAuthorizerRequest {
            authorizer_name: "garbage".into(),
            ..TestInvokeAuthorizerRequest::default()
        })
        .await
        .expect_err("an invalid response");
    assert_eq!(garbage.code().name(), "InvalidResponseException");
    control
        .delete_authorizer(AuthorizerNameRequest {
            authorizer_name: "garbage".into(),
        })
        .expect("deleted");
}
