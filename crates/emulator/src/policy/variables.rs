//! The policy variables AWS IoT Core defines, as they appear in `${…}` and as
//! condition keys.
//!
//! Sources: "Basic AWS IoT Core policy variables", "Thing policy variables" and
//! "X.509 certificate AWS IoT Core policy variables" in the AWS IoT developer
//! guide (awsdocs/aws-iot-docs `developerguide/cert-policy-variables.md`).

use std::fmt;

/// The certificate attributes AWS exposes for the subject and for the issuer.
pub(crate) const NAME_ATTRIBUTES: &[&str] = &[
    "DistinguishedNameQualifier",
    "Country",
    "Organization",
    "OrganizationalUnit",
    "State",
    "CommonName",
    "SerialNumber",
    "Title",
    "Surname",
    "GivenName",
    "Initials",
    "Pseudonym",
    "GenerationQualifier",
];

/// The alternative-name kinds AWS exposes for the subject and for the issuer.
pub(crate) const ALTERNATIVE_NAMES: &[&str] = &[
    "RFC822Name",
    "DNSName",
    "DirectoryName",
    "UniformResourceIdentifier",
    "IPAddress",
];

/// Which values of a multi-valued certificate attribute a variable stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Selector {
    /// The first value (the variable without suffix).
    First,
    /// The value at this zero-based index (`….1`).
    Index(usize),
    /// Every value (`….List`, for conditions).
    List,
}

/// What a variable refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `iot:ClientId`.
    ClientId,
    /// `aws:SourceIp`.
    SourceIp,
    /// `iot:DomainName`: known to AWS, not available in the emulator.
    DomainName,
    /// `iot:Connection.Thing.ThingName`.
    ThingName,
    /// `iot:Connection.Thing.ThingTypeName`.
    ThingTypeName,
    /// `iot:Connection.Thing.Attributes[name]`.
    ThingAttribute(String),
    /// `iot:Connection.Thing.IsAttached`.
    IsAttached,
    /// `iot:ConnectAttributes`: the multi-valued condition key of
    /// `iot:Connect` (`PersistentConnect`, `LastWill`); never a variable.
    ConnectAttributes,
    /// `iot:Certificate.<key>` with `key` in canonical spelling
    /// (`Subject.CommonName`, `Issuer.AlternativeName.DNSName`, `SerialNumber`,
    /// `AvailableKeys`).
    Certificate {
        /// The attribute.
        key: String,
        /// Which of its values.
        selector: Selector,
    },
    /// `${*}`, `${?}`, `${$}`: the character itself, never a wildcard.
    Literal(char),
    /// A name AWS IoT does not define.
    Unknown,
}

/// A policy variable or condition key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Variable {
    name: String,
    kind: Kind,
}

impl Variable {
    /// Reads a variable name as written between `${` and `}` (or a condition key).
    /// Names are matched case-insensitively; thing attribute names are not.
    pub(crate) fn parse(name: &str) -> Variable {
        Variable {
            name: name.to_owned(),
            kind: kind_of(name),
        }
    }

    /// The name as written.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// What it refers to.
    pub(crate) fn kind(&self) -> &Kind {
        &self.kind
    }

    /// Why the variable can never have a value in the emulator, if so: the text
    /// of a warning shown when a policy using it is created.
    pub(crate) fn never_resolved(&self) -> Option<String> {
        match &self.kind {
            Kind::Unknown => Some(format!(
                "${{{}}} is not an AWS IoT policy variable: it is never replaced, so a resource \
                 or condition using it matches nothing (check the spelling)",
                self.name
            )),
            Kind::DomainName => Some(format!(
                "${{{}}} is not available in the emulator: it is never replaced",
                self.name
            )),
            Kind::ConnectAttributes => Some(format!(
                "${{{}}} has several values, and a multi-valued condition key is not a policy \
                 variable: it is never replaced (test it in a ForAnyValue:/ForAllValues: condition)",
                self.name
            )),
            _ => None,
        }
    }
}

