//! The server session against a client scripted with raw packets.

mod session_support;

use bytes::Bytes;
use iotcore_mqtt::packet::{
    Connect, Disconnect, PacketType, Publish, Subscribe, Unsubscribe, Will,
};
use iotcore_mqtt::server::{
    DropReason, Event, ProtocolError, Qos2Subscribe, ServerConfig, ServerError, ServerState,
};
use iotcore_mqtt::topic::TopicName;
use iotcore_mqtt::{DecodeError, Packet, Properties, ProtocolVersion, QoS, ReasonCode};
use session_support::*;

fn connect_packet(version: ProtocolVersion, keep_alive: u16) -> Connect {
    Connect {
        protocol: version,
        clean_start: true,
        keep_alive,
        client_id: "thing-1".into(),
        username: None,
        password: None,
        will: None,
        properties: Default::default(),
    }
}

/// A server session that has received CONNECT (keep-alive 60) and accepted it.
fn connected(config: ServerConfig, version: ProtocolVersion) -> ScriptedServer {
    connected_with(config, connect_packet(version, 60))
}

fn connected_with(config: ServerConfig, connect: Connect) -> ScriptedServer {
    let mut server = ScriptedServer::new(config, connect.protocol);
    server.receive(Packet::Connect(Box::new(connect))).unwrap();
    assert!(matches!(server.events().as_slice(), [Event::Connect(_)]));
    server
        .session
        .accept(false, Properties::default(), server.clock.now())
        .unwrap();
    let sent = server.sent();
    assert!(
        matches!(sent.as_slice(), [Packet::ConnAck(c)] if c.reason == ReasonCode::SUCCESS),
        "{sent:?}"
    );
    server
}

fn delivered_ids(packets: &[Packet]) -> Vec<(u16, bool)> {
    packets
        .iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some((p.packet_id.unwrap_or(0), p.dup)),
            _ => None,
        })
        .collect()
}

fn subscribe_packet(packet_id: u16, filters: &[(&str, QoS)]) -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id,
        subscriptions: filters.iter().map(|(f, q)| subscription(f, *q)).collect(),
        properties: Default::default(),
    })
}

#[test]
fn first_packet_must_be_connect() {
    for version in VERSIONS {
        let mut server = ScriptedServer::new(ServerConfig::aws(), version);
        let result = server.receive(Packet::PingReq);
        assert!(
            matches!(result, Err(ProtocolError::UnexpectedPacket { .. })),
            "{version:?} {result:?}"
        );
        assert!(server.session.is_closed());
        assert!(server.sent().is_empty());
        assert!(server.events().is_empty());
    }
}

#[test]
fn connect_is_reported_and_accept_sends_connack_with_aws_limits() {
    let mut server = ScriptedServer::new(ServerConfig::aws(), ProtocolVersion::V5);
    server
        .receive(Packet::Connect(Box::new(connect_packet(
            ProtocolVersion::V5,
            60,
        ))))
        .unwrap();
    let events = server.events();
    let [Event::Connect(connect)] = events.as_slice() else {
        panic!("{events:?}");
    };
    assert_eq!(connect.client_id, "thing-1");
    assert_eq!(server.session.state(), ServerState::AwaitingAccept);
    assert!(
        server.sent().is_empty(),
        "nothing before the broker decides"
    );
    server
        .session
        .accept(true, Properties::default(), server.clock.now())
        .unwrap();
    let sent = server.sent();
    let [Packet::ConnAck(connack)] = sent.as_slice() else {
        panic!("{sent:?}");
    };
    assert!(connack.session_present);
    let p = &connack.properties;
    assert_eq!(p.receive_maximum, Some(100));
    assert_eq!(p.maximum_packet_size, Some(149_504));
    assert_eq!(p.topic_alias_maximum, Some(8));
    assert_eq!(p.maximum_qos, Some(1));
    assert_eq!(p.server_keep_alive, None, "60 s is within AWS's range");
    assert_eq!(server.session.state(), ServerState::Connected);
}

#[test]
fn keep_alive_outside_aws_range_is_clamped_and_mqtt5_clients_are_told() {
    for (requested, effective) in [
        (0, 1200),
        (5, 30),
        (29, 30),
        (30, 30),
        (1200, 1200),
        (3600, 1200),
    ] {
        for version in VERSIONS {
            let server = connected_with(ServerConfig::aws(), connect_packet(version, requested));
            assert_eq!(
                server.session.keep_alive(),
                Some(effective),
                "requested {requested}"
            );
        }
        let mut server = ScriptedServer::new(ServerConfig::aws(), ProtocolVersion::V5);
        server
            .receive(Packet::Connect(Box::new(connect_packet(
                ProtocolVersion::V5,
                requested,
            ))))
            .unwrap();
        server
            .session
            .accept(false, Properties::default(), server.clock.now())
            .unwrap();
        let sent = server.sent();
        let [Packet::ConnAck(connack)] = sent.as_slice() else {
            panic!("{sent:?}");
        };
        let told = (requested != effective).then_some(effective);
        assert_eq!(
            connack.properties.server_keep_alive, told,
            "requested {requested}"
        );
    }
}

