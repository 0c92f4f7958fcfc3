//! The SQLite store: what survives a restart, the registry's rules, and failures that
//! must be typed errors.

use std::collections::BTreeMap;
use std::path::Path;

use crate::store::{
    BrokerChange, CertificateStatus, MessageProperties, QueuedMessage, RetainedMessage,
    SessionRecord, Store, StoreError, SubscriptionRecord,
};

fn cert_id(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn properties() -> MessageProperties {
    MessageProperties {
        payload_format_indicator: Some(1),
        content_type: Some("application/json".into()),
        response_topic: Some("reply/here".into()),
        correlation_data: Some(vec![0, 1, 2, 255]),
        user_properties: vec![("k".into(), "v1".into()), ("k".into(), "v2".into())],
    }
}

fn retained(topic: &str, payload: &[u8]) -> RetainedMessage {
    RetainedMessage {
        topic: topic.into(),
        payload: payload.to_vec(),
        qos: 1,
        properties: properties(),
        expires_at: Some(1_700_000_100),
        updated_at: 1_700_000_000,
    }
}

fn queued(seq: u64, topic: &str) -> QueuedMessage {
    QueuedMessage {
        seq,
        topic: topic.into(),
        payload: vec![seq as u8, 0, 42],
        qos: 1,
        retain: false,
        properties: MessageProperties::default(),
        expires_at: None,
        packet_id: None,
    }
}

fn session(client_id: &str) -> SessionRecord {
    SessionRecord {
        client_id: client_id.into(),
        protocol_version: 5,
        session_expiry_secs: 3600,
        disconnected_at: Some(1_700_000_000),
        subscriptions: vec![
            SubscriptionRecord {
                filter: "a/+".into(),
                qos: 1,
                no_local: true,
                retain_as_published: false,
                retain_handling: 2,
            },
            SubscriptionRecord {
                filter: "b/#".into(),
                qos: 0,
                no_local: false,
                retain_as_published: true,
                retain_handling: 0,
            },
        ],
        queue: vec![queued(1, "a/x"), {
            let mut m = queued(2, "b/y");
            m.properties = properties();
            m.expires_at = Some(1_700_003_600);
            m.packet_id = Some(7);
            m.retain = true;
            m
        }],
    }
}

/// The changes that store `session` whole.
fn session_changes(session: &SessionRecord) -> Vec<BrokerChange> {
    let id = &session.client_id;
    let mut changes = vec![BrokerChange::PutSession {
        client_id: id.clone(),
        protocol_version: session.protocol_version,
        session_expiry_secs: session.session_expiry_secs,
        disconnected_at: session.disconnected_at,
    }];
    changes.extend(
        session
            .subscriptions
            .iter()
            .map(|s| BrokerChange::PutSubscription(id.clone(), s.clone())),
    );
    changes.extend(
        session
            .queue
            .iter()
            .map(|m| BrokerChange::Enqueue(id.clone(), m.clone())),
    );
    changes
}

fn put_retained(store: &Store, message: RetainedMessage) {
    store
        .apply_broker_changes(&[BrokerChange::PutRetained(message)])
        .unwrap();
}

fn raw_connection(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("iotcore.db")).unwrap()
}

#[test]
fn everything_written_survives_closing_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store
            .create_thing("sensor-1", Some("Sensor"), &attrs(&[("room", "kitchen")]))
            .unwrap();
        store
            .add_certificate(&cert_id(1), "PEM-1", CertificateStatus::Active)
            .unwrap();
        store
            .attach_thing_principal("sensor-1", &cert_id(1))
            .unwrap();
        put_retained(&store, retained("status/sensor-1", b"on\0"));
        let mut with_queue = session("client-1");
        with_queue.queue.push(queued(3, "a/z"));
        store
            .apply_broker_changes(&session_changes(&with_queue))
            .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();

    let thing = store.thing("sensor-1").unwrap().unwrap();
    assert_eq!(thing.thing_type.as_deref(), Some("Sensor"));
    assert_eq!(thing.attributes, attrs(&[("room", "kitchen")]));
    assert!(thing.created_at > 1_600_000_000);

    let cert = store.certificate(&cert_id(1)).unwrap().unwrap();
    assert_eq!(cert.pem, "PEM-1");
    assert_eq!(cert.status, CertificateStatus::Active);
    assert_eq!(cert.things, ["sensor-1"]);

    assert_eq!(
        store.all_retained().unwrap(),
        [retained("status/sensor-1", b"on\0")]
    );

    let mut expected = session("client-1");
    expected.queue.push(queued(3, "a/z"));
    assert_eq!(store.load_session("client-1").unwrap(), Some(expected));
}

