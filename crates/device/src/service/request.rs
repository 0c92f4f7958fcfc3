//! One request: where it goes, what it says, where its reply comes from.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The JSON path the services echo for correlation.
pub(crate) const CLIENT_TOKEN: &str = "clientToken";

/// A request to a service: its operation's name, the topic it is published
/// to, its JSON document, and the topics its reply comes on
/// (`{topic}/accepted` and `{topic}/rejected`, as every AWS IoT service
/// does, unless [`with_reply_topics`](Self::with_reply_topics) says
/// otherwise).
///
/// With [`Correlation::ClientToken`](super::Correlation::ClientToken) the
/// document must be a JSON object: the channel sets its `clientToken` (any
/// token already there is replaced).
#[derive(Clone, Debug)]
pub struct Request {
    operation: &'static str,
    topic: String,
    body: Result<Value, String>,
    accepted: String,
    rejected: String,
}

impl Request {
    /// A request for `operation` (a name for errors and logs, such as
    /// `"UpdateJobExecution"`), published to `topic` with `body` as JSON.
    /// A body that cannot be written as JSON makes the request fail with
    /// [`ServiceErrorKind::InvalidRequest`](super::ServiceErrorKind::InvalidRequest)
    /// without sending.
    pub fn new(operation: &'static str, topic: impl Into<String>, body: impl Serialize) -> Request {
        let topic = topic.into();
        Request {
            operation,
            accepted: format!("{topic}/accepted"),
            rejected: format!("{topic}/rejected"),
            topic,
            body: serde_json::to_value(body)
                .map_err(|e| format!("the request cannot be written as JSON: {e}")),
        }
    }

    /// The same request with its replies on `accepted` and `rejected`.
    pub fn with_reply_topics(
        mut self,
        accepted: impl Into<String>,
        rejected: impl Into<String>,
    ) -> Request {
        self.accepted = accepted.into();
        self.rejected = rejected.into();
        self
    }

    /// The operation's name.
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The topic the request is published to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The topic of the accepted reply.
    pub fn accepted_topic(&self) -> &str {
        &self.accepted
    }

    /// The topic of the rejected reply.
    pub fn rejected_topic(&self) -> &str {
        &self.rejected
    }

    /// Whether the request can be sent: its body was written as JSON and,
    /// when it must carry a `clientToken`, is an object.
    pub(crate) fn check(&self, with_token: bool) -> Result<(), String> {
        match self.body.as_ref().map_err(Clone::clone)? {
            Value::Object(_) => Ok(()),
            _ if !with_token => Ok(()),
            other => Err(not_an_object(other)),
        }
    }

    /// The payload to publish, with `token` as its `clientToken` when given.
    pub(crate) fn payload(&self, token: Option<&str>) -> Result<Bytes, String> {
        let body = self.body.as_ref().map_err(Clone::clone)?;
        let bytes = match (token, body) {
            (None, body) => serde_json::to_vec(body),
            (Some(token), Value::Object(object)) => {
                let mut object = object.clone();
                object.insert(CLIENT_TOKEN.to_owned(), Value::String(token.to_owned()));
                serde_json::to_vec(&object)
            }
            (Some(_), other) => return Err(not_an_object(other)),
        };
        bytes
            .map(Bytes::from)
            .map_err(|e| format!("the request cannot be written as JSON: {e}"))
    }
}

fn not_an_object(body: &Value) -> String {
    format!(
        "a request correlated by clientToken must be a JSON object, not {}",
        json_kind(body)
    )
}

/// The `clientToken` of a reply, if it is a JSON object that has one.
pub(crate) fn client_token_of(payload: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Token {
        #[serde(rename = "clientToken")]
        client_token: Option<String>,
    }
    serde_json::from_slice::<Token>(payload)
        .ok()
        .and_then(|t| t.client_token)
}

/// "a string", "an array"… for messages about a JSON value.
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_token_is_set_on_the_document_and_replaces_any_other() {
        let request = Request::new(
            "update",
            "$aws/things/t/shadow/update",
            json!({"state": {"reported": {"a": 1}}, "clientToken": "theirs"}),
        );
        assert_eq!(
            request.accepted_topic(),
            "$aws/things/t/shadow/update/accepted"
        );
        assert_eq!(
            request.rejected_topic(),
            "$aws/things/t/shadow/update/rejected"
        );
        let payload: Value =
            serde_json::from_slice(&request.payload(Some("ours")).unwrap()).unwrap();
        assert_eq!(
            payload,
            json!({"state": {"reported": {"a": 1}}, "clientToken": "ours"})
        );
        let untouched: Value = serde_json::from_slice(&request.payload(None).unwrap()).unwrap();
        assert_eq!(untouched["clientToken"], "theirs");
    }

    #[test]
    fn only_objects_carry_a_token_and_unwritable_bodies_fail_before_sending() {
        let array = Request::new("op", "t", json!([1]));
        assert!(array.payload(None).is_ok());
        assert!(array.check(false).is_ok());
        let e = array.payload(Some("tok")).unwrap_err();
        assert!(e.contains("not an array"), "{e}");
        assert_eq!(array.check(true).unwrap_err(), e);
        assert!(Request::new("op", "t", json!({})).check(true).is_ok());
        let mut map = std::collections::HashMap::new();
        map.insert(vec![1u8], 1);
        let unwritable = Request::new("op", "t", map);
        let e = unwritable.payload(None).unwrap_err();
        assert!(e.contains("cannot be written as JSON"), "{e}");
        assert_eq!(unwritable.check(false).unwrap_err(), e);
    }

    #[test]
    fn reply_topics_may_be_given() {
        let request = Request::new("op", "a/request", json!({}))
            .with_reply_topics("a/response/accepted/json", "a/response/rejected/json");
        assert_eq!(request.accepted_topic(), "a/response/accepted/json");
        assert_eq!(request.rejected_topic(), "a/response/rejected/json");
    }

    #[test]
    fn tokens_are_read_from_json_objects_only() {
        assert_eq!(
            client_token_of(br#"{"clientToken":"a","x":1}"#),
            Some("a".into())
        );
        assert_eq!(client_token_of(br#"{"x":1}"#), None);
        assert_eq!(client_token_of(br#"{"clientToken":7}"#), None);
        assert_eq!(client_token_of(b"not json"), None);
        assert_eq!(client_token_of(b"[]"), None);
    }
}
