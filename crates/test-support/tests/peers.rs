//! The harness against real peers: a Mosquitto broker started by `Mosquitto::start`, reached by
//! AWS's IoT Device SDK v2 for Python (`tests/peers/awsiot_pubsub.py`, MQTT 3.1.1 and 5) and by
//! `mosquitto_pub` / `mosquitto_sub`, all with client certificates from `TestPki`.
//!
//! Needs `scripts/setup-peers` to have run.

use std::ffi::OsString;
use std::path::Path;
use std::process::Output;

use iotcore_test_support::{
    BrokerTls, CertFiles, Error, FaultProxy, Mosquitto, PeerOutput, TestPki, free_port,
    init_tracing, run_peer, spawn_peer,
};
use serde_json::{Value, json};
use tokio::process::Command;

/// Arguments for `awsiot_pubsub.py` to reach `127.0.0.1:port`, trusting `ca`, as `client`.
fn peer_args(port: u16, ca: &Path, client: &CertFiles, client_id: &str) -> Vec<OsString> {
    [
        ("--port", OsString::from(port.to_string())),
        ("--ca", ca.into()),
        ("--cert", client.cert().into()),
        ("--key", client.key().into()),
        ("--client-id", client_id.into()),
    ]
    .into_iter()
    .flat_map(|(flag, value)| [OsString::from(flag), value])
    .collect()
}

fn with(mut args: Vec<OsString>, more: &[&str]) -> Vec<OsString> {
    args.extend(more.iter().map(OsString::from));
    args
}

async fn mosquitto_client(program: &str, args: &[OsString]) -> Output {
    Command::new(program)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {program}: {e} (run scripts/setup-peers)"))
}

