//! Evaluating the policies attached to a certificate for one connection.
//!
//! IAM's rules, which AWS IoT Core follows: an explicit `Deny` in any statement
//! wins; otherwise an `Allow` is needed; with neither, the request is denied.
//! Every [`Decision`] names the statement that decided it, or says that none
//! allowed it, which policy variables could not be replaced and which
//! statements' conditions did not hold.
//!
//! `iot:ConnectAttributes` is in the request context of `iot:Connect` only;
//! every other request is evaluated without it.

use std::fmt;
use std::sync::Arc;

use super::context::{ConnectAttributes, RequestContext, short_id};
use super::document::{Effect, Listed, PolicyDocument};
use super::pattern::Pattern;
use super::resource::{Request, Resource};
use super::variables::Variable;
use super::{Action, ArnScope};

/// A policy version attached to the certificate.
#[derive(Debug, Clone)]
pub struct AttachedPolicy {
    /// The policy name.
    pub name: String,
    /// Its default version's id.
    pub version: u32,
    /// That version's document.
    pub document: PolicyDocument,
}

/// A policy version to compile, borrowed: [`AttachedPolicy`]'s fields, or a
/// document shared by several connections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PolicyRef<'a> {
    /// The policy name.
    pub(crate) name: &'a str,
    /// Its default version's id.
    pub(crate) version: u32,
    /// That version's document.
    pub(crate) document: &'a PolicyDocument,
}

/// The statement that decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRef {
    /// The policy's name.
    pub policy: String,
    /// The policy version.
    pub version: u32,
    /// The statement's position in `Statement`, from 0.
    pub index: usize,
    /// The statement's `Sid`, if it has one.
    pub sid: Option<String>,
}

impl fmt::Display for StatementRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "policy \"{}\" version {}, Statement[{}]",
            self.policy, self.version, self.index
        )?;
        if let Some(sid) = &self.sid {
            write!(f, " (Sid \"{sid}\")")?;
        }
        Ok(())
    }
}

/// Why a request was allowed or denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// This `Allow` statement matched and no `Deny` did.
    Allowed(StatementRef),
    /// This `Deny` statement matched.
    ExplicitDeny(StatementRef),
    /// No statement allowed it.
    NoAllow {
        /// The policies that were evaluated (none: the certificate has no policy).
        policies: Vec<String>,
        /// Variables of statements covering the action that could not be
        /// replaced, each with the reason (`${iot:Connection.Thing.ThingName}:
        /// client id "x" is not the name of a thing …`).
        unresolved: Vec<String>,
        /// The `Allow` statements that name the action and resource but whose
        /// conditions do not hold, each with the statement
        /// (`policy "p" version 1, Statement[0]: its condition on
        /// iot:ConnectAttributes does not hold`).
        unmet: Vec<String>,
    },
}

/// The answer to "may this connection do this action on this resource?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The action asked for.
    pub action: Action,
    /// The resource ARN.
    pub resource: String,
    /// For `iot:Connect` when a policy tests `iot:ConnectAttributes`: the
    /// CONNECT's attributes it was evaluated with.
    pub connect_attributes: Option<ConnectAttributes>,
    /// Why.
    pub reason: Reason,
}

impl Decision {
    /// True when the request is allowed.
    pub fn is_allowed(&self) -> bool {
        matches!(self.reason, Reason::Allowed(_))
    }

    /// The deciding statement, if one decided.
    pub fn statement(&self) -> Option<&StatementRef> {
        match &self.reason {
            Reason::Allowed(s) | Reason::ExplicitDeny(s) => Some(s),
            Reason::NoAllow { .. } => None,
        }
    }
}

