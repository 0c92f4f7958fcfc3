//! Registry changes reach live connections: a certificate made inactive or
//! revoked ends its connections and is refused from then on; a policy changed
//! while a device is connected decides its next request. Changes come through
//! the in-process API (`Emulator::set_certificate_status`, `registry_changed`)
//! or from another process's database connection (what the `iotcore` CLI does),
//! which the emulator notices by polling.

mod support;

use iotcore_emulator::store::{CertificateStatus, Store};
use iotcore_emulator::things::ThingPolicy;
use iotcore_mqtt::{Packet, ProtocolVersion, QoS, ReasonCode};
use support::*;

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V311;

#[tokio::test]
async fn revoking_a_connected_devices_certificate_disconnects_it_and_it_cannot_reconnect() {
    for protocol in [V5, V311] {
        let setup = Setup::start().await;
        let device = setup.device_with("dev", ThingPolicy::default());
        let mut client = RawClient::connected(setup.addr(), &device, protocol).await;
        setup
            .emulator
            .set_certificate_status(
                &device.credentials.certificate_id,
                CertificateStatus::Revoked,
            )
            .expect("revoked");
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
async fn a_status_change_written_by_another_process_is_noticed_by_polling() {
    let setup = Setup::start().await;
    let device = setup.device_with("dev", ThingPolicy::default());
    let id = device.credentials.certificate_id.clone();
    let mut client = RawClient::connected(setup.addr(), &device, V5).await;
    // A second database connection, as the CLI process opens, and no poke.
    let other_process = Store::open(setup.dir.path()).expect("store");
    other_process
        .set_certificate_status(&id, CertificateStatus::Inactive)
        .expect("inactive");
    assert_eq!(
        disconnect_reason(&client.until_closed().await),
        Some(ReasonCode::NOT_AUTHORIZED)
    );
    assert!(tls_refused(&setup, &device).await);
    other_process
        .set_certificate_status(&id, CertificateStatus::Active)
        .expect("active again");
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
    let deleted =
        iotcore_emulator::things::delete_thing(setup.emulator.store(), "dev").expect("deleted");
    assert_eq!(deleted.certificates.len(), 1);
    assert_eq!(deleted.certificates[0], device.credentials.certificate_id);
    assert_eq!(deleted.policy.as_deref(), Some("dev-policy"));
    setup.emulator.registry_changed();
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

#[tokio::test]
async fn a_policy_changed_while_a_device_is_connected_decides_its_next_publish() {
    let setup = Setup::start().await;
    let store = setup.emulator.store();
    let open = r#"{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["iot:Connect", "iot:Publish"], "Resource": "*"}]}"#;
    let closed = r#"{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]}"#;
    store.create_policy("live", open).expect("policy");
    let device = setup.device_with("dev", ThingPolicy::Existing("live".into()));
    let mut client = RawClient::connected(setup.addr(), &device, V5).await;
    assert_eq!(
        client.publish_qos1(1, "a/b", "x").await,
        ReasonCode::SUCCESS
    );

    store
        .create_policy_version("live", closed, true)
        .expect("version 2");
    setup.emulator.registry_changed();
    publish_until(&mut client, "a/b", ReasonCode::NOT_AUTHORIZED).await;

    store
        .set_default_policy_version("live", 1)
        .expect("back to version 1");
    setup.emulator.registry_changed();
    publish_until(&mut client, "a/b", ReasonCode::SUCCESS).await;

    store
        .detach_policy("live", &device.credentials.certificate_id)
        .expect("detached");
    setup.emulator.registry_changed();
    publish_until(&mut client, "a/b", ReasonCode::NOT_AUTHORIZED).await;
    // Connected all along: policies decide requests, not the connection.
    client.send(&Packet::PingReq).await;
    assert_eq!(client.recv().await, Some(Packet::PingResp));
}

#[tokio::test]
async fn a_subscription_made_before_a_policy_change_stops_receiving_when_receive_is_denied() {
    let setup = Setup::start().await;
    let store = setup.emulator.store();
    let policy = |receive: &str| {
        format!(
            r#"{{"Version": "2012-10-17", "Statement": [
            {{"Effect": "Allow", "Action": ["iot:Connect", "iot:Subscribe"], "Resource": "*"}},
            {{"Effect": "Allow", "Action": "iot:Receive",
              "Resource": "arn:aws:iot:us-east-1:123456789012:topic/{receive}"}}]}}"#
        )
    };
    store
        .create_policy("reader", &policy("news/*"))
        .expect("policy");
    let reader = setup.device_with("reader", ThingPolicy::Existing("reader".into()));
    let publisher = setup.device("publisher");
    let mut sub = RawClient::connected(setup.addr(), &reader, V5).await;
    sub.subscribe(1, &["news/#"], QoS::AtLeastOnce).await;
    let mut pubc = RawClient::connected(setup.addr(), &publisher, V5).await;
    pubc.publish_qos1(1, "news/a", "1").await;
    assert_eq!(sub.recv_publish().await.topic, "news/a");

    store
        .create_policy_version("reader", &policy("news/sports/*"), true)
        .expect("version 2");
    setup.emulator.registry_changed();
    // Until the change applies "news/a" is still delivered; afterwards only sports.
    let mut packet_id = 2;
    loop {
        pubc.publish_qos1(packet_id, "news/a", "2").await;
        pubc.publish_qos1(packet_id + 1, "news/sports/b", "3").await;
        packet_id += 2;
        let first = sub.recv_publish().await;
        if first.topic == "news/sports/b" {
            break;
        }
        assert_eq!(sub.recv_publish().await.topic, "news/sports/b");
    }
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
