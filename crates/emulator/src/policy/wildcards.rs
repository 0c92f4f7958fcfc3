//! The wildcards a policy grants: what Device Advisor's
//! `Security_Device_Policies` ("device certificate attached policies don't
//! contain wildcards") looks for, and what a least-privilege review asks.
//!
//! Only `Allow` statements count (a wildcard in a `Deny` takes rights away),
//! and `NotAction` / `NotResource` in an `Allow` grant everything but a list,
//! so they count as wildcards. A resource wildcard that comes after the
//! device's own name (`…/topic/dt/${iot:Connection.Thing.ThingName}/*`) is
//! told apart: it spans only that device's resources.

use super::document::{Effect, PolicyDocument};

/// One wildcard an `Allow` statement grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantedWildcard {
    /// The statement: `Statement[1]`, with its `Sid` if it has one.
    pub statement: String,
    /// `Action`, `NotAction`, `Resource` or `NotResource`.
    pub element: &'static str,
    /// The action or resource as written.
    pub text: String,
    /// A resource wildcard after the device's client id or thing name: it
    /// spans only the device's own resources.
    pub scoped_to_device: bool,
}

impl std::fmt::Display for GrantedWildcard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {:?}", self.statement, self.element, self.text)?;
        if self.scoped_to_device {
            f.write_str(" (within the device's own resources)")?;
        }
        Ok(())
    }
}

impl PolicyDocument {
    /// The wildcards its `Allow` statements grant, in document order.
    pub fn granted_wildcards(&self) -> Vec<GrantedWildcard> {
        let mut found = Vec::new();
        for statement in self.statements() {
            if statement.effect != Effect::Allow {
                continue;
            }
            let name = match &statement.sid {
                Some(sid) => format!("Statement[{}] ({sid})", statement.index),
                None => format!("Statement[{}]", statement.index),
            };
            let mut grant = |element, text: String, scoped_to_device| {
                found.push(GrantedWildcard {
                    statement: name.clone(),
                    element,
                    text,
                    scoped_to_device,
                });
            };
            let actions = &statement.actions;
            for action in &actions.items {
                if actions.negated {
                    grant("NotAction", action.source(), false);
                } else if action.has_wildcard() {
                    grant("Action", action.source(), false);
                }
            }
            let resources = &statement.resources;
            for resource in &resources.items {
                if resources.negated {
                    grant("NotResource", resource.source(), false);
                } else if let Some(scoped) = resource.wildcard_after_device() {
                    grant("Resource", resource.source(), scoped);
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wildcards(text: &str) -> Vec<String> {
        PolicyDocument::parse(text)
            .unwrap()
            .granted_wildcards()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn allow_statements_with_wildcards_are_named() {
        let found = wildcards(
            r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Action":"iot:*","Resource":"*"},
                {"Sid":"own","Effect":"Allow","Action":"iot:Publish",
                 "Resource":"arn:aws:iot:us-east-1:1:topic/dt/${iot:Connection.Thing.ThingName}/*"},
                {"Effect":"Allow","Action":"iot:Connect",
                 "Resource":"arn:aws:iot:us-east-1:1:client/${iot:Connection.Thing.ThingName}"},
                {"Effect":"Deny","Action":"iot:*","Resource":"*"}
            ]}"#,
        );
        assert_eq!(
            found,
            [
                r#"Statement[0] Action "iot:*""#,
                r#"Statement[0] Resource "*""#,
                r#"Statement[1] (own) Resource "arn:aws:iot:us-east-1:1:topic/dt/${iot:Connection.Thing.ThingName}/*" (within the device's own resources)"#,
            ]
        );
    }

    #[test]
    fn not_action_and_not_resource_grant_everything_else() {
        let found = wildcards(
            r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","NotAction":"iot:Connect","NotResource":"arn:aws:iot:us-east-1:1:topic/x"}
            ]}"#,
        );
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("NotAction"));
        assert!(found[1].contains("NotResource"));
    }

    #[test]
    fn a_wildcard_before_the_device_name_is_not_scoped_and_a_literal_star_is_none() {
        let found = wildcards(
            r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Action":"iot:Publish",
                 "Resource":"arn:aws:iot:us-east-1:1:topic/*/${iot:ClientId}"},
                {"Effect":"Allow","Action":"iot:Publish",
                 "Resource":"arn:aws:iot:us-east-1:1:topic/a${*}b"}
            ]}"#,
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(!found[0].contains("within the device"), "{found:?}");
    }
}
