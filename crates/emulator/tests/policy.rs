//! AWS IoT policies, decided by the engine and enforced by the broker: one table
//! of cases, run through the policy engine (`Principal`), through the broker
//! with a raw MQTT 5 and MQTT 3.1.1 client, and through AWS's IoT Device SDK v2
//! for Python. AWS behaviours: docs/aws-iot-core-behaviour.md §1.8 and §6.

mod support;

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr};

use iotcore_emulator::control::{
    Control, CreatePolicyRequest, CreatePolicyVersionRequest, ErrorCode, PolicyNameRequest,
    ThingPolicy,
};
use iotcore_emulator::policy::{Action, ArnScope};
use iotcore_mqtt::{Packet, ProtocolVersion, QoS, ReasonCode};
use iotcore_test_support::run_peer;
use serde_json::{Value, json};
use support::*;

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V311;
const ARN: &str = "arn:aws:iot:us-east-1:123456789012";

/// Attached to every case's certificate except the iot:Connect cases': lets it
/// connect, and subscribe to and receive its marker topic `marker/<thing>`.
const BASE: &str = "case-base";

/// One row: a policy, a request, and whether AWS allows it.
struct Case {
    name: &'static str,
    /// The case policy's statements; `{arn}` is the ARN prefix.
    statements: Value,
    /// The client id, if not the thing's name.
    client_id: Option<&'static str>,
    action: Action,
    /// Client id, topic or filter; `{thing}` is the thing's name.
    resource: &'static str,
    allowed: bool,
}

fn allow(actions: &[&str], resources: &[&str]) -> Value {
    json!({"Effect": "Allow", "Action": actions, "Resource": resources.iter().map(|r| format!("{ARN}:{r}")).collect::<Vec<_>>()})
}

fn deny(actions: &[&str], resources: &[&str]) -> Value {
    let mut s = allow(actions, resources);
    s["Effect"] = json!("Deny");
    s
}

