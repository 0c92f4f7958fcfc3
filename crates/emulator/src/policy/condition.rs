//! The `Condition` element: IAM condition operators over AWS IoT's condition keys.
//!
//! Semantics follow IAM's policy evaluation ("IAM JSON policy elements: Condition
//! operators"): the values listed for one key are alternatives (any may match),
//! keys and operators must all hold; a key absent from the request makes a
//! positive operator false and a negated one (`StringNotEquals`, `NotIpAddress`…)
//! true; `…IfExists` holds when the key is absent; `Null` tests absence;
//! `ForAnyValue:` / `ForAllValues:` compare every value of a multi-valued key
//! (`iot:Certificate.Subject.Organization.List`, `iot:ConnectAttributes`):
//! `ForAllValues:` holds when every request value matches (so also when the
//! key is absent), `ForAnyValue:` when one does (so never when it is absent).
//! IAM says multi-valued keys "require a condition set operator" and is
//! silent on a plain operator: the emulator then holds when one request value
//! passes (as `ForAnyValue:`, but a negated operator holds when the key is
//! absent), and `iotcore policy create` warns.
//!
//! Supported: the `String…`, `Numeric…`, `Bool`, `IpAddress`/`NotIpAddress`,
//! `Arn…` and `Null` operators. `Date…` and `Binary…` operators are refused when
//! the policy is created (no AWS IoT condition key takes those types in the emulator).

use std::net::IpAddr;

use serde_json::Value;

use super::context::{ConnectAttributes, RequestContext};
use super::pattern::{Pattern, Template};
use super::variables::{Kind, Selector, Variable};

/// How the values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compare {
    Equals,
    EqualsIgnoreCase,
    Like,
    Bool,
    Ip,
    NumericEq,
    NumericLt,
    NumericLe,
    NumericGt,
    NumericGe,
    Null,
}

/// Multi-valued key handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetQualifier {
    Single,
    ForAnyValue,
    ForAllValues,
}

/// One key test of a `Condition` block.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    compare: Compare,
    negated: bool,
    qualifier: SetQualifier,
    if_exists: bool,
    key: Variable,
    values: Vec<Template>,
}

/// Supported operator names (without qualifier and `IfExists`) and their meaning.
const OPERATORS: &[(&str, Compare, bool)] = &[
    ("StringEquals", Compare::Equals, false),
    ("StringNotEquals", Compare::Equals, true),
    ("StringEqualsIgnoreCase", Compare::EqualsIgnoreCase, false),
    ("StringNotEqualsIgnoreCase", Compare::EqualsIgnoreCase, true),
    ("StringLike", Compare::Like, false),
    ("StringNotLike", Compare::Like, true),
    ("NumericEquals", Compare::NumericEq, false),
    ("NumericNotEquals", Compare::NumericEq, true),
    ("NumericLessThan", Compare::NumericLt, false),
    ("NumericLessThanEquals", Compare::NumericLe, false),
    ("NumericGreaterThan", Compare::NumericGt, false),
    ("NumericGreaterThanEquals", Compare::NumericGe, false),
    ("Bool", Compare::Bool, false),
    ("IpAddress", Compare::Ip, false),
    ("NotIpAddress", Compare::Ip, true),
    ("ArnEquals", Compare::Like, false),
    ("ArnLike", Compare::Like, false),
    ("ArnNotEquals", Compare::Like, true),
    ("ArnNotLike", Compare::Like, true),
    ("Null", Compare::Null, false),
];

/// Operators IAM has that the emulator does not evaluate.
const UNSUPPORTED: &[&str] = &[
    "DateEquals",
    "DateNotEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
    "BinaryEquals",
];

