//! Thing and shadow names as AWS IoT Core accepts them.
//!
//! * thing name: 1 to 128 characters of `[a-zA-Z0-9:_-]`;
//! * shadow name: 1 to 64 characters of `[$a-zA-Z0-9:_-]` (the `$` is for
//!   AWS's reserved shadows such as `$package`).
//!
//! Source: docs/aws-iot-core-behaviour.md §3.1 (GetThingShadow API reference).

/// Longest thing name, in characters (all allowed characters are one byte).
pub const MAX_THING_NAME_LEN: usize = 128;
/// Longest shadow name, in characters.
pub const MAX_SHADOW_NAME_LEN: usize = 64;

/// Which kind of name was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameKind {
    /// A thing name.
    Thing,
    /// A shadow name.
    Shadow,
}

impl std::fmt::Display for NameKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NameKind::Thing => "thing",
            NameKind::Shadow => "shadow",
        })
    }
}

/// A thing or shadow name AWS IoT Core would refuse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} name '{name}': use 1 to {max} characters of a-z, A-Z, 0-9, ':', '_', '-'{extra}", extra = if *kind == NameKind::Shadow { ", '$'" } else { "" })]
pub struct NameError {
    /// Which kind of name.
    pub kind: NameKind,
    /// The name refused.
    pub name: String,
    /// The longest name allowed.
    pub max: usize,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-')
}

fn validate(kind: NameKind, name: &str, max: usize, ok: fn(char) -> bool) -> Result<(), NameError> {
    if name.is_empty() || name.len() > max || !name.chars().all(ok) {
        return Err(NameError {
            kind,
            name: name.to_owned(),
            max,
        });
    }
    Ok(())
}

/// Checks a thing name: 1 to 128 characters of `[a-zA-Z0-9:_-]`.
pub fn validate_thing_name(name: &str) -> Result<(), NameError> {
    validate(NameKind::Thing, name, MAX_THING_NAME_LEN, is_name_char)
}

/// Checks a shadow name: 1 to 64 characters of `[$a-zA-Z0-9:_-]`.
pub fn validate_shadow_name(name: &str) -> Result<(), NameError> {
    validate(NameKind::Shadow, name, MAX_SHADOW_NAME_LEN, |c| {
        c == '$' || is_name_char(c)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thing_names() {
        for ok in ["a", "dev-1", "A:b_c-9", &"x".repeat(128)] {
            assert_eq!(validate_thing_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "a b", "a/b", "a+b", "a#", "é", "$x", &"x".repeat(129)] {
            let err = validate_thing_name(bad).unwrap_err();
            assert_eq!(err.kind, NameKind::Thing);
            assert!(err.to_string().contains("1 to 128"), "{err}");
        }
    }

    #[test]
    fn shadow_names() {
        for ok in ["config", "$package", "a:b_c-9", &"x".repeat(64)] {
            assert_eq!(validate_shadow_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "a b", "a/b", "+", &"x".repeat(65)] {
            let err = validate_shadow_name(bad).unwrap_err();
            assert_eq!(err.kind, NameKind::Shadow);
            assert!(err.to_string().contains("'$'"), "{err}");
        }
    }
}
