//! Property tests of the codec: every valid packet of every type survives
//! encode → decode in both versions, a packet split at any byte boundary
//! decodes like the whole, and no input makes the decoder panic.

use bytes::{Bytes, BytesMut};
use iotcore_mqtt::packet::{
    Ack, Auth, ConnAck, Connect, Disconnect, MAX_PACKET_SIZE, PacketType, Publish, RetainHandling,
    SubAck, Subscribe, Subscription, SubscriptionOptions, UnsubAck, Unsubscribe, Will, decode,
};
use iotcore_mqtt::topic::TopicName;
use iotcore_mqtt::{Packet, Properties, ProtocolVersion, QoS, ReasonCode};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::{BoxedStrategy, Union};

use ProtocolVersion::{V5, V311};

// ---------------------------------------------------------------- values

fn version() -> impl Strategy<Value = ProtocolVersion> {
    prop_oneof![Just(V311), Just(V5)]
}

/// Any string MQTT can carry (no U+0000), short.
fn text() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,12}"
}

fn binary(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn level() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_ é$-]{0,6}"
}

fn topic_name() -> impl Strategy<Value = String> {
    vec(level(), 1..6)
        .prop_map(|levels| levels.join("/"))
        .prop_filter("topic names are not empty", |t| !t.is_empty())
}

fn topic_filter() -> impl Strategy<Value = String> {
    let level = prop_oneof![3 => level(), 1 => Just("+".to_string())];
    (vec(level, 1..6), any::<bool>())
        .prop_map(|(mut levels, hash)| {
            if hash {
                levels.push("#".into());
            }
            levels.join("/")
        })
        .prop_filter("topic filters are not empty", |t| !t.is_empty())
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn packet_id() -> impl Strategy<Value = u16> {
    1u16..
}

/// A reason code MQTT 5 allows in `packet_type`.
fn reason(packet_type: PacketType) -> impl Strategy<Value = ReasonCode> {
    let valid: Vec<ReasonCode> = (0..=255u8)
        .map(ReasonCode)
        .filter(|r| r.is_valid_for(packet_type))
        .collect();
    select(valid)
}

// ---------------------------------------------------------------- properties

fn some<T: std::fmt::Debug>(s: impl Strategy<Value = T>) -> impl Strategy<Value = Option<T>> {
    option::weighted(0.25, s)
}

/// Every property with a valid value, before [`restrict`] keeps those
/// allowed in one place.
fn any_properties() -> impl Strategy<Value = Properties> {
    let flag = || some(0u8..=1);
    let a = (
        flag(),
        some(any::<u32>()),
        some(text()),
        some(topic_name()),
        some(binary(8)),
        vec(1u32..=268_435_455, 0..3),
        some(any::<u32>()),
        some(text()),
        some(any::<u16>()),
        some(text()),
        some(binary(8)),
        flag(),
    );
    let b = (
        some(any::<u32>()),
        flag(),
        some(text()),
        some(text()),
        some(text()),
        some(1u16..),
        some(any::<u16>()),
        some(1u16..),
        flag(),
        flag(),
        vec((text(), text()), 0..3),
        some(1u32..),
    );
    let c = (flag(), flag(), flag());
    (a, b, c).prop_map(|(a, b, c)| Properties {
        payload_format_indicator: a.0,
        message_expiry_interval: a.1,
        content_type: a.2,
        response_topic: a.3,
        correlation_data: a.4,
        subscription_identifiers: a.5,
        session_expiry_interval: a.6,
        assigned_client_identifier: a.7,
        server_keep_alive: a.8,
        authentication_method: a.9,
        authentication_data: a.10,
        request_problem_information: a.11,
        will_delay_interval: b.0,
        request_response_information: b.1,
        response_information: b.2,
        server_reference: b.3,
        reason_string: b.4,
        receive_maximum: b.5,
        topic_alias_maximum: b.6,
        topic_alias: b.7,
        maximum_qos: b.8,
        retain_available: b.9,
        user_properties: b.10,
        maximum_packet_size: b.11,
        wildcard_subscription_available: c.0,
        subscription_identifier_available: c.1,
        shared_subscription_available: c.2,
    })
}

/// Where properties go, with the identifiers MQTT 5.0 allows there
/// (specification table 2.2.2.2, written out independently of the crate).
#[derive(Clone, Copy)]
enum Place {
    Connect,
    Will,
    ConnAck,
    Publish,
    /// PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK.
    Ack,
    Subscribe,
    Unsubscribe,
    Disconnect,
    Auth,
}

impl Place {
    fn allowed(self) -> &'static [u8] {
        match self {
            Place::Connect => &[0x11, 0x15, 0x16, 0x17, 0x19, 0x21, 0x22, 0x26, 0x27],
            Place::Will => &[0x01, 0x02, 0x03, 0x08, 0x09, 0x18, 0x26],
            Place::ConnAck => &[
                0x11, 0x12, 0x13, 0x15, 0x16, 0x1A, 0x1C, 0x1F, 0x21, 0x22, 0x24, 0x25, 0x26, 0x27,
                0x28, 0x29, 0x2A,
            ],
            Place::Publish => &[0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x23, 0x26],
            Place::Ack => &[0x1F, 0x26],
            Place::Subscribe => &[0x0B, 0x26],
            Place::Unsubscribe => &[0x26],
            Place::Disconnect => &[0x11, 0x1C, 0x1F, 0x26],
            Place::Auth => &[0x15, 0x16, 0x1F, 0x26],
        }
    }
}

