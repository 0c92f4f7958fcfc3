//! Where the MQTT specification and AWS IoT Core agree and the emulator must
//! too, tried with a raw MQTT client in both protocol versions: empty client
//! ids, shared subscriptions, and the MQTT 5 protocol errors a server must not
//! let through. AWS's behaviour and its sources: docs/aws-iot-core-behaviour.md
//! (§1.3 client ids, §1.10 shared subscriptions and wills, §8 deliberate
//! deviations). Real clients doing the same: `broker_paho.rs`.

mod support;

use iotcore_emulator::control::ThingPolicy;
use iotcore_emulator::policy::PolicyTemplate;
use iotcore_mqtt::packet::{Connect, Publish};
use iotcore_mqtt::{Packet, ProtocolVersion, QoS, ReasonCode};
use serde_json::Value;
use support::*;

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V311;
const VERSIONS: [ProtocolVersion; 2] = [V311, V5];

/// A clean CONNECT with an empty client id.
fn anonymous(protocol: ProtocolVersion) -> Connect {
    connect_packet("", protocol)
}

/// A client that subscribes to `$aws/events/presence/connected/#` to see the
/// client ids that connect.
async fn presence_watcher(setup: &Setup) -> RawClient {
    let app = setup.device_with("app", ThingPolicy::Template(PolicyTemplate::Application));
    let mut client = RawClient::connected(setup.addr(), &app, V5).await;
    let granted = client
        .subscribe(1, &["$aws/events/presence/connected/#"], QoS::AtLeastOnce)
        .await;
    assert_eq!(granted, [ReasonCode::GRANTED_QOS_1]);
    client
}

/// The next `connected` event's topic and `clientId`, skipping `skip`'s.
async fn next_connected(watcher: &mut RawClient, skip: &str) -> (String, String) {
    loop {
        let Publish { topic, payload, .. } = watcher.recv_publish().await;
        let event: Value = serde_json::from_slice(&payload).expect("JSON event");
        let client_id = event["clientId"].as_str().expect("clientId").to_owned();
        if client_id != skip {
            return (topic.to_string(), client_id);
        }
    }
}

/// Sends PINGREQ and expects PINGRESP: the connection is still open.
async fn still_connected(client: &mut RawClient) {
    client.send(&Packet::PingReq).await;
    assert_eq!(client.recv().await, Some(Packet::PingResp));
}

// ----- Empty client ids -----

