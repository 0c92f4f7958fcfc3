//! The rules around the Device Shadow service: who receives replies (exact and
//! `+` subscribers, subscription churn as AWS's SDK does it), 429 for more than
//! 10 requests in flight, authorization, the cloud-side API publishing deltas,
//! shadows surviving a restart, and timestamps read from the emulator's clock.

mod support;

use std::time::{Duration, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use iotcore_emulator::ShadowApiError;
use iotcore_emulator::clock::Clock;
use iotcore_emulator::control::ThingPolicy;
use iotcore_model::shadow::ShadowError;
use iotcore_mqtt::packet::Unsubscribe;
use iotcore_mqtt::{Packet, ProtocolVersion, QoS};
use serde_json::{Value, json};
use support::{RawClient, Setup, publish};

fn json_of(payload: &[u8]) -> Value {
    serde_json::from_slice(payload).expect("JSON reply")
}

/// Where the manual clocks of these tests start (unix seconds), far from
/// the system's time so a timestamp taken from it cannot pass.
const START: u64 = 1_500_000_000;

/// A manual clock reading [`START`], and its hand.
fn manual_clock() -> (Clock, iotcore_emulator::clock::ManualClock) {
    Clock::manual(UNIX_EPOCH + Duration::from_secs(START))
}

async fn unsubscribe(client: &mut RawClient, packet_id: u16, filter: &str) {
    client
        .send(&Packet::Unsubscribe(Unsubscribe {
            packet_id,
            filters: vec![filter.to_owned()],
            properties: Default::default(),
        }))
        .await;
    match client.recv_skipping_pings().await {
        Some(Packet::UnsubAck(ack)) if ack.packet_id == packet_id => {}
        other => panic!("expected UNSUBACK {packet_id}, got {other:?}"),
    }
}

#[tokio::test]
async fn replies_reach_exact_and_wildcard_subscribers_through_subscription_churn() {
    let setup = Setup::start().await;
    let device = setup.device("churn");
    let mut client = RawClient::connected(setup.addr(), &device, ProtocolVersion::V311).await;
    let prefix = "$aws/things/churn/shadow/name/cfg";
    // AWS's v2 SDK subscribes to `…/update/+` (or accepted and rejected),
    // publishes, and unsubscribes once the reply is in — for every request.
    let mut packet_id = 1u16;
    for round in 0..50u64 {
        let filter = if round % 2 == 0 {
            format!("{prefix}/update/+")
        } else {
            format!("{prefix}/update/accepted")
        };
        client
            .subscribe(packet_id, &[&filter], QoS::AtLeastOnce)
            .await;
        let request =
            json!({"state": {"reported": {"round": round}}, "clientToken": format!("r{round}")});
        let reason = client
            .publish_qos1(packet_id, &format!("{prefix}/update"), request.to_string())
            .await;
        assert!(!reason.is_error());
        let reply = client.recv_publish().await;
        assert_eq!(reply.topic, format!("{prefix}/update/accepted"));
        let reply = json_of(&reply.payload);
        assert_eq!(reply["version"], json!(round + 1));
        assert_eq!(reply["clientToken"], json!(format!("r{round}")));
        if round % 2 == 0 {
            // `+` also matches documents.
            let documents = client.recv_publish().await;
            assert_eq!(documents.topic, format!("{prefix}/update/documents"));
        }
        unsubscribe(&mut client, packet_id, &filter).await;
        packet_id += 1;
    }
    // With nothing subscribed, requests are still served, silently.
    let reason = client
        .publish_qos1(
            packet_id,
            &format!("{prefix}/update"),
            r#"{"state":{"reported":{"quiet":true}}}"#,
        )
        .await;
    assert!(!reason.is_error());
    let document = setup
        .emulator
        .shadows()
        .get("churn", Some("cfg"))
        .await
        .unwrap();
    assert_eq!(document.version, 51);
    assert_eq!(document.state.reported.unwrap()["quiet"], json!(true));
    client.disconnect().await;
}

#[tokio::test]
async fn qos0_requests_are_served_too() {
    let setup = Setup::start().await;
    let device = setup.device("qos0");
    let mut client = RawClient::connected(setup.addr(), &device, ProtocolVersion::V5).await;
    client
        .subscribe(1, &["$aws/things/qos0/shadow/get/+"], QoS::AtMostOnce)
        .await;
    client
        .send(&publish(
            "$aws/things/qos0/shadow/get",
            QoS::AtMostOnce,
            None,
            Bytes::new(),
        ))
        .await;
    let reply = client.recv_publish().await;
    assert_eq!(reply.topic, "$aws/things/qos0/shadow/get/rejected");
    assert_eq!(reply.qos, QoS::AtMostOnce);
    assert_eq!(json_of(&reply.payload)["code"], json!(404));
    client.disconnect().await;
}

#[tokio::test]
async fn more_than_ten_requests_in_flight_on_one_connection_get_429() {
    let (clock, _hand) = manual_clock();
    let setup = Setup::start_with(|config| config.with_clock(clock)).await;
    let device = setup.device("burst");
    let mut client = RawClient::connected(setup.addr(), &device, ProtocolVersion::V311).await;
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
    // 30 updates in one write: the emulator reads them all before the shadow
    // service has answered the first ones.
    const BURST: u16 = 30;
    let mut bytes = BytesMut::new();
    for i in 0..BURST {
        let request = json!({"state": {"reported": {"i": i}}, "clientToken": format!("b{i}")});
        publish(
            &format!("{prefix}/update"),
            QoS::AtLeastOnce,
            Some(i + 10),
            request.to_string(),
        )
        .encode(ProtocolVersion::V311, &mut bytes)
        .unwrap();
    }
    client.send_raw(&bytes).await.unwrap();
    let (mut acked, mut accepted, mut throttled) = (0, Vec::new(), Vec::new());
    while acked < BURST || accepted.len() + throttled.len() < usize::from(BURST) {
        match client.recv_skipping_pings().await {
            Some(Packet::PubAck(ack)) => {
                assert!(!ack.reason.is_error());
                acked += 1;
            }
            Some(Packet::Publish(reply)) => {
                if let Some(id) = reply.packet_id {
                    client.send(&support::puback(id)).await;
                }
                let body = json_of(&reply.payload);
                if reply.topic.ends_with("/accepted") {
                    accepted.push(body);
                } else {
                    assert_eq!(body["code"], json!(429), "{body}");
                    assert_eq!(body["timestamp"], json!(START), "{body}");
                    assert!(
                        body["clientToken"]
                            .as_str()
                            .is_some_and(|t| t.starts_with('b')),
                        "{body}"
                    );
                    throttled.push(body);
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(!throttled.is_empty(), "no request was refused with 429");
    assert!(accepted.len() >= 10, "only {} accepted", accepted.len());
    // The accepted ones were applied in order, one version each.
    let versions: Vec<u64> = accepted
        .iter()
        .map(|a| a["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, (1..=versions.len() as u64).collect::<Vec<_>>());
    // Once answered, requests are no longer in flight.
    let reason = client
        .publish_qos1(
            99,
            &format!("{prefix}/update"),
            r#"{"state":{"reported":{"after":1}},"clientToken":"after"}"#,
        )
        .await;
    assert!(!reason.is_error());
    let reply = client.recv_publish().await;
    assert_eq!(reply.topic, format!("{prefix}/update/accepted"));
    assert_eq!(json_of(&reply.payload)["clientToken"], json!("after"));
    client.disconnect().await;
}

#[tokio::test]
async fn documents_metadata_and_replies_are_timestamped_by_the_emulators_clock() {
    let (clock, hand) = manual_clock();
    let setup = Setup::start_with(|config| config.with_clock(clock)).await;
    let device = setup.device("timed");
    let mut client = RawClient::connected(setup.addr(), &device, ProtocolVersion::V311).await;
    let prefix = "$aws/things/timed/shadow";
    client
        .subscribe(
            1,
            &[
                &format!("{prefix}/update/+"),
                &format!("{prefix}/get/+"),
                &format!("{prefix}/delete/+"),
            ],
            QoS::AtLeastOnce,
        )
        .await;

    client
        .publish_qos1(
            2,
            &format!("{prefix}/update"),
            r#"{"state":{"reported":{"temp":20}}}"#,
        )
        .await;
    let accepted = client.recv_publish().await;
    assert_eq!(accepted.topic, format!("{prefix}/update/accepted"));
    let accepted = json_of(&accepted.payload);
    assert_eq!(accepted["timestamp"], json!(START));
    assert_eq!(
        accepted["metadata"]["reported"]["temp"]["timestamp"],
        json!(START)
    );
    let documents = client.recv_publish().await;
    assert_eq!(documents.topic, format!("{prefix}/update/documents"));
    let documents = json_of(&documents.payload);
    assert_eq!(documents["timestamp"], json!(START));
    assert_eq!(
        documents["current"]["metadata"]["reported"]["temp"]["timestamp"],
        json!(START)
    );

    hand.advance(Duration::from_secs(90));
    client
        .publish_qos1(
            3,
            &format!("{prefix}/update"),
            r#"{"state":{"desired":{"temp":22}}}"#,
        )
        .await;
    let accepted = json_of(&client.recv_publish().await.payload);
    assert_eq!(accepted["timestamp"], json!(START + 90));
    assert_eq!(
        accepted["metadata"]["desired"]["temp"]["timestamp"],
        json!(START + 90)
    );
    let delta = client.recv_publish().await;
    assert_eq!(delta.topic, format!("{prefix}/update/delta"));
    let delta = json_of(&delta.payload);
    assert_eq!(delta["timestamp"], json!(START + 90));
    assert_eq!(delta["metadata"]["temp"]["timestamp"], json!(START + 90));
    let documents = json_of(&client.recv_publish().await.payload);
    assert_eq!(documents["timestamp"], json!(START + 90));

    // A get reports when each value was written, and answers at the clock's time.
    hand.advance(Duration::from_secs(10));
    client
        .publish_qos1(4, &format!("{prefix}/get"), Bytes::new())
        .await;
    let got = client.recv_publish().await;
    assert_eq!(got.topic, format!("{prefix}/get/accepted"));
    let got = json_of(&got.payload);
    assert_eq!(got["timestamp"], json!(START + 100));
    assert_eq!(got["version"], json!(2));
    assert_eq!(
        got["metadata"]["reported"]["temp"]["timestamp"],
        json!(START)
    );
    assert_eq!(
        got["metadata"]["desired"]["temp"]["timestamp"],
        json!(START + 90)
    );
    // The cloud-side API reads the same clock.
    let document = setup.emulator.shadows().get("timed", None).await.unwrap();
    assert_eq!(
        serde_json::to_value(&document).unwrap()["timestamp"],
        json!(START + 100)
    );

    // Rejections and deletions too.
    client
        .publish_qos1(5, &format!("{prefix}/update"), "{}")
        .await;
    let rejected = client.recv_publish().await;
    assert_eq!(rejected.topic, format!("{prefix}/update/rejected"));
    assert_eq!(json_of(&rejected.payload)["timestamp"], json!(START + 100));
    hand.advance(Duration::from_secs(5));
    client
        .publish_qos1(6, &format!("{prefix}/delete"), Bytes::new())
        .await;
    let deleted = client.recv_publish().await;
    assert_eq!(deleted.topic, format!("{prefix}/delete/accepted"));
    assert_eq!(json_of(&deleted.payload)["timestamp"], json!(START + 105));
    client.disconnect().await;
}

#[tokio::test]
async fn a_device_cannot_use_another_things_shadow() {
    let setup = Setup::start().await;
    // The default thing policy confines a device to its own topics.
    let device = setup.device_with("owner", ThingPolicy::default());
    setup.device_with("other", ThingPolicy::default());
    let mut client = RawClient::connected(setup.addr(), &device, ProtocolVersion::V311).await;
    client
        .send(&publish(
            "$aws/things/other/shadow/update",
            QoS::AtLeastOnce,
            Some(1),
            r#"{"state":{"desired":{"hijacked":true}}}"#,
        ))
        .await;
    // MQTT 3.1.1: an unauthorized publish closes the connection.
    let packets = client.until_closed().await;
    assert!(
        packets.iter().all(|p| !matches!(p, Packet::PubAck(_))),
        "{packets:?}"
    );
    let err = setup
        .emulator
        .shadows()
        .get("other", None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ShadowApiError::Rejected(ShadowError::NotFound { .. })),
        "{err}"
    );
}

#[tokio::test]
async fn a_cloud_side_desired_change_reaches_the_device_as_a_delta() {
    let setup = Setup::start().await;
    let device = setup.device("lamp");
    let mut client = RawClient::connected(setup.addr(), &device, ProtocolVersion::V5).await;
    client
        .subscribe(
            1,
            &["$aws/things/lamp/shadow/update/delta"],
            QoS::AtLeastOnce,
        )
        .await;
    let shadows = setup.emulator.shadows();
    shadows
        .update("lamp", None, br#"{"state":{"reported":{"on":false}}}"#)
        .await
        .unwrap();
    let accepted = shadows
        .update(
            "lamp",
            None,
            br#"{"state":{"desired":{"on":true}},"clientToken":"cloud"}"#,
        )
        .await
        .unwrap();
    assert_eq!(accepted.version, 2);
    let delta = client.recv_publish().await;
    assert_eq!(delta.topic, "$aws/things/lamp/shadow/update/delta");
    let delta = json_of(&delta.payload);
    assert_eq!(delta["state"], json!({"on": true}));
    assert_eq!(
        (delta["version"].clone(), delta["clientToken"].clone()),
        (json!(2), json!("cloud"))
    );
    // Errors are returned to the caller.
    let err = shadows.update("lamp", None, b"{}").await.unwrap_err();
    assert!(
        matches!(err, ShadowApiError::Rejected(ShadowError::MissingState)),
        "{err}"
    );
    let err = shadows.get("lamp", Some("missing")).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the shadow service refused the request: 404 No shadow exists with name: 'missing'"
    );
    let err = shadows.get("no/such", None).await.unwrap_err();
    assert!(matches!(err, ShadowApiError::InvalidName(_)), "{err}");
    let deleted = shadows.delete("lamp", None).await.unwrap();
    assert_eq!(deleted.version, 2);
    client.disconnect().await;
}

#[tokio::test]
async fn shadows_survive_a_restart_with_their_versions() {
    let setup = Setup::start().await;
    let device = setup.device("keeper");
    let prefix = "$aws/things/keeper/shadow";
    {
        let mut client = RawClient::connected(setup.addr(), &device, ProtocolVersion::V311).await;
        client
            .subscribe(1, &[&format!("{prefix}/update/accepted")], QoS::AtLeastOnce)
            .await;
        for (id, body) in [
            (
                2,
                r#"{"state":{"desired":{"mode":"eco"},"reported":{"mode":"on"}}}"#,
            ),
            (3, r#"{"state":{"reported":{"fw":"2.0","list":[1,2]}}}"#),
        ] {
            client
                .publish_qos1(id, &format!("{prefix}/update"), body)
                .await;
            client.recv_publish().await;
        }
        client.disconnect().await;
    }
    let shadows = setup.emulator.shadows();
    let before = shadows.get("keeper", None).await.unwrap();
    // A named shadow, deleted: its version must carry over too.
    shadows
        .update("keeper", Some("gone"), br#"{"state":{"reported":{"x":1}}}"#)
        .await
        .unwrap();
    shadows
        .update("keeper", Some("gone"), br#"{"state":{"reported":{"x":2}}}"#)
        .await
        .unwrap();
    shadows.delete("keeper", Some("gone")).await.unwrap();

    let setup = setup.restart().await;
    let mut client = RawClient::connected(setup.addr(), &device, ProtocolVersion::V311).await;
    client
        .subscribe(1, &[&format!("{prefix}/get/+")], QoS::AtLeastOnce)
        .await;
    client
        .publish_qos1(2, &format!("{prefix}/get"), r#"{"clientToken":"again"}"#)
        .await;
    let reply = client.recv_publish().await;
    assert_eq!(reply.topic, format!("{prefix}/get/accepted"));
    let mut after = json_of(&reply.payload);
    assert_eq!(after["clientToken"], json!("again"));
    assert_eq!(after["version"], json!(2));
    let mut before = serde_json::to_value(&before).unwrap();
    for doc in [&mut before, &mut after] {
        let doc = doc.as_object_mut().unwrap();
        doc.remove("timestamp");
        doc.remove("clientToken");
    }
    assert_eq!(after, before);
    let shadows = setup.emulator.shadows();
    let err = shadows.get("keeper", Some("gone")).await.unwrap_err();
    assert!(
        matches!(err, ShadowApiError::Rejected(ShadowError::NotFound { .. })),
        "{err}"
    );
    let recreated = shadows
        .update("keeper", Some("gone"), br#"{"state":{"reported":{"x":3}}}"#)
        .await
        .unwrap();
    assert_eq!(recreated.version, 3);
    client.disconnect().await;
}