/// Clears every property not allowed in `place`.
fn restrict(mut p: Properties, place: Place) -> Properties {
    let allowed = place.allowed();
    let keep = |id: u8| allowed.contains(&id);
    macro_rules! clear_unless_allowed {
        ($($id:literal $field:ident),* $(,)?) => {
            $(if !keep($id) { p.$field = Default::default(); })*
        };
    }
    clear_unless_allowed!(
        0x01 payload_format_indicator, 0x02 message_expiry_interval, 0x03 content_type,
        0x08 response_topic, 0x09 correlation_data, 0x0B subscription_identifiers,
        0x11 session_expiry_interval, 0x12 assigned_client_identifier, 0x13 server_keep_alive,
        0x15 authentication_method, 0x16 authentication_data, 0x17 request_problem_information,
        0x18 will_delay_interval, 0x19 request_response_information, 0x1A response_information,
        0x1C server_reference, 0x1F reason_string, 0x21 receive_maximum,
        0x22 topic_alias_maximum, 0x23 topic_alias, 0x24 maximum_qos, 0x25 retain_available,
        0x26 user_properties, 0x27 maximum_packet_size, 0x28 wildcard_subscription_available,
        0x29 subscription_identifier_available, 0x2A shared_subscription_available,
    );
    if !matches!(place, Place::Publish) {
        p.subscription_identifiers.truncate(1);
    }
    if p.authentication_method.is_none() {
        p.authentication_data = None;
    }
    p
}

/// Properties for `place`: none at all on MQTT 3.1.1.
fn properties(v: ProtocolVersion, place: Place) -> BoxedStrategy<Properties> {
    match v {
        V311 => Just(Properties::default()).boxed(),
        V5 => any_properties()
            .prop_map(move |p| restrict(p, place))
            .boxed(),
    }
}

// ---------------------------------------------------------------- packets

fn connect(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let will = (
        topic_name(),
        binary(16),
        qos(),
        any::<bool>(),
        properties(v, Place::Will),
    )
        .prop_map(|(topic, payload, qos, retain, properties)| Will {
            topic,
            payload,
            qos,
            retain,
            properties: properties.into(),
        });
    (
        any::<bool>(),
        any::<u16>(),
        text(),
        some(text()),
        some(binary(8)),
        some(will),
        properties(v, Place::Connect),
    )
        .prop_map(
            move |(
                clean_start,
                keep_alive,
                client_id,
                username,
                mut password,
                will,
                properties,
            )| {
                if v == V311 && username.is_none() {
                    // MQTT 3.1.1 has no password without a user name.
                    password = None;
                }
                Packet::Connect(Box::new(Connect {
                    protocol: v,
                    clean_start,
                    keep_alive,
                    client_id,
                    username,
                    password,
                    will,
                    properties: properties.into(),
                }))
            },
        )
        .boxed()
}

