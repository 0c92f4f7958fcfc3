//! Routing, sessions and retained messages, without sockets.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use iotcore_mqtt::packet::{RetainHandling, SubscriptionOptions};
use iotcore_mqtt::{Properties, ProtocolVersion, QoS};
use tokio::sync::{mpsc, watch};

use super::journal::{Journal, Op};
use super::session::{Delivery, InFlight, Kick, Session};
use super::{Broker, Message};
use crate::config::EmulatorConfig;

struct Fixture {
    broker: Arc<Broker>,
    ops: mpsc::UnboundedReceiver<Op>,
    _stopping: watch::Sender<bool>,
}

fn fixture() -> Fixture {
    let (journal, ops) = Journal::channel();
    let (stop_tx, stopping) = watch::channel(false);
    let broker = Arc::new(Broker::new(
        EmulatorConfig::new("/nonexistent"),
        journal,
        stopping,
    ));
    Fixture {
        broker,
        ops,
        _stopping: stop_tx,
    }
}

fn message(topic: &str, qos: QoS, retain: bool, payload: &'static [u8]) -> Message {
    Message::new(
        topic.into(),
        Bytes::from_static(payload),
        qos,
        retain,
        &Properties::default(),
        SystemTime::now(),
    )
}

fn options(qos: QoS) -> SubscriptionOptions {
    SubscriptionOptions {
        qos,
        ..SubscriptionOptions::default()
    }
}

fn drain(session: &Session) -> Vec<(String, QoS, bool)> {
    session
        .take(usize::MAX, usize::MAX, SystemTime::now())
        .into_iter()
        .map(|d: Delivery| (d.message.topic.to_string(), d.qos, d.retain))
        .collect()
}

/// The kinds of the ops journaled since the last call.
fn kinds(ops: &mut mpsc::UnboundedReceiver<Op>) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    while let Ok(op) = ops.try_recv() {
        kinds.push(match op {
            Op::PutSession {
                detached_at: None, ..
            } => "put session",
            Op::PutSession { .. } => "put session (detached)",
            Op::DeleteSession(_) => "delete session",
            Op::Subscribe { .. } => "subscribe",
            Op::Unsubscribe { .. } => "unsubscribe",
            Op::Enqueue { .. } => "enqueue",
            Op::InFlight { .. } => "in flight",
            Op::Remove { .. } => "remove",
            Op::SetRetained(_) => "set retained",
            Op::DeleteRetained(_) => "delete retained",
            Op::Sync(_) => "sync",
        });
    }
    kinds
}

const CLEAN: Duration = Duration::ZERO;
const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn a_publish_reaches_each_matching_session_once_at_the_highest_qos() {
    let f = fixture();
    let a = f
        .broker
        .attach("a", ProtocolVersion::V5, true, CLEAN, 1)
        .session;
    let b = f
        .broker
        .attach("b", ProtocolVersion::V311, true, CLEAN, 2)
        .session;
    f.broker.subscribe(&a, "s/+", options(QoS::AtMostOnce));
    f.broker.subscribe(&a, "s/#", options(QoS::AtLeastOnce));
    f.broker.subscribe(&b, "s/x", options(QoS::AtMostOnce));
    f.broker.subscribe(&b, "other", options(QoS::AtLeastOnce));

    assert_eq!(
        f.broker
            .publish(message("s/x", QoS::AtLeastOnce, false, b"1"), None),
        2
    );
    assert_eq!(drain(&a), [("s/x".to_string(), QoS::AtLeastOnce, false)]);
    assert_eq!(drain(&b), [("s/x".to_string(), QoS::AtMostOnce, false)]);
    assert_eq!(
        f.broker
            .publish(message("s", QoS::AtMostOnce, false, b"2"), None),
        0,
        "AWS: s/# does not match s"
    );
}

