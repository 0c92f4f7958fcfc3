//! Reading and checking an AWS IoT policy document.
//!
//! The grammar is IAM's for identity-based policies: `Version`, optional `Id`,
//! and `Statement` (one object or a list), each with `Effect`, `Action` or
//! `NotAction`, `Resource` or `NotResource`, optional `Sid` and `Condition`.
//! Every refusal names the element at fault as a path
//! (`Statement[1].Resource[0]: …`); mistakes that AWS accepts but that make a
//! statement useless (an unknown variable, `iot:Subscribe` on a `topic/` ARN)
//! are reported as warnings.

use std::fmt;

use serde_json::{Map, Value};

use super::Action;
use super::condition::{Condition, parse_conditions};
use super::pattern::{Pattern, Template};
use super::variables::{Kind, Variable};

/// Longest policy document AWS IoT accepts, counted without whitespace.
pub const MAX_DOCUMENT_CHARS: usize = 2048;

/// The policy language version with policy variables.
const VERSION_2012: &str = "2012-10-17";
/// The older version: `${…}` is plain text in it.
const VERSION_2008: &str = "2008-10-17";

/// AWS IoT actions (and Greengrass discovery's), for the "matches no action" warning.
const KNOWN_ACTIONS: &[&str] = &[
    "iot:connect",
    "iot:publish",
    "iot:subscribe",
    "iot:receive",
    "iot:retainpublish",
    "iot:getretainedmessage",
    "iot:listretainedmessages",
    "iot:getthingshadow",
    "iot:updatethingshadow",
    "iot:deletethingshadow",
    "iot:listnamedshadowsforthing",
    "iot:describejobexecution",
    "iot:getpendingjobexecutions",
    "iot:startnextpendingjobexecution",
    "iot:updatejobexecution",
    "iot:assumerolewithcertificate",
    "greengrass:discover",
];

/// Why a policy document was refused: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyDocumentError {
    path: String,
    message: String,
}

