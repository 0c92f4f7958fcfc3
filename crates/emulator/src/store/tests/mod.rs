//! Tests of the SQLite store: what survives a restart, the registry's rules,
//! and failures that must be typed errors.

mod provisioning;
mod registry;
mod shadows;

use super::*;

#[test]
fn store_is_send_sync_and_clone() {
    fn assert_traits<T: Send + Sync + Clone + 'static>() {}
    assert_traits::<Store>();
}

#[test]
fn user_properties_round_trip_in_order_with_duplicates() {
    let props = vec![
        ("b".to_owned(), "1".to_owned()),
        ("a".to_owned(), "2".to_owned()),
        ("b".to_owned(), "3".to_owned()),
    ];
    let json = user_properties_to_json(&props);
    assert_eq!(json, r#"[["b","1"],["a","2"],["b","3"]]"#);
    assert_eq!(user_properties_from_json(&json, 0).unwrap(), props);
    assert!(user_properties_from_json("{", 0).is_err());
}
