//! The shadow algebra, case by case.

use serde_json::{Value, json};

use super::*;

const T0: u64 = 1_000;
const T1: u64 = 2_000;

fn object(value: Value) -> json::Object {
    match value {
        Value::Object(object) => object,
        other => panic!("not an object: {other}"),
    }
}

fn parse(request: &Value) -> UpdateRequest {
    UpdateRequest::parse(request.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("{request}: {e}"))
}

/// Applies `steps` (update payloads) at T0 and returns the shadow.
fn shadow_after(steps: &[Value]) -> StoredShadow {
    let mut shadow = StoredShadow::default();
    for step in steps {
        shadow
            .update(&parse(step), T0)
            .unwrap_or_else(|e| panic!("{step}: {e}"));
    }
    shadow
}

/// The document's `state` as JSON.
fn state_of(shadow: &StoredShadow) -> Value {
    serde_json::to_value(shadow.document().expect("shadow exists").state()).unwrap()
}

#[test]
fn updates_merge_by_aws_rules() {
    let cases: &[(&str, &[Value], Value, Value)] = &[
        (
            "first update creates the section",
            &[],
            json!({"state": {"desired": {"a": 1}}}),
            json!({"desired": {"a": 1}}),
        ),
        (
            "nested objects merge key by key",
            &[json!({"state": {"desired": {"a": {"b": 1, "c": 2}, "d": 4}}})],
            json!({"state": {"desired": {"a": {"b": 3}}}}),
            json!({"desired": {"a": {"b": 3, "c": 2}, "d": 4}}),
        ),
        (
            "null deletes a key",
            &[json!({"state": {"reported": {"a": 1, "b": 2}}})],
            json!({"state": {"reported": {"a": null}}}),
            json!({"reported": {"b": 2}}),
        ),
        (
            "deleting the last nested key removes the emptied object",
            &[json!({"state": {"reported": {"a": {"b": 1}, "c": 1}}})],
            json!({"state": {"reported": {"a": {"b": null}}}}),
            json!({"reported": {"c": 1}}),
        ),
        (
            "deleting every key removes the section",
            &[json!({"state": {"desired": {"a": 1}, "reported": {"a": 1}}})],
            json!({"state": {"desired": {"a": null}}}),
            json!({"reported": {"a": 1}}),
        ),
        (
            "desired null removes the section",
            &[json!({"state": {"desired": {"a": 1, "b": {"c": 2}}, "reported": {"a": 0}}})],
            json!({"state": {"desired": null}}),
            json!({"reported": {"a": 0}}),
        ),
        (
            "state null clears both sections",
            &[json!({"state": {"desired": {"a": 1}, "reported": {"a": 0}}})],
            json!({"state": null}),
            json!({}),
        ),
        (
            "arrays are replaced whole",
            &[json!({"state": {"desired": {"colors": ["red", "green", "blue"]}}})],
            json!({"state": {"desired": {"colors": ["red"]}}}),
            json!({"desired": {"colors": ["red"]}}),
        ),
        (
            "a scalar becomes an object",
            &[json!({"state": {"desired": {"a": 1}}})],
            json!({"state": {"desired": {"a": {"b": 2}}}}),
            json!({"desired": {"a": {"b": 2}}}),
        ),
        (
            "an object becomes a scalar",
            &[json!({"state": {"desired": {"a": {"b": 2}}}})],
            json!({"state": {"desired": {"a": "x"}}}),
            json!({"desired": {"a": "x"}}),
        ),
        (
            "nulls inside a new object create nothing",
            &[],
            json!({"state": {"reported": {"a": {"b": null, "c": 1}, "d": {"e": null}}}}),
            json!({"reported": {"a": {"c": 1}}}),
        ),
        (
            "desired and reported in one request",
            &[json!({"state": {"desired": {"x": 1}}})],
            json!({"state": {"desired": {"y": 2}, "reported": {"x": 1}}}),
            json!({"desired": {"x": 1, "y": 2}, "reported": {"x": 1}}),
        ),
        (
            "other top-level keys are ignored",
            &[],
            json!({"state": {"reported": {"a": true}}, "extra": [1, 2]}),
            json!({"reported": {"a": true}}),
        ),
        (
            "an empty state changes nothing but the version",
            &[json!({"state": {"reported": {"a": 1}}})],
            json!({"state": {}}),
            json!({"reported": {"a": 1}}),
        ),
    ];
    for (name, before, request, expected) in cases {
        let mut shadow = shadow_after(before);
        let version_before = shadow.document().map_or(0, ShadowDocument::version);
        shadow
            .update(&parse(request), T1)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(state_of(&shadow), *expected, "{name}");
        let document = shadow.document().unwrap();
        assert_eq!(document.version(), version_before + 1, "{name}: version");
        // Metadata mirrors the state's shape.
        let metadata = serde_json::to_value(document.metadata()).unwrap();
        assert_eq!(
            metadata.get("desired").is_some(),
            expected.get("desired").is_some(),
            "{name}: {metadata}"
        );
        assert_eq!(
            metadata.get("reported").is_some(),
            expected.get("reported").is_some(),
            "{name}: {metadata}"
        );
    }
}