#[test]
fn database_uses_wal_and_the_current_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let conn = raw_connection(dir.path());
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, crate::store::schema::current_version());
    assert!(version >= 1);
}

#[test]
fn clones_share_one_database_across_threads() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let store = store.clone();
            std::thread::spawn(move || {
                for j in 0..10 {
                    store
                        .create_thing(&format!("t-{i}-{j}"), None, &BTreeMap::new())
                        .unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    assert_eq!(store.list_things().unwrap().len(), 40);
}

#[test]
fn data_dir_below_a_regular_file_is_reported_as_not_writable() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let data_dir = file.path().join("sub");
    let err = Store::open(&data_dir).unwrap_err();
    assert!(
        matches!(err, StoreError::DataDirUnwritable { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with(&format!(
            "data directory {} is not writable: ",
            data_dir.display()
        )),
        "{err}"
    );
}

#[test]
fn a_file_that_is_not_a_database_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("iotcore.db"), vec![0x5a; 4096]).unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("iotcore.db"), "{err}");
}

#[test]
fn database_from_a_newer_iotcore_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    raw_connection(dir.path())
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
        "{err:?}"
    );
}

#[test]
fn values_not_written_by_iotcore_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.create_thing("t", None, &BTreeMap::new()).unwrap();
    raw_connection(dir.path())
        .execute("UPDATE things SET attributes = 'not json'", [])
        .unwrap();
    assert!(matches!(store.thing("t"), Err(StoreError::Sqlite(_))));
    assert!(matches!(store.list_things(), Err(StoreError::Sqlite(_))));
}

#[test]
fn creating_a_thing_twice_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.create_thing("t", None, &BTreeMap::new()).unwrap();
    let err = store.create_thing("t", None, &BTreeMap::new()).unwrap_err();
    assert!(
        matches!(err, StoreError::ThingExists(ref n) if n == "t"),
        "{err:?}"
    );
}

#[test]
fn invalid_thing_names_and_attributes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for name in ["", "with space", "dot.ted", &"x".repeat(129)] {
        let err = store
            .create_thing(name, None, &BTreeMap::new())
            .unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidThingName { .. }),
            "{name:?}: {err:?}"
        );
    }
    let err = store
        .create_thing("t", Some("bad type"), &BTreeMap::new())
        .unwrap_err();
    assert!(
        matches!(err, StoreError::InvalidThingName { .. }),
        "{err:?}"
    );
    let err = store
        .create_thing("t", None, &attrs(&[("a b", "v")]))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::InvalidAttribute { .. }),
        "{err:?}"
    );
    assert!(store.list_things().unwrap().is_empty());
}

#[test]
fn things_are_listed_by_name_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for name in ["b", "a", "c"] {
        store.create_thing(name, None, &BTreeMap::new()).unwrap();
    }
    let names: Vec<_> = store
        .list_things()
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert!(store.delete_thing("b", None).unwrap());
    assert!(!store.delete_thing("b", None).unwrap());
    assert_eq!(store.thing("b").unwrap(), None);
}

#[test]
fn a_thing_with_attached_certificates_cannot_be_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.create_thing("t", None, &BTreeMap::new()).unwrap();
    store
        .add_certificate(&cert_id(1), "PEM", CertificateStatus::Active)
        .unwrap();
    store.attach_thing_principal("t", &cert_id(1)).unwrap();
    let err = store.delete_thing("t", None).unwrap_err();
    assert!(matches!(err, StoreError::ThingHasPrincipals(_)), "{err:?}");
    assert!(store.detach_thing_principal("t", &cert_id(1)).unwrap());
    assert!(!store.detach_thing_principal("t", &cert_id(1)).unwrap());
    assert!(store.delete_thing("t", None).unwrap());
}