#[test]
fn server_closes_after_one_and_a_half_keep_alive_of_silence() {
    for version in VERSIONS {
        let mut server = connected(ServerConfig::aws(), version);
        let accepted_at = server.clock.now();
        assert_eq!(server.session.poll_timeout(), Some(accepted_at + secs(90)));
        server.clock.advance(secs(89));
        server.session.handle_timeout(server.clock.now());
        assert!(!server.session.is_closed(), "not before 1.5 × keep-alive");
        server.clock.advance(secs(1));
        server.session.handle_timeout(server.clock.now());
        assert!(server.session.is_closed(), "{version:?}");
        assert_eq!(server.events(), vec![Event::KeepAliveTimeout]);
        let sent = server.sent();
        match version {
            ProtocolVersion::V5 => assert!(
                matches!(sent.as_slice(), [Packet::Disconnect(d)] if d.reason == ReasonCode::KEEP_ALIVE_TIMEOUT),
                "{sent:?}"
            ),
            ProtocolVersion::V311 => assert!(sent.is_empty()),
        }
    }
}

#[test]
fn every_packet_from_the_client_restarts_the_keep_alive_timer() {
    let mut server = connected(ServerConfig::aws(), ProtocolVersion::V311);
    for _ in 0..10 {
        server.clock.advance(secs(80));
        server.receive(Packet::PingReq).unwrap();
        server.session.handle_timeout(server.clock.now());
    }
    assert!(!server.session.is_closed());
    assert_eq!(
        server.session.poll_timeout(),
        Some(server.clock.now() + secs(90))
    );
    assert_eq!(server.sent(), vec![Packet::PingResp; 10]);
}

#[test]
fn connection_without_connect_times_out() {
    let mut server = ScriptedServer::new(ServerConfig::aws(), ProtocolVersion::V311);
    let deadline = server.session.poll_timeout().unwrap();
    assert_eq!(deadline, server.clock.now() + secs(10));
    server.session.handle_timeout(deadline);
    assert_eq!(server.events(), vec![Event::ConnectTimeout]);
    assert!(server.session.is_closed());
}

#[test]
fn qos2_publish_closes_the_connection_without_puback() {
    for version in VERSIONS {
        let mut server = connected(ServerConfig::aws(), version);
        let mut message = publish("t", QoS::ExactlyOnce, b"x");
        message.packet_id = Some(1);
        assert_eq!(
            server.receive(Packet::Publish(message)),
            Err(ProtocolError::QoSNotSupported(QoS::ExactlyOnce))
        );
        assert!(server.session.is_closed());
        assert!(server.events().is_empty());
        let sent = server.sent();
        match version {
            ProtocolVersion::V5 => assert!(
                matches!(sent.as_slice(), [Packet::Disconnect(d)] if d.reason == ReasonCode::QOS_NOT_SUPPORTED),
                "{sent:?}"
            ),
            ProtocolVersion::V311 => assert!(sent.is_empty(), "{sent:?}"),
        }
    }
}

#[test]
fn qos2_subscribe_gets_no_suback_like_aws() {
    // MQTT 3.1.1: ignored and reported.
    let mut server = connected(ServerConfig::aws(), ProtocolVersion::V311);
    server
        .receive(subscribe_packet(
            4,
            &[("a", QoS::AtLeastOnce), ("b", QoS::ExactlyOnce)],
        ))
        .unwrap();
    assert!(matches!(server.events().as_slice(), [Event::SubscribeIgnored(s)] if s.packet_id == 4));
    assert!(server.sent().is_empty());
    assert!(!server.session.is_closed());
    assert!(matches!(
        server.session.suback(4, vec![ReasonCode::GRANTED_QOS_1; 2]),
        Err(ServerError::UnknownPacketId { .. })
    ));

    // MQTT 5: DISCONNECT 0x9B.
    let mut server = connected(ServerConfig::aws(), ProtocolVersion::V5);
    assert_eq!(
        server.receive(subscribe_packet(4, &[("b", QoS::ExactlyOnce)])),
        Err(ProtocolError::QoSNotSupported(QoS::ExactlyOnce))
    );
    assert!(matches!(
        server.sent().as_slice(),
        [Packet::Disconnect(d)] if d.reason == ReasonCode::QOS_NOT_SUPPORTED
    ));
}

