//! The emulator's broker as AWS IoT Core behaves, pinned down packet by packet
//! with a raw MQTT client (see `support`). Each test names the behaviour; the
//! AWS sources are in docs/aws-iot-core-behaviour.md.

mod support;

use std::time::Duration;

use bytes::Bytes;
use iotcore_emulator::control::ThingPolicy;
use iotcore_emulator::{ALPN_MQTT_CA, Emulator, EmulatorConfig, EmulatorError};
use iotcore_mqtt::packet::Disconnect;
use iotcore_mqtt::{Packet, ProtocolVersion, QoS, ReasonCode};
use support::*;

const V311: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;

// ----- Routing -----

#[tokio::test]
async fn messages_flow_between_mqtt311_and_mqtt5_clients_at_qos0_and_qos1() {
    let setup = Setup::start().await;
    let (a, b) = (setup.device("dev-a"), setup.device("dev-b"));
    let mut sub = RawClient::connected(setup.addr(), &a, V5).await;
    let mut publisher = RawClient::connected(setup.addr(), &b, V311).await;
    let granted = sub
        .subscribe(1, &["sensors/+/temp", "cmd/#"], QoS::AtLeastOnce)
        .await;
    assert_eq!(
        granted,
        [ReasonCode::GRANTED_QOS_1, ReasonCode::GRANTED_QOS_1]
    );

    publisher
        .send(&publish(
            "sensors/dev-b/temp",
            QoS::AtMostOnce,
            None,
            "21.5",
        ))
        .await;
    assert_eq!(
        publisher.publish_qos1(7, "cmd/dev-a/reboot", "now").await,
        ReasonCode::SUCCESS
    );

    let first = sub.recv_publish().await;
    assert_eq!(
        (first.topic.as_str(), first.qos, &first.payload[..]),
        ("sensors/dev-b/temp", QoS::AtMostOnce, &b"21.5"[..])
    );
    let second = sub.recv_publish().await;
    assert_eq!(
        (second.topic.as_str(), second.qos, second.retain),
        ("cmd/dev-a/reboot", QoS::AtLeastOnce, false)
    );
}

#[tokio::test]
async fn a_subscription_qos_caps_the_delivery_qos() {
    let setup = Setup::start().await;
    let (a, b) = (setup.device("dev-a"), setup.device("dev-b"));
    let mut sub = RawClient::connected(setup.addr(), &a, V5).await;
    let mut publisher = RawClient::connected(setup.addr(), &b, V5).await;
    assert_eq!(
        sub.subscribe(1, &["t"], QoS::AtMostOnce).await,
        [ReasonCode::GRANTED_QOS_0]
    );
    publisher.publish_qos1(1, "t", "x").await;
    assert_eq!(sub.recv_publish().await.qos, QoS::AtMostOnce);
}

#[tokio::test]
async fn hash_does_not_match_its_parent_level_and_wildcards_skip_dollar_topics() {
    let setup = Setup::start().await;
    let (a, b) = (setup.device("dev-a"), setup.device("dev-b"));
    let mut sub = RawClient::connected(setup.addr(), &a, V5).await;
    let mut publisher = RawClient::connected(setup.addr(), &b, V5).await;
    sub.subscribe(1, &["a/#", "#"], QoS::AtLeastOnce).await;

    // `a/#` must not match `a` (AWS), `#` must not match `$aws/...`; only `#`
    // matches `a`, and both match `a/b`: one delivery, then the marker.
    publisher.publish_qos1(1, "a", "parent").await;
    publisher
        .publish_qos1(2, "$aws/things/dev-b/shadow/get", "{}")
        .await;
    publisher.publish_qos1(3, "a/b", "child").await;
    publisher.publish_qos1(4, "end", "marker").await;
    let topics: Vec<_> = [
        sub.recv_publish().await,
        sub.recv_publish().await,
        sub.recv_publish().await,
    ]
    .into_iter()
    .map(|p| p.topic)
    .collect();
    assert_eq!(topics, ["a", "a/b", "end"]);
}