#[test]
fn certificate_status_transitions_follow_aws() {
    use CertificateStatus::*;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let id = cert_id(9);
    store
        .add_certificate(&id, "PEM", PendingActivation)
        .unwrap();
    let status = || {
        let status = store.certificate_status(&id).unwrap().unwrap();
        assert_eq!(status, store.certificate(&id).unwrap().unwrap().status);
        status
    };

    store.set_certificate_status(&id, Active).unwrap();
    assert_eq!(status(), Active);
    store.set_certificate_status(&id, Active).unwrap();
    store.set_certificate_status(&id, Inactive).unwrap();
    assert_eq!(status(), Inactive);
    let err = store
        .set_certificate_status(&id, PendingActivation)
        .unwrap_err();
    assert!(matches!(err, StoreError::StatusChange { .. }), "{err:?}");
    store.set_certificate_status(&id, Active).unwrap();
    store.set_certificate_status(&id, Revoked).unwrap();
    assert_eq!(status(), Revoked);
    store.set_certificate_status(&id, Revoked).unwrap();
    for to in [Active, Inactive] {
        let err = store.set_certificate_status(&id, to).unwrap_err();
        assert!(
            matches!(err, StoreError::StatusChange { from: Revoked, .. }),
            "{err:?}"
        );
    }
    assert_eq!(status(), Revoked);

    let err = store
        .set_certificate_status(&cert_id(8), Active)
        .unwrap_err();
    assert!(matches!(err, StoreError::CertificateNotFound(_)), "{err:?}");
    assert_eq!(store.certificate_status(&cert_id(8)).unwrap(), None);
}

#[test]
fn certificates_are_registered_once_under_a_valid_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .add_certificate(&cert_id(1), "PEM", CertificateStatus::Active)
        .unwrap();
    let err = store
        .add_certificate(&cert_id(1), "PEM", CertificateStatus::Active)
        .unwrap_err();
    assert!(matches!(err, StoreError::CertificateExists(_)), "{err:?}");
    let err = store
        .add_certificate("ABC", "PEM", CertificateStatus::Active)
        .unwrap_err();
    assert!(
        matches!(err, StoreError::InvalidCertificateId(_)),
        "{err:?}"
    );
    assert_eq!(store.certificate(&cert_id(2)).unwrap(), None);
}

#[test]
fn attachments_link_certificates_and_things_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for name in ["t1", "t2"] {
        store.create_thing(name, None, &BTreeMap::new()).unwrap();
    }
    for n in [1, 2, 3] {
        store
            .add_certificate(&cert_id(n), "PEM", CertificateStatus::Active)
            .unwrap();
    }
    store.attach_thing_principal("t2", &cert_id(1)).unwrap();
    store.attach_thing_principal("t1", &cert_id(1)).unwrap();
    store.attach_thing_principal("t1", &cert_id(1)).unwrap();
    store.attach_thing_principal("t1", &cert_id(2)).unwrap();

    assert_eq!(
        store.certificate(&cert_id(1)).unwrap().unwrap().things,
        ["t1", "t2"]
    );
    assert_eq!(
        store.thing_principals("t1").unwrap(),
        [cert_id(1), cert_id(2)]
    );
    let attached = |cert: u8, thing: &str| {
        store
            .attached_thing(&cert_id(cert), thing)
            .unwrap()
            .map(|t| t.name)
    };
    assert_eq!(attached(1, "t2").as_deref(), Some("t2"));
    assert_eq!(attached(2, "t1").as_deref(), Some("t1"));
    assert_eq!(attached(2, "t2"), None, "not attached");
    assert_eq!(attached(3, "t1"), None, "attached to nothing");
    assert_eq!(attached(1, "t3"), None, "no such thing");
    let listed: Vec<_> = store
        .list_certificates()
        .unwrap()
        .into_iter()
        .map(|c| (c.id, c.things))
        .collect();
    assert_eq!(
        listed,
        [
            (cert_id(1), vec!["t1".to_owned(), "t2".to_owned()]),
            (cert_id(2), vec!["t1".to_owned()]),
            (cert_id(3), vec![]),
        ]
    );

    let err = store
        .attach_thing_principal("nope", &cert_id(1))
        .unwrap_err();
    assert!(matches!(err, StoreError::ThingNotFound(_)), "{err:?}");
    let err = store.attach_thing_principal("t1", &cert_id(4)).unwrap_err();
    assert!(matches!(err, StoreError::CertificateNotFound(_)), "{err:?}");
}

#[test]
fn only_inactive_detached_certificates_can_be_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.create_thing("t", None, &BTreeMap::new()).unwrap();
    let id = cert_id(5);
    store
        .add_certificate(&id, "PEM", CertificateStatus::Active)
        .unwrap();
    store.attach_thing_principal("t", &id).unwrap();
    let err = store.delete_certificate(&id).unwrap_err();
    assert!(matches!(err, StoreError::CertificateActive(_)), "{err:?}");
    store
        .set_certificate_status(&id, CertificateStatus::Inactive)
        .unwrap();
    let err = store.delete_certificate(&id).unwrap_err();
    assert!(
        matches!(err, StoreError::CertificateAttached { .. }),
        "{err:?}"
    );
    store.detach_thing_principal("t", &id).unwrap();
    assert!(store.delete_certificate(&id).unwrap());
    assert!(!store.delete_certificate(&id).unwrap());
    assert_eq!(store.certificate(&id).unwrap(), None);
}

