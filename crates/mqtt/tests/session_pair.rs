//! A client session and a server session talking to each other through byte
//! buffers, with a fake clock.

mod session_support;

use iotcore_mqtt::client::{self, ConnectionState};
use iotcore_mqtt::packet::Publish;
use iotcore_mqtt::server::{self, ServerConfig};
use iotcore_mqtt::{Packet, Properties, ProtocolVersion, QoS, ReasonCode};
use session_support::*;

fn pair(version: ProtocolVersion) -> Pair {
    Pair::new(client_config(version), ServerConfig::aws())
}

fn published(events: &[server::Event]) -> Vec<(String, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            server::Event::Publish(p) => Some((p.topic.to_string(), p.dup)),
            _ => None,
        })
        .collect()
}

fn client_publishes(wire: &[Packet]) -> Vec<(u16, bool)> {
    wire.iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => p.packet_id.map(|id| (id, p.dup)),
            _ => None,
        })
        .collect()
}

#[test]
fn connect_and_qos1_publish_roundtrip() {
    for version in VERSIONS {
        let mut pair = pair(version);
        pair.connect();
        assert!(pair.client.is_connected(), "{version:?}");
        let now = pair.clock.now();
        let id = pair
            .client
            .publish(publish("dt/thing-1/temp", QoS::AtLeastOnce, b"21.5"), now)
            .unwrap()
            .unwrap();
        pair.drive();
        assert_eq!(
            published(&pair.server_events),
            vec![("dt/thing-1/temp".into(), false)]
        );
        let acked = pair.take_client_events().into_iter().any(|e| {
            matches!(e, client::Event::PublishAcked { packet_id, reason, .. } if packet_id == id && reason == ReasonCode::SUCCESS)
        });
        assert!(acked, "{version:?}");
        assert_eq!(pair.client.pending_publishes().len(), 0);
    }
}

#[test]
fn subscription_and_delivery_from_the_broker_are_acknowledged() {
    for version in VERSIONS {
        let mut pair = pair(version);
        pair.connect();
        let now = pair.clock.now();
        let sub = pair
            .client
            .subscribe(
                vec![subscription("cmd/#", QoS::AtLeastOnce)],
                Properties::default(),
                now,
            )
            .unwrap();
        pair.drive();
        assert!(
            pair.take_client_events()
                .contains(&client::Event::Subscribed {
                    packet_id: sub,
                    reasons: vec![ReasonCode::GRANTED_QOS_1],
                    properties: Default::default()
                })
        );
        let delivery = pair
            .server
            .send_publish(publish("cmd/reboot", QoS::AtLeastOnce, b"now"))
            .unwrap();
        pair.drive();
        let messages: Vec<Publish> = pair
            .take_client_events()
            .into_iter()
            .filter_map(|e| match e {
                client::Event::Message(p) => Some(p),
                _ => None,
            })
            .collect();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].topic, "cmd/reboot");
        assert!(pair.server_events.contains(&server::Event::Delivered {
            packet_id: delivery,
            reason: ReasonCode::SUCCESS
        }));
        assert_eq!(pair.server.in_flight(), 0);
    }
}

#[test]
fn unacked_publishes_are_resent_with_dup_after_reconnect_even_without_session() {
    for version in VERSIONS {
        let mut pair = pair(version);
        pair.connect();
        // The broker receives the publishes but its PUBACKs are lost with the link.
        pair.server_to_client = false;
        let now = pair.clock.now();
        for topic in ["a", "b"] {
            pair.client
                .publish(publish(topic, QoS::AtLeastOnce, b"x"), now)
                .unwrap();
        }
        pair.drive();
        pair.break_connection();
        pair.server_to_client = true;
        pair.session_present = false;
        pair.client_wire.clear();
        pair.take_server_events();
        pair.connect();
        assert_eq!(
            client_publishes(&pair.client_wire),
            vec![(1, true), (2, true)],
            "{version:?}"
        );
        assert_eq!(
            published(&pair.server_events),
            vec![("a".into(), true), ("b".into(), true)]
        );
        assert_eq!(
            pair.client.pending_publishes().len(),
            0,
            "acknowledged on the new connection"
        );
    }
}