#[test]
fn qos2_subscribe_is_granted_qos1_in_standard_mode() {
    for version in VERSIONS {
        let mut config = ServerConfig::aws();
        config.qos2_subscribe = Qos2Subscribe::GrantQoS1;
        let mut server = connected(config, version);
        server
            .receive(subscribe_packet(
                4,
                &[("a", QoS::AtMostOnce), ("b", QoS::ExactlyOnce)],
            ))
            .unwrap();
        let events = server.events();
        let [Event::Subscribe(subscribe)] = events.as_slice() else {
            panic!("{events:?}");
        };
        let qos: Vec<_> = subscribe
            .subscriptions
            .iter()
            .map(|s| s.options.qos)
            .collect();
        assert_eq!(qos, vec![QoS::AtMostOnce, QoS::AtLeastOnce]);
    }
}

#[test]
fn will_with_qos2_is_refused() {
    for version in VERSIONS {
        let mut server = ScriptedServer::new(ServerConfig::aws(), version);
        let mut connect = connect_packet(version, 60);
        connect.will = Some(Will {
            topic: "last/will".into(),
            payload: Bytes::from_static(b"bye"),
            qos: QoS::ExactlyOnce,
            retain: false,
            properties: Default::default(),
        });
        assert_eq!(
            server.receive(Packet::Connect(Box::new(connect))),
            Err(ProtocolError::QoSNotSupported(QoS::ExactlyOnce))
        );
        assert!(server.session.is_closed());
        assert!(server.events().is_empty());
        let sent = server.sent();
        match version {
            ProtocolVersion::V5 => assert!(
                matches!(sent.as_slice(), [Packet::ConnAck(c)] if c.reason == ReasonCode::QOS_NOT_SUPPORTED),
                "{sent:?}"
            ),
            ProtocolVersion::V311 => {
                assert!(sent.is_empty(), "AWS closes without CONNACK: {sent:?}")
            }
        }
    }
}

#[test]
fn inbound_qos1_publish_waits_for_the_brokers_puback() {
    for version in VERSIONS {
        let mut server = connected(ServerConfig::aws(), version);
        let mut message = publish("dt/thing-1/temp", QoS::AtLeastOnce, b"21");
        message.packet_id = Some(5);
        server.receive(Packet::Publish(message.clone())).unwrap();
        assert_eq!(server.events(), vec![Event::Publish(message)]);
        assert!(
            server.sent().is_empty(),
            "no PUBACK before the broker decides"
        );
        server
            .session
            .puback(5, ReasonCode::NOT_AUTHORIZED)
            .unwrap();
        let sent = server.sent();
        let [Packet::PubAck(ack)] = sent.as_slice() else {
            panic!("{sent:?}");
        };
        assert_eq!(ack.packet_id, 5);
        let expected = match version {
            ProtocolVersion::V5 => ReasonCode::NOT_AUTHORIZED,
            ProtocolVersion::V311 => ReasonCode::SUCCESS,
        };
        assert_eq!(ack.reason, expected);
        assert!(matches!(
            server.session.puback(5, ReasonCode::SUCCESS),
            Err(ServerError::UnknownPacketId { .. })
        ));
    }
}

#[test]
fn subscribe_and_unsubscribe_are_answered_by_the_broker() {
    for version in VERSIONS {
        let mut server = connected(ServerConfig::aws(), version);
        server
            .receive(subscribe_packet(
                3,
                &[("a/#", QoS::AtLeastOnce), ("b", QoS::AtMostOnce)],
            ))
            .unwrap();
        assert!(matches!(server.events().as_slice(), [Event::Subscribe(_)]));
        assert!(matches!(
            server.session.suback(3, vec![ReasonCode::GRANTED_QOS_1]),
            Err(ServerError::ReasonCountMismatch {
                expected: 2,
                got: 1,
                ..
            })
        ));
        server
            .session
            .suback(
                3,
                vec![ReasonCode::GRANTED_QOS_1, ReasonCode::NOT_AUTHORIZED],
            )
            .unwrap();
        assert!(
            matches!(server.sent().as_slice(), [Packet::SubAck(s)] if s.packet_id == 3 && s.reasons.len() == 2)
        );

        server
            .receive(Packet::Unsubscribe(Unsubscribe {
                packet_id: 4,
                filters: vec!["a/#".into()],
                properties: Default::default(),
            }))
            .unwrap();
        assert!(matches!(
            server.events().as_slice(),
            [Event::Unsubscribe(_)]
        ));
        server
            .session
            .unsuback(4, vec![ReasonCode::SUCCESS])
            .unwrap();
        assert!(matches!(server.sent().as_slice(), [Packet::UnsubAck(u)] if u.packet_id == 4));
    }
}

