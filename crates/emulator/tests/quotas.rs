//! AWS IoT Core's quotas (docs/aws-iot-core-behaviour.md §1.7), each one
//! exceeded through a real connection and answered as AWS answers it, and
//! lifted when the emulator runs with the quota off.
//!
//! The emulator runs on a manual clock: a rate quota refills only when a test
//! moves it, so nothing here depends on how fast the machine is. Small figures
//! keep the tests short. Where a test shows that something did *not* happen,
//! a PINGREQ sent after it is the fence: its PINGRESP comes back first.

mod support;

use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use iotcore_emulator::clock::{Clock, ManualClock};
use iotcore_emulator::quotas::{Quota, Quotas};
use iotcore_mqtt::{Packet, ProtocolVersion, QoS, ReasonCode};
use serde_json::{Value, json};
use support::*;

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V311;

/// An emulator on a manual clock, with AWS's quotas but for `changes`.
async fn start(changes: &[(Quota, Option<u64>)]) -> (Setup, ManualClock) {
    let mut quotas = Quotas::aws();
    for (quota, value) in changes {
        quotas.set(*quota, *value).expect("quota");
    }
    start_with(quotas).await
}

async fn start_with(quotas: Quotas) -> (Setup, ManualClock) {
    let (clock, hand) = Clock::manual(SystemTime::now());
    let setup = Setup::start_with(|config| config.with_quotas(quotas).with_clock(clock)).await;
    (setup, hand)
}

/// `packets` encoded back to back, to arrive in one read.
fn burst(packets: &[Packet], protocol: ProtocolVersion) -> BytesMut {
    let mut bytes = BytesMut::new();
    for packet in packets {
        packet.encode(protocol, &mut bytes).expect("encodes");
    }
    bytes
}

/// Sends PINGREQ and returns every packet that came before its PINGRESP.
async fn until_pong(client: &mut RawClient) -> Vec<Packet> {
    client.send(&Packet::PingReq).await;
    let mut before = Vec::new();
    loop {
        match client.recv().await {
            Some(Packet::PingResp) => return before,
            Some(packet) => before.push(packet),
            None => panic!("closed before PINGRESP; got {before:?}"),
        }
    }
}

fn pubacks(packets: &[Packet]) -> Vec<(u16, ReasonCode)> {
    packets
        .iter()
        .filter_map(|p| match p {
            Packet::PubAck(ack) => Some((ack.packet_id, ack.reason)),
            _ => None,
        })
        .collect()
}

fn qos1(topic: &str, id: u16, payload: &str) -> Packet {
    publish(
        topic,
        QoS::AtLeastOnce,
        Some(id),
        Bytes::from(payload.to_owned()),
    )
}

// ----- publishes per second per connection -----

#[tokio::test]
async fn publishes_over_the_rate_are_discarded_without_puback_and_the_next_second_is_served() {
    let (setup, clock) = start(&[(Quota::PublishesPerSecond, Some(3))]).await;
    let watcher_device = setup.device("watcher");
    let mut watcher = RawClient::connected(setup.addr(), &watcher_device, V311).await;
    watcher.subscribe(1, &["q/t"], QoS::AtLeastOnce).await;
    let device = setup.device("dev");
    let mut client = RawClient::connected(setup.addr(), &device, V311).await;

    let five: Vec<Packet> = (1..=5).map(|i| qos1("q/t", i, &format!("m{i}"))).collect();
    client.send_raw(&burst(&five, V311)).await.unwrap();
    let acks = pubacks(&until_pong(&mut client).await);
    assert_eq!(
        acks.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [1, 2, 3],
        "MQTT 3.1.1: the 4th and 5th in the second get no PUBACK"
    );

    clock.advance(Duration::from_secs(1));
    assert_eq!(
        client.publish_qos1(6, "q/t", "m6").await,
        ReasonCode::SUCCESS
    );
    // The watcher gets what was accepted, and nothing that was discarded
    // (it would come before m6).
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(watcher.recv_publish().await.payload);
    }
    assert_eq!(got, ["m1", "m2", "m3", "m6"]);
    client.disconnect().await;
}

