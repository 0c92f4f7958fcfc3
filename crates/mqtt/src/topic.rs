//! Topic names, topic filters, and matching.

mod name;

pub use name::TopicName;

/// Why a topic name or filter is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// Empty topic names and filters are not allowed.
    #[error("topic is empty")]
    Empty,
    /// Longer than 65,535 bytes (MQTT) or than the configured limit (AWS: 256 bytes).
    #[error("topic is {len} bytes long, the limit is {max}")]
    TooLong {
        /// Length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More levels than allowed (AWS: 8 levels, `$aws/rules/<rule>/` prefix exempt).
    #[error("topic has {levels} levels, the limit is {max}")]
    TooDeep {
        /// Number of levels.
        levels: usize,
        /// The limit.
        max: usize,
    },
    /// A `+` or `#` in a topic name.
    #[error("wildcard characters are not allowed in a topic name")]
    WildcardInName,
    /// `#` not alone in the last level, or `+` not alone in its level.
    #[error("wildcard '{0}' must occupy a whole level ('#' only the last)")]
    MisplacedWildcard(char),
    /// U+0000 in a topic.
    #[error("topic contains a NUL character")]
    NulCharacter,
    /// A filter starting with `$share/` that is not `$share/<share-name>/<filter>`
    /// with a share name of at least one character and no `/`, `+` or `#`
    /// [MQTT-4.8.2-1], [MQTT-4.8.2-2].
    #[error("invalid shared subscription filter: {0}")]
    InvalidSharedFilter(&'static str),
    /// A shared subscription's share name longer than AWS IoT Core allows.
    #[error("share name is {len} bytes long, the limit is {max}")]
    ShareNameTooLong {
        /// Length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// How a filter ending in `/#` treats its parent level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MatchMode {
    /// MQTT specification: `a/#` matches `a`, `a/b`, `a/b/c`.
    #[default]
    Standard,
    /// AWS IoT Core: `a/#` matches `a/b` and `a/b/c` but not `a`.
    Aws,
}

/// The longest topic name or filter MQTT can carry, in bytes.
pub const MAX_MQTT_TOPIC_BYTES: usize = u16::MAX as usize;

/// AWS IoT Core: the longest topic name or filter, in bytes of UTF-8.
pub const MAX_TOPIC_BYTES: usize = 256;

/// AWS IoT Core: the most levels in a topic name or filter (at most 7 `/`).
pub const MAX_TOPIC_LEVELS: usize = 8;

/// AWS IoT Core: the longest share name of a shared subscription, in bytes
/// (AWS documents 128 UTF-8 characters; see `docs/aws-iot-core-behaviour.md` §1.7).
pub const MAX_SHARE_NAME_BYTES: usize = 128;

/// AWS IoT Core's Basic Ingest prefix (matched without regard to ASCII
/// case); `$aws/rules/<rule-name>/` does not count towards
/// [`MAX_TOPIC_BYTES`] and [`MAX_TOPIC_LEVELS`].
const AWS_RULES_PREFIX: &str = "$aws/rules/";

/// The prefix of a shared subscription's filter, `$share/<share-name>/<filter>`
/// (MQTT 5.0 §4.8.2; AWS IoT Core accepts it from MQTT 3.1.1 clients too).
/// `$share/<share-name>/` does not count towards AWS IoT Core's limits.
pub const SHARED_PREFIX: &str = "$share/";

/// Checks what names and filters share: not empty, not too long, no NUL.
fn validate_common(topic: &str) -> Result<(), TopicError> {
    validate_length(topic)?;
    if topic.contains('\0') {
        return Err(TopicError::NulCharacter);
    }
    Ok(())
}

fn validate_length(topic: &str) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty);
    }
    if topic.len() > MAX_MQTT_TOPIC_BYTES {
        return Err(TopicError::TooLong {
            len: topic.len(),
            max: MAX_MQTT_TOPIC_BYTES,
        });
    }
    Ok(())
}

/// Validates a topic name (no wildcards, not empty, no NUL, ≤ 65,535 bytes).
///
/// One pass over the text: every PUBLISH is checked when decoded and when
/// encoded, once per subscriber a broker delivers it to.
pub fn validate_topic_name(topic: &str) -> Result<(), TopicError> {
    validate_length(topic)?;
    match topic.bytes().position(|b| matches!(b, 0 | b'+' | b'#')) {
        None => Ok(()),
        Some(at) if topic.as_bytes()[at..].contains(&0) => Err(TopicError::NulCharacter),
        Some(_) => Err(TopicError::WildcardInName),
    }
}