fn cases() -> Vec<Case> {
    let thing_topics = allow(
        &["iot:Publish"],
        &["topic/things/${iot:Connection.Thing.ThingName}/*"],
    );
    let receive_feed = json!([
        allow(&["iot:Subscribe"], &["topicfilter/feed/*"]),
        allow(&["iot:Receive"], &["topic/feed/public/*"]),
    ]);
    vec![
        Case {
            name: "an exact topic is allowed",
            statements: json!([allow(&["iot:Publish"], &["topic/a/b"])]),
            client_id: None,
            action: Action::Publish,
            resource: "a/b",
            allowed: true,
        },
        Case {
            name: "a topic no statement names is denied",
            statements: json!([allow(&["iot:Publish"], &["topic/a/b"])]),
            client_id: None,
            action: Action::Publish,
            resource: "a/c",
            allowed: false,
        },
        Case {
            name: "an explicit deny wins over an allow of everything",
            statements: json!([
                {"Effect": "Allow", "Action": "iot:*", "Resource": "*"},
                deny(&["iot:Publish"], &["topic/secret/*"]),
            ]),
            client_id: None,
            action: Action::Publish,
            resource: "secret/plans",
            allowed: false,
        },
        Case {
            name: "what the deny does not cover stays allowed",
            statements: json!([
                {"Effect": "Allow", "Action": "iot:*", "Resource": "*"},
                deny(&["iot:Publish"], &["topic/secret/*"]),
            ]),
            client_id: None,
            action: Action::Publish,
            resource: "open/plans",
            allowed: true,
        },
        Case {
            name: "* matches across topic levels",
            statements: json!([allow(&["iot:Publish"], &["topic/dt/*"])]),
            client_id: None,
            action: Action::Publish,
            resource: "dt/x/y/z",
            allowed: true,
        },
        Case {
            name: "? matches exactly one character",
            statements: json!([allow(&["iot:Publish"], &["topic/dev-?"])]),
            client_id: None,
            action: Action::Publish,
            resource: "dev-12",
            allowed: false,
        },
        Case {
            name: "an action wildcard (iot:Pub*) covers iot:Publish",
            statements: json!([{"Effect": "Allow", "Action": "iot:Pub*", "Resource": format!("{ARN}:topic/w")}]),
            client_id: None,
            action: Action::Publish,
            resource: "w",
            allowed: true,
        },
        Case {
            name: "+ in a topicfilter resource is a literal character: the same filter is allowed",
            statements: json!([allow(&["iot:Subscribe"], &["topicfilter/sensors/+/temp"])]),
            client_id: None,
            action: Action::Subscribe,
            resource: "sensors/+/temp",
            allowed: true,
        },
        Case {
            name: "+ in a topicfilter resource is a literal character: a narrower filter is denied",
            statements: json!([allow(&["iot:Subscribe"], &["topicfilter/sensors/+/temp"])]),
            client_id: None,
            action: Action::Subscribe,
            resource: "sensors/kitchen/temp",
            allowed: false,
        },
        Case {
            name: "iot:Subscribe is checked against topicfilter, not topic",
            statements: json!([allow(&["iot:Subscribe"], &["topic/a/b"])]),
            client_id: None,
            action: Action::Subscribe,
            resource: "a/b",
            allowed: false,
        },
        Case {
            name: "${iot:Connection.Thing.ThingName} is the thing's name",
            statements: json!([thing_topics]),
            client_id: None,
            action: Action::Publish,
            resource: "things/{thing}/temp",
            allowed: true,
        },
        Case {
            name: "${iot:Connection.Thing.ThingName} is not another thing's name",
            statements: json!([thing_topics]),
            client_id: None,
            action: Action::Publish,
            resource: "things/someone-else/temp",
            allowed: false,
        },
        Case {
            name: "${iot:ClientId} is the client id",
            statements: json!([allow(&["iot:Publish"], &["topic/clients/${iot:ClientId}"])]),
            client_id: None,
            action: Action::Publish,
            resource: "clients/{thing}",
            allowed: true,
        },
        Case {
            name: "${iot:Certificate.Subject.CommonName} is the certificate's CN",
            statements: json!([allow(
                &["iot:Publish"],
                &["topic/cn/${iot:Certificate.Subject.CommonName}"]
            )]),
            client_id: None,
            action: Action::Publish,
            resource: "cn/{thing}",
            allowed: true,
        },
        Case {
            name: "an unknown variable is never replaced: nothing real matches",
            statements: json!([allow(&["iot:Publish"], &["topic/u/${iot:NoSuchVariable}"])]),
            client_id: None,
            action: Action::Publish,
            resource: "u/anything",
            allowed: false,
        },
        Case {
            name: "iot:Connect as the certificate's thing",
            statements: json!([allow(
                &["iot:Connect"],
                &["client/${iot:Connection.Thing.ThingName}"]
            )]),
            client_id: None,
            action: Action::Connect,
            resource: "{thing}",
            allowed: true,
        },
        Case {
            name: "iot:Connect with a client id that is not the certificate's thing: the variable stays unresolved",
            statements: json!([allow(
                &["iot:Connect"],
                &["client/${iot:Connection.Thing.ThingName}"]
            )]),
            client_id: Some("stranger"),
            action: Action::Connect,
            resource: "stranger",
            allowed: false,
        },
        Case {
            name: "a Bool condition on iot:Connection.Thing.IsAttached holds for the thing",
            statements: json!([{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*",
                                "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}}}]),
            client_id: None,
            action: Action::Connect,
            resource: "{thing}",
            allowed: true,
        },
        Case {
            name: "a Bool condition on iot:Connection.Thing.IsAttached fails for another client id",
            statements: json!([{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*",
                                "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}}}]),
            client_id: Some("someone"),
            action: Action::Connect,
            resource: "someone",
            allowed: false,
        },
        Case {
            name: "iot:Receive allows delivery on a topic",
            statements: receive_feed.clone(),
            client_id: None,
            action: Action::Receive,
            resource: "feed/public/1",
            allowed: true,
        },
        Case {
            name: "iot:Receive denied: the subscription holds but the message is not delivered",
            statements: receive_feed,
            client_id: None,
            action: Action::Receive,
            resource: "feed/private/1",
            allowed: false,
        },
        Case {
            name: "a retained publish also needs iot:RetainPublish",
            statements: json!([allow(&["iot:Publish"], &["topic/r/*"])]),
            client_id: None,
            action: Action::RetainPublish,
            resource: "r/state",
            allowed: false,
        },
        Case {
            name: "a retained publish with iot:RetainPublish",
            statements: json!([allow(&["iot:Publish", "iot:RetainPublish"], &["topic/r/*"])]),
            client_id: None,
            action: Action::RetainPublish,
            resource: "r/state",
            allowed: true,
        },
    ]
}

/// A case with its thing registered.
struct Registered {
    case: Case,
    device: Device,
    client_id: String,
    resource: String,
}

/// Registers thing `case-<i>` per case, with policy `case-<i>` (and [`BASE`]).
fn register(setup: &Setup) -> Vec<Registered> {
    let control = setup.emulator.control();
    create_policy(
        control,
        BASE,
        &json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
            allow(&["iot:Subscribe"], &["topicfilter/marker/*"]),
            allow(&["iot:Receive"], &["topic/marker/*"]),
        ]})
        .to_string(),
    );
    cases()
        .into_iter()
        .enumerate()
        .map(|(i, case)| {
            let thing = format!("case-{i}");
            let document = json!({"Version": "2012-10-17", "Statement": case.statements});
            create_policy(control, &thing, &document.to_string());
            let device = setup.device_with(&thing, ThingPolicy::Existing(thing.clone()));
            if case.action != Action::Connect {
                attach_policy(control, BASE, &device.credentials.certificate_id);
            }
            Registered {
                client_id: case.client_id.map_or(thing.clone(), str::to_owned),
                resource: case.resource.replace("{thing}", &thing),
                device,
                case,
            }
        })
        .collect()
}

#[tokio::test]
async fn the_engine_decides_every_case_and_names_the_deciding_statement() {
    let setup = Setup::start().await;
    for r in register(&setup) {
        let (principal, _) = setup
            .emulator
            .control()
            .principal(
                &r.device.credentials.certificate_id,
                &r.client_id,
                Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            )
            .expect("principal");
        let decision = principal.evaluate_name(r.case.action, &r.resource);
        assert_eq!(
            decision.is_allowed(),
            r.case.allowed,
            "{}: {decision}",
            r.case.name
        );
        if r.case.allowed {
            assert!(decision.statement().is_some(), "{decision}");
        }
    }
}

/// What the broker did with the case's request, as allowed (true) or refused.
async fn through_the_broker(
    setup: &Setup,
    r: &Registered,
    protocol: ProtocolVersion,
    publisher: &Device,
) -> bool {
    let connect = connect_packet(&r.client_id, protocol);
    if r.case.action == Action::Connect {
        let mut client = RawClient::open(setup.addr(), &r.device).await.expect("TLS");
        client.protocol = protocol;
        client.send(&Packet::Connect(Box::new(connect))).await;
        return match client.recv().await {
            Some(Packet::ConnAck(ack)) if ack.reason == ReasonCode::SUCCESS => true,
            Some(Packet::ConnAck(ack)) => {
                assert_eq!(ack.reason, ReasonCode::NOT_AUTHORIZED, "{}", r.case.name);
                assert_eq!(protocol, V5, "MQTT 3.1.1 gets no refusing CONNACK");
                false
            }
            None => {
                assert_eq!(protocol, V311, "MQTT 5 gets CONNACK 0x87");
                false
            }
            other => panic!("{}: {other:?}", r.case.name),
        };
    }
    let (mut client, ack) = RawClient::connect(setup.addr(), &r.device, connect).await;
    assert_eq!(ack.reason, ReasonCode::SUCCESS, "{}", r.case.name);
    match r.case.action {
        Action::Publish | Action::RetainPublish => {
            let mut packet = publish(&r.resource, QoS::AtLeastOnce, Some(1), "x");
            if let Packet::Publish(p) = &mut packet {
                p.retain = r.case.action == Action::RetainPublish;
            }
            client.send(&packet).await;
            match client.recv_skipping_pings().await {
                Some(Packet::PubAck(ack)) if ack.reason == ReasonCode::SUCCESS => true,
                Some(Packet::PubAck(ack)) => {
                    assert_eq!((protocol, ack.reason), (V5, ReasonCode::NOT_AUTHORIZED));
                    false
                }
                None => {
                    assert_eq!(protocol, V311, "MQTT 5 gets PUBACK 0x87");
                    false
                }
                other => panic!("{}: {other:?}", r.case.name),
            }
        }
        Action::Subscribe => {
            client
                .send(&subscribe(1, &[r.resource.as_str()], QoS::AtLeastOnce))
                .await;
            match client.recv_skipping_pings().await {
                Some(Packet::SubAck(ack)) if ack.reasons == [ReasonCode::GRANTED_QOS_1] => true,
                Some(Packet::SubAck(ack)) => {
                    assert_eq!(protocol, V5);
                    assert_eq!(ack.reasons, [ReasonCode::NOT_AUTHORIZED]);
                    false
                }
                None => {
                    assert_eq!(protocol, V311, "MQTT 5 gets SUBACK 0x87");
                    false
                }
                other => panic!("{}: {other:?}", r.case.name),
            }
        }
        Action::Receive => {
            let marker = format!("marker/{}", r.device.name);
            let granted = client
                .subscribe(1, &[r.resource.as_str(), marker.as_str()], QoS::AtLeastOnce)
                .await;
            assert_eq!(granted, [ReasonCode::GRANTED_QOS_1; 2], "{}", r.case.name);
            let mut sender = RawClient::connected(setup.addr(), publisher, V5).await;
            assert_eq!(
                sender.publish_qos1(1, &r.resource, "m").await,
                ReasonCode::SUCCESS
            );
            assert_eq!(
                sender.publish_qos1(2, &marker, "end").await,
                ReasonCode::SUCCESS
            );
            sender.disconnect().await;
            // One session, one order: a delivered message arrives before the marker.
            let first = client.recv_publish().await;
            first.topic == r.resource
        }
        other => panic!("no broker check for {other}"),
    }
}

async fn every_case_through_the_broker(protocol: ProtocolVersion) {
    let setup = Setup::start().await;
    let publisher = setup.device("publisher");
    for r in register(&setup) {
        let allowed = through_the_broker(&setup, &r, protocol, &publisher).await;
        assert_eq!(allowed, r.case.allowed, "{} ({protocol:?})", r.case.name);
    }
}

#[tokio::test]
async fn the_broker_enforces_every_case_over_mqtt5_with_reason_codes() {
    every_case_through_the_broker(V5).await;
}

#[tokio::test]
async fn the_broker_enforces_every_case_over_mqtt311_by_closing_the_connection() {
    every_case_through_the_broker(V311).await;
}

#[tokio::test]
async fn awss_python_sdk_sees_the_same_decisions_over_mqtt5() {
    let setup = Setup::start().await;
    for r in register(&setup) {
        let mut args = peer_args(
            &setup,
            &r.device,
            &[
                ("--client-id", &r.client_id),
                ("--protocol", "5"),
                ("--timeout", "20"),
            ],
        );
        let stage = match r.case.action {
            Action::Connect => {
                args.extend(["--topic".into(), "unused".into()]);
                "connect"
            }
            Action::Publish => {
                args.extend(["--topic".into(), r.resource.clone().into()]);
                args.extend(["--publish-count".into(), "1".into()]);
                "publish"
            }
            Action::Subscribe => {
                args.extend(["--topic".into(), r.resource.clone().into()]);
                args.push("--subscribe-first".into());
                "subscribe"
            }
            // The peer publishes without RETAIN; Receive has its own test below.
            _ => continue,
        };
        let output = run_peer("awsiot_pubsub.py", &args).await;
        if r.case.allowed {
            output.assert_success();
        } else {
            let errors = output.events_named("error");
            assert_eq!(errors.len(), 1, "{}: {output}", r.case.name);
            assert_eq!(errors[0]["stage"], stage, "{}: {output}", r.case.name);
            if stage != "connect" {
                let message = errors[0]["message"].as_str().unwrap_or_default();
                assert!(
                    message.contains("NOT_AUTHORIZED"),
                    "{}: {output}",
                    r.case.name
                );
            }
        }
    }
}

#[tokio::test]
async fn awss_python_sdk_receives_only_what_iot_receive_allows() {
    let setup = Setup::start().await;
    create_policy(
        setup.emulator.control(),
        "feed-reader",
        &json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
            allow(&["iot:Subscribe"], &["topicfilter/feed/#"]),
            allow(&["iot:Receive"], &["topic/feed/public/*"]),
        ]})
        .to_string(),
    );
    let reader = setup.device_with("reader", ThingPolicy::Existing("feed-reader".into()));
    let publisher = setup.device("publisher");
    for protocol in ["3", "5"] {
        let files = &reader.files;
        let args: Vec<OsString> = [
            "--port",
            &setup.addr().port().to_string(),
            "--ca",
            files.root_ca.to_str().unwrap(),
            "--cert",
            files.certificate.to_str().unwrap(),
            "--key",
            files.private_key.to_str().unwrap(),
            "--client-id",
            "reader",
            "--protocol",
            protocol,
            "--topic",
            "feed/#",
            "--subscribe-first",
            "--expect",
            "1",
        ]
        .into_iter()
        .map(OsString::from)
        .collect();
        let mut peer = iotcore_test_support::spawn_peer("awsiot_pubsub.py", &args);
        peer.wait_for_event("subscribed").await;
        let mut sender = RawClient::connected(setup.addr(), &publisher, V5).await;
        sender.publish_qos1(1, "feed/private/1", "secret").await;
        sender.publish_qos1(2, "feed/public/1", "hello").await;
        sender.disconnect().await;
        let output = peer.finish().await;
        output.assert_success();
        let received: Vec<Value> = output.events_named("received");
        assert_eq!(received.len(), 1, "{output}");
        assert_eq!(received[0]["topic"], "feed/public/1", "{output}");
    }
}

