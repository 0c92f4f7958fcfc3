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
            return (topic, client_id);
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
        refused.send(&Packet::Connect(anonymous(protocol))).await;
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