/// Validates a topic filter (wildcards whole levels, `#` last).
pub fn validate_topic_filter(filter: &str) -> Result<(), TopicError> {
    validate_common(filter)?;
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        if level.contains('#') && (level != "#" || levels.peek().is_some()) {
            return Err(TopicError::MisplacedWildcard('#'));
        }
        if level.contains('+') && level != "+" {
            return Err(TopicError::MisplacedWildcard('+'));
        }
    }
    Ok(())
}

/// A shared subscription's filter, `$share/<share_name>/<filter>`, in its parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedFilter<'a> {
    /// The share name: subscriptions with the same share name and filter form
    /// one group, and each message goes to one member of the group.
    pub share_name: &'a str,
    /// The topic filter the group shares, matched against topic names like
    /// any other filter.
    pub filter: &'a str,
}

impl<'a> SharedFilter<'a> {
    /// `Ok(None)` when `filter` does not start with [`SHARED_PREFIX`], the
    /// parts of a shared subscription filter when it does, and
    /// [`TopicError::InvalidSharedFilter`] when it starts so but lacks a share
    /// name, has `+` or `#` in it, or has no filter after it. The filter part
    /// is not validated here (see [`validate_topic_filter`]).
    pub fn parse(filter: &'a str) -> Result<Option<SharedFilter<'a>>, TopicError> {
        let Some(rest) = filter.strip_prefix(SHARED_PREFIX) else {
            return Ok(None);
        };
        let Some((share_name, filter)) = rest.split_once('/') else {
            return Err(TopicError::InvalidSharedFilter(
                "the share name must be followed by '/' and a topic filter",
            ));
        };
        if share_name.is_empty() {
            return Err(TopicError::InvalidSharedFilter("the share name is empty"));
        }
        if share_name.contains(['+', '#']) {
            return Err(TopicError::InvalidSharedFilter(
                "the share name contains '+' or '#'",
            ));
        }
        if filter.is_empty() {
            return Err(TopicError::InvalidSharedFilter(
                "no topic filter follows the share name",
            ));
        }
        Ok(Some(SharedFilter { share_name, filter }))
    }
}

/// Validates a topic name against MQTT's rules and AWS IoT Core's limits:
/// at most [`MAX_TOPIC_BYTES`] bytes and [`MAX_TOPIC_LEVELS`] levels, not
/// counting a `$aws/rules/<rule-name>/` (Basic Ingest) prefix.
///
/// [`TopicError::TooLong`] and [`TopicError::TooDeep`] report the counted part.
pub fn validate_aws_topic_name(topic: &str) -> Result<(), TopicError> {
    validate_topic_name(topic)?;
    validate_aws_limits(strip_named_prefix(topic, AWS_RULES_PREFIX, true))
}

/// Validates a topic filter against MQTT's rules and AWS IoT Core's limits
/// (see [`validate_aws_topic_name`]). A filter starting with `$share/` must be
/// a valid shared subscription filter (AWS takes it as one in MQTT 3.1.1
/// too, see [`SharedFilter::parse`]) with a share name of at most
/// [`MAX_SHARE_NAME_BYTES`]; its `$share/<share-name>/` does not count
/// towards the limits.
pub fn validate_aws_topic_filter(filter: &str) -> Result<(), TopicError> {
    validate_topic_filter(filter)?;
    let counted = match SharedFilter::parse(filter)? {
        Some(shared) if shared.share_name.len() > MAX_SHARE_NAME_BYTES => {
            return Err(TopicError::ShareNameTooLong {
                len: shared.share_name.len(),
                max: MAX_SHARE_NAME_BYTES,
            });
        }
        Some(shared) => shared.filter,
        None => filter,
    };
    validate_aws_limits(strip_named_prefix(counted, AWS_RULES_PREFIX, true))
}

/// `topic` without a leading `<prefix><name>/` (name not empty), or all of
/// `topic` when it does not start that way.
fn strip_named_prefix<'a>(topic: &'a str, prefix: &str, ignore_case: bool) -> &'a str {
    let Some((head, rest)) = topic.split_at_checked(prefix.len()) else {
        return topic;
    };
    let prefixed = if ignore_case {
        head.eq_ignore_ascii_case(prefix)
    } else {
        head == prefix
    };
    match rest.split_once('/') {
        Some((name, counted)) if prefixed && !name.is_empty() => counted,
        _ => topic,
    }
}

/// Checks the part of a topic that counts against AWS IoT Core's limits.
fn validate_aws_limits(counted: &str) -> Result<(), TopicError> {
    if counted.len() > MAX_TOPIC_BYTES {
        return Err(TopicError::TooLong {
            len: counted.len(),
            max: MAX_TOPIC_BYTES,
        });
    }
    let levels = counted.bytes().filter(|&b| b == b'/').count() + 1;
    if levels > MAX_TOPIC_LEVELS {
        return Err(TopicError::TooDeep {
            levels,
            max: MAX_TOPIC_LEVELS,
        });
    }
    Ok(())
}

