//! Lifecycle events as AWS IoT Core publishes them (docs/aws-iot-core-behaviour.md
//! §2): topics, JSON keys in AWS's order, and values, watched by an
//! "application" client subscribed to `$aws/events/#`.

mod support;

use iotcore_emulator::control::ThingPolicy;
use iotcore_emulator::policy::PolicyTemplate;
use iotcore_mqtt::packet::{Publish, Unsubscribe};
use iotcore_mqtt::{Packet, ProtocolVersion, QoS, ReasonCode};
use serde_json::Value;
use support::*;

const V5: ProtocolVersion = ProtocolVersion::V5;

/// The application watching the events.
async fn watcher(setup: &Setup) -> RawClient {
    let app = setup.device_with("app", ThingPolicy::Template(PolicyTemplate::Application));
    let mut client = RawClient::connected(setup.addr(), &app, V5).await;
    let granted = client
        .subscribe(1, &["$aws/events/#"], QoS::AtLeastOnce)
        .await;
    assert_eq!(granted, [ReasonCode::GRANTED_QOS_1]);
    client
}

/// The next event about `client_id` (the watcher's own are skipped), with its topic.
async fn next_event(watcher: &mut RawClient, client_id: &str) -> (String, Value, String) {
    loop {
        let Publish { topic, payload, .. } = watcher.recv_publish().await;
        let text = String::from_utf8(payload.to_vec()).expect("UTF-8 JSON");
        let event: Value = serde_json::from_str(&text).expect("JSON");
        if event["clientId"] == client_id {
            return (topic.to_string(), event, text);
        }
    }
}

