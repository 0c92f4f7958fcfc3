//! The Device Shadow service over MQTT, as a device sees it: a table of
//! request/reply cases (merge, null deletes, arrays, metadata, deltas, version
//! conflicts, every error code), then the rules around them (wildcard
//! subscribers, 429, authorization, cloud-side updates, restart).
//!
//! Replies are compared whole, with every `timestamp` set to 0.

mod support;

use bytes::Bytes;
use iotcore_mqtt::packet::Publish;
use iotcore_mqtt::{ProtocolVersion, QoS};
use serde_json::{Value, json};
use support::{Device, RawClient, Setup};

/// A device connection speaking to its shadows.
struct ShadowDevice {
    raw: RawClient,
    thing: String,
    next_packet_id: u16,
}

impl ShadowDevice {
    async fn connect(setup: &Setup, device: &Device, protocol: ProtocolVersion) -> ShadowDevice {
        ShadowDevice {
            raw: RawClient::connected(setup.addr(), device, protocol).await,
            thing: device.name.clone(),
            next_packet_id: 1,
        }
    }

    fn packet_id(&mut self) -> u16 {
        let id = self.next_packet_id;
        self.next_packet_id = self.next_packet_id.wrapping_add(1).max(1);
        id
    }

    /// `$aws/things/<thing>/shadow[/name/<shadow>]`.
    fn prefix(&self, shadow: Option<&str>) -> String {
        match shadow {
            Some(name) => format!("$aws/things/{}/shadow/name/{name}", self.thing),
            None => format!("$aws/things/{}/shadow", self.thing),
        }
    }

    async fn subscribe(&mut self, filters: &[&str]) {
        let id = self.packet_id();
        let reasons = self.raw.subscribe(id, filters, QoS::AtLeastOnce).await;
        assert!(
            reasons.iter().all(|r| !r.is_error()),
            "{filters:?}: {reasons:?}"
        );
    }

    /// Publishes `payload` on `<prefix>/<operation>` at QoS 1 and waits for the PUBACK.
    async fn request(&mut self, shadow: Option<&str>, operation: &str, payload: impl Into<Bytes>) {
        let topic = format!("{}/{operation}", self.prefix(shadow));
        let id = self.packet_id();
        let reason = self.raw.publish_qos1(id, &topic, payload).await;
        assert!(!reason.is_error(), "{topic}: {reason:?}");
    }

    /// The next reply: its topic relative to the shadow prefix and its JSON
    /// with timestamps zeroed.
    async fn reply(&mut self, shadow: Option<&str>) -> (String, Value) {
        let publish = self.raw.recv_publish().await;
        relative(&self.prefix(shadow), &publish)
    }
}

fn relative(prefix: &str, publish: &Publish) -> (String, Value) {
    let tail = publish
        .topic
        .strip_prefix(prefix)
        .and_then(|t| t.strip_prefix('/'))
        .unwrap_or_else(|| panic!("reply on {} is not under {prefix}", publish.topic));
    let mut value: Value = serde_json::from_slice(&publish.payload)
        .unwrap_or_else(|e| panic!("reply on {} is not JSON: {e}", publish.topic));
    zero_timestamps(&mut value);
    (tail.to_owned(), value)
}

