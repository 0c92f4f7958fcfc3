//! Wire vectors for every packet in both versions, framing, and one test per
//! [`EncodeError`]. Decode errors are in `tests/codec_malformed.rs`.

use bytes::{Bytes, BytesMut};

use super::*;
use crate::codec::put_varint;
use crate::topic::TopicError;
use crate::{Properties, QoS, ReasonCode};

use ProtocolVersion::{V5, V311};

/// A whole packet: `first` byte, remaining length, `body`.
fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    Sink::put_u8(&mut out, first);
    put_varint(&mut out, body.len());
    out.extend_from_slice(body);
    out.to_vec()
}

/// A two-byte-length string or binary field.
fn s(v: &str) -> Vec<u8> {
    let mut out = (v.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(v.as_bytes());
    out
}

/// Concatenates fields.
fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn decode_bytes(bytes: &[u8], version: ProtocolVersion) -> Result<Option<Packet>, DecodeError> {
    let mut buf = BytesMut::from(bytes);
    decode(&mut buf, version, MAX_PACKET_SIZE)
}

/// `bytes` decodes to `packet`, consuming all of it, and `packet` encodes
/// back to `bytes`.
#[track_caller]
fn assert_wire(bytes: &[u8], version: ProtocolVersion, packet: Packet) {
    let mut buf = BytesMut::from(bytes);
    assert_eq!(
        decode(&mut buf, version, MAX_PACKET_SIZE),
        Ok(Some(packet.clone()))
    );
    assert!(buf.is_empty(), "decode left {} bytes", buf.len());
    let mut out = BytesMut::new();
    packet.encode(version, &mut out).expect("encodes");
    assert_eq!(&out[..], bytes);
    assert_eq!(packet.encoded_len(version), Ok(bytes.len()));
    if let Packet::Publish(publish) = &packet {
        let mut direct = BytesMut::new();
        publish.encode(version, &mut direct).expect("encodes");
        assert_eq!(
            &direct[..],
            bytes,
            "Publish::encode differs from Packet::encode"
        );
        assert_eq!(publish.encoded_len(version), Ok(bytes.len()));
    }
}

#[track_caller]
fn assert_encode_err(packet: Packet, version: ProtocolVersion, err: EncodeError) {
    let mut out = BytesMut::from(&b"keep"[..]);
    assert_eq!(packet.encode(version, &mut out), Err(err.clone()));
    assert_eq!(
        &out[..],
        b"keep",
        "a failed encode must leave the buffer alone"
    );
    if let Packet::Publish(publish) = &packet {
        assert_eq!(publish.encode(version, &mut out), Err(err.clone()));
        assert_eq!(
            &out[..],
            b"keep",
            "a failed Publish::encode must leave the buffer alone"
        );
    }
    assert_eq!(packet.encoded_len(version), Err(err));
}

fn props(f: impl FnOnce(&mut Properties)) -> Properties {
    let mut p = Properties::default();
    f(&mut p);
    p
}

// ---------------------------------------------------------------- packets

#[test]
fn connect_v311_with_will_and_credentials() {
    let body = cat(&[
        &s("MQTT"),
        &[4, 0xEE, 0x00, 0x3C],
        &s("cl"),
        &s("t"),
        &s("w"),
        &s("u"),
        &s("p"),
    ]);
    let packet = Packet::Connect(Box::new(Connect {
        protocol: V311,
        clean_start: true,
        keep_alive: 60,
        client_id: "cl".into(),
        username: Some("u".into()),
        password: Some(Bytes::from_static(b"p")),
        will: Some(Will::new(
            "t",
            Bytes::from_static(b"w"),
            QoS::AtLeastOnce,
            true,
        )),
        properties: Default::default(),
    }));
    // A CONNECT uses its own level whatever the connection's version.
    assert_wire(&frame(0x10, &body), V5, packet.clone());
    assert_wire(&frame(0x10, &body), V311, packet);
}

#[test]
fn connect_v5_with_properties_and_will_properties() {
    let body = cat(&[
        &s("MQTT"),
        &[5, 0x06, 0x00, 0x0A],
        &[8, 0x11, 0, 0, 0x0E, 0x10, 0x21, 0, 10],
        &s(""),
        &[5, 0x18, 0, 0, 0, 5],
        &s("t"),
        &s(""),
    ]);
    let mut connect = Connect::new(V5, "", 10);
    connect.properties = props(|p| {
        p.session_expiry_interval = Some(3600);
        p.receive_maximum = Some(10);
    })
    .into();
    let mut will = Will::new("t", Bytes::new(), QoS::AtMostOnce, false);
    will.properties.will_delay_interval = Some(5);
    connect.will = Some(will);
    assert_wire(
        &frame(0x10, &body),
        V311,
        Packet::Connect(Box::new(connect)),
    );
}

#[test]
fn connect_v5_allows_a_password_without_a_user_name() {
    let body = cat(&[&s("MQTT"), &[5, 0x42, 0, 0, 0], &s("c"), &s("pw")]);
    let mut connect = Connect::new(V5, "c", 0);
    connect.password = Some(Bytes::from_static(b"pw"));
    assert_wire(&frame(0x10, &body), V5, Packet::Connect(Box::new(connect)));
}

#[test]
fn connack_v311_maps_return_codes_to_reason_codes() {
    assert_wire(
        &[0x20, 2, 1, 0],
        V311,
        Packet::ConnAck(ConnAck::new(true, ReasonCode::SUCCESS)),
    );
    for (code, reason) in [
        (1, ReasonCode::UNSUPPORTED_PROTOCOL_VERSION),
        (2, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID),
        (3, ReasonCode::SERVER_UNAVAILABLE),
        (4, ReasonCode::BAD_USER_NAME_OR_PASSWORD),
        (5, ReasonCode::NOT_AUTHORIZED),
    ] {
        assert_wire(
            &[0x20, 2, 0, code],
            V311,
            Packet::ConnAck(ConnAck::new(false, reason)),
        );
    }
}

#[test]
fn connack_v311_sends_codes_without_equivalent_as_server_unavailable() {
    let mut out = BytesMut::new();
    Packet::ConnAck(ConnAck::new(false, ReasonCode::BANNED))
        .encode(V311, &mut out)
        .unwrap();
    assert_eq!(&out[..], [0x20, 2, 0, 3]);
}

#[test]
fn connack_v5_with_properties() {
    let body = cat(&[&[0x01, 0x00, 10, 0x12], &s("id"), &[0x21, 0, 5, 0x24, 1]]);
    let mut connack = ConnAck::new(true, ReasonCode::SUCCESS);
    connack.properties = props(|p| {
        p.assigned_client_identifier = Some("id".into());
        p.maximum_qos = Some(1);
        p.receive_maximum = Some(5);
    })
    .into();
    assert_wire(&frame(0x20, &body), V5, Packet::ConnAck(connack));
    let body = cat(&[&[0x00, 0x87, 6, 0x1F], &s("nop")]);
    let mut refused = ConnAck::new(false, ReasonCode::NOT_AUTHORIZED);
    refused.properties.reason_string = Some("nop".into());
    assert_wire(&frame(0x20, &body), V5, Packet::ConnAck(refused));
}

#[test]
fn publish_v311_qos0_and_qos1() {
    assert_wire(
        &frame(0x30, &s("t")),
        V311,
        Packet::Publish(Publish::new("t", Bytes::new(), QoS::AtMostOnce)),
    );
    let body = cat(&[&s("a/b"), &[0x00, 0x0A], b"hi"]);
    let mut publish = Publish::new("a/b", Bytes::from_static(b"hi"), QoS::AtLeastOnce);
    publish.packet_id = Some(10);
    publish.dup = true;
    publish.retain = true;
    assert_wire(&frame(0x3B, &body), V311, Packet::Publish(publish));
}

#[test]
fn publish_v5_with_repeated_subscription_identifiers_and_user_properties() {
    let body = cat(&[
        &s("a/b"),
        &[0x00, 0x01],
        &[24, 0x01, 1, 0x23, 0, 5, 0x0B, 7, 0x0B, 0x80, 0x01, 0x26],
        &s("k"),
        &s("v"),
        &[0x26],
        &s("k"),
        &s("w"),
        b"{}",
    ]);
    let mut publish = Publish::new("a/b", Bytes::from_static(b"{}"), QoS::AtLeastOnce);
    publish.packet_id = Some(1);
    publish.properties = props(|p| {
        p.payload_format_indicator = Some(1);
        p.topic_alias = Some(5);
        p.subscription_identifiers = vec![7, 128];
        p.user_properties = vec![("k".into(), "v".into()), ("k".into(), "w".into())];
    })
    .into();
    assert_wire(&frame(0x32, &body), V5, Packet::Publish(publish));
}

#[test]
fn publish_v5_may_have_an_empty_topic_with_a_topic_alias() {
    let body = cat(&[&s(""), &[3, 0x23, 0, 1], b"x"]);
    let mut publish = Publish::new("", Bytes::from_static(b"x"), QoS::AtMostOnce);
    publish.properties.topic_alias = Some(1);
    assert_wire(&frame(0x30, &body), V5, Packet::Publish(publish.clone()));
    assert_encode_err(
        Packet::Publish(publish),
        V311,
        EncodeError::InvalidTopicName(TopicError::Empty),
    );
}

#[test]
fn publish_payload_is_a_zero_copy_slice_of_the_input() {
    let bytes = frame(0x30, &cat(&[&s("t"), &[7u8; 100]]));
    let mut buf = BytesMut::from(&bytes[..]);
    let start = buf.as_ptr() as usize;
    let end = start + buf.len();
    let Ok(Some(Packet::Publish(p))) = decode(&mut buf, V311, MAX_PACKET_SIZE) else {
        panic!("not a publish");
    };
    let ptr = p.payload.as_ptr() as usize;
    assert!(ptr >= start && ptr + p.payload.len() <= end);
    assert_eq!(p.payload.len(), 100);
}

#[test]
fn acks_v311_carry_only_the_packet_id() {
    for (first, make) in [
        (0x40, Packet::PubAck as fn(Ack) -> Packet),
        (0x50, Packet::PubRec),
        (0x62, Packet::PubRel),
        (0x70, Packet::PubComp),
    ] {
        assert_wire(&[first, 2, 0, 7], V311, make(Ack::new(7)));
        // MQTT 5-only fields are not on the 3.1.1 wire.
        let mut out = BytesMut::new();
        make(Ack::with_reason(7, ReasonCode(0x92)))
            .encode(V311, &mut out)
            .unwrap();
        assert_eq!(&out[..], [first, 2, 0, 7]);
    }
}

#[test]
fn acks_v5_use_the_shortest_form() {
    assert_wire(&[0x40, 2, 0, 7], V5, Packet::PubAck(Ack::new(7)));
    assert_wire(
        &[0x40, 3, 0, 7, 0x10],
        V5,
        Packet::PubAck(Ack::with_reason(7, ReasonCode::NO_MATCHING_SUBSCRIBERS)),
    );
    let mut ack = Ack::with_reason(7, ReasonCode::NOT_AUTHORIZED);
    ack.properties.reason_string = Some("x".into());
    assert_wire(
        &frame(0x40, &cat(&[&[0, 7, 0x87, 4, 0x1F], &s("x")])),
        V5,
        Packet::PubAck(ack),
    );
    assert_wire(
        &[0x62, 3, 0, 7, 0x92],
        V5,
        Packet::PubRel(Ack::with_reason(7, ReasonCode::PACKET_IDENTIFIER_NOT_FOUND)),
    );
    assert_wire(&[0x50, 2, 0, 9], V5, Packet::PubRec(Ack::new(9)));
    assert_wire(&[0x70, 2, 0, 9], V5, Packet::PubComp(Ack::new(9)));
    // The long form of a plain success is accepted too.
    assert_eq!(
        decode_bytes(&[0x40, 4, 0, 7, 0, 0], V5),
        Ok(Some(Packet::PubAck(Ack::new(7))))
    );
}

#[test]
fn subscribe_v311() {
    let body = cat(&[&[0, 1], &s("a/+"), &[1], &s("#"), &[0]]);
    let packet = Packet::Subscribe(Subscribe::new(
        1,
        vec![
            Subscription::new("a/+", QoS::AtLeastOnce),
            Subscription::new("#", QoS::AtMostOnce),
        ],
    ));
    assert_wire(&frame(0x82, &body), V311, packet);
}

#[test]
fn subscribe_v5_with_options_and_subscription_identifier() {
    let body = cat(&[&[0, 1, 2, 0x0B, 5], &s("a/b"), &[0x2D]]);
    let mut sub = Subscribe::new(
        1,
        vec![Subscription {
            filter: "a/b".into(),
            options: SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                no_local: true,
                retain_as_published: true,
                retain_handling: RetainHandling::Never,
            },
        }],
    );
    sub.properties.subscription_identifiers = vec![5];
    assert_wire(&frame(0x82, &body), V5, Packet::Subscribe(sub));
}

