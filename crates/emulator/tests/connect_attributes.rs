//! `iot:ConnectAttributes`: policies that allow or refuse persistent sessions
//! and wills per CONNECT, AWS's "Connect policy examples"
//! (docs/aws-iot-core-behaviour.md §1.4), through the broker with a raw
//! MQTT 5 and MQTT 3.1.1 client and with AWS's IoT Device SDK v2 for Python.

mod support;

use iotcore_emulator::control::ThingPolicy;
use iotcore_emulator::policy::{Action, ConnectAttributes};
use iotcore_mqtt::packet::Connect;
use iotcore_mqtt::{Packet, ProtocolVersion, ReasonCode};
use iotcore_test_support::run_peer;
use serde_json::json;
use support::*;

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V311;

/// AWS's example "does not allow PersistentConnect but allows other features".
const NO_PERSISTENT: &str = "connect-no-persistent";
/// AWS's example "allows PersistentConnect": every attribute must be listed,
/// so a will is refused.
const PERSISTENT_ONLY: &str = "connect-persistent-only";

/// Creates both policies, each also letting its device publish its will, and
/// a device under each: `np` under [`NO_PERSISTENT`], `po` under
/// [`PERSISTENT_ONLY`].
fn devices_under_both_policies(setup: &Setup) -> [Device; 2] {
    for (name, operator) in [
        (NO_PERSISTENT, "ForAllValues:StringNotEquals"),
        (PERSISTENT_ONLY, "ForAllValues:StringEquals"),
    ] {
        let document = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*",
             "Condition": {operator: {"iot:ConnectAttributes": ["PersistentConnect"]}}},
            {"Effect": "Allow", "Action": "iot:Publish",
             "Resource": "arn:aws:iot:us-east-1:123456789012:topic/will/*"}
        ]});
        create_policy(setup.emulator.control(), name, &document.to_string());
    }
    [("np", NO_PERSISTENT), ("po", PERSISTENT_ONLY)]
        .map(|(thing, policy)| setup.device_with(thing, ThingPolicy::Existing(policy.into())))
}

/// Whether the broker accepts `connect`: CONNACK success, or a refusal
/// (MQTT 5 CONNACK 0x87, MQTT 3.1.1 the connection closed without CONNACK).
async fn accepted(setup: &Setup, device: &Device, connect: Connect) -> bool {
    let protocol = connect.protocol;
    let mut client = RawClient::open(setup.addr(), device).await.expect("TLS");
    client.protocol = protocol;
    client.send(&Packet::Connect(Box::new(connect))).await;
    match client.recv().await {
        Some(Packet::ConnAck(ack)) if ack.reason == ReasonCode::SUCCESS => true,
        Some(Packet::ConnAck(ack)) => {
            assert_eq!(ack.reason, ReasonCode::NOT_AUTHORIZED);
            assert_eq!(protocol, V5, "MQTT 3.1.1 gets no refusing CONNACK");
            false
        }
        None => {
            assert_eq!(protocol, V311, "MQTT 5 gets CONNACK 0x87");
            false
        }
        other => panic!("{other:?}"),
    }
}

/// A clean CONNECT, the same asking for a persistent session (MQTT 3.1.1
/// cleanSession 0, MQTT 5 a Session Expiry Interval), and a clean one with a will.
fn connects(client_id: &str, protocol: ProtocolVersion) -> [Connect; 3] {
    let clean = connect_packet(client_id, protocol);
    let mut persistent = clean.clone();
    match protocol {
        V311 => persistent.clean_start = false,
        _ => persistent.properties.session_expiry_interval = Some(3600),
    }
    let mut with_will = clean.clone();
    with_will.will = Some(will("will/gone", b"gone"));
    [clean, persistent, with_will]
}