/// Asserts the payload's keys are exactly `keys`, in that order.
fn assert_keys(text: &str, keys: &[&str]) {
    let value: Value = serde_json::from_str(text).unwrap();
    let object = value.as_object().unwrap();
    assert_eq!(object.len(), keys.len(), "{text}");
    let positions: Vec<usize> = keys
        .iter()
        .map(|k| {
            text.find(&format!("\"{k}\":"))
                .unwrap_or_else(|| panic!("no {k} in {text}"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "key order: {text}"
    );
}

#[tokio::test]
async fn connect_subscribe_unsubscribe_and_disconnect_are_published_with_aws_payloads() {
    let setup = Setup::start().await;
    let mut watcher = watcher(&setup).await;
    let device = setup.device_with("dev", ThingPolicy::default());
    let mut client = RawClient::connected(setup.addr(), &device, V5).await;

    let (topic, connected, text) = next_event(&mut watcher, "dev").await;
    assert_eq!(topic, "$aws/events/presence/connected/dev");
    assert_keys(
        &text,
        &[
            "clientId",
            "timestamp",
            "eventType",
            "sessionIdentifier",
            "principalIdentifier",
            "ipAddress",
            "versionNumber",
        ],
    );
    assert_eq!(connected["eventType"], "connected");
    assert_eq!(
        connected["principalIdentifier"],
        device.credentials.certificate_id.as_str()
    );
    assert_eq!(connected["ipAddress"], "127.0.0.1");
    assert_eq!(connected["versionNumber"], 0);
    assert!(
        connected["timestamp"].as_u64().unwrap() > 1_600_000_000_000,
        "milliseconds"
    );
    let session = connected["sessionIdentifier"].as_str().unwrap().to_owned();
    assert_eq!(session.len(), 36, "a UUID: {session}");

    client
        .subscribe(1, &["dt/dev/a", "dt/dev/b"], QoS::AtLeastOnce)
        .await;
    let (topic, subscribed, text) = next_event(&mut watcher, "dev").await;
    assert_eq!(topic, "$aws/events/subscriptions/subscribed/dev");
    assert_keys(
        &text,
        &[
            "clientId",
            "timestamp",
            "eventType",
            "sessionIdentifier",
            "principalIdentifier",
            "topics",
        ],
    );
    assert_eq!(
        subscribed["topics"],
        serde_json::json!(["dt/dev/a", "dt/dev/b"])
    );
    assert_eq!(subscribed["sessionIdentifier"], session.as_str());

    client
        .send(&Packet::Unsubscribe(Unsubscribe {
            packet_id: 2,
            filters: vec!["dt/dev/a".into()],
            properties: Default::default(),
        }))
        .await;
    let (topic, unsubscribed, _) = next_event(&mut watcher, "dev").await;
    assert_eq!(topic, "$aws/events/subscriptions/unsubscribed/dev");
    assert_eq!(unsubscribed["eventType"], "unsubscribed");
    assert_eq!(unsubscribed["topics"], serde_json::json!(["dt/dev/a"]));

    client.disconnect().await;
    let (topic, disconnected, text) = next_event(&mut watcher, "dev").await;
    assert_eq!(topic, "$aws/events/presence/disconnected/dev");
    assert_keys(
        &text,
        &[
            "clientId",
            "timestamp",
            "eventType",
            "sessionIdentifier",
            "principalIdentifier",
            "clientInitiatedDisconnect",
            "disconnectReason",
            "versionNumber",
        ],
    );
    assert_eq!(disconnected["clientInitiatedDisconnect"], true);
    assert_eq!(
        disconnected["disconnectReason"],
        "CLIENT_INITIATED_DISCONNECT"
    );
    assert_eq!(disconnected["sessionIdentifier"], session.as_str());
    assert_eq!(disconnected["versionNumber"], 0);
}

#[tokio::test]
async fn disconnect_reasons_say_who_ended_the_connection() {
    let setup = Setup::start().await;
    let mut watcher = watcher(&setup).await;
    let device = setup.device_with("dev", ThingPolicy::default());

    // Taken over: the first connection's event says DUPLICATE_CLIENTID.
    let first = RawClient::connected(setup.addr(), &device, V5).await;
    let (_, connected, _) = next_event(&mut watcher, "dev").await;
    assert_eq!(connected["versionNumber"], 0);
    let second = RawClient::connected(setup.addr(), &device, V5).await;
    let mut reasons = Vec::new();
    while reasons.len() < 2 {
        let (_, event, _) = next_event(&mut watcher, "dev").await;
        reasons.push((
            event["eventType"].as_str().unwrap().to_owned(),
            event["versionNumber"].as_u64().unwrap(),
            event["disconnectReason"].as_str().unwrap_or("").to_owned(),
        ));
    }
    reasons.sort();
    assert_eq!(
        reasons,
        [
            ("connected".to_owned(), 1, String::new()),
            (
                "disconnected".to_owned(),
                0,
                "DUPLICATE_CLIENTID".to_owned()
            ),
        ],
        "events may come in either order, as on AWS"
    );
    drop(first);

    // Lost: the socket closes without DISCONNECT.
    drop(second);
    let (_, lost, _) = next_event(&mut watcher, "dev").await;
    assert_eq!(lost["disconnectReason"], "CONNECTION_LOST");
    assert_eq!(lost["clientInitiatedDisconnect"], false);

    // Revoked while connected: AUTH_ERROR.
    let _third = RawClient::connected(setup.addr(), &device, V5).await;
    next_event(&mut watcher, "dev").await;
    set_certificate_status(
        setup.emulator.control(),
        &device.credentials.certificate_id,
        "REVOKED",
    );
    let (_, revoked, _) = next_event(&mut watcher, "dev").await;
    assert_eq!(revoked["disconnectReason"], "AUTH_ERROR");
}

#[tokio::test]
async fn a_connect_the_policy_refuses_is_published_as_connect_failed() {
    let setup = Setup::start().await;
    let mut watcher = watcher(&setup).await;
    let device = setup.device_with("dev", ThingPolicy::default());
    let (_, connack) =
        RawClient::connect(setup.addr(), &device, connect_packet("intruder", V5)).await;
    assert_eq!(connack.reason, ReasonCode::NOT_AUTHORIZED);
    let (topic, failed, text) = next_event(&mut watcher, "intruder").await;
    assert_eq!(topic, "$aws/events/presence/connect_failed/intruder");
    assert_keys(
        &text,
        &[
            "clientId",
            "timestamp",
            "eventType",
            "connectFailureReason",
            "principalIdentifier",
            "sessionIdentifier",
            "ipAddress",
        ],
    );
    assert_eq!(failed["connectFailureReason"], "AUTHORIZATION_FAILED");
}

#[tokio::test]
async fn a_device_with_the_default_policy_cannot_watch_other_devices_events() {
    let setup = Setup::start().await;
    let device = setup.device_with("dev", ThingPolicy::default());
    let mut client = RawClient::connected(setup.addr(), &device, V5).await;
    assert_eq!(
        client
            .subscribe(1, &["$aws/events/#"], QoS::AtLeastOnce)
            .await,
        [ReasonCode::NOT_AUTHORIZED]
    );
}
