//! Registry changes reach live connections: a certificate made inactive or
//! revoked ends its connections and is refused from then on; a policy changed
//! while a device is connected decides its next request. Changes come through
//! the running emulator's control plane (`Emulator::control`), which tells the
//! connections at once, or from another process's control plane on the same
//! data directory (what the `iotcore` CLI does), which tells the running
//! emulator through the data directory's notification socket. Nothing polls:
//! a change that reaches a connection was announced.

mod support;

use iotcore_emulator::control::{
    Control, CreatePolicyVersionRequest, PolicyTargetRequest, PolicyVersionRequest, ThingPolicy,
};
use iotcore_mqtt::{Packet, ProtocolVersion, QoS, ReasonCode};
use support::*;

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V311;

/// CreatePolicyVersion, made the default.
fn create_default_version(control: &Control, name: &str, document: &str) {
    control
        .create_policy_version(CreatePolicyVersionRequest {
            policy_name: name.into(),
            policy_document: document.into(),
            set_as_default: Some(true),
        })
        .expect("policy version created");
}

#[tokio::test]
async fn revoking_a_connected_devices_certificate_disconnects_it_and_it_cannot_reconnect() {
    for protocol in [V5, V311] {
        let setup = Setup::start().await;
        let device = setup.device_with("dev", ThingPolicy::default());
        let mut client = RawClient::connected(setup.addr(), &device, protocol).await;
        set_certificate_status(
            setup.emulator.control(),
            &device.credentials.certificate_id,
            "REVOKED",
        );
        let packets = client.until_closed().await;
        match protocol {
            V5 => assert_eq!(
                disconnect_reason(&packets),
                Some(ReasonCode::NOT_AUTHORIZED),
                "{packets:?}"
            ),
            _ => assert!(
                packets.is_empty(),
                "MQTT 3.1.1 has no DISCONNECT to send: {packets:?}"
            ),
        }
        assert!(
            tls_refused(&setup, &device).await,
            "a revoked certificate connected again"
        );
    }
}

#[tokio::test]
async fn a_status_change_made_by_another_process_reaches_live_connections() {
    let setup = Setup::start().await;
    let device = setup.device_with("dev", ThingPolicy::default());
    let id = &device.credentials.certificate_id;
    let mut client = RawClient::connected(setup.addr(), &device, V5).await;
    // A second control plane on the data directory, as the CLI process opens:
    // it tells the running emulator of its changes through the data directory.
    let other_process =
        Control::open(setup.dir.path(), setup.emulator.arn_scope().clone()).expect("control");
    set_certificate_status(&other_process, id, "INACTIVE");
    assert_eq!(
        disconnect_reason(&client.until_closed().await),
        Some(ReasonCode::NOT_AUTHORIZED)
    );
    assert!(tls_refused(&setup, &device).await);
    set_certificate_status(&other_process, id, "ACTIVE");
    RawClient::connected(setup.addr(), &device, V5)
        .await
        .disconnect()
        .await;
}

#[tokio::test]
async fn deleting_a_connected_devices_thing_disconnects_it() {
    let setup = Setup::start().await;
    let device = setup.device_with("dev", ThingPolicy::default());
    let mut client = RawClient::connected(setup.addr(), &device, V5).await;
    let deleted = setup
        .emulator
        .control()
        .delete_thing_with_credentials("dev")
        .expect("deleted");
    assert_eq!(deleted.certificates.len(), 1);
    assert_eq!(deleted.certificates[0], device.credentials.certificate_id);
    assert_eq!(deleted.policy.as_deref(), Some("dev-policy"));
    assert_eq!(
        disconnect_reason(&client.until_closed().await),
        Some(ReasonCode::NOT_AUTHORIZED)
    );
}

/// Publishes at QoS 1 until the PUBACK says `until` (the connection re-reads
/// its policies in the background); the emulator's answers bound the wait.
async fn publish_until(client: &mut RawClient, topic: &str, until: ReasonCode) {
    for packet_id in 1..=u16::MAX {
        let reason = client.publish_qos1(packet_id, topic, "x").await;
        if reason == until {
            return;
        }
    }
    panic!("the PUBACK never became {until}");
}

