//! The Device Shadow service's reserved topics: building and parsing.
//!
//! ```text
//! $aws/things/{thing}/shadow/{get|update|delete}[/accepted|/rejected]
//! $aws/things/{thing}/shadow/update/{delta|documents}
//! $aws/things/{thing}/shadow/name/{shadow}/…            (named shadows, same tails)
//! ```
//!
//! [`ShadowTopic`] is both the builder ([`ShadowTopic::new`], then
//! [`ShadowTopic::to_topic`] or `Display`) and the result of
//! [`ShadowTopic::parse`]. Source: docs/aws-iot-core-behaviour.md §3.1.

use std::fmt;

use crate::names::{NameError, validate_shadow_name, validate_thing_name};

/// What a shadow request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShadowOperation {
    /// Read the document (`…/get`).
    Get,
    /// Change the document (`…/update`).
    Update,
    /// Delete the shadow (`…/delete`).
    Delete,
}

impl ShadowOperation {
    /// The topic level: `get`, `update` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            ShadowOperation::Get => "get",
            ShadowOperation::Update => "update",
            ShadowOperation::Delete => "delete",
        }
    }

    fn from_level(level: &str) -> Option<Self> {
        match level {
            "get" => Some(ShadowOperation::Get),
            "update" => Some(ShadowOperation::Update),
            "delete" => Some(ShadowOperation::Delete),
            _ => None,
        }
    }
}

impl fmt::Display for ShadowOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which topic of an operation: the request, or one of the service's replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShadowTopicKind {
    /// The request a client publishes (no suffix).
    Request,
    /// `/accepted`: the service did it.
    Accepted,
    /// `/rejected`: the service refused, with an error document.
    Rejected,
    /// `/update/delta`: desired differs from reported (update only).
    Delta,
    /// `/update/documents`: previous and current document (update only).
    Documents,
}

impl ShadowTopicKind {
    /// The last topic level, or `None` for a request.
    pub fn suffix(self) -> Option<&'static str> {
        match self {
            ShadowTopicKind::Request => None,
            ShadowTopicKind::Accepted => Some("accepted"),
            ShadowTopicKind::Rejected => Some("rejected"),
            ShadowTopicKind::Delta => Some("delta"),
            ShadowTopicKind::Documents => Some("documents"),
        }
    }

    fn from_suffix(level: &str) -> Option<Self> {
        match level {
            "accepted" => Some(ShadowTopicKind::Accepted),
            "rejected" => Some(ShadowTopicKind::Rejected),
            "delta" => Some(ShadowTopicKind::Delta),
            "documents" => Some(ShadowTopicKind::Documents),
            _ => None,
        }
    }

    /// Whether `operation` has a topic of this kind (`delta` and `documents`
    /// exist for `update` only).
    pub fn exists_for(self, operation: ShadowOperation) -> bool {
        match self {
            ShadowTopicKind::Delta | ShadowTopicKind::Documents => {
                operation == ShadowOperation::Update
            }
            _ => true,
        }
    }
}

/// Why a topic is not a valid shadow topic, or a shadow topic cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// The topic does not start with `$aws/things/{thing}/shadow`.
    #[error("'{topic}' is not a shadow topic: shadow topics start with $aws/things/<thing>/shadow")]
    NotShadow {
        /// The topic.
        topic: String,
    },
    /// Under the shadow prefix, but not one of the service's topics.
    #[error(
        "'{topic}' is not a Device Shadow topic: expected …/shadow[/name/<shadow>]/<get|update|delete>[/accepted|/rejected|/delta|/documents]"
    )]
    Unknown {
        /// The topic.
        topic: String,
    },
    /// A thing or shadow name AWS does not accept.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// `delta` and `documents` exist for `update` only.
    #[error("there is no /{operation}/{kind} topic: delta and documents exist for update only", kind = kind.suffix().unwrap_or(""))]
    KindNotForOperation {
        /// The operation.
        operation: ShadowOperation,
        /// The kind asked for.
        kind: ShadowTopicKind,
    },
}

/// A Device Shadow topic: thing, optional shadow name (`None` is the classic
/// shadow), operation and kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShadowTopic<'a> {
    thing: &'a str,
    shadow: Option<&'a str>,
    operation: ShadowOperation,
    kind: ShadowTopicKind,
}

impl<'a> ShadowTopic<'a> {
    /// A shadow topic; fails on an invalid thing or shadow name, or on
    /// `delta`/`documents` for an operation other than `update`.
    pub fn new(
        thing: &'a str,
        shadow: Option<&'a str>,
        operation: ShadowOperation,
        kind: ShadowTopicKind,
    ) -> Result<Self, TopicError> {
        validate_thing_name(thing)?;
        if let Some(shadow) = shadow {
            validate_shadow_name(shadow)?;
        }
        if !kind.exists_for(operation) {
            return Err(TopicError::KindNotForOperation { operation, kind });
        }
        Ok(ShadowTopic {
            thing,
            shadow,
            operation,
            kind,
        })
    }