/// Reads the `Condition` object at `path`; `variables` says whether `${…}` are
/// policy variables. Errors name the offending element's path.
pub(crate) fn parse_conditions(
    value: &Value,
    path: &str,
    variables: bool,
) -> Result<Vec<Condition>, (String, String)> {
    let Value::Object(operators) = value else {
        return Err((
            path.to_owned(),
            "must be an object of condition operators, e.g. {\"StringEquals\": {\"iot:ClientId\": \"dev-1\"}}"
                .to_owned(),
        ));
    };
    let mut conditions = Vec::new();
    for (operator, keys) in operators {
        let op_path = format!("{path}.{operator}");
        let (compare, negated, qualifier, if_exists) =
            parse_operator(operator).map_err(|why| (op_path.clone(), why))?;
        let Value::Object(keys) = keys else {
            return Err((
                op_path,
                "must be an object of condition keys to values".to_owned(),
            ));
        };
        if keys.is_empty() {
            return Err((op_path, "names no condition key".to_owned()));
        }
        for (key, values) in keys {
            let key_path = format!("{op_path}.{key}");
            let texts = condition_values(values).map_err(|why| (key_path.clone(), why))?;
            let mut templates = Vec::with_capacity(texts.len());
            for text in texts {
                let template =
                    Template::parse(&text, variables).map_err(|e| (key_path.clone(), e.0))?;
                check_value(compare, &template).map_err(|why| (key_path.clone(), why))?;
                templates.push(template);
            }
            conditions.push(Condition {
                compare,
                negated,
                qualifier,
                if_exists,
                key: Variable::parse(key),
                values: templates,
            });
        }
    }
    Ok(conditions)
}

fn parse_operator(name: &str) -> Result<(Compare, bool, SetQualifier, bool), String> {
    let (qualifier, rest) = if let Some(rest) = name.strip_prefix("ForAnyValue:") {
        (SetQualifier::ForAnyValue, rest)
    } else if let Some(rest) = name.strip_prefix("ForAllValues:") {
        (SetQualifier::ForAllValues, rest)
    } else {
        (SetQualifier::Single, name)
    };
    let (base, if_exists) = match rest.strip_suffix("IfExists") {
        Some(base) if base != "Null" => (base, true),
        _ => (rest, false),
    };
    if let Some((_, compare, negated)) = OPERATORS.iter().find(|(n, _, _)| *n == base) {
        return Ok((*compare, *negated, qualifier, if_exists));
    }
    let supported: Vec<&str> = OPERATORS.iter().map(|(n, _, _)| *n).collect();
    if UNSUPPORTED.contains(&base) {
        Err(format!(
            "condition operator {base} is not supported by the emulator; supported: {}",
            supported.join(", ")
        ))
    } else {
        Err(format!(
            "unknown condition operator \"{name}\"; expected one of {} (optionally with a \
             ForAnyValue:/ForAllValues: prefix or an IfExists suffix)",
            supported.join(", ")
        ))
    }
}

fn condition_values(value: &Value) -> Result<Vec<String>, String> {
    let scalar = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err("values must be strings, numbers or booleans".to_owned()),
    };
    match value {
        Value::Array(items) if items.is_empty() => Err("lists no value".to_owned()),
        Value::Array(items) => items.iter().map(scalar).collect(),
        other => Ok(vec![scalar(other)?]),
    }
}

/// Values without variables are checked for their operator's type now.
fn check_value(compare: Compare, template: &Template) -> Result<(), String> {
    if template.variables().next().is_some() {
        return Ok(());
    }
    let text = template.source();
    match compare {
        Compare::Ip if parse_cidr(&text).is_none() => Err(format!(
            "\"{text}\" is not an IP address or CIDR block (e.g. 192.0.2.0/24)"
        )),
        Compare::NumericEq
        | Compare::NumericLt
        | Compare::NumericLe
        | Compare::NumericGt
        | Compare::NumericGe
            if text.parse::<f64>().is_err() =>
        {
            Err(format!("\"{text}\" is not a number"))
        }
        Compare::Bool | Compare::Null
            if !text.eq_ignore_ascii_case("true") && !text.eq_ignore_ascii_case("false") =>
        {
            Err(format!("\"{text}\" is not true or false"))
        }
        _ => Ok(()),
    }
}

fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = match text.split_once('/') {
        Some((addr, bits)) => (addr.parse::<IpAddr>().ok()?, Some(bits.parse::<u8>().ok()?)),
        None => (text.parse::<IpAddr>().ok()?, None),
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    (bits <= max).then_some((addr, bits))
}

fn in_cidr(ip: &str, cidr: &str) -> bool {
    let (Ok(ip), Some((net, bits))) = (ip.parse::<IpAddr>(), parse_cidr(cidr)) else {
        return false;
    };
    let prefix = |a: &[u8], b: &[u8], bits: u8| {
        let bits = usize::from(bits);
        let (bytes, rest) = (bits / 8, bits % 8);
        a[..bytes] == b[..bytes]
            && (rest == 0 || (a[bytes] ^ b[bytes]) & (0xffu8 << (8 - rest)) == 0)
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => prefix(&a.octets(), &b.octets(), bits),
        (IpAddr::V6(a), IpAddr::V6(b)) => prefix(&a.octets(), &b.octets(), bits),
        _ => false,
    }
}

impl Condition {
    /// The condition key's variable, for warnings about unknown keys.
    pub(crate) fn key(&self) -> &Variable {
        &self.key
    }

    /// The variables in the condition's values.
    pub(crate) fn value_variables(&self) -> impl Iterator<Item = &Variable> {
        self.values.iter().flat_map(Template::variables)
    }

    /// Whether the condition tests `iot:ConnectAttributes`, whose values
    /// depend on the CONNECT.
    pub(crate) fn tests_connect_attributes(&self) -> bool {
        *self.key.kind() == Kind::ConnectAttributes
    }

    /// Whether a plain operator (no `ForAnyValue:`/`ForAllValues:`, not
    /// `Null`) tests a key that has several values in a request, which IAM
    /// says needs a set operator.
    pub(crate) fn lacks_a_set_operator(&self) -> bool {
        let multi_valued = match self.key.kind() {
            Kind::ConnectAttributes => true,
            Kind::Certificate { selector, key } => {
                *selector == Selector::List || key == "AvailableKeys"
            }
            _ => false,
        };
        multi_valued && self.qualifier == SetQualifier::Single && self.compare != Compare::Null
    }

    /// Whether the condition holds for `context` in a request with
    /// `connect`'s attributes ([`ConnectAttributes::NONE`] but for
    /// `iot:Connect`); unresolved variables in the values are reported to
    /// `unresolved`.
    pub(crate) fn holds(
        &self,
        context: &RequestContext,
        connect: ConnectAttributes,
        unresolved: &mut Vec<Variable>,
    ) -> bool {
        let actual = context.resolve_all(&self.key, connect);
        if matches!(self.key.kind(), Kind::Unknown | Kind::DomainName)
            && !unresolved.contains(&self.key)
        {
            unresolved.push(self.key.clone());
        }
        let resolve = |v: &Variable| context.resolve(v);
        if self.compare == Compare::Null {
            let absent = actual.is_empty();
            return self
                .values
                .iter()
                .any(|v| v.to_text(resolve, unresolved).eq_ignore_ascii_case("true") == absent);
        }
        if actual.is_empty() {
            return match self.qualifier {
                SetQualifier::ForAllValues => true,
                SetQualifier::ForAnyValue => false,
                SetQualifier::Single => self.if_exists || self.negated,
            };
        }
        let expected: Vec<Expected> = self
            .values
            .iter()
            .map(|t| match self.compare {
                Compare::Like => Expected::Pattern(t.to_pattern(resolve, unresolved)),
                _ => Expected::Text(t.to_text(resolve, unresolved)),
            })
            .collect();
        // One request value passes if it matches a listed value (or, negated, none).
        let passes = |a: &String| expected.iter().any(|e| self.matches(a, e)) != self.negated;
        match self.qualifier {
            SetQualifier::ForAllValues => actual.iter().all(passes),
            SetQualifier::ForAnyValue | SetQualifier::Single => actual.iter().any(passes),
        }
    }

