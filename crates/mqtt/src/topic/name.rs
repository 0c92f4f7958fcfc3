//! [`TopicName`]: a topic name that is shared, not copied.

use std::borrow::{Borrow, Cow};
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// The topic name of a PUBLISH, cheap to clone: a clone shares the text
/// (one reference count increment) instead of copying it. A broker hands the
/// topic of one message to every subscriber, every retained-message lookup and
/// every persistent session it queues for, so each copy saved is an allocation
/// per delivery.
///
/// It reads as a `&str` (`Deref`, `AsRef`, `Borrow`, `Display`) and compares
/// equal to `str`, `&str` and `String`; build one from a `&str`, a `String`, a
/// `Cow<str>` or an `Arc<str>` with `.into()`. It is not validated: the codec checks topic
/// names on decode and encode ([`crate::topic::validate_topic_name`]), and a
/// received MQTT 5 PUBLISH that uses a Topic Alias has an empty one until the
/// session resolves it.
///
/// Backed by an `Arc<str>` (16 bytes, against 24 for `String` and 32 for
/// `bytes::Bytes`). A `Bytes` slice of the read buffer would save the one
/// copy the decoder makes, but checking UTF-8 once and reading the text
/// afterwards without checking it again needs `unsafe`, which this crate
/// forbids; and the topic, unlike the payload, is short and is what a broker
/// keeps longest (retained messages, alias tables, session queues), where a
/// slice would pin the whole read buffer it came from.
///
/// ```
/// use iotcore_mqtt::topic::TopicName;
///
/// let topic = TopicName::from("dt/dev1/temp");
/// let shared = topic.clone(); // no copy of the text
/// assert_eq!(shared, "dt/dev1/temp");
/// assert!(shared.starts_with("dt/")); // every `str` method
/// assert_eq!(TopicName::from(String::from("dt/dev1/temp")), topic);
/// assert_eq!(topic.to_string(), "dt/dev1/temp");
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(Arc<str>);

impl TopicName {
    /// The topic name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for TopicName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for TopicName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Lets a map keyed by [`TopicName`] be looked up with a `&str`.
impl Borrow<str> for TopicName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

/// Formats as the string does, quoted.
impl fmt::Debug for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl From<&str> for TopicName {
    fn from(topic: &str) -> TopicName {
        TopicName(topic.into())
    }
}

impl From<&String> for TopicName {
    fn from(topic: &String) -> TopicName {
        TopicName(topic.as_str().into())
    }
}

impl From<String> for TopicName {
    fn from(topic: String) -> TopicName {
        TopicName(topic.into())
    }
}

impl From<Cow<'_, str>> for TopicName {
    fn from(topic: Cow<'_, str>) -> TopicName {
        TopicName(topic.into())
    }
}

impl From<Box<str>> for TopicName {
    fn from(topic: Box<str>) -> TopicName {
        TopicName(topic.into())
    }
}

/// Shares `topic`'s text without copying it.
impl From<Arc<str>> for TopicName {
    fn from(topic: Arc<str>) -> TopicName {
        TopicName(topic)
    }
}

/// Shares the text without copying it.
impl From<TopicName> for Arc<str> {
    fn from(topic: TopicName) -> Arc<str> {
        topic.0
    }
}

impl From<TopicName> for String {
    fn from(topic: TopicName) -> String {
        topic.0.as_ref().to_owned()
    }
}

/// `impl PartialEq<$other> for TopicName` and its mirror, comparing text.
macro_rules! eq_text {
    ($($other:ty),*) => {$(
        impl PartialEq<$other> for TopicName {
            fn eq(&self, other: &$other) -> bool {
                self.as_str() == AsRef::<str>::as_ref(other)
            }
        }

        impl PartialEq<TopicName> for $other {
            fn eq(&self, other: &TopicName) -> bool {
                AsRef::<str>::as_ref(self) == other.as_str()
            }
        }
    )*};
}

eq_text!(str, &str, String);

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn a_topic_name_equals_its_text_in_every_string_type() {
        let topic = TopicName::from("a/b");
        assert_eq!(topic, "a/b");
        assert_eq!("a/b", topic);
        assert_eq!(topic, *"a/b");
        assert_eq!(*"a/b", topic);
        assert_eq!(topic, String::from("a/b"));
        assert_eq!(String::from("a/b"), topic);
        assert_ne!(topic, "a/c");
        assert_ne!(topic, "a/b/");
        assert_ne!("a", topic);
    }

    #[test]
    fn every_source_gives_the_same_topic_name() {
        let text = String::from("dt/dev1/temp");
        let expected = TopicName::from("dt/dev1/temp");
        assert_eq!(TopicName::from(&text), expected);
        assert_eq!(TopicName::from(text.clone()), expected);
        assert_eq!(TopicName::from(text.clone().into_boxed_str()), expected);
        assert_eq!(TopicName::from(Cow::Borrowed(text.as_str())), expected);
        assert_eq!(TopicName::from(Cow::<str>::Owned(text.clone())), expected);
        assert_eq!(TopicName::from(Arc::<str>::from(text.as_str())), expected);
        assert_eq!(String::from(expected.clone()), text);
        assert_eq!(TopicName::default(), "");
    }

    #[test]
    fn a_clone_shares_the_text() {
        let arc: Arc<str> = Arc::from("a/b");
        let topic = TopicName::from(Arc::clone(&arc));
        let clone = topic.clone();
        assert!(Arc::ptr_eq(&Arc::from(clone), &arc));
        assert_eq!(Arc::strong_count(&arc), 2);
    }

    #[test]
    fn it_displays_and_debugs_as_its_text() {
        let topic = TopicName::from("a/\"b\"");
        assert_eq!(topic.to_string(), "a/\"b\"");
        assert_eq!(format!("{topic:>8}"), "   a/\"b\"");
        assert_eq!(format!("{topic:?}"), r#""a/\"b\"""#);
    }

    #[test]
    fn a_map_keyed_by_topic_name_is_looked_up_with_a_str() {
        let mut map = HashMap::new();
        map.insert(TopicName::from("a/b"), 1);
        assert_eq!(map.get("a/b"), Some(&1));
        assert_eq!(map.get("a/c"), None);
    }
}
