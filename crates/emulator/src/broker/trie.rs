//! The subscription trie: topic filters → subscribers, shared by every connection.
//!
//! Each node is one topic level. Literal levels are kept in a hash map; the `+`
//! and `#` wildcards have their own slots so that matching a topic costs one
//! hash lookup per level plus the wildcard branches, whatever the number of
//! subscriptions. A node holds the subscribers whose filter ends there.
//!
//! Matching follows [`MatchMode`]: in [`MatchMode::Aws`] (what AWS IoT Core
//! does) `a/#` matches `a/b` and `a/b/c` but not `a`. In both modes a topic
//! whose first level starts with `$` is not matched by a filter whose first
//! level is a wildcard (MQTT 3.1.1 §4.7.2, MQTT 5 §4.7.2).
//!
//! Filters are expected to be valid (validated by the codec on decode).

use std::collections::HashMap;
use std::hash::Hash;
use std::str::Split;

use iotcore_mqtt::topic::MatchMode;

/// Topic filters mapped to subscribers `K`, each with a value `V` (its options).
#[derive(Debug)]
pub(crate) struct SubscriptionTrie<K, V> {
    root: Node<K, V>,
    mode: MatchMode,
    len: usize,
}

#[derive(Debug)]
struct Node<K, V> {
    literal: HashMap<Box<str>, Node<K, V>>,
    plus: Option<Box<Node<K, V>>>,
    /// Subscribers of `<path to this node>/#`.
    hash: HashMap<K, V>,
    /// Subscribers of exactly `<path to this node>`.
    exact: HashMap<K, V>,
}

impl<K, V> Default for Node<K, V> {
    fn default() -> Self {
        Node {
            literal: HashMap::new(),
            plus: None,
            hash: HashMap::new(),
            exact: HashMap::new(),
        }
    }
}

impl<K, V> Node<K, V> {
    fn is_empty(&self) -> bool {
        self.literal.is_empty()
            && self.plus.is_none()
            && self.hash.is_empty()
            && self.exact.is_empty()
    }
}

impl<K: Eq + Hash + Clone, V> SubscriptionTrie<K, V> {
    /// An empty trie matching the way `mode` says.
    pub(crate) fn new(mode: MatchMode) -> Self {
        SubscriptionTrie {
            root: Node::default(),
            mode,
            len: 0,
        }
    }

    /// Number of (filter, subscriber) pairs.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Adds or replaces `key`'s subscription to `filter`; returns the value it replaced.
    pub(crate) fn insert(&mut self, filter: &str, key: K, value: V) -> Option<V> {
        let mut node = &mut self.root;
        let mut levels = filter.split('/').peekable();
        while let Some(level) = levels.next() {
            if level == "#" && levels.peek().is_none() {
                let previous = node.hash.insert(key, value);
                if previous.is_none() {
                    self.len += 1;
                }
                return previous;
            }
            node = match level {
                "+" => node.plus.get_or_insert_with(Box::default),
                _ => node.literal.entry(level.into()).or_default(),
            };
        }
        let previous = node.exact.insert(key, value);
        if previous.is_none() {
            self.len += 1;
        }
        previous
    }