fn connack(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let reason = match v {
        V311 => select(vec![
            ReasonCode::SUCCESS,
            ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
            ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
            ReasonCode::SERVER_UNAVAILABLE,
            ReasonCode::BAD_USER_NAME_OR_PASSWORD,
            ReasonCode::NOT_AUTHORIZED,
        ])
        .boxed(),
        V5 => reason(PacketType::ConnAck).boxed(),
    };
    (any::<bool>(), reason, properties(v, Place::ConnAck))
        .prop_map(|(session_present, reason, properties)| {
            Packet::ConnAck(ConnAck {
                // Only a successful CONNACK may report a stored session.
                session_present: session_present && !reason.is_error(),
                reason,
                properties: properties.into(),
            })
        })
        .boxed()
}

fn publish(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    (
        any::<bool>(),
        qos(),
        any::<bool>(),
        topic_name(),
        packet_id(),
        binary(64),
        properties(v, Place::Publish),
        any::<bool>(),
    )
        .prop_map(
            move |(dup, qos, retain, topic, id, payload, properties, use_alias)| {
                let aliased = v == V5 && use_alias && properties.topic_alias.is_some();
                Packet::Publish(Publish {
                    dup: dup && qos != QoS::AtMostOnce,
                    qos,
                    retain,
                    // MQTT 5: the topic may be left out when an alias stands for it.
                    topic: if aliased {
                        TopicName::default()
                    } else {
                        topic.into()
                    },
                    packet_id: (qos != QoS::AtMostOnce).then_some(id),
                    payload,
                    properties: properties.into(),
                })
            },
        )
        .boxed()
}

fn ack(v: ProtocolVersion, packet_type: PacketType) -> BoxedStrategy<Packet> {
    let make = match packet_type {
        PacketType::PubAck => Packet::PubAck,
        PacketType::PubRec => Packet::PubRec,
        PacketType::PubRel => Packet::PubRel,
        _ => Packet::PubComp,
    };
    let reason = match v {
        V311 => Just(ReasonCode::SUCCESS).boxed(),
        V5 => reason(packet_type).boxed(),
    };
    (packet_id(), reason, properties(v, Place::Ack))
        .prop_map(move |(packet_id, reason, properties)| {
            make(Ack {
                packet_id,
                reason,
                properties: properties.into(),
            })
        })
        .boxed()
}

fn subscribe(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let options = (
        qos(),
        any::<bool>(),
        any::<bool>(),
        select(vec![
            RetainHandling::OnSubscribe,
            RetainHandling::OnNewSubscribe,
            RetainHandling::Never,
        ]),
    )
        .prop_map(move |(qos, no_local, rap, retain_handling)| match v {
            V311 => SubscriptionOptions {
                qos,
                ..SubscriptionOptions::default()
            },
            V5 => SubscriptionOptions {
                qos,
                no_local,
                retain_as_published: rap,
                retain_handling,
            },
        });
    let subscription =
        (topic_filter(), options).prop_map(|(filter, options)| Subscription { filter, options });
    (
        packet_id(),
        vec(subscription, 1..4),
        properties(v, Place::Subscribe),
    )
        .prop_map(|(packet_id, subscriptions, properties)| {
            Packet::Subscribe(Subscribe {
                packet_id,
                subscriptions,
                properties: properties.into(),
            })
        })
        .boxed()
}

fn suback(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let code = match v {
        V311 => select(vec![
            ReasonCode(0x00),
            ReasonCode(0x01),
            ReasonCode(0x02),
            ReasonCode(0x80),
        ])
        .boxed(),
        V5 => reason(PacketType::SubAck).boxed(),
    };
    (packet_id(), vec(code, 1..4), properties(v, Place::Ack))
        .prop_map(|(packet_id, reasons, properties)| {
            Packet::SubAck(SubAck {
                packet_id,
                reasons,
                properties: properties.into(),
            })
        })
        .boxed()
}

