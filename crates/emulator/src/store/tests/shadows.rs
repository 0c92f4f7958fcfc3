//! The store's shadows table: rows survive reopening, classic and named
//! shadows of one thing are separate, a deleted shadow keeps its version.

use crate::store::{ShadowRecord, Store};

fn record(
    shadow: &str,
    document: Option<&str>,
    version: u64,
    deleted_at: Option<i64>,
) -> ShadowRecord {
    ShadowRecord {
        thing_name: "dev1".into(),
        shadow_name: shadow.into(),
        document: document.map(str::to_owned),
        version,
        deleted_at,
    }
}

#[test]
fn shadows_are_stored_per_thing_and_name_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let classic = record(
        "",
        Some(r#"{"state":{},"metadata":{},"version":3}"#),
        3,
        None,
    );
    let named = record(
        "config",
        Some(r#"{"state":{},"metadata":{},"version":1}"#),
        1,
        None,
    );
    {
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.shadow("dev1", "").unwrap(), None);
        store.put_shadow(&classic).unwrap();
        store.put_shadow(&named).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.shadow("dev1", "").unwrap(), Some(classic));
    assert_eq!(store.shadow("dev1", "config").unwrap(), Some(named));
    assert_eq!(store.shadow("dev2", "").unwrap(), None);

    let deleted = record("config", None, 1, Some(1_700_000_000));
    store.put_shadow(&deleted).unwrap();
    assert_eq!(store.shadow("dev1", "config").unwrap(), Some(deleted));
}