impl fmt::Display for Decision {
    /// `iot:Publish on arn:…:topic/x denied: no statement allowed it (…)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {} ", self.action, self.resource)?;
        match self.connect_attributes {
            Some(c) if c.is_empty() => write!(f, "with no iot:ConnectAttributes ")?,
            Some(c) => write!(f, "with iot:ConnectAttributes {c} ")?,
            None => {}
        }
        match &self.reason {
            Reason::Allowed(s) => write!(f, "allowed by {s}"),
            Reason::ExplicitDeny(s) => write!(f, "denied by {s}"),
            Reason::NoAllow {
                policies,
                unresolved,
                unmet,
            } => {
                if policies.is_empty() {
                    return write!(
                        f,
                        "denied: no statement allowed it (the certificate has no policy attached; \
                         attach one with `iotcore policy attach`)"
                    );
                }
                write!(
                    f,
                    "denied: no statement allowed it (policies evaluated: {})",
                    policies.join(", ")
                )?;
                if !unresolved.is_empty() {
                    write!(f, "; not replaced: {}", unresolved.join("; "))?;
                }
                if !unmet.is_empty() {
                    write!(f, "; conditions not met: {}", unmet.join("; "))?;
                }
                Ok(())
            }
        }
    }
}

/// A statement with the connection's variables replaced.
#[derive(Debug)]
struct Compiled {
    source: StatementRef,
    effect: Effect,
    actions: Listed<Pattern>,
    /// The MQTT actions `actions` names, one bit each ([`action_bit`]).
    mqtt_actions: u8,
    resources: Listed<Resource>,
    /// The conditions only depend on the connection and, for `iot:Connect`,
    /// on the CONNECT's attributes: evaluated once for each combination of
    /// attributes, bit [`ConnectAttributes::index`] set when they hold.
    conditions: u8,
    /// Whether a condition tests `iot:ConnectAttributes`.
    tests_connect_attributes: bool,
    /// Variables that had no value, with the reason.
    unresolved: Vec<String>,
}

impl Compiled {
    /// Whether the conditions hold in a request with `connect`'s attributes.
    fn conditions_hold(&self, connect: ConnectAttributes) -> bool {
        self.conditions & 1 << connect.index() != 0
    }

    /// Whether the statement names `action` (its lowercase name).
    fn covers(&self, action: &str) -> bool {
        self.actions.items.iter().any(|p| p.matches(action)) != self.actions.negated
    }

    fn matches_resource(&self, scope: &ArnScope, resource: &str) -> bool {
        self.resources
            .items
            .iter()
            .any(|r| r.matches_arn(scope, resource))
            != self.resources.negated
    }

    /// Whether the statement decides the MQTT `request` (an `iot:Connect`
    /// without attributes): its conditions hold, it names the action and
    /// matches the resource.
    fn applies_to(&self, request: &mut Request<'_>) -> bool {
        self.conditions_hold(ConnectAttributes::NONE)
            && self.mqtt_actions & action_bit(request.action()) != 0
            && self
                .resources
                .items
                .iter()
                .any(|r| r.matches_request(request))
                != self.resources.negated
    }
}

/// `action`'s bit in [`Compiled::mqtt_actions`].
fn action_bit(action: Action) -> u8 {
    let index = Action::ALL.iter().position(|a| *a == action).unwrap_or(0);
    1 << index
}

/// The policies of one connection, ready to answer requests.
///
/// Built once per connection (and again when the registry changes); each
/// [`Principal::evaluate`] is then wildcard matching only.
#[derive(Debug, Clone)]
pub struct Principal {
    /// [`Principal::describe`]'s line: the context itself (certificate
    /// attributes, thing) is only needed to compile, not kept per connection.
    connection: Arc<str>,
    scope: ArnScope,
    policies: Arc<[String]>,
    statements: Arc<[Compiled]>,
}

impl Principal {
    /// Compiles `policies` for `context`, resources in `scope`.
    pub fn new(context: RequestContext, policies: &[AttachedPolicy], scope: ArnScope) -> Principal {
        let policies: Vec<PolicyRef<'_>> = policies
            .iter()
            .map(|p| PolicyRef {
                name: &p.name,
                version: p.version,
                document: &p.document,
            })
            .collect();
        Principal::compile(context, &policies, scope)
    }

