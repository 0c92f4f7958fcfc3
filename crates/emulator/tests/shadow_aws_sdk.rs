//! AWS's own shadow clients against the emulator's Device Shadow service:
//! `tests/peers/awsiot_shadow.py` drives `awsiot.iotshadow.IotShadowClient`
//! (exact subscriptions, made once) or `IotShadowClientV2` (request-response
//! with `+` subscriptions around each request, and a delta stream) over MQTT
//! 3.1.1 or 5: get (404), update, a delta made from the cloud side, update,
//! get, a stale-version update (409), delete.
//!
//! Needs `scripts/setup-peers` to have run.

mod support;

use std::ffi::OsString;

use iotcore_test_support::spawn_peer;
use serde_json::{Value, json};
use support::Setup;

async fn aws_shadow_client_round_trip(client: &str, protocol: &str, shadow: Option<&str>) {
    let setup = Setup::start().await;
    let device = setup.device(&format!("awsiot-shadow-{client}-{protocol}"));
    let files = &device.files;
    let mut args: Vec<OsString> = vec![
        "--port".into(),
        setup.addr().port().to_string().into(),
        "--ca".into(),
        files.root_ca.clone().into(),
        "--cert".into(),
        files.certificate.clone().into(),
        "--key".into(),
        files.private_key.clone().into(),
        "--client-id".into(),
        device.name.clone().into(),
        "--client".into(),
        client.into(),
        "--protocol".into(),
        protocol.into(),
    ];
    if let Some(shadow) = shadow {
        args.extend(["--shadow".into(), shadow.into()]);
    }
    let mut peer = spawn_peer("awsiot_shadow.py", &args);
    peer.wait_for_event("ready").await;
    // The cloud side changes the desired state while the device listens.
    let desired = json!({"state": {"desired": {"color": "blue", "seq": [1, 2]}}});
    let accepted = setup
        .emulator
        .shadows()
        .update(&device.name, shadow, desired.to_string().as_bytes())
        .await
        .expect("cloud-side update");
    assert_eq!(accepted.version, 2);
    let output = peer.finish().await;
    output.assert_success();

    let steps: Vec<Value> = output
        .events()
        .into_iter()
        .filter(|e| {
            ["get", "update", "delta", "delete"].contains(&e["event"].as_str().unwrap_or(""))
        })
        .collect();
    let name = shadow.unwrap_or(&device.name);
    let both = json!({"color": "blue", "seq": [1, 2]});
    assert_eq!(
        steps,
        [
            json!({"event": "get", "outcome": "rejected", "code": 404,
                   "message": format!("No shadow exists with name: '{name}'"), "token_ok": true}),
            json!({"event": "update", "outcome": "accepted", "version": 1, "token_ok": true,
                   "state": {"reported": {"color": "red", "seq": [1, 2]}}}),
            json!({"event": "delta", "state": {"color": "blue"}, "version": 2}),
            json!({"event": "update", "outcome": "accepted", "version": 3, "token_ok": true,
                   "state": {"reported": {"color": "blue"}}}),
            json!({"event": "get", "outcome": "accepted", "version": 3, "token_ok": true,
                   "state": {"desired": both, "reported": both}}),
            json!({"event": "update", "outcome": "rejected", "code": 409,
                   "message": "Version conflict", "token_ok": true}),
            json!({"event": "delete", "outcome": "accepted", "version": 3, "token_ok": true}),
        ],
        "{output}"
    );
    assert!(output.events_named("error").is_empty(), "{output}");
    assert!(output.events_named("interrupted").is_empty(), "{output}");
}

#[tokio::test]
async fn iot_shadow_client_over_mqtt311_classic_shadow() {
    aws_shadow_client_round_trip("v1", "3", None).await;
}

#[tokio::test]
async fn iot_shadow_client_over_mqtt5_named_shadow() {
    aws_shadow_client_round_trip("v1", "5", Some("config")).await;
}

#[tokio::test]
async fn iot_shadow_client_v2_over_mqtt311_named_shadow() {
    aws_shadow_client_round_trip("v2", "3", Some("config")).await;
}

#[tokio::test]
async fn iot_shadow_client_v2_over_mqtt5_classic_shadow() {
    aws_shadow_client_round_trip("v2", "5", None).await;
}