impl fmt::Display for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${{{}}}", self.name)
    }
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn kind_of(name: &str) -> Kind {
    match name {
        "*" => return Kind::Literal('*'),
        "?" => return Kind::Literal('?'),
        "$" => return Kind::Literal('$'),
        _ => {}
    }
    let is = |expected: &str| name.eq_ignore_ascii_case(expected);
    if is("iot:ClientId") {
        Kind::ClientId
    } else if is("aws:SourceIp") {
        Kind::SourceIp
    } else if is("iot:DomainName") {
        Kind::DomainName
    } else if is("iot:Connection.Thing.ThingName") {
        Kind::ThingName
    } else if is("iot:Connection.Thing.ThingTypeName") {
        Kind::ThingTypeName
    } else if is("iot:Connection.Thing.IsAttached") {
        Kind::IsAttached
    } else if is("iot:ConnectAttributes") {
        Kind::ConnectAttributes
    } else if let Some(rest) = strip_prefix_ci(name, "iot:Connection.Thing.Attributes[") {
        match rest.strip_suffix(']') {
            Some(attribute) if !attribute.is_empty() => Kind::ThingAttribute(attribute.to_owned()),
            _ => Kind::Unknown,
        }
    } else if let Some(rest) = strip_prefix_ci(name, "iot:Certificate.") {
        certificate_kind(rest)
    } else {
        Kind::Unknown
    }
}

/// `Subject.Organization`, `Subject.Organization.1`, `Subject.Organization.List`, …
fn certificate_kind(rest: &str) -> Kind {
    let (key, selector) = match rest.rsplit_once('.') {
        Some((key, last)) if last.eq_ignore_ascii_case("List") => (key, Selector::List),
        Some((key, last)) if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) => {
            match last.parse() {
                Ok(index) => (key, Selector::Index(index)),
                Err(_) => return Kind::Unknown,
            }
        }
        _ => (rest, Selector::First),
    };
    match canonical_certificate_key(key) {
        Some(key) => Kind::Certificate { key, selector },
        None => Kind::Unknown,
    }
}

/// Every certificate key AWS defines, in canonical spelling.
pub(crate) fn certificate_keys() -> impl Iterator<Item = String> {
    let names = ["Subject", "Issuer"].into_iter().flat_map(|part| {
        NAME_ATTRIBUTES
            .iter()
            .map(move |a| format!("{part}.{a}"))
            .chain(
                ALTERNATIVE_NAMES
                    .iter()
                    .map(move |a| format!("{part}.AlternativeName.{a}")),
            )
    });
    names.chain(["SerialNumber".to_owned(), "AvailableKeys".to_owned()])
}

fn canonical_certificate_key(key: &str) -> Option<String> {
    certificate_keys().find(|k| k.eq_ignore_ascii_case(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_variables_are_recognised_case_insensitively() {
        assert_eq!(*Variable::parse("iot:ClientId").kind(), Kind::ClientId);
        assert_eq!(*Variable::parse("IOT:clientid").kind(), Kind::ClientId);
        assert_eq!(
            *Variable::parse("iot:Connection.Thing.ThingName").kind(),
            Kind::ThingName
        );
        assert_eq!(
            *Variable::parse("iot:Connection.Thing.Attributes[Floor]").kind(),
            Kind::ThingAttribute("Floor".into())
        );
        assert_eq!(*Variable::parse("$").kind(), Kind::Literal('$'));
        assert_eq!(
            *Variable::parse("iot:connectattributes").kind(),
            Kind::ConnectAttributes
        );
    }

    #[test]
    fn certificate_variables_take_an_index_or_list_suffix() {
        assert_eq!(
            *Variable::parse("iot:Certificate.Subject.CommonName").kind(),
            Kind::Certificate {
                key: "Subject.CommonName".into(),
                selector: Selector::First
            }
        );
        assert_eq!(
            *Variable::parse("iot:Certificate.Subject.Organization.1").kind(),
            Kind::Certificate {
                key: "Subject.Organization".into(),
                selector: Selector::Index(1)
            }
        );
        assert_eq!(
            *Variable::parse("iot:Certificate.issuer.alternativename.dnsname.List").kind(),
            Kind::Certificate {
                key: "Issuer.AlternativeName.DNSName".into(),
                selector: Selector::List
            }
        );
        assert_eq!(
            *Variable::parse("iot:Certificate.SerialNumber").kind(),
            Kind::Certificate {
                key: "SerialNumber".into(),
                selector: Selector::First
            }
        );
    }

    #[test]
    fn misspelt_variables_are_unknown_and_say_so() {
        for name in [
            "iot:ClientID2",
            "iot:Connection.Thing.Name",
            "iot:Certificate.Subject.Locality",
            "iot:Connection.Thing.Attributes[]",
            "iot:Certificate.Subject",
        ] {
            let v = Variable::parse(name);
            assert_eq!(*v.kind(), Kind::Unknown, "{name}");
            assert!(v.never_resolved().unwrap().contains(name));
        }
        assert!(Variable::parse("iot:ClientId").never_resolved().is_none());
    }
}
