//! Client device authorization in the format of AWS's client device auth
//! component (`aws.greengrass.clientdevices.Auth`, its `deviceGroups`
//! configuration), turned into IoT policies that the core's broker (the
//! emulator's policy engine) enforces.
//!
//! Each device group has a selection rule (`thingName: NAME`, `thingName:
//! PREFIX*` or `thingName: *`, clauses joined with `OR`, `\:` for a colon in
//! a name) and a policy; a client device's rights are the union of the
//! policies of the groups it belongs to, and a device in no group may do
//! nothing. A policy's statements allow `mqtt:connect` on
//! `mqtt:clientId:ID`, `mqtt:publish` on `mqtt:topic:TOPIC` (no MQTT
//! wildcards: the topic as written) and `mqtt:subscribe` on
//! `mqtt:topicfilter:FILTER` (exactly that filter), or `*` for every
//! operation or every resource; `*` inside a resource is refused, as AWS
//! documents. Source: the Greengrass V2 developer guide, "Client device
//! auth", Configuration (`awsdocs/aws-iot-greengrass-v2-developer-guide`
//! `doc_source/client-device-auth-component.md`).
//!
//! Each policy becomes an IoT policy `cda-<name>` that allows what its
//! statements allow, plus what the component does without a statement:
//! receiving (it authorizes subscriptions, not deliveries), and it refuses a
//! client id that is not the name of a thing attached to the certificate.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{Value, json};

/// The only `formatVersion` AWS documents.
const FORMAT_VERSION: &str = "2021-03-05";

/// Why a `deviceGroups` configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceGroupsError {
    /// Not the configuration's JSON shape.
    #[error(
        "not a client device auth configuration ({0}): expected {{\"deviceGroups\": \
         {{\"formatVersion\": \"2021-03-05\", \"definitions\": {{…}}, \"policies\": {{…}}}}}}"
    )]
    Shape(#[from] serde_json::Error),
    /// A `formatVersion` other than AWS's `2021-03-05`.
    #[error("formatVersion {0:?} is not known; AWS's is \"2021-03-05\"")]
    FormatVersion(String),
    /// A selection rule that cannot be read.
    #[error("device group {group:?}: selection rule {rule:?}: {why}")]
    SelectionRule {
        /// The device group.
        group: String,
        /// Its rule.
        rule: String,
        /// What is wrong.
        why: String,
    },
    /// A device group names a policy that `policies` does not define.
    #[error("device group {group:?} names policy {policy:?}, which \"policies\" does not define")]
    UnknownPolicy {
        /// The device group.
        group: String,
        /// The policy it names.
        policy: String,
    },
    /// A policy or statement that cannot be used.
    #[error("policy {policy:?}, statement {statement:?}: {why}")]
    Statement {
        /// The policy.
        policy: String,
        /// The statement.
        statement: String,
        /// What is wrong.
        why: String,
    },
}

/// A client device auth configuration, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceGroups {
    groups: Vec<Group>,
    /// Each policy's statements.
    policies: BTreeMap<String, Vec<Statement>>,
}

/// A statement in IoT terms: actions, and resources as ARN tails
/// (`topic/…`) or `*`.
type Statement = (Vec<&'static str>, Vec<String>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    clauses: Vec<Clause>,
    policy: String,
}

/// One `thingName:` clause of a selection rule.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Clause {
    Exact(String),
    Prefix(String),
}

