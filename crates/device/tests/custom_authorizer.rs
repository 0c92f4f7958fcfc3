//! The device client with a custom authorizer against the in-process
//! emulator, whose authorizer function is a command
//! (`tests/peers/custom_authorizer.py`): over MQTT (443-style ALPN `mqtt`)
//! and over WebSocket, directly and through an HTTP CONNECT proxy.
//!
//! Needs `scripts/setup-peers` to have run.

mod common;

use std::time::Duration;

use common::emulator::EmulatorBroker;
use common::{connect_refused, fast_reconnect, next, within};
use iotcore::{Client, ClientBuilder, CustomAuthorizer, DisconnectReason, Door, QoS};
use iotcore_emulator::control::CreateAuthorizerRequest;
use iotcore_test_support::{ConnectProxy, peer_script, python};
use serde_json::Value;

const TOKEN: &str = "let-this-device-in";

/// Creates authorizer `name` (unsigned tokens, key `token`) accepting
/// [`TOKEN`] under topics `dt/custom/…`; returns the file its last event goes to.
fn create_authorizer(e: &EmulatorBroker, name: &str) -> std::path::PathBuf {
    let event = std::env::temp_dir().join(format!("iotcore-{name}-{}.json", std::process::id()));
    let command = format!(
        "'{}' '{}' --token {TOKEN} --topic-prefix dt/custom --event-out '{}'",
        python().display(),
        peer_script("custom_authorizer.py").display(),
        event.display()
    );
    e.control()
        .create_authorizer(CreateAuthorizerRequest {
            authorizer_name: name.into(),
            authorizer_function_arn: command,
            token_key_name: Some("token".into()),
            signing_disabled: Some(true),
            ..CreateAuthorizerRequest::default()
        })
        .expect("authorizer created");
    event
}

fn client(e: &EmulatorBroker, thing: &str) -> ClientBuilder {
    Client::builder(thing)
        .endpoint("127.0.0.1")
        .port(e.port())
        .amazon_root_cas(false)
        .root_ca_pem_file(e.ca())
        .expect("CA file")
        .reconnect_policy(fast_reconnect(5))
        .connect_timeout(Duration::from_secs(10))
}

async fn round_trip(client: &Client, topic: &str) {
    let mut sub = client
        .subscribe(topic, QoS::AtLeastOnce)
        .await
        .expect("subscribe within the authorizer's policy");
    client
        .publish(topic, "authorized", QoS::AtLeastOnce)
        .await
        .expect("QoS 1 publish within the authorizer's policy");
    assert_eq!(
        next("the message back", &mut sub).await.payload_str(),
        Some("authorized")
    );
}

#[tokio::test]
async fn a_custom_authorizer_over_mqtt_lets_the_device_in_with_its_token_and_the_metrics() {
    let e = EmulatorBroker::start().await;
    let event = create_authorizer(&e, "by-token");
    let authorizer = CustomAuthorizer::new("by-token")
        .token("token", TOKEN)
        .username("device-7");
    let device = within(
        "connect",
        client(&e, "ca-mqtt")
            .custom_authorizer(authorizer)
            .connect(),
    )
    .await
    .expect("the authorizer lets the device in");
    round_trip(&device, "dt/custom/ca-mqtt").await;
    device.close().await;
    let event: Value = serde_json::from_slice(&std::fs::read(&event).expect("event saved"))
        .expect("the event is JSON");
    let username = event["protocolData"]["mqtt"]["username"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(username.starts_with("device-7?"), "{event}");
    assert_eq!(username.matches('?').count(), 1, "one query: {username}");
    assert!(
        username.contains("x-amz-customauthorizer-name=by-token")
            && username.contains("SDK=IoTCoreRust"),
        "{username}"
    );
    assert_eq!(event["token"], TOKEN, "{event}");
}

#[tokio::test]
async fn a_custom_authorizer_over_websocket_through_a_proxy() {
    let e = EmulatorBroker::start().await;
    create_authorizer(&e, "ws-token");
    let proxy = ConnectProxy::start().await.expect("proxy");
    let device = within(
        "connect",
        client(&e, "ca-ws")
            .custom_authorizer_over_websocket(
                CustomAuthorizer::new("ws-token").token("token", TOKEN),
            )
            .proxy(&proxy.url())
            .expect("proxy url")
            .connect(),
    )
    .await
    .expect("the authorizer lets the device in over WebSocket");
    round_trip(&device, "dt/custom/ca-ws").await;
    device.close().await;
    assert_eq!(proxy.tunnels().len(), 1);
}

#[tokio::test]
async fn a_custom_authorizer_over_websocket_with_its_values_in_the_query() {
    let e = EmulatorBroker::start().await;
    create_authorizer(&e, "ws-query");
    let device = within(
        "connect",
        client(&e, "ca-wsq")
            .custom_authorizer_over_websocket(
                CustomAuthorizer::new("ws-query")
                    .token("token", TOKEN)
                    .in_websocket_query(),
            )
            .connect(),
    )
    .await
    .expect("the authorizer lets the device in with the query form");
    round_trip(&device, "dt/custom/ca-wsq").await;
    device.close().await;
    // A wrong token in the query is refused: the values are read from there.
    let refused = within(
        "a refused connect",
        client(&e, "ca-wsq2")
            .custom_authorizer_over_websocket(
                CustomAuthorizer::new("ws-query")
                    .token("token", "not-the-token")
                    .in_websocket_query(),
            )
            .connect(),
    )
    .await;
    assert!(refused.is_err(), "a wrong token in the query is refused");
}

#[tokio::test]
async fn a_denied_token_is_a_login_refusal_naming_the_authorizer_door() {
    let e = EmulatorBroker::start().await;
    create_authorizer(&e, "denier");
    let error = connect_refused(
        client(&e, "ca-denied")
            .custom_authorizer(CustomAuthorizer::new("denier").token("token", "wrong")),
    )
    .await;
    let reason = error.disconnect_reason().expect("a reason");
    assert!(
        matches!(
            reason,
            DisconnectReason::LoginRefused {
                door: Door::CustomAuthorizer,
                ..
            }
        ),
        "{reason:?}"
    );
    assert!(error.to_string().contains("custom authorizer"), "{error}");
}