#[tokio::test]
async fn no_local_subscriptions_do_not_get_their_own_messages() {
    let f = fixture();
    let a = f
        .broker
        .attach("a", ProtocolVersion::V5, true, CLEAN, 1)
        .session;
    let no_local = SubscriptionOptions {
        no_local: true,
        ..options(QoS::AtMostOnce)
    };
    f.broker.subscribe(&a, "t", no_local);
    assert_eq!(
        f.broker
            .publish(message("t", QoS::AtMostOnce, false, b"x"), Some(a.key())),
        0
    );
    assert_eq!(
        f.broker
            .publish(message("t", QoS::AtMostOnce, false, b"x"), None),
        1
    );
}

#[tokio::test]
async fn retained_messages_go_to_exact_new_subscriptions_only_and_empty_payload_deletes() {
    let mut f = fixture();
    let a = f
        .broker
        .attach("a", ProtocolVersion::V5, true, CLEAN, 1)
        .session;
    f.broker.subscribe(&a, "r/x", options(QoS::AtLeastOnce));
    f.broker
        .publish(message("r/x", QoS::AtLeastOnce, true, b"v1"), None);
    assert_eq!(
        drain(&a),
        [("r/x".to_string(), QoS::AtLeastOnce, false)],
        "live delivery clears RETAIN"
    );
    assert!(
        matches!(f.ops.try_recv(), Ok(Op::SetRetained(m)) if m.payload == Bytes::from_static(b"v1"))
    );

    let b = f
        .broker
        .attach("b", ProtocolVersion::V311, true, CLEAN, 2)
        .session;
    let exact = f
        .broker
        .subscribe(&b, "r/x", options(QoS::AtMostOnce))
        .retained
        .unwrap();
    assert_eq!(
        (exact.qos, exact.retain, exact.message.payload.as_ref()),
        (QoS::AtMostOnce, true, &b"v1"[..])
    );
    assert!(
        f.broker
            .subscribe(&b, "r/+", options(QoS::AtLeastOnce))
            .retained
            .is_none()
    );

    let again = SubscriptionOptions {
        retain_handling: RetainHandling::OnNewSubscribe,
        ..options(QoS::AtLeastOnce)
    };
    assert!(
        f.broker.subscribe(&b, "r/x", again).retained.is_none(),
        "not a new subscription"
    );

    f.broker
        .publish(message("r/x", QoS::AtMostOnce, true, b""), None);
    assert!(matches!(f.ops.try_recv(), Ok(Op::DeleteRetained(t)) if t == "r/x"));
    assert!(
        f.broker
            .subscribe(&b, "r/x", options(QoS::AtLeastOnce))
            .retained
            .is_none()
    );
}

#[tokio::test]
async fn a_second_connection_takes_over_and_resumes_a_persistent_session() {
    let f = fixture();
    let first = f.broker.attach("dev1", ProtocolVersion::V5, false, HOUR, 1);
    assert!(!first.session_present);
    f.broker
        .subscribe(&first.session, "t", options(QoS::AtLeastOnce));

    let second = f.broker.attach("dev1", ProtocolVersion::V5, false, HOUR, 2);
    assert!(second.session_present);
    assert!(Arc::ptr_eq(&first.session, &second.session));
    assert_eq!(first.kick.await, Ok(Kick::TakenOver));

    // The old connection's unacknowledged message goes to the new one.
    let mut unacked = message("t", QoS::AtLeastOnce, false, b"1")
        .to_publish(QoS::AtLeastOnce, false, SystemTime::now())
        .unwrap();
    unacked.packet_id = Some(5);
    let unacked = InFlight {
        publish: unacked,
        seq: None,
    };
    f.broker
        .detach(&first.session, 1, vec![unacked], None, SystemTime::now());
    assert_eq!(
        drain(&second.session),
        [("t".to_string(), QoS::AtLeastOnce, false)]
    );
    assert!(second.session.lock().is_attached_to(2));
}

#[tokio::test]
async fn clean_start_ends_the_previous_session_and_its_subscriptions() {
    let f = fixture();
    let first = f
        .broker
        .attach("dev1", ProtocolVersion::V311, false, HOUR, 1);
    f.broker
        .subscribe(&first.session, "t", options(QoS::AtLeastOnce));
    let second = f
        .broker
        .attach("dev1", ProtocolVersion::V311, true, CLEAN, 2);
    assert!(!second.session_present);
    assert!(first.session.lock().ended);
    assert_eq!(
        f.broker
            .publish(message("t", QoS::AtLeastOnce, false, b"1"), None),
        0
    );
}

