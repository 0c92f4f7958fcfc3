//! IAM-style wildcard patterns (`*` any run of characters, `/` included; `?` one
//! character) and strings with policy variables (`${iot:ClientId}`).
//!
//! MQTT's `+` and `#` are ordinary characters here, as in AWS IoT policies: the
//! resource `topicfilter/a/+/b` authorizes the literal filter `a/+/b` only.

use super::variables::Variable;

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

/// A compiled wildcard pattern.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Pattern {
    tokens: Vec<Token>,
}

impl Pattern {
    /// `text` with `*` and `?` as wildcards, every other character literal.
    pub(crate) fn wildcard(text: &str) -> Pattern {
        let mut pattern = Pattern::default();
        pattern.push_wildcard(text);
        pattern
    }

    /// Appends `text`, `*` and `?` being wildcards.
    pub(crate) fn push_wildcard(&mut self, text: &str) {
        self.tokens.extend(text.chars().map(|c| match c {
            '*' => Token::Any,
            '?' => Token::One,
            c => Token::Char(c),
        }));
    }

    /// Appends `text` literally (a substituted variable value).
    pub(crate) fn push_literal(&mut self, text: &str) {
        self.tokens.extend(text.chars().map(Token::Char));
    }

    /// True when the pattern matches all of `text`.
    pub(crate) fn matches(&self, text: &str) -> bool {
        let tokens = &self.tokens;
        let (mut p, mut i) = (0usize, 0usize);
        // After a `*`: the token after it, and where in the text its match ends.
        let mut star: Option<(usize, usize)> = None;
        while let Some(c) = text[i..].chars().next() {
            match tokens.get(p) {
                Some(Token::Char(t)) if *t == c => {
                    p += 1;
                    i += c.len_utf8();
                    continue;
                }
                Some(Token::One) => {
                    p += 1;
                    i += c.len_utf8();
                    continue;
                }
                Some(Token::Any) => {
                    p += 1;
                    star = Some((p, i));
                    continue;
                }
                _ => {}
            }
            // Mismatch: let the last `*` take one more character, or fail.
            let Some((after_star, end)) = star else {
                return false;
            };
            let Some(taken) = text[end..].chars().next() else {
                return false;
            };
            let end = end + taken.len_utf8();
            star = Some((after_star, end));
            p = after_star;
            i = end;
        }
        tokens[p..].iter().all(|t| *t == Token::Any)
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