#[tokio::test]
async fn paho_over_mqtt5_gets_puback_quota_exceeded_for_publishes_over_the_rate() {
    let (setup, _clock) = start(&[(Quota::PublishesPerSecond, Some(3))]).await;
    let device = setup.device("paho-pub");
    let mut args = peer_args(
        &setup,
        &device,
        &[
            ("--client-id", "paho-pub"),
            ("--protocol", "5"),
            ("--publish", "q/paho"),
            ("--publish-count", "5"),
            ("--timeout", "20"),
            ("--expect", "0"),
        ],
    );
    args.push("--leave".into());
    let output = iotcore_test_support::run_peer("paho_client.py", args).await;
    output.assert_success();
    let reasons: Vec<Value> = output
        .events_named("published")
        .iter()
        .map(|e| e["reason"].clone())
        .collect();
    assert_eq!(
        reasons,
        [json!(0), json!(0), json!(0), json!(0x97), json!(0x97)],
        "{output}"
    );
}

#[tokio::test]
async fn with_the_publish_quota_off_a_burst_is_all_acknowledged() {
    let (setup, _clock) = start(&[(Quota::PublishesPerSecond, None)]).await;
    let device = setup.device("dev");
    let mut client = RawClient::connected(setup.addr(), &device, V311).await;
    // Above the inbound in-flight quota too: the emulator acknowledges as it reads.
    let many: Vec<Packet> = (1..=300).map(|i| qos1("q/t", i, "x")).collect();
    client.send_raw(&burst(&many, V311)).await.unwrap();
    let mut acks = Vec::new();
    while acks.len() < 300 {
        acks.extend(pubacks(&until_pong(&mut client).await));
    }
    assert!(
        acks.iter()
            .all(|(_, reason)| *reason == ReasonCode::SUCCESS)
    );
    client.disconnect().await;
}

// ----- CONNECTs per second per client id -----

#[tokio::test]
async fn a_second_connect_of_a_client_id_within_the_second_is_refused_and_paho_sees_quota_exceeded()
{
    let (setup, clock) = start(&[]).await;
    let device = setup.device("twice");
    let mut first = RawClient::connected(setup.addr(), &device, V5).await;

    let paho_args = peer_args(
        &setup,
        &device,
        &[
            ("--client-id", "twice"),
            ("--protocol", "5"),
            ("--subscribe", "q/twice"),
            ("--publish", "q/twice"),
            ("--publish-count", "1"),
            ("--expect", "1"),
            ("--timeout", "20"),
        ],
    );
    let refused = iotcore_test_support::run_peer("paho_client.py", paho_args.clone()).await;
    let events = refused.events_named("refused");
    assert_eq!(events.len(), 1, "{refused}");
    assert_eq!(events[0]["reason"], json!(0x97), "{refused}");
    // The refused CONNECT did not take the client id over.
    assert!(until_pong(&mut first).await.is_empty());

    // MQTT 3.1.1 has no reason code for it: the connection is closed.
    let mut v311 = RawClient::open(setup.addr(), &device).await.unwrap();
    v311.send(&Packet::Connect(Box::new(connect_packet("twice", V311))))
        .await;
    assert!(v311.until_closed().await.is_empty());

    clock.advance(Duration::from_secs(1));
    let served = iotcore_test_support::run_peer("paho_client.py", paho_args).await;
    served.assert_success();
    assert_eq!(
        disconnect_reason(&first.until_closed().await),
        Some(ReasonCode::SESSION_TAKEN_OVER),
        "a second later the CONNECT is served and takes over"
    );
}

#[tokio::test]
async fn with_the_connect_quota_off_a_client_id_reconnects_at_once() {
    let (setup, _clock) = start(&[(Quota::ConnectsPerSecond, None)]).await;
    let device = setup.device("again");
    for _ in 0..3 {
        RawClient::connected(setup.addr(), &device, V5)
            .await
            .disconnect()
            .await;
    }
}

// ----- bytes per second per connection -----

#[tokio::test]
async fn bytes_over_the_rate_are_delayed_not_dropped() {
    let (setup, clock) = start(&[(Quota::BytesPerSecond, Some(1_000))]).await;
    let device = setup.device("bulk");
    let mut client = RawClient::connected(setup.addr(), &device, V311).await;
    client.send(&qos1("q/bulk", 1, &"x".repeat(2_000))).await;
    // Twice the second's bytes: nothing more is read or written on the
    // connection while the clock stands still.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), client.recv())
            .await
            .is_err(),
        "answered before the bytes-per-second quota allowed"
    );
    clock.advance(Duration::from_secs(3));
    match client.recv().await {
        Some(Packet::PubAck(ack)) => {
            assert_eq!((ack.packet_id, ack.reason), (1, ReasonCode::SUCCESS))
        }
        other => panic!("expected the PUBACK once the rate allows, got {other:?}"),
    }
    client.disconnect().await;
}

