//! Eclipse paho-mqtt (`tests/peers/paho_client.py`), a client nobody here
//! wrote, against the emulator: empty client ids and shared subscriptions in
//! MQTT 3.1.1 and 5 (docs/aws-iot-core-behaviour.md §1.3, §1.10); in a shared
//! subscription group, paho is one member and a raw client the other.
//!
//! Needs `scripts/setup-peers` to have run.

mod support;

use std::ffi::OsString;

use iotcore_mqtt::{Packet, ProtocolVersion, QoS};
use iotcore_test_support::{PeerOutput, spawn_peer};
use serde_json::Value;
use support::{Device, RawClient, Setup};

const PAHO: &str = "paho_client.py";

/// Arguments for `paho_client.py` to reach the emulator as `device` with an
/// empty client id, speaking `protocol` ("3" or "5"), then `more`.
fn paho_args(setup: &Setup, device: &Device, protocol: &str, more: &[&str]) -> Vec<OsString> {
    let mut args = support::peer_args(setup, device, &[("--protocol", protocol)]);
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

async fn a_paho_member_shares_a_group_with_a_raw_member(protocol: &str) {
    let setup = Setup::start().await;
    let (paho_dev, raw_dev, publisher) = (
        setup.device("paho-member"),
        setup.device("raw-member"),
        setup.device("publisher"),
    );
    let filter = "$share/crew/tasks/+";
    let mut paho = spawn_peer(
        PAHO,
        paho_args(
            &setup,
            &paho_dev,
            protocol,
            &["--client-id", "paho-member", "--subscribe", filter],
        ),
    );
    let subscribed = paho.wait_for_event("subscribed").await;
    assert_eq!(
        subscribed["reasons"],
        serde_json::json!([1]),
        "{subscribed}"
    );
    let mut raw = RawClient::connected(setup.addr(), &raw_dev, ProtocolVersion::V5).await;
    raw.subscribe(1, &[filter], QoS::AtLeastOnce).await;

    const COUNT: u16 = 20;
    let mut client = RawClient::connected(setup.addr(), &publisher, ProtocolVersion::V5).await;
    for i in 0..COUNT {
        client.publish_qos1(i + 1, "tasks/new", i.to_string()).await;
    }
    // Each message reaches one member: read both until all have arrived.
    let (mut by_paho, mut by_raw) = (Vec::new(), Vec::new());
    while by_paho.len() + by_raw.len() < usize::from(COUNT) {
        tokio::select! {
            event = paho.next_event() => {
                let event = event.expect("paho is still running");
                assert_ne!(event["event"], "disconnected", "{event}");
                if event["event"] == "received" {
                    assert_eq!(event["topic"], "tasks/new");
                    by_paho.push(event["payload"].as_str().unwrap_or_default().to_owned());
                }
            }
            packet = raw.recv_skipping_pings() => {
                let Some(Packet::Publish(publish)) = packet else {
                    panic!("expected PUBLISH, got {packet:?}");
                };
                raw.send(&support::puback(publish.packet_id.unwrap_or(0))).await;
                by_raw.push(String::from_utf8(publish.payload.to_vec()).unwrap());
            }
        }
    }
    let output = paho.kill().await;
    let mut all = [by_paho, by_raw].concat();
    all.sort_by_key(|p| p.parse::<u16>().unwrap_or(u16::MAX));
    let expected: Vec<String> = (0..COUNT).map(|i| i.to_string()).collect();
    assert_eq!(all, expected, "each message once, to one member\n{output}");
}

#[tokio::test]
async fn a_paho_mqtt311_client_is_a_member_of_a_shared_subscription_group() {
    a_paho_member_shares_a_group_with_a_raw_member("3").await;
}

#[tokio::test]
async fn a_paho_mqtt5_client_is_a_member_of_a_shared_subscription_group() {
    a_paho_member_shares_a_group_with_a_raw_member("5").await;
}