#[test]
fn pingreq_is_answered_by_the_session() {
    let mut server = connected(ServerConfig::aws(), ProtocolVersion::V5);
    server.receive(Packet::PingReq).unwrap();
    assert_eq!(server.sent(), vec![Packet::PingResp]);
    assert!(server.events().is_empty());
}

#[test]
fn normal_disconnect_discards_the_will_unless_reason_is_0x04() {
    for (version, reason, publish_will) in [
        (ProtocolVersion::V311, ReasonCode::SUCCESS, false),
        (ProtocolVersion::V5, ReasonCode::SUCCESS, false),
        (ProtocolVersion::V5, ReasonCode::DISCONNECT_WITH_WILL, true),
    ] {
        let mut server = connected(ServerConfig::aws(), version);
        server
            .receive(Packet::Disconnect(Disconnect {
                reason,
                properties: Default::default(),
            }))
            .unwrap();
        assert_eq!(
            server.events(),
            vec![Event::Disconnected {
                reason,
                publish_will,
                properties: Default::default()
            }]
        );
        assert!(server.session.is_closed());
    }
}

#[test]
fn disconnect_setting_session_expiry_after_connecting_without_is_a_protocol_error() {
    let mut server = connected(ServerConfig::aws(), ProtocolVersion::V5);
    let result = server.receive(Packet::Disconnect(Disconnect {
        reason: ReasonCode::SUCCESS,
        properties: Properties {
            session_expiry_interval: Some(60),
            ..Properties::default()
        }
        .into(),
    }));
    assert!(
        matches!(result, Err(ProtocolError::UnexpectedPacket { .. })),
        "{result:?}"
    );
    assert!(matches!(
        server.sent().as_slice(),
        [Packet::Disconnect(d)] if d.reason == ReasonCode::PROTOCOL_ERROR
    ));
}

#[test]
fn second_connect_is_a_protocol_error() {
    let mut server = connected(ServerConfig::aws(), ProtocolVersion::V311);
    assert!(matches!(
        server.receive(Packet::Connect(Box::new(connect_packet(
            ProtocolVersion::V311,
            60
        )))),
        Err(ProtocolError::UnexpectedPacket { .. })
    ));
    assert!(server.session.is_closed());
    assert!(server.session.protocol_error().is_some());
}

#[test]
fn deliveries_respect_the_clients_receive_maximum() {
    let mut connect = connect_packet(ProtocolVersion::V5, 60);
    connect.properties.receive_maximum = Some(2);
    let mut server = connected_with(ServerConfig::aws(), connect);
    let ids: Vec<_> = (0..4)
        .map(|_| {
            server
                .session
                .send_publish(publish("cmd", QoS::AtLeastOnce, b"x"))
        })
        .collect();
    assert_eq!(ids, vec![Some(1), Some(2), Some(3), Some(4)]);
    assert_eq!(delivered_ids(&server.sent()), vec![(1, false), (2, false)]);
    server.receive(puback(2)).unwrap();
    assert_eq!(
        server.events(),
        vec![Event::Delivered {
            packet_id: 2,
            reason: ReasonCode::SUCCESS
        }]
    );
    assert_eq!(delivered_ids(&server.sent()), vec![(3, false)]);
    assert_eq!(server.session.in_flight(), 2);
}

#[test]
fn aws_limits_outbound_inflight_to_100() {
    let mut server = connected(ServerConfig::aws(), ProtocolVersion::V311);
    for _ in 0..150 {
        server
            .session
            .send_publish(publish("cmd", QoS::AtLeastOnce, b"x"));
    }
    assert_eq!(delivered_ids(&server.sent()).len(), 100);
    assert_eq!(server.session.pending_publishes().len(), 150);
}

#[test]
fn delivery_larger_than_the_clients_maximum_packet_size_is_dropped_and_reported() {
    let mut connect = connect_packet(ProtocolVersion::V5, 60);
    connect.properties.maximum_packet_size = Some(64);
    let mut server = connected_with(ServerConfig::aws(), connect);
    let big: &'static [u8] = &[7u8; 100];
    assert_eq!(
        server
            .session
            .send_publish(publish("t", QoS::AtLeastOnce, big)),
        None
    );
    assert_eq!(
        server
            .session
            .send_publish(publish("t", QoS::AtMostOnce, big)),
        None
    );
    let events = server.events();
    assert_eq!(events.len(), 2, "{events:?}");
    for event in events {
        assert!(
            matches!(
                event,
                Event::PublishDropped {
                    reason: DropReason::TooLarge { max: 64, .. },
                    ..
                }
            ),
            "{event:?}"
        );
    }
    assert!(server.sent().is_empty());
    assert_eq!(
        server
            .session
            .send_publish(publish("t", QoS::AtLeastOnce, b"ok")),
        Some(1)
    );
}