#[test]
fn suback_both_versions() {
    assert_wire(
        &[0x90, 5, 0, 1, 0, 1, 0x80],
        V311,
        Packet::SubAck(SubAck::new(
            1,
            vec![
                ReasonCode::GRANTED_QOS_0,
                ReasonCode::GRANTED_QOS_1,
                ReasonCode::UNSPECIFIED_ERROR,
            ],
        )),
    );
    assert_wire(
        &[0x90, 6, 0, 1, 0, 0x01, 0x87, 0xA2],
        V5,
        Packet::SubAck(SubAck::new(
            1,
            vec![
                ReasonCode::GRANTED_QOS_1,
                ReasonCode::NOT_AUTHORIZED,
                ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
            ],
        )),
    );
}

#[test]
fn suback_v311_sends_every_failure_as_0x80() {
    let mut out = BytesMut::new();
    Packet::SubAck(SubAck::new(
        3,
        vec![
            ReasonCode::GRANTED_QOS_1,
            ReasonCode::NOT_AUTHORIZED,
            ReasonCode::QUOTA_EXCEEDED,
        ],
    ))
    .encode(V311, &mut out)
    .unwrap();
    assert_eq!(&out[..], [0x90, 5, 0, 3, 0x01, 0x80, 0x80]);
}

#[test]
fn unsubscribe_and_unsuback_both_versions() {
    let filters = vec!["a/b".to_string(), "c/#".to_string()];
    assert_wire(
        &frame(0xA2, &cat(&[&[0, 2], &s("a/b"), &s("c/#")])),
        V311,
        Packet::Unsubscribe(Unsubscribe::new(2, filters.clone())),
    );
    assert_wire(
        &frame(0xA2, &cat(&[&[0, 2, 0], &s("a/b"), &s("c/#")])),
        V5,
        Packet::Unsubscribe(Unsubscribe::new(2, filters)),
    );
    assert_wire(
        &[0xB0, 2, 0, 2],
        V311,
        Packet::UnsubAck(UnsubAck::new(2, vec![])),
    );
    assert_wire(
        &[0xB0, 5, 0, 2, 0, 0x00, 0x11],
        V5,
        Packet::UnsubAck(UnsubAck::new(
            2,
            vec![ReasonCode::SUCCESS, ReasonCode::NO_SUBSCRIPTION_EXISTED],
        )),
    );
}