/// A policy document whose second statement's Effect is neither Allow nor Deny.
const PERMIT_EFFECT: &str = r#"{"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "iot:Publish", "Resource": "*"},
    {"Effect": "Permit", "Action": "iot:Subscribe", "Resource": "*"}]}"#;

#[test]
fn a_malformed_policy_is_refused_at_creation_naming_the_element() {
    let dir = tempfile::tempdir().unwrap();
    let control = Control::open(dir.path(), ArnScope::default()).unwrap();
    let create = |document: &str| {
        control
            .create_policy(CreatePolicyRequest {
                policy_name: "p".into(),
                policy_document: document.into(),
                tags: None,
            })
            .unwrap_err()
    };
    let err = create(PERMIT_EFFECT);
    assert_eq!(err.code(), ErrorCode::MalformedPolicy, "{err}");
    assert_eq!(
        err.message(),
        "policy \"p\" refused: Statement[1].Effect: \"Permit\" is not \"Allow\" or \"Deny\" (case-sensitive)"
    );
    let stored = control.get_policy(PolicyNameRequest {
        policy_name: "p".into(),
    });
    assert_eq!(
        stored.unwrap_err().code(),
        ErrorCode::ResourceNotFound,
        "nothing stored"
    );
    let err = create("{\"Version\": \"2012-10-17\",");
    assert_eq!(err.code(), ErrorCode::MalformedPolicy, "{err}");
    assert!(err.message().contains("not valid JSON"), "{err}");
}

#[test]
fn a_malformed_policy_version_is_refused_and_the_policy_keeps_its_versions() {
    let dir = tempfile::tempdir().unwrap();
    let control = Control::open(dir.path(), ArnScope::default()).unwrap();
    create_policy(&control, "p", ALLOW_ALL_DOCUMENT);
    let err = control
        .create_policy_version(CreatePolicyVersionRequest {
            policy_name: "p".into(),
            policy_document: PERMIT_EFFECT.into(),
            set_as_default: Some(true),
        })
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::MalformedPolicy, "{err}");
    assert!(err.message().contains("Statement[1].Effect"), "{err}");
    let versions = control
        .list_policy_versions(PolicyNameRequest {
            policy_name: "p".into(),
        })
        .unwrap()
        .policy_versions;
    assert_eq!(versions.len(), 1, "nothing stored: {versions:?}");
    assert!(versions[0].is_default_version);
}
