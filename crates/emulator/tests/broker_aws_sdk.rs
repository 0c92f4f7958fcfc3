//! AWS's own IoT Device SDK v2 for Python (`tests/peers/awsiot_pubsub.py`, built
//! on awscrt) connects to the emulator with `mtls_from_path` over MQTT 3.1.1 and
//! MQTT 5, subscribes, publishes and receives. It connects to `127.0.0.1` and so
//! sends the IP address as SNI, which the emulator must accept.
//!
//! Needs `scripts/setup-peers` to have run.

mod support;

use std::ffi::OsString;

use iotcore_mqtt::ProtocolVersion;
use iotcore_test_support::{PeerOutput, run_peer, spawn_peer};
use serde_json::json;
use support::{Device, RawClient, Setup};

/// Arguments for `awsiot_pubsub.py` to reach the emulator as `device`, then `more`.
fn peer_args(setup: &Setup, device: &Device, more: &[&str]) -> Vec<OsString> {
    let mut args = support::peer_args(setup, device, &[("--client-id", &device.name)]);
    args.extend(more.iter().map(OsString::from));
    args
}

/// The (topic, payload) of every "received" event, in order.
fn received(output: &PeerOutput) -> Vec<(String, String)> {
    output
        .events_named("received")
        .iter()
        .map(|e| {
            let field = |name: &str| e[name].as_str().unwrap_or_default().to_owned();
            (field("topic"), field("payload"))
        })
        .collect()
}

async fn the_sdk_receives_its_own_messages(protocol: &str) {
    let setup = Setup::start().await;
    let device = setup.device(&format!("awsiot-mqtt{protocol}"));
    let topic = format!("dt/{}/loop", device.name);
    let args = peer_args(
        &setup,
        &device,
        &[
            "--protocol",
            protocol,
            "--topic",
            &topic,
            "--subscribe-first",
            "--publish-count",
            "3",
            "--expect",
            "3",
        ],
    );
    let output = run_peer("awsiot_pubsub.py", &args).await;
    output.assert_success();
    let events = output.events();
    assert_eq!(
        events[0],
        json!({"event": "connected", "protocol": protocol.parse::<u8>().unwrap_or_default(), "session_present": false}),
        "{output}"
    );
    let expected: Vec<_> = (0..3)
        .map(|i| (topic.clone(), format!("msg-{i}")))
        .collect();
    assert_eq!(received(&output), expected, "{output}");
    assert!(output.events_named("error").is_empty(), "{output}");
    assert!(output.events_named("interrupted").is_empty(), "{output}");
}

#[tokio::test]
async fn the_aws_python_sdk_publishes_and_receives_over_mqtt311() {
    the_sdk_receives_its_own_messages("3").await;
}

#[tokio::test]
async fn the_aws_python_sdk_publishes_and_receives_over_mqtt5() {
    the_sdk_receives_its_own_messages("5").await;
}

#[tokio::test]
async fn an_mqtt5_sdk_client_receives_what_an_mqtt311_sdk_client_publishes() {
    let setup = Setup::start().await;
    let (sub_dev, pub_dev) = (setup.device("sdk-sub"), setup.device("sdk-pub"));
    let sub_args = peer_args(
        &setup,
        &sub_dev,
        &[
            "--protocol",
            "5",
            "--topic",
            "cmd/sdk-sub/+",
            "--subscribe-first",
            "--expect",
            "2",
        ],
    );
    let mut subscriber = spawn_peer("awsiot_pubsub.py", &sub_args);
    subscriber.wait_for_event("subscribed").await;
    let pub_args = peer_args(
        &setup,
        &pub_dev,
        &[
            "--protocol",
            "3",
            "--topic",
            "cmd/sdk-sub/reboot",
            "--publish-count",
            "2",
        ],
    );
    run_peer("awsiot_pubsub.py", &pub_args)
        .await
        .assert_success();
    let output = subscriber.finish().await;
    output.assert_success();
    let expected: Vec<_> = (0..2)
        .map(|i| ("cmd/sdk-sub/reboot".to_owned(), format!("msg-{i}")))
        .collect();
    assert_eq!(received(&output), expected, "{output}");
}

#[tokio::test]
async fn an_sdk_persistent_session_gets_what_was_published_while_it_was_away() {
    let setup = Setup::start().await;
    let (device, publisher_dev) = (setup.device("sdk-persistent"), setup.device("publisher"));
    let topic = "jobs/sdk-persistent";
    let first = peer_args(
        &setup,
        &device,
        &[
            "--protocol",
            "3",
            "--persistent",
            "--topic",
            topic,
            "--subscribe-first",
        ],
    );
    run_peer("awsiot_pubsub.py", &first).await.assert_success();

    let mut publisher =
        RawClient::connected(setup.addr(), &publisher_dev, ProtocolVersion::V311).await;
    publisher.publish_qos1(1, topic, "while-away").await;

    // `--expect 1` without `--subscribe-first`: it subscribes again after
    // connecting, but the stored message comes with the resumed session.
    let second = peer_args(
        &setup,
        &device,
        &[
            "--protocol",
            "3",
            "--persistent",
            "--topic",
            topic,
            "--expect",
            "1",
        ],
    );
    let output = run_peer("awsiot_pubsub.py", &second).await;
    output.assert_success();
    // The stored message may be reported before the connection callback runs.
    assert_eq!(
        output.events_named("connected"),
        [json!({"event": "connected", "protocol": 3, "session_present": true})],
        "{output}"
    );
    assert_eq!(
        received(&output),
        [(topic.to_owned(), "while-away".to_owned())],
        "{output}"
    );
}