impl Clause {
    fn matches(&self, thing: &str) -> bool {
        match self {
            Clause::Exact(name) => thing == name,
            Clause::Prefix(prefix) => thing.starts_with(prefix.as_str()),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    device_groups: Raw,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    format_version: String,
    #[serde(default)]
    definitions: BTreeMap<String, RawGroup>,
    #[serde(default)]
    policies: BTreeMap<String, BTreeMap<String, RawStatement>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawGroup {
    selection_rule: String,
    policy_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStatement {
    operations: OneOrMany,
    resources: OneOrMany,
}

/// A list, or one string (AWS's text writes `"resources": "*"`).
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

impl DeviceGroups {
    /// True when `json` looks like a client device auth configuration (it has
    /// `deviceGroups`), rather than an IoT policy.
    pub fn is_device_groups(json: &str) -> bool {
        serde_json::from_str::<Value>(json).is_ok_and(|v| v.get("deviceGroups").is_some())
    }

    /// Reads `{"deviceGroups": {…}}`, the component's configuration as
    /// deployed (its `merge` update), and checks every rule and statement.
    pub fn parse(json: &str) -> Result<DeviceGroups, DeviceGroupsError> {
        let raw = serde_json::from_str::<Document>(json)?.device_groups;
        if raw.format_version != FORMAT_VERSION {
            return Err(DeviceGroupsError::FormatVersion(raw.format_version));
        }
        let mut policies = BTreeMap::new();
        for (name, statements) in raw.policies {
            let mut translated = Vec::new();
            for (statement, raw) in statements {
                let bad = |why: String| DeviceGroupsError::Statement {
                    policy: name.clone(),
                    statement: statement.clone(),
                    why,
                };
                let actions = actions(raw.operations.into_vec()).map_err(bad)?;
                let resources = raw
                    .resources
                    .into_vec()
                    .into_iter()
                    .map(|r| resource(&r))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(bad)?;
                translated.push((actions, resources));
            }
            policies.insert(name, translated);
        }
        let mut groups = Vec::new();
        for (group, raw) in raw.definitions {
            if !policies.contains_key(&raw.policy_name) {
                return Err(DeviceGroupsError::UnknownPolicy {
                    group,
                    policy: raw.policy_name,
                });
            }
            let clauses = selection_rule(&raw.selection_rule).map_err(|why| {
                DeviceGroupsError::SelectionRule {
                    group: group.clone(),
                    rule: raw.selection_rule.clone(),
                    why,
                }
            })?;
            groups.push(Group {
                clauses,
                policy: raw.policy_name,
            });
        }
        Ok(DeviceGroups { groups, policies })
    }

    /// The names of the local policies (see [`DeviceGroups::documents`]) of
    /// the groups `thing` belongs to.
    pub fn policies_of(&self, thing: &str) -> BTreeSet<String> {
        self.groups
            .iter()
            .filter(|g| g.clauses.iter().any(|c| c.matches(thing)))
            .map(|g| local_name(&g.policy))
            .collect()
    }

    /// Each policy as an IoT policy document for the core's broker, named
    /// `cda-<policy>`, with resources in `region` and `account`.
    pub fn documents(&self, region: &str, account: &str) -> BTreeMap<String, String> {
        let arn = |tail: &str| match tail {
            "*" => "*".to_owned(),
            tail => format!("arn:aws:iot:{region}:{account}:{tail}"),
        };
        self.policies
            .iter()
            .map(|(name, statements)| {
                let mut all = vec![
                    json!({"Effect": "Deny", "Action": "iot:Connect", "Resource": "*",
                           "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "false"}}}),
                    json!({"Effect": "Allow", "Action": "iot:Receive", "Resource": "*"}),
                ];
                all.extend(statements.iter().map(|(actions, resources)| {
                    let resources: Vec<String> = resources.iter().map(|r| arn(r)).collect();
                    json!({"Effect": "Allow", "Action": actions, "Resource": resources})
                }));
                let document = json!({"Version": "2012-10-17", "Statement": all});
                (local_name(name), document.to_string())
            })
            .collect()
    }
}

/// The local IoT policy of the component's policy `name`.
fn local_name(name: &str) -> String {
    format!("cda-{name}")
}

/// The IoT actions of the component's operations.
fn actions(operations: Vec<String>) -> Result<Vec<&'static str>, String> {
    let mut actions = BTreeSet::new();
    for operation in operations {
        match operation.as_str() {
            "mqtt:connect" => {
                actions.insert("iot:Connect");
            }
            "mqtt:publish" => {
                actions.extend(["iot:Publish", "iot:RetainPublish"]);
            }
            "mqtt:subscribe" => {
                actions.insert("iot:Subscribe");
            }
            "*" => {
                actions.extend([
                    "iot:Connect",
                    "iot:Publish",
                    "iot:RetainPublish",
                    "iot:Subscribe",
                ]);
            }
            other => {
                return Err(format!(
                    "operation {other:?} is not mqtt:connect, mqtt:publish, mqtt:subscribe or *"
                ));
            }
        }
    }
    if actions.is_empty() {
        return Err("no operations".into());
    }
    Ok(actions.into_iter().collect())
}

/// The ARN tail (`client/ID`, `topic/T`, `topicfilter/F`) or `*` of a resource.
fn resource(resource: &str) -> Result<String, String> {
    if resource == "*" {
        return Ok("*".into());
    }
    let (kind, value) = [
        ("mqtt:clientId:", "client"),
        ("mqtt:topic:", "topic"),
        ("mqtt:topicfilter:", "topicfilter"),
    ]
    .into_iter()
    .find_map(|(prefix, kind)| resource.strip_prefix(prefix).map(|value| (kind, value)))
    .ok_or_else(|| {
        format!(
            "resource {resource:?} is not *, mqtt:clientId:ID, mqtt:topic:TOPIC or \
             mqtt:topicfilter:FILTER"
        )
    })?;
    if value.is_empty() {
        return Err(format!("resource {resource:?} names nothing"));
    }
    if value.contains(['*', '?']) {
        return Err(format!(
            "resource {resource:?}: the component takes * only as a whole resource, never \
             inside one"
        ));
    }
    Ok(format!("{kind}/{value}"))
}

/// The clauses of a selection rule: `thingName: X` joined with ` OR `.
fn selection_rule(rule: &str) -> Result<Vec<Clause>, String> {
    rule.split(" OR ")
        .map(|clause| {
            let value = clause
                .trim()
                .strip_prefix("thingName:")
                .ok_or("each clause must be `thingName: NAME` (the one selector AWS documents)")?
                .trim();
            let unescaped = value.replace("\\:", ":");
            match unescaped.strip_suffix('*') {
                Some(prefix) if prefix.contains('*') => {
                    Err("* may only end a thing name".to_owned())
                }
                Some(prefix) => Ok(Clause::Prefix(prefix.to_owned())),
                None if unescaped.contains('*') => Err("* may only end a thing name".to_owned()),
                None if unescaped.is_empty() => Err("a clause names no thing".to_owned()),
                None => Ok(Clause::Exact(unescaped)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const AWS_RESTRICTIVE_EXAMPLE: &str = r#"{
      "deviceGroups": {
        "formatVersion": "2021-03-05",
        "definitions": {
          "MyDeviceGroup": {"selectionRule": "thingName: MyClientDevice*", "policyName": "MyRestrictivePolicy"}
        },
        "policies": {
          "MyRestrictivePolicy": {
            "AllowConnect": {"statementDescription": "Allow client devices to connect.",
                             "operations": ["mqtt:connect"], "resources": ["*"]},
            "AllowPublish": {"operations": ["mqtt:publish"], "resources": ["mqtt:topic:test/topic"]},
            "AllowSubscribe": {"operations": ["mqtt:subscribe"],
                               "resources": ["mqtt:topicfilter:test/topic/response"]}
          }
        }
      }
    }"#;

    #[test]
    fn aws_example_selects_by_prefix_and_translates_each_statement() {
        let groups = DeviceGroups::parse(AWS_RESTRICTIVE_EXAMPLE).unwrap();
        assert!(DeviceGroups::is_device_groups(AWS_RESTRICTIVE_EXAMPLE));
        assert_eq!(
            groups.policies_of("MyClientDevice1"),
            BTreeSet::from(["cda-MyRestrictivePolicy".to_owned()])
        );
        assert!(groups.policies_of("OtherDevice").is_empty());
        let documents = groups.documents("eu-west-1", "111122223333");
        let document: Value = serde_json::from_str(&documents["cda-MyRestrictivePolicy"]).unwrap();
        let statements = document["Statement"].as_array().unwrap();
        assert_eq!(
            statements[0]["Effect"], "Deny",
            "the thing-name rule comes first"
        );
        assert!(statements.contains(
            &json!({"Effect": "Allow", "Action": ["iot:Publish", "iot:RetainPublish"],
            "Resource": ["arn:aws:iot:eu-west-1:111122223333:topic/test/topic"]})
        ));
        assert!(
            statements.contains(&json!({"Effect": "Allow", "Action": ["iot:Subscribe"],
            "Resource": ["arn:aws:iot:eu-west-1:111122223333:topicfilter/test/topic/response"]}))
        );
        assert!(
            statements.contains(&json!({"Effect": "Allow", "Action": ["iot:Connect"],
            "Resource": ["*"]}))
        );
    }

    #[test]
    fn selection_rules_take_or_exact_names_a_final_wildcard_and_escaped_colons() {
        let rule = selection_rule(r"thingName: a OR thingName: b* OR thingName: team\:c").unwrap();
        assert_eq!(
            rule,
            vec![
                Clause::Exact("a".into()),
                Clause::Prefix("b".into()),
                Clause::Exact("team:c".into())
            ]
        );
        assert!(
            Clause::Prefix(String::new()).matches("anything"),
            "thingName: * selects all"
        );
        assert_eq!(
            selection_rule("thingName: *").unwrap(),
            vec![Clause::Prefix(String::new())]
        );
        for bad in [
            "attribute: x",
            "thingName: a*b",
            "thingName: ",
            "thingName: *a*",
        ] {
            assert!(selection_rule(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn mistakes_are_refused_with_what_is_wrong() {
        let with = |policies: &str, rule: &str, policy: &str| {
            format!(
                r#"{{"deviceGroups": {{"formatVersion": "2021-03-05",
                 "definitions": {{"g": {{"selectionRule": "{rule}", "policyName": "{policy}"}}}},
                 "policies": {{"p": {policies}}}}}}}"#
            )
        };
        let ok = r#"{"s": {"operations": "*", "resources": "*"}}"#;
        assert!(DeviceGroups::parse(&with(ok, "thingName: *", "p")).is_ok());
        let cases = [
            (with(ok, "thingName: *", "q"), "does not define"),
            (with(ok, "name: x", "p"), "selection rule"),
            (
                with(
                    r#"{"s": {"operations": ["mqtt:retain"], "resources": "*"}}"#,
                    "thingName: *",
                    "p",
                ),
                "mqtt:retain",
            ),
            (
                with(
                    r#"{"s": {"operations": ["mqtt:publish"], "resources": ["mqtt:topic:a/*"]}}"#,
                    "thingName: *",
                    "p",
                ),
                "never inside",
            ),
            (
                with(
                    r#"{"s": {"operations": ["mqtt:publish"], "resources": ["arn:aws:iot:x"]}}"#,
                    "thingName: *",
                    "p",
                ),
                "is not *",
            ),
            (
                "{\"Version\": \"2012-10-17\"}".to_owned(),
                "not a client device auth",
            ),
            (
                with(ok, "thingName: *", "p").replace("2021-03-05", "2020-01-01"),
                "formatVersion",
            ),
        ];
        for (json, says) in cases {
            let error = DeviceGroups::parse(&json).expect_err(&json).to_string();
            assert!(error.contains(says), "{error}");
        }
    }
}