fn raw_update(payload: &[u8]) -> Result<UpdateRequest, ShadowError> {
    UpdateRequest::parse(payload)
}

#[test]
fn invalid_update_requests_get_aws_codes_and_messages() {
    // Levels: the section's object 1, then five more (AWS's maximum, 6).
    let deep_ok = json!({"state": {"desired": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}}});
    let too_deep =
        json!({"state": {"desired": {"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}}});
    let deep_array = json!({"state": {"desired": {"a": {"b": {"c": [[[[1]]]]}}}}});
    assert!(raw_update(deep_ok.to_string().as_bytes()).is_ok());
    assert!(
        raw_update(
            json!({"state": {"reported": {"a": {"b": {"c": [[[1]]]}}}}})
                .to_string()
                .as_bytes()
        )
        .is_ok()
    );
    let big = "x".repeat(MAX_STATE_BYTES);
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("empty payload", b"".to_vec(), 400, "Invalid JSON"),
        ("not JSON", b"hello".to_vec(), 400, "Invalid JSON"),
        (
            "truncated JSON",
            br#"{"state":{"#.to_vec(),
            400,
            "Invalid JSON",
        ),
        ("JSON array", b"[1]".to_vec(), 400, "Invalid JSON"),
        ("JSON string", br#""state""#.to_vec(), 400, "Invalid JSON"),
        (
            "not UTF-8",
            b"{\"state\":{\"reported\":{\"a\":\"\xff\"}}}".to_vec(),
            415,
            "Unsupported documented encoding; supported encoding is UTF-8",
        ),
        (
            "no state",
            br#"{"clientToken":"t"}"#.to_vec(),
            400,
            "Missing required node: state",
        ),
        (
            "state is a string",
            br#"{"state":"on"}"#.to_vec(),
            400,
            "State node must be an object",
        ),
        (
            "state is an array",
            br#"{"state":[]}"#.to_vec(),
            400,
            "State node must be an object",
        ),
        (
            "desired is a number",
            br#"{"state":{"desired":1}}"#.to_vec(),
            400,
            "Desired node must be an object",
        ),
        (
            "reported is an array",
            br#"{"state":{"reported":[1]}}"#.to_vec(),
            400,
            "Reported node must be an object",
        ),
        (
            "delta in the request",
            br#"{"state":{"delta":{"a":1}}}"#.to_vec(),
            400,
            "State contains an invalid node",
        ),
        (
            "unknown node in state",
            br#"{"state":{"reported":{"a":1},"wanted":{}}}"#.to_vec(),
            400,
            "State contains an invalid node",
        ),
        (
            "null in an array",
            br#"{"state":{"reported":{"a":[1,null]}}}"#.to_vec(),
            400,
            "State contains an invalid node",
        ),
        (
            "nested deeper than 6 in a section",
            too_deep.to_string().into_bytes(),
            400,
            "JSON contains too many levels of nesting; maximum is 6",
        ),
        (
            "arrays count as levels",
            deep_array.to_string().into_bytes(),
            400,
            "JSON contains too many levels of nesting; maximum is 6",
        ),
        (
            "clientToken over 64 bytes",
            json!({"state": {}, "clientToken": "t".repeat(65)})
                .to_string()
                .into_bytes(),
            400,
            "Invalid clientToken",
        ),
        (
            "clientToken not a string",
            br#"{"state":{},"clientToken":5}"#.to_vec(),
            400,
            "Invalid clientToken",
        ),
        (
            "version a string",
            br#"{"state":{},"version":"3"}"#.to_vec(),
            400,
            "Invalid version",
        ),
        (
            "version negative",
            br#"{"state":{},"version":-1}"#.to_vec(),
            400,
            "Invalid version",
        ),
        (
            "version fractional",
            br#"{"state":{},"version":1.5}"#.to_vec(),
            400,
            "Invalid version",
        ),
        (
            "request state over 8 KB",
            json!({"state": {"reported": {"a": big}}})
                .to_string()
                .into_bytes(),
            413,
            "The payload exceeds the maximum size allowed",
        ),
    ];
    for (name, payload, code, message) in cases {
        let err = raw_update(&payload).expect_err(name);
        assert_eq!(err.code(), code, "{name}: {err}");
        assert_eq!(err.to_string(), message, "{name}");
    }
}

#[test]
fn the_client_token_of_a_refused_request_is_echoed_when_valid() {
    assert_eq!(
        client_token_of(br#"{"clientToken":"abc","state":5}"#),
        Some("abc".into())
    );
    assert_eq!(client_token_of(br#"{"clientToken":5}"#), None);
    let long = json!({"clientToken": "t".repeat(65)}).to_string();
    assert_eq!(client_token_of(long.as_bytes()), None);
    assert_eq!(client_token_of(b"not json"), None);
    let token = "t".repeat(64);
    let exact = json!({"state": {}, "clientToken": token}).to_string();
    assert_eq!(
        parse(&serde_json::from_str(&exact).unwrap()).client_token,
        Some(token)
    );
}

#[test]
fn version_mismatch_is_a_conflict_and_changes_nothing() {
    let mut shadow = shadow_after(&[json!({"state": {"reported": {"a": 1}}})]);
    let before = shadow.clone();
    for version in [0, 2, 99] {
        let request = parse(&json!({"state": {"reported": {"a": 2}}, "version": version}));
        let err = shadow.update(&request, T1).unwrap_err();
        assert_eq!(err, ShadowError::VersionConflict);
        assert_eq!(
            (err.code(), err.to_string().as_str()),
            (409, "Version conflict")
        );
        assert_eq!(shadow, before);
    }
    let request = parse(&json!({"state": {"reported": {"a": 2}}, "version": 1}));
    let outcome = shadow.update(&request, T1).unwrap();
    assert_eq!(outcome.accepted.version, 2);
    // A version on a shadow that does not exist yet is checked against 0.
    let mut fresh = StoredShadow::default();
    let request = parse(&json!({"state": {"reported": {"a": 2}}, "version": 1}));
    assert_eq!(
        fresh.update(&request, T1),
        Err(ShadowError::VersionConflict)
    );
    let request = parse(&json!({"state": {"reported": {"a": 2}}, "version": 0}));
    assert_eq!(fresh.update(&request, T1).unwrap().accepted.version, 1);
}

#[test]
fn a_document_growing_over_8_kb_is_refused_and_unchanged() {
    let half = "x".repeat(MAX_STATE_BYTES / 2);
    let mut shadow = shadow_after(&[json!({"state": {"desired": {"a": half}}})]);
    let before = shadow.clone();
    let request = parse(&json!({"state": {"reported": {"b": half}}}));
    let err = shadow.update(&request, T1).unwrap_err();
    assert_eq!(err, ShadowError::PayloadTooLarge);
    assert_eq!(err.code(), 413);
    assert_eq!(shadow, before);
    // Metadata does not count: a state of exactly 8 KB is accepted.
    let filler = MAX_STATE_BYTES - r#"{"a":""}"#.len();
    let exact = shadow_after(&[json!({"state": {"reported": {"a": "y".repeat(filler)}}})]);
    assert_eq!(exact.document().unwrap().state_bytes(), MAX_STATE_BYTES);
}

#[test]
fn accepted_carries_only_what_the_request_sent_with_metadata() {
    let mut shadow = shadow_after(&[json!({"state": {"desired": {"keep": 1, "gone": 2}}})]);
    let request = parse(&json!({
        "state": {"desired": {"color": "red", "gone": null, "seq": [1, {"x": 2}], "n": {"m": 1}}},
        "clientToken": "tok-1"
    }));
    let outcome = shadow.update(&request, T1).unwrap();
    assert_eq!(
        serde_json::to_value(&outcome.accepted).unwrap(),
        json!({
            "state": {"desired": {"color": "red", "gone": null, "seq": [1, {"x": 2}], "n": {"m": 1}}},
            "metadata": {"desired": {
                "color": {"timestamp": T1},
                "gone": {"timestamp": T1},
                "seq": [{"timestamp": T1}, {"x": {"timestamp": T1}}],
                "n": {"m": {"timestamp": T1}}
            }},
            "version": 2,
            "timestamp": T1,
            "clientToken": "tok-1"
        })
    );
    let removal = parse(&json!({"state": {"reported": null}}));
    let outcome = shadow.update(&removal, T1).unwrap();
    assert_eq!(
        serde_json::to_value(&outcome.accepted).unwrap(),
        json!({
            "state": {"reported": null},
            "metadata": {"reported": {"timestamp": T1}},
            "version": 3,
            "timestamp": T1
        })
    );
}

#[test]
fn metadata_keeps_each_leafs_own_timestamp() {
    let mut shadow = shadow_after(&[
        json!({"state": {"reported": {"a": 1, "o": {"x": 1, "y": 2}, "l": [1, 2]}}}),
    ]);
    shadow
        .update(
            &parse(&json!({"state": {"reported": {"o": {"y": 3}, "l": [5]}}})),
            T1,
        )
        .unwrap();
    let document = shadow.document().unwrap();
    assert_eq!(
        serde_json::to_value(document.metadata()).unwrap(),
        json!({"reported": {
            "a": {"timestamp": T0},
            "o": {"x": {"timestamp": T0}, "y": {"timestamp": T1}},
            "l": [{"timestamp": T1}]
        }})
    );
}

#[test]
fn delta_holds_every_differing_desired_value() {
    let cases: &[(&str, Value, Value, Option<Value>)] = &[
        ("equal", json!({"a": 1}), json!({"a": 1}), None),
        (
            "numbers compare by value",
            json!({"a": 1}),
            json!({"a": 1.0}),
            None,
        ),
        (
            "desired-only keys are in",
            json!({"a": 1, "b": 2}),
            json!({"a": 1}),
            Some(json!({"b": 2})),
        ),
        (
            "reported-only keys are not",
            json!({"a": 1}),
            json!({"a": 1, "z": 0}),
            None,
        ),
        (
            "nested paths are kept",
            json!({"o": {"p": {"q": 1, "r": 2}, "s": 3}}),
            json!({"o": {"p": {"q": 1, "r": 9}, "s": 3}}),
            Some(json!({"o": {"p": {"r": 2}}})),
        ),
        (
            "a desired-only object comes whole",
            json!({"o": {"p": 1, "q": 2}}),
            json!({}),
            Some(json!({"o": {"p": 1, "q": 2}})),
        ),
        (
            "arrays compare whole and come whole",
            json!({"l": [1, 2, 3]}),
            json!({"l": [1, 2]}),
            Some(json!({"l": [1, 2, 3]})),
        ),
        (
            "equal arrays",
            json!({"l": [1, {"a": 2}]}),
            json!({"l": [1, {"a": 2}]}),
            None,
        ),
        (
            "type change",
            json!({"a": "1"}),
            json!({"a": 1}),
            Some(json!({"a": "1"})),
        ),
        (
            "object versus scalar",
            json!({"a": {"b": 1}}),
            json!({"a": 1}),
            Some(json!({"a": {"b": 1}})),
        ),
    ];
    for (name, desired, reported, expected) in cases {
        let mut shadow = shadow_after(&[json!({"state": {"reported": reported}})]);
        if reported.as_object().is_some_and(|r| r.is_empty()) {
            shadow = StoredShadow::default();
        }
        let outcome = shadow
            .update(
                &parse(&json!({"state": {"desired": desired}, "clientToken": "d"})),
                T1,
            )
            .unwrap();
        let delta = outcome
            .delta
            .as_ref()
            .map(|d| Value::Object(d.state.clone()));
        assert_eq!(delta, *expected, "{name}");
        let get = shadow.get(None, "thing", T1).unwrap();
        assert_eq!(get.state.delta.map(Value::Object), *expected, "{name}: get");
        if let Some(event) = outcome.delta {
            assert_eq!(event.version, outcome.accepted.version, "{name}");
            assert_eq!(event.client_token.as_deref(), Some("d"), "{name}");
            assert_eq!(event.timestamp, T1, "{name}");
        }
    }
}

#[test]
fn delta_event_shape_and_metadata() {
    let mut shadow = shadow_after(&[
        json!({"state": {"reported": {"a": 1, "o": {"x": 1}}}}),
        json!({"state": {"desired": {"a": 1, "o": {"x": 2, "y": 3}, "l": [1, 2]}}}),
    ]);
    let outcome = shadow
        .update(&parse(&json!({"state": {"desired": {"b": true}}})), T1)
        .unwrap();
    assert_eq!(
        serde_json::to_value(outcome.delta.unwrap()).unwrap(),
        json!({
            "state": {"o": {"x": 2, "y": 3}, "l": [1, 2], "b": true},
            "metadata": {
                "o": {"x": {"timestamp": T0}, "y": {"timestamp": T0}},
                "l": [{"timestamp": T0}, {"timestamp": T0}],
                "b": {"timestamp": T1}
            },
            "version": 3,
            "timestamp": T1
        })
    );
}

#[test]
fn delta_is_published_only_for_updates_that_carry_desired() {
    let mut shadow = shadow_after(&[json!({"state": {"desired": {"a": 2}}})]);
    // The device reports something else: a delta remains, but no event.
    let outcome = shadow
        .update(&parse(&json!({"state": {"reported": {"b": 1}}})), T1)
        .unwrap();
    assert!(outcome.delta.is_none());
    // The device catches up: nothing differs.
    let outcome = shadow
        .update(&parse(&json!({"state": {"reported": {"a": 2}}})), T1)
        .unwrap();
    assert!(outcome.delta.is_none());
    assert!(shadow.get(None, "t", T1).unwrap().state.delta.is_none());
    // Desired equal to reported: no event.
    let outcome = shadow
        .update(&parse(&json!({"state": {"desired": {"a": 2}}})), T1)
        .unwrap();
    assert!(outcome.delta.is_none());
}

#[test]
fn documents_carry_previous_and_current() {
    let mut shadow = StoredShadow::default();
    let first = shadow
        .update(
            &parse(&json!({"state": {"reported": {"a": 1}}, "clientToken": "c1"})),
            T0,
        )
        .unwrap();
    assert_eq!(
        serde_json::to_value(&first.documents).unwrap(),
        json!({
            "current": {"state": {"reported": {"a": 1}}, "metadata": {"reported": {"a": {"timestamp": T0}}}, "version": 1},
            "timestamp": T0,
            "clientToken": "c1"
        })
    );
    let second = shadow
        .update(&parse(&json!({"state": {"desired": {"a": 2}}})), T1)
        .unwrap();
    assert_eq!(
        serde_json::to_value(&second.documents).unwrap(),
        json!({
            "previous": {"state": {"reported": {"a": 1}}, "metadata": {"reported": {"a": {"timestamp": T0}}}, "version": 1},
            "current": {
                "state": {"desired": {"a": 2}, "reported": {"a": 1}},
                "metadata": {"desired": {"a": {"timestamp": T1}}, "reported": {"a": {"timestamp": T0}}},
                "version": 2
            },
            "timestamp": T1
        })
    );
    assert_eq!(second.document, second.documents.current);
}

#[test]
fn get_returns_the_whole_document_or_404() {
    let shadow = StoredShadow::default();
    let err = shadow.get(Some("g".into()), "config", T0).unwrap_err();
    assert_eq!(
        (err.code(), err.to_string()),
        (404, "No shadow exists with name: 'config'".to_owned())
    );
    let shadow =
        shadow_after(&[json!({"state": {"desired": {"a": 2}, "reported": {"a": 1, "b": 0}}})]);
    assert_eq!(
        serde_json::to_value(shadow.get(Some("g".into()), "t", T1).unwrap()).unwrap(),
        json!({
            "state": {"desired": {"a": 2}, "reported": {"a": 1, "b": 0}, "delta": {"a": 2}},
            "metadata": {
                "desired": {"a": {"timestamp": T0}},
                "reported": {"a": {"timestamp": T0}, "b": {"timestamp": T0}}
            },
            "version": 1,
            "timestamp": T1,
            "clientToken": "g"
        })
    );
    let emptied = shadow_after(&[
        json!({"state": {"reported": {"a": 1}}}),
        json!({"state": null}),
    ]);
    assert_eq!(
        serde_json::to_value(emptied.get(None, "t", T1).unwrap()).unwrap(),
        json!({"state": {}, "metadata": {}, "version": 2, "timestamp": T1})
    );
}

#[test]
fn delete_remembers_the_version_for_48_hours() {
    let mut shadow = shadow_after(&[
        json!({"state": {"reported": {"a": 1}}}),
        json!({"state": {"reported": {"a": 2}}}),
    ]);
    let deleted = shadow.delete(Some("d".into()), "t", T1).unwrap();
    assert_eq!(
        serde_json::to_value(&deleted).unwrap(),
        json!({"version": 2, "timestamp": T1, "clientToken": "d"})
    );
    assert_eq!(
        shadow.tombstone(),
        Some(&Tombstone {
            version: 2,
            deleted_at: T1
        })
    );
    assert_eq!(shadow.get(None, "t", T1).unwrap_err().code(), 404);
    assert_eq!(shadow.delete(None, "t", T1).unwrap_err().code(), 404);
    // Re-created within 48 hours: numbering continues.
    let mut again = shadow.clone();
    let outcome = again
        .update(&parse(&json!({"state": {"reported": {"b": 1}}})), T1 + 60)
        .unwrap();
    assert_eq!(outcome.accepted.version, 3);
    assert!(outcome.documents.previous.is_none());
    assert_eq!(state_of(&again), json!({"reported": {"b": 1}}));
    assert_eq!(again.tombstone(), None);
    // The version check applies to the remembered version.
    let mut checked = shadow.clone();
    let request = parse(&json!({"state": {"reported": {"b": 1}}, "version": 2}));
    assert_eq!(
        checked.update(&request, T1 + 60).unwrap().accepted.version,
        3
    );
    // Later: numbering starts again.
    let later = T1 + DELETED_VERSION_RETENTION_SECS;
    let outcome = shadow
        .update(&parse(&json!({"state": {"reported": {"b": 1}}})), later)
        .unwrap();
    assert_eq!(outcome.accepted.version, 1);
}

#[test]
fn get_and_delete_payloads() {
    assert_eq!(TokenRequest::parse_get(b""), Ok(TokenRequest::default()));
    assert_eq!(
        TokenRequest::parse_get(br#"{"clientToken":"x","other":1}"#),
        Ok(TokenRequest::with_client_token("x"))
    );
    assert_eq!(TokenRequest::parse_get(b"{}"), Ok(TokenRequest::default()));
    assert_eq!(
        TokenRequest::parse_get(b"junk"),
        Err(ShadowError::InvalidJson)
    );
    assert_eq!(
        TokenRequest::parse_get(br#"{"clientToken":1}"#),
        Err(ShadowError::InvalidClientToken)
    );
    assert_eq!(
        TokenRequest::parse_delete(b"junk"),
        Ok(TokenRequest::default())
    );
    assert_eq!(TokenRequest::parse_delete(b""), Ok(TokenRequest::default()));
    assert_eq!(
        TokenRequest::parse_delete(br#"{"clientToken":"y"}"#),
        Ok(TokenRequest::with_client_token("y"))
    );
    let long = json!({"clientToken": "t".repeat(65)}).to_string();
    assert_eq!(
        TokenRequest::parse_delete(long.as_bytes()),
        Err(ShadowError::InvalidClientToken)
    );
    assert_eq!(
        TokenRequest::with_client_token("z").to_json(),
        br#"{"clientToken":"z"}"#
    );
    assert_eq!(TokenRequest::default().to_json(), b"{}");
}

#[test]
fn requests_serialize_as_aws_expects_and_parse_back() {
    let request = UpdateRequest::reported(object(json!({"fw": "1.2"})))
        .with_version(7)
        .with_client_token("c");
    let bytes = request.to_json();
    assert_eq!(
        serde_json::from_slice::<Value>(&bytes).unwrap(),
        json!({"state": {"reported": {"fw": "1.2"}}, "version": 7, "clientToken": "c"})
    );
    assert_eq!(UpdateRequest::parse(&bytes).unwrap(), request);
    let clear = UpdateRequest {
        state: UpdateState {
            desired: StatePatch::Clear,
            reported: StatePatch::Absent,
        },
        ..UpdateRequest::default()
    };
    assert_eq!(clear.to_json(), br#"{"state":{"desired":null}}"#);
    assert_eq!(UpdateRequest::parse(&clear.to_json()).unwrap(), clear);
    let desired = UpdateRequest::desired(object(json!({"on": true})));
    assert_eq!(desired.to_json(), br#"{"state":{"desired":{"on":true}}}"#);
    assert_eq!(
        StatePatch::from_value(json!(3), Section::Reported),
        Err(ShadowError::SectionNotObject(Section::Reported))
    );
}

#[test]
fn error_responses() {
    assert_eq!(
        serde_json::to_value(ShadowError::InvalidJson.to_response(Some("t".into()), T0)).unwrap(),
        json!({"code": 400, "message": "Invalid JSON", "timestamp": T0, "clientToken": "t"})
    );
    assert_eq!(
        serde_json::to_value(ShadowError::VersionConflict.to_response(Some("t".into()), T0))
            .unwrap(),
        json!({"code": 409, "message": "Version conflict", "clientToken": "t"})
    );
    assert_eq!(
        serde_json::to_value(ShadowError::TooManyRequests.to_response(None, T0)).unwrap(),
        json!({"code": 429, "message": "Too Many Requests", "timestamp": T0})
    );
    assert_eq!(ShadowError::InternalFailure.code(), 500);
}

#[test]
fn documents_round_trip_through_json() {
    let shadow = shadow_after(&[
        json!({"state": {"desired": {"a": [1, 2], "o": {"p": "q"}}, "reported": {"a": 1}}}),
    ]);
    let document = shadow.document().unwrap();
    let text = document.to_json();
    assert_eq!(ShadowDocument::from_json(&text).unwrap(), *document);
    assert!(ShadowDocument::from_json("{\"state\":5}").is_err());
}

#[test]
fn replies_as_aws_sends_them_deserialize() {
    let accepted: UpdateAccepted = serde_json::from_value(json!({
        "state": {"desired": null, "reported": {"color": "red"}},
        "metadata": {"desired": {"timestamp": 5}, "reported": {"color": {"timestamp": 5}}},
        "timestamp": 5, "clientToken": "token", "version": 5
    }))
    .unwrap();
    assert_eq!(accepted.state.desired, Some(Value::Null));
    assert_eq!(accepted.state.reported, Some(json!({"color": "red"})));
    let reported_only: UpdateAccepted = serde_json::from_value(json!({
        "state": {"reported": {"a": 1}}, "metadata": {"reported": {"a": {"timestamp": 5}}},
        "timestamp": 5, "version": 1
    }))
    .unwrap();
    assert_eq!(reported_only.state.desired, None);
    let get: GetAccepted = serde_json::from_value(json!({
        "state": {"desired": {"a": 1}, "delta": {"a": 1}},
        "metadata": {"desired": {"a": {"timestamp": 5}}},
        "version": 3, "timestamp": 6
    }))
    .unwrap();
    assert_eq!(get.state.delta, Some(object(json!({"a": 1}))));
    let delta: DeltaEvent = serde_json::from_value(json!({
        "state": {"a": 1}, "metadata": {"a": {"timestamp": 5}}, "version": 3, "timestamp": 6
    }))
    .unwrap();
    assert_eq!(delta.client_token, None);
    let documents: DocumentsEvent = serde_json::from_value(json!({
        "previous": {"state": {"desired": {}, "reported": {}}, "metadata": {"desired": {}, "reported": {}}, "version": 4},
        "current": {"state": {"desired": {"a": 1}}, "metadata": {"desired": {"a": {"timestamp": 5}}}, "version": 5},
        "timestamp": 5, "clientToken": "token"
    }))
    .unwrap();
    assert_eq!(documents.current.version(), 5);
    assert_eq!(documents.previous.map(|p| p.version()), Some(4));
    let deleted: DeleteAccepted =
        serde_json::from_value(json!({"version": 4, "timestamp": 1591057529})).unwrap();
    assert_eq!(deleted.version, 4);
    let error: ErrorResponse = serde_json::from_value(json!({
        "code": 404, "message": "No shadow exists with name: 'Limits'", "clientToken": "x"
    }))
    .unwrap();
    assert_eq!((error.code, error.timestamp), (404, None));
}

#[test]
fn a_stored_document_reads_back_the_same_numbers() {
    // Found by fuzzing: without exact float parsing, 9.9000000000009e+33 read
    // back from the store was 9.900000000000901e+33.
    let mut shadow = StoredShadow::default();
    let request = raw_update(
        br#"{"state":{"reported":{"f":9900000000000900632337040368467957,"g":5e-324,"h":0.1}}}"#,
    )
    .unwrap();
    shadow.update(&request, 1).unwrap();
    let stored = shadow.document().unwrap().to_json();
    let back = ShadowDocument::from_json(&stored).unwrap();
    assert_eq!(back.to_json(), stored);
    assert_eq!(&back, shadow.document().unwrap());
}