#[tokio::test]
async fn mqtt311_empty_client_id_with_clean_session_0_gets_connack_0x02_and_is_closed() {
    let setup = Setup::start().await;
    let device = setup.device("dev1");
    let mut connect = anonymous(V311);
    connect.clean_start = false;
    let (mut client, connack) = RawClient::connect(setup.addr(), &device, connect).await;
    // Decoded from 3.1.1 return code 0x02, identifier rejected [MQTT-3.1.3-8].
    assert_eq!(connack.reason, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
    assert!(!connack.session_present);
    assert!(client.until_closed().await.is_empty());
}

#[tokio::test]
async fn clients_with_empty_ids_get_unique_gen_ids_and_do_not_take_each_other_over() {
    for protocol in VERSIONS {
        let setup = Setup::start().await;
        let device = setup.device("dev1");
        let mut watcher = presence_watcher(&setup).await;
        let (mut first, first_ack) =
            RawClient::connect(setup.addr(), &device, anonymous(protocol)).await;
        assert_eq!(first_ack.reason, ReasonCode::SUCCESS, "{protocol:?}");
        let (first_topic, first_id) = next_connected(&mut watcher, "app").await;
        let (mut second, second_ack) =
            RawClient::connect(setup.addr(), &device, anonymous(protocol)).await;
        assert_eq!(second_ack.reason, ReasonCode::SUCCESS, "{protocol:?}");
        let (_, second_id) = next_connected(&mut watcher, "app").await;

        for id in [&first_id, &second_id] {
            let uuid = id.strip_prefix("$GEN/").unwrap_or_else(|| panic!("{id}"));
            assert_eq!(uuid.len(), 36, "a UUID: {id}");
        }
        assert_ne!(first_id, second_id, "{protocol:?}");
        assert_eq!(
            first_topic,
            format!("$aws/events/presence/connected/{first_id}")
        );
        let assigned =
            |ack: &iotcore_mqtt::packet::ConnAck| ack.properties.assigned_client_identifier.clone();
        match protocol {
            V5 => {
                assert_eq!(assigned(&first_ack), Some(first_id.clone()));
                assert_eq!(assigned(&second_ack), Some(second_id.clone()));
            }
            V311 => assert_eq!(
                assigned(&first_ack),
                None,
                "3.1.1 CONNACK has no properties"
            ),
        }
        // Neither was taken over: both still talk, and both get a message.
        still_connected(&mut first).await;
        still_connected(&mut second).await;
        for client in [&mut first, &mut second] {
            let granted = client.subscribe(1, &["news/all"], QoS::AtLeastOnce).await;
            assert_eq!(granted, [ReasonCode::GRANTED_QOS_1]);
        }
        let mut publisher = RawClient::connected(setup.addr(), &setup.device("pub"), V5).await;
        assert_eq!(
            publisher.publish_qos1(1, "news/all", "hello").await,
            ReasonCode::SUCCESS
        );
        for client in [&mut first, &mut second] {
            assert_eq!(client.recv_publish().await.payload.as_ref(), b"hello");
        }
    }
}

#[tokio::test]
async fn mqtt5_empty_client_id_with_clean_start_0_gets_a_new_session_under_its_assigned_id() {
    let setup = Setup::start().await;
    let device = setup.device("dev1");
    let mut connect = anonymous(V5);
    connect.clean_start = false;
    connect.properties.session_expiry_interval = Some(300);
    let (client, connack) = RawClient::connect(setup.addr(), &device, connect).await;
    assert_eq!(connack.reason, ReasonCode::SUCCESS);
    assert!(!connack.session_present);
    let assigned = connack
        .properties
        .into_inner()
        .assigned_client_identifier
        .expect("Assigned Client Identifier");
    assert!(assigned.starts_with("$GEN/"), "{assigned}");
    client.disconnect().await;

    // AWS refuses client ids starting with '$': the assigned id cannot be sent back.
    let (mut again, refused) =
        RawClient::connect(setup.addr(), &device, connect_packet(&assigned, V5)).await;
    assert_eq!(refused.reason, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
    assert!(again.until_closed().await.is_empty());
}

/// A policy that lets its certificate connect as `dev1` only, plus the given statements.
fn named_connect_policy(extra: &[Value]) -> String {
    let mut statements = vec![serde_json::json!({
        "Effect": "Allow",
        "Action": "iot:Connect",
        "Resource": "arn:aws:iot:us-east-1:123456789012:client/dev1"
    })];
    statements.extend_from_slice(extra);
    serde_json::json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

#[tokio::test]
async fn iot_connect_is_decided_on_the_assigned_id() {
    let setup = Setup::start().await;
    let control = setup.emulator.control();
    create_policy(control, "named-only", &named_connect_policy(&[]));
    create_policy(
        control,
        "named-and-gen",
        &named_connect_policy(&[serde_json::json!({
            "Effect": "Allow",
            "Action": "iot:Connect",
            "Resource": "arn:aws:iot:us-east-1:123456789012:client/$GEN/*"
        })]),
    );
    let named_only = setup.device_with("dev1", ThingPolicy::Existing("named-only".into()));
    let named_and_gen = setup.device_with("dev2", ThingPolicy::Existing("named-and-gen".into()));
    for protocol in VERSIONS {
        // A policy that names client ids does not name the one assigned.
        let mut refused = RawClient::open(setup.addr(), &named_only).await.unwrap();
        refused.protocol = protocol;
        refused
            .send(&Packet::Connect(Box::new(anonymous(protocol))))
            .await;
        let answer = refused.until_closed().await;
        match protocol {
            V5 => assert!(
                matches!(answer.as_slice(), [Packet::ConnAck(c)] if c.reason == ReasonCode::NOT_AUTHORIZED),
                "{answer:?}"
            ),
            // AWS closes a 3.1.1 connection it does not authorize, without CONNACK.
            V311 => assert!(answer.is_empty(), "{answer:?}"),
        }
        // One allowing client/$GEN/* admits it.
        let (_client, connack) =
            RawClient::connect(setup.addr(), &named_and_gen, anonymous(protocol)).await;
        assert_eq!(connack.reason, ReasonCode::SUCCESS, "{protocol:?}");
    }
}

#[tokio::test]
async fn policy_variables_see_the_assigned_client_id() {
    let setup = Setup::start().await;
    let control = setup.emulator.control();
    let document = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
            {"Effect": "Allow", "Action": "iot:Publish",
             "Resource": "arn:aws:iot:us-east-1:123456789012:topic/by-client/${iot:ClientId}"}
        ]
    });
    create_policy(control, "own-topic", &document.to_string());
    let device = setup.device_with("dev1", ThingPolicy::Existing("own-topic".into()));
    let (mut client, connack) = RawClient::connect(setup.addr(), &device, anonymous(V5)).await;
    let assigned = connack
        .properties
        .into_inner()
        .assigned_client_identifier
        .expect("Assigned Client Identifier");
    assert_eq!(
        client
            .publish_qos1(1, &format!("by-client/{assigned}"), "mine")
            .await,
        ReasonCode::SUCCESS
    );
    assert_eq!(
        client.publish_qos1(2, "by-client/", "nobody's").await,
        ReasonCode::NOT_AUTHORIZED,
        "${{iot:ClientId}} is not the empty id sent"
    );
}