impl PolicyDocumentError {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        PolicyDocumentError {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The element at fault, e.g. `Statement[1].Effect`; empty for the whole document.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong with it and what is expected.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for PolicyDocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Allow or Deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Grants the actions.
    Allow,
    /// Refuses the actions, whatever other statements allow.
    Deny,
}

/// A list of action or resource patterns, or its complement (`NotAction`, `NotResource`).
#[derive(Debug, Clone)]
pub(crate) struct Listed<T> {
    /// `NotAction` / `NotResource`: matches what none of `items` matches.
    pub(crate) negated: bool,
    /// The patterns.
    pub(crate) items: Vec<T>,
}

/// One statement, as written.
#[derive(Debug, Clone)]
pub(crate) struct Statement {
    /// Position in the `Statement` list, from 0.
    pub(crate) index: usize,
    /// Its `Sid`, if any.
    pub(crate) sid: Option<String>,
    /// Allow or Deny.
    pub(crate) effect: Effect,
    /// Action patterns, lowercase (action names compare case-insensitively).
    pub(crate) actions: Listed<Pattern>,
    /// Resource ARN patterns, with variables.
    pub(crate) resources: Listed<Template>,
    /// Conditions, all of which must hold.
    pub(crate) conditions: Vec<Condition>,
}

/// A policy document that passed every check.
#[derive(Debug, Clone)]
pub struct PolicyDocument {
    statements: Vec<Statement>,
    warnings: Vec<String>,
}

impl PolicyDocument {
    /// Reads and checks `text`. Fails on invalid JSON, a document over
    /// [`MAX_DOCUMENT_CHARS`] characters (whitespace excluded), or any element
    /// AWS IoT would refuse, naming it.
    pub fn parse(text: &str) -> Result<PolicyDocument, PolicyDocumentError> {
        let size = text.chars().filter(|c| !c.is_whitespace()).count();
        if size > MAX_DOCUMENT_CHARS {
            return Err(PolicyDocumentError::new(
                "",
                format!(
                    "the document has {size} characters without whitespace; AWS IoT accepts at \
                     most {MAX_DOCUMENT_CHARS}: split it into several policies"
                ),
            ));
        }
        let value: Value = serde_json::from_str(text).map_err(|e| {
            PolicyDocumentError::new(
                "",
                format!(
                    "not valid JSON: {e} (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        let Value::Object(top) = value else {
            return Err(PolicyDocumentError::new(
                "",
                "the document must be a JSON object with \"Version\" and \"Statement\"",
            ));
        };
        check_keys(&top, "", &["Version", "Id", "Statement"])?;
        let mut warnings = Vec::new();
        let variables = match top.get("Version") {
            Some(Value::String(v)) if v == VERSION_2012 => true,
            Some(Value::String(v)) if v == VERSION_2008 => false,
            None => false,
            Some(other) => {
                return Err(PolicyDocumentError::new(
                    "Version",
                    format!("{other} is not a policy language version; use \"{VERSION_2012}\""),
                ));
            }
        };
        if !variables && text.contains("${") {
            warnings.push(format!(
                "Version: without \"Version\": \"{VERSION_2012}\" policy variables such as \
                 ${{iot:ClientId}} are plain text, not replaced"
            ));
        }
        if let Some(id) = top.get("Id") {
            if !id.is_string() {
                return Err(PolicyDocumentError::new("Id", "must be a string"));
            }
        }
        let statements = match top.get("Statement") {
            None => {
                return Err(PolicyDocumentError::new(
                    "",
                    "the document has no \"Statement\"",
                ));
            }
            Some(Value::Array(list)) if list.is_empty() => {
                return Err(PolicyDocumentError::new(
                    "Statement",
                    "must contain at least one statement",
                ));
            }
            Some(Value::Array(list)) => list.iter().collect::<Vec<_>>(),
            Some(single @ Value::Object(_)) => vec![single],
            Some(_) => {
                return Err(PolicyDocumentError::new(
                    "Statement",
                    "must be a statement object or a list of them",
                ));
            }
        };
        let statements = statements
            .into_iter()
            .enumerate()
            .map(|(index, value)| parse_statement(index, value, variables, &mut warnings))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PolicyDocument {
            statements,
            warnings,
        })
    }

    /// Problems AWS accepts but that likely make a statement useless: unknown
    /// policy variables, actions that match no AWS IoT action, `iot:Subscribe`
    /// on `topic/` ARNs and the like. Each starts with the element's path.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Number of statements.
    pub fn statement_count(&self) -> usize {
        self.statements.len()
    }

    pub(crate) fn statements(&self) -> &[Statement] {
        &self.statements
    }

    /// Whether a resource, a condition key or a condition value names an
    /// `iot:Certificate.*` variable: only then does compiling the document
    /// need the certificate's attributes.
    pub(crate) fn uses_certificate_variables(&self) -> bool {
        let is_certificate = |v: &Variable| matches!(v.kind(), Kind::Certificate { .. });
        self.statements.iter().any(|s| {
            s.resources
                .items
                .iter()
                .flat_map(|t| t.variables())
                .any(is_certificate)
                || s.conditions
                    .iter()
                    .any(|c| is_certificate(c.key()) || c.value_variables().any(is_certificate))
        })
    }
}

fn check_keys(
    object: &Map<String, Value>,
    path: &str,
    allowed: &[&str],
) -> Result<(), PolicyDocumentError> {
    for key in object.keys() {
        if allowed.contains(&key.as_str()) {
            continue;
        }
        let at = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        let hint = if key == "Principal" || key == "NotPrincipal" {
            " (an AWS IoT policy applies to the certificates it is attached to; it names no principal)"
                .to_owned()
        } else {
            allowed
                .iter()
                .find(|a| {
                    a.eq_ignore_ascii_case(key) || a.eq_ignore_ascii_case(key.trim_end_matches('s'))
                })
                .map(|a| format!(" (did you mean \"{a}\"? element names are case-sensitive)"))
                .unwrap_or_default()
        };
        return Err(PolicyDocumentError::new(
            at,
            format!(
                "unknown element; expected one of {}{hint}",
                allowed.join(", ")
            ),
        ));
    }
    Ok(())
}

fn parse_statement(
    index: usize,
    value: &Value,
    variables: bool,
    warnings: &mut Vec<String>,
) -> Result<Statement, PolicyDocumentError> {
    let path = format!("Statement[{index}]");
    let Value::Object(fields) = value else {
        return Err(PolicyDocumentError::new(path, "must be an object"));
    };
    check_keys(
        fields,
        &path,
        &[
            "Sid",
            "Effect",
            "Action",
            "NotAction",
            "Resource",
            "NotResource",
            "Condition",
        ],
    )?;
    let sid = match fields.get("Sid") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(PolicyDocumentError::new(
                format!("{path}.Sid"),
                "must be a string",
            ));
        }
    };
    let effect = match fields.get("Effect") {
        Some(Value::String(e)) if e == "Allow" => Effect::Allow,
        Some(Value::String(e)) if e == "Deny" => Effect::Deny,
        None => {
            return Err(PolicyDocumentError::new(
                path,
                "has no \"Effect\"; add \"Effect\": \"Allow\" or \"Deny\"",
            ));
        }
        Some(other) => {
            return Err(PolicyDocumentError::new(
                format!("{path}.Effect"),
                format!("{other} is not \"Allow\" or \"Deny\" (case-sensitive)"),
            ));
        }
    };
    let (action_key, negated_actions) = one_of(fields, &path, "Action", "NotAction")?;
    let mut actions = Vec::new();
    let mut named = Vec::new();
    for (i, text) in strings(&fields[action_key], &format!("{path}.{action_key}"))?
        .into_iter()
        .enumerate()
    {
        let at = format!("{path}.{action_key}[{i}]");
        check_action(&text).map_err(|why| PolicyDocumentError::new(&at, why))?;
        named.extend(
            Action::ALL
                .iter()
                .filter(|a| a.name().eq_ignore_ascii_case(&text)),
        );
        let pattern = Pattern::wildcard(&text.to_ascii_lowercase());
        if !KNOWN_ACTIONS.iter().any(|a| pattern.matches(a)) {
            warnings.push(format!("{at}: \"{text}\" matches no AWS IoT action"));
        }
        actions.push(pattern);
    }
    let actions = Listed {
        negated: negated_actions,
        items: actions,
    };