#[tokio::test]
async fn with_the_bytes_quota_off_a_large_publish_is_answered_at_once() {
    let (setup, _clock) = start(&[(Quota::BytesPerSecond, None)]).await;
    let device = setup.device("bulk");
    let mut client = RawClient::connected(setup.addr(), &device, V311).await;
    let payload = "x".repeat(100_000);
    assert_eq!(
        client.publish_qos1(1, "q/bulk", payload).await,
        ReasonCode::SUCCESS
    );
    client.disconnect().await;
}

// ----- unacknowledged inbound QoS 1 (Receive Maximum) -----

#[tokio::test]
async fn more_unacknowledged_publishes_than_receive_maximum_disconnect_with_0x93_and_throttled() {
    let (setup, _clock) = start(&[(Quota::InboundInFlight, Some(3))]).await;
    let app = setup.device("app");
    let mut watcher = RawClient::connected(setup.addr(), &app, V5).await;
    watcher
        .subscribe(
            1,
            &["$aws/events/presence/disconnected/+"],
            QoS::AtLeastOnce,
        )
        .await;
    let device = setup.device("eager");
    let (mut client, connack) =
        RawClient::connect(setup.addr(), &device, connect_packet("eager", V5)).await;
    assert_eq!(connack.properties.receive_maximum, Some(3));
    let four: Vec<Packet> = (1..=4).map(|i| qos1("q/eager", i, "x")).collect();
    client.send_raw(&burst(&four, V5)).await.unwrap();
    assert_eq!(
        disconnect_reason(&client.until_closed().await),
        Some(ReasonCode::RECEIVE_MAXIMUM_EXCEEDED)
    );
    let event = watcher.recv_publish().await;
    assert_eq!(event.topic, "$aws/events/presence/disconnected/eager");
    let event: Value = serde_json::from_slice(&event.payload).unwrap();
    assert_eq!(event["disconnectReason"], "THROTTLED", "{event}");
    assert_eq!(event["clientInitiatedDisconnect"], false, "{event}");
}

#[tokio::test]
async fn with_the_inbound_in_flight_quota_off_receive_maximum_is_mqtts_own() {
    let (setup, _clock) = start(&[(Quota::InboundInFlight, None)]).await;
    let device = setup.device("eager");
    let (mut client, connack) =
        RawClient::connect(setup.addr(), &device, connect_packet("eager", V5)).await;
    assert_eq!(
        connack.properties.receive_maximum.unwrap_or(u16::MAX),
        u16::MAX
    );
    let many: Vec<Packet> = (1..=150).map(|i| qos1("q/eager", i, "x")).collect();
    client.send_raw(&burst(&many, V5)).await.unwrap();
    let mut acks = Vec::new();
    while acks.len() < 150 {
        acks.extend(pubacks(&until_pong(&mut client).await));
    }
    client.disconnect().await;
}

// ----- subscriptions per connection -----

#[tokio::test]
async fn subscriptions_over_the_quota_are_refused_and_off_lifts_it() {
    let (setup, _clock) = start(&[(Quota::SubscriptionsPerConnection, Some(2))]).await;
    let device = setup.device("subs");
    let mut client = RawClient::connected(setup.addr(), &device, V5).await;
    let reasons = client
        .subscribe(1, &["q/a", "q/b", "q/c"], QoS::AtLeastOnce)
        .await;
    assert_eq!(
        reasons,
        [
            ReasonCode::GRANTED_QOS_1,
            ReasonCode::GRANTED_QOS_1,
            ReasonCode::QUOTA_EXCEEDED
        ]
    );
    client.disconnect().await;

    let (setup, _clock) = start(&[(Quota::SubscriptionsPerConnection, None)]).await;
    let device = setup.device("subs");
    let mut client = RawClient::connected(setup.addr(), &device, V5).await;
    for batch in 0..8u16 {
        let filters: Vec<String> = (0..8).map(|i| format!("q/{batch}/{i}")).collect();
        let filters: Vec<&str> = filters.iter().map(String::as_str).collect();
        let reasons = client
            .subscribe(batch + 1, &filters, QoS::AtLeastOnce)
            .await;
        assert!(reasons.iter().all(|r| !r.is_error()), "{reasons:?}");
    }
    client.disconnect().await;
}

// ----- stored messages replayed to a resumed persistent session -----