#[tokio::test]
async fn sessions_are_not_resumed_across_protocol_versions() {
    let f = fixture();
    let first = f
        .broker
        .attach("dev1", ProtocolVersion::V311, false, HOUR, 1);
    f.broker
        .detach(&first.session, 1, Vec::new(), None, SystemTime::now());
    let second = f.broker.attach("dev1", ProtocolVersion::V5, false, HOUR, 2);
    assert!(!second.session_present);
}

#[tokio::test]
async fn a_detached_persistent_session_stores_qos1_and_hands_it_over_on_resume() {
    let mut f = fixture();
    let first = f
        .broker
        .attach("dev1", ProtocolVersion::V311, false, HOUR, 1);
    f.broker
        .subscribe(&first.session, "t", options(QoS::AtLeastOnce));
    f.broker
        .detach(&first.session, 1, Vec::new(), None, SystemTime::now());
    assert!(!first.session.lock().is_attached());
    assert_eq!(
        kinds(&mut f.ops),
        ["put session", "subscribe", "put session (detached)"]
    );

    f.broker
        .publish(message("t", QoS::AtMostOnce, false, b"0"), None);
    assert!(kinds(&mut f.ops).is_empty(), "QoS 0 is not stored offline");
    assert!(
        f.broker
            .publish_durably(message("t", QoS::AtLeastOnce, false, b"1"), None)
            .is_some(),
        "a stored QoS 1 message is acknowledged once stored"
    );
    assert_eq!(kinds(&mut f.ops), ["enqueue", "sync"]);

    let second = f
        .broker
        .attach("dev1", ProtocolVersion::V311, false, HOUR, 2);
    assert!(second.session_present);
    assert_eq!(
        drain(&second.session),
        [("t".to_string(), QoS::AtLeastOnce, false)]
    );
}

#[tokio::test]
async fn a_clean_session_ends_when_its_connection_does() {
    let mut f = fixture();
    let a = f
        .broker
        .attach("a", ProtocolVersion::V311, true, CLEAN, 1)
        .session;
    f.broker.subscribe(&a, "t", options(QoS::AtLeastOnce));
    f.broker.detach(&a, 1, Vec::new(), None, SystemTime::now());
    assert!(a.lock().ended);
    assert_eq!(
        f.broker
            .publish(message("t", QoS::AtLeastOnce, false, b"1"), None),
        0
    );
    assert!(
        kinds(&mut f.ops).is_empty(),
        "a clean session is never stored"
    );
}

#[tokio::test]
async fn an_expired_session_ends_unless_it_was_resumed_meanwhile() {
    let f = fixture();
    let first = f.broker.attach("dev1", ProtocolVersion::V5, false, HOUR, 1);
    f.broker
        .subscribe(&first.session, "t", options(QoS::AtLeastOnce));
    f.broker
        .detach(&first.session, 1, Vec::new(), None, SystemTime::now());
    let stale = first.session.lock().generation;
    let resumed = f.broker.attach("dev1", ProtocolVersion::V5, false, HOUR, 2);
    f.broker.expire(&first.session, stale);
    assert!(!resumed.session.lock().ended, "attached: not expired");
    f.broker
        .detach(&resumed.session, 2, Vec::new(), None, SystemTime::now());
    f.broker.expire(&resumed.session, stale);
    assert!(!resumed.session.lock().ended, "a stale timer does nothing");
    let current = resumed.session.lock().generation;
    f.broker.expire(&resumed.session, current);
    assert!(resumed.session.lock().ended);
    assert_eq!(
        f.broker
            .publish(message("t", QoS::AtLeastOnce, false, b"1"), None),
        0
    );
}