#[tokio::test]
async fn a_retained_message_goes_to_exact_subscriptions_only_and_an_empty_payload_deletes_it() {
    let setup = Setup::start().await;
    let (a, b) = (setup.device("dev-a"), setup.device("dev-b"));
    let mut publisher = RawClient::connected(setup.addr(), &b, V311).await;
    let mut retained = publish("status/dev-b", QoS::AtLeastOnce, Some(1), "online");
    if let Packet::Publish(p) = &mut retained {
        p.retain = true;
    }
    publisher.send(&retained).await;
    assert!(matches!(publisher.recv().await, Some(Packet::PubAck(_))));

    let mut sub = RawClient::connected(setup.addr(), &a, V5).await;
    sub.subscribe(1, &["status/+"], QoS::AtLeastOnce).await;
    sub.subscribe(2, &["status/dev-b"], QoS::AtLeastOnce).await;
    let got = sub.recv_publish().await;
    assert_eq!(
        (got.topic.as_str(), got.retain, &got.payload[..]),
        ("status/dev-b", true, &b"online"[..])
    );

    // A live retained publish reaches current subscribers with RETAIN cleared…
    let mut delete = publish("status/dev-b", QoS::AtLeastOnce, Some(2), Bytes::new());
    if let Packet::Publish(p) = &mut delete {
        p.retain = true;
    }
    publisher.send(&delete).await;
    assert!(matches!(publisher.recv().await, Some(Packet::PubAck(_))));
    let live = sub.recv_publish().await;
    assert!(!live.retain);
    assert!(live.payload.is_empty());
    // …and the empty payload deleted it: a new exact subscription gets nothing
    // before the marker.
    sub.subscribe(3, &["status/dev-b"], QoS::AtLeastOnce).await;
    publisher.publish_qos1(3, "status/dev-b", "marker").await;
    assert_eq!(&sub.recv_publish().await.payload[..], b"marker");
}

#[tokio::test]
async fn retained_publishes_to_reserved_topics_are_refused() {
    let setup = Setup::start().await;
    let a = setup.device("dev-a");
    let mut client = RawClient::connected(setup.addr(), &a, V5).await;
    let mut retained = publish(
        "$aws/things/dev-a/shadow/update",
        QoS::AtLeastOnce,
        Some(1),
        "{}",
    );
    if let Packet::Publish(p) = &mut retained {
        p.retain = true;
    }
    client.send(&retained).await;
    match client.recv().await {
        Some(Packet::PubAck(ack)) => assert_eq!(ack.reason, ReasonCode::NOT_AUTHORIZED),
        other => panic!("expected PUBACK 0x87, got {other:?}"),
    }
}

// ----- Sessions -----

#[tokio::test]
async fn a_second_connection_with_the_same_client_id_takes_over_and_the_first_gets_0x8e_and_its_will_is_published()
 {
    let setup = Setup::start().await;
    let (a, watcher) = (setup.device("dev-a"), setup.device("watcher"));
    let mut watching = RawClient::connected(setup.addr(), &watcher, V5).await;
    watching
        .subscribe(1, &["wills/dev-a"], QoS::AtLeastOnce)
        .await;

    let mut connect = connect_packet("dev-a", V5);
    connect.will = Some(will("wills/dev-a", b"gone"));
    let (mut first, connack) = RawClient::connect(setup.addr(), &a, connect).await;
    assert_eq!(connack.reason, ReasonCode::SUCCESS);
    let _second = RawClient::connected(setup.addr(), &a, V5).await;

    assert_eq!(
        disconnect_reason(&first.until_closed().await),
        Some(ReasonCode::SESSION_TAKEN_OVER)
    );
    assert_eq!(&watching.recv_publish().await.payload[..], b"gone");
}