    let (resource_key, negated_resources) = one_of(fields, &path, "Resource", "NotResource")?;
    let mut resources = Vec::new();
    for (i, text) in strings(&fields[resource_key], &format!("{path}.{resource_key}"))?
        .into_iter()
        .enumerate()
    {
        let at = format!("{path}.{resource_key}[{i}]");
        let template =
            Template::parse(&text, variables).map_err(|e| PolicyDocumentError::new(&at, e.0))?;
        check_resource(&text).map_err(|why| PolicyDocumentError::new(&at, why))?;
        for variable in template.variables() {
            if let Some(why) = variable.never_resolved() {
                warnings.push(format!("{at}: {why}"));
            }
        }
        resources.push(template);
    }
    let conditions = match fields.get("Condition") {
        None => Vec::new(),
        Some(value) => parse_conditions(value, &format!("{path}.Condition"), variables)
            .map_err(|(at, why)| PolicyDocumentError::new(at, why))?,
    };
    for condition in &conditions {
        if matches!(condition.key().kind(), Kind::Unknown) {
            warnings.push(format!(
                "{path}.Condition: \"{}\" is not a condition key the emulator knows: it is never present",
                condition.key().name()
            ));
        }
        if condition.lacks_a_set_operator() {
            warnings.push(format!(
                "{path}.Condition: \"{}\" has several values in a request, and IAM says such a \
                 key needs a ForAnyValue: or ForAllValues: operator; the emulator holds the \
                 condition when one value passes",
                condition.key().name()
            ));
        }
        for variable in condition.value_variables() {
            if let Some(why) = variable.never_resolved() {
                warnings.push(format!("{path}.Condition: {why}"));
            }
        }
    }
    let statement = Statement {
        index,
        sid,
        effect,
        actions,
        resources: Listed {
            negated: negated_resources,
            items: resources,
        },
        conditions,
    };
    if !negated_actions {
        warnings.extend(resource_type_warnings(&statement, &named, &path));
    }
    Ok(statement)
}

/// Exactly one of two alternative elements must be present.
fn one_of<'a>(
    fields: &Map<String, Value>,
    path: &str,
    plain: &'a str,
    negated: &'a str,
) -> Result<(&'a str, bool), PolicyDocumentError> {
    match (fields.contains_key(plain), fields.contains_key(negated)) {
        (true, false) => Ok((plain, false)),
        (false, true) => Ok((negated, true)),
        (true, true) => Err(PolicyDocumentError::new(
            path,
            format!("has both \"{plain}\" and \"{negated}\"; keep one"),
        )),
        (false, false) => Err(PolicyDocumentError::new(
            path,
            format!("has no \"{plain}\" (or \"{negated}\")"),
        )),
    }
}