#[test]
fn retained_messages_are_replaced_per_topic_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    put_retained(&store, retained("b", b"1"));
    put_retained(&store, retained("a", b"2"));
    let mut plain = retained("b", b"3");
    plain.properties = MessageProperties::default();
    plain.expires_at = None;
    plain.qos = 0;
    put_retained(&store, plain.clone());

    assert_eq!(store.retained("b").unwrap(), Some(plain.clone()));
    assert_eq!(store.all_retained().unwrap(), [retained("a", b"2"), plain]);
    let delete = BrokerChange::DeleteRetained("a".into());
    store
        .apply_broker_changes(std::slice::from_ref(&delete))
        .unwrap();
    store.apply_broker_changes(&[delete]).unwrap();
    assert_eq!(store.retained("a").unwrap(), None);
    assert_eq!(store.all_retained().unwrap().len(), 1);
}

#[test]
fn a_session_changes_piece_by_piece_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .apply_broker_changes(&session_changes(&session("c")))
        .unwrap();
    let c = || "c".to_owned();
    store
        .apply_broker_changes(&[
            BrokerChange::PutSession {
                client_id: c(),
                protocol_version: 5,
                session_expiry_secs: 60,
                disconnected_at: None,
            },
            BrokerChange::DeleteSubscription {
                client_id: c(),
                filter: "b/#".into(),
            },
            BrokerChange::Dequeue {
                client_id: c(),
                seq: 2,
            },
            BrokerChange::Enqueue(c(), queued(10, "a/q")),
            BrokerChange::SetPacketId {
                client_id: c(),
                seq: 10,
                packet_id: Some(4),
            },
            BrokerChange::SetPacketId {
                client_id: c(),
                seq: 1,
                packet_id: Some(3),
            },
            BrokerChange::SetPacketId {
                client_id: c(),
                seq: 1,
                packet_id: None,
            },
        ])
        .unwrap();
    let mut expected = session("c");
    expected.session_expiry_secs = 60;
    expected.disconnected_at = None;
    expected.subscriptions.truncate(1);
    expected.queue = vec![queued(1, "a/x"), {
        let mut m = queued(10, "a/q");
        m.packet_id = Some(4);
        m
    }];
    assert_eq!(store.load_session("c").unwrap(), Some(expected));
    assert_eq!(store.load_session("other").unwrap(), None);
}

#[test]
fn changes_to_a_session_that_is_not_stored_do_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let gone = session("gone");
    let mut changes = session_changes(&gone);
    changes.remove(0);
    changes.push(BrokerChange::Dequeue {
        client_id: "gone".into(),
        seq: 1,
    });
    store.apply_broker_changes(&changes).unwrap();
    assert_eq!(store.load_session("gone").unwrap(), None);
    let conn = raw_connection(dir.path());
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM session_queue", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0);
}

#[test]
fn a_batch_that_fails_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    raw_connection(dir.path())
        .execute_batch("DROP TABLE retained_messages")
        .unwrap();
    let mut changes = session_changes(&session("c"));
    changes.push(BrokerChange::PutRetained(retained("r", b"1")));
    let error = store.apply_broker_changes(&changes).unwrap_err();
    assert!(error.to_string().contains("retained_messages"), "{error}");
    assert_eq!(store.load_session("c").unwrap(), None);
}

#[test]
fn deleting_a_session_deletes_its_subscriptions_and_queue() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .apply_broker_changes(&session_changes(&session("c")))
        .unwrap();
    store
        .apply_broker_changes(&[BrokerChange::DeleteSession("c".into())])
        .unwrap();
    assert_eq!(store.load_session("c").unwrap(), None);
    let conn = raw_connection(dir.path());
    for table in ["session_subscriptions", "session_queue"] {
        let rows: i64 = conn
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 0, "{table}");
    }
}

#[test]
fn fsync_switches_sqlite_to_synchronous_full_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let level = |store: &Store| -> i64 {
        store
            .conn()
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap()
    };
    // NORMAL is 1, FULL is 2.
    assert_eq!(level(&store), 1);
    store.set_fsync(true).unwrap();
    assert_eq!(level(&store), 2);
    store.set_fsync(false).unwrap();
    assert_eq!(level(&store), 1);
}