fn describe(output: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The (topic, payload) of every "received" event, in order.
fn received(output: &PeerOutput) -> Vec<(String, String)> {
    output
        .events_named("received")
        .iter()
        .map(|e| {
            (
                e["topic"].as_str().unwrap().to_owned(),
                e["payload"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn awsiot_client_receives_its_own_messages(protocol: &str) {
    init_tracing();
    let pki = TestPki::generate().unwrap();
    let broker = Mosquitto::start(&pki).unwrap();
    let args = with(
        peer_args(
            broker.port(),
            broker.ca_path(),
            pki.client(),
            &format!("awsiot-mqtt{protocol}"),
        ),
        &[
            "--protocol",
            protocol,
            "--topic",
            "dt/test/loop",
            "--subscribe-first",
            "--publish-count",
            "3",
            "--qos",
            "1",
            "--expect",
            "3",
            "--timeout",
            "30",
        ],
    );
    let output = run_peer("awsiot_pubsub.py", &args).await;
    output.assert_success();
    let events = output.events();
    assert_eq!(
        events[0],
        json!({"event": "connected", "protocol": protocol.parse::<u8>().unwrap(),
               "session_present": false}),
        "{output}"
    );
    assert_eq!(
        events[1],
        json!({"event": "subscribed", "topic": "dt/test/loop", "qos": 1})
    );
    assert_eq!(output.events_named("published").len(), 3, "{output}");
    let expected: Vec<_> = (0..3)
        .map(|i| ("dt/test/loop".to_owned(), format!("msg-{i}")))
        .collect();
    assert_eq!(received(&output), expected, "{output}");
    assert!(output.events_named("interrupted").is_empty(), "{output}");
    assert!(output.events_named("error").is_empty(), "{output}");
    assert_eq!(
        events.last(),
        Some(&json!({"event": "disconnected"})),
        "{output}"
    );
    assert!(
        broker.log().contains(&format!(
            "as awsiot-mqtt{protocol} (p{}",
            if protocol == "5" { "5" } else { "2" }
        )),
        "mosquitto did not log the expected protocol:\n{}",
        broker.log()
    );
}

#[tokio::test]
async fn awsiot_mqtt311_client_receives_its_own_messages_through_mosquitto() {
    awsiot_client_receives_its_own_messages("3").await;
}

#[tokio::test]
async fn awsiot_mqtt5_client_receives_its_own_messages_through_mosquitto() {
    awsiot_client_receives_its_own_messages("5").await;
}

#[tokio::test]
async fn mosquitto_clients_exchange_a_retained_message_with_a_client_certificate() {
    init_tracing();
    let pki = TestPki::generate().unwrap();
    let broker = Mosquitto::start(&pki).unwrap();
    let client = broker.client_args(pki.client());

    let publish = with(
        client.clone(),
        &[
            "-i",
            "pub",
            "-q",
            "1",
            "-r",
            "-t",
            "cmd/retained",
            "-m",
            "hello",
        ],
    );
    let published = mosquitto_client("mosquitto_pub", &publish).await;
    assert!(published.status.success(), "{}", describe(&published));

    let subscribe = with(
        client,
        &["-i", "sub", "-C", "1", "-W", "30", "-v", "-t", "cmd/#"],
    );
    let got = mosquitto_client("mosquitto_sub", &subscribe).await;
    assert!(got.status.success(), "{}", describe(&got));
    assert_eq!(String::from_utf8_lossy(&got.stdout), "cmd/retained hello\n");
    assert!(
        broker
            .log()
            .contains(&format!("u'{}'", TestPki::DEFAULT_CLIENT)),
        "the certificate's CN is not the username:\n{}",
        broker.log()
    );
}

#[tokio::test]
async fn awsiot_subscriber_receives_what_mosquitto_pub_publishes() {
    init_tracing();
    let pki = TestPki::generate().unwrap();
    let broker = Mosquitto::start(&pki).unwrap();
    let device = pki.issue_client("device-7").unwrap();
    let args = with(
        peer_args(broker.port(), broker.ca_path(), &device, "device-7"),
        &[
            "--protocol",
            "5",
            "--topic",
            "cmd/device-7/reboot",
            "--subscribe-topic",
            "cmd/device-7/#",
            "--subscribe-first",
            "--expect",
            "1",
        ],
    );
    let mut peer = spawn_peer("awsiot_pubsub.py", &args);
    peer.wait_for_event("subscribed").await;

    let publish = with(
        broker.client_args(pki.client()),
        &[
            "-q",
            "1",
            "-t",
            "cmd/device-7/reboot",
            "-m",
            "{\"now\":true}",
        ],
    );
    let published = mosquitto_client("mosquitto_pub", &publish).await;
    assert!(published.status.success(), "{}", describe(&published));

    let received_event: Value = peer.wait_for_event("received").await;
    assert_eq!(received_event["topic"], "cmd/device-7/reboot");
    assert_eq!(received_event["payload"], "{\"now\":true}");
    assert_eq!(received_event["qos"], 1);
    peer.finish().await.assert_success();
}

#[tokio::test]
async fn mosquitto_rejects_a_client_without_a_certificate() {
    init_tracing();
    let pki = TestPki::generate().unwrap();
    let broker = Mosquitto::start(&pki).unwrap();
    let args: Vec<OsString> = [
        "-h",
        "127.0.0.1",
        "-p",
        &broker.port().to_string(),
        "--cafile",
        pki.ca_path().to_str().unwrap(),
        "-t",
        "x",
        "-m",
        "y",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    let output = mosquitto_client("mosquitto_pub", &args).await;
    assert!(!output.status.success(), "{}", describe(&output));
}

#[tokio::test]
async fn mosquitto_rejects_a_certificate_from_another_ca() {
    init_tracing();
    let pki = TestPki::generate().unwrap();
    let stranger = TestPki::generate().unwrap();
    let broker = Mosquitto::start(&pki).unwrap();
    let mut args = broker.client_args(stranger.client());
    args.extend(["-t", "x", "-m", "y"].map(OsString::from));
    let output = mosquitto_client("mosquitto_pub", &args).await;
    assert!(!output.status.success(), "{}", describe(&output));
}

#[tokio::test]
async fn restarted_mosquitto_serves_the_same_port() {
    init_tracing();
    let pki = TestPki::generate().unwrap();
    let mut broker = Mosquitto::start(&pki).unwrap();
    let port = broker.port();
    broker.restart().unwrap();
    assert_eq!(broker.port(), port);
    let mut args = broker.client_args(pki.client());
    args.extend(["-t", "after/restart", "-m", "up"].map(OsString::from));
    let output = mosquitto_client("mosquitto_pub", &args).await;
    assert!(output.status.success(), "{}", describe(&output));
}

#[tokio::test]
async fn awsiot_peer_reports_an_unreachable_broker_and_fails() {
    init_tracing();
    let pki = TestPki::generate().unwrap();
    let port = free_port().to_string();
    let args: Vec<OsString> = [
        "--port",
        &port,
        "--ca",
        pki.ca_path().to_str().unwrap(),
        "--cert",
        pki.client().cert().to_str().unwrap(),
        "--key",
        pki.client().key().to_str().unwrap(),
        "--client-id",
        "nobody-home",
        "--topic",
        "t",
        "--timeout",
        "20",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    for protocol in ["3", "5"] {
        let output = run_peer(
            "awsiot_pubsub.py",
            with(args.clone(), &["--protocol", protocol]),
        )
        .await;
        assert!(!output.success(), "{output}");
        let errors = output.events_named("error");
        assert_eq!(errors.len(), 1, "{output}");
        assert_eq!(errors[0]["stage"], "connect", "{output}");
        assert!(output.events_named("connected").is_empty(), "{output}");
    }
}

#[tokio::test]
async fn awsiot_peer_times_out_waiting_for_messages_that_never_come() {
    init_tracing();
    let pki = TestPki::generate().unwrap();
    let broker = Mosquitto::start(&pki).unwrap();
    let args = with(
        peer_args(broker.port(), broker.ca_path(), pki.client(), "waiting"),
        &["--topic", "silence", "--expect", "1", "--timeout", "1"],
    );
    let output = run_peer("awsiot_pubsub.py", &args).await;
    assert_eq!(output.status.and_then(|s| s.code()), Some(2), "{output}");
    let errors = output.events_named("error");
    assert_eq!(errors.len(), 1, "{output}");
    assert_eq!(errors[0]["stage"], "receive", "{output}");
    assert_eq!(output.events_named("subscribed").len(), 1, "{output}");
}

#[test]
fn mosquitto_start_reports_an_unusable_key_with_the_broker_log() {
    let pki = TestPki::generate().unwrap();
    let mut tls = BrokerTls::from(&pki);
    tls.key = pki.dir().join("no-such-key.pem");
    let err = Mosquitto::start(tls).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::MosquittoExited { .. }), "{message}");
    assert!(message.contains("no-such-key.pem"), "{message}");
}

#[tokio::test]
async fn awsiot_client_behind_a_fault_proxy_sees_a_cut_as_an_interruption() {
    init_tracing();
    let pki = TestPki::generate().unwrap();
    let broker = Mosquitto::start(&pki).unwrap();
    let proxy = FaultProxy::start(broker.addr()).await.unwrap();
    let args = with(
        peer_args(proxy.port(), broker.ca_path(), pki.client(), "behind-proxy"),
        &["--topic", "t/cut", "--subscribe-first", "--expect", "1"],
    );
    let mut peer = spawn_peer("awsiot_pubsub.py", &args);
    peer.wait_for_event("subscribed").await;
    assert_eq!(proxy.active(), 1);

    proxy.cut();

    peer.wait_for_event("interrupted").await;
    let output = peer.kill().await;
    assert!(output.events_named("error").is_empty(), "{output}");
}
