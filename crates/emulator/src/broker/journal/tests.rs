//! The journal's batching writer: acknowledgements wait for the commit, a
//! failed commit fails them, and a batch writes only what is still needed.

use std::time::Duration;

use bytes::Bytes;
use iotcore_mqtt::{Properties, QoS};

use super::*;

fn message(topic: &str) -> Arc<Message> {
    Arc::new(Message::new(
        topic.into(),
        Bytes::from_static(b"m"),
        QoS::AtLeastOnce,
        true,
        &Properties::default(),
        SystemTime::now(),
    ))
}

fn log(journal: &Journal, client_id: &str) -> SessionLog {
    SessionLog::new(journal.clone(), client_id.into())
}

fn raw(dir: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join(crate::store::DATABASE_FILE)).unwrap()
}

/// A store in a temporary directory with a writer running on it.
fn running() -> (tempfile::TempDir, Store, Journal) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (journal, ops) = Journal::channel();
    tokio::spawn(run_writer(store.clone(), ops));
    (dir, store, journal)
}

#[test]
fn a_message_queued_and_removed_in_one_batch_is_never_written() {
    let (journal, mut rx) = Journal::channel();
    let a = log(&journal, "a");
    a.put_session(4, 3600, None);
    let delivered = a.enqueue(&message("t/1"), false);
    a.in_flight(delivered, Some(1));
    a.remove(delivered);
    let in_flight = a.enqueue(&message("t/2"), false);
    a.in_flight(in_flight, Some(2));
    let _stored = journal.sync();
    a.remove(99);
    a.in_flight(98, None);
    let mut ops = Vec::new();
    while let Ok(op) = rx.try_recv() {
        ops.push(op);
    }

    let (changes, waiting) = plan(ops.into_iter(), SystemTime::now());
    assert_eq!(waiting.len(), 1);
    let kinds: Vec<String> = changes
        .iter()
        .map(|c| match c {
            BrokerChange::PutSession { .. } => "session".to_owned(),
            BrokerChange::Enqueue(_, m) => format!("enqueue {} as {:?}", m.seq, m.packet_id),
            BrokerChange::Dequeue { seq, .. } => format!("dequeue {seq}"),
            BrokerChange::SetPacketId { seq, packet_id, .. } => {
                format!("packet id of {seq}: {packet_id:?}")
            }
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "session",
            "enqueue 1 as Some(2)",
            "dequeue 99",
            "packet id of 98: None"
        ]
    );
}

#[tokio::test]
async fn an_acknowledgement_waits_for_the_commit() {
    let (dir, store, journal) = running();
    // Another connection holds the write lock: the writer's commit waits for it.
    let blocker = raw(dir.path());
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();

    let a = log(&journal, "a");
    a.put_session(4, 3600, None);
    a.subscribe("t/#", SubscriptionOptions::default());
    let seq = a.enqueue(&message("t/1"), false);
    let mut stored = journal.sync();
    // However long the writer has had, it cannot have committed.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        stored.try_result().is_none(),
        "acknowledged before the commit"
    );

    blocker.execute_batch("COMMIT").unwrap();
    stored.await.unwrap();
    let session = store.load_session("a").unwrap().expect("committed");
    assert_eq!(session.subscriptions[0].filter, "t/#");
    assert_eq!(session.queue[0].seq, seq);
}

#[tokio::test]
async fn a_failed_commit_fails_what_waited_for_it_and_the_writer_goes_on() {
    let (dir, store, journal) = running();
    raw(dir.path())
        .execute_batch("DROP TABLE retained_messages")
        .unwrap();

    let a = log(&journal, "a");
    a.put_session(4, 3600, None);
    journal.send(Op::SetRetained(message("r")));
    let error = journal.sync().await.unwrap_err();
    assert!(matches!(error, JournalError::Commit(_)), "{error}");
    assert_eq!(store.load_session("a").unwrap(), None, "rolled back");

    a.put_session(4, 3600, None);
    journal.sync().await.unwrap();
    assert!(store.load_session("a").unwrap().is_some());
}

#[tokio::test]
async fn without_a_writer_nothing_is_acknowledged() {
    let (journal, rx) = Journal::channel();
    drop(rx);
    log(&journal, "a").put_session(4, 3600, None);
    assert!(matches!(journal.sync().await, Err(JournalError::Stopped)));
}

#[test]
fn seqs_stay_above_those_restored() {
    let (journal, _rx) = Journal::channel();
    journal.seq_above(41);
    journal.seq_above(7);
    assert_eq!(journal.next_seq(), 42);
    assert_eq!(journal.next_seq(), 43);
}