    /// [`Principal::new`] with borrowed policies.
    pub(crate) fn compile(
        context: RequestContext,
        policies: &[PolicyRef<'_>],
        scope: ArnScope,
    ) -> Principal {
        let mut ordered: Vec<&PolicyRef<'_>> = policies.iter().collect();
        ordered.sort_by(|a, b| a.name.cmp(b.name));
        let mut statements = Vec::new();
        for policy in &ordered {
            for statement in policy.document.statements() {
                let mut unresolved: Vec<Variable> = Vec::new();
                let resources = statement
                    .resources
                    .items
                    .iter()
                    .map(|t| {
                        let pattern = t.to_pattern(|v| context.resolve(v), &mut unresolved);
                        Resource::new(pattern, &scope)
                    })
                    .collect();
                let tests_connect_attributes = statement
                    .conditions
                    .iter()
                    .any(|c| c.tests_connect_attributes());
                let mut conditions = 0u8;
                for connect in ConnectAttributes::ALL {
                    let holds = if connect.is_empty() || tests_connect_attributes {
                        statement
                            .conditions
                            .iter()
                            .all(|c| c.holds(&context, connect, &mut unresolved))
                    } else {
                        // Nothing else depends on the attributes.
                        conditions & 1 != 0
                    };
                    conditions |= u8::from(holds) << connect.index();
                }
                let mut compiled = Compiled {
                    source: StatementRef {
                        policy: policy.name.to_owned(),
                        version: policy.version,
                        index: statement.index,
                        sid: statement.sid.clone(),
                    },
                    effect: statement.effect,
                    actions: statement.actions.clone(),
                    resources: Listed {
                        negated: statement.resources.negated,
                        items: resources,
                    },
                    conditions,
                    tests_connect_attributes,
                    unresolved: unresolved
                        .iter()
                        .map(|v| format!("{v} ({})", context.why_unresolved(v)))
                        .collect(),
                    mqtt_actions: 0,
                };
                compiled.mqtt_actions = Action::ALL
                    .into_iter()
                    .filter(|a| compiled.covers(a.lowercase_name()))
                    .fold(0, |bits, a| bits | action_bit(a));
                statements.push(compiled);
            }
        }
        Principal {
            connection: describe(&context).into(),
            scope,
            policies: ordered.iter().map(|p| p.name.to_owned()).collect(),
            statements: statements.into(),
        }
    }

    /// The region and account resources are named in.
    pub fn scope(&self) -> &ArnScope {
        &self.scope
    }

    /// Names of the policies evaluated, sorted.
    pub fn policy_names(&self) -> &[String] {
        &self.policies
    }

    /// Decides `action` on the resource ARN `resource` (an `iot:Connect` as
    /// for a CONNECT without [`ConnectAttributes`]).
    pub fn evaluate(&self, action: Action, resource: &str) -> Decision {
        self.evaluate_request(action, resource, ConnectAttributes::NONE)
    }

    /// Decides `iot:Connect` on the resource ARN `resource` for a CONNECT
    /// with `connect`'s attributes (`iot:ConnectAttributes`).
    pub fn evaluate_connect(&self, resource: &str, connect: ConnectAttributes) -> Decision {
        self.evaluate_request(Action::Connect, resource, connect)
    }

    fn evaluate_request(
        &self,
        action: Action,
        resource: &str,
        connect: ConnectAttributes,
    ) -> Decision {
        let connect = if action == Action::Connect {
            connect
        } else {
            ConnectAttributes::NONE
        };
        let tested = action == Action::Connect
            && self
                .statements
                .iter()
                .any(|s| s.tests_connect_attributes && s.covers(action.lowercase_name()));
        Decision {
            action,
            resource: resource.to_owned(),
            connect_attributes: tested.then_some(connect),
            reason: self.decide(action.lowercase_name(), resource, connect),
        }
    }

    /// Decides an API operation's action (`iot:CreateThing`, `iot:GetThingShadow`…,
    /// any case) on the resource ARN `resource`, as IAM decides a call of AWS's
    /// API: why it is allowed or not.
    pub fn evaluate_operation(&self, action: &str, resource: &str) -> Reason {
        self.decide(
            &action.to_ascii_lowercase(),
            resource,
            ConnectAttributes::NONE,
        )
    }

    /// Why `action` (lowercase) on `resource` is allowed or denied in a
    /// request with `connect`'s attributes.
    fn decide(&self, action: &str, resource: &str, connect: ConnectAttributes) -> Reason {
        let named = |statement: &Compiled| {
            statement.covers(action) && statement.matches_resource(&self.scope, resource)
        };
        let deciding =
            self.deciding(|statement| statement.conditions_hold(connect) && named(statement));
        match deciding {
            Some(statement) if statement.effect == Effect::Deny => {
                Reason::ExplicitDeny(statement.source.clone())
            }
            Some(statement) => Reason::Allowed(statement.source.clone()),
            None => Reason::NoAllow {
                policies: self.policies.to_vec(),
                unresolved: self.unresolved_for(action),
                unmet: self
                    .statements
                    .iter()
                    .filter(|s| {
                        s.effect == Effect::Allow && !s.conditions_hold(connect) && named(s)
                    })
                    .map(|s| unmet(s, connect))
                    .collect(),
            },
        }
    }

    /// The statement that decides among those that `apply`: the first
    /// `Deny`, else the first `Allow`; `None` when none applies.
    fn deciding(&self, mut applies: impl FnMut(&Compiled) -> bool) -> Option<&Compiled> {
        let mut allowed: Option<&Compiled> = None;
        for statement in self.statements.iter() {
            if !applies(statement) {
                continue;
            }
            match statement.effect {
                Effect::Deny => return Some(statement),
                Effect::Allow => {
                    allowed.get_or_insert(statement);
                }
            }
        }
        allowed
    }

    /// Whether `action` on the resource named `name` is allowed:
    /// [`evaluate_name`](Self::evaluate_name)'s answer without its
    /// explanation, and without building the ARN unless a pattern outside the
    /// scope's own resources needs it. The per-message check.
    pub fn allows(&self, action: Action, name: &str) -> bool {
        let mut request = Request::new(&self.scope, action, name);
        self.deciding(|statement| statement.applies_to(&mut request))
            .is_some_and(|statement| statement.effect == Effect::Allow)
    }

    /// Decides `action` on the resource named `name` (a client id, topic or
    /// topic filter, as `action` takes).
    pub fn evaluate_name(&self, action: Action, name: &str) -> Decision {
        self.evaluate(action, &self.scope.arn(action, name))
    }

    /// Decides `action` on `resource`, an ARN or the name `action` takes (a
    /// client id, topic or topic filter), for a CONNECT with `connect`'s
    /// attributes when `action` is `iot:Connect` (other actions are decided
    /// without them): the question `iotcore policy explain` and the console's
    /// explain form ask.
    pub fn explain(&self, action: Action, resource: &str, connect: ConnectAttributes) -> Decision {
        if resource.starts_with("arn:") {
            self.evaluate_request(action, resource, connect)
        } else {
            self.evaluate_request(action, &self.scope.arn(action, resource), connect)
        }
    }

    /// Unresolved variables of the Allow statements covering `action` (lowercase).
    fn unresolved_for(&self, action: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for statement in self.statements.iter() {
            if statement.effect == Effect::Allow && statement.covers(action) {
                for note in &statement.unresolved {
                    if !out.contains(note) {
                        out.push(note.clone());
                    }
                }
            }
        }
        out
    }

    /// One line describing the connection, for `policy explain`.
    pub fn describe(&self) -> String {
        self.connection.to_string()
    }
}

/// Why the `Allow` statement `s` named the request but did not apply.
fn unmet(s: &Compiled, connect: ConnectAttributes) -> String {
    // Did the CONNECT's attributes decide, rather than another condition?
    let attributes_decide = ConnectAttributes::ALL
        .into_iter()
        .any(|other| s.conditions_hold(other));
    if s.tests_connect_attributes && attributes_decide {
        let asked = if connect.is_empty() {
            "a CONNECT without attributes".to_owned()
        } else {
            connect.to_string()
        };
        format!(
            "{}: its condition on iot:ConnectAttributes does not hold for {asked}",
            s.source
        )
    } else {
        format!("{}: its conditions do not hold", s.source)
    }
}

/// One line describing the connection of `c`, for `policy explain`.
fn describe(c: &RequestContext) -> String {
    let thing = match &c.thing {
        Some(t) => format!("thing \"{}\" (attached)", t.name),
        None => "no attached thing of that name".to_owned(),
    };
    if c.certificate_id.is_empty() {
        // An access key's or a custom authorizer's connection.
        return format!("client id \"{}\", no certificate", c.client_id);
    }
    format!(
        "client id \"{}\", certificate {}…, {thing}",
        c.client_id,
        short_id(&c.certificate_id)
    )
}