#[tokio::test]
async fn a_will_is_published_when_the_connection_drops_but_not_after_disconnect() {
    let setup = Setup::start().await;
    let (a, watcher) = (setup.device("dev-a"), setup.device("watcher"));
    let mut watching = RawClient::connected(setup.addr(), &watcher, V311).await;
    watching.subscribe(1, &["wills/#"], QoS::AtLeastOnce).await;

    let mut polite = connect_packet("dev-a", V311);
    polite.will = Some(will("wills/polite", b"polite"));
    let (client, _) = RawClient::connect(setup.addr(), &a, polite).await;
    client.disconnect().await;

    let mut rude = connect_packet("dev-a", V5);
    rude.will = Some(will("wills/rude", b"rude"));
    let (client, _) = RawClient::connect(setup.addr(), &a, rude).await;
    drop(client); // TCP closed without DISCONNECT

    let got = watching.recv_publish().await;
    assert_eq!(
        got.topic, "wills/rude",
        "the will of the clean DISCONNECT must not come first"
    );
}

#[tokio::test]
async fn mqtt5_disconnect_with_will_message_publishes_the_will() {
    let setup = Setup::start().await;
    let (a, watcher) = (setup.device("dev-a"), setup.device("watcher"));
    let mut watching = RawClient::connected(setup.addr(), &watcher, V5).await;
    watching
        .subscribe(1, &["wills/dev-a"], QoS::AtLeastOnce)
        .await;
    let mut connect = connect_packet("dev-a", V5);
    connect.will = Some(will("wills/dev-a", b"asked"));
    let (mut client, _) = RawClient::connect(setup.addr(), &a, connect).await;
    client
        .send(&Packet::Disconnect(Disconnect {
            reason: ReasonCode::DISCONNECT_WITH_WILL,
            properties: Default::default(),
        }))
        .await;
    assert_eq!(&watching.recv_publish().await.payload[..], b"asked");
}

#[tokio::test]
async fn a_persistent_session_keeps_subscriptions_and_queued_qos1_messages_across_reconnects() {
    let setup = Setup::start().await;
    let (a, b) = (setup.device("dev-a"), setup.device("dev-b"));
    let mut persistent = connect_packet("dev-a", V311);
    persistent.clean_start = false;
    let (mut client, connack) = RawClient::connect(setup.addr(), &a, persistent.clone()).await;
    assert!(!connack.session_present);
    client.subscribe(1, &["jobs/dev-a"], QoS::AtLeastOnce).await;
    client.disconnect().await;

    let mut publisher = RawClient::connected(setup.addr(), &b, V311).await;
    publisher
        .send(&publish(
            "jobs/dev-a",
            QoS::AtMostOnce,
            None,
            "qos0 is not kept",
        ))
        .await;
    publisher.publish_qos1(1, "jobs/dev-a", "job-1").await;
    publisher.publish_qos1(2, "jobs/dev-a", "job-2").await;

    let (mut client, connack) = RawClient::connect(setup.addr(), &a, persistent).await;
    assert!(connack.session_present);
    assert_eq!(&client.recv_publish().await.payload[..], b"job-1");
    assert_eq!(&client.recv_publish().await.payload[..], b"job-2");
    // The subscription itself survived too.
    publisher.publish_qos1(3, "jobs/dev-a", "job-3").await;
    assert_eq!(&client.recv_publish().await.payload[..], b"job-3");
}

#[tokio::test]
async fn a_clean_connection_ends_the_persistent_session() {
    let setup = Setup::start().await;
    let a = setup.device("dev-a");
    let mut persistent = connect_packet("dev-a", V311);
    persistent.clean_start = false;
    let (client, _) = RawClient::connect(setup.addr(), &a, persistent.clone()).await;
    client.disconnect().await;
    let clean = RawClient::connected(setup.addr(), &a, V311).await;
    clean.disconnect().await;
    let (_, connack) = RawClient::connect(setup.addr(), &a, persistent).await;
    assert!(!connack.session_present);
}

#[tokio::test]
async fn mqtt5_session_expiry_is_capped_and_the_cap_reported_in_connack() {
    let setup = Setup::start_with(|c| c.with_max_session_expiry(Duration::from_secs(3600))).await;
    let a = setup.device("dev-a");
    let mut connect = connect_packet("dev-a", V5);
    connect.clean_start = false;
    connect.properties.session_expiry_interval = Some(86_400);
    let (_client, connack) = RawClient::connect(setup.addr(), &a, connect).await;
    assert_eq!(connack.properties.session_expiry_interval, Some(3600));
    assert_eq!(connack.properties.maximum_qos, Some(1));
    assert_eq!(connack.properties.retain_available, Some(1));
    assert_eq!(
        connack.properties.subscription_identifier_available,
        Some(0)
    );
}