    fn matches(&self, actual: &str, expected: &Expected) -> bool {
        let number = |s: &str| s.trim().parse::<f64>().ok();
        match (self.compare, expected) {
            (_, Expected::Pattern(p)) => p.matches(actual),
            (Compare::Equals, Expected::Text(e)) => actual == e,
            (Compare::EqualsIgnoreCase, Expected::Text(e)) => {
                actual.to_lowercase() == e.to_lowercase()
            }
            (Compare::Bool, Expected::Text(e)) => actual.eq_ignore_ascii_case(e),
            (Compare::Ip, Expected::Text(e)) => in_cidr(actual, e),
            (compare, Expected::Text(e)) => match (number(actual), number(e)) {
                (Some(a), Some(e)) => match compare {
                    Compare::NumericEq => a == e,
                    Compare::NumericLt => a < e,
                    Compare::NumericLe => a <= e,
                    Compare::NumericGt => a > e,
                    Compare::NumericGe => a >= e,
                    _ => false,
                },
                _ => false,
            },
        }
    }
}

/// A condition value after variable substitution.
enum Expected {
    Text(String),
    Pattern(Pattern),
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::policy::context::CertificateAttributes;
    use crate::store::ThingRecord;

    fn context(attached: bool) -> RequestContext {
        let mut certificate = CertificateAttributes::default();
        certificate.add("Subject.Organization", "Example Corp");
        certificate.add("Subject.Organization", "AnyCompany");
        RequestContext {
            client_id: "dev-1".into(),
            source_ip: Some("192.0.2.17".parse().unwrap()),
            certificate_id: "ab".repeat(32),
            certificate,
            thing: attached.then(|| ThingRecord {
                name: "dev-1".into(),
                thing_type: Some("Sensor".into()),
                attributes: [("floor".to_owned(), "3".to_owned())].into(),
                created_at: 0,
                thing_id: String::new(),
                version: 1,
            }),
        }
    }

    fn holds(condition: serde_json::Value, attached: bool) -> bool {
        holds_for(condition, attached, ConnectAttributes::NONE)
    }

    fn holds_for(condition: serde_json::Value, attached: bool, connect: ConnectAttributes) -> bool {
        let conditions = parse_conditions(&condition, "Condition", true).expect("valid");
        conditions
            .iter()
            .all(|c| c.holds(&context(attached), connect, &mut Vec::new()))
    }

    const NONE: ConnectAttributes = ConnectAttributes::NONE;
    const PERSISTENT: ConnectAttributes = ConnectAttributes {
        persistent_connect: true,
        last_will: false,
    };
    const WILL: ConnectAttributes = ConnectAttributes {
        persistent_connect: false,
        last_will: true,
    };
    const BOTH: ConnectAttributes = ConnectAttributes {
        persistent_connect: true,
        last_will: true,
    };

    /// The CONNECTs (none, persistent, will, both) `condition` holds for.
    fn connects(condition: serde_json::Value) -> [bool; 4] {
        [NONE, PERSISTENT, WILL, BOTH].map(|c| holds_for(condition.clone(), false, c))
    }

    #[test]
    fn for_all_values_string_equals_connect_attributes() {
        // AWS's "allows PersistentConnect" example: every attribute asked for
        // must be listed; a CONNECT asking for none passes (empty set).
        let key = "iot:ConnectAttributes";
        assert_eq!(
            connects(json!({"ForAllValues:StringEquals": {key: ["PersistentConnect"]}})),
            [true, true, false, false]
        );
        assert_eq!(
            connects(
                json!({"ForAllValues:StringEquals": {key: ["PersistentConnect", "LastWill"]}})
            ),
            [true, true, true, true]
        );
        assert_eq!(
            connects(json!({"ForAllValues:StringEquals": {key: ["LastWill"]}})),
            [true, false, true, false]
        );
    }