// ----- MQTT 5 protocol errors -----

#[tokio::test]
async fn mqtt5_connect_with_an_authentication_method_gets_connack_0x8c_and_is_closed() {
    let setup = Setup::start().await;
    let device = setup.device("dev1");
    let mut connect = connect_packet("dev1", V5);
    connect.properties.authentication_method = Some("SCRAM-SHA-256".into());
    connect.properties.authentication_data = Some(bytes::Bytes::from_static(b"n,,n=dev1"));
    let (mut client, connack) = RawClient::connect(setup.addr(), &device, connect).await;
    assert_eq!(connack.reason, ReasonCode::BAD_AUTHENTICATION_METHOD);
    assert!(client.until_closed().await.is_empty());
}

#[tokio::test]
async fn a_client_publish_carrying_a_subscription_identifier_gets_disconnect_0x82_and_is_not_routed()
 {
    let setup = Setup::start().await;
    let (offender, listener) = (setup.device("offender"), setup.device("listener"));
    let mut listening = RawClient::connected(setup.addr(), &listener, V5).await;
    listening
        .subscribe(1, &["sid/test"], QoS::AtLeastOnce)
        .await;

    let mut client = RawClient::connected(setup.addr(), &offender, V5).await;
    let Packet::Publish(mut bad) = publish("sid/test", QoS::AtLeastOnce, Some(1), "bad") else {
        unreachable!()
    };
    bad.properties.subscription_identifiers = vec![5];
    client.send(&Packet::Publish(bad)).await;
    let answer = client.until_closed().await;
    assert_eq!(
        disconnect_reason(&answer),
        Some(ReasonCode::PROTOCOL_ERROR),
        "{answer:?}"
    );
    assert!(
        !answer.iter().any(|p| matches!(p, Packet::PubAck(_))),
        "{answer:?}"
    );

    let mut good = RawClient::connected(setup.addr(), &offender, V5).await;
    good.publish_qos1(2, "sid/test", "good").await;
    assert_eq!(
        listening.recv_publish().await.payload.as_ref(),
        b"good",
        "the refused message was not delivered before it"
    );
}