#[test]
fn pings() {
    for v in [V311, V5] {
        assert_wire(&[0xC0, 0], v, Packet::PingReq);
        assert_wire(&[0xD0, 0], v, Packet::PingResp);
    }
}

#[test]
fn disconnect_both_versions() {
    assert_wire(&[0xE0, 0], V311, Packet::Disconnect(Disconnect::default()));
    assert_wire(&[0xE0, 0], V5, Packet::Disconnect(Disconnect::default()));
    assert_wire(
        &[0xE0, 1, 0x8E],
        V5,
        Packet::Disconnect(Disconnect::new(ReasonCode::SESSION_TAKEN_OVER)),
    );
    let mut d = Disconnect::new(ReasonCode::DISCONNECT_WITH_WILL);
    d.properties.session_expiry_interval = Some(0);
    assert_wire(
        &[0xE0, 7, 0x04, 5, 0x11, 0, 0, 0, 0],
        V5,
        Packet::Disconnect(d),
    );
}

#[test]
fn auth_v5() {
    assert_wire(&[0xF0, 0], V5, Packet::Auth(Auth::default()));
    let mut auth = Auth {
        reason: ReasonCode::CONTINUE_AUTHENTICATION,
        properties: Default::default(),
    };
    auth.properties.authentication_method = Some("SCR".into());
    auth.properties.authentication_data = Some(Bytes::from_static(b"x"));
    let body = cat(&[&[0x18, 10, 0x15], &s("SCR"), &[0x16], &s("x")]);
    assert_wire(&frame(0xF0, &body), V5, Packet::Auth(auth));
    assert_wire(
        &[0xF0, 2, 0x19, 0],
        V5,
        Packet::Auth(Auth {
            reason: ReasonCode::REAUTHENTICATE,
            properties: Default::default(),
        }),
    );
}