#[test]
fn qos0_delivery_before_accept_is_dropped_and_qos1_is_queued() {
    let mut server = ScriptedServer::new(ServerConfig::aws(), ProtocolVersion::V311);
    server
        .receive(Packet::Connect(Box::new(connect_packet(
            ProtocolVersion::V311,
            60,
        ))))
        .unwrap();
    assert_eq!(
        server
            .session
            .send_publish(publish("t", QoS::AtMostOnce, b"0")),
        None
    );
    assert_eq!(
        server
            .session
            .send_publish(publish("t", QoS::AtLeastOnce, b"1")),
        Some(1)
    );
    assert!(server.sent().is_empty());
    server
        .session
        .accept(true, Properties::default(), server.clock.now())
        .unwrap();
    let sent = server.sent();
    assert!(matches!(sent[0], Packet::ConnAck(_)));
    assert_eq!(delivered_ids(&sent[1..]), vec![(1, false)]);
}

#[test]
fn resumed_unacked_publishes_are_resent_with_dup_after_accept_before_newer_ones() {
    for version in VERSIONS {
        // First connection: two deliveries sent, one acknowledged, one queued behind a window of 2.
        let mut connect = connect_packet(version, 60);
        connect.properties.receive_maximum = Some(2);
        let mut first = connected_with(ServerConfig::aws(), connect);
        for _ in 0..3 {
            first
                .session
                .send_publish(publish("cmd", QoS::AtLeastOnce, b"x"));
        }
        first.sent();
        first.receive(puback(1)).unwrap();
        first.sent();
        first.session.disconnect(ReasonCode::SUCCESS);
        let pending = first.session.take_pending_publishes();
        let summary: Vec<_> = pending
            .iter()
            .map(|p| (p.packet_id.unwrap(), p.dup))
            .collect();
        assert_eq!(
            summary,
            vec![(2, true), (3, true)],
            "{version:?}: 3 was sent once 1 was acked"
        );

        // Second connection: resumed.
        let mut second = ScriptedServer::new(ServerConfig::aws(), version);
        second
            .receive(Packet::Connect(Box::new(connect_packet(version, 60))))
            .unwrap();
        second
            .session
            .send_publish(publish("cmd", QoS::AtLeastOnce, b"new"));
        second.session.resume(pending);
        second
            .session
            .accept(true, Properties::default(), second.clock.now())
            .unwrap();
        let sent = second.sent();
        assert!(matches!(sent[0], Packet::ConnAck(_)));
        assert_eq!(
            delivered_ids(&sent[1..]),
            vec![(2, true), (3, true), (1, false)],
            "{version:?}: resumed first, with their ids and DUP"
        );
    }
}

#[test]
fn packets_sent_before_accept_are_held_until_accept() {
    let mut server = ScriptedServer::new(ServerConfig::aws(), ProtocolVersion::V311);
    let mut bytes = encode(
        &Packet::Connect(Box::new(connect_packet(ProtocolVersion::V311, 60))),
        ProtocolVersion::V311,
    )
    .to_vec();
    bytes.extend_from_slice(&encode(&Packet::PingReq, ProtocolVersion::V311));
    bytes.extend_from_slice(&encode(
        &Packet::Publish(publish("t", QoS::AtMostOnce, b"early")),
        ProtocolVersion::V311,
    ));
    server
        .session
        .handle_input(&bytes, server.clock.now())
        .unwrap();
    assert!(matches!(server.events().as_slice(), [Event::Connect(_)]));
    assert!(server.sent().is_empty());
    server
        .session
        .accept(false, Properties::default(), server.clock.now())
        .unwrap();
    assert_eq!(server.sent(), vec![connack(false), Packet::PingResp]);
    assert!(matches!(server.events().as_slice(), [Event::Publish(p)] if p.payload == "early"));
}

#[test]
fn mqtt5_receive_maximum_exceeded_closes_with_0x93() {
    let mut config = ServerConfig::aws();
    config.receive_maximum = 2;
    let mut server = connected(config, ProtocolVersion::V5);
    for id in 1..=2 {
        let mut message = publish("t", QoS::AtLeastOnce, b"x");
        message.packet_id = Some(id);
        server.receive(Packet::Publish(message)).unwrap();
    }
    let mut third = publish("t", QoS::AtLeastOnce, b"x");
    third.packet_id = Some(3);
    assert_eq!(
        server.receive(Packet::Publish(third)),
        Err(ProtocolError::ReceiveMaximumExceeded { max: 2 })
    );
    assert!(matches!(
        server.sent().as_slice(),
        [Packet::Disconnect(d)] if d.reason == ReasonCode::RECEIVE_MAXIMUM_EXCEEDED
    ));
}