/// The topic is allowed (and remembered by the connection's grant) before
/// each change: what a connection remembered must not outlive its policies.
#[tokio::test]
async fn a_policy_changed_while_a_device_is_connected_decides_its_next_publish() {
    let setup = Setup::start().await;
    let control = setup.emulator.control();
    let open = r#"{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["iot:Connect", "iot:Publish"], "Resource": "*"}]}"#;
    let closed = r#"{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]}"#;
    create_policy(control, "live", open);
    let device = setup.device_with("dev", ThingPolicy::Existing("live".into()));
    let mut client = RawClient::connected(setup.addr(), &device, V5).await;
    assert_eq!(
        client.publish_qos1(1, "a/b", "x").await,
        ReasonCode::SUCCESS
    );

    create_default_version(control, "live", closed);
    publish_until(&mut client, "a/b", ReasonCode::NOT_AUTHORIZED).await;

    control
        .set_default_policy_version(PolicyVersionRequest {
            policy_name: "live".into(),
            policy_version_id: "1".into(),
        })
        .expect("back to version 1");
    publish_until(&mut client, "a/b", ReasonCode::SUCCESS).await;

    control
        .detach_policy(PolicyTargetRequest {
            policy_name: "live".into(),
            target: device.credentials.certificate_id.clone(),
        })
        .expect("detached");
    publish_until(&mut client, "a/b", ReasonCode::NOT_AUTHORIZED).await;
    // Connected all along: policies decide requests, not the connection.
    client.send(&Packet::PingReq).await;
    assert_eq!(client.recv().await, Some(Packet::PingResp));
}

/// `news/a` is received (and remembered as allowed) before the change.
#[tokio::test]
async fn a_subscription_made_before_a_policy_change_stops_receiving_when_receive_is_denied() {
    let setup = Setup::start().await;
    let control = setup.emulator.control();
    let policy = |receive: &str| {
        format!(
            r#"{{"Version": "2012-10-17", "Statement": [
            {{"Effect": "Allow", "Action": ["iot:Connect", "iot:Subscribe"], "Resource": "*"}},
            {{"Effect": "Allow", "Action": "iot:Receive",
              "Resource": "arn:aws:iot:us-east-1:123456789012:topic/{receive}"}}]}}"#
        )
    };
    create_policy(control, "reader", &policy("news/*"));
    let reader = setup.device_with("reader", ThingPolicy::Existing("reader".into()));
    let publisher = setup.device("publisher");
    let mut sub = RawClient::connected(setup.addr(), &reader, V5).await;
    sub.subscribe(1, &["news/#"], QoS::AtLeastOnce).await;
    let mut pubc = RawClient::connected(setup.addr(), &publisher, V5).await;
    pubc.publish_qos1(1, "news/a", "1").await;
    assert_eq!(sub.recv_publish().await.topic, "news/a");

    create_default_version(control, "reader", &policy("news/sports/*"));
    // Until the change applies "news/a" is still delivered; afterwards only sports.
    for packet_id in (2..u16::MAX).step_by(2) {
        pubc.publish_qos1(packet_id, "news/a", "2").await;
        pubc.publish_qos1(packet_id + 1, "news/sports/b", "3").await;
        let first = sub.recv_publish().await;
        if first.topic == "news/sports/b" {
            return;
        }
        assert_eq!(sub.recv_publish().await.topic, "news/sports/b");
    }
    panic!("the subscriber kept receiving news/a after Receive was denied");
}

#[tokio::test]
async fn a_policy_denying_the_will_topic_refuses_the_connect() {
    let setup = Setup::start().await;
    let device = setup.device_with("dev", ThingPolicy::default());
    for (topic, allowed) in [("dt/dev/gone", true), ("dt/other/gone", false)] {
        let mut connect = connect_packet("dev", V5);
        connect.will = Some(will(topic, b"bye"));
        let (client, connack) = RawClient::connect(setup.addr(), &device, connect).await;
        let expected = if allowed {
            ReasonCode::SUCCESS
        } else {
            ReasonCode::NOT_AUTHORIZED
        };
        assert_eq!(connack.reason, expected, "will on {topic}");
        if allowed {
            client.disconnect().await;
        }
    }
}