#[tokio::test]
async fn things_certificates_retained_messages_and_persistent_sessions_survive_a_restart() {
    let setup = Setup::start().await;
    let (a, b) = (setup.device("dev-a"), setup.device("dev-b"));
    let mut persistent = connect_packet("dev-a", V5);
    persistent.clean_start = false;
    persistent.properties.session_expiry_interval = Some(3600);
    let (mut client, _) = RawClient::connect(setup.addr(), &a, persistent.clone()).await;
    client.subscribe(1, &["jobs/dev-a"], QoS::AtLeastOnce).await;
    client.disconnect().await;
    let mut publisher = RawClient::connected(setup.addr(), &b, V5).await;
    publisher.publish_qos1(1, "jobs/dev-a", "queued").await;
    let mut retained = publish("config/dev-b", QoS::AtLeastOnce, Some(2), "v1");
    if let Packet::Publish(p) = &mut retained {
        p.retain = true;
    }
    publisher.send(&retained).await;
    assert!(matches!(publisher.recv().await, Some(Packet::PubAck(_))));
    drop(publisher);

    let setup = setup.restart().await;
    // The same device files still work: thing and certificate are registered.
    let (mut client, connack) = RawClient::connect(setup.addr(), &a, persistent).await;
    assert_eq!(connack.reason, ReasonCode::SUCCESS);
    assert!(connack.session_present);
    assert_eq!(&client.recv_publish().await.payload[..], b"queued");
    client
        .subscribe(2, &["config/dev-b"], QoS::AtLeastOnce)
        .await;
    let got = client.recv_publish().await;
    assert_eq!((got.retain, &got.payload[..]), (true, &b"v1"[..]));
}

#[tokio::test]
async fn keep_alive_is_clamped_to_aws_limits_and_reported_to_mqtt5_clients() {
    let setup = Setup::start().await;
    let a = setup.device("dev-a");
    for (requested, granted) in [
        (0, Some(1200)),
        (5000, Some(1200)),
        (10, Some(30)),
        (60, None),
    ] {
        let mut connect = connect_packet("dev-a", V5);
        connect.keep_alive = requested;
        let (client, connack) = RawClient::connect(setup.addr(), &a, connect).await;
        assert_eq!(
            connack.properties.server_keep_alive, granted,
            "requested {requested}"
        );
        client.disconnect().await;
    }
}

#[tokio::test]
async fn a_silent_client_is_disconnected_after_one_and_a_half_keep_alives_and_its_will_published() {
    let setup = Setup::start_with(|mut c| {
        c.limits.min_keep_alive = 1;
        c
    })
    .await;
    let (a, watcher) = (setup.device("dev-a"), setup.device("watcher"));
    let mut watching = RawClient::connected(setup.addr(), &watcher, V311).await;
    watching
        .subscribe(1, &["wills/dev-a"], QoS::AtLeastOnce)
        .await;
    let mut connect = connect_packet("dev-a", V5);
    connect.keep_alive = 1;
    connect.will = Some(will("wills/dev-a", b"timed out"));
    let (mut silent, _) = RawClient::connect(setup.addr(), &a, connect).await;
    assert_eq!(
        disconnect_reason(&silent.until_closed().await),
        Some(ReasonCode::KEEP_ALIVE_TIMEOUT)
    );
    assert_eq!(&watching.recv_publish().await.payload[..], b"timed out");
}

#[tokio::test]
async fn shutdown_tells_mqtt5_clients_the_server_is_shutting_down() {
    let setup = Setup::start().await;
    let a = setup.device("dev-a");
    let mut client = RawClient::connected(setup.addr(), &a, V5).await;
    let Setup {
        dir: _dir,
        emulator,
    } = setup;
    let stopping = tokio::spawn(emulator.shutdown());
    assert_eq!(
        disconnect_reason(&client.until_closed().await),
        Some(ReasonCode::SERVER_SHUTTING_DOWN)
    );
    stopping.await.expect("shutdown completes");
}