#[tokio::test]
async fn a_restored_session_keeps_its_subscriptions_queue_and_unacknowledged_messages() {
    use super::records::RestoredSession;
    let f = fixture();
    let now = SystemTime::now();
    let queued = Delivery {
        message: Arc::new(message("t", QoS::AtLeastOnce, false, b"q")),
        qos: QoS::AtLeastOnce,
        retain: false,
        group: None,
        seq: Some(41),
    };
    let mut unacked = queued
        .message
        .to_publish(QoS::AtLeastOnce, false, now)
        .unwrap();
    unacked.packet_id = Some(9);
    f.broker.restore_session(
        RestoredSession {
            client_id: "dev1".into(),
            protocol: ProtocolVersion::V311,
            expiry: HOUR,
            detached_at: Some(now),
            subscriptions: vec![("t".into(), options(QoS::AtLeastOnce))],
            unacked: vec![InFlight {
                publish: unacked,
                seq: Some(40),
            }],
            queued: vec![queued],
        },
        now,
    );
    f.broker
        .publish(message("t", QoS::AtLeastOnce, false, b"live"), None);
    let resumed = f
        .broker
        .attach("dev1", ProtocolVersion::V311, false, HOUR, 1);
    assert!(resumed.session_present);
    assert_eq!(
        resumed
            .resume
            .iter()
            .map(|u| (u.publish.packet_id, u.seq))
            .collect::<Vec<_>>(),
        [(Some(9), Some(40))]
    );
    let queue: Vec<(Bytes, Option<u64>)> = resumed
        .session
        .take(9, 9, now)
        .into_iter()
        .map(|d| (d.message.payload.clone(), d.seq))
        .collect();
    assert_eq!(
        queue,
        [
            (Bytes::from_static(b"q"), Some(41)),
            (Bytes::from_static(b"live"), Some(42))
        ],
        "new messages are stored after the restored ones"
    );
}

#[tokio::test]
async fn a_detached_session_keeps_the_unacknowledged_messages_for_the_next_connection() {
    let f = fixture();
    let first = f.broker.attach("dev1", ProtocolVersion::V5, false, HOUR, 1);
    let mut unacked = message("t", QoS::AtLeastOnce, false, b"1")
        .to_publish(QoS::AtLeastOnce, false, SystemTime::now())
        .unwrap();
    unacked.packet_id = Some(3);
    let unacked = InFlight {
        publish: unacked,
        seq: Some(7),
    };
    f.broker.detach(
        &first.session,
        1,
        vec![unacked.clone()],
        None,
        SystemTime::now(),
    );
    let second = f.broker.attach("dev1", ProtocolVersion::V5, false, HOUR, 2);
    assert_eq!(second.resume, [unacked]);
}

// ----- Shared subscriptions -----

const SHARED: &str = "$share/workers/jobs/#";

fn payloads(session: &Session) -> Vec<Bytes> {
    session
        .take(usize::MAX, usize::MAX, SystemTime::now())
        .into_iter()
        .map(|d| d.message.payload.clone())
        .collect()
}

#[tokio::test]
async fn a_shared_subscription_gets_no_retained_message_and_each_live_one_goes_to_one_member() {
    let f = fixture();
    f.broker.publish(
        message("jobs/old", QoS::AtLeastOnce, true, b"retained"),
        None,
    );
    let a = f.broker.attach("a", ProtocolVersion::V5, true, CLEAN, 1);
    let b = f.broker.attach("b", ProtocolVersion::V311, true, CLEAN, 2);
    for member in [&a.session, &b.session] {
        let subscribed = f
            .broker
            .subscribe(member, SHARED, options(QoS::AtLeastOnce));
        assert!(subscribed.retained.is_none());
    }
    let watcher = f.broker.attach("w", ProtocolVersion::V5, true, CLEAN, 3);
    f.broker
        .subscribe(&watcher.session, "jobs/#", options(QoS::AtLeastOnce));
    for _ in 0..20 {
        assert_eq!(
            f.broker
                .publish(message("jobs/new", QoS::AtLeastOnce, false, b"j"), None),
            2,
            "the watcher and one member"
        );
    }
    assert_eq!(payloads(&a.session).len() + payloads(&b.session).len(), 20);
    assert_eq!(payloads(&watcher.session).len(), 20);
}

