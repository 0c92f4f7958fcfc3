//! IAM-style wildcard patterns (`*` any run of characters, `/` included; `?` one
//! character) and strings with policy variables (`${iot:ClientId}`).
//!
//! MQTT's `+` and `#` are ordinary characters here, as in AWS IoT policies: the
//! resource `topicfilter/a/+/b` authorizes the literal filter `a/+/b` only.

use super::variables::{Kind, Variable};

/// One element of a [`Pattern`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// Matches exactly this character.
    Char(char),
    /// `*`: any run of characters, possibly empty.
    Any,
    /// `?`: exactly one character.
    One,
}

/// The escape before a literal `*`, `?` or `\` in [`Pattern::tokens`].
const ESCAPE: char = '\\';

/// A compiled wildcard pattern.
///
/// Its tokens are kept as text, one byte per ASCII character (a connection holds
/// one pattern per resource of its policies): `*` and `?` are the wildcards, and
/// a literal `*`, `?` or `\` is escaped with `\`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Pattern {
    tokens: String,
}

impl Pattern {
    /// `text` with `*` and `?` as wildcards, every other character literal.
    pub(crate) fn wildcard(text: &str) -> Pattern {
        let mut pattern = Pattern::default();
        pattern.push_wildcard(text);
        pattern.tokens.shrink_to_fit();
        pattern
    }

    /// Appends `text`, `*` and `?` being wildcards.
    pub(crate) fn push_wildcard(&mut self, text: &str) {
        for c in text.chars() {
            if c == ESCAPE {
                self.tokens.push(ESCAPE);
            }
            self.tokens.push(c);
        }
    }

    /// Appends `text` literally (a substituted variable value).
    pub(crate) fn push_literal(&mut self, text: &str) {
        for c in text.chars() {
            if matches!(c, '*' | '?' | ESCAPE) {
                self.tokens.push(ESCAPE);
            }
            self.tokens.push(c);
        }
    }

    /// The token starting at byte `at` of the tokens, and where the next starts.
    fn token_at(&self, at: usize) -> Option<(Token, usize)> {
        let mut chars = self.tokens.get(at..)?.chars();
        let token = match chars.next()? {
            '*' => Token::Any,
            '?' => Token::One,
            ESCAPE => Token::Char(chars.next()?),
            c => Token::Char(c),
        };
        let len = self.tokens[at..].len() - chars.as_str().len();
        Some((token, at + len))
    }

    /// The pattern as written (escapes removed).
    pub(crate) fn source(&self) -> String {
        let mut text = String::new();
        let mut at = 0;
        while let Some((token, next)) = self.token_at(at) {
            text.push(match token {
                Token::Any => '*',
                Token::One => '?',
                Token::Char(c) => c,
            });
            at = next;
        }
        text
    }

    /// Whether it has a wildcard (`*` or `?`, not escaped).
    pub(crate) fn has_wildcard(&self) -> bool {
        let mut at = 0;
        while let Some((token, next)) = self.token_at(at) {
            if matches!(token, Token::Any | Token::One) {
                return true;
            }
            at = next;
        }
        false
    }

    /// The rest of the pattern when it starts with `prefix` as literal
    /// characters (no wildcard among them), `None` otherwise. The pattern
    /// matches `prefix + x` exactly when the rest matches `x`.
    pub(crate) fn strip_literal_prefix(&self, prefix: &str) -> Option<Pattern> {
        let mut at = 0;
        for expected in prefix.chars() {
            match self.token_at(at) {
                Some((Token::Char(c), next)) if c == expected => at = next,
                _ => return None,
            }
        }
        Some(Pattern {
            tokens: self.tokens[at..].into(),
        })
    }

    /// True when the pattern matches all of `text`.
    ///
    /// Byte by byte: the wildcards and the escape are ASCII, so they never
    /// occur inside a multi-byte character, and a literal character matches
    /// as its UTF-8 bytes; `?` and a `*` taking one more step take a whole
    /// character, so every position a match restarts from is a character
    /// boundary.
    pub(crate) fn matches(&self, text: &str) -> bool {
        let (tokens, text) = (self.tokens.as_bytes(), text.as_bytes());
        // `p`: the next token in `tokens`; `i`: the next byte of `text`.
        let (mut p, mut i) = (0usize, 0usize);
        // After a `*`: the token after it, and where in the text its match ends.
        let mut star: Option<(usize, usize)> = None;
        while let Some(&b) = text.get(i) {
            match tokens.get(p) {
                Some(b'*') => {
                    p += 1;
                    star = Some((p, i));
                    continue;
                }
                Some(b'?') => {
                    p += 1;
                    i += utf8_len(b);
                    continue;
                }
                // An escaped `*`, `?` or `\`: one ASCII byte follows the escape.
                Some(&ESCAPE_BYTE) if tokens.get(p + 1) == Some(&b) => {
                    p += 2;
                    i += 1;
                    continue;
                }
                Some(&t) if t == b && t != ESCAPE_BYTE => {
                    p += 1;
                    i += 1;
                    continue;
                }
                _ => {}
            }
            // Mismatch: let the last `*` take one more character, or fail.
            let Some((after_star, end)) = star else {
                return false;
            };
            let Some(&taken) = text.get(end) else {
                return false;
            };
            let end = end + utf8_len(taken);
            star = Some((after_star, end));
            p = after_star;
            i = end;
        }
        // Only `*`s may be left (an escaped one starts with the escape).
        tokens[p..].iter().all(|&t| t == b'*')
    }
}