// ----- Authentication and authorization -----

#[tokio::test]
async fn only_registered_active_certificates_complete_the_tls_handshake() {
    let setup = Setup::start().await;
    let active = setup.device("dev-a");
    assert!(RawClient::open(setup.addr(), &active).await.is_ok());

    let control = setup.emulator.control();
    let inactive = setup.device("dev-inactive");
    set_certificate_status(control, &inactive.credentials.certificate_id, "INACTIVE");
    assert!(
        tls_refused(&setup, &inactive).await,
        "INACTIVE certificate accepted"
    );

    let revoked = setup.device("dev-revoked");
    set_certificate_status(control, &revoked.credentials.certificate_id, "REVOKED");
    assert!(
        tls_refused(&setup, &revoked).await,
        "REVOKED certificate accepted"
    );

    // Signed by the emulator's CA but never registered.
    let credentials = setup
        .emulator
        .pki()
        .issue_device_certificate("ghost", iotcore_emulator::pki::KeyAlgorithm::EcdsaP256)
        .expect("certificate issued");
    let unknown = Device {
        credentials,
        ..active.clone()
    };
    assert!(
        tls_refused(&setup, &unknown).await,
        "unregistered certificate accepted"
    );

    // Registered elsewhere: a certificate from another emulator's CA.
    let other = Setup::start().await;
    let foreign = other.device("dev-a");
    let foreign = Device {
        ca_pem: active.ca_pem.clone(),
        ..foreign
    };
    assert!(
        tls_refused(&setup, &foreign).await,
        "certificate from another CA accepted"
    );
}

#[tokio::test]
async fn with_the_default_thing_policy_the_client_id_must_be_the_certificates_thing() {
    let setup = Setup::start().await;
    let (a, _b) = (
        setup.device_with("dev-a", ThingPolicy::default()),
        setup.device_with("dev-b", ThingPolicy::default()),
    );
    let (_, connack) = RawClient::connect(setup.addr(), &a, connect_packet("dev-b", V5)).await;
    assert_eq!(connack.reason, ReasonCode::NOT_AUTHORIZED);

    // MQTT 3.1.1: AWS closes the connection without CONNACK.
    let mut client = RawClient::open(setup.addr(), &a)
        .await
        .expect("TLS connection");
    client.protocol = V311;
    client
        .send(&Packet::Connect(Box::new(connect_packet("dev-b", V311))))
        .await;
    assert!(client.until_closed().await.is_empty());
}

#[tokio::test]
async fn other_things_reserved_topics_are_denied_mqtt5_with_0x87_and_mqtt311_by_disconnect() {
    let setup = Setup::start().await;
    let (a, _b) = (
        setup.device_with("dev-a", ThingPolicy::default()),
        setup.device_with("dev-b", ThingPolicy::default()),
    );
    let mut v5 = RawClient::connected(setup.addr(), &a, V5).await;
    let reasons = v5
        .subscribe(
            1,
            &["$aws/things/dev-b/shadow/#", "$aws/things/dev-a/shadow/#"],
            QoS::AtLeastOnce,
        )
        .await;
    assert_eq!(
        reasons,
        [ReasonCode::NOT_AUTHORIZED, ReasonCode::GRANTED_QOS_1]
    );
    assert_eq!(
        v5.publish_qos1(2, "$aws/things/dev-b/shadow/update", "{}")
            .await,
        ReasonCode::NOT_AUTHORIZED
    );
    assert_eq!(
        v5.publish_qos1(3, "$aws/things/dev-a/shadow/update", "{}")
            .await,
        ReasonCode::SUCCESS
    );
    v5.disconnect().await;

    let mut v311 = RawClient::connected(setup.addr(), &a, V311).await;
    v311.send(&publish(
        "$aws/things/dev-b/shadow/update",
        QoS::AtLeastOnce,
        Some(1),
        "{}",
    ))
    .await;
    assert!(
        v311.until_closed().await.is_empty(),
        "no PUBACK, the connection is closed"
    );
    let mut v311 = RawClient::connected(setup.addr(), &a, V311).await;
    v311.send(&subscribe(
        1,
        &["$aws/things/dev-b/shadow/#"],
        QoS::AtLeastOnce,
    ))
    .await;
    assert!(
        v311.until_closed().await.is_empty(),
        "no SUBACK, the connection is closed"
    );
}