    /// Parses a topic name. [`TopicError::NotShadow`] means the topic is not
    /// under `$aws/things/{thing}/shadow` at all; the other errors mean it is,
    /// but is not one of the service's topics.
    pub fn parse(topic: &'a str) -> Result<Self, TopicError> {
        let mut levels = topic.split('/');
        let (Some("$aws"), Some("things"), Some(thing), Some("shadow")) =
            (levels.next(), levels.next(), levels.next(), levels.next())
        else {
            return Err(TopicError::NotShadow {
                topic: topic.to_owned(),
            });
        };
        let rest: Vec<&'a str> = levels.collect();
        let unknown = || TopicError::Unknown {
            topic: topic.to_owned(),
        };
        let (shadow, rest) = match rest.as_slice() {
            ["name", shadow, rest @ ..] => (Some(*shadow), rest),
            rest => (None, rest),
        };
        let (operation, kind) = match rest {
            [operation] => (*operation, ShadowTopicKind::Request),
            [operation, suffix] => (
                *operation,
                ShadowTopicKind::from_suffix(suffix).ok_or_else(unknown)?,
            ),
            _ => return Err(unknown()),
        };
        let operation = ShadowOperation::from_level(operation).ok_or_else(unknown)?;
        ShadowTopic::new(thing, shadow, operation, kind)
    }

    /// The thing.
    pub fn thing(&self) -> &'a str {
        self.thing
    }

    /// The shadow's name; `None` for the classic shadow.
    pub fn shadow(&self) -> Option<&'a str> {
        self.shadow
    }

    /// The operation.
    pub fn operation(&self) -> ShadowOperation {
        self.operation
    }

    /// The kind of topic.
    pub fn kind(&self) -> ShadowTopicKind {
        self.kind
    }

    /// The same thing, shadow and operation with another kind (a request's
    /// reply topics); fails for `delta`/`documents` of get or delete.
    pub fn with_kind(self, kind: ShadowTopicKind) -> Result<Self, TopicError> {
        if !kind.exists_for(self.operation) {
            return Err(TopicError::KindNotForOperation {
                operation: self.operation,
                kind,
            });
        }
        Ok(ShadowTopic { kind, ..self })
    }

    /// The topic name.
    pub fn to_topic(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for ShadowTopic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            ShadowPrefix(self.thing, self.shadow),
            self.operation
        )?;
        if let Some(suffix) = self.kind.suffix() {
            write!(f, "/{suffix}")?;
        }
        Ok(())
    }
}

struct ShadowPrefix<'a>(&'a str, Option<&'a str>);

impl fmt::Display for ShadowPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "$aws/things/{}/shadow", self.0)?;
        if let Some(shadow) = self.1 {
            write!(f, "/name/{shadow}")?;
        }
        Ok(())
    }
}

/// The prefix of a shadow's topics, `$aws/things/{thing}/shadow[/name/{shadow}]`
/// (append `/get/+`, `/update/+`, … for the filters AWS's SDKs subscribe to).
pub fn shadow_topic_prefix(thing: &str, shadow: Option<&str>) -> Result<String, TopicError> {
    validate_thing_name(thing)?;
    if let Some(shadow) = shadow {
        validate_shadow_name(shadow)?;
    }
    Ok(ShadowPrefix(thing, shadow).to_string())
}

#[cfg(test)]
mod tests {
    use super::ShadowOperation::*;
    use super::ShadowTopicKind::*;
    use super::*;

