//! The AWS IoT policy engine: policy documents, their evaluation, and the
//! built-in policy templates.
//!
//! * [`PolicyDocument::parse`] reads a policy and refuses what AWS IoT refuses,
//!   naming the element at fault (`Statement[1].Effect: …`).
//! * [`Principal`] holds the policies attached to a connection's certificate,
//!   with the connection's [`RequestContext`] (client id, certificate
//!   attributes, thing) substituted for the policy variables;
//!   [`Principal::evaluate`] answers with a [`Decision`] that names the deciding
//!   statement.
//! * [`PolicyTemplate`] renders the policies `iotcore thing create` attaches.
//!
//! Semantics (docs/aws-iot-core-behaviour.md §6 and the AWS IoT developer
//! guide's policy pages): IAM evaluation (explicit `Deny` wins, no `Allow`
//! means deny); `*` and `?` are the only wildcards in resources, `+` and `#` are
//! plain characters; action names compare case-insensitively and may use
//! wildcards (`iot:*`); a policy variable without a value is left in the
//! resource as text (AWS: "leaving the `${policy-variable}` text in the policy
//! document"), so that resource matches nothing real. Unlike AWS, whose policy
//! cache takes minutes, a change applies to the next request.
//!
//! Sources, besides the fact sheet:
//! * thing variables resolve only when the client id is the name of a thing the
//!   certificate is attached to: "Thing policy variables",
//!   <https://docs.aws.amazon.com/iot/latest/developerguide/thing-policy-variables.html>;
//! * `iot:ConnectAttributes` (`PersistentConnect`, `LastWill`), a
//!   multi-valued key in the context of `iot:Connect` only: "Using
//!   connectAttributes" in the MQTT page and "Connect policy examples",
//!   <https://docs.aws.amazon.com/iot/latest/developerguide/connect-policy.html>;
//! * certificate variables (subject, issuer, alternative names, serial number;
//!   first value by default, `.N` and `.List`; at most five values; values with
//!   wildcards or over 1024 characters not substituted): "X.509 Certificate
//!   AWS IoT Core policy variables", awsdocs/aws-iot-docs
//!   `developerguide/cert-policy-variables.md`;
//! * names `[\w+=,.@-]{1,128}`, documents of at most 2048 characters without
//!   whitespace, at most five versions: the CreatePolicy / CreatePolicyVersion
//!   API reference;
//! * condition operators and absent keys: IAM's "Condition operators" reference.
//!
//! Design choices where AWS is silent: `iotcore policy create` warns about
//! unknown variables and statements that can never apply; MQTT 3.1.1 SUBSCRIBE
//! denials close the connection (§1.8, AWS's 2017 answer; SUBACK 0x80 is
//! unconfirmed).

mod condition;
mod context;
mod document;
mod eval;
mod load;
mod parsed;
mod pattern;
mod resource;
mod templates;
mod variables;
mod wildcards;

use std::fmt;
use std::str::FromStr;

pub use context::{
    CertificateAttributes, CertificateParseError, ConnectAttributes, RequestContext,
};
pub use document::{Effect, MAX_DOCUMENT_CHARS, PolicyDocument, PolicyDocumentError};
pub use eval::{AttachedPolicy, Decision, Principal, Reason, StatementRef};
pub use load::LoadError;
pub(crate) use parsed::ParsedDocuments;
pub use templates::{PolicyTemplate, UnknownPolicyTemplate};
pub use wildcards::GrantedWildcard;

/// The region the emulator names its resources in by default.
pub const DEFAULT_REGION: &str = "us-east-1";
/// The account id the emulator names its resources in by default.
pub const DEFAULT_ACCOUNT_ID: &str = "123456789012";

/// An MQTT action AWS IoT Core authorizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// `iot:Connect`, on `client/<client id>`.
    Connect,
    /// `iot:Publish`, on `topic/<topic>`.
    Publish,
    /// `iot:Subscribe`, on `topicfilter/<filter>`.
    Subscribe,
    /// `iot:Receive`, on `topic/<topic>`, checked for each message delivered.
    Receive,
    /// `iot:RetainPublish`, on `topic/<topic>`, for a PUBLISH with RETAIN
    /// (which also needs `iot:Publish`).
    RetainPublish,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 5] = [
        Action::Connect,
        Action::Publish,
        Action::Subscribe,
        Action::Receive,
        Action::RetainPublish,
    ];

    /// The policy name: `iot:Publish`.
    pub fn name(self) -> &'static str {
        match self {
            Action::Connect => "iot:Connect",
            Action::Publish => "iot:Publish",
            Action::Subscribe => "iot:Subscribe",
            Action::Receive => "iot:Receive",
            Action::RetainPublish => "iot:RetainPublish",
        }
    }

    pub(crate) fn lowercase_name(self) -> &'static str {
        match self {
            Action::Connect => "iot:connect",
            Action::Publish => "iot:publish",
            Action::Subscribe => "iot:subscribe",
            Action::Receive => "iot:receive",
            Action::RetainPublish => "iot:retainpublish",
        }
    }

    /// The ARN resource type the action is checked against: `client`, `topic`
    /// or `topicfilter`.
    pub fn resource_type(self) -> &'static str {
        match self {
            Action::Connect => "client",
            Action::Subscribe => "topicfilter",
            Action::Publish | Action::Receive | Action::RetainPublish => "topic",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A string that names no MQTT action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown action {0:?}; expected iot:Connect, iot:Publish, iot:Subscribe, iot:Receive or iot:RetainPublish"
)]
pub struct UnknownAction(pub String);

impl FromStr for Action {
    type Err = UnknownAction;

    /// Parses `iot:Publish` (or `Publish`), case-insensitively.
    fn from_str(s: &str) -> Result<Action, UnknownAction> {
        let bare = s.strip_prefix("iot:").unwrap_or(s);
        Action::ALL
            .into_iter()
            .find(|a| a.name()[4..].eq_ignore_ascii_case(bare))
            .ok_or_else(|| UnknownAction(s.to_owned()))
    }
}

/// The region and account the emulator's resource ARNs are in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnScope {
    prefix: String,
    region: String,
    account_id: String,
}

impl ArnScope {
    /// Resources in `region` of account `account_id`.
    pub fn new(region: &str, account_id: &str) -> ArnScope {
        ArnScope {
            prefix: format!("arn:aws:iot:{region}:{account_id}:"),
            region: region.to_owned(),
            account_id: account_id.to_owned(),
        }
    }

    /// The region.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The account id.
    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    /// `arn:aws:iot:<region>:<account>:`
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The ARN `action` is checked against for `name` (client id, topic or
    /// filter): `arn:aws:iot:us-east-1:123456789012:topic/dt/dev-1/temp`.
    pub fn arn(&self, action: Action, name: &str) -> String {
        format!("{}{}/{name}", self.prefix, action.resource_type())
    }
}

impl Default for ArnScope {
    /// [`DEFAULT_REGION`] and [`DEFAULT_ACCOUNT_ID`].
    fn default() -> Self {
        ArnScope::new(DEFAULT_REGION, DEFAULT_ACCOUNT_ID)
    }
}

#[cfg(test)]
mod tests;