#[tokio::test]
async fn a_will_delay_interval_is_not_honoured_the_will_is_published_when_the_connection_drops() {
    // AWS IoT Core lists no Will Delay Interval among the MQTT 5 properties it
    // supports (docs/aws-iot-core-behaviour.md §1.10, §8): the emulator
    // publishes the will as soon as the connection is gone, even when the
    // client comes back within the delay.
    let setup = Setup::start().await;
    let (device, watcher) = (setup.device("dev-w"), setup.device("watcher"));
    let mut watching = RawClient::connected(setup.addr(), &watcher, V5).await;
    watching
        .subscribe(1, &["wills/dev-w"], QoS::AtLeastOnce)
        .await;
    let mut connect = connect_packet("dev-w", V5);
    connect.properties.session_expiry_interval = Some(7200);
    let mut last_will = will("wills/dev-w", b"gone");
    last_will.properties.will_delay_interval = Some(3600);
    connect.will = Some(last_will);
    let (client, connack) = RawClient::connect(setup.addr(), &device, connect.clone()).await;
    assert_eq!(connack.reason, ReasonCode::SUCCESS);
    drop(client); // TCP closed without DISCONNECT

    connect.will = None;
    let (_back, connack) = RawClient::connect(setup.addr(), &device, connect).await;
    assert_eq!(connack.reason, ReasonCode::SUCCESS);
    assert_eq!(watching.recv_publish().await.payload.as_ref(), b"gone");
}

// ----- Shared subscriptions -----

/// A new device `name` connected with client id `name`; the CONNACK must not
/// say that shared subscriptions are unavailable.
async fn connected_as(setup: &Setup, name: &str, protocol: ProtocolVersion) -> RawClient {
    let device = setup.device(name);
    let (client, connack) =
        RawClient::connect(setup.addr(), &device, connect_packet(name, protocol)).await;
    assert_eq!(connack.reason, ReasonCode::SUCCESS);
    assert_eq!(
        connack.properties.shared_subscription_available, None,
        "absent means available"
    );
    client
}

/// Publishes `count` QoS 1 messages `0`, `1`, … to `topic`.
async fn publish_numbered(publisher: &mut RawClient, topic: &str, count: u16) {
    for i in 0..count {
        let reason = publisher.publish_qos1(i + 1, topic, i.to_string()).await;
        assert_eq!(reason, ReasonCode::SUCCESS);
    }
}

/// Reads from both members until `count` messages arrived in all, and
/// returns each member's payloads.
async fn shared_between(
    a: &mut RawClient,
    b: &mut RawClient,
    count: usize,
) -> (Vec<String>, Vec<String>) {
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    while got_a.len() + got_b.len() < count {
        // Only reading races (it can be cancelled); acknowledging does not.
        tokio::select! {
            p = a.recv_skipping_pings() => got_a.push(acknowledge(a, p).await),
            p = b.recv_skipping_pings() => got_b.push(acknowledge(b, p).await),
        }
    }
    (got_a, got_b)
}

/// Acknowledges `packet`, which must be a PUBLISH, and returns its payload.
async fn acknowledge(client: &mut RawClient, packet: Option<Packet>) -> String {
    let Some(Packet::Publish(publish)) = packet else {
        panic!("expected PUBLISH, got {packet:?}");
    };
    if let Some(packet_id) = publish.packet_id {
        client.send(&puback(packet_id)).await;
    }
    String::from_utf8(publish.payload.to_vec()).expect("UTF-8 payload")
}