// ---------------------------------------------------------------- framing

#[test]
fn partial_input_consumes_nothing_until_the_packet_is_complete() {
    let bytes = frame(0x30, &cat(&[&s("t"), b"payload"]));
    let mut buf = BytesMut::new();
    for &b in &bytes[..bytes.len() - 1] {
        buf.extend_from_slice(&[b]);
        let before = buf.len();
        assert_eq!(decode(&mut buf, V311, MAX_PACKET_SIZE), Ok(None));
        assert_eq!(buf.len(), before);
    }
    buf.extend_from_slice(&bytes[bytes.len() - 1..]);
    buf.extend_from_slice(&[0xC0, 0]);
    assert!(matches!(
        decode(&mut buf, V311, MAX_PACKET_SIZE),
        Ok(Some(Packet::Publish(_)))
    ));
    assert_eq!(
        decode(&mut buf, V311, MAX_PACKET_SIZE),
        Ok(Some(Packet::PingReq))
    );
    assert_eq!(decode(&mut buf, V311, MAX_PACKET_SIZE), Ok(None));
}

#[test]
fn packet_at_exactly_the_maximum_size_is_accepted() {
    let bytes = frame(0x30, &cat(&[&s("t"), &[0u8; 10]]));
    let mut buf = BytesMut::from(&bytes[..]);
    assert!(decode(&mut buf, V311, bytes.len()).unwrap().is_some());
}

