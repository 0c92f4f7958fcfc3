//! The client session against a server scripted with raw packets.

mod session_support;

use iotcore_mqtt::client::{ClientError, ConnectionState, Event, ProtocolError};
use iotcore_mqtt::packet::{Disconnect, Publish, SubAck, UnsubAck, Will};
use iotcore_mqtt::{Packet, Properties, ProtocolVersion, QoS, ReasonCode};
use session_support::*;

fn publishes(packets: &[Packet]) -> Vec<(u16, bool)> {
    packets
        .iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some((p.packet_id.unwrap_or(0), p.dup)),
            _ => None,
        })
        .collect()
}

fn suback(packet_id: u16, reasons: Vec<ReasonCode>) -> Packet {
    Packet::SubAck(SubAck {
        packet_id,
        reasons,
        properties: Default::default(),
    })
}

fn subscribed_filters(packets: &[Packet]) -> Vec<Vec<String>> {
    packets
        .iter()
        .filter_map(|p| match p {
            Packet::Subscribe(s) => {
                Some(s.subscriptions.iter().map(|s| s.filter.clone()).collect())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn connect_sends_the_configured_connect() {
    for version in VERSIONS {
        let mut config = client_config(version);
        config.clean_start = false;
        config.keep_alive = 45;
        config.username = Some("user?SDK=iotcore".into());
        config.session_expiry_interval = Some(3600);
        config.max_incoming_packet_size = 4096;
        let mut client = ScriptedClient::new(config);
        client.session.connect(client.clock.now()).unwrap();
        let sent = client.sent();
        let [Packet::Connect(connect)] = sent.as_slice() else {
            panic!("{sent:?}");
        };
        assert_eq!(connect.protocol, version);
        assert_eq!(connect.client_id, "thing-1");
        assert!(!connect.clean_start);
        assert_eq!(connect.keep_alive, 45);
        assert_eq!(connect.username.as_deref(), Some("user?SDK=iotcore"));
        if version == ProtocolVersion::V5 {
            assert_eq!(connect.properties.session_expiry_interval, Some(3600));
            assert_eq!(connect.properties.maximum_packet_size, Some(4096));
        }
        assert_eq!(client.session.state(), ConnectionState::Connecting);
    }
}

#[test]
fn set_login_sets_the_credentials_of_the_next_connect() {
    let logins = |packets: Vec<Packet>| -> Vec<(Option<String>, Option<bytes::Bytes>)> {
        packets
            .into_iter()
            .filter_map(|p| match p {
                Packet::Connect(c) => Some((c.username, c.password)),
                _ => None,
            })
            .collect()
    };
    let mut client = ScriptedClient::new(client_config(ProtocolVersion::V311));
    client
        .session
        .set_login(Some("first".into()), Some("p1".into()));
    client.session.connect(client.clock.now()).unwrap();
    assert_eq!(
        logins(client.sent()),
        [(Some("first".to_owned()), Some("p1".into()))]
    );
    client.session.connection_lost(client.clock.now());
    client.session.set_login(Some("second".into()), None);
    client.session.connect(client.clock.now()).unwrap();
    assert_eq!(logins(client.sent()), [(Some("second".to_owned()), None)]);
}

#[test]
fn connack_reports_connected_with_session_present_and_properties() {
    let mut client = ScriptedClient::new(client_config(ProtocolVersion::V5));
    let properties = Properties {
        receive_maximum: Some(100),
        ..Properties::default()
    };
    client.connect_with(connack_with(true, properties.clone()));
    assert_eq!(
        client.events(),
        vec![Event::Connected {
            session_present: true,
            properties: properties.into()
        }]
    );
    assert!(client.session.is_connected());
}

#[test]
fn qos0_publish_while_disconnected_is_refused_with_not_connected() {
    for version in VERSIONS {
        let mut client = ScriptedClient::new(client_config(version));
        let result = client
            .session
            .publish(publish("t", QoS::AtMostOnce, b"x"), client.clock.now());
        assert_eq!(result, Err(ClientError::NotConnected));
        client.session.connect(client.clock.now()).unwrap();
        let result = client
            .session
            .publish(publish("t", QoS::AtMostOnce, b"x"), client.clock.now());
        assert_eq!(
            result,
            Err(ClientError::NotConnected),
            "still waiting for CONNACK"
        );
        client.receive(connack(false));
        client.sent();
        assert_eq!(client.publish("t", QoS::AtMostOnce), None);
        assert_eq!(publishes(&client.sent()), vec![(0, false)]);
    }
}

#[test]
fn qos2_is_refused_for_publish_subscribe_and_will() {
    let mut client = ScriptedClient::new(client_config(ProtocolVersion::V5));
    let now = client.clock.now();
    assert_eq!(
        client
            .session
            .publish(publish("t", QoS::ExactlyOnce, b"x"), now),
        Err(ClientError::QoS2NotSupported)
    );
    assert_eq!(
        client.session.subscribe(
            vec![subscription("t", QoS::ExactlyOnce)],
            Properties::default(),
            now
        ),
        Err(ClientError::QoS2NotSupported)
    );
    let mut config = client_config(ProtocolVersion::V5);
    config.will = Some(Box::new(Will {
        topic: "last/will".into(),
        payload: bytes::Bytes::new(),
        qos: QoS::ExactlyOnce,
        retain: false,
        properties: Default::default(),
    }));
    assert_eq!(
        iotcore_mqtt::client::ClientSession::new(config).err(),
        Some(ClientError::QoS2NotSupported)
    );
}

#[test]
fn invalid_topics_and_filters_are_refused() {
    let mut client = ScriptedClient::new(client_config(ProtocolVersion::V311));
    let now = client.clock.now();
    assert!(matches!(
        client
            .session
            .publish(publish("a/+", QoS::AtLeastOnce, b"x"), now),
        Err(ClientError::InvalidTopic(_))
    ));
    assert!(matches!(
        client.session.subscribe(
            vec![subscription("a/#/b", QoS::AtLeastOnce)],
            Properties::default(),
            now
        ),
        Err(ClientError::InvalidTopicFilter { .. })
    ));
    assert_eq!(
        client
            .session
            .subscribe(Vec::new(), Properties::default(), now),
        Err(ClientError::NoTopicFilters)
    );
    assert_eq!(
        client.session.pending_publishes().len(),
        0,
        "nothing was queued"
    );
}

#[test]
fn qos1_publish_while_offline_gets_an_id_at_once_and_is_sent_after_connack() {
    for version in VERSIONS {
        let mut client = ScriptedClient::new(client_config(version));
        assert_eq!(client.publish("t/1", QoS::AtLeastOnce), Some(1));
        assert_eq!(client.publish("t/2", QoS::AtLeastOnce), Some(2));
        assert!(client.sent().is_empty());
        let after_connack = client.connect(false);
        assert_eq!(
            publishes(&after_connack),
            vec![(1, false), (2, false)],
            "{version:?}"
        );
        client.receive(puback(1));
        let events = client.events();
        assert!(events.contains(&Event::PublishAcked {
            packet_id: 1,
            reason: ReasonCode::SUCCESS,
            properties: Default::default()
        }));
        assert_eq!(client.session.pending_publishes().len(), 1);
    }
}

#[test]
fn unacked_publishes_are_resent_with_dup_after_reconnect_even_without_session() {
    for version in VERSIONS {
        for session_present in [false, true] {
            let mut config = client_config(version);
            config.max_inflight = 2;
            let mut client = ScriptedClient::new(config);
            client.connect(false);
            client.publish("t/1", QoS::AtLeastOnce);
            client.publish("t/2", QoS::AtLeastOnce);
            client.publish("t/3", QoS::AtLeastOnce);
            assert_eq!(publishes(&client.sent()), vec![(1, false), (2, false)]);
            client.session.connection_lost(client.clock.now());
            client.publish("t/4", QoS::AtLeastOnce);
            let resent = client.connect(session_present);
            assert_eq!(
                publishes(&resent),
                vec![(1, true), (2, true)],
                "{version:?} session_present={session_present}: the two sent before come first, with DUP"
            );
            client.receive(puback(1));
            client.receive(puback(2));
            assert_eq!(publishes(&client.sent()), vec![(3, false), (4, false)]);
        }
    }
}

#[test]
fn unacked_publishes_are_resent_in_original_order_before_new_ones() {
    for version in VERSIONS {
        let mut client = ScriptedClient::new(client_config(version));
        client.connect(true);
        for i in 0..5 {
            client.publish(&format!("t/{i}"), QoS::AtLeastOnce);
        }
        client.sent();
        // Out-of-order acknowledgements leave a gap.
        client.receive(puback(2));
        client.receive(puback(4));
        client.session.connection_lost(client.clock.now());
        client.publish("t/new", QoS::AtLeastOnce);
        let resent = client.connect(true);
        assert_eq!(
            publishes(&resent),
            vec![(1, true), (3, true), (5, true), (6, false)],
            "{version:?}"
        );
    }
}

#[test]
fn inflight_window_holds_back_excess_publishes() {
    for version in VERSIONS {
        let mut config = client_config(version);
        config.max_inflight = 2;
        let mut client = ScriptedClient::new(config);
        client.connect(false);
        for _ in 0..5 {
            client.publish("t", QoS::AtLeastOnce);
        }
        assert_eq!(publishes(&client.sent()), vec![(1, false), (2, false)]);
        assert_eq!(client.session.in_flight(), 2);
        client.receive(puback(2));
        assert_eq!(publishes(&client.sent()), vec![(3, false)]);
        client.receive(puback(1));
        client.receive(puback(3));
        assert_eq!(publishes(&client.sent()), vec![(4, false), (5, false)]);
        assert_eq!(client.session.pending_publishes().len(), 2);
    }
}

#[test]
fn server_receive_maximum_caps_the_inflight_window() {
    let mut client = ScriptedClient::new(client_config(ProtocolVersion::V5));
    for _ in 0..3 {
        client.publish("t", QoS::AtLeastOnce);
    }
    let sent = client.connect_with(connack_with(
        false,
        Properties {
            receive_maximum: Some(1),
            ..Properties::default()
        },
    ));
    assert_eq!(publishes(&sent), vec![(1, false)]);
    client.receive(puback(1));
    assert_eq!(publishes(&client.sent()), vec![(2, false)]);
}

#[test]
fn qos0_publishes_are_not_held_by_the_window() {
    let mut config = client_config(ProtocolVersion::V311);
    config.max_inflight = 1;
    let mut client = ScriptedClient::new(config);
    client.connect(false);
    client.publish("t", QoS::AtLeastOnce);
    client.publish("t", QoS::AtLeastOnce);
    client.publish("t", QoS::AtMostOnce);
    assert_eq!(publishes(&client.sent()), vec![(1, false), (0, false)]);
}

#[test]
fn packet_ids_skip_ids_in_use() {
    let mut client = ScriptedClient::new(client_config(ProtocolVersion::V311));
    client.connect(false);
    for expected in 1..=u16::MAX {
        assert_eq!(client.publish("t", QoS::AtLeastOnce), Some(expected));
    }
    let now = client.clock.now();
    assert_eq!(
        client
            .session
            .publish(publish("t", QoS::AtLeastOnce, b"x"), now),
        Err(ClientError::PacketIdsExhausted)
    );
    assert_eq!(
        client.session.subscribe(
            vec![subscription("t", QoS::AtLeastOnce)],
            Properties::default(),
            now
        ),
        Err(ClientError::PacketIdsExhausted)
    );
    client.sent();
    client.receive(puback(7));
    client.receive(puback(3));
    // Allocation wraps past 65535 to 1 and skips the ids still in use.
    assert_eq!(client.publish("t", QoS::AtLeastOnce), Some(3));
    assert_eq!(client.publish("t", QoS::AtLeastOnce), Some(7));
    assert_eq!(
        client
            .session
            .publish(publish("t", QoS::AtLeastOnce, b"x"), now),
        Err(ClientError::PacketIdsExhausted)
    );
}

#[test]
fn subscriptions_are_restored_when_broker_forgot_session() {
    for version in VERSIONS {
        let mut client = ScriptedClient::new(client_config(version));
        client.connect(false);
        let now = client.clock.now();
        let id = client
            .session
            .subscribe(
                vec![
                    subscription("a/1", QoS::AtLeastOnce),
                    subscription("b/+", QoS::AtMostOnce),
                ],
                Properties::default(),
                now,
            )
            .unwrap();
        client.sent();
        client.receive(suback(
            id,
            vec![ReasonCode::GRANTED_QOS_1, ReasonCode::GRANTED_QOS_0],
        ));
        client.events();

        client.session.connection_lost(client.clock.now());
        let sent = client.connect(false);
        let [Packet::Subscribe(restore)] = sent.as_slice() else {
            panic!("{version:?}: {sent:?}");
        };
        let restored: Vec<_> = restore
            .subscriptions
            .iter()
            .map(|s| (s.filter.as_str(), s.options.qos))
            .collect();
        assert_eq!(
            restored,
            vec![("a/1", QoS::AtLeastOnce), ("b/+", QoS::AtMostOnce)]
        );
        let events = client.events();
        assert!(
            events.contains(&Event::Resubscribing {
                packet_id: restore.packet_id,
                filters: vec!["a/1".into(), "b/+".into()]
            }),
            "{events:?}"
        );
        client.receive(suback(
            restore.packet_id,
            vec![ReasonCode::GRANTED_QOS_1, ReasonCode::GRANTED_QOS_0],
        ));
        assert_eq!(
            client.events(),
            vec![Event::Resubscribed {
                packet_id: restore.packet_id,
                filters: vec!["a/1".into(), "b/+".into()],
                reasons: vec![ReasonCode::GRANTED_QOS_1, ReasonCode::GRANTED_QOS_0]
            }]
        );

        // A broker that kept the session gets no SUBSCRIBE.
        client.session.connection_lost(client.clock.now());
        assert!(client.connect(true).is_empty(), "{version:?}");
    }
}

#[test]
fn restoring_subscribes_carry_at_most_eight_filters_each() {
    let mut client = ScriptedClient::new(client_config(ProtocolVersion::V5));
    client.connect(false);
    let filters: Vec<_> = (0..10)
        .map(|i| subscription(&format!("f/{i:02}"), QoS::AtLeastOnce))
        .collect();
    let id = client
        .session
        .subscribe(filters, Properties::default(), client.clock.now())
        .unwrap();
    client.receive(suback(id, vec![ReasonCode::GRANTED_QOS_1; 10]));
    client.session.connection_lost(client.clock.now());
    let sent = client.connect(false);
    let sizes: Vec<_> = subscribed_filters(&sent).iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![8, 2]);
}

#[test]
fn refused_and_unsubscribed_filters_are_not_restored() {
    for version in VERSIONS {
        let mut client = ScriptedClient::new(client_config(version));
        client.connect(false);
        let now = client.clock.now();
        let id = client
            .session
            .subscribe(
                vec![
                    subscription("keep", QoS::AtLeastOnce),
                    subscription("refused", QoS::AtLeastOnce),
                    subscription("dropped", QoS::AtLeastOnce),
                ],
                Properties::default(),
                now,
            )
            .unwrap();
        client.receive(suback(
            id,
            vec![
                ReasonCode::GRANTED_QOS_1,
                ReasonCode::UNSPECIFIED_ERROR,
                ReasonCode::GRANTED_QOS_1,
            ],
        ));
        let unsub = client
            .session
            .unsubscribe(vec!["dropped".into()], Properties::default(), now)
            .unwrap();
        let reasons = if version == ProtocolVersion::V5 {
            vec![ReasonCode::SUCCESS]
        } else {
            Vec::new()
        };
        client.receive(Packet::UnsubAck(UnsubAck {
            packet_id: unsub,
            reasons: reasons.clone(),
            properties: Default::default(),
        }));
        assert!(client.events().contains(&Event::Unsubscribed {
            packet_id: unsub,
            reasons,
            properties: Default::default()
        }));
        let active: Vec<_> = client
            .session
            .subscriptions()
            .map(|(f, _)| f.to_owned())
            .collect();
        assert_eq!(active, vec!["keep".to_owned()]);
        client.session.connection_lost(client.clock.now());
        assert_eq!(
            subscribed_filters(&client.connect(false)),
            vec![vec!["keep".to_owned()]]
        );
    }
}

#[test]
fn requests_issued_offline_are_sent_after_connack_in_order() {
    for version in VERSIONS {
        let mut client = ScriptedClient::new(client_config(version));
        let now = client.clock.now();
        let sub = client
            .session
            .subscribe(
                vec![subscription("cmd/#", QoS::AtLeastOnce)],
                Properties::default(),
                now,
            )
            .unwrap();
        let publish_id = client.publish("req", QoS::AtLeastOnce).unwrap();
        let unsub = client
            .session
            .unsubscribe(vec!["old".into()], Properties::default(), now)
            .unwrap();
        let sent = client.connect(false);
        let order: Vec<_> = sent
            .iter()
            .map(|p| match p {
                Packet::Subscribe(s) => ("SUBSCRIBE", s.packet_id),
                Packet::Unsubscribe(u) => ("UNSUBSCRIBE", u.packet_id),
                Packet::Publish(p) => ("PUBLISH", p.packet_id.unwrap()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            order,
            vec![
                ("SUBSCRIBE", sub),
                ("UNSUBSCRIBE", unsub),
                ("PUBLISH", publish_id)
            ],
            "{version:?}"
        );
    }
}

#[test]
fn unanswered_subscribe_is_sent_again_after_reconnect() {
    for version in VERSIONS {
        let mut client = ScriptedClient::new(client_config(version));
        client.connect(false);
        let id = client
            .session
            .subscribe(
                vec![subscription("x", QoS::AtLeastOnce)],
                Properties::default(),
                client.clock.now(),
            )
            .unwrap();
        assert_eq!(
            subscribed_filters(&client.sent()),
            vec![vec!["x".to_owned()]]
        );
        client.session.connection_lost(client.clock.now());
        let sent = client.connect(true);
        assert!(
            matches!(sent.as_slice(), [Packet::Subscribe(s)] if s.packet_id == id),
            "{sent:?}"
        );
        assert_eq!(client.session.pending_requests(), 1);
    }
}

#[test]
fn inbound_qos1_message_is_acknowledged_and_reported() {
    for version in VERSIONS {
        let mut client = ScriptedClient::new(client_config(version));
        client.connect(false);
        client.events();
        let mut message = publish("cmd/1", QoS::AtLeastOnce, b"go");
        message.packet_id = Some(42);
        client.receive(Packet::Publish(message.clone()));
        let sent = client.sent();
        assert!(
            matches!(sent.as_slice(), [Packet::PubAck(ack)] if ack.packet_id == 42),
            "{sent:?}"
        );
        assert_eq!(client.events(), vec![Event::Message(message)]);
    }
}

#[test]
fn inbound_topic_aliases_are_resolved() {
    let mut config = client_config(ProtocolVersion::V5);
    config
        .connect_properties
        .get_or_insert_default()
        .topic_alias_maximum = Some(4);
    let mut client = ScriptedClient::new(config);
    client.connect(false);
    client.events();
    let mut first = publish("long/topic/name", QoS::AtMostOnce, b"1");
    first.properties.topic_alias = Some(2);
    let mut second = publish("", QoS::AtMostOnce, b"2");
    second.properties.topic_alias = Some(2);
    client.receive(Packet::Publish(first));
    client.receive(Packet::Publish(second));
    let topics: Vec<_> = client
        .events()
        .into_iter()
        .map(|e| match e {
            Event::Message(p) => (p.topic, p.properties.topic_alias),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        topics,
        vec![
            ("long/topic/name".into(), None),
            ("long/topic/name".into(), None)
        ]
    );
}

#[test]
fn unknown_topic_alias_is_a_protocol_error_with_disconnect_0x94() {
    let mut config = client_config(ProtocolVersion::V5);
    config
        .connect_properties
        .get_or_insert_default()
        .topic_alias_maximum = Some(4);
    let mut client = ScriptedClient::new(config);
    client.connect(false);
    let mut aliased = publish("", QoS::AtMostOnce, b"?");
    aliased.properties.topic_alias = Some(3);
    let bytes = encode(&Packet::Publish(aliased), ProtocolVersion::V5);
    let result = client.session.handle_input(&bytes, client.clock.now());
    assert_eq!(result, Err(ProtocolError::TopicAliasInvalid(3)));
    let sent = client.sent();
    assert!(
        matches!(sent.as_slice(), [Packet::Disconnect(d)] if d.reason == ReasonCode::TOPIC_ALIAS_INVALID),
        "{sent:?}"
    );
    assert_eq!(client.session.state(), ConnectionState::Disconnected);
}

#[test]
fn keep_alive_sends_pingreq_when_idle_and_pingresp_keeps_the_connection() {
    for version in VERSIONS {
        let mut client = ScriptedClient::new(client_config(version));
        client.connect(false);
        let start = client.clock.now();
        assert_eq!(client.session.poll_timeout(), Some(start + secs(60)));
        for round in 1..=5u32 {
            client.fire_timer();
            assert_eq!(
                client.sent(),
                vec![Packet::PingReq],
                "{version:?} round {round}"
            );
            client.clock.advance(secs(1));
            client.receive(Packet::PingResp);
        }
        assert!(client.session.is_connected());
        assert!(
            client
                .events()
                .iter()
                .all(|e| !matches!(e, Event::KeepAliveTimeout))
        );
    }
}

#[test]
fn half_open_link_is_detected_within_one_and_a_half_keep_alives() {
    for version in VERSIONS {
        let mut client = ScriptedClient::new(client_config(version));
        client.connect(false);
        client.events();
        let silent_since = client.clock.now();
        assert_eq!(client.fire_timer(), Some(silent_since + secs(60)));
        assert_eq!(client.sent(), vec![Packet::PingReq]);
        let timed_out_at = client.fire_timer().unwrap();
        assert_eq!(timed_out_at, silent_since + secs(90), "{version:?}");
        assert_eq!(client.events(), vec![Event::KeepAliveTimeout]);
        assert_eq!(client.session.state(), ConnectionState::Disconnected);
        assert_eq!(client.session.poll_timeout(), None);
    }
}

#[test]
fn any_packet_after_pingreq_counts_as_a_sign_of_life() {
    let mut client = ScriptedClient::new(client_config(ProtocolVersion::V311));
    client.connect(false);
    client.fire_timer();
    client.sent();
    client.clock.advance(secs(10));
    client.receive(Packet::Publish(publish("t", QoS::AtMostOnce, b"x")));
    let next = client.session.poll_timeout().unwrap();
    client.clock.advance_to(next);
    client.session.handle_timeout(next);
    assert!(client.session.is_connected());
    assert_eq!(
        client.sent(),
        vec![Packet::PingReq],
        "a new ping, not a timeout"
    );
}

#[test]
fn pingreq_is_sent_while_publishing_qos0_to_a_silent_server() {
    let mut client = ScriptedClient::new(client_config(ProtocolVersion::V311));
    client.connect(false);
    let start = client.clock.now();
    for _ in 0..6 {
        client.clock.advance(secs(10));
        client.publish("telemetry", QoS::AtMostOnce);
    }
    client.sent();
    assert_eq!(client.session.poll_timeout(), Some(start + secs(60)));
    client.fire_timer();
    assert_eq!(client.sent(), vec![Packet::PingReq]);
    assert_eq!(client.fire_timer(), Some(start + secs(90)));
    assert_eq!(client.events().last(), Some(&Event::KeepAliveTimeout));
}

#[test]
fn server_keep_alive_replaces_the_configured_keep_alive() {
    let mut client = ScriptedClient::new(client_config(ProtocolVersion::V5));
    client.connect_with(connack_with(
        false,
        Properties {
            server_keep_alive: Some(30),
            ..Properties::default()
        },
    ));
    assert_eq!(client.session.keep_alive(), secs(30));
    assert_eq!(
        client.session.poll_timeout(),
        Some(client.clock.now() + secs(30))
    );
}

#[test]
fn missing_connack_times_out_after_one_keep_alive() {
    let mut client = ScriptedClient::new(client_config(ProtocolVersion::V311));
    client.session.connect(client.clock.now()).unwrap();
    assert_eq!(client.fire_timer(), Some(client.clock.now()));
    assert_eq!(client.events(), vec![Event::KeepAliveTimeout]);
    assert_eq!(client.session.state(), ConnectionState::Disconnected);
}

#[test]
fn keep_alive_zero_runs_no_timer() {
    let mut config = client_config(ProtocolVersion::V311);
    config.keep_alive = 0;
    let mut client = ScriptedClient::new(config);
    client.connect(false);
    assert_eq!(client.session.poll_timeout(), None);
}

#[test]
fn refused_connection_is_reported_and_keeps_pending_publishes() {
    for version in VERSIONS {
        let mut client = ScriptedClient::new(client_config(version));
        client.publish("t", QoS::AtLeastOnce);
        client.session.connect(client.clock.now()).unwrap();
        client.sent();
        client.receive(Packet::ConnAck(iotcore_mqtt::packet::ConnAck {
            session_present: false,
            reason: ReasonCode::NOT_AUTHORIZED,
            properties: Default::default(),
        }));
        let events = client.events();
        assert!(
            matches!(events.as_slice(), [Event::ConnectionRefused { reason, .. }] if *reason == ReasonCode::NOT_AUTHORIZED),
            "{version:?} {events:?}"
        );
        assert_eq!(client.session.state(), ConnectionState::Disconnected);
        assert_eq!(client.session.pending_publishes().len(), 1);
        assert!(client.sent().is_empty());
    }
}

#[test]
fn server_disconnect_is_reported_and_ends_the_connection() {
    let mut client = ScriptedClient::new(client_config(ProtocolVersion::V5));
    client.connect(false);
    client.events();
    client.receive(Packet::Disconnect(Disconnect {
        reason: ReasonCode::SESSION_TAKEN_OVER,
        properties: Default::default(),
    }));
    assert_eq!(
        client.events(),
        vec![Event::ServerDisconnect {
            reason: ReasonCode::SESSION_TAKEN_OVER,
            properties: Default::default()
        }]
    );
    assert_eq!(client.session.state(), ConnectionState::Disconnected);
}

#[test]
fn malformed_input_is_a_protocol_error_with_disconnect_on_mqtt5_only() {
    for version in VERSIONS {
        let mut client = ScriptedClient::new(client_config(version));
        client.connect(false);
        // Packet type 0 is reserved.
        let result = client
            .session
            .handle_input(&[0x00, 0x00], client.clock.now());
        assert!(
            matches!(result, Err(ProtocolError::Decode(_))),
            "{version:?} {result:?}"
        );
        let sent = client.sent();
        match version {
            ProtocolVersion::V5 => assert!(
                matches!(sent.as_slice(), [Packet::Disconnect(_)]),
                "{sent:?}"
            ),
            ProtocolVersion::V311 => assert!(sent.is_empty(), "{sent:?}"),
        }
        assert_eq!(client.session.state(), ConnectionState::Disconnected);
        // Further input on the dead transport is ignored.
        assert_eq!(
            client.session.handle_input(&[0xff], client.clock.now()),
            Ok(())
        );
    }
}

#[test]
fn packets_split_across_reads_are_reassembled() {
    let mut client = ScriptedClient::new(client_config(ProtocolVersion::V5));
    client.session.connect(client.clock.now()).unwrap();
    client.sent();
    let mut bytes = encode(&connack(false), ProtocolVersion::V5).to_vec();
    let mut message = publish("a/b", QoS::AtLeastOnce, b"hello");
    message.packet_id = Some(9);
    bytes.extend_from_slice(&encode(
        &Packet::Publish(message.clone()),
        ProtocolVersion::V5,
    ));
    for byte in bytes {
        client
            .session
            .handle_input(&[byte], client.clock.now())
            .unwrap();
    }
    let events = client.events();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1], Event::Message(message));
}

#[test]
fn puback_for_an_unknown_packet_id_is_a_protocol_error() {
    let mut client = ScriptedClient::new(client_config(ProtocolVersion::V311));
    client.connect(false);
    let bytes = encode(&puback(77), ProtocolVersion::V311);
    assert_eq!(
        client.session.handle_input(&bytes, client.clock.now()),
        Err(ProtocolError::UnknownPacketId {
            packet_type: iotcore_mqtt::packet::PacketType::PubAck,
            packet_id: 77
        })
    );
}

#[test]
fn suback_with_the_wrong_number_of_reasons_is_a_protocol_error() {
    let mut client = ScriptedClient::new(client_config(ProtocolVersion::V5));
    client.connect(false);
    let id = client
        .session
        .subscribe(
            vec![subscription("a", QoS::AtLeastOnce)],
            Properties::default(),
            client.clock.now(),
        )
        .unwrap();
    let bytes = encode(
        &suback(
            id,
            vec![ReasonCode::GRANTED_QOS_1, ReasonCode::GRANTED_QOS_1],
        ),
        ProtocolVersion::V5,
    );
    let result = client.session.handle_input(&bytes, client.clock.now());
    assert!(
        matches!(
            result,
            Err(ProtocolError::ReasonCountMismatch {
                expected: 1,
                got: 2,
                ..
            })
        ),
        "{result:?}"
    );
    assert_eq!(
        client.session.pending_requests(),
        1,
        "the request survives for the next connection"
    );
}

#[test]
fn packets_other_than_connack_before_connack_are_a_protocol_error() {
    let mut client = ScriptedClient::new(client_config(ProtocolVersion::V311));
    client.session.connect(client.clock.now()).unwrap();
    let bytes = encode(&Packet::PingResp, ProtocolVersion::V311);
    assert!(matches!(
        client.session.handle_input(&bytes, client.clock.now()),
        Err(ProtocolError::UnexpectedPacket { .. })
    ));
}

#[test]
fn disconnect_queues_disconnect_and_stops_sending() {
    for version in VERSIONS {
        let mut client = ScriptedClient::new(client_config(version));
        client.connect(false);
        client.session.disconnect(ReasonCode::SUCCESS);
        assert!(matches!(client.sent().as_slice(), [Packet::Disconnect(_)]));
        assert_eq!(client.session.state(), ConnectionState::Disconnected);
        assert_eq!(client.session.poll_timeout(), None);
        let now = client.clock.now();
        assert_eq!(
            client
                .session
                .publish(publish("t", QoS::AtMostOnce, b"x"), now),
            Err(ClientError::NotConnected)
        );
        assert_eq!(
            client.publish("t", QoS::AtLeastOnce),
            Some(1),
            "kept for a later connection"
        );
        assert!(client.sent().is_empty());
    }
}

#[test]
fn publish_larger_than_the_server_maximum_packet_size_is_refused_or_dropped() {
    let mut client = ScriptedClient::new(client_config(ProtocolVersion::V5));
    let big: &'static [u8] = &[0u8; 300];
    let queued = client
        .session
        .publish(publish("t", QoS::AtLeastOnce, big), client.clock.now())
        .unwrap()
        .unwrap();
    client.publish("t", QoS::AtLeastOnce);
    let limits = Properties {
        maximum_packet_size: Some(100),
        ..Properties::default()
    };
    let sent = client.connect_with(connack_with(false, limits));
    assert_eq!(publishes(&sent), vec![(2, false)]);
    let events = client.events();
    assert!(
        events.iter().any(|e| matches!(e, Event::PublishDropped { packet_id, max: 100, .. } if *packet_id == queued)),
        "{events:?}"
    );
    let now = client.clock.now();
    assert!(matches!(
        client
            .session
            .publish(publish("t", QoS::AtLeastOnce, big), now),
        Err(ClientError::PacketTooLarge { max: 100, .. })
    ));
    assert!(matches!(
        client
            .session
            .publish(publish("t", QoS::AtMostOnce, big), now),
        Err(ClientError::PacketTooLarge { max: 100, .. })
    ));
}

#[test]
fn assigned_client_id_is_used_on_the_next_connect() {
    let mut config = client_config(ProtocolVersion::V5);
    config.client_id = String::new();
    let mut client = ScriptedClient::new(config);
    client.connect_with(connack_with(
        false,
        Properties {
            assigned_client_identifier: Some("gen-123".into()),
            ..Properties::default()
        },
    ));
    assert_eq!(client.session.assigned_client_id(), Some("gen-123"));
    client.session.connection_lost(client.clock.now());
    client.session.connect(client.clock.now()).unwrap();
    let sent = client.sent();
    assert!(
        matches!(sent.as_slice(), [Packet::Connect(c)] if c.client_id == "gen-123"),
        "{sent:?}"
    );
}

#[test]
fn an_assigned_client_id_is_not_sent_back_when_reuse_is_off_and_a_new_one_replaces_it() {
    let mut config = client_config(ProtocolVersion::V5);
    config.client_id = String::new();
    config.reuse_assigned_client_id = false;
    let mut client = ScriptedClient::new(config);
    let assigned = |id: &str| {
        connack_with(
            false,
            Properties {
                assigned_client_identifier: Some(id.into()),
                ..Properties::default()
            },
        )
    };
    client.connect_with(assigned("$GEN/1"));
    assert_eq!(client.session.assigned_client_id(), Some("$GEN/1"));
    client.session.connection_lost(client.clock.now());
    client.session.connect(client.clock.now()).unwrap();
    let sent = client.sent();
    assert!(
        matches!(sent.as_slice(), [Packet::Connect(c)] if c.client_id.is_empty()),
        "{sent:?}"
    );
    client.receive(assigned("$GEN/2"));
    assert_eq!(client.session.assigned_client_id(), Some("$GEN/2"));
}

#[test]
fn connect_on_a_new_transport_drops_bytes_queued_for_the_old_one() {
    let mut client = ScriptedClient::new(client_config(ProtocolVersion::V311));
    client.connect(false);
    client.publish("t", QoS::AtMostOnce);
    client.session.connection_lost(client.clock.now());
    client.session.connect(client.clock.now()).unwrap();
    let sent = client.sent();
    assert!(matches!(sent.as_slice(), [Packet::Connect(_)]), "{sent:?}");
}

#[test]
fn inbound_qos2_publish_is_a_protocol_error() {
    let mut client = ScriptedClient::new(client_config(ProtocolVersion::V5));
    client.connect(false);
    let mut message: Publish = publish("t", QoS::ExactlyOnce, b"x");
    message.packet_id = Some(1);
    let bytes = encode(&Packet::Publish(message), ProtocolVersion::V5);
    assert_eq!(
        client.session.handle_input(&bytes, client.clock.now()),
        Err(ProtocolError::QoSNotSupported(QoS::ExactlyOnce))
    );
    assert!(matches!(
        client.sent().as_slice(),
        [Packet::Disconnect(d)] if d.reason == ReasonCode::QOS_NOT_SUPPORTED
    ));
}

#[test]
fn suback_answering_an_unsubscribe_is_a_protocol_error() {
    let mut client = ScriptedClient::new(client_config(ProtocolVersion::V311));
    client.connect(false);
    let unsub = client
        .session
        .unsubscribe(vec!["a".into()], Properties::default(), client.clock.now())
        .unwrap();
    let bytes = encode(
        &suback(unsub, vec![ReasonCode::GRANTED_QOS_0]),
        ProtocolVersion::V311,
    );
    assert!(matches!(
        client.session.handle_input(&bytes, client.clock.now()),
        Err(ProtocolError::UnknownPacketId { .. })
    ));
}

#[test]
fn with_retries_on_mqtt_311_an_unacknowledged_publish_and_subscribe_are_sent_again_in_the_connection()
 {
    let mut config = client_config(ProtocolVersion::V311);
    config.retry_unacknowledged = Some(secs(5));
    let mut client = ScriptedClient::new(config);
    client.connect(false);
    let id = client.publish("t/1", QoS::AtLeastOnce).unwrap();
    let sub = client
        .session
        .subscribe(
            vec![subscription("c/#", QoS::AtLeastOnce)],
            Properties::default(),
            client.clock.now(),
        )
        .unwrap();
    assert_eq!(publishes(&client.sent()), [(id, false)]);

    // Nothing acknowledged for 5 s: both go again, same ids, the PUBLISH with DUP.
    let at = client.fire_timer().unwrap();
    assert_eq!(at, client.clock.now());
    let again = client.sent();
    assert_eq!(publishes(&again), [(id, true)]);
    assert!(
        again
            .iter()
            .any(|p| matches!(p, Packet::Subscribe(s) if s.packet_id == sub)),
        "{again:?}"
    );

    // Acknowledged: nothing more is sent again, the keep-alive is the only timer left.
    client.receive(puback(id));
    client.receive(suback(sub, vec![ReasonCode::GRANTED_QOS_1]));
    client.fire_timer();
    let after = client.sent();
    assert!(
        after.iter().all(|p| matches!(p, Packet::PingReq)),
        "only a PINGREQ: {after:?}"
    );
}

#[test]
fn with_retries_a_subscribe_alone_is_sent_again_too() {
    let mut config = client_config(ProtocolVersion::V311);
    config.retry_unacknowledged = Some(secs(2));
    let mut client = ScriptedClient::new(config);
    client.connect(false);
    let sub = client
        .session
        .subscribe(
            vec![subscription("c/#", QoS::AtLeastOnce)],
            Properties::default(),
            client.clock.now(),
        )
        .unwrap();
    assert_eq!(subscribed_filters(&client.sent()), [["c/#"]]);
    client.fire_timer();
    let again = client.sent();
    assert!(
        matches!(again.as_slice(), [Packet::Subscribe(s)] if s.packet_id == sub),
        "{again:?}"
    );
}

#[test]
fn retries_are_ignored_on_mqtt_5_and_off_by_default() {
    for (version, retry) in [
        (ProtocolVersion::V5, Some(secs(5))),
        (ProtocolVersion::V311, None),
    ] {
        let mut config = client_config(version);
        config.retry_unacknowledged = retry;
        let mut client = ScriptedClient::new(config);
        client.connect(false);
        client.publish("t/1", QoS::AtLeastOnce).unwrap();
        client.sent();
        // The first deadline is the keep-alive's PINGREQ, 60 s on.
        client.fire_timer();
        let sent = client.sent();
        assert!(publishes(&sent).is_empty(), "{version:?}: {sent:?}");
    }
}
