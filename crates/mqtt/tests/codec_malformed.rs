//! One test per [`DecodeError`] variant: malformed input is refused with the
//! error that names what is wrong, and never panics.

use bytes::BytesMut;
use iotcore_mqtt::packet::{MAX_PACKET_SIZE, PacketType, decode};
use iotcore_mqtt::topic::TopicError;
use iotcore_mqtt::{DecodeError, ProtocolVersion, ReasonCode};

use ProtocolVersion::{V5, V311};

/// A whole packet: `first` byte, remaining length (variable byte integer),
/// `body`.
fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut len = body.len();
    loop {
        let byte = (len % 128) as u8;
        len /= 128;
        out.push(if len > 0 { byte | 0x80 } else { byte });
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
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

#[track_caller]
fn assert_decode_err(bytes: &[u8], version: ProtocolVersion, err: DecodeError) {
    let mut buf = BytesMut::from(bytes);
    assert_eq!(decode(&mut buf, version, MAX_PACKET_SIZE), Err(err));
}

#[test]
fn err_malformed_remaining_length() {
    assert_decode_err(
        &[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
        V311,
        DecodeError::MalformedRemainingLength,
    );
}

#[test]
fn err_malformed_var_int_in_property_length() {
    let body = cat(&[&s("t"), &[0xFF, 0xFF, 0xFF, 0xFF, 0x7F]]);
    assert_decode_err(&frame(0x30, &body), V5, DecodeError::MalformedVarInt);
}

#[test]
fn err_packet_too_large_before_the_body_arrives() {
    // Remaining length 16,383: only the 3-byte fixed header is here.
    let mut buf = BytesMut::from(&[0x30, 0xFF, 0x7F][..]);
    assert_eq!(
        decode(&mut buf, V311, 1000),
        Err(DecodeError::PacketTooLarge {
            size: 16_386,
            max: 1000
        })
    );
    assert_eq!(buf.len(), 3, "nothing consumed");
}

#[test]
fn err_invalid_packet_type() {
    assert_decode_err(&[0x00, 0], V5, DecodeError::InvalidPacketType(0));
    assert_decode_err(&[0xF0, 0], V311, DecodeError::InvalidPacketType(15));
}

#[test]
fn err_invalid_flags() {
    let bad = |packet_type, flags| DecodeError::InvalidFlags { packet_type, flags };
    assert_decode_err(&[0x41, 2, 0, 1], V311, bad(PacketType::PubAck, 1));
    assert_decode_err(&[0x60, 2, 0, 1], V311, bad(PacketType::PubRel, 0));
    assert_decode_err(&[0x80, 0], V311, bad(PacketType::Subscribe, 0));
    assert_decode_err(&[0xA3, 0], V5, bad(PacketType::Unsubscribe, 3));
    assert_decode_err(&[0xC8, 0], V5, bad(PacketType::PingReq, 8));
    // DUP on a QoS 0 PUBLISH.
    assert_decode_err(&[0x38, 3, 0, 1, b't'], V311, bad(PacketType::Publish, 8));
}

#[test]
fn err_truncated() {
    assert_decode_err(
        &[0x40, 1, 0],
        V311,
        DecodeError::Truncated {
            packet_type: PacketType::PubAck,
        },
    );
    // A string length running past the end.
    assert_decode_err(
        &[0x30, 3, 0, 5, b't'],
        V311,
        DecodeError::Truncated {
            packet_type: PacketType::Publish,
        },
    );
    // A property length running past the end.
    assert_decode_err(
        &[0xE0, 2, 0x00, 9],
        V5,
        DecodeError::Truncated {
            packet_type: PacketType::Disconnect,
        },
    );
}

#[test]
fn err_trailing_bytes() {
    let trailing = |packet_type, extra| DecodeError::TrailingBytes { packet_type, extra };
    assert_decode_err(&[0xC0, 1, 0], V311, trailing(PacketType::PingReq, 1));
    assert_decode_err(&[0x40, 3, 0, 1, 0], V311, trailing(PacketType::PubAck, 1));
    assert_decode_err(&[0xE0, 1, 0], V311, trailing(PacketType::Disconnect, 1));
    assert_decode_err(&[0x20, 3, 0, 0, 0], V311, trailing(PacketType::ConnAck, 1));
    assert_decode_err(&[0xB0, 3, 0, 1, 0], V311, trailing(PacketType::UnsubAck, 1));
    let connect = cat(&[&s("MQTT"), &[4, 2, 0, 0], &s("c"), &[0]]);
    assert_decode_err(
        &frame(0x10, &connect),
        V311,
        trailing(PacketType::Connect, 1),
    );
}

#[test]
fn err_invalid_utf8_or_nul() {
    assert_decode_err(&[0x30, 3, 0, 1, 0xFF], V311, DecodeError::InvalidUtf8);
    assert_decode_err(&[0x30, 4, 0, 2, b'a', 0], V311, DecodeError::InvalidUtf8);
    let connect = cat(&[&s("MQTT"), &[4, 2, 0, 0], &[0, 2, 0xC3, 0x28]]);
    assert_decode_err(&frame(0x10, &connect), V311, DecodeError::InvalidUtf8);
}

#[test]
fn err_invalid_protocol_name() {
    let connect = cat(&[&s("MQTX"), &[4, 2, 0, 0], &s("c")]);
    assert_decode_err(
        &frame(0x10, &connect),
        V311,
        DecodeError::InvalidProtocolName,
    );
}

#[test]
fn err_unsupported_protocol_version() {
    let connect = cat(&[&s("MQTT"), &[6, 2, 0, 0], &s("c")]);
    assert_decode_err(
        &frame(0x10, &connect),
        V311,
        DecodeError::UnsupportedProtocolVersion(6),
    );
    // MQTT 3.1 is reported as an unsupported level, so a server can answer
    // CONNACK 0x01.
    let connect = cat(&[&s("MQIsdp"), &[3, 2, 0, 0], &s("c")]);
    assert_decode_err(
        &frame(0x10, &connect),
        V311,
        DecodeError::UnsupportedProtocolVersion(3),
    );
}

#[test]
fn err_invalid_connect_flags() {
    for flags in [
        0x03, // reserved bit
        0x0A, // will QoS 1 without will flag
        0x22, // will retain without will flag
        0x42, // password without user name in 3.1.1
    ] {
        let connect = cat(&[&s("MQTT"), &[4, flags, 0, 0], &s("c"), &s("p")]);
        assert_decode_err(
            &frame(0x10, &connect),
            V311,
            DecodeError::InvalidConnectFlags(flags),
        );
    }
}

#[test]
fn err_invalid_qos() {
    assert_decode_err(
        &[0x36, 5, 0, 1, b't', 0, 1],
        V311,
        DecodeError::InvalidQoS(3),
    );
    let connect = cat(&[&s("MQTT"), &[4, 0x1E, 0, 0], &s("c"), &s("t"), &s("w")]);
    assert_decode_err(&frame(0x10, &connect), V311, DecodeError::InvalidQoS(3));
    let sub = cat(&[&[0, 1], &s("a"), &[3]]);
    assert_decode_err(&frame(0x82, &sub), V311, DecodeError::InvalidQoS(3));
}

#[test]
fn err_zero_packet_id() {
    assert_decode_err(
        &[0x32, 5, 0, 1, b't', 0, 0],
        V311,
        DecodeError::ZeroPacketId,
    );
    assert_decode_err(&[0x40, 2, 0, 0], V5, DecodeError::ZeroPacketId);
    assert_decode_err(
        &frame(0x82, &cat(&[&[0, 0], &s("a"), &[0]])),
        V311,
        DecodeError::ZeroPacketId,
    );
    assert_decode_err(&[0x90, 3, 0, 0, 0], V311, DecodeError::ZeroPacketId);
}

#[test]
fn err_invalid_topic_name() {
    assert_decode_err(
        &frame(0x30, &s("a/+")),
        V311,
        DecodeError::InvalidTopicName(TopicError::WildcardInName),
    );
    assert_decode_err(
        &frame(0x30, &s("")),
        V311,
        DecodeError::InvalidTopicName(TopicError::Empty),
    );
    // MQTT 5: an empty topic needs a topic alias.
    assert_decode_err(
        &frame(0x30, &cat(&[&s(""), &[0]])),
        V5,
        DecodeError::InvalidTopicName(TopicError::Empty),
    );
    let connect = cat(&[&s("MQTT"), &[4, 0x06, 0, 0], &s("c"), &s("#"), &s("w")]);
    assert_decode_err(
        &frame(0x10, &connect),
        V311,
        DecodeError::InvalidTopicName(TopicError::WildcardInName),
    );
}

#[test]
fn err_invalid_topic_filter() {
    assert_decode_err(
        &frame(0x82, &cat(&[&[0, 1], &s("a#"), &[0]])),
        V311,
        DecodeError::InvalidTopicFilter(TopicError::MisplacedWildcard('#')),
    );
    assert_decode_err(
        &frame(0xA2, &cat(&[&[0, 1], &s("a/#/b")])),
        V311,
        DecodeError::InvalidTopicFilter(TopicError::MisplacedWildcard('#')),
    );
}

#[test]
fn err_no_topic_filters() {
    assert_decode_err(
        &[0x82, 2, 0, 1],
        V311,
        DecodeError::NoTopicFilters {
            packet_type: PacketType::Subscribe,
        },
    );
    assert_decode_err(
        &[0xA2, 3, 0, 1, 0],
        V5,
        DecodeError::NoTopicFilters {
            packet_type: PacketType::Unsubscribe,
        },
    );
}

#[test]
fn err_invalid_subscription_options() {
    let sub = |opts: u8| frame(0x82, &cat(&[&[0, 1, 0], &s("a"), &[opts]]));
    assert_decode_err(
        &sub(0x40),
        V5,
        DecodeError::InvalidSubscriptionOptions(0x40),
    );
    assert_decode_err(
        &sub(0x30),
        V5,
        DecodeError::InvalidSubscriptionOptions(0x30),
    );
    let sub311 = frame(0x82, &cat(&[&[0, 1], &s("a"), &[0x04]]));
    assert_decode_err(&sub311, V311, DecodeError::InvalidSubscriptionOptions(0x04));
}

#[test]
fn err_invalid_reason_code() {
    let bad = |packet_type, code| DecodeError::InvalidReasonCode { packet_type, code };
    assert_decode_err(&[0x40, 3, 0, 1, 0x92], V5, bad(PacketType::PubAck, 0x92));
    assert_decode_err(&[0x62, 3, 0, 1, 0x10], V5, bad(PacketType::PubRel, 0x10));
    assert_decode_err(&[0x20, 2, 0, 6], V311, bad(PacketType::ConnAck, 6));
    assert_decode_err(&[0x20, 3, 0, 0x01, 0], V5, bad(PacketType::ConnAck, 0x01));
    assert_decode_err(&[0x90, 3, 0, 1, 0x87], V311, bad(PacketType::SubAck, 0x87));
    assert_decode_err(&[0x90, 4, 0, 1, 0, 0x03], V5, bad(PacketType::SubAck, 0x03));
    assert_decode_err(
        &[0xB0, 4, 0, 1, 0, 0x01],
        V5,
        bad(PacketType::UnsubAck, 0x01),
    );
    assert_decode_err(&[0xE0, 1, 0x10], V5, bad(PacketType::Disconnect, 0x10));
    assert_decode_err(&[0xF0, 1, 0x87], V5, bad(PacketType::Auth, 0x87));
}

#[test]
fn err_unknown_property() {
    assert_decode_err(
        &[0x40, 6, 0, 1, 0, 2, 0x05, 0],
        V5,
        DecodeError::UnknownProperty(0x05),
    );
    assert_decode_err(
        &[0x40, 5, 0, 1, 0, 1, 0x80],
        V5,
        DecodeError::UnknownProperty(0x80),
    );
}

#[test]
fn err_property_not_allowed() {
    assert_decode_err(
        &[0x40, 7, 0, 1, 0, 3, 0x23, 0, 1],
        V5,
        DecodeError::PropertyNotAllowed {
            packet_type: PacketType::PubAck,
            property: 0x23,
        },
    );
    // Session expiry belongs to CONNECT, not to its will.
    let connect = cat(&[
        &s("MQTT"),
        &[5, 0x06, 0, 0, 0],
        &s("c"),
        &[5, 0x11, 0, 0, 0, 1],
        &s("t"),
        &s("w"),
    ]);
    assert_decode_err(
        &frame(0x10, &connect),
        V5,
        DecodeError::PropertyNotAllowed {
            packet_type: PacketType::Connect,
            property: 0x11,
        },
    );
}

#[test]
fn err_duplicate_property() {
    let publish = cat(&[&s("t"), &[4, 0x01, 0, 0x01, 1]]);
    assert_decode_err(
        &frame(0x30, &publish),
        V5,
        DecodeError::DuplicateProperty(0x01),
    );
    // SUBSCRIBE carries at most one subscription identifier.
    let sub = cat(&[&[0, 1, 4, 0x0B, 1, 0x0B, 2], &s("a"), &[0]]);
    assert_decode_err(&frame(0x82, &sub), V5, DecodeError::DuplicateProperty(0x0B));
}

#[test]
fn err_invalid_property_value() {
    let publish = |props: &[u8]| frame(0x30, &cat(&[&s("t"), &[props.len() as u8], props]));
    assert_decode_err(
        &publish(&[0x01, 2]),
        V5,
        DecodeError::InvalidPropertyValue(0x01),
    );
    assert_decode_err(
        &publish(&[0x23, 0, 0]),
        V5,
        DecodeError::InvalidPropertyValue(0x23),
    );
    assert_decode_err(
        &publish(&[0x0B, 0]),
        V5,
        DecodeError::InvalidPropertyValue(0x0B),
    );
    assert_decode_err(
        &publish(&cat(&[&[0x08], &s("a/#")])),
        V5,
        DecodeError::InvalidPropertyValue(0x08),
    );
    let connect = |props: &[u8]| {
        frame(
            0x10,
            &cat(&[&s("MQTT"), &[5, 2, 0, 0, props.len() as u8], props, &s("c")]),
        )
    };
    assert_decode_err(
        &connect(&[0x21, 0, 0]),
        V5,
        DecodeError::InvalidPropertyValue(0x21),
    );
    assert_decode_err(
        &connect(&[0x27, 0, 0, 0, 0]),
        V5,
        DecodeError::InvalidPropertyValue(0x27),
    );
    assert_decode_err(
        &connect(&cat(&[&[0x16], &s("x")])),
        V5,
        DecodeError::InvalidPropertyValue(0x16),
    );
}

#[test]
fn err_invalid_connack_flags() {
    assert_decode_err(
        &[0x20, 2, 0x02, 0],
        V311,
        DecodeError::InvalidConnAckFlags { flags: 2, code: 0 },
    );
    assert_decode_err(
        &[0x20, 2, 0x01, 5],
        V311,
        DecodeError::InvalidConnAckFlags { flags: 1, code: 5 },
    );
    assert_decode_err(
        &[0x20, 3, 0x01, 0x87, 0],
        V5,
        DecodeError::InvalidConnAckFlags {
            flags: 1,
            code: 0x87,
        },
    );
}

#[test]
fn err_no_reason_codes() {
    assert_decode_err(
        &[0x90, 2, 0, 1],
        V311,
        DecodeError::NoReasonCodes {
            packet_type: PacketType::SubAck,
        },
    );
    assert_decode_err(
        &[0xB0, 3, 0, 1, 0],
        V5,
        DecodeError::NoReasonCodes {
            packet_type: PacketType::UnsubAck,
        },
    );
}

#[test]
fn decode_errors_map_to_disconnect_reason_codes() {
    assert_eq!(
        DecodeError::PacketTooLarge { size: 2, max: 1 }.reason_code(),
        ReasonCode::PACKET_TOO_LARGE
    );
    assert_eq!(
        DecodeError::InvalidTopicName(TopicError::Empty).reason_code(),
        ReasonCode::TOPIC_NAME_INVALID
    );
    assert_eq!(
        DecodeError::InvalidTopicFilter(TopicError::Empty).reason_code(),
        ReasonCode::TOPIC_FILTER_INVALID
    );
    assert_eq!(
        DecodeError::DuplicateProperty(0x01).reason_code(),
        ReasonCode::PROTOCOL_ERROR
    );
    assert_eq!(
        DecodeError::InvalidPropertyValue(0x21).reason_code(),
        ReasonCode::PROTOCOL_ERROR
    );
    assert_eq!(
        DecodeError::InvalidPacketType(15).reason_code(),
        ReasonCode::PROTOCOL_ERROR
    );
    assert_eq!(
        DecodeError::InvalidUtf8.reason_code(),
        ReasonCode::MALFORMED_PACKET
    );
}

#[test]
fn err_a_fixed_header_error_consumes_nothing() {
    let mut buf = BytesMut::from(&[0x41, 2, 0, 1][..]);
    assert!(decode(&mut buf, V311, MAX_PACKET_SIZE).is_err());
    assert_eq!(buf.len(), 4);
}
