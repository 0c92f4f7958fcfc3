//! Resource patterns compiled for one connection's ARN scope.
//!
//! Nearly every resource of an AWS IoT policy starts with the scope's ARN
//! prefix and an MQTT resource type, written out:
//! `arn:aws:iot:us-east-1:123456789012:topic/dt/${iot:ClientId}/*`. Such a
//! pattern keeps only what follows `topic/`, and a request for a topic, a
//! filter or a client id is matched on its name alone: no ARN is built, and a
//! pattern of another resource type is passed over without reading it. Any
//! other pattern (`*`, `arn:aws:iot:*:*:topic/…`, another account's) is
//! matched against the whole ARN, as written.

use super::pattern::Pattern;
use super::{Action, ArnScope};

/// The resource types of the MQTT actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResourceType {
    /// `client/<client id>` (`iot:Connect`).
    Client,
    /// `topic/<topic>` (`iot:Publish`, `iot:Receive`, `iot:RetainPublish`).
    Topic,
    /// `topicfilter/<filter>` (`iot:Subscribe`).
    TopicFilter,
}

impl ResourceType {
    const ALL: [ResourceType; 3] = [
        ResourceType::Client,
        ResourceType::Topic,
        ResourceType::TopicFilter,
    ];

    /// What follows the scope's prefix in the ARN: `topic/`.
    fn arn_part(self) -> &'static str {
        match self {
            ResourceType::Client => "client/",
            ResourceType::Topic => "topic/",
            ResourceType::TopicFilter => "topicfilter/",
        }
    }

    /// The type `action` is checked against.
    fn of(action: Action) -> ResourceType {
        match action {
            Action::Connect => ResourceType::Client,
            Action::Subscribe => ResourceType::TopicFilter,
            Action::Publish | Action::Receive | Action::RetainPublish => ResourceType::Topic,
        }
    }
}

/// One resource pattern of a compiled statement.
#[derive(Debug)]
pub(crate) enum Resource {
    /// `<scope prefix><type>/<name pattern>`: matches the names of one type.
    Named {
        /// The resource type it names.
        kind: ResourceType,
        /// The pattern of the name (client id, topic or filter).
        name: Pattern,
    },
    /// Any other ARN pattern.
    Arn(Pattern),
}

impl Resource {
    /// `pattern` (a whole ARN pattern) for requests in `scope`.
    pub(crate) fn new(pattern: Pattern, scope: &ArnScope) -> Resource {
        let Some(rest) = pattern.strip_literal_prefix(scope.prefix()) else {
            return Resource::Arn(pattern);
        };
        for kind in ResourceType::ALL {
            if let Some(name) = rest.strip_literal_prefix(kind.arn_part()) {
                return Resource::Named { kind, name };
            }
        }
        Resource::Arn(pattern)
    }

    /// True when it matches the whole ARN `arn`.
    pub(crate) fn matches_arn(&self, scope: &ArnScope, arn: &str) -> bool {
        match self {
            Resource::Named { kind, name } => arn
                .strip_prefix(scope.prefix())
                .and_then(|rest| rest.strip_prefix(kind.arn_part()))
                .is_some_and(|rest| name.matches(rest)),
            Resource::Arn(pattern) => pattern.matches(arn),
        }
    }

    /// True when it matches the resource `request` names.
    pub(crate) fn matches_request(&self, request: &mut Request<'_>) -> bool {
        match self {
            Resource::Named { kind, name } => {
                *kind == ResourceType::of(request.action) && name.matches(request.name)
            }
            Resource::Arn(pattern) => pattern.matches(request.arn()),
        }
    }
}

/// An MQTT action's request: the action and the name it is on (client id,
/// topic or filter); its ARN is built only if a pattern needs it.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    scope: &'a ArnScope,
    action: Action,
    name: &'a str,
    arn: Option<String>,
}

impl<'a> Request<'a> {
    /// `action` on `name`, in `scope`.
    pub(crate) fn new(scope: &'a ArnScope, action: Action, name: &'a str) -> Request<'a> {
        Request {
            scope,
            action,
            name,
            arn: None,
        }
    }

    /// The action asked for.
    pub(crate) fn action(&self) -> Action {
        self.action
    }

    /// The resource's ARN.
    fn arn(&mut self) -> &str {
        let (scope, action, name) = (self.scope, self.action, self.name);
        self.arn.get_or_insert_with(|| scope.arn(action, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(text: &str) -> Resource {
        Resource::new(Pattern::wildcard(text), &ArnScope::default())
    }

    const PREFIX: &str = "arn:aws:iot:us-east-1:123456789012:";

    #[test]
    fn a_pattern_in_the_scope_keeps_only_the_name_pattern() {
        match resource(&format!("{PREFIX}topicfilter/dt/+/x")) {
            Resource::Named { kind, name } => {
                assert_eq!(kind, ResourceType::TopicFilter);
                assert_eq!(name.source(), "dt/+/x");
            }
            other => panic!("{other:?}"),
        }
        for text in [
            "*",
            "arn:aws:iot:*:*:topic/x",
            "arn:aws:iot:eu-west-1:123456789012:topic/x",
            &format!("{PREFIX}topic*"),
            &format!("{PREFIX}thing/x"),
        ] {
            assert!(matches!(resource(text), Resource::Arn(_)), "{text}");
        }
    }

    /// Every pattern answers a request by name as it answers the whole ARN.
    #[test]
    fn matching_a_name_agrees_with_matching_its_arn() {
        let scope = ArnScope::default();
        let patterns = [
            format!("{PREFIX}topic/dt/*"),
            format!("{PREFIX}topic/*"),
            format!("{PREFIX}topicfilter/dt/*"),
            format!("{PREFIX}client/dev-?"),
            format!("{PREFIX}topic*"),
            format!("{PREFIX}*/dt/a"),
            "*".to_owned(),
            "arn:aws:iot:*:*:topic/dt/a".to_owned(),
            "arn:aws:iot:eu-west-1:123456789012:topic/dt/a".to_owned(),
        ];
        for pattern in &patterns {
            let compiled = resource(pattern);
            for action in Action::ALL {
                for name in ["dt/a", "dev-1", "cmd/x", "", "dt/+/x"] {
                    let arn = scope.arn(action, name);
                    let by_arn = Pattern::wildcard(pattern).matches(&arn);
                    assert_eq!(
                        compiled.matches_arn(&scope, &arn),
                        by_arn,
                        "{pattern} {arn}"
                    );
                    let mut request = Request::new(&scope, action, name);
                    assert_eq!(
                        compiled.matches_request(&mut request),
                        by_arn,
                        "{pattern} {arn}"
                    );
                }
            }
        }
    }
}