// ---------------------------------------------------------------- encode errors

/// Zero-filled and never written: a payload too large for MQTT that costs no
/// memory (it lives in .bss and the encoder only measures it before failing).
static HUGE: [u8; codec::MAX_VARINT] = [0; codec::MAX_VARINT];

#[test]
fn enc_err_packet_too_large() {
    let publish = Publish::new("t", Bytes::from_static(&HUGE), QoS::AtMostOnce);
    assert_encode_err(
        Packet::Publish(publish),
        V311,
        EncodeError::PacketTooLarge(5 + 3 + codec::MAX_VARINT),
    );
}

#[test]
fn enc_err_field_too_long() {
    let long = "a".repeat(65_536);
    assert_encode_err(
        Packet::Connect(Box::new(Connect::new(V311, long, 0))),
        V311,
        EncodeError::FieldTooLong(65_536),
    );
}

#[test]
fn enc_err_not_in_protocol() {
    assert_encode_err(
        Packet::Auth(Auth::default()),
        V311,
        EncodeError::NotInProtocol(PacketType::Auth),
    );
}

#[test]
fn enc_err_invalid_combinations() {
    let qos1 = Publish::new("t", Bytes::new(), QoS::AtLeastOnce);
    assert!(matches!(
        Packet::Publish(qos1.clone()).encoded_len(V311),
        Err(EncodeError::Invalid(_))
    ));
    let mut qos0 = Publish::new("t", Bytes::new(), QoS::AtMostOnce);
    qos0.packet_id = Some(1);
    assert!(matches!(
        Packet::Publish(qos0).encoded_len(V311),
        Err(EncodeError::Invalid(_))
    ));
    let mut dup0 = Publish::new("t", Bytes::new(), QoS::AtMostOnce);
    dup0.dup = true;
    assert!(matches!(
        Packet::Publish(dup0).encoded_len(V311),
        Err(EncodeError::Invalid(_))
    ));
    let mut connect = Connect::new(V311, "c", 0);
    connect.password = Some(Bytes::from_static(b"p"));
    assert!(matches!(
        Packet::Connect(Box::new(connect)).encoded_len(V5),
        Err(EncodeError::Invalid(_))
    ));
    let refused = ConnAck::new(true, ReasonCode::NOT_AUTHORIZED);
    assert!(matches!(
        Packet::ConnAck(refused).encoded_len(V5),
        Err(EncodeError::Invalid(_))
    ));
    let mut sub = Subscribe::new(1, vec![Subscription::new("a", QoS::AtMostOnce)]);
    sub.properties.subscription_identifiers = vec![1, 2];
    assert!(matches!(
        Packet::Subscribe(sub).encoded_len(V5),
        Err(EncodeError::Invalid(_))
    ));
}