#[test]
fn oversized_packet_is_refused_with_disconnect_0x95_on_mqtt5() {
    let mut server = connected(ServerConfig::aws(), ProtocolVersion::V5);
    let big: &'static [u8] = &[0u8; 150_000];
    let result = server.receive(Packet::Publish(publish("t", QoS::AtMostOnce, big)));
    assert!(
        matches!(
            result,
            Err(ProtocolError::Decode(DecodeError::PacketTooLarge {
                max: 149_504,
                ..
            }))
        ),
        "{result:?}"
    );
    assert!(matches!(
        server.sent().as_slice(),
        [Packet::Disconnect(d)] if d.reason == ReasonCode::PACKET_TOO_LARGE
    ));
}

#[test]
fn unsupported_protocol_level_gets_connack_return_code_1() {
    let mut server = ScriptedServer::new(ServerConfig::aws(), ProtocolVersion::V311);
    // CONNECT, protocol name "MQTT", level 3 (MQTT 3.1 is "MQIsdp"; level 3 here is unsupported).
    let body = [
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x03, 0x02, 0x00, 0x3c, 0x00, 0x01, b'x',
    ];
    let mut bytes = vec![0x10, body.len() as u8];
    bytes.extend_from_slice(&body);
    let result = server.session.handle_input(&bytes, server.clock.now());
    assert!(matches!(
        result,
        Err(ProtocolError::Decode(
            DecodeError::UnsupportedProtocolVersion(3)
        ))
    ));
    assert_eq!(
        server.session.poll_transmit().as_deref(),
        Some(&[0x20, 0x02, 0x00, 0x01][..])
    );
    assert!(server.session.is_closed());
}

#[test]
fn reject_sends_connack_with_the_reason_mapped_for_mqtt311() {
    for (version, expected) in [
        (ProtocolVersion::V311, &[0x20, 0x02, 0x00, 0x05][..]),
        (ProtocolVersion::V5, &[0x20, 0x03, 0x00, 0x87, 0x00][..]),
    ] {
        let mut server = ScriptedServer::new(ServerConfig::aws(), version);
        server
            .receive(Packet::Connect(Box::new(connect_packet(version, 60))))
            .unwrap();
        server
            .session
            .reject(ReasonCode::NOT_AUTHORIZED, Properties::default())
            .unwrap();
        assert_eq!(
            server.session.poll_transmit().as_deref(),
            Some(expected),
            "{version:?}"
        );
        assert!(server.session.is_closed());
    }
}

#[test]
fn commands_out_of_state_are_refused() {
    let mut server = ScriptedServer::new(ServerConfig::aws(), ProtocolVersion::V311);
    let now = server.clock.now();
    assert!(matches!(
        server.session.accept(false, Properties::default(), now),
        Err(ServerError::InvalidState {
            operation: "accept",
            ..
        })
    ));
    assert!(matches!(
        server.session.puback(1, ReasonCode::SUCCESS),
        Err(ServerError::InvalidState { .. })
    ));
    let mut server = connected(ServerConfig::aws(), ProtocolVersion::V311);
    assert!(matches!(
        server.session.accept(false, Properties::default(), now),
        Err(ServerError::InvalidState { .. })
    ));
    assert!(matches!(
        server
            .session
            .reject(ReasonCode::NOT_AUTHORIZED, Properties::default()),
        Err(ServerError::InvalidState { .. })
    ));
}

#[test]
fn server_disconnect_sends_disconnect_to_mqtt5_clients_only() {
    for version in VERSIONS {
        let mut server = connected(ServerConfig::aws(), version);
        server
            .session
            .send_publish(publish("t", QoS::AtLeastOnce, b"x"));
        server.sent();
        server.session.disconnect(ReasonCode::SESSION_TAKEN_OVER);
        let sent = server.sent();
        match version {
            ProtocolVersion::V5 => assert!(
                matches!(sent.as_slice(), [Packet::Disconnect(d)] if d.reason == ReasonCode::SESSION_TAKEN_OVER)
            ),
            ProtocolVersion::V311 => assert!(sent.is_empty()),
        }
        assert!(server.session.is_closed());
        assert_eq!(
            server.session.take_pending_publishes().len(),
            1,
            "kept for persistence"
        );
        assert_eq!(server.session.poll_timeout(), None);
    }
}