    #[test]
    fn for_all_values_string_not_equals_connect_attributes() {
        // AWS's "does not allow PersistentConnect but allows other features".
        let key = "iot:ConnectAttributes";
        assert_eq!(
            connects(json!({"ForAllValues:StringNotEquals": {key: ["PersistentConnect"]}})),
            [true, false, true, false]
        );
        assert_eq!(
            connects(
                json!({"ForAllValues:StringNotEquals": {key: ["PersistentConnect", "LastWill"]}})
            ),
            [true, false, false, false]
        );
    }

    #[test]
    fn for_any_value_string_equals_connect_attributes() {
        // AWS's "requires PersistentConnect" example: an empty set never passes.
        let key = "iot:ConnectAttributes";
        assert_eq!(
            connects(json!({"ForAnyValue:StringEquals": {key: ["PersistentConnect"]}})),
            [false, true, false, true]
        );
        assert_eq!(
            connects(json!({"ForAnyValue:StringEquals": {key: ["PersistentConnect", "LastWill"]}})),
            [false, true, true, true]
        );
        assert_eq!(
            connects(json!({"ForAnyValue:StringNotEquals": {key: ["PersistentConnect"]}})),
            [false, false, true, true]
        );
    }

    #[test]
    fn plain_operators_on_connect_attributes_match_any_value_and_are_flagged() {
        let key = "iot:ConnectAttributes";
        let plain = json!({"StringEquals": {key: "LastWill"}});
        assert_eq!(connects(plain.clone()), [false, false, true, true]);
        assert_eq!(
            connects(json!({"StringNotEquals": {key: "LastWill"}})),
            [true, true, false, true],
            "absent: a negated operator holds; both: PersistentConnect is not LastWill"
        );
        assert_eq!(
            connects(json!({"Null": {key: "true"}})),
            [true, false, false, false]
        );
        let parsed = |c: serde_json::Value| parse_conditions(&c, "Condition", true).unwrap();
        assert!(parsed(plain)[0].lacks_a_set_operator());
        assert!(
            !parsed(json!({"ForAnyValue:StringEquals": {key: "LastWill"}}))[0]
                .lacks_a_set_operator()
        );
        assert!(!parsed(json!({"Null": {key: "false"}}))[0].lacks_a_set_operator());
        assert!(!parsed(json!({"StringEquals": {"iot:ClientId": "x"}}))[0].lacks_a_set_operator());
        assert!(
            parsed(json!({"StringEquals": {"iot:Certificate.Subject.Organization.List": "x"}}))[0]
                .lacks_a_set_operator()
        );
    }

    #[test]
    fn is_attached_as_in_aws_examples() {
        let c = json!({"Bool": {"iot:Connection.Thing.IsAttached": ["true"]}});
        assert!(holds(c.clone(), true));
        assert!(!holds(c, false));
        assert!(holds(
            json!({"Bool": {"iot:Connection.Thing.IsAttached": false}}),
            false
        ));
    }

    #[test]
    fn string_operators() {
        assert!(holds(
            json!({"StringEquals": {"iot:ClientId": ["x", "dev-1"]}}),
            false
        ));
        assert!(!holds(
            json!({"StringEquals": {"iot:ClientId": "DEV-1"}}),
            false
        ));
        assert!(holds(
            json!({"StringEqualsIgnoreCase": {"iot:ClientId": "DEV-1"}}),
            false
        ));
        assert!(holds(
            json!({"StringLike": {"iot:ClientId": "dev-?"}}),
            false
        ));
        assert!(holds(
            json!({"StringNotLike": {"iot:ClientId": "cloud-*"}}),
            false
        ));
        assert!(holds(
            json!({"StringEquals": {"iot:Connection.Thing.Attributes[floor]": "3",
                                    "iot:Connection.Thing.ThingTypeName": "Sensor"}}),
            true
        ));
        assert!(holds(
            json!({"StringEquals": {"iot:ClientId": "${iot:Connection.Thing.ThingName}"}}),
            true
        ));
    }