#[test]
fn enc_err_nul_character() {
    assert_encode_err(
        Packet::Connect(Box::new(Connect::new(V5, "a\0", 0))),
        V5,
        EncodeError::NulCharacter,
    );
    let mut ack = Ack::with_reason(1, ReasonCode::UNSPECIFIED_ERROR);
    ack.properties.reason_string = Some("\0".into());
    assert_encode_err(Packet::PubAck(ack), V5, EncodeError::NulCharacter);
}

#[test]
fn enc_err_zero_packet_id() {
    let mut publish = Publish::new("t", Bytes::new(), QoS::AtLeastOnce);
    publish.packet_id = Some(0);
    assert_encode_err(Packet::Publish(publish), V311, EncodeError::ZeroPacketId);
    assert_encode_err(Packet::PubAck(Ack::new(0)), V5, EncodeError::ZeroPacketId);
    assert_encode_err(
        Packet::UnsubAck(UnsubAck::new(0, vec![])),
        V311,
        EncodeError::ZeroPacketId,
    );
}

#[test]
fn enc_err_invalid_topics() {
    assert_encode_err(
        Packet::Publish(Publish::new("a/#", Bytes::new(), QoS::AtMostOnce)),
        V5,
        EncodeError::InvalidTopicName(TopicError::WildcardInName),
    );
    // Publish's own encode and encoded_len check as Packet's do, and write
    // nothing on an error.
    let nul = Publish::new("a\0b", Bytes::new(), QoS::AtMostOnce);
    let invalid = EncodeError::InvalidTopicName(TopicError::NulCharacter);
    let mut out = BytesMut::from(&b"kept"[..]);
    assert_eq!(nul.encode(V311, &mut out), Err(invalid.clone()));
    assert_eq!(&out[..], b"kept");
    assert_eq!(nul.encoded_len(V5), Err(invalid));
    assert_encode_err(
        Packet::Subscribe(Subscribe::new(
            1,
            vec![Subscription::new("a+", QoS::AtMostOnce)],
        )),
        V5,
        EncodeError::InvalidTopicFilter(TopicError::MisplacedWildcard('+')),
    );
    assert_encode_err(
        Packet::Unsubscribe(Unsubscribe::new(1, vec![String::new()])),
        V311,
        EncodeError::InvalidTopicFilter(TopicError::Empty),
    );
}