#[test]
fn inbound_topic_alias_is_resolved_up_to_the_announced_maximum() {
    let mut server = connected(ServerConfig::aws(), ProtocolVersion::V5);
    let mut set = publish("dt/thing-1/temp", QoS::AtMostOnce, b"1");
    set.properties.topic_alias = Some(8);
    let mut used = publish("", QoS::AtMostOnce, b"2");
    used.properties.topic_alias = Some(8);
    server.receive(Packet::Publish(set)).unwrap();
    server.receive(Packet::Publish(used)).unwrap();
    let topics: Vec<_> = server
        .events()
        .into_iter()
        .map(|e| match e {
            Event::Publish(p) => p.topic,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(topics, vec!["dt/thing-1/temp", "dt/thing-1/temp"]);
    let mut beyond = publish("x", QoS::AtMostOnce, b"3");
    beyond.properties.topic_alias = Some(9);
    assert_eq!(
        server.receive(Packet::Publish(beyond)),
        Err(ProtocolError::TopicAliasInvalid(9))
    );
}

#[test]
fn duplicate_puback_from_the_client_is_ignored() {
    let mut server = connected(ServerConfig::aws(), ProtocolVersion::V311);
    server
        .session
        .send_publish(publish("t", QoS::AtLeastOnce, b"x"));
    server.receive(puback(1)).unwrap();
    server.receive(puback(1)).unwrap();
    assert_eq!(server.events().len(), 1);
    assert!(!server.session.is_closed());
}

#[test]
fn pending_publishes_report_dup_for_sent_deliveries() {
    let mut connect = connect_packet(ProtocolVersion::V5, 60);
    connect.properties.receive_maximum = Some(1);
    let mut server = connected_with(ServerConfig::aws(), connect);
    server
        .session
        .send_publish(publish("a", QoS::AtLeastOnce, b"x"));
    server
        .session
        .send_publish(publish("b", QoS::AtLeastOnce, b"y"));
    let summary: Vec<(TopicName, bool)> = server
        .session
        .pending_publishes()
        .map(|p: &Publish| (p.topic.clone(), p.dup))
        .collect();
    assert_eq!(summary, vec![("a".into(), true), ("b".into(), false)]);
}

#[test]
fn bytes_of_an_unfinished_packet_do_not_count_as_activity() {
    let mut server = connected(ServerConfig::aws(), ProtocolVersion::V311);
    let accepted_at = server.clock.now();
    server.clock.advance(secs(80));
    // The first byte of a PUBLISH, and nothing more.
    server
        .session
        .handle_input(&[0x30], server.clock.now())
        .unwrap();
    assert_eq!(server.session.poll_timeout(), Some(accepted_at + secs(90)));
}

#[test]
fn mqtt311_empty_client_id_with_clean_session_0_gets_connack_0x02_and_is_closed() {
    let mut server = ScriptedServer::new(ServerConfig::aws(), ProtocolVersion::V311);
    let mut connect = connect_packet(ProtocolVersion::V311, 60);
    connect.client_id = String::new();
    connect.clean_start = false;
    assert_eq!(
        server.receive(Packet::Connect(Box::new(connect))),
        Err(ProtocolError::ClientIdRejected)
    );
    // 0x02: identifier rejected [MQTT-3.1.3-8].
    assert_eq!(
        server.session.poll_transmit().as_deref(),
        Some(&[0x20, 0x02, 0x00, 0x02][..])
    );
    assert!(server.session.is_closed());
    assert!(server.events().is_empty(), "the broker never sees it");
}

#[test]
fn an_empty_client_id_with_a_clean_session_reaches_the_broker() {
    for version in VERSIONS {
        let mut server = ScriptedServer::new(ServerConfig::aws(), version);
        let mut connect = connect_packet(version, 60);
        connect.client_id = String::new();
        server.receive(Packet::Connect(Box::new(connect))).unwrap();
        let events = server.events();
        assert!(
            matches!(events.as_slice(), [Event::Connect(c)] if c.client_id.is_empty()),
            "{version:?} {events:?}"
        );
    }
}

#[test]
fn mqtt5_accept_of_an_empty_client_id_needs_the_assigned_identifier() {
    let mut server = ScriptedServer::new(ServerConfig::aws(), ProtocolVersion::V5);
    let mut connect = connect_packet(ProtocolVersion::V5, 60);
    connect.client_id = String::new();
    connect.clean_start = false;
    server.receive(Packet::Connect(Box::new(connect))).unwrap();
    server.events();
    let now = server.clock.now();
    assert_eq!(
        server.session.accept(false, Properties::default(), now),
        Err(ServerError::AssignedClientIdRequired)
    );
    assert!(server.sent().is_empty(), "nothing sent for a refused call");
    let assigned = Properties {
        assigned_client_identifier: Some("$GEN/1234".into()),
        ..Properties::default()
    };
    server.session.accept(false, assigned, now).unwrap();
    let sent = server.sent();
    assert!(
        matches!(sent.as_slice(), [Packet::ConnAck(c)]
            if c.properties.assigned_client_identifier.as_deref() == Some("$GEN/1234")),
        "{sent:?}"
    );
}

#[test]
fn mqtt311_accept_of_an_empty_client_id_sends_a_plain_connack() {
    let mut server = ScriptedServer::new(ServerConfig::aws(), ProtocolVersion::V311);
    let mut connect = connect_packet(ProtocolVersion::V311, 60);
    connect.client_id = String::new();
    server.receive(Packet::Connect(Box::new(connect))).unwrap();
    server
        .session
        .accept(false, Properties::default(), server.clock.now())
        .unwrap();
    assert_eq!(
        server.session.poll_transmit().as_deref(),
        Some(&[0x20, 0x02, 0x00, 0x00][..])
    );
}

#[test]
fn mqtt5_connect_with_an_authentication_method_gets_connack_0x8c_and_is_closed() {
    let mut server = ScriptedServer::new(ServerConfig::aws(), ProtocolVersion::V5);
    let mut connect = connect_packet(ProtocolVersion::V5, 60);
    connect.properties.authentication_method = Some("SCRAM-SHA-1".into());
    connect.properties.authentication_data = Some(Bytes::from_static(b"client-first"));
    assert_eq!(
        server.receive(Packet::Connect(Box::new(connect))),
        Err(ProtocolError::AuthenticationMethodNotSupported(
            "SCRAM-SHA-1".into()
        ))
    );
    let sent = server.sent();
    assert!(
        matches!(sent.as_slice(), [Packet::ConnAck(c)] if c.reason == ReasonCode::BAD_AUTHENTICATION_METHOD),
        "{sent:?}"
    );
    assert!(server.session.is_closed());
    assert!(server.events().is_empty(), "the broker never sees it");
}

#[test]
fn a_client_publish_carrying_a_subscription_identifier_is_a_protocol_error() {
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
        let mut server = connected(ServerConfig::aws(), ProtocolVersion::V5);
        let mut message = publish("dt/thing-1/temp", qos, b"21");
        message.packet_id = (qos == QoS::AtLeastOnce).then_some(3);
        message.properties.subscription_identifiers = vec![7];
        let result = server.receive(Packet::Publish(message));
        assert!(
            matches!(
                result,
                Err(ProtocolError::Forbidden {
                    packet_type: PacketType::Publish,
                    ..
                })
            ),
            "{result:?}"
        );
        assert!(
            server.events().is_empty(),
            "the message is not handed on: {qos:?}"
        );
        let sent = server.sent();
        assert!(
            matches!(sent.as_slice(), [Packet::Disconnect(d)] if d.reason == ReasonCode::PROTOCOL_ERROR),
            "{sent:?}"
        );
        assert!(server.session.is_closed());
    }
}

#[test]
fn no_local_on_a_shared_subscription_is_a_protocol_error() {
    let mut server = connected(ServerConfig::aws(), ProtocolVersion::V5);
    let mut shared = subscription("$share/workers/jobs/#", QoS::AtLeastOnce);
    shared.options.no_local = true;
    let result = server.receive(Packet::Subscribe(Subscribe {
        packet_id: 9,
        subscriptions: vec![subscription("a/b", QoS::AtMostOnce), shared],
        properties: Default::default(),
    }));
    assert!(
        matches!(
            result,
            Err(ProtocolError::Forbidden {
                packet_type: PacketType::Subscribe,
                ..
            })
        ),
        "{result:?}"
    );
    let sent = server.sent();
    assert!(
        matches!(sent.as_slice(), [Packet::Disconnect(d)] if d.reason == ReasonCode::PROTOCOL_ERROR),
        "{sent:?}"
    );

    // No Local on a non-shared subscription is fine.
    let mut server = connected(ServerConfig::aws(), ProtocolVersion::V5);
    let mut own = subscription("jobs/#", QoS::AtLeastOnce);
    own.options.no_local = true;
    server
        .receive(Packet::Subscribe(Subscribe {
            packet_id: 9,
            subscriptions: vec![own],
            properties: Default::default(),
        }))
        .unwrap();
    assert!(matches!(server.events().as_slice(), [Event::Subscribe(_)]));
}