/// A string or a non-empty list of strings.
fn strings(value: &Value, path: &str) -> Result<Vec<String>, PolicyDocumentError> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if items.is_empty() => {
            Err(PolicyDocumentError::new(path, "must not be an empty list"))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(PolicyDocumentError::new(
                    format!("{path}[{i}]"),
                    format!("{other} is not a string"),
                )),
            })
            .collect(),
        other => Err(PolicyDocumentError::new(
            path,
            format!("{other} is not a string or a list of strings"),
        )),
    }
}

fn check_action(text: &str) -> Result<(), String> {
    if text == "*" {
        return Ok(());
    }
    let valid = text.split_once(':').is_some_and(|(service, name)| {
        !service.is_empty()
            && service
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'*' || b == b'?')
    });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "\"{text}\" is not an action; expected \"iot:<Action>\" such as \"iot:Publish\" \
             (wildcards allowed: \"iot:*\"), or \"*\""
        ))
    }
}

fn check_resource(text: &str) -> Result<(), String> {
    if text == "*" || (text.starts_with("arn:") && text.splitn(6, ':').count() == 6) {
        return Ok(());
    }
    let example = if text.starts_with("arn:") {
        "an ARN has six ':'-separated parts"
    } else {
        "a resource is \"*\" or an ARN"
    };
    Err(format!(
        "\"{text}\" is not a resource: {example}, e.g. \
         \"arn:aws:iot:us-east-1:123456789012:topic/dt/my-thing/temp\""
    ))
}

/// `iot:Subscribe` is checked against `topicfilter/` ARNs, `iot:Publish`,
/// `iot:Receive` and `iot:RetainPublish` against `topic/`, `iot:Connect`
/// against `client/`: a statement naming one of them (`named`, without
/// wildcard) whose resources are all of another type can never apply to it.
fn resource_type_warnings(statement: &Statement, named: &[&Action], path: &str) -> Vec<String> {
    if statement.resources.negated {
        return Vec::new();
    }
    let types: Vec<Option<String>> = statement
        .resources
        .items
        .iter()
        .map(|r| {
            let source = r.source();
            let resource = source.splitn(6, ':').nth(5)?;
            let kind = resource.split_once('/').map_or(resource, |(k, _)| k);
            (!kind.contains(['*', '?', '$'])).then(|| kind.to_owned())
        })
        .collect();
    if types.iter().any(Option::is_none) {
        return Vec::new();
    }
    named
        .iter()
        .filter(|a| !types.iter().flatten().any(|t| t == a.resource_type()))
        .map(|a| {
            format!(
                "{path}: {} is checked against \"{}/…\" resources, and this statement lists none, \
                 so it never applies to {}",
                a.name(),
                a.resource_type(),
                a.name()
            )
        })
        .collect()
}

