//! Mapping between the broker's values and the store's records (see the table
//! in [`crate::store`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use iotcore_mqtt::packet::{Publish, RetainHandling, SubscriptionOptions};
use iotcore_mqtt::{Properties, ProtocolVersion, QoS};

use super::message::Message;
use super::session::{Delivery, InFlight};
use crate::store::{
    MessageProperties, QueuedMessage, RetainedMessage, SessionRecord, SubscriptionRecord,
};

/// A persistent session as loaded from the store, in broker terms.
#[derive(Debug)]
pub(crate) struct RestoredSession {
    /// Client id.
    pub(crate) client_id: String,
    /// Protocol version it was created with.
    pub(crate) protocol: ProtocolVersion,
    /// How long it outlives its connection.
    pub(crate) expiry: Duration,
    /// When its connection went away (`None`: it was attached when saved).
    pub(crate) detached_at: Option<SystemTime>,
    /// Filters and options.
    pub(crate) subscriptions: Vec<(String, SubscriptionOptions)>,
    /// Deliveries sent to the previous connection and not acknowledged.
    pub(crate) unacked: Vec<InFlight>,
    /// Deliveries not yet sent.
    pub(crate) queued: Vec<Delivery>,
}

/// Unix seconds of `time` (0 before 1970).
pub(crate) fn unix(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The instant of `secs` unix seconds (1970 for negative values).
pub(crate) fn from_unix(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

fn stored_properties(p: &Properties) -> MessageProperties {
    MessageProperties {
        payload_format_indicator: p.payload_format_indicator,
        content_type: p.content_type.clone(),
        response_topic: p.response_topic.clone(),
        correlation_data: p.correlation_data.as_ref().map(|d| d.to_vec()),
        user_properties: p.user_properties.clone(),
    }
}

fn properties(p: MessageProperties) -> Properties {
    Properties {
        payload_format_indicator: p.payload_format_indicator,
        content_type: p.content_type,
        response_topic: p.response_topic,
        correlation_data: p.correlation_data.map(Bytes::from),
        user_properties: p.user_properties,
        ..Properties::default()
    }
}

fn qos(value: u8) -> QoS {
    if value == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    }
}

/// A retained message as the store keeps it.
pub(crate) fn retained_record(message: &Message, now: SystemTime) -> RetainedMessage {
    RetainedMessage {
        topic: message.topic.to_string(),
        payload: message.payload.to_vec(),
        qos: message.qos as u8,
        properties: stored_properties(message.properties()),
        expires_at: message.expires_at.map(unix),
        updated_at: unix(now),
    }
}

/// A retained message read from the store.
pub(crate) fn retained_message(record: RetainedMessage) -> Message {
    Message::stored(
        record.topic.into(),
        Bytes::from(record.payload),
        qos(record.qos),
        true,
        properties(record.properties),
        record.expires_at.map(from_unix),
    )
}

/// A message queued for a persistent session, as the store keeps it: `seq`
/// orders the queue, `packet_id` is set once it was sent.
pub(crate) fn queued_record(
    seq: u64,
    message: &Message,
    retain: bool,
    packet_id: Option<u16>,
) -> QueuedMessage {
    QueuedMessage {
        seq,
        topic: message.topic.to_string(),
        payload: message.payload.to_vec(),
        qos: 1,
        retain,
        properties: stored_properties(message.properties()),
        expires_at: message.expires_at.map(unix),
        packet_id,
    }
}

/// A subscription as the store keeps it.
pub(crate) fn subscription_record(filter: String, o: &SubscriptionOptions) -> SubscriptionRecord {
    SubscriptionRecord {
        filter,
        qos: o.qos as u8,
        no_local: o.no_local,
        retain_as_published: o.retain_as_published,
        retain_handling: o.retain_handling as u8,
    }
}

/// A stored session in broker terms; `None` (with the reason) if the record
/// cannot be used.
pub(crate) fn restored_session(
    record: SessionRecord,
    now: SystemTime,
) -> Result<RestoredSession, String> {
    let protocol = match record.protocol_version {
        4 => ProtocolVersion::V311,
        5 => ProtocolVersion::V5,
        other => return Err(format!("unknown protocol level {other}")),
    };
    let subscriptions = record
        .subscriptions
        .into_iter()
        .map(|s| {
            let options = SubscriptionOptions {
                qos: qos(s.qos),
                no_local: s.no_local,
                retain_as_published: s.retain_as_published,
                retain_handling: match s.retain_handling {
                    1 => RetainHandling::OnNewSubscribe,
                    2 => RetainHandling::Never,
                    _ => RetainHandling::OnSubscribe,
                },
            };
            (s.filter, options)
        })
        .collect();
    let mut unacked = Vec::new();
    let mut queued = Vec::new();
    for q in record.queue {
        let message = Message::stored(
            q.topic.into(),
            Bytes::from(q.payload),
            QoS::AtLeastOnce,
            q.retain,
            properties(q.properties),
            q.expires_at.map(from_unix),
        );
        if message.is_expired(now) {
            continue;
        }
        match q.packet_id {
            Some(packet_id) => {
                if let Some(mut publish) = message.to_publish(QoS::AtLeastOnce, q.retain, now) {
                    publish.packet_id = Some(packet_id);
                    publish.dup = true;
                    unacked.push(InFlight {
                        publish,
                        seq: Some(q.seq),
                    });
                }
            }
            None => queued.push(Delivery {
                retain: q.retain,
                qos: QoS::AtLeastOnce,
                message: Arc::new(message),
                group: None,
                seq: Some(q.seq),
            }),
        }
    }
    Ok(RestoredSession {
        client_id: record.client_id,
        protocol,
        expiry: Duration::from_secs(record.session_expiry_secs.into()),
        detached_at: record.disconnected_at.map(from_unix),
        subscriptions,
        unacked,
        queued,
    })
}

/// A delivery for a publish a connection handed back unacknowledged after its
/// session was taken over (it is sent again as a new delivery, still stored
/// as `seq`), or that came through the shared subscription `group` (another
/// member gets it).
pub(crate) fn delivery_from_publish(
    publish: &Publish,
    group: Option<Arc<str>>,
    seq: Option<u64>,
    now: SystemTime,
) -> Delivery {
    Delivery {
        message: Arc::new(Message::from_publish(publish, now)),
        qos: publish.qos,
        retain: publish.retain,
        group,
        seq,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_session_comes_back_with_its_subscriptions_queue_and_in_flight_messages() {
        let now = from_unix(1_700_000_000);
        let props = Properties {
            content_type: Some("json".into()),
            correlation_data: Some(Bytes::from_static(b"c")),
            user_properties: vec![("a".into(), "b".into())],
            message_expiry_interval: Some(100),
            ..Properties::default()
        };
        let message = |topic: &str| {
            Message::new(
                topic.into(),
                Bytes::from_static(b"q"),
                QoS::AtLeastOnce,
                false,
                &props,
                now,
            )
        };
        let options = SubscriptionOptions {
            qos: QoS::AtLeastOnce,
            no_local: true,
            retain_as_published: true,
            retain_handling: RetainHandling::Never,
        };
        let record = SessionRecord {
            client_id: "dev1".into(),
            protocol_version: 5,
            session_expiry_secs: 600,
            disconnected_at: Some(unix(now)),
            subscriptions: vec![subscription_record("t/#".into(), &options)],
            queue: vec![
                queued_record(7, &message("t/u"), true, Some(42)),
                queued_record(9, &message("t/q"), false, None),
            ],
        };
        assert_eq!(record.queue[1].expires_at, Some(1_700_000_100));

        let restored = restored_session(record, now).unwrap();
        assert_eq!(restored.client_id, "dev1");
        assert_eq!(restored.protocol, ProtocolVersion::V5);
        assert_eq!(restored.expiry, Duration::from_secs(600));
        assert_eq!(restored.detached_at, Some(now));
        assert_eq!(restored.subscriptions, [("t/#".to_owned(), options)]);
        assert_eq!(restored.unacked.len(), 1);
        let in_flight = &restored.unacked[0];
        assert_eq!(
            (
                in_flight.publish.packet_id,
                in_flight.publish.dup,
                in_flight.publish.retain
            ),
            (Some(42), true, true)
        );
        assert_eq!(in_flight.seq, Some(7));
        assert_eq!(restored.queued.len(), 1);
        assert_eq!(restored.queued[0].seq, Some(9));
        let m = &restored.queued[0].message;
        assert_eq!(m.topic, "t/q");
        assert_eq!(m.properties().content_type.as_deref(), Some("json"));
        assert_eq!(m.properties().correlation_data.as_deref(), Some(&b"c"[..]));
        assert_eq!(m.expires_at, Some(from_unix(1_700_000_100)));
    }

    #[test]
    fn expired_messages_and_unknown_protocols_are_not_restored() {
        let now = from_unix(1_700_000_000);
        let record = SessionRecord {
            client_id: "a".into(),
            protocol_version: 4,
            session_expiry_secs: 3600,
            disconnected_at: Some(1_699_999_000),
            subscriptions: Vec::new(),
            queue: vec![QueuedMessage {
                seq: 0,
                topic: "t".into(),
                payload: b"x".to_vec(),
                qos: 1,
                retain: false,
                properties: MessageProperties::default(),
                expires_at: Some(1_699_999_999),
                packet_id: None,
            }],
        };
        let restored = restored_session(record.clone(), now).unwrap();
        assert!(restored.queued.is_empty());
        let bad = SessionRecord {
            protocol_version: 3,
            ..record
        };
        assert!(
            restored_session(bad, now)
                .unwrap_err()
                .contains("protocol level 3")
        );
    }

    #[test]
    fn retained_messages_survive_the_round_trip() {
        let now = from_unix(1_700_000_000);
        let props = Properties {
            payload_format_indicator: Some(1),
            response_topic: Some("r".into()),
            ..Properties::default()
        };
        let m = Message::new(
            "a/b".into(),
            Bytes::from_static(b"v"),
            QoS::AtLeastOnce,
            true,
            &props,
            now,
        );
        assert_eq!(retained_message(retained_record(&m, now)), m);
    }
}