/// Sets every `"timestamp"` number to 0, checking that it was a plausible
/// unix time in seconds.
fn zero_timestamps(value: &mut Value) {
    match value {
        Value::Object(object) => {
            for (key, v) in object.iter_mut() {
                if key == "timestamp" {
                    let secs = v
                        .as_u64()
                        .unwrap_or_else(|| panic!("timestamp {v} is not a number"));
                    assert!(
                        (1_600_000_000..10_000_000_000).contains(&secs),
                        "timestamp {secs} is not unix seconds"
                    );
                    *v = json!(0);
                } else {
                    zero_timestamps(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(zero_timestamps),
        _ => {}
    }
}

/// Metadata of one leaf, timestamps zeroed.
fn ts() -> Value {
    json!({"timestamp": 0})
}

/// One request and the replies it must produce, in order.
struct Step {
    operation: &'static str,
    payload: Vec<u8>,
    replies: Vec<(&'static str, Value)>,
}

fn step(operation: &'static str, payload: Value, replies: Vec<(&'static str, Value)>) -> Step {
    Step {
        operation,
        payload: payload.to_string().into_bytes(),
        replies,
    }
}

fn raw_step(operation: &'static str, payload: &[u8], replies: Vec<(&'static str, Value)>) -> Step {
    Step {
        operation,
        payload: payload.to_vec(),
        replies,
    }
}

fn rejected(
    operation: &'static str,
    code: u16,
    message: &str,
    token: Option<&str>,
) -> (&'static str, Value) {
    let topic = match operation {
        "get" => "get/rejected",
        "update" => "update/rejected",
        _ => "delete/rejected",
    };
    let mut body = json!({"code": code, "message": message});
    if code != 409 {
        body["timestamp"] = json!(0);
    }
    if let Some(token) = token {
        body["clientToken"] = json!(token);
    }
    (topic, body)
}

fn cases() -> Vec<(&'static str, Vec<Step>)> {
    vec![
        (
            "update creates the shadow; get returns it with metadata",
            vec![
                step(
                    "get",
                    json!({"clientToken": "g0"}),
                    vec![rejected(
                        "get",
                        404,
                        "No shadow exists with name: '{shadow}'",
                        Some("g0"),
                    )],
                ),
                step(
                    "update",
                    json!({"state": {"reported": {"temp": 21, "fw": "1.0"}}, "clientToken": "u1"}),
                    vec![
                        (
                            "update/accepted",
                            json!({
                                "state": {"reported": {"temp": 21, "fw": "1.0"}},
                                "metadata": {"reported": {"temp": ts(), "fw": ts()}},
                                "version": 1, "timestamp": 0, "clientToken": "u1"
                            }),
                        ),
                        (
                            "update/documents",
                            json!({
                                "current": {
                                    "state": {"reported": {"temp": 21, "fw": "1.0"}},
                                    "metadata": {"reported": {"temp": ts(), "fw": ts()}},
                                    "version": 1
                                },
                                "timestamp": 0, "clientToken": "u1"
                            }),
                        ),
                    ],
                ),
                step(
                    "get",
                    json!({"clientToken": "g1"}),
                    vec![(
                        "get/accepted",
                        json!({
                            "state": {"reported": {"temp": 21, "fw": "1.0"}},
                            "metadata": {"reported": {"temp": ts(), "fw": ts()}},
                            "version": 1, "timestamp": 0, "clientToken": "g1"
                        }),
                    )],
                ),
            ],
        ),
        (
            "nested objects merge; null deletes keys; emptied objects go",
            vec![
                step(
                    "update",
                    json!({"state": {"reported": {"a": 1, "o": {"x": 1, "y": {"z": 1}}}}}),
                    vec![
                        (
                            "update/accepted",
                            json!({
                                "state": {"reported": {"a": 1, "o": {"x": 1, "y": {"z": 1}}}},
                                "metadata": {"reported": {"a": ts(), "o": {"x": ts(), "y": {"z": ts()}}}},
                                "version": 1, "timestamp": 0
                            }),
                        ),
                        (
                            "update/documents",
                            json!({
                                "current": {"state": {"reported": {"a": 1, "o": {"x": 1, "y": {"z": 1}}}},
                                            "metadata": {"reported": {"a": ts(), "o": {"x": ts(), "y": {"z": ts()}}}},
                                            "version": 1},
                                "timestamp": 0
                            }),
                        ),
                    ],
                ),
                step(
                    "update",
                    json!({"state": {"reported": {"a": null, "o": {"y": {"z": null}, "w": 2}}}}),
                    vec![
                        (
                            "update/accepted",
                            json!({
                                "state": {"reported": {"a": null, "o": {"y": {"z": null}, "w": 2}}},
                                "metadata": {"reported": {"a": ts(), "o": {"y": {"z": ts()}, "w": ts()}}},
                                "version": 2, "timestamp": 0
                            }),
                        ),
                        (
                            "update/documents",
                            json!({
                                "previous": {"state": {"reported": {"a": 1, "o": {"x": 1, "y": {"z": 1}}}},
                                             "metadata": {"reported": {"a": ts(), "o": {"x": ts(), "y": {"z": ts()}}}},
                                             "version": 1},
                                "current": {"state": {"reported": {"o": {"x": 1, "w": 2}}},
                                            "metadata": {"reported": {"o": {"x": ts(), "w": ts()}}},
                                            "version": 2},
                                "timestamp": 0
                            }),
                        ),
                    ],
                ),
            ],
        ),
        (
            "arrays are replaced whole, with metadata per element",
            vec![
                step(
                    "update",
                    json!({"state": {"desired": {"seq": [1, 2, 3]}, "reported": {"seq": [1, 2, 3]}}}),
                    vec![
                        (
                            "update/accepted",
                            json!({
                                "state": {"desired": {"seq": [1, 2, 3]}, "reported": {"seq": [1, 2, 3]}},
                                "metadata": {"desired": {"seq": [ts(), ts(), ts()]}, "reported": {"seq": [ts(), ts(), ts()]}},
                                "version": 1, "timestamp": 0
                            }),
                        ),
                        (
                            "update/documents",
                            json!({
                                "current": {"state": {"desired": {"seq": [1, 2, 3]}, "reported": {"seq": [1, 2, 3]}},
                                            "metadata": {"desired": {"seq": [ts(), ts(), ts()]}, "reported": {"seq": [ts(), ts(), ts()]}},
                                            "version": 1},
                                "timestamp": 0
                            }),
                        ),
                    ],
                ),
                step(
                    "update",
                    json!({"state": {"desired": {"seq": [{"k": "v"}]}}, "clientToken": "arr"}),
                    vec![
                        (
                            "update/accepted",
                            json!({
                                "state": {"desired": {"seq": [{"k": "v"}]}},
                                "metadata": {"desired": {"seq": [{"k": ts()}]}},
                                "version": 2, "timestamp": 0, "clientToken": "arr"
                            }),
                        ),
                        (
                            "update/delta",
                            json!({
                                "state": {"seq": [{"k": "v"}]},
                                "metadata": {"seq": [{"k": ts()}]},
                                "version": 2, "timestamp": 0, "clientToken": "arr"
                            }),
                        ),
                        (
                            "update/documents",
                            json!({
                                "previous": {"state": {"desired": {"seq": [1, 2, 3]}, "reported": {"seq": [1, 2, 3]}},
                                             "metadata": {"desired": {"seq": [ts(), ts(), ts()]}, "reported": {"seq": [ts(), ts(), ts()]}},
                                             "version": 1},
                                "current": {"state": {"desired": {"seq": [{"k": "v"}]}, "reported": {"seq": [1, 2, 3]}},
                                            "metadata": {"desired": {"seq": [{"k": ts()}]}, "reported": {"seq": [ts(), ts(), ts()]}},
                                            "version": 2},
                                "timestamp": 0, "clientToken": "arr"
                            }),
                        ),
                    ],
                ),
            ],
        ),
        (
            "delta: nested paths, desired-only keys in, reported-only keys out, only when different",
            vec![
                step(
                    "update",
                    json!({"state": {"reported": {"on": true, "cfg": {"rate": 1, "mode": "a"}, "extra": 1}}}),
                    vec![
                        (
                            "update/accepted",
                            json!({
                                "state": {"reported": {"on": true, "cfg": {"rate": 1, "mode": "a"}, "extra": 1}},
                                "metadata": {"reported": {"on": ts(), "cfg": {"rate": ts(), "mode": ts()}, "extra": ts()}},
                                "version": 1, "timestamp": 0
                            }),
                        ),
                        (
                            "update/documents",
                            json!({
                                "current": {"state": {"reported": {"on": true, "cfg": {"rate": 1, "mode": "a"}, "extra": 1}},
                                            "metadata": {"reported": {"on": ts(), "cfg": {"rate": ts(), "mode": ts()}, "extra": ts()}},
                                            "version": 1},
                                "timestamp": 0
                            }),
                        ),
                    ],
                ),
                step(
                    "update",
                    json!({"state": {"desired": {"on": true, "cfg": {"rate": 5, "mode": "a"}, "new": "x"}}, "clientToken": "d1"}),
                    vec![
                        (
                            "update/accepted",
                            json!({
                                "state": {"desired": {"on": true, "cfg": {"rate": 5, "mode": "a"}, "new": "x"}},
                                "metadata": {"desired": {"on": ts(), "cfg": {"rate": ts(), "mode": ts()}, "new": ts()}},
                                "version": 2, "timestamp": 0, "clientToken": "d1"
                            }),
                        ),
                        (
                            "update/delta",
                            json!({
                                "state": {"cfg": {"rate": 5}, "new": "x"},
                                "metadata": {"cfg": {"rate": ts()}, "new": ts()},
                                "version": 2, "timestamp": 0, "clientToken": "d1"
                            }),
                        ),
                        (
                            "update/documents",
                            json!({
                                "previous": {"state": {"reported": {"on": true, "cfg": {"rate": 1, "mode": "a"}, "extra": 1}},
                                             "metadata": {"reported": {"on": ts(), "cfg": {"rate": ts(), "mode": ts()}, "extra": ts()}},
                                             "version": 1},
                                "current": {"state": {"desired": {"on": true, "cfg": {"rate": 5, "mode": "a"}, "new": "x"},
                                                      "reported": {"on": true, "cfg": {"rate": 1, "mode": "a"}, "extra": 1}},
                                            "metadata": {"desired": {"on": ts(), "cfg": {"rate": ts(), "mode": ts()}, "new": ts()},
                                                         "reported": {"on": ts(), "cfg": {"rate": ts(), "mode": ts()}, "extra": ts()}},
                                            "version": 2},
                                "timestamp": 0, "clientToken": "d1"
                            }),
                        ),
                    ],
                ),
                step(
                    "get",
                    json!({}),
                    vec![(
                        "get/accepted",
                        json!({
                            "state": {"desired": {"on": true, "cfg": {"rate": 5, "mode": "a"}, "new": "x"},
                                      "reported": {"on": true, "cfg": {"rate": 1, "mode": "a"}, "extra": 1},
                                      "delta": {"cfg": {"rate": 5}, "new": "x"}},
                            "metadata": {"desired": {"on": ts(), "cfg": {"rate": ts(), "mode": ts()}, "new": ts()},
                                         "reported": {"on": ts(), "cfg": {"rate": ts(), "mode": ts()}, "extra": ts()}},
                            "version": 2, "timestamp": 0
                        }),
                    )],
                ),
                // Desired equal to reported: no delta message.
                step(
                    "update",
                    json!({"state": {"desired": {"new": null, "cfg": {"rate": 1}}}}),
                    vec![
                        (
                            "update/accepted",
                            json!({
                                "state": {"desired": {"new": null, "cfg": {"rate": 1}}},
                                "metadata": {"desired": {"new": ts(), "cfg": {"rate": ts()}}},
                                "version": 3, "timestamp": 0
                            }),
                        ),
                        (
                            "update/documents",
                            json!({
                                "previous": {"state": {"desired": {"on": true, "cfg": {"rate": 5, "mode": "a"}, "new": "x"},
                                                       "reported": {"on": true, "cfg": {"rate": 1, "mode": "a"}, "extra": 1}},
                                             "metadata": {"desired": {"on": ts(), "cfg": {"rate": ts(), "mode": ts()}, "new": ts()},
                                                          "reported": {"on": ts(), "cfg": {"rate": ts(), "mode": ts()}, "extra": ts()}},
                                             "version": 2},
                                "current": {"state": {"desired": {"on": true, "cfg": {"rate": 1, "mode": "a"}},
                                                      "reported": {"on": true, "cfg": {"rate": 1, "mode": "a"}, "extra": 1}},
                                            "metadata": {"desired": {"on": ts(), "cfg": {"rate": ts(), "mode": ts()}},
                                                         "reported": {"on": ts(), "cfg": {"rate": ts(), "mode": ts()}, "extra": ts()}},
                                            "version": 3},
                                "timestamp": 0
                            }),
                        ),
                    ],
                ),
            ],
        ),
        (
            "desired null removes the section; state null empties the document",
            vec![
                step(
                    "update",
                    json!({"state": {"desired": {"a": 1}, "reported": {"b": 2}}}),
                    vec![
                        (
                            "update/accepted",
                            json!({
                                "state": {"desired": {"a": 1}, "reported": {"b": 2}},
                                "metadata": {"desired": {"a": ts()}, "reported": {"b": ts()}},
                                "version": 1, "timestamp": 0
                            }),
                        ),
                        (
                            "update/delta",
                            json!({"state": {"a": 1}, "metadata": {"a": ts()}, "version": 1, "timestamp": 0}),
                        ),
                        (
                            "update/documents",
                            json!({
                                "current": {"state": {"desired": {"a": 1}, "reported": {"b": 2}},
                                            "metadata": {"desired": {"a": ts()}, "reported": {"b": ts()}}, "version": 1},
                                "timestamp": 0
                            }),
                        ),
                    ],
                ),
                step(
                    "update",
                    json!({"state": {"desired": null}}),
                    vec![
                        (
                            "update/accepted",
                            json!({
                                "state": {"desired": null}, "metadata": {"desired": ts()}, "version": 2, "timestamp": 0
                            }),
                        ),
                        (
                            "update/documents",
                            json!({
                                "previous": {"state": {"desired": {"a": 1}, "reported": {"b": 2}},
                                             "metadata": {"desired": {"a": ts()}, "reported": {"b": ts()}}, "version": 1},
                                "current": {"state": {"reported": {"b": 2}}, "metadata": {"reported": {"b": ts()}}, "version": 2},
                                "timestamp": 0
                            }),
                        ),
                    ],
                ),
                step(
                    "update",
                    json!({"state": null}),
                    vec![
                        (
                            "update/accepted",
                            json!({
                                "state": {"desired": null, "reported": null},
                                "metadata": {"desired": ts(), "reported": ts()},
                                "version": 3, "timestamp": 0
                            }),
                        ),
                        (
                            "update/documents",
                            json!({
                                "previous": {"state": {"reported": {"b": 2}}, "metadata": {"reported": {"b": ts()}}, "version": 2},
                                "current": {"state": {}, "metadata": {}, "version": 3},
                                "timestamp": 0
                            }),
                        ),
                    ],
                ),
                step(
                    "get",
                    json!({}),
                    vec![(
                        "get/accepted",
                        json!({
                            "state": {}, "metadata": {}, "version": 3, "timestamp": 0
                        }),
                    )],
                ),
            ],
        ),
        (
            "a version conflict is 409 and leaves the document as it was",
            vec![
                step(
                    "update",
                    json!({"state": {"reported": {"v": 1}}, "version": 0}),
                    vec![
                        (
                            "update/accepted",
                            json!({"state": {"reported": {"v": 1}}, "metadata": {"reported": {"v": ts()}}, "version": 1, "timestamp": 0}),
                        ),
                        (
                            "update/documents",
                            json!({"current": {"state": {"reported": {"v": 1}}, "metadata": {"reported": {"v": ts()}}, "version": 1}, "timestamp": 0}),
                        ),
                    ],
                ),
                step(
                    "update",
                    json!({"state": {"reported": {"v": 2}}, "version": 5, "clientToken": "old"}),
                    vec![rejected("update", 409, "Version conflict", Some("old"))],
                ),
                step(
                    "update",
                    json!({"state": {"reported": {"v": 2}}, "version": 0}),
                    vec![rejected("update", 409, "Version conflict", None)],
                ),
                step(
                    "get",
                    json!({"clientToken": "after"}),
                    vec![(
                        "get/accepted",
                        json!({
                            "state": {"reported": {"v": 1}}, "metadata": {"reported": {"v": ts()}}, "version": 1, "timestamp": 0, "clientToken": "after"
                        }),
                    )],
                ),
                step(
                    "update",
                    json!({"state": {"reported": {"v": 3}}, "version": 1}),
                    vec![
                        (
                            "update/accepted",
                            json!({"state": {"reported": {"v": 3}}, "metadata": {"reported": {"v": ts()}}, "version": 2, "timestamp": 0}),
                        ),
                        (
                            "update/documents",
                            json!({
                                "previous": {"state": {"reported": {"v": 1}}, "metadata": {"reported": {"v": ts()}}, "version": 1},
                                "current": {"state": {"reported": {"v": 3}}, "metadata": {"reported": {"v": ts()}}, "version": 2},
                                "timestamp": 0
                            }),
                        ),
                    ],
                ),
            ],
        ),
        (
            "malformed requests get 400 with AWS's messages",
            vec![
                raw_step(
                    "update",
                    b"",
                    vec![rejected("update", 400, "Invalid JSON", None)],
                ),
                raw_step(
                    "update",
                    b"not json",
                    vec![rejected("update", 400, "Invalid JSON", None)],
                ),
                raw_step(
                    "update",
                    br#"{"clientToken":"m1"}"#,
                    vec![rejected(
                        "update",
                        400,
                        "Missing required node: state",
                        Some("m1"),
                    )],
                ),
                raw_step(
                    "update",
                    br#"{"state":"on","clientToken":"m2"}"#,
                    vec![rejected(
                        "update",
                        400,
                        "State node must be an object",
                        Some("m2"),
                    )],
                ),
                raw_step(
                    "update",
                    br#"{"state":{"desired":5}}"#,
                    vec![rejected(
                        "update",
                        400,
                        "Desired node must be an object",
                        None,
                    )],
                ),
                raw_step(
                    "update",
                    br#"{"state":{"reported":"x"}}"#,
                    vec![rejected(
                        "update",
                        400,
                        "Reported node must be an object",
                        None,
                    )],
                ),
                raw_step(
                    "update",
                    br#"{"state":{"delta":{"a":1}},"clientToken":"m3"}"#,
                    vec![rejected(
                        "update",
                        400,
                        "State contains an invalid node",
                        Some("m3"),
                    )],
                ),
                raw_step(
                    "update",
                    br#"{"state":{"reported":{"a":{"b":{"c":{"d":{"e":{"f":{"g":1}}}}}}}}}"#,
                    vec![rejected(
                        "update",
                        400,
                        "JSON contains too many levels of nesting; maximum is 6",
                        None,
                    )],
                ),
                step(
                    "update",
                    json!({"state": {}, "clientToken": "t".repeat(65)}),
                    vec![rejected("update", 400, "Invalid clientToken", None)],
                ),
                raw_step(
                    "update",
                    br#"{"state":{},"version":"1"}"#,
                    vec![rejected("update", 400, "Invalid version", None)],
                ),
                raw_step(
                    "update",
                    b"{\"state\":{\"reported\":{\"a\":\"\xff\"}}}",
                    vec![rejected(
                        "update",
                        415,
                        "Unsupported documented encoding; supported encoding is UTF-8",
                        None,
                    )],
                ),
                raw_step(
                    "get",
                    b"garbage",
                    vec![rejected("get", 400, "Invalid JSON", None)],
                ),
                // Nothing above created the shadow.
                step(
                    "get",
                    json!({"clientToken": "m4"}),
                    vec![rejected(
                        "get",
                        404,
                        "No shadow exists with name: '{shadow}'",
                        Some("m4"),
                    )],
                ),
            ],
        ),
        (
            "a state over 8 KB is 413 and changes nothing",
            vec![
                step(
                    "update",
                    json!({"state": {"reported": {"big": "x".repeat(8 * 1024)}}, "clientToken": "big"}),
                    vec![rejected(
                        "update",
                        413,
                        "The payload exceeds the maximum size allowed",
                        Some("big"),
                    )],
                ),
                step(
                    "update",
                    json!({"state": {"reported": {"half": "x".repeat(4 * 1024)}}}),
                    vec![
                        (
                            "update/accepted",
                            json!({"state": {"reported": {"half": "x".repeat(4 * 1024)}}, "metadata": {"reported": {"half": ts()}}, "version": 1, "timestamp": 0}),
                        ),
                        (
                            "update/documents",
                            json!({"current": {"state": {"reported": {"half": "x".repeat(4 * 1024)}}, "metadata": {"reported": {"half": ts()}}, "version": 1}, "timestamp": 0}),
                        ),
                    ],
                ),
                step(
                    "update",
                    json!({"state": {"desired": {"other": "y".repeat(4 * 1024)}}}),
                    vec![rejected(
                        "update",
                        413,
                        "The payload exceeds the maximum size allowed",
                        None,
                    )],
                ),
                step(
                    "get",
                    json!({}),
                    vec![(
                        "get/accepted",
                        json!({
                            "state": {"reported": {"half": "x".repeat(4 * 1024)}}, "metadata": {"reported": {"half": ts()}}, "version": 1, "timestamp": 0
                        }),
                    )],
                ),
            ],
        ),
        (
            "delete: 404 when missing, accepted with the version, numbering continues",
            vec![
                step(
                    "delete",
                    json!({"clientToken": "d0"}),
                    vec![rejected(
                        "delete",
                        404,
                        "No shadow exists with name: '{shadow}'",
                        Some("d0"),
                    )],
                ),
                step(
                    "update",
                    json!({"state": {"reported": {"n": 1}}}),
                    vec![
                        (
                            "update/accepted",
                            json!({"state": {"reported": {"n": 1}}, "metadata": {"reported": {"n": ts()}}, "version": 1, "timestamp": 0}),
                        ),
                        (
                            "update/documents",
                            json!({"current": {"state": {"reported": {"n": 1}}, "metadata": {"reported": {"n": ts()}}, "version": 1}, "timestamp": 0}),
                        ),
                    ],
                ),
                step(
                    "delete",
                    json!({"clientToken": "d1"}),
                    vec![(
                        "delete/accepted",
                        json!({"version": 1, "timestamp": 0, "clientToken": "d1"}),
                    )],
                ),
                raw_step(
                    "delete",
                    b"",
                    vec![rejected(
                        "delete",
                        404,
                        "No shadow exists with name: '{shadow}'",
                        None,
                    )],
                ),
                step(
                    "get",
                    json!({}),
                    vec![rejected(
                        "get",
                        404,
                        "No shadow exists with name: '{shadow}'",
                        None,
                    )],
                ),
                step(
                    "update",
                    json!({"state": {"reported": {"n": 2}}}),
                    vec![
                        (
                            "update/accepted",
                            json!({"state": {"reported": {"n": 2}}, "metadata": {"reported": {"n": ts()}}, "version": 2, "timestamp": 0}),
                        ),
                        (
                            "update/documents",
                            json!({"current": {"state": {"reported": {"n": 2}}, "metadata": {"reported": {"n": ts()}}, "version": 2}, "timestamp": 0}),
                        ),
                    ],
                ),
            ],
        ),
        (
            "six levels in a section are AWS's maximum: accepted, a seventh refused",
            vec![
                raw_step(
                    "update",
                    br#"{"state":{"reported":{"a":{"b":{"c":{"d":{"e":{"f":1}}}}}}}}"#,
                    vec![
                        (
                            "update/accepted",
                            json!({
                                "state": {"reported": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}},
                                "metadata": {"reported": {"a": {"b": {"c": {"d": {"e": {"f": ts()}}}}}}},
                                "version": 1, "timestamp": 0
                            }),
                        ),
                        (
                            "update/documents",
                            json!({
                                "current": {
                                    "state": {"reported": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}},
                                    "metadata": {"reported": {"a": {"b": {"c": {"d": {"e": {"f": ts()}}}}}}},
                                    "version": 1
                                },
                                "timestamp": 0
                            }),
                        ),
                    ],
                ),
                raw_step(
                    "update",
                    br#"{"state":{"desired":{"a":{"b":{"c":{"d":{"e":{"f":[1]}}}}}}},"clientToken":"d7"}"#,
                    vec![rejected(
                        "update",
                        400,
                        "JSON contains too many levels of nesting; maximum is 6",
                        Some("d7"),
                    )],
                ),
            ],
        ),
    ]
}

/// Runs every case on its own named shadow and then on the classic shadow of a
/// fresh thing, over `protocol`.
async fn the_table_holds(protocol: ProtocolVersion) {
    let setup = Setup::start().await;
    let device = setup.device(&format!("shadow-table-{}", protocol as u8));
    let mut client = ShadowDevice::connect(&setup, &device, protocol).await;
    // What AWS's v2 SDK subscribes to: `+` for the reply kind.
    let named = format!("{}/+/+/+", client.prefix(None) + "/name");
    let classic: Vec<String> = ["get", "update", "delete"]
        .iter()
        .map(|op| format!("{}/{op}/+", client.prefix(None)))
        .collect();
    let mut filters = vec![named.as_str()];
    filters.extend(classic.iter().map(String::as_str));
    client.subscribe(&filters).await;

    for (index, (name, steps)) in cases().into_iter().enumerate() {
        let shadow_name = format!("case{index}");
        run_case(&mut client, name, Some(&shadow_name), &steps).await;
    }
    // The classic shadow, once per case would share one document: run the first
    // case, whose steps start from no shadow.
    let (name, steps) = cases().swap_remove(0);
    run_case(&mut client, name, None, &steps).await;
    client.raw.disconnect().await;
}

async fn run_case(client: &mut ShadowDevice, name: &str, shadow: Option<&str>, steps: &[Step]) {
    let display = shadow.map_or_else(|| client.thing.clone(), str::to_owned);
    for (index, step) in steps.iter().enumerate() {
        client
            .request(shadow, step.operation, step.payload.clone())
            .await;
        for (topic, expected) in &step.replies {
            let mut expected = expected.clone();
            if let Some(message) = expected.get("message").and_then(Value::as_str) {
                expected["message"] = json!(message.replace("{shadow}", &display));
            }
            let (got_topic, got) = client.reply(shadow).await;
            assert_eq!(
                (got_topic.as_str(), &got),
                (*topic, &expected),
                "case '{name}' on {display}, step {index} ({})",
                step.operation
            );
        }
    }
}

#[tokio::test]
async fn shadow_semantics_table_mqtt311() {
    the_table_holds(ProtocolVersion::V311).await;
}

#[tokio::test]
async fn shadow_semantics_table_mqtt5() {
    the_table_holds(ProtocolVersion::V5).await;
}