/// Variables a document uses, for tests.
#[cfg(test)]
pub(crate) fn variables_of(document: &PolicyDocument) -> Vec<Variable> {
    document
        .statements
        .iter()
        .flat_map(|s| {
            s.resources
                .items
                .iter()
                .flat_map(|t| t.variables().cloned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(value: serde_json::Value) -> Result<PolicyDocument, PolicyDocumentError> {
        PolicyDocument::parse(&value.to_string())
    }

    fn error(value: serde_json::Value) -> PolicyDocumentError {
        parse(value).expect_err("refused")
    }

    fn statement(extra: serde_json::Value) -> serde_json::Value {
        let mut s = json!({"Effect": "Allow", "Action": "iot:Publish",
                           "Resource": "arn:aws:iot:us-east-1:123456789012:topic/a"});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                s.as_object_mut().unwrap().remove(k);
            } else {
                s[k] = v.clone();
            }
        }
        json!({"Version": "2012-10-17", "Statement": [s]})
    }

    #[test]
    fn a_valid_document_parses_with_single_values_or_lists() {
        let doc = parse(json!({
            "Version": "2012-10-17",
            "Statement": {"Sid": "One", "Effect": "Deny", "Action": ["iot:*"], "Resource": "*"}
        }))
        .unwrap();
        assert_eq!(doc.statement_count(), 1);
        assert!(doc.warnings().is_empty(), "{:?}", doc.warnings());
        assert_eq!(doc.statements()[0].sid.as_deref(), Some("One"));
        assert_eq!(doc.statements()[0].effect, Effect::Deny);
    }

    #[test]
    fn errors_point_to_the_element() {
        let cases = [
            (
                statement(json!({"Effect": "allow"})),
                "Statement[0].Effect",
                "\"Allow\"",
            ),
            (
                statement(json!({"Effect": null})),
                "Statement[0]",
                "no \"Effect\"",
            ),
            (
                statement(json!({"Action": null})),
                "Statement[0]",
                "no \"Action\"",
            ),
            (
                statement(json!({"NotAction": "iot:Connect"})),
                "Statement[0]",
                "both",
            ),
            (
                statement(json!({"Action": ["iot:Publish", 7]})),
                "Statement[0].Action[1]",
                "not a string",
            ),
            (
                statement(json!({"Action": []})),
                "Statement[0].Action",
                "empty",
            ),
            (
                statement(json!({"Action": "Publish"})),
                "Statement[0].Action[0]",
                "iot:Publish",
            ),
            (
                statement(json!({"Resource": "topic/a"})),
                "Statement[0].Resource[0]",
                "ARN",
            ),
            (
                statement(json!({"Resource": "arn:aws:iot:topic/a"})),
                "Statement[0].Resource[0]",
                "six",
            ),
            (
                statement(json!({"Resource": "arn:aws:iot:r:a:topic/${iot:ClientId"})),
                "Statement[0].Resource[0]",
                "not closed",
            ),
            (
                statement(json!({"Actions": "iot:Publish"})),
                "Statement[0].Actions",
                "did you mean \"Action\"",
            ),
            (
                statement(json!({"Principal": "*"})),
                "Statement[0].Principal",
                "names no principal",
            ),
            (statement(json!({"Sid": 3})), "Statement[0].Sid", "string"),
            (
                statement(json!({"Condition": {"StringEquals": {"iot:ClientId": []}}})),
                "Statement[0].Condition.StringEquals.iot:ClientId",
                "no value",
            ),
            (json!({"Version": "2012-10-17"}), "", "no \"Statement\""),
            (
                json!({"Version": "2012-10-17", "Statement": []}),
                "Statement",
                "at least one",
            ),
            (
                json!({"Version": "2012-10-17", "Statement": "x"}),
                "Statement",
                "statement object",
            ),
            (
                json!({"Version": "2012-10-18", "Statement": []}),
                "Version",
                "2012-10-17",
            ),
            (
                json!({"version": "2012-10-17", "Statement": []}),
                "version",
                "case-sensitive",
            ),
            (json!([1]), "", "JSON object"),
        ];
        for (document, path, needle) in cases {
            let e = error(document.clone());
            assert_eq!(e.path(), path, "{document}: {e}");
            assert!(e.to_string().contains(needle), "{document}: {e}");
        }
    }

    #[test]
    fn invalid_json_reports_line_and_column() {
        let e = PolicyDocument::parse("{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [,]\n}")
            .unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
    }

    #[test]
    fn documents_over_2048_characters_without_whitespace_are_refused() {
        let resources: Vec<String> = (0..40)
            .map(|i| format!("arn:aws:iot:us-east-1:123456789012:topic/some/long/topic/{i}"))
            .collect();
        let e = error(statement(json!({"Resource": resources})));
        assert!(e.to_string().contains("2048"), "{e}");
        // Whitespace does not count.
        let padded = format!("{}{}", " ".repeat(5000), statement(json!({})));
        PolicyDocument::parse(&padded).unwrap();
    }

    #[test]
    fn warnings_flag_useless_statements() {
        let doc = parse(statement(json!({
            "Action": ["iot:Publsh", "iot:Subscribe"],
            "Resource": "arn:aws:iot:us-east-1:123456789012:topic/${iot:ClientID2}"
        })))
        .unwrap();
        let all = doc.warnings().join("\n");
        assert!(
            all.contains("\"iot:Publsh\" matches no AWS IoT action"),
            "{all}"
        );
        assert!(
            all.contains("${iot:ClientID2} is not an AWS IoT policy variable"),
            "{all}"
        );
        assert!(
            all.contains("iot:Subscribe is checked against \"topicfilter/…\""),
            "{all}"
        );
        let doc = parse(statement(json!({"Action": "iot:*", "Resource": "*"}))).unwrap();
        assert!(doc.warnings().is_empty(), "{:?}", doc.warnings());
    }

    #[test]
    fn certificate_variables_are_found_in_resources_condition_keys_and_values() {
        let uses = |extra: serde_json::Value| {
            parse(statement(extra))
                .unwrap()
                .uses_certificate_variables()
        };
        assert!(!uses(json!({
            "Resource": "arn:aws:iot:us-east-1:123456789012:topic/${iot:Connection.Thing.ThingName}"
        })));
        assert!(uses(json!({
            "Resource": "arn:aws:iot:us-east-1:123456789012:topic/${iot:Certificate.Subject.CommonName}"
        })));
        assert!(uses(json!({"Condition": {
            "StringEquals": {"iot:Certificate.Subject.Organization": "Acme"}
        }})));
        assert!(uses(json!({"Condition": {
            "StringEquals": {"iot:ClientId": "${iot:Certificate.SerialNumber}"}
        }})));
    }

    #[test]
    fn connect_attributes_without_a_set_operator_are_flagged() {
        let with = |condition: serde_json::Value| {
            parse(statement(
                json!({"Action": "iot:Connect", "Resource": "*", "Condition": condition}),
            ))
            .unwrap()
        };
        let doc = with(json!({"StringEquals": {"iot:ConnectAttributes": "PersistentConnect"}}));
        let all = doc.warnings().join("\n");
        assert!(
            all.contains("\"iot:ConnectAttributes\" has several values"),
            "{all}"
        );
        assert!(all.contains("ForAnyValue: or ForAllValues:"), "{all}");
        let doc = with(
            json!({"ForAllValues:StringEquals": {"iot:ConnectAttributes": ["PersistentConnect"]}}),
        );
        assert!(doc.warnings().is_empty(), "{:?}", doc.warnings());
    }

    #[test]
    fn version_2008_or_none_keeps_variables_as_text() {
        let doc = parse(json!({
            "Statement": [{"Effect": "Allow", "Action": "iot:Connect",
                           "Resource": "arn:aws:iot:us-east-1:123456789012:client/${iot:ClientId}"}]
        }))
        .unwrap();
        assert!(variables_of(&doc).is_empty());
        assert!(
            doc.warnings()[0].contains("plain text"),
            "{:?}",
            doc.warnings()
        );
    }
}
