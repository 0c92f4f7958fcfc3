//! Retained messages, in memory (the store keeps a copy; see `persist`).
//!
//! AWS IoT Core semantics (docs/aws-iot-core-behaviour.md §1.9): one retained
//! message per topic, a newer one replaces it, an empty payload deletes it; on
//! SUBSCRIBE a retained message is delivered only to a filter equal to its
//! topic (wildcard filters get none).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use iotcore_mqtt::topic::TopicName;

use super::message::Message;

/// What a retained publish did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RetainedChange {
    /// The message is now the topic's retained message.
    Stored,
    /// The empty payload deleted the topic's retained message.
    Deleted,
    /// Empty payload and nothing retained: nothing changed.
    Unchanged,
}

/// The retained messages by topic.
#[derive(Debug, Default)]
pub(crate) struct Retained {
    by_topic: RwLock<HashMap<TopicName, Arc<Message>>>,
}

impl Retained {
    /// Applies a retained publish.
    pub(crate) fn apply(&self, message: &Arc<Message>) -> RetainedChange {
        let mut map = self.by_topic.write().unwrap_or_else(|p| p.into_inner());
        if message.payload.is_empty() {
            match map.remove(message.topic.as_str()) {
                Some(_) => RetainedChange::Deleted,
                None => RetainedChange::Unchanged,
            }
        } else {
            map.insert(message.topic.clone(), Arc::clone(message));
            RetainedChange::Stored
        }
    }

    /// The retained message a new subscription to `filter` receives: the one
    /// whose topic equals the filter, unless it has expired.
    pub(crate) fn for_filter(&self, filter: &str, now: SystemTime) -> Option<Arc<Message>> {
        if filter.contains(['+', '#']) {
            return None;
        }
        let map = self.by_topic.read().unwrap_or_else(|p| p.into_inner());
        map.get(filter).filter(|m| !m.is_expired(now)).cloned()
    }

    /// Number of retained messages.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_topic
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use iotcore_mqtt::{Properties, QoS};

    fn message(topic: &str, payload: &'static [u8]) -> Arc<Message> {
        Arc::new(Message::new(
            topic.into(),
            Bytes::from_static(payload),
            QoS::AtLeastOnce,
            true,
            &Properties::default(),
            SystemTime::UNIX_EPOCH,
        ))
    }

    #[test]
    fn newer_replaces_and_empty_deletes() {
        let retained = Retained::default();
        let now = SystemTime::UNIX_EPOCH;
        assert_eq!(
            retained.apply(&message("a/b", b"1")),
            RetainedChange::Stored
        );
        assert_eq!(
            retained.apply(&message("a/b", b"2")),
            RetainedChange::Stored
        );
        assert_eq!(
            retained.for_filter("a/b", now).unwrap().payload,
            Bytes::from_static(b"2")
        );
        assert_eq!(retained.len(), 1);
        assert_eq!(
            retained.apply(&message("a/b", b"")),
            RetainedChange::Deleted
        );
        assert_eq!(
            retained.apply(&message("a/b", b"")),
            RetainedChange::Unchanged
        );
        assert_eq!(retained.for_filter("a/b", now), None);
        assert_eq!(retained.len(), 0);
    }

    #[test]
    fn only_an_exact_filter_gets_the_retained_message() {
        let retained = Retained::default();
        let now = SystemTime::UNIX_EPOCH;
        retained.apply(&message("a/b", b"1"));
        assert!(retained.for_filter("a/b", now).is_some());
        assert_eq!(retained.for_filter("a/+", now), None);
        assert_eq!(retained.for_filter("a/#", now), None);
        assert_eq!(retained.for_filter("#", now), None);
        assert_eq!(retained.for_filter("a/b/c", now), None);
    }
}
