//! The policies `iotcore thing create` attaches: never allow-all.
//!
//! * [`PolicyTemplate::Thing`] (the default): a device. It connects only as its
//!   own thing (client id = thing name, certificate attached to it), and
//!   publishes (retained too), subscribes and receives only in its own topic
//!   namespaces:
//!   `$aws/things/<thing>/…` (shadows, jobs), `device/<thing>/…` (telemetry
//!   `device/<thing>/messages/events`, commands
//!   `device/<thing>/messages/devicebound/…`), `dt/<thing>[/…]` and
//!   `cmd/<thing>[/…]`. Another device's topics, `$aws/events/…` and every other
//!   topic are denied.
//! * [`PolicyTemplate::Application`]: the cloud side of a fleet (a backend or
//!   test harness). It connects as its own thing too, and may publish (retained
//!   too), subscribe and receive in every device's namespaces (`$aws/things/*`, `device/*`,
//!   `dt/*`, `cmd/*`) and subscribe to and receive lifecycle events
//!   (`$aws/events/*`). Other topics stay denied.
//!
//! Both use policy variables, so one document serves any thing; the resources
//! are named in the emulator's region and account ([`ArnScope`]).

use std::fmt;
use std::str::FromStr;

use super::ArnScope;

/// A built-in policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PolicyTemplate {
    /// A device confined to its own topics (the default).
    #[default]
    Thing,
    /// A cloud application that talks to every device.
    Application,
}

/// A string that names no template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown policy template {0:?}; expected \"thing\" or \"application\"")]
pub struct UnknownPolicyTemplate(pub String);

impl FromStr for PolicyTemplate {
    type Err = UnknownPolicyTemplate;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "thing" | "device" => Ok(PolicyTemplate::Thing),
            "application" | "app" => Ok(PolicyTemplate::Application),
            _ => Err(UnknownPolicyTemplate(s.to_owned())),
        }
    }
}

impl fmt::Display for PolicyTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PolicyTemplate::Thing => "thing",
            PolicyTemplate::Application => "application",
        })
    }
}

const THING: &str = "${iot:Connection.Thing.ThingName}";

impl PolicyTemplate {
    /// The policy document, resources named in `scope`.
    pub fn render(self, scope: &ArnScope) -> String {
        let arn = |kind: &str, name: &str| format!("\"{}{kind}/{name}\"", scope.prefix());
        let list = |kind: &str, names: &[String]| {
            names
                .iter()
                .map(|n| format!("        {}", arn(kind, n)))
                .collect::<Vec<_>>()
                .join(",\n")
        };
        let statement = |sid: &str, actions: &str, resources: String| {
            format!(
                "    {{\n      \"Sid\": \"{sid}\",\n      \"Effect\": \"Allow\",\n      \
                 \"Action\": {actions},\n      \"Resource\": [\n{resources}\n      ]\n    }}"
            )
        };
        let connect = format!(
            "    {{\n      \"Sid\": \"ConnectAsItsThing\",\n      \"Effect\": \"Allow\",\n      \
             \"Action\": \"iot:Connect\",\n      \"Resource\": {},\n      \"Condition\": \
             {{\"Bool\": {{\"iot:Connection.Thing.IsAttached\": \"true\"}}}}\n    }}",
            arn("client", THING)
        );
        let statements = match self {
            PolicyTemplate::Thing => {
                let own: Vec<String> = vec![
                    format!("$aws/things/{THING}/*"),
                    format!("device/{THING}/*"),
                    format!("dt/{THING}"),
                    format!("dt/{THING}/*"),
                    format!("cmd/{THING}"),
                    format!("cmd/{THING}/*"),
                ];
                vec![
                    connect,
                    statement(
                        "PublishAndReceiveOnItsTopics",
                        "[\"iot:Publish\", \"iot:RetainPublish\", \"iot:Receive\"]",
                        list("topic", &own),
                    ),
                    statement(
                        "SubscribeToItsTopics",
                        "\"iot:Subscribe\"",
                        list("topicfilter", &own),
                    ),
                ]
            }
            PolicyTemplate::Application => {
                let devices: Vec<String> = ["$aws/things/*", "device/*", "dt/*", "cmd/*"]
                    .map(str::to_owned)
                    .to_vec();
                let mut filters = devices.clone();
                filters.push("$aws/events/*".to_owned());
                vec![
                    connect,
                    statement(
                        "PublishAndReceiveOnDeviceTopics",
                        "[\"iot:Publish\", \"iot:RetainPublish\", \"iot:Receive\"]",
                        list("topic", &devices),
                    ),
                    statement(
                        "SubscribeToDeviceTopicsAndLifecycleEvents",
                        "\"iot:Subscribe\"",
                        list("topicfilter", &filters),
                    ),
                    statement(
                        "ReceiveLifecycleEvents",
                        "\"iot:Receive\"",
                        list("topic", &["$aws/events/*".to_owned()]),
                    ),
                ]
            }
        };
        format!(
            "{{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n{}\n  ]\n}}\n",
            statements.join(",\n")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyDocument;

    #[test]
    fn templates_are_valid_policies_without_warnings() {
        for template in [PolicyTemplate::Thing, PolicyTemplate::Application] {
            let text = template.render(&ArnScope::new("eu-central-1", "000000000000"));
            let doc =
                PolicyDocument::parse(&text).unwrap_or_else(|e| panic!("{template}: {e}\n{text}"));
            assert!(
                doc.warnings().is_empty(),
                "{template}: {:?}",
                doc.warnings()
            );
            assert!(text.contains("arn:aws:iot:eu-central-1:000000000000:client/"));
            assert!(!text.contains("\"*\""), "never allow-all");
        }
    }

    #[test]
    fn template_names_parse() {
        assert_eq!("thing".parse(), Ok(PolicyTemplate::Thing));
        assert_eq!("Application".parse(), Ok(PolicyTemplate::Application));
        assert!("admin".parse::<PolicyTemplate>().is_err());
    }
}