    #[test]
    fn an_absent_key_fails_positive_operators_and_passes_negated_ones() {
        let key = "iot:Connection.Thing.ThingTypeName";
        assert!(!holds(json!({"StringEquals": {key: "Sensor"}}), false));
        assert!(holds(json!({"StringNotEquals": {key: "Sensor"}}), false));
        assert!(holds(
            json!({"StringEqualsIfExists": {key: "Sensor"}}),
            false
        ));
        assert!(holds(json!({"Null": {key: "true"}}), false));
        assert!(holds(json!({"Null": {key: "false"}}), true));
        assert!(!holds(
            json!({"StringEquals": {"iot:NoSuchKey": "x"}}),
            true
        ));
    }

    #[test]
    fn set_qualifiers_compare_every_value() {
        let key = "iot:Certificate.Subject.Organization.List";
        assert!(holds(
            json!({"ForAllValues:StringEquals": {key: ["Example Corp", "AnyCompany"]}}),
            false
        ));
        assert!(!holds(
            json!({"ForAllValues:StringEquals": {key: ["Example Corp"]}}),
            false
        ));
        assert!(holds(
            json!({"ForAnyValue:StringEquals": {key: ["Example Corp"]}}),
            false
        ));
        assert!(!holds(
            json!({"ForAnyValue:StringEquals": {key: ["Other"]}}),
            false
        ));
    }

    #[test]
    fn ip_and_numeric_operators() {
        assert!(holds(
            json!({"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}}),
            false
        ));
        assert!(!holds(
            json!({"IpAddress": {"aws:SourceIp": "192.0.3.0/24"}}),
            false
        ));
        assert!(holds(
            json!({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
            false
        ));
        assert!(holds(
            json!({"IpAddress": {"aws:SourceIp": "192.0.2.17"}}),
            false
        ));
        assert!(holds(
            json!({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}),
            false
        ));
        assert!(holds(
            json!({"NumericGreaterThan": {"iot:Connection.Thing.Attributes[floor]": 2}}),
            true
        ));
        assert!(!holds(
            json!({"NumericLessThan": {"iot:Connection.Thing.Attributes[floor]": "2.5"}}),
            true
        ));
    }

    #[test]
    fn bad_conditions_name_the_path() {
        let err = |c: serde_json::Value| {
            parse_conditions(&c, "Statement[0].Condition", true).unwrap_err()
        };
        let (path, why) = err(json!({"StringEqual": {"iot:ClientId": "x"}}));
        assert_eq!(path, "Statement[0].Condition.StringEqual");
        assert!(why.contains("unknown condition operator"), "{why}");
        let (path, why) = err(json!({"DateLessThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}));
        assert_eq!(path, "Statement[0].Condition.DateLessThan");
        assert!(why.contains("not supported"), "{why}");
        let (path, why) = err(json!({"IpAddress": {"aws:SourceIp": "192.0.2.0/33"}}));
        assert_eq!(path, "Statement[0].Condition.IpAddress.aws:SourceIp");
        assert!(why.contains("CIDR"), "{why}");
        let (_, why) = err(json!({"Bool": {"iot:Connection.Thing.IsAttached": "yes"}}));
        assert!(why.contains("true or false"), "{why}");
        let (_, why) = err(json!({"StringEquals": {"iot:ClientId": []}}));
        assert!(why.contains("no value"), "{why}");
        let (_, why) = err(json!({"StringEquals": {"iot:ClientId": {"a": 1}}}));
        assert!(why.contains("strings, numbers or booleans"), "{why}");
        let (_, why) = err(json!(["StringEquals"]));
        assert!(why.contains("object"), "{why}");
    }
}