/// Asserts that `got` holds `0` … `count - 1`, each once.
fn each_once(mut got: Vec<String>, count: u16) {
    got.sort_by_key(|p| p.parse::<u16>().unwrap());
    let expected: Vec<String> = (0..count).map(|i| i.to_string()).collect();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn each_message_goes_to_one_member_of_each_matching_group_and_to_every_plain_subscriber() {
    for protocol in VERSIONS {
        let setup = Setup::start().await;
        let (mut a1, mut a2, mut b1, mut plain) = (
            connected_as(&setup, "a1", protocol).await,
            connected_as(&setup, "a2", protocol).await,
            connected_as(&setup, "b1", protocol).await,
            connected_as(&setup, "plain", protocol).await,
        );
        for (client, filter) in [
            (&mut a1, "$share/alpha/work/+"),
            (&mut a2, "$share/alpha/work/+"),
            (&mut b1, "$share/beta/work/#"),
            (&mut plain, "work/+"),
        ] {
            let granted = client.subscribe(1, &[filter], QoS::AtLeastOnce).await;
            assert_eq!(
                granted,
                [ReasonCode::GRANTED_QOS_1],
                "{protocol:?} {filter}"
            );
        }
        let mut publisher = connected_as(&setup, "publisher", protocol).await;
        publish_numbered(&mut publisher, "work/item", 12).await;

        let (got_a1, got_a2) = shared_between(&mut a1, &mut a2, 12).await;
        each_once([got_a1, got_a2].concat(), 12);
        let mut alone = Vec::new();
        for _ in 0..12 {
            alone.push(String::from_utf8(b1.recv_publish().await.payload.to_vec()).unwrap());
        }
        each_once(alone, 12);
        for i in 0..12 {
            let got = plain.recv_publish().await;
            assert_eq!(
                got.topic, "work/item",
                "the real topic, not the shared filter"
            );
            assert_eq!(got.payload, i.to_string());
        }
    }
}

#[tokio::test]
async fn a_members_unacknowledged_messages_go_to_another_member_when_it_disconnects() {
    for protocol in VERSIONS {
        for persistent in [false, true] {
            let setup = Setup::start().await;
            let (first_dev, second_dev) = (setup.device("first"), setup.device("second"));
            let mut connect = connect_packet("first", protocol);
            if persistent {
                connect.clean_start = false;
                connect.properties.session_expiry_interval = Some(3600);
            }
            let (mut first, _) =
                RawClient::connect(setup.addr(), &first_dev, connect.clone()).await;
            first
                .subscribe(1, &["$share/g/orders/+"], QoS::AtLeastOnce)
                .await;
            let mut publisher = RawClient::connected(setup.addr(), &setup.device("pub"), V5).await;
            publish_numbered(&mut publisher, "orders/new", 3).await;
            // The only member takes all three and acknowledges none.
            for _ in 0..3 {
                assert!(matches!(
                    first.recv_skipping_pings().await,
                    Some(Packet::Publish(_))
                ));
            }
            let mut second = RawClient::connected(setup.addr(), &second_dev, protocol).await;
            second
                .subscribe(1, &["$share/g/orders/+"], QoS::AtLeastOnce)
                .await;
            drop(first); // TCP closed: no PUBACK will come

            let mut got = Vec::new();
            for _ in 0..3 {
                got.push(String::from_utf8(second.recv_publish().await.payload.to_vec()).unwrap());
            }
            each_once(got, 3);
            if persistent {
                // The persistent session kept the subscription, not the messages.
                let (mut back, connack) =
                    RawClient::connect(setup.addr(), &first_dev, connect).await;
                assert!(connack.session_present, "{protocol:?}");
                assert_eq!(
                    publisher.publish_qos1(9, "orders/new", "late").await,
                    ReasonCode::SUCCESS
                );
                // It goes to one of the two members; whichever gets it, `back`
                // must not be sent the three old ones again first.
                let first_seen = tokio::select! {
                    p = back.recv_skipping_pings() => acknowledge(&mut back, p).await,
                    p = second.recv_skipping_pings() => acknowledge(&mut second, p).await,
                };
                assert_eq!(first_seen, "late", "{protocol:?}");
            }
        }
    }
}

#[tokio::test]
async fn with_no_member_connected_a_persistent_members_group_keeps_qos1_messages() {
    for protocol in VERSIONS {
        let setup = Setup::start().await;
        let device = setup.device("worker");
        let mut connect = connect_packet("worker", protocol);
        connect.clean_start = false;
        connect.properties.session_expiry_interval = Some(3600);
        let (mut worker, _) = RawClient::connect(setup.addr(), &device, connect.clone()).await;
        worker
            .subscribe(1, &["$share/g/orders/+"], QoS::AtLeastOnce)
            .await;
        worker.disconnect().await;
        let mut publisher = RawClient::connected(setup.addr(), &setup.device("pub"), V5).await;
        publish_numbered(&mut publisher, "orders/new", 2).await;

        let (mut back, connack) = RawClient::connect(setup.addr(), &device, connect).await;
        assert!(connack.session_present);
        let got = vec![
            String::from_utf8(back.recv_publish().await.payload.to_vec()).unwrap(),
            String::from_utf8(back.recv_publish().await.payload.to_vec()).unwrap(),
        ];
        each_once(got, 2);
    }
}

#[tokio::test]
async fn a_shared_subscription_gets_no_retained_message() {
    for protocol in VERSIONS {
        let setup = Setup::start().await;
        let mut publisher = RawClient::connected(setup.addr(), &setup.device("pub"), V5).await;
        let Packet::Publish(mut retained) = publish("cfg/site", QoS::AtLeastOnce, Some(1), "old")
        else {
            unreachable!()
        };
        retained.retain = true;
        publisher.send(&Packet::Publish(retained)).await;
        assert!(matches!(publisher.recv().await, Some(Packet::PubAck(_))));

        let mut member = RawClient::connected(setup.addr(), &setup.device("m"), protocol).await;
        member
            .subscribe(1, &["$share/g/cfg/site"], QoS::AtLeastOnce)
            .await;
        publisher.publish_qos1(2, "cfg/site", "new").await;
        let first = member.recv_publish().await;
        assert_eq!(
            first.payload, "new",
            "{protocol:?}: the retained one was not sent"
        );
        assert!(!first.retain);
    }
}

#[tokio::test]
async fn malformed_shared_filters_are_refused_like_any_invalid_filter() {
    // A share name with '+' or '#' is not even a valid MQTT filter: the codec
    // refuses such a SUBSCRIBE as malformed. These are valid filters that are
    // not valid shared ones.
    for protocol in VERSIONS {
        let setup = Setup::start().await;
        let mut client = RawClient::connected(setup.addr(), &setup.device("m"), protocol).await;
        let too_long = format!("$share/{}/a", "n".repeat(129));
        let filters = [
            "$share/g",
            "$share//a",
            "$share/g/",
            too_long.as_str(),
            "$share/ok/a",
        ];
        let granted = client.subscribe(1, &filters, QoS::AtLeastOnce).await;
        let refused = match protocol {
            V5 => ReasonCode::TOPIC_FILTER_INVALID,
            V311 => ReasonCode::UNSPECIFIED_ERROR,
        };
        assert_eq!(
            granted,
            [
                refused,
                refused,
                refused,
                refused,
                ReasonCode::GRANTED_QOS_1
            ],
            "{protocol:?}"
        );
    }
}

#[tokio::test]
async fn iot_subscribe_is_decided_on_the_shared_filter_and_iot_receive_on_the_topic() {
    let setup = Setup::start().await;
    let control = setup.emulator.control();
    let arn = "arn:aws:iot:us-east-1:123456789012";
    let document = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
            {"Effect": "Allow", "Action": "iot:Subscribe",
             "Resource": format!("{arn}:topicfilter/$share/workers/jobs/*")},
            {"Effect": "Allow", "Action": "iot:Receive",
             "Resource": format!("{arn}:topic/jobs/allowed")}
        ]
    });
    create_policy(control, "shared-worker", &document.to_string());
    let device = setup.device_with("worker", ThingPolicy::Existing("shared-worker".into()));
    let mut worker = RawClient::connected(setup.addr(), &device, V5).await;
    let granted = worker
        .subscribe(
            1,
            &["$share/workers/jobs/+", "jobs/+", "$share/others/jobs/+"],
            QoS::AtLeastOnce,
        )
        .await;
    assert_eq!(
        granted,
        [
            ReasonCode::GRANTED_QOS_1,
            ReasonCode::NOT_AUTHORIZED,
            ReasonCode::NOT_AUTHORIZED
        ]
    );
    let mut publisher = RawClient::connected(setup.addr(), &setup.device("pub"), V5).await;
    publisher.publish_qos1(1, "jobs/denied", "x").await;
    publisher.publish_qos1(2, "jobs/allowed", "y").await;
    let got = worker.recv_publish().await;
    assert_eq!(
        (got.topic.as_str(), got.payload.as_ref()),
        ("jobs/allowed", &b"y"[..]),
        "iot:Receive on topic/jobs/denied refused the first"
    );
}