#[tokio::test]
async fn sdk_metrics_in_the_user_name_are_tolerated() {
    let setup = Setup::start().await;
    let a = setup.device("dev-a");
    let mut connect = connect_packet("dev-a", V311);
    connect.username = Some("?SDK=PythonV2&Version=1.31.0&Platform=Linux".into());
    let (_client, connack) = RawClient::connect(setup.addr(), &a, connect).await;
    assert_eq!(connack.reason, ReasonCode::SUCCESS);
}

#[tokio::test]
async fn the_alpn_protocol_of_aws_port_443_is_accepted_on_the_same_listener() {
    let setup = Setup::start().await;
    let a = setup.device("dev-a");
    let config = tls_config(
        &a.ca_pem,
        &a.credentials.certificate_pem,
        &a.credentials.private_key_pem,
        Some(ALPN_MQTT_CA),
    );
    let mut client = RawClient::open_with(setup.addr(), config)
        .await
        .expect("TLS with ALPN");
    assert_eq!(
        client.stream.get_ref().1.alpn_protocol(),
        Some(ALPN_MQTT_CA)
    );
    let connack = client.handshake(connect_packet("dev-a", V311)).await;
    assert_eq!(connack.reason, ReasonCode::SUCCESS);
}

// ----- Limits and malformed input -----

#[tokio::test]
async fn a_payload_over_128_kb_closes_the_connection() {
    let setup = Setup::start().await;
    let a = setup.device("dev-a");
    let big = Bytes::from(vec![b'x'; 128 * 1024 + 1]);
    let mut v5 = RawClient::connected(setup.addr(), &a, V5).await;
    v5.send(&publish("big", QoS::AtLeastOnce, Some(1), big.clone()))
        .await;
    assert_eq!(
        disconnect_reason(&v5.until_closed().await),
        Some(ReasonCode::PACKET_TOO_LARGE)
    );
    let mut v311 = RawClient::connected(setup.addr(), &a, V311).await;
    v311.send(&publish("big", QoS::AtLeastOnce, Some(1), big))
        .await;
    assert!(v311.until_closed().await.is_empty());

    let mut ok = RawClient::connected(setup.addr(), &a, V5).await;
    let exactly = Bytes::from(vec![b'x'; 128 * 1024]);
    assert_eq!(
        ok.publish_qos1(1, "big", exactly).await,
        ReasonCode::SUCCESS
    );
}

#[tokio::test]
async fn topics_over_aws_length_and_depth_limits_are_refused() {
    let setup = Setup::start().await;
    let a = setup.device("dev-a");
    let mut client = RawClient::connected(setup.addr(), &a, V5).await;
    let deep = "a/b/c/d/e/f/g/h/i";
    let reasons = client
        .subscribe(
            1,
            &[deep, "a/b/c/d/e/f/g/h", &"x".repeat(257)],
            QoS::AtLeastOnce,
        )
        .await;
    assert_eq!(
        reasons,
        [
            ReasonCode::TOPIC_FILTER_INVALID,
            ReasonCode::GRANTED_QOS_1,
            ReasonCode::TOPIC_FILTER_INVALID
        ]
    );
    // Basic Ingest topics are exempt from the prefix.
    assert_eq!(
        client
            .publish_qos1(2, "$aws/rules/my_rule/a/b/c/d/e/f/g/h", "x")
            .await,
        ReasonCode::SUCCESS
    );
    client
        .send(&publish(deep, QoS::AtLeastOnce, Some(3), "x"))
        .await;
    assert_eq!(
        disconnect_reason(&client.until_closed().await),
        Some(ReasonCode::TOPIC_NAME_INVALID)
    );
}