#[test]
fn enc_err_empty_lists() {
    assert_encode_err(
        Packet::Subscribe(Subscribe::new(1, vec![])),
        V311,
        EncodeError::NoTopicFilters {
            packet_type: PacketType::Subscribe,
        },
    );
    assert_encode_err(
        Packet::Unsubscribe(Unsubscribe::new(1, vec![])),
        V5,
        EncodeError::NoTopicFilters {
            packet_type: PacketType::Unsubscribe,
        },
    );
    assert_encode_err(
        Packet::SubAck(SubAck::new(1, vec![])),
        V311,
        EncodeError::NoReasonCodes {
            packet_type: PacketType::SubAck,
        },
    );
    assert_encode_err(
        Packet::UnsubAck(UnsubAck::new(1, vec![])),
        V5,
        EncodeError::NoReasonCodes {
            packet_type: PacketType::UnsubAck,
        },
    );
}

#[test]
fn enc_err_invalid_reason_code() {
    assert_encode_err(
        Packet::PubComp(Ack::with_reason(1, ReasonCode::NOT_AUTHORIZED)),
        V5,
        EncodeError::InvalidReasonCode {
            packet_type: PacketType::PubComp,
            code: 0x87,
        },
    );
    assert_encode_err(
        Packet::SubAck(SubAck::new(1, vec![ReasonCode::NO_SUBSCRIPTION_EXISTED])),
        V311,
        EncodeError::InvalidReasonCode {
            packet_type: PacketType::SubAck,
            code: 0x11,
        },
    );
    assert_encode_err(
        Packet::ConnAck(ConnAck::new(false, ReasonCode::GRANTED_QOS_1)),
        V311,
        EncodeError::InvalidReasonCode {
            packet_type: PacketType::ConnAck,
            code: 0x01,
        },
    );
}

#[test]
fn enc_err_property_not_allowed_and_invalid_value() {
    let mut ack = Ack::new(1);
    ack.properties.topic_alias = Some(3);
    assert_encode_err(
        Packet::PubAck(ack),
        V5,
        EncodeError::PropertyNotAllowed {
            packet_type: PacketType::PubAck,
            property: 0x23,
        },
    );
    let mut connect = Connect::new(V5, "c", 0);
    connect.properties.receive_maximum = Some(0);
    assert_encode_err(
        Packet::Connect(Box::new(connect)),
        V5,
        EncodeError::InvalidPropertyValue(0x21),
    );
    // Ignored, not refused, on MQTT 3.1.1.
    let mut connect = Connect::new(V311, "c", 0);
    connect.properties.receive_maximum = Some(0);
    assert!(Packet::Connect(Box::new(connect)).encoded_len(V311).is_ok());
}

#[test]
fn a_publish_keeps_its_properties_out_of_line_and_shares_its_topic() {
    // A PUBLISH is queued and moved on every delivery: its properties (over
    // 300 bytes inline) are boxed, and only when set; its topic is a shared
    // `TopicName` (16 bytes; a `String` would make a Publish 72).
    assert!(
        std::mem::size_of::<Publish>() <= 64,
        "Publish is {} bytes",
        std::mem::size_of::<Publish>()
    );
    assert!(std::mem::size_of::<Properties>() > 200);
}

#[test]
fn packets_and_session_events_are_small() {
    // Every packet decoded or sent is moved through queues: the property sets
    // (over 300 bytes each inline) are boxed when set, CONNECT always.
    let sizes = [
        ("Packet", std::mem::size_of::<Packet>()),
        ("Ack", std::mem::size_of::<Ack>()),
        ("Subscribe", std::mem::size_of::<Subscribe>()),
        ("server Event", std::mem::size_of::<crate::server::Event>()),
        ("client Event", std::mem::size_of::<crate::client::Event>()),
    ];
    for (name, size) in sizes {
        assert!(size <= 96, "{name} is {size} bytes");
    }
}
