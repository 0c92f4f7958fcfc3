//! The JSON algebra of shadow documents: merge with `null` deletes, metadata
//! timestamps, delta, equality, nesting depth and size.
//!
//! Rules (docs/aws-iot-core-behaviour.md §3.4): objects merge recursively; a
//! `null` deletes its key; arrays and scalars are replaced whole; an object left
//! empty by a merge is removed. Metadata mirrors the state with
//! `{"timestamp": t}` for every leaf and, for an array, one metadata entry per
//! element, as AWS's own shadow implementation (Greengrass shadow manager) does.

use serde_json::{Map, Value};

/// A JSON object.
pub type Object = Map<String, Value>;

/// The metadata of a leaf value: `{"timestamp": now}`.
fn leaf_metadata(now: u64) -> Value {
    let mut leaf = Object::new();
    leaf.insert("timestamp".to_owned(), Value::from(now));
    Value::Object(leaf)
}

/// The metadata of `value` written at `now`: objects key by key, arrays element
/// by element, every other value (`null` included) `{"timestamp": now}`.
pub fn metadata_of(value: &Value, now: u64) -> Value {
    match value {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .map(|(k, v)| (k.clone(), metadata_of(v, now)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| metadata_of(v, now)).collect()),
        _ => leaf_metadata(now),
    }
}

/// Merges `patch` into `state` and keeps `metadata` in step (written at `now`):
/// `null` deletes a key, objects merge recursively, anything else replaces the
/// value whole; objects left empty are removed.
pub fn merge_with_metadata(state: &mut Object, metadata: &mut Object, patch: &Object, now: u64) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                state.remove(key);
                metadata.remove(key);
            }
            Value::Object(sub_patch) => {
                // An object merges into the object already there; anything else
                // there is replaced by a new object (and its metadata with it).
                let (mut sub_state, mut sub_metadata) = match state.remove(key) {
                    Some(Value::Object(old)) => match metadata.remove(key) {
                        Some(Value::Object(old_metadata)) => (old, old_metadata),
                        _ => (old, Object::new()),
                    },
                    _ => (Object::new(), Object::new()),
                };
                merge_with_metadata(&mut sub_state, &mut sub_metadata, sub_patch, now);
                if sub_state.is_empty() {
                    metadata.remove(key);
                } else {
                    state.insert(key.clone(), Value::Object(sub_state));
                    metadata.insert(key.clone(), Value::Object(sub_metadata));
                }
            }
            other => {
                state.insert(key.clone(), other.clone());
                metadata.insert(key.clone(), metadata_of(other, now));
            }
        }
    }
}

/// Merges `patch` into `target` by the shadow rules, without metadata (for a
/// device's local copy of its shadow).
pub fn merge(target: &mut Object, patch: &Object) {
    let mut ignored = Object::new();
    merge_with_metadata(target, &mut ignored, patch, 0);
}

/// JSON equality where numbers compare by value (`1` equals `1.0`).
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
                (Some(x), Some(y), _, _) => x == y,
                (_, _, Some(x), Some(y)) => x == y,
                _ => x.as_f64() == y.as_f64(),
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// The delta: every desired key whose value differs from reported, recursing
/// into objects present on both sides (paths kept); keys only in desired are
/// included, keys only in reported are not; arrays compare whole.
pub fn delta(desired: &Object, reported: Option<&Object>) -> Object {
    let mut out = Object::new();
    for (key, wanted) in desired {
        match (wanted, reported.and_then(|r| r.get(key))) {
            (Value::Object(wanted), Some(Value::Object(have))) => {
                let sub = delta(wanted, Some(have));
                if !sub.is_empty() {
                    out.insert(key.clone(), Value::Object(sub));
                }
            }
            (wanted, Some(have)) if json_eq(wanted, have) => {}
            (wanted, _) => {
                out.insert(key.clone(), wanted.clone());
            }
        }
    }
    out
}

/// The metadata of a delta: the desired metadata of each of its keys.
pub fn delta_metadata(delta: &Object, desired_metadata: &Object) -> Object {
    let mut out = Object::new();
    for (key, value) in delta {
        let Some(metadata) = desired_metadata.get(key) else {
            continue;
        };
        let entry = match (value, metadata) {
            (Value::Object(sub), Value::Object(sub_metadata)) => {
                Value::Object(delta_metadata(sub, sub_metadata))
            }
            _ => metadata.clone(),
        };
        out.insert(key.clone(), entry);
    }
    out
}

/// Nesting depth: every object or array is one level, scalars none
/// (`{"a":{"b":1}}` is 2).
pub fn depth(value: &Value) -> usize {
    match value {
        Value::Object(object) => 1 + object.values().map(depth).max().unwrap_or(0),
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Whether an array anywhere in `value` holds a `null` (AWS refuses those).
pub fn has_null_in_array(value: &Value) -> bool {
    match value {
        Value::Object(object) => object.values().any(has_null_in_array),
        Value::Array(items) => items.iter().any(|v| v.is_null() || has_null_in_array(v)),
        _ => false,
    }
}

/// Size of `object` as compact JSON, in bytes.
pub fn compact_len(object: &Object) -> usize {
    // Serializing a Value to a Vec cannot fail.
    serde_json::to_vec(object).map_or(0, |bytes| bytes.len())
}