    /// Removes `key`'s subscription to `filter`; returns its value if there was one.
    /// Nodes left empty are pruned.
    pub(crate) fn remove(&mut self, filter: &str, key: &K) -> Option<V> {
        let levels: Vec<&str> = filter.split('/').collect();
        let removed = remove_at(&mut self.root, &levels, key);
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    /// Calls `f` for every subscription whose filter matches `topic`.
    ///
    /// A subscriber with several matching filters is reported once per filter;
    /// the caller decides how to merge them.
    pub(crate) fn for_each_match(&self, topic: &str, mut f: impl FnMut(&K, &V)) {
        if self.len == 0 {
            return;
        }
        let mut levels = topic.split('/');
        let first = levels.next();
        let dollar = topic.starts_with('$');
        visit(&self.root, first, levels, true, dollar, self.mode, &mut f);
    }
}

fn remove_at<K: Eq + Hash, V>(node: &mut Node<K, V>, levels: &[&str], key: &K) -> Option<V> {
    let Some((&level, rest)) = levels.split_first() else {
        return node.exact.remove(key);
    };
    if level == "#" && rest.is_empty() {
        return node.hash.remove(key);
    }
    if level == "+" {
        let child = node.plus.as_deref_mut()?;
        let removed = remove_at(child, rest, key);
        if child.is_empty() {
            node.plus = None;
        }
        removed
    } else {
        let child = node.literal.get_mut(level)?;
        let removed = remove_at(child, rest, key);
        if child.is_empty() {
            node.literal.remove(level);
        }
        removed
    }
}

/// Matches from `node` the level `level` (`None` once every level is
/// consumed) and the levels after it, `rest`: an iterator cloned at each
/// branch, so matching allocates nothing.
fn visit<K, V>(
    node: &Node<K, V>,
    level: Option<&str>,
    rest: Split<'_, char>,
    first: bool,
    dollar: bool,
    mode: MatchMode,
    f: &mut impl FnMut(&K, &V),
) {
    // Wildcards in the first level never match a `$` topic.
    let wildcards = !(first && dollar);
    let Some(level) = level else {
        node.exact.iter().for_each(|(k, v)| f(k, v));
        // Standard MQTT: `a/#` also matches its parent `a`.
        if mode == MatchMode::Standard {
            node.hash.iter().for_each(|(k, v)| f(k, v));
        }
        return;
    };
    if wildcards {
        node.hash.iter().for_each(|(k, v)| f(k, v));
    }
    let descend = |child: &Node<K, V>, f: &mut _| {
        let mut next = rest.clone();
        visit(child, next.next(), next, false, dollar, mode, f);
    };
    if let Some(child) = node.literal.get(level) {
        descend(child, f);
    }
    if let Some(child) = node.plus.as_deref().filter(|_| wildcards) {
        descend(child, f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matched(trie: &SubscriptionTrie<u32, ()>, topic: &str) -> Vec<u32> {
        let mut keys = Vec::new();
        trie.for_each_match(topic, |k, _| keys.push(*k));
        keys.sort_unstable();
        keys
    }

    fn trie_with(mode: MatchMode, filters: &[&str]) -> SubscriptionTrie<u32, ()> {
        let mut trie = SubscriptionTrie::new(mode);
        for (i, filter) in filters.iter().enumerate() {
            trie.insert(filter, i as u32, ());
        }
        trie
    }

    #[test]
    fn literal_filters_match_only_their_topic() {
        let trie = trie_with(MatchMode::Aws, &["a/b", "a/c", "a/b/c"]);
        assert_eq!(matched(&trie, "a/b"), [0]);
        assert_eq!(matched(&trie, "a/c"), [1]);
        assert_eq!(matched(&trie, "a/b/c"), [2]);
        assert!(matched(&trie, "a").is_empty());
        assert!(matched(&trie, "a/b/c/d").is_empty());
    }

    #[test]
    fn plus_matches_exactly_one_level_including_an_empty_one() {
        let trie = trie_with(MatchMode::Aws, &["a/+/c", "+"]);
        assert_eq!(matched(&trie, "a/b/c"), [0]);
        assert_eq!(matched(&trie, "a//c"), [0]);
        assert!(matched(&trie, "a/b/d").is_empty());
        assert_eq!(matched(&trie, "x"), [1]);
        assert!(matched(&trie, "x/y").is_empty());
    }

    #[test]
    fn aws_mode_hash_does_not_match_the_parent_level() {
        let trie = trie_with(MatchMode::Aws, &["a/#"]);
        assert!(matched(&trie, "a").is_empty());
        assert_eq!(matched(&trie, "a/b"), [0]);
        assert_eq!(matched(&trie, "a/b/c"), [0]);
        assert_eq!(matched(&trie, "a/"), [0]);
    }

    #[test]
    fn standard_mode_hash_matches_the_parent_level() {
        let trie = trie_with(MatchMode::Standard, &["a/#"]);
        assert_eq!(matched(&trie, "a"), [0]);
        assert_eq!(matched(&trie, "a/b"), [0]);
    }

    #[test]
    fn lone_hash_matches_everything_but_dollar_topics() {
        let trie = trie_with(MatchMode::Aws, &["#", "+/x", "$aws/#", "$aws/+/x"]);
        assert_eq!(matched(&trie, "a"), [0]);
        assert_eq!(matched(&trie, "a/x"), [0, 1]);
        assert_eq!(matched(&trie, "$aws/things"), [2]);
        assert_eq!(matched(&trie, "$aws/y/x"), [2, 3]);
        assert!(matched(&trie, "$SYS").is_empty());
    }

    #[test]
    fn overlapping_filters_report_each_subscription() {
        let mut trie = SubscriptionTrie::new(MatchMode::Aws);
        trie.insert("a/b", 7u32, 'x');
        trie.insert("a/+", 7u32, 'y');
        trie.insert("a/#", 8u32, 'z');
        let mut seen = Vec::new();
        trie.for_each_match("a/b", |k, v| seen.push((*k, *v)));
        seen.sort_unstable();
        assert_eq!(seen, [(7, 'x'), (7, 'y'), (8, 'z')]);
    }

    #[test]
    fn insert_replaces_and_remove_prunes() {
        let mut trie = SubscriptionTrie::new(MatchMode::Aws);
        assert_eq!(trie.insert("a/+/c", 1u32, 0u8), None);
        assert_eq!(trie.insert("a/+/c", 1u32, 1u8), Some(0));
        assert_eq!(trie.insert("a/#", 1u32, 2u8), None);
        assert_eq!(trie.len(), 2);
        assert_eq!(trie.remove("a/+/c", &2), None);
        assert_eq!(trie.remove("a/x/c", &1), None);
        assert_eq!(trie.remove("a/+/c", &1), Some(1));
        assert_eq!(trie.remove("a/#", &1), Some(2));
        assert_eq!(trie.len(), 0);
        assert!(
            trie.root.is_empty(),
            "empty nodes are pruned: {:?}",
            trie.root
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use iotcore_mqtt::topic::matches;
    use proptest::prelude::*;

    fn level() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just(String::new()),
            Just("$x".to_string())
        ]
    }

    fn topic() -> impl Strategy<Value = String> {
        prop::collection::vec(level(), 1..5).prop_map(|levels| levels.join("/"))
    }

    fn filter() -> impl Strategy<Value = String> {
        let filter_level = prop_oneof![level(), Just("+".to_string())];
        (prop::collection::vec(filter_level, 1..5), any::<bool>()).prop_map(|(mut levels, hash)| {
            if hash {
                levels.push("#".into());
            }
            levels.join("/")
        })
    }

    proptest! {
        /// The trie answers exactly what `topic::matches` answers for each filter.
        #[test]
        fn trie_agrees_with_topic_matches(filters in prop::collection::vec(filter(), 1..12), topic in topic(), aws in any::<bool>()) {
            let mode = if aws { MatchMode::Aws } else { MatchMode::Standard };
            let mut trie = SubscriptionTrie::new(mode);
            for (i, f) in filters.iter().enumerate() {
                trie.insert(f, i, ());
            }
            let mut got = Vec::new();
            trie.for_each_match(&topic, |k, _| got.push(*k));
            got.sort_unstable();
            let expected: Vec<usize> = (0..filters.len()).filter(|&i| matches(&filters[i], &topic, mode)).collect();
            prop_assert_eq!(got, expected);
        }
    }
}