    #[test]
    fn every_topic_round_trips() {
        let cases = [
            ("$aws/things/t1/shadow/get", None, Get, Request),
            ("$aws/things/t1/shadow/get/accepted", None, Get, Accepted),
            ("$aws/things/t1/shadow/get/rejected", None, Get, Rejected),
            ("$aws/things/t1/shadow/update", None, Update, Request),
            (
                "$aws/things/t1/shadow/update/accepted",
                None,
                Update,
                Accepted,
            ),
            (
                "$aws/things/t1/shadow/update/rejected",
                None,
                Update,
                Rejected,
            ),
            ("$aws/things/t1/shadow/update/delta", None, Update, Delta),
            (
                "$aws/things/t1/shadow/update/documents",
                None,
                Update,
                Documents,
            ),
            ("$aws/things/t1/shadow/delete", None, Delete, Request),
            (
                "$aws/things/t1/shadow/delete/accepted",
                None,
                Delete,
                Accepted,
            ),
            (
                "$aws/things/t1/shadow/delete/rejected",
                None,
                Delete,
                Rejected,
            ),
            (
                "$aws/things/t1/shadow/name/cfg/get",
                Some("cfg"),
                Get,
                Request,
            ),
            (
                "$aws/things/t1/shadow/name/cfg/update/delta",
                Some("cfg"),
                Update,
                Delta,
            ),
            (
                "$aws/things/t1/shadow/name/cfg/delete/rejected",
                Some("cfg"),
                Delete,
                Rejected,
            ),
            // A shadow may be called "name" too.
            (
                "$aws/things/t1/shadow/name/name/update",
                Some("name"),
                Update,
                Request,
            ),
        ];
        for (topic, shadow, operation, kind) in cases {
            let parsed = ShadowTopic::parse(topic).unwrap_or_else(|e| panic!("{topic}: {e}"));
            assert_eq!(parsed.thing(), "t1");
            assert_eq!(parsed.shadow(), shadow, "{topic}");
            assert_eq!(parsed.operation(), operation, "{topic}");
            assert_eq!(parsed.kind(), kind, "{topic}");
            assert_eq!(parsed.to_topic(), topic);
            let built = ShadowTopic::new("t1", shadow, operation, kind).unwrap();
            assert_eq!(built, parsed);
        }
    }

    #[test]
    fn topics_outside_the_shadow_prefix_are_not_shadow_topics() {
        for topic in [
            "",
            "a/b",
            "$aws/things/t1",
            "$aws/things/t1/jobs/get",
            "$aws/things",
            "$aws/events/presence/connected/t1",
        ] {
            assert!(
                matches!(ShadowTopic::parse(topic), Err(TopicError::NotShadow { .. })),
                "{topic}"
            );
        }
    }

    #[test]
    fn malformed_shadow_topics_are_refused() {
        for topic in [
            "$aws/things/t1/shadow",
            "$aws/things/t1/shadow/",
            "$aws/things/t1/shadow/list",
            "$aws/things/t1/shadow/get/accepted/x",
            "$aws/things/t1/shadow/get/done",
            "$aws/things/t1/shadow/name/cfg",
            "$aws/things/t1/shadow/name/cfg/get/accepted/x",
            "$aws/things/t1/shadow/name/get",
        ] {
            assert!(
                matches!(ShadowTopic::parse(topic), Err(TopicError::Unknown { .. })),
                "{topic}"
            );
        }
        assert!(matches!(
            ShadowTopic::parse("$aws/things/t1/shadow/get/delta"),
            Err(TopicError::KindNotForOperation {
                operation: Get,
                kind: Delta
            })
        ));
        assert!(matches!(
            ShadowTopic::parse("$aws/things/t1/shadow/delete/documents"),
            Err(TopicError::KindNotForOperation { .. })
        ));
    }

    #[test]
    fn invalid_names_are_refused() {
        for topic in [
            "$aws/things/+/shadow/get",
            "$aws/things//shadow/get",
            "$aws/things/a b/shadow/update",
            "$aws/things/t1/shadow/name/+/get",
            "$aws/things/t1/shadow/name//get",
        ] {
            assert!(
                matches!(ShadowTopic::parse(topic), Err(TopicError::InvalidName(_))),
                "{topic}"
            );
        }
        let long = "x".repeat(129);
        assert!(ShadowTopic::new(&long, None, Get, Request).is_err());
        let long = "x".repeat(65);
        assert!(ShadowTopic::new("t1", Some(&long), Get, Request).is_err());
    }

    #[test]
    fn reply_topics_of_a_request() {
        let request = ShadowTopic::parse("$aws/things/t1/shadow/name/s/update").unwrap();
        assert_eq!(
            request.with_kind(Documents).unwrap().to_topic(),
            "$aws/things/t1/shadow/name/s/update/documents"
        );
        let get = ShadowTopic::parse("$aws/things/t1/shadow/get").unwrap();
        assert_eq!(
            get.with_kind(Rejected).unwrap().to_topic(),
            "$aws/things/t1/shadow/get/rejected"
        );
        assert!(get.with_kind(Delta).is_err());
    }

    #[test]
    fn prefixes() {
        assert_eq!(
            shadow_topic_prefix("t1", None).unwrap(),
            "$aws/things/t1/shadow"
        );
        assert_eq!(
            shadow_topic_prefix("t1", Some("s")).unwrap(),
            "$aws/things/t1/shadow/name/s"
        );
        assert!(shadow_topic_prefix("t/1", None).is_err());
    }
}