/// Connects `device` as `client_id` with each of [`connects`]' CONNECTs in
/// turn and asserts which the broker accepts: `expected`, in the same order
/// (clean, persistent session, will).
async fn assert_accepts(
    setup: &Setup,
    device: &Device,
    client_id: &str,
    protocol: ProtocolVersion,
    expected: [bool; 3],
) {
    let asked = ["a clean session", "a persistent session", "a will"];
    for ((connect, expected), asked) in connects(client_id, protocol)
        .into_iter()
        .zip(expected)
        .zip(asked)
    {
        assert_eq!(
            accepted(setup, device, connect).await,
            expected,
            "{protocol:?}: {asked}"
        );
    }
}

#[tokio::test]
async fn the_broker_refuses_the_connects_a_policy_on_connect_attributes_does_not_allow() {
    let setup = Setup::start().await;
    let [no_persistent, persistent_only] = devices_under_both_policies(&setup);
    for protocol in [V5, V311] {
        assert_accepts(&setup, &no_persistent, "np", protocol, [true, false, true]).await;
        // A will is not listed in the policy.
        assert_accepts(
            &setup,
            &persistent_only,
            "po",
            protocol,
            [true, true, false],
        )
        .await;
    }
    // MQTT 5 Clean Start 0 without a Session Expiry Interval: the session
    // ends with the connection, no PersistentConnect.
    let mut rejoin = connect_packet("np", V5);
    rejoin.clean_start = false;
    assert!(accepted(&setup, &no_persistent, rejoin).await);
}

#[tokio::test]
async fn the_refusal_is_explained_with_the_connect_attributes() {
    let setup = Setup::start().await;
    let [device, _] = devices_under_both_policies(&setup);
    let (principal, _) = setup
        .emulator
        .control()
        .principal(&device.credentials.certificate_id, "np", None)
        .expect("principal");
    let arn = principal.scope().arn(Action::Connect, "np");
    let persistent = ConnectAttributes {
        persistent_connect: true,
        last_will: false,
    };
    let decision = principal.evaluate_connect(&arn, persistent);
    assert!(!decision.is_allowed());
    let text = decision.to_string();
    assert!(
        text.contains("with iot:ConnectAttributes [PersistentConnect] denied"),
        "{text}"
    );
    assert!(
        text.contains(
            "Statement[0]: its condition on iot:ConnectAttributes does not hold for \
             [PersistentConnect]"
        ),
        "{text}"
    );
}

/// `awsiot_pubsub.py` connecting as `device` (client id its name), with a
/// persistent session or not; its error event's stage if it failed.
async fn python_connect(
    setup: &Setup,
    device: &Device,
    protocol: &str,
    persistent: bool,
) -> Option<String> {
    let mut args = peer_args(
        setup,
        device,
        &[
            ("--client-id", &device.name),
            ("--protocol", protocol),
            ("--topic", "unused"),
            ("--timeout", "20"),
        ],
    );
    if persistent {
        args.push("--persistent".into());
    }
    let output = run_peer("awsiot_pubsub.py", &args).await;
    let errors = output.events_named("error");
    if errors.is_empty() {
        output.assert_success();
        return None;
    }
    assert_eq!(errors.len(), 1, "{output}");
    Some(errors[0]["stage"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn awss_python_sdk_gets_a_persistent_session_only_where_the_policy_allows_it() {
    let setup = Setup::start().await;
    let [no_persistent, persistent_only] = devices_under_both_policies(&setup);
    for protocol in ["3", "5"] {
        assert_eq!(
            python_connect(&setup, &no_persistent, protocol, true)
                .await
                .as_deref(),
            Some("connect"),
            "MQTT {protocol}: clean_session=False under a non-persistent policy"
        );
        assert_eq!(
            python_connect(&setup, &no_persistent, protocol, false).await,
            None,
            "MQTT {protocol}"
        );
        assert_eq!(
            python_connect(&setup, &persistent_only, protocol, true).await,
            None,
            "MQTT {protocol}: the policy allows PersistentConnect"
        );
    }
}
