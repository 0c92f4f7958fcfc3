//! Eclipse paho-mqtt (`tests/peers/paho_client.py`), a client nobody here
//! wrote, against the emulator: empty client ids and shared subscriptions in
//! MQTT 3.1.1 and 5 (docs/aws-iot-core-behaviour.md §1.3, §1.10).
//!
//! Needs `scripts/setup-peers` to have run.

mod support;

use std::ffi::OsString;

use iotcore_mqtt::ProtocolVersion;
use iotcore_test_support::{PeerOutput, spawn_peer};
use serde_json::Value;
use support::{Device, RawClient, Setup};

const PAHO: &str = "paho_client.py";

/// Arguments for `paho_client.py` to reach the emulator as `device` with an
/// empty client id, speaking `protocol` ("3" or "5"), then `more`.
fn paho_args(setup: &Setup, device: &Device, protocol: &str, more: &[&str]) -> Vec<OsString> {
    let files = &device.files;
    let mut args: Vec<OsString> = [
        ("--port", OsString::from(setup.addr().port().to_string())),
        ("--ca", files.root_ca.clone().into()),
        ("--cert", files.certificate.clone().into()),
        ("--key", files.private_key.clone().into()),
        ("--protocol", protocol.into()),
    ]
    .into_iter()
    .flat_map(|(flag, value)| [OsString::from(flag), value])
    .collect();
    args.extend(more.iter().map(OsString::from));
    args
}

/// The payloads of every "received" event, in order.
fn received(output: &PeerOutput) -> Vec<String> {
    output
        .events_named("received")
        .iter()
        .map(|e| e["payload"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn two_paho_clients_with_empty_ids_both_stay_connected(protocol: &str) {
    let setup = Setup::start().await;
    let (device, publisher) = (setup.device("paho"), setup.device("publisher"));
    let member = || {
        spawn_peer(
            PAHO,
            paho_args(
                &setup,
                &device,
                protocol,
                &["--subscribe", "news/paho", "--expect", "2"],
            ),
        )
    };
    let mut first = member();
    let first_connected = first.wait_for_event("connected").await;
    first.wait_for_event("subscribed").await;
    let mut second = member();
    let second_connected = second.wait_for_event("connected").await;
    second.wait_for_event("subscribed").await;

    let assigned = |event: &Value| event["assigned_client_id"].as_str().map(str::to_owned);
    if protocol == "5" {
        let (a, b) = (
            assigned(&first_connected).expect("an assigned id"),
            assigned(&second_connected).expect("an assigned id"),
        );
        assert!(a.starts_with("$GEN/") && b.starts_with("$GEN/"), "{a} {b}");
        assert_ne!(a, b);
    } else {
        assert_eq!(assigned(&first_connected), None);
    }

    let mut client = RawClient::connected(setup.addr(), &publisher, ProtocolVersion::V5).await;
    for (id, payload) in [(1, "one"), (2, "two")] {
        client.publish_qos1(id, "news/paho", payload).await;
    }
    // Had the second taken the first over, the first would have been
    // disconnected and would not receive both messages.
    for peer in [first, second] {
        let output = peer.finish().await;
        output.assert_success();
        assert_eq!(received(&output), ["one", "two"], "{output}");
        assert!(output.events_named("disconnected").is_empty(), "{output}");
    }
}

#[tokio::test]
async fn two_paho_mqtt311_clients_with_empty_ids_both_stay_connected() {
    two_paho_clients_with_empty_ids_both_stay_connected("3").await;
}

#[tokio::test]
async fn two_paho_mqtt5_clients_with_empty_ids_get_distinct_assigned_ids() {
    two_paho_clients_with_empty_ids_both_stay_connected("5").await;
}