#[tokio::test]
async fn a_member_that_disconnects_hands_its_waiting_shared_messages_to_another_member() {
    let f = fixture();
    let a = f.broker.attach("a", ProtocolVersion::V5, true, CLEAN, 1);
    let b = f.broker.attach("b", ProtocolVersion::V5, false, HOUR, 2);
    f.broker
        .subscribe(&a.session, SHARED, options(QoS::AtLeastOnce));
    f.broker
        .subscribe(&b.session, SHARED, options(QoS::AtLeastOnce));
    f.broker
        .subscribe(&b.session, "own", options(QoS::AtLeastOnce));
    for _ in 0..10 {
        f.broker
            .publish(message("jobs/x", QoS::AtLeastOnce, false, b"j"), None);
    }
    f.broker
        .publish(message("own", QoS::AtLeastOnce, false, b"mine"), None);
    // b's persistent session keeps its own message and its subscription, not
    // the group's messages.
    f.broker
        .detach(&b.session, 2, Vec::new(), None, SystemTime::now());
    let got = payloads(&a.session);
    assert_eq!(got.len(), 10, "{got:?}");
    assert_eq!(payloads(&b.session), [Bytes::from_static(b"mine")]);
    assert!(f.broker.is_subscribed(&b.session, SHARED));
}

#[tokio::test]
async fn with_no_member_connected_the_group_keeps_qos1_for_the_first_to_come_back() {
    let f = fixture();
    let a = f.broker.attach("a", ProtocolVersion::V5, false, HOUR, 1);
    f.broker
        .subscribe(&a.session, SHARED, options(QoS::AtLeastOnce));
    f.broker
        .detach(&a.session, 1, Vec::new(), None, SystemTime::now());
    f.broker
        .publish(message("jobs/x", QoS::AtMostOnce, false, b"0"), None);
    f.broker
        .publish(message("jobs/x", QoS::AtLeastOnce, false, b"1"), None);
    assert!(
        payloads(&a.session).is_empty(),
        "not queued in the offline member's session"
    );
    let back = f.broker.attach("a", ProtocolVersion::V5, false, HOUR, 2);
    assert!(back.session_present);
    assert_eq!(payloads(&back.session), [Bytes::from_static(b"1")]);
}

#[tokio::test]
async fn unsubscribing_or_ending_the_session_leaves_the_group() {
    let f = fixture();
    let a = f.broker.attach("a", ProtocolVersion::V5, true, CLEAN, 1);
    let b = f.broker.attach("b", ProtocolVersion::V5, true, CLEAN, 2);
    f.broker
        .subscribe(&a.session, SHARED, options(QoS::AtLeastOnce));
    f.broker
        .subscribe(&b.session, SHARED, options(QoS::AtLeastOnce));
    assert!(f.broker.unsubscribe(&a.session, SHARED));
    f.broker
        .detach(&b.session, 2, Vec::new(), None, SystemTime::now());
    assert_eq!(
        f.broker
            .publish(message("jobs/x", QoS::AtLeastOnce, false, b"j"), None),
        0,
        "no group is left"
    );
    assert!(payloads(&a.session).is_empty());
}

#[tokio::test]
async fn a_restored_session_rejoins_its_shared_subscriptions() {
    use super::records::RestoredSession;
    let f = fixture();
    let now = SystemTime::now();
    f.broker.restore_session(
        RestoredSession {
            client_id: "dev1".into(),
            protocol: ProtocolVersion::V5,
            expiry: HOUR,
            detached_at: Some(now),
            subscriptions: vec![(SHARED.into(), options(QoS::AtLeastOnce))],
            unacked: Vec::new(),
            queued: Vec::new(),
        },
        now,
    );
    f.broker
        .publish(message("jobs/x", QoS::AtLeastOnce, false, b"kept"), None);
    let resumed = f.broker.attach("dev1", ProtocolVersion::V5, false, HOUR, 1);
    assert_eq!(payloads(&resumed.session), [Bytes::from_static(b"kept")]);
}

// ----- Durability -----