/// [`ESCAPE`] as a byte.
const ESCAPE_BYTE: u8 = ESCAPE as u8;

/// The length in bytes of the UTF-8 character whose first byte is `lead`.
fn utf8_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// A piece of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// Text as written (with its wildcards).
    Text(String),
    /// A policy variable, `${…}`.
    Variable(Variable),
}

/// A string of a policy document: text and policy variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    segments: Vec<Segment>,
}

/// Why a string with variables could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateError(pub(crate) String);

impl Template {
    /// Reads `text`: with `variables`, each `${name}` is a policy variable;
    /// without (policy language version 2008-10-17), everything is text.
    pub(crate) fn parse(text: &str, variables: bool) -> Result<Template, TemplateError> {
        if !variables {
            return Ok(Template {
                segments: vec![Segment::Text(text.to_owned())],
            });
        }
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                segments.push(Segment::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(TemplateError(format!(
                    "policy variable \"{}\" is not closed with '}}'",
                    &rest[start..]
                )));
            };
            let name = &after[..end];
            if name.is_empty() {
                return Err(TemplateError("empty policy variable \"${}\"".into()));
            }
            segments.push(Segment::Variable(Variable::parse(name)));
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.to_owned()));
        }
        Ok(Template { segments })
    }

    /// The template's variables.
    pub(crate) fn variables(&self) -> impl Iterator<Item = &Variable> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Variable(v) => Some(v),
            Segment::Text(_) => None,
        })
    }

    /// Where its first wildcard (`*` or `?` in its text) is: `None`
    /// without one; `Some(true)` when a variable naming the device (its
    /// client id or thing name) comes before it, so that it spans only the
    /// device's own resources.
    pub(crate) fn wildcard_after_device(&self) -> Option<bool> {
        let mut device_named = false;
        for segment in &self.segments {
            match segment {
                Segment::Variable(v) => {
                    device_named |= matches!(v.kind(), Kind::ClientId | Kind::ThingName);
                }
                Segment::Text(t) if t.contains(['*', '?']) => return Some(device_named),
                Segment::Text(_) => {}
            }
        }
        None
    }

    /// The text as written, variables included.
    pub(crate) fn source(&self) -> String {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Text(t) => t.clone(),
                Segment::Variable(v) => format!("${{{}}}", v.name()),
            })
            .collect()
    }

    /// The pattern with each variable replaced by `resolve`'s value (taken
    /// literally: a `*` in a client id is no wildcard). A variable `resolve`
    /// cannot give stays as its text, `${name}`, as AWS leaves it in the
    /// document, and is reported to `unresolved`.
    pub(crate) fn to_pattern(
        &self,
        mut resolve: impl FnMut(&Variable) -> Option<String>,
        unresolved: &mut Vec<Variable>,
    ) -> Pattern {
        let mut pattern = Pattern::default();
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => pattern.push_wildcard(text),
                Segment::Variable(v) => match resolve(v) {
                    Some(value) => pattern.push_literal(&value),
                    None => {
                        pattern.push_literal(&format!("${{{}}}", v.name()));
                        if !unresolved.contains(v) {
                            unresolved.push(v.clone());
                        }
                    }
                },
            }
        }
        pattern.tokens.shrink_to_fit();
        pattern
    }

    /// The string with each variable replaced as in [`Template::to_pattern`],
    /// wildcards kept as characters.
    pub(crate) fn to_text(
        &self,
        mut resolve: impl FnMut(&Variable) -> Option<String>,
        unresolved: &mut Vec<Variable>,
    ) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => out.push_str(text),
                Segment::Variable(v) => match resolve(v) {
                    Some(value) => out.push_str(&value),
                    None => {
                        out.push_str(&format!("${{{}}}", v.name()));
                        if !unresolved.contains(v) {
                            unresolved.push(v.clone());
                        }
                    }
                },
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, text: &str) -> bool {
        Pattern::wildcard(pattern).matches(text)
    }

    #[test]
    fn star_matches_any_run_including_slashes_and_nothing() {
        assert!(m("*", ""));
        assert!(m("*", "a/b/c"));
        assert!(m("topic/a/*", "topic/a/b/c"));
        assert!(m("topic/a/*", "topic/a/"));
        assert!(!m("topic/a/*", "topic/a"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(m("a*b*c", "abc"));
        assert!(!m("a*b*c", "acb"));
        assert!(m("*/temp", "x/y/temp"));
        assert!(m("a**b", "ab"));
    }

    #[test]
    fn question_mark_matches_exactly_one_character() {
        assert!(m("dev-?", "dev-1"));
        assert!(!m("dev-?", "dev-"));
        assert!(!m("dev-?", "dev-12"));
        assert!(m("d?v", "dév"));
        assert!(m("??", "éü"));
    }

    #[test]
    fn multi_byte_characters_are_whole_characters_to_every_wildcard() {
        assert!(m("*é", "aé"));
        assert!(m("*?", "é"));
        assert!(m("a*?b", "aéüb"));
        assert!(!m("a?b", "aéüb"));
        assert!(m("*ü*", "éüé"));
        assert!(!m("*ü", "éé"));
        assert!(m("é*é", "éé"));
    }

    #[test]
    fn a_literal_prefix_comes_off_and_leaves_what_matches_the_rest() {
        let p = Pattern::wildcard("arn:x:topic/dt/*");
        let rest = p.strip_literal_prefix("arn:x:topic/").unwrap();
        assert_eq!(rest.source(), "dt/*");
        assert!(rest.matches("dt/a/b"));
        assert!(!rest.matches("cmd/a"));
        assert_eq!(p.strip_literal_prefix("arn:x:topicfilter/"), None);
        assert_eq!(
            Pattern::wildcard("arn:*:topic/a").strip_literal_prefix("arn:x:"),
            None
        );
        assert_eq!(
            Pattern::wildcard("arn:?").strip_literal_prefix("arn:x"),
            None
        );
        let mut escaped = Pattern::wildcard("t/");
        escaped.push_literal("*");
        assert_eq!(
            escaped.strip_literal_prefix("t/*").map(|r| r.matches("")),
            Some(true),
            "a literal * is a literal character"
        );
        assert_eq!(
            Pattern::wildcard("t/*").strip_literal_prefix("t/*"),
            None,
            "a wildcard is not"
        );
        assert_eq!(p.strip_literal_prefix(""), Some(p.clone()));
    }

    #[test]
    fn mqtt_wildcards_are_plain_characters() {
        assert!(m("a/+/b", "a/+/b"));
        assert!(!m("a/+/b", "a/x/b"));
        assert!(m("a/#", "a/#"));
        assert!(!m("a/#", "a/x"));
    }

    #[test]
    fn backtracking_finds_a_later_match() {
        assert!(m("*ab", "aaab"));
        assert!(m("*a?c", "abcaxc"));
        assert!(!m("*a?c", "abcaxd"));
    }

    #[test]
    fn backslashes_are_plain_characters_and_substituted_wildcards_literal() {
        assert!(m("a\\*", "a\\b"));
        assert!(!m("a\\*", "ab"));
        assert!(m("a\\?", "a\\?"));
        assert!(!m("a\\", "a"));
        let mut p = Pattern::wildcard("t\\/");
        p.push_literal("x?\\*");
        p.push_wildcard("*");
        assert!(p.matches("t\\/x?\\*"));
        assert!(p.matches("t\\/x?\\*/more"));
        assert!(!p.matches("t\\/xy\\*"), "a substituted ? is literal");
        assert!(!p.matches("t\\/x?\\z"), "a substituted * is literal");
        assert!(!p.matches("t\\/x?\\"));
        let mut literal = Pattern::default();
        literal.push_literal("*");
        assert_ne!(literal, Pattern::wildcard("*"));
        assert!(!literal.matches(""));
        assert!(literal.matches("*"));
    }

    #[test]
    fn templates_split_text_and_variables() {
        let t = Template::parse("topic/${iot:ClientId}/*", true).unwrap();
        assert_eq!(t.variables().count(), 1);
        assert_eq!(t.source(), "topic/${iot:ClientId}/*");
        let mut unresolved = Vec::new();
        let p = t.to_pattern(|_| Some("a*".into()), &mut unresolved);
        assert!(p.matches("topic/a*/x"));
        assert!(!p.matches("topic/ab/x"), "a substituted * is literal");
        assert!(unresolved.is_empty());
    }

    #[test]
    fn an_unresolved_variable_stays_as_text() {
        let t = Template::parse("topic/${iot:Connection.Thing.ThingName}", true).unwrap();
        let mut unresolved = Vec::new();
        let p = t.to_pattern(|_| None, &mut unresolved);
        assert!(!p.matches("topic/dev1"));
        assert!(p.matches("topic/${iot:Connection.Thing.ThingName}"));
        assert_eq!(unresolved.len(), 1);
    }

    #[test]
    fn without_variables_everything_is_text() {
        let t = Template::parse("topic/${iot:ClientId}", false).unwrap();
        assert_eq!(t.variables().count(), 0);
        let p = t.to_pattern(|_| Some("x".into()), &mut Vec::new());
        assert!(p.matches("topic/${iot:ClientId}"));
    }

    #[test]
    fn unclosed_and_empty_variables_are_errors() {
        assert!(Template::parse("topic/${iot:ClientId", true).is_err());
        assert!(Template::parse("topic/${}", true).is_err());
    }
}