#[tokio::test]
async fn at_most_8_filters_per_subscribe_are_granted() {
    let setup = Setup::start().await;
    let a = setup.device("dev-a");
    let filters: Vec<String> = (0..9).map(|i| format!("f/{i}")).collect();
    let filters: Vec<&str> = filters.iter().map(String::as_str).collect();
    let mut v5 = RawClient::connected(setup.addr(), &a, V5).await;
    let reasons = v5.subscribe(1, &filters, QoS::AtMostOnce).await;
    assert_eq!(reasons[..8], [ReasonCode::GRANTED_QOS_0; 8]);
    assert_eq!(reasons[8], ReasonCode::QUOTA_EXCEEDED);
    v5.disconnect().await;
    let mut v311 = RawClient::connected(setup.addr(), &a, V311).await;
    assert_eq!(
        v311.subscribe(1, &filters, QoS::AtMostOnce).await[8],
        ReasonCode::UNSPECIFIED_ERROR
    );
}

#[tokio::test]
async fn a_malformed_packet_closes_only_that_connection() {
    let setup = Setup::start().await;
    let (a, b) = (setup.device("dev-a"), setup.device("dev-b"));
    let mut healthy = RawClient::connected(setup.addr(), &b, V311).await;
    healthy.subscribe(1, &["t"], QoS::AtLeastOnce).await;

    let mut broken = RawClient::connected(setup.addr(), &a, V5).await;
    // SUBSCRIBE with reserved flags 0000 instead of 0010.
    broken
        .send_raw(&[0x80, 0x06, 0x00, 0x01, 0x00, 0x01, b't', 0x00])
        .await
        .expect("write");
    assert_eq!(
        disconnect_reason(&broken.until_closed().await),
        Some(ReasonCode::MALFORMED_PACKET)
    );

    let mut garbage = RawClient::open(setup.addr(), &a)
        .await
        .expect("TLS connection");
    garbage.send_raw(&[0xFF; 64]).await.expect("write");
    assert!(garbage.until_closed().await.is_empty());

    let mut publisher = RawClient::connected(setup.addr(), &a, V5).await;
    publisher.publish_qos1(1, "t", "still alive").await;
    assert_eq!(&healthy.recv_publish().await.payload[..], b"still alive");
}

#[tokio::test]
async fn a_subscriber_that_does_not_read_does_not_hold_up_the_others() {
    let setup = Setup::start().await;
    let (stuck_dev, live_dev, pub_dev) = (
        setup.device("stuck"),
        setup.device("live"),
        setup.device("publisher"),
    );
    let mut stuck = RawClient::connected(setup.addr(), &stuck_dev, V311).await;
    stuck.subscribe(1, &["flood"], QoS::AtMostOnce).await;
    let mut live = RawClient::connected(setup.addr(), &live_dev, V311).await;
    live.subscribe(1, &["flood"], QoS::AtLeastOnce).await;
    let mut publisher = RawClient::connected(setup.addr(), &pub_dev, V311).await;

    // Far more than socket buffers hold: `stuck` stops reading from the start.
    let payload = Bytes::from(vec![7u8; 64 * 1024]);
    let count = 400u16;
    for id in 1..=count {
        publisher.publish_qos1(id, "flood", payload.clone()).await;
        let got = live.recv_publish().await;
        assert_eq!(got.payload.len(), payload.len());
    }
    drop(stuck);
}

// ----- Start-up errors -----

#[tokio::test]
async fn a_taken_port_is_reported_with_the_address() {
    let setup = Setup::start().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = EmulatorConfig::new(dir.path()).with_bind(setup.addr());
    let err = Emulator::start(config).await.expect_err("port is taken");
    assert!(matches!(err, EmulatorError::AddressInUse { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{} is already in use: pick another port with --port",
            setup.addr()
        )
    );
}

#[tokio::test]
async fn an_unwritable_data_directory_is_reported() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, b"x").expect("file written");
    let config =
        EmulatorConfig::new(file.join("data")).with_bind("127.0.0.1:0".parse().expect("address"));
    let err = Emulator::start(config)
        .await
        .expect_err("cannot create the data directory");
    assert!(err.to_string().contains("not writable"), "{err}");
}