#[test]
fn subscriptions_are_restored_when_broker_forgot_session() {
    for version in VERSIONS {
        let mut pair = pair(version);
        pair.connect();
        let now = pair.clock.now();
        pair.client
            .subscribe(
                vec![
                    subscription("cmd/#", QoS::AtLeastOnce),
                    subscription("cfg", QoS::AtMostOnce),
                ],
                Properties::default(),
                now,
            )
            .unwrap();
        pair.drive();
        pair.break_connection();
        pair.take_server_events();
        pair.take_client_events();
        pair.session_present = false;
        pair.connect();
        let resubscribed: Vec<_> = pair
            .server_events
            .iter()
            .filter_map(|e| match e {
                server::Event::Subscribe(s) => Some(
                    s.subscriptions
                        .iter()
                        .map(|s| s.filter.clone())
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            })
            .collect();
        assert_eq!(
            resubscribed,
            vec![vec!["cfg".to_owned(), "cmd/#".to_owned()]],
            "{version:?}"
        );
        let events = pair.take_client_events();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, client::Event::Resubscribing { .. }))
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e, client::Event::Resubscribed { .. }))
        );
        assert_eq!(pair.client.subscriptions().count(), 2);
    }
}

#[test]
fn half_open_link_is_detected_by_both_sides_within_one_and_a_half_keep_alives() {
    for version in VERSIONS {
        let mut pair = pair(version);
        pair.connect();
        let silent_since = pair.clock.now();
        pair.client_to_server = false;
        pair.server_to_client = false;
        pair.run_timers_until(silent_since + secs(200));
        let client_events = pair.take_client_events();
        assert!(
            client_events.contains(&client::Event::KeepAliveTimeout),
            "{version:?}"
        );
        assert_eq!(pair.client.state(), ConnectionState::Disconnected);
        assert!(
            pair.server_events
                .contains(&server::Event::KeepAliveTimeout)
        );
        assert!(pair.server.is_closed());
    }
}

#[test]
fn client_detects_a_dead_link_at_exactly_one_and_a_half_keep_alives() {
    let mut pair = pair(ProtocolVersion::V311);
    pair.connect();
    let silent_since = pair.clock.now();
    pair.server_to_client = false;
    pair.run_timers_until(silent_since + secs(90) - std::time::Duration::from_millis(1));
    assert!(pair.client.is_connected(), "still within 1.5 × keep-alive");
    pair.run_timers_until(silent_since + secs(90));
    assert!(
        pair.client_events
            .contains(&client::Event::KeepAliveTimeout)
    );
}

#[test]
fn idle_connection_stays_up_for_hours_with_pings() {
    for version in VERSIONS {
        let mut pair = pair(version);
        pair.connect();
        pair.client_wire.clear();
        let start = pair.clock.now();
        pair.run_timers_until(start + secs(4 * 3600));
        assert!(pair.client.is_connected(), "{version:?}");
        assert!(!pair.server.is_closed());
        let pings = pair
            .client_wire
            .iter()
            .filter(|p| **p == Packet::PingReq)
            .count();
        assert_eq!(pings, 4 * 60, "one PINGREQ per 60 s keep-alive");
        assert!(
            !pair
                .client_events
                .contains(&client::Event::KeepAliveTimeout)
        );
    }
}

#[test]
fn keep_alive_below_aws_minimum_is_raised_and_the_mqtt5_client_follows() {
    let mut config = client_config(ProtocolVersion::V5);
    config.keep_alive = 5;
    let mut pair = Pair::new(config, ServerConfig::aws());
    pair.connect();
    assert_eq!(pair.server.keep_alive(), Some(30));
    assert_eq!(pair.client.keep_alive(), secs(30));
    pair.client_wire.clear();
    let start = pair.clock.now();
    pair.run_timers_until(start + secs(300));
    let pings = pair
        .client_wire
        .iter()
        .filter(|p| **p == Packet::PingReq)
        .count();
    assert_eq!(pings, 10);
    assert!(!pair.server.is_closed());
}

#[test]
fn offline_publishes_and_subscriptions_flow_after_the_first_connect() {
    for version in VERSIONS {
        let mut pair = pair(version);
        let now = pair.clock.now();
        pair.client
            .subscribe(
                vec![subscription("cmd/#", QoS::AtLeastOnce)],
                Properties::default(),
                now,
            )
            .unwrap();
        for i in 0..3 {
            pair.client
                .publish(publish(&format!("dt/{i}"), QoS::AtLeastOnce, b"x"), now)
                .unwrap();
        }
        pair.connect();
        let kinds: Vec<_> = pair
            .server_events
            .iter()
            .map(|e| match e {
                server::Event::Connect(_) => "connect".to_owned(),
                server::Event::Subscribe(_) => "subscribe".to_owned(),
                server::Event::Publish(p) => p.topic.to_string(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            vec!["connect", "subscribe", "dt/0", "dt/1", "dt/2"],
            "{version:?}"
        );
        assert_eq!(pair.client.pending_publishes().len(), 0);
        assert_eq!(pair.client.pending_requests(), 0);
    }
}