#[tokio::test]
async fn a_resumed_sessions_stored_messages_come_at_the_replay_rate() {
    let (setup, clock) = start(&[(Quota::ReplayPerSecond, Some(2))]).await;
    let subscriber = setup.device("sleepy");
    let persistent = || {
        let mut connect = connect_packet("sleepy", V311);
        connect.clean_start = false;
        connect
    };
    let (mut client, _) = RawClient::connect(setup.addr(), &subscriber, persistent()).await;
    client.subscribe(1, &["q/stored"], QoS::AtLeastOnce).await;
    client.disconnect().await;

    let publisher = setup.device("pub");
    let mut publisher = RawClient::connected(setup.addr(), &publisher, V311).await;
    for i in 1..=5 {
        let reason = publisher.publish_qos1(i, "q/stored", format!("s{i}")).await;
        assert_eq!(reason, ReasonCode::SUCCESS);
    }
    publisher.disconnect().await;

    clock.advance(Duration::from_secs(10));
    let (mut client, connack) = RawClient::connect(setup.addr(), &subscriber, persistent()).await;
    assert!(connack.session_present);
    // A second's worth at once, then one per half second.
    let mut got = receive(&mut client, 2).await;
    for _ in 0..3 {
        assert!(
            until_pong(&mut client).await.is_empty(),
            "over the replay rate"
        );
        clock.advance(Duration::from_millis(500));
        got.extend(receive(&mut client, 1).await);
    }
    assert_eq!(got, ["s1", "s2", "s3", "s4", "s5"]);
    client.disconnect().await;
}

/// Receives exactly `n` PUBLISH packets (and acknowledges them); fails if
/// more came with them.
async fn receive(client: &mut RawClient, n: usize) -> Vec<Bytes> {
    let mut got = Vec::new();
    while got.len() < n {
        for packet in until_pong(client).await {
            match packet {
                Packet::Publish(p) => {
                    got.push(p.payload);
                    if let Some(id) = p.packet_id {
                        client.send(&puback(id)).await;
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(got.len(), n, "{got:?}");
    got
}

#[tokio::test]
async fn with_the_replay_quota_off_stored_messages_come_at_once() {
    let (setup, clock) = start(&[(Quota::ReplayPerSecond, None)]).await;
    let subscriber = setup.device("sleepy");
    let persistent = || {
        let mut connect = connect_packet("sleepy", V311);
        connect.clean_start = false;
        connect
    };
    let (mut client, _) = RawClient::connect(setup.addr(), &subscriber, persistent()).await;
    client.subscribe(1, &["q/stored"], QoS::AtLeastOnce).await;
    client.disconnect().await;
    let publisher = setup.device("pub");
    let mut publisher = RawClient::connected(setup.addr(), &publisher, V311).await;
    for i in 1..=20 {
        publisher.publish_qos1(i, "q/stored", "s").await;
    }
    publisher.disconnect().await;
    clock.advance(Duration::from_secs(10));
    let (mut client, _) = RawClient::connect(setup.addr(), &subscriber, persistent()).await;
    // All of them right after the CONNACK, before the PINGRESP.
    let packets = until_pong(&mut client).await;
    assert_eq!(packets.len(), 20, "{packets:?}");
    for packet in packets {
        if let Packet::Publish(p) = packet {
            client.send(&puback(p.packet_id.expect("QoS 1"))).await;
        }
    }
    client.disconnect().await;
}

// ----- shadow requests in flight -----

#[tokio::test]
async fn with_the_shadow_in_flight_quota_off_a_burst_of_requests_is_all_served() {
    let (setup, _clock) = start(&[(Quota::ShadowInFlight, None)]).await;
    let device = setup.device("burst");
    let mut client = RawClient::connected(setup.addr(), &device, V311).await;
    let prefix = "$aws/things/burst/shadow";
    client
        .subscribe(
            1,
            &[
                &format!("{prefix}/update/accepted"),
                &format!("{prefix}/update/rejected"),
            ],
            QoS::AtLeastOnce,
        )
        .await;
    const BURST: u16 = 30;
    let requests: Vec<Packet> = (0..BURST)
        .map(|i| {
            let request = json!({"state": {"reported": {"i": i}}, "clientToken": format!("b{i}")});
            qos1(&format!("{prefix}/update"), i + 10, &request.to_string())
        })
        .collect();
    client.send_raw(&burst(&requests, V311)).await.unwrap();
    let mut accepted = 0;
    while accepted < BURST {
        match client.recv_skipping_pings().await {
            Some(Packet::PubAck(_)) => {}
            Some(Packet::Publish(reply)) => {
                if let Some(id) = reply.packet_id {
                    client.send(&puback(id)).await;
                }
                assert!(reply.topic.ends_with("/accepted"), "{reply:?}");
                accepted += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    client.disconnect().await;
}