fn unsubscribe(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    (
        packet_id(),
        vec(topic_filter(), 1..4),
        properties(v, Place::Unsubscribe),
    )
        .prop_map(|(packet_id, filters, properties)| {
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                filters,
                properties: properties.into(),
            })
        })
        .boxed()
}

fn unsuback(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let reasons = match v {
        V311 => Just(Vec::new()).boxed(),
        V5 => vec(reason(PacketType::UnsubAck), 1..4).boxed(),
    };
    (packet_id(), reasons, properties(v, Place::Ack))
        .prop_map(|(packet_id, reasons, properties)| {
            Packet::UnsubAck(UnsubAck {
                packet_id,
                reasons,
                properties: properties.into(),
            })
        })
        .boxed()
}

fn disconnect(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let reason = match v {
        V311 => Just(ReasonCode::SUCCESS).boxed(),
        V5 => reason(PacketType::Disconnect).boxed(),
    };
    (reason, properties(v, Place::Disconnect))
        .prop_map(|(reason, properties)| {
            Packet::Disconnect(Disconnect {
                reason,
                properties: properties.into(),
            })
        })
        .boxed()
}

fn auth() -> BoxedStrategy<Packet> {
    (reason(PacketType::Auth), properties(V5, Place::Auth))
        .prop_map(|(reason, properties)| {
            Packet::Auth(Auth {
                reason,
                properties: properties.into(),
            })
        })
        .boxed()
}

/// Any packet `v` can carry.
fn packet(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let mut all = vec![
        connect(v),
        connack(v),
        publish(v),
        ack(v, PacketType::PubAck),
        ack(v, PacketType::PubRec),
        ack(v, PacketType::PubRel),
        ack(v, PacketType::PubComp),
        subscribe(v),
        suback(v),
        unsubscribe(v),
        unsuback(v),
        Just(Packet::PingReq).boxed(),
        Just(Packet::PingResp).boxed(),
        disconnect(v),
    ];
    if v == V5 {
        all.push(auth());
    }
    Union::new(all).boxed()
}

fn versioned(
    make: impl Fn(ProtocolVersion) -> BoxedStrategy<Packet>,
) -> impl Strategy<Value = (ProtocolVersion, Packet)> {
    version().prop_flat_map(move |v| (Just(v), make(v)))
}

// ---------------------------------------------------------------- checks

fn encode(packet: &Packet, v: ProtocolVersion) -> BytesMut {
    let mut buf = BytesMut::new();
    packet.encode(v, &mut buf).expect("a valid packet encodes");
    buf
}

/// encode → decode gives the packet back, consuming exactly its bytes, and
/// `encoded_len` predicts the size.
fn check_round_trip(v: ProtocolVersion, packet: &Packet) -> Result<(), TestCaseError> {
    let mut buf = encode(packet, v);
    prop_assert_eq!(packet.encoded_len(v), Ok(buf.len()));
    buf.extend_from_slice(&[0xC0, 0x00]); // a PINGREQ behind it stays put
    let decoded = decode(&mut buf, v, MAX_PACKET_SIZE);
    prop_assert_eq!(decoded, Ok(Some(packet.clone())));
    prop_assert_eq!(&buf[..], &[0xC0, 0x00]);
    Ok(())
}

/// Whatever decodes re-encodes to something that decodes to the same packet.
fn check_decoded_round_trips(v: ProtocolVersion, packet: &Packet) -> Result<(), TestCaseError> {
    let mut buf = BytesMut::new();
    packet
        .encode(v, &mut buf)
        .map_err(|e| TestCaseError::fail(format!("decoded packet does not encode: {e}")))?;
    prop_assert_eq!(
        decode(&mut buf, v, MAX_PACKET_SIZE),
        Ok(Some(packet.clone()))
    );
    Ok(())
}

/// Decodes `bytes` packet by packet until the input runs out or is refused.
fn decode_all(bytes: &[u8], v: ProtocolVersion, max: usize) -> Result<(), TestCaseError> {
    let mut buf = BytesMut::from(bytes);
    while let Ok(Some(packet)) = decode(&mut buf, v, max) {
        check_decoded_round_trips(v, &packet)?;
    }
    Ok(())
}