/// True when `topic` matches `filter`. Topics starting with `$` are not matched
/// by a filter whose first level is `+` or `#`.
///
/// Both arguments are expected to be valid (see [`validate_topic_filter`] and
/// [`validate_topic_name`]); for invalid ones the answer is unspecified, but
/// this never panics.
pub fn matches(filter: &str, topic: &str, mode: MatchMode) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut filter_levels = filter.split('/');
    let mut topic_levels = topic.split('/');
    loop {
        match (filter_levels.next(), topic_levels.next()) {
            (Some("#"), Some(_)) => return true,
            // `a/#` against `a`: the parent level.
            (Some("#"), None) => return mode == MatchMode::Standard,
            (Some("+"), Some(_)) => {}
            (Some(f), Some(t)) if f == t => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_refuse_wildcards_nul_empty_and_oversize() {
        assert_eq!(validate_topic_name("a/b/c"), Ok(()));
        assert_eq!(validate_topic_name("/"), Ok(()));
        assert_eq!(validate_topic_name("$aws/things/x/shadow/get"), Ok(()));
        assert_eq!(validate_topic_name(""), Err(TopicError::Empty));
        assert_eq!(validate_topic_name("a/+"), Err(TopicError::WildcardInName));
        assert_eq!(validate_topic_name("a#"), Err(TopicError::WildcardInName));
        assert_eq!(validate_topic_name("a\0"), Err(TopicError::NulCharacter));
        // NUL is reported wherever it is, a wildcard before it or not.
        assert_eq!(validate_topic_name("a+\0"), Err(TopicError::NulCharacter));
        assert_eq!(validate_topic_name("\0#"), Err(TopicError::NulCharacter));
        let long = "a".repeat(65_536);
        assert_eq!(
            validate_topic_name(&long),
            Err(TopicError::TooLong {
                len: 65_536,
                max: 65_535
            })
        );
        assert_eq!(validate_topic_name(&long[1..]), Ok(()));
    }

    #[test]
    fn filters_need_wildcards_to_fill_whole_levels_and_hash_last() {
        for ok in ["#", "+", "a/#", "+/+/#", "a/+/c", "/+", "+/", "$SYS/#"] {
            assert_eq!(validate_topic_filter(ok), Ok(()), "{ok}");
        }
        for (bad, c) in [
            ("a#", '#'),
            ("a/#/b", '#'),
            ("#/", '#'),
            ("a/b#", '#'),
            ("a+", '+'),
            ("a/+b/c", '+'),
            ("++", '+'),
        ] {
            assert_eq!(
                validate_topic_filter(bad),
                Err(TopicError::MisplacedWildcard(c)),
                "{bad}"
            );
        }
        assert_eq!(validate_topic_filter(""), Err(TopicError::Empty));
        assert_eq!(validate_topic_filter("a/\0"), Err(TopicError::NulCharacter));
    }

    #[test]
    fn aws_limits_count_bytes_and_slashes_but_exempt_the_rules_prefix() {
        assert_eq!(validate_aws_topic_name("1/2/3/4/5/6/7/8"), Ok(()));
        assert_eq!(
            validate_aws_topic_name("1/2/3/4/5/6/7/8/9"),
            Err(TopicError::TooDeep { levels: 9, max: 8 })
        );
        assert_eq!(
            validate_aws_topic_filter("1/2/3/4/5/6/7/#/"),
            Err(TopicError::MisplacedWildcard('#'))
        );
        assert_eq!(
            validate_aws_topic_filter("1/2/3/4/5/6/7/8/#"),
            Err(TopicError::TooDeep { levels: 9, max: 8 })
        );
        assert_eq!(validate_aws_topic_name(&"a".repeat(256)), Ok(()));
        assert_eq!(
            validate_aws_topic_name(&"a".repeat(257)),
            Err(TopicError::TooLong { len: 257, max: 256 })
        );
        // The Basic Ingest prefix does not count.
        assert_eq!(
            validate_aws_topic_name("$aws/rules/my_rule/1/2/3/4/5/6/7/8"),
            Ok(())
        );
        let prefixed = format!("$aws/rules/r/{}", "a".repeat(256));
        assert_eq!(validate_aws_topic_name(&prefixed), Ok(()));
        assert_eq!(
            validate_aws_topic_name("$aws/rules/r/1/2/3/4/5/6/7/8/9"),
            Err(TopicError::TooDeep { levels: 9, max: 8 })
        );
        // Without a rule name there is no prefix to exempt.
        assert_eq!(
            validate_aws_topic_name("$aws/rules//1/2/3/4/5/6"),
            Err(TopicError::TooDeep { levels: 9, max: 8 })
        );
        // The prefix is matched without regard to case.
        assert_eq!(
            validate_aws_topic_name("$AWS/Rules/r/1/2/3/4/5/6/7/8"),
            Ok(())
        );
        // A shared subscription's `$share/<name>/` does not count in filters.
        assert_eq!(
            validate_aws_topic_filter("$share/g/1/2/3/4/5/6/7/#"),
            Ok(())
        );
        assert_eq!(
            validate_aws_topic_filter("$share/g/1/2/3/4/5/6/7/8/#"),
            Err(TopicError::TooDeep { levels: 9, max: 8 })
        );
        // MQTT rules still apply.
        assert_eq!(
            validate_aws_topic_name("a/+"),
            Err(TopicError::WildcardInName)
        );
    }

    #[test]
    fn shared_filters_split_into_share_name_and_filter() {
        assert_eq!(SharedFilter::parse("a/b"), Ok(None));
        assert_eq!(SharedFilter::parse("$shared/g/a"), Ok(None));
        assert_eq!(
            SharedFilter::parse("$share/workers/jobs/+/run"),
            Ok(Some(SharedFilter {
                share_name: "workers",
                filter: "jobs/+/run"
            }))
        );
        assert_eq!(
            SharedFilter::parse("$share/g/#"),
            Ok(Some(SharedFilter {
                share_name: "g",
                filter: "#"
            }))
        );
        for bad in [
            "$share/",
            "$share/g",
            "$share//a",
            "$share/g/",
            "$share/g+/a",
            "$share/#/a",
        ] {
            assert!(
                matches!(
                    SharedFilter::parse(bad),
                    Err(TopicError::InvalidSharedFilter(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn aws_shared_filters_need_a_valid_share_name_of_at_most_128_bytes() {
        assert_eq!(validate_aws_topic_filter("$share/g/a/#"), Ok(()));
        for bad in ["$share/g", "$share//a", "$share/g/"] {
            assert!(
                matches!(
                    validate_aws_topic_filter(bad),
                    Err(TopicError::InvalidSharedFilter(_))
                ),
                "{bad}"
            );
        }
        let name = "n".repeat(128);
        assert_eq!(
            validate_aws_topic_filter(&format!("$share/{name}/a")),
            Ok(())
        );
        assert_eq!(
            validate_aws_topic_filter(&format!("$share/{name}n/a")),
            Err(TopicError::ShareNameTooLong { len: 129, max: 128 })
        );
        // The shared filter itself: 256 bytes at most, not counting the prefix.
        let long = "a".repeat(256);
        assert_eq!(
            validate_aws_topic_filter(&format!("$share/g/{long}")),
            Ok(())
        );
        assert_eq!(
            validate_aws_topic_filter(&format!("$share/g/{long}a")),
            Err(TopicError::TooLong { len: 257, max: 256 })
        );
    }

    #[test]
    fn plus_matches_exactly_one_level_including_an_empty_one() {
        assert!(matches("a/+/c", "a/b/c", MatchMode::Standard));
        assert!(matches("a/+", "a/", MatchMode::Standard));
        assert!(matches("+/+", "/x", MatchMode::Standard));
        assert!(!matches("a/+", "a/b/c", MatchMode::Standard));
        assert!(!matches("a/+", "a", MatchMode::Standard));
        assert!(!matches("+", "a/b", MatchMode::Aws));
    }

    #[test]
    fn hash_matches_the_parent_level_only_in_standard_mode() {
        assert!(matches("a/#", "a", MatchMode::Standard));
        assert!(!matches("a/#", "a", MatchMode::Aws));
        for mode in [MatchMode::Standard, MatchMode::Aws] {
            assert!(matches("a/#", "a/b", mode));
            assert!(matches("a/#", "a/b/c", mode));
            assert!(matches("#", "a/b/c", mode));
            assert!(!matches("a/#", "b/c", mode));
            assert!(!matches("a/#", "ab", mode));
        }
    }

    #[test]
    fn exact_filters_match_only_the_same_topic() {
        assert!(matches("a/b", "a/b", MatchMode::Standard));
        assert!(!matches("a/b", "a/b/", MatchMode::Standard));
        assert!(!matches("a/b", "a", MatchMode::Standard));
        assert!(!matches("A/b", "a/b", MatchMode::Standard));
    }

    #[test]
    fn dollar_topics_are_not_matched_by_a_leading_wildcard() {
        for mode in [MatchMode::Standard, MatchMode::Aws] {
            assert!(!matches("#", "$SYS/x", mode));
            assert!(!matches("+/x", "$SYS/x", mode));
            assert!(matches("$SYS/#", "$SYS/x", mode));
            assert!(matches(
                "$aws/things/+/shadow/get/accepted",
                "$aws/things/t1/shadow/get/accepted",
                mode
            ));
        }
    }
}