#[tokio::test]
async fn only_what_reaches_a_persistent_session_or_the_retained_store_waits_for_the_store() {
    let mut f = fixture();
    let clean = f
        .broker
        .attach("clean", ProtocolVersion::V5, true, CLEAN, 1)
        .session;
    f.broker.subscribe(&clean, "t", options(QoS::AtLeastOnce));
    let durable = f.broker.attach("keep", ProtocolVersion::V5, false, HOUR, 2);
    f.broker
        .subscribe(&durable.session, "t/+", options(QoS::AtLeastOnce));
    f.broker
        .subscribe(&durable.session, "q0", options(QoS::AtMostOnce));
    assert_eq!(kinds(&mut f.ops), ["put session", "subscribe", "subscribe"]);

    let publish = |topic: &str, qos: QoS, retain: bool| {
        f.broker
            .publish_durably(message(topic, qos, retain, b"x"), None)
            .is_some()
    };
    assert!(!publish("t", QoS::AtLeastOnce, false), "clean session only");
    assert!(!publish("t/a", QoS::AtMostOnce, false), "QoS 0");
    assert!(
        !publish("q0", QoS::AtLeastOnce, false),
        "delivered at QoS 0"
    );
    assert!(publish("t/a", QoS::AtLeastOnce, false));
    assert!(publish("nobody", QoS::AtMostOnce, true), "retained");
    assert_eq!(
        kinds(&mut f.ops),
        ["enqueue", "sync", "set retained", "sync"]
    );

    // Sent, then acknowledged: the store learns both; a message that expires
    // in the queue is removed from it.
    let taken = durable.session.take(10, 10, SystemTime::now());
    let seqs: Vec<u64> = taken.iter().filter_map(|d| d.seq).collect();
    assert_eq!(taken.len(), 3, "two QoS 0 deliveries and the journaled one");
    let [seq] = seqs[..] else {
        panic!("one delivery journaled: {seqs:?}")
    };
    durable.session.sent(seq, 1);
    durable.session.forget(seq);
    assert_eq!(kinds(&mut f.ops), ["in flight", "remove"]);
    let expiring = Properties {
        message_expiry_interval: Some(1),
        ..Properties::default()
    };
    let now = SystemTime::now();
    f.broker.publish(
        Message::new(
            "t/e".into(),
            Bytes::from_static(b"e"),
            QoS::AtLeastOnce,
            false,
            &expiring,
            now,
        ),
        None,
    );
    assert!(
        durable
            .session
            .take(10, 10, now + Duration::from_secs(2))
            .is_empty()
    );
    assert_eq!(kinds(&mut f.ops), ["enqueue", "remove"]);

    f.broker.unsubscribe(&durable.session, "q0");
    f.broker.detach(
        &durable.session,
        2,
        Vec::new(),
        Some(Duration::ZERO),
        SystemTime::now(),
    );
    assert_eq!(kinds(&mut f.ops), ["unsubscribe", "delete session"]);
}

#[tokio::test]
async fn a_full_persistent_queue_removes_the_message_it_drops_from_the_store() {
    let (journal, mut ops) = Journal::channel();
    let (_stop, stopping) = watch::channel(false);
    let limits = crate::config::Limits {
        max_queued_qos1: 1,
        ..crate::config::Limits::default()
    };
    let broker = Arc::new(Broker::new(
        EmulatorConfig::new("/nonexistent").with_limits(limits),
        journal,
        stopping,
    ));
    let a = broker.attach("a", ProtocolVersion::V5, false, HOUR, 1);
    broker.subscribe(&a.session, "t", options(QoS::AtLeastOnce));
    broker.publish(message("t", QoS::AtLeastOnce, false, b"1"), None);
    broker.publish(message("t", QoS::AtLeastOnce, false, b"2"), None);
    let ops: Vec<Op> = std::iter::from_fn(|| ops.try_recv().ok()).collect();
    let seqs: Vec<String> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Enqueue { seq, .. } => Some(format!("+{seq}")),
            Op::Remove { seq, .. } => Some(format!("-{seq}")),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, ["+0", "-0", "+1"]);
}