#[tokio::test]
async fn qos2_subscriptions_get_no_suback_on_mqtt311_and_a_0x9b_disconnect_on_mqtt5() {
    let setup = Setup::start().await;
    let a = setup.device("dev-a");
    let mut v311 = RawClient::connected(setup.addr(), &a, V311).await;
    v311.send(&subscribe(1, &["q2"], QoS::ExactlyOnce)).await;
    // Ignored: the next SUBSCRIBE is the first one answered.
    assert_eq!(
        v311.subscribe(2, &["q1"], QoS::AtLeastOnce).await,
        [ReasonCode::GRANTED_QOS_1]
    );
    v311.disconnect().await;

    let mut v5 = RawClient::connected(setup.addr(), &a, V5).await;
    v5.send(&subscribe(1, &["q2"], QoS::ExactlyOnce)).await;
    assert_eq!(
        disconnect_reason(&v5.until_closed().await),
        Some(ReasonCode::QOS_NOT_SUPPORTED)
    );
}

#[tokio::test]
async fn after_unsubscribe_nothing_more_is_delivered() {
    let setup = Setup::start().await;
    let a = setup.device("dev-a");
    let mut client = RawClient::connected(setup.addr(), &a, V5).await;
    client
        .subscribe(1, &["gone", "kept"], QoS::AtLeastOnce)
        .await;
    client
        .send(&Packet::Unsubscribe(iotcore_mqtt::packet::Unsubscribe {
            packet_id: 2,
            filters: vec!["gone".into(), "never-subscribed".into()],
            properties: Default::default(),
        }))
        .await;
    match client.recv().await {
        Some(Packet::UnsubAck(ack)) => assert_eq!(ack.reasons, [ReasonCode::SUCCESS; 2]),
        other => panic!("expected UNSUBACK, got {other:?}"),
    }
    client
        .send(&publish("gone", QoS::AtLeastOnce, Some(3), "x"))
        .await;
    client
        .send(&publish("kept", QoS::AtLeastOnce, Some(4), "y"))
        .await;
    let mut received = Vec::new();
    while received.is_empty() {
        match client.recv().await {
            Some(Packet::Publish(p)) => {
                client.send(&puback(p.packet_id.expect("QoS 1"))).await;
                received.push(p.topic);
            }
            Some(Packet::PubAck(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(received, ["kept"]);
}

#[tokio::test]
async fn expired_mqtt5_messages_are_not_delivered_from_a_persistent_session() {
    let setup = Setup::start().await;
    let (a, b) = (setup.device("dev-a"), setup.device("dev-b"));
    let mut persistent = connect_packet("dev-a", V5);
    persistent.clean_start = false;
    persistent.properties.session_expiry_interval = Some(600);
    let (mut client, _) = RawClient::connect(setup.addr(), &a, persistent.clone()).await;
    client.subscribe(1, &["t"], QoS::AtLeastOnce).await;
    client.disconnect().await;

    let mut publisher = RawClient::connected(setup.addr(), &b, V5).await;
    let mut short = publish("t", QoS::AtLeastOnce, Some(1), "short-lived");
    let mut long = publish("t", QoS::AtLeastOnce, Some(2), "long-lived");
    for (packet, expiry) in [(&mut short, 1), (&mut long, 600)] {
        if let Packet::Publish(p) = packet {
            p.properties.message_expiry_interval = Some(expiry);
        }
    }
    for packet in [&short, &long] {
        publisher.send(packet).await;
        assert!(matches!(publisher.recv().await, Some(Packet::PubAck(_))));
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let (mut client, connack) = RawClient::connect(setup.addr(), &a, persistent).await;
    assert!(connack.session_present);
    let got = client.recv_publish().await;
    assert_eq!(&got.payload[..], b"long-lived");
    let remaining = got
        .properties
        .message_expiry_interval
        .expect("remaining expiry sent");
    assert!(remaining < 600, "{remaining}");
}