macro_rules! round_trip_tests {
    ($($name:ident: $strategy:expr;)*) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]
            $(
                #[test]
                fn $name((v, packet) in versioned($strategy)) {
                    check_round_trip(v, &packet)?;
                }
            )*
        }
    };
}

round_trip_tests! {
    connect_round_trips: connect;
    connack_round_trips: connack;
    publish_round_trips: publish;
    puback_round_trips: |v| ack(v, PacketType::PubAck);
    pubrec_round_trips: |v| ack(v, PacketType::PubRec);
    pubrel_round_trips: |v| ack(v, PacketType::PubRel);
    pubcomp_round_trips: |v| ack(v, PacketType::PubComp);
    subscribe_round_trips: subscribe;
    suback_round_trips: suback;
    unsubscribe_round_trips: unsubscribe;
    unsuback_round_trips: unsuback;
    pingreq_round_trips: |_| Just(Packet::PingReq).boxed();
    pingresp_round_trips: |_| Just(Packet::PingResp).boxed();
    disconnect_round_trips: disconnect;
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// AUTH exists only in MQTT 5.
    #[test]
    fn auth_round_trips(packet in auth()) {
        check_round_trip(V5, &packet)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_packet_split_at_any_byte_decodes_like_the_whole((v, packet) in versioned(packet)) {
        let bytes = encode(&packet, v);
        for split in 0..=bytes.len() {
            let mut buf = BytesMut::from(&bytes[..split]);
            if split < bytes.len() {
                prop_assert_eq!(decode(&mut buf, v, MAX_PACKET_SIZE), Ok(None), "split at {}", split);
                prop_assert_eq!(buf.len(), split, "an incomplete packet consumes nothing");
            }
            buf.extend_from_slice(&bytes[split..]);
            prop_assert_eq!(decode(&mut buf, v, MAX_PACKET_SIZE), Ok(Some(packet.clone())));
            prop_assert!(buf.is_empty());
        }
    }

    #[test]
    fn encoded_len_is_the_length_encode_writes((v, packet) in versioned(packet)) {
        let bytes = encode(&packet, v);
        prop_assert_eq!(packet.encoded_len(v), Ok(bytes.len()));
        if let Packet::Publish(publish) = &packet {
            prop_assert_eq!(publish.encoded_len(v), Ok(bytes.len()));
        }
    }

    #[test]
    fn packets_back_to_back_decode_in_order(
        (v, packets) in version().prop_flat_map(|v| (Just(v), vec(packet(v), 1..6)))
    ) {
        let mut buf = BytesMut::new();
        for packet in &packets {
            packet.encode(v, &mut buf).expect("a valid packet encodes");
        }
        for packet in &packets {
            prop_assert_eq!(decode(&mut buf, v, MAX_PACKET_SIZE), Ok(Some(packet.clone())));
        }
        prop_assert_eq!(decode(&mut buf, v, MAX_PACKET_SIZE), Ok(None));
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(
        bytes in vec(any::<u8>(), 0..300),
        max in 0usize..400,
    ) {
        for v in [V311, V5] {
            decode_all(&bytes, v, max)?;
        }
    }

    #[test]
    fn corrupted_packets_never_panic_the_decoder(
        (v, packet) in versioned(packet),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = encode(&packet, v).to_vec();
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        decode_all(&bytes, v, MAX_PACKET_SIZE)?;
    }

    #[test]
    fn oversize_packets_are_refused_before_their_body_arrives(
        (v, packet) in versioned(packet),
    ) {
        let bytes = encode(&packet, v);
        let header_len = 1 + bytes[1..].iter().position(|b| b & 0x80 == 0).unwrap_or(0) + 1;
        let max = bytes.len() - 1;
        let mut buf = BytesMut::from(&bytes[..header_len]);
        prop_assert_eq!(
            decode(&mut buf, v, max),
            Err(iotcore_mqtt::DecodeError::PacketTooLarge { size: bytes.len(), max })
        );
    }
}
