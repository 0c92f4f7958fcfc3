//! Authorization: the one authorizer the connections call.
//!
//! A connection's principal ([`crate::accept::Principal`]) must be usable: a
//! certificate registered and `ACTIVE`, an access key issued and not expired.
//! Then the AWS IoT policies attached to the certificate, or the policy the
//! access key was issued with, decide each action ([`crate::policy`]):
//! `iot:Connect` on the client id at CONNECT, with the CONNECT's
//! `iot:ConnectAttributes` (and `iot:Publish`, plus
//! `iot:RetainPublish` if retained, on the will topic), `iot:Publish` and
//! `iot:RetainPublish` on each PUBLISH, `iot:Subscribe` on each filter, and
//! `iot:Receive` on each message delivered. A [`Grant`] holds the policies
//! compiled for one connection; when the registry changes the connection asks
//! for a new one, so certificate status and policy changes apply to live
//! connections.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::watch;

use crate::policy::{
    Action, ArnScope, ConnectAttributes, Decision, LoadError, ParsedDocuments, Principal,
};
use crate::registry_watch::RegistryWatch;
use crate::store::{CertificateStatus, Store};

/// Why a certificate may not be used at all.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refused {
    /// Unknown certificate, or the registry failed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Not `ACTIVE` (inactive, revoked, pending activation).
    #[error("certificate {id} is {status}")]
    NotActive {
        /// The certificate id.
        id: String,
        /// Its status.
        status: CertificateStatus,
    },
    /// The access key was deleted (or never issued).
    #[error("access key {0} does not exist (deleted?)")]
    UnknownAccessKey(String),
    /// Temporary credentials past their expiry.
    #[error("the temporary credentials of access key {0} have expired")]
    AccessKeyExpired(String),
    /// The lookup task failed.
    #[error("registry lookup failed: {0}")]
    Task(String),
}

/// An action refused by the policies, with the decision that refused it.
#[derive(Debug, Clone)]
pub(crate) struct Denied(pub(crate) Decision);

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The authorizer shared by every connection.
#[derive(Debug)]
pub(crate) struct Authorizer {
    store: Store,
    scope: ArnScope,
    watch: RegistryWatch,
    /// The policy documents connections were granted, parsed once.
    documents: Arc<ParsedDocuments>,
}

impl Authorizer {
    /// Authorizes with the registry in `store`, resources named in `scope`.
    pub(crate) fn new(store: Store, scope: ArnScope, watch: RegistryWatch) -> Authorizer {
        Authorizer {
            store,
            scope,
            watch,
            documents: Arc::default(),
        }
    }

    /// Changes whenever the registry changed.
    pub(crate) fn changes(&self) -> watch::Receiver<u64> {
        self.watch.subscribe()
    }

    /// The policies of a connection authenticated as `principal` with
    /// `client_id` from `ip`, or why the principal may not be used.
    pub(crate) async fn grant(
        &self,
        principal: &crate::accept::Principal,
        client_id: &str,
        ip: IpAddr,
    ) -> Result<Grant, Refused> {
        match principal {
            crate::accept::Principal::Certificate { id } => {
                self.certificate_grant(id, client_id, ip).await
            }
            crate::accept::Principal::AccessKey { access_key_id } => {
                self.access_key_grant(access_key_id, client_id, ip).await
            }
            crate::accept::Principal::CustomAuthorizer(authorization) => {
                let documents: Vec<(String, u32, String)> = authorization
                    .policy_documents
                    .iter()
                    .enumerate()
                    .map(|(i, text)| {
                        let name = format!("{}/policyDocuments[{i}]", authorization.authorizer);
                        (name, 1, text.clone())
                    })
                    .collect();
                Ok(Grant::new(Some(Principal::from_documents(
                    &self.scope,
                    &documents,
                    client_id,
                    Some(ip),
                ))))
            }
        }
    }

    /// Runs the custom authorizer `request` names (or the default one).
    pub(crate) async fn authenticate(
        &self,
        request: &crate::authorizer::AuthRequest,
    ) -> Result<crate::authorizer::Authorization, crate::authorizer::AuthorizerError> {
        crate::authorizer::authorize(&self.store, request).await
    }

    /// The policy of access key `access_key_id`; a key issued without one
    /// may do everything (as its HTTPS API calls may).
    async fn access_key_grant(
        &self,
        access_key_id: &str,
        client_id: &str,
        ip: IpAddr,
    ) -> Result<Grant, Refused> {
        let (store, scope) = (self.store.clone(), self.scope.clone());
        let (id, client) = (access_key_id.to_owned(), client_id.to_owned());
        tokio::task::spawn_blocking(move || {
            let record = store
                .credential(&id)
                .map_err(LoadError::from)?
                .ok_or_else(|| Refused::UnknownAccessKey(id.clone()))?;
            if record
                .expires_at
                .is_some_and(|at| at <= crate::store::now_unix())
            {
                return Err(Refused::AccessKeyExpired(id));
            }
            let principal = match &record.policy {
                Some(name) => Some(Principal::load_named(
                    &store,
                    &scope,
                    name,
                    &client,
                    Some(ip),
                )?),
                None => None,
            };
            Ok(Grant::new(principal))
        })
        .await
        .map_err(|e| Refused::Task(e.to_string()))?
    }

    /// The policies of certificate `certificate_id` (which must be `ACTIVE`).
    async fn certificate_grant(
        &self,
        certificate_id: &str,
        client_id: &str,
        ip: IpAddr,
    ) -> Result<Grant, Refused> {
        let (store, scope) = (self.store.clone(), self.scope.clone());
        let documents = Arc::clone(&self.documents);
        let (id, client) = (certificate_id.to_owned(), client_id.to_owned());
        let (principal, status) = tokio::task::spawn_blocking(move || {
            Principal::load(&store, &scope, &documents, &id, &client, Some(ip))
        })
        .await
        .map_err(|e| Refused::Task(e.to_string()))??;
        if status != CertificateStatus::Active {
            return Err(Refused::NotActive {
                id: certificate_id.to_owned(),
                status,
            });
        }
        Ok(Grant::new(Some(principal)))
    }
}

/// The compiled policies of one connection; none for an access key issued
/// without a policy, which may do everything.
///
/// The per-message checks (`iot:Publish`, `iot:RetainPublish`,
/// `iot:Receive`) remember the last few requests they allowed: a decision
/// depends only on the request and the policies compiled here (every
/// condition key and policy variable the engine knows is a property of the
/// connection, evaluated when the grant is made), and a registry change
/// gives the connection a new grant, with nothing remembered. A denial is
/// never remembered: it is evaluated again, with its explanation.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    principal: Option<Principal>,
    recent: RecentlyAllowed,
}

impl Grant {
    fn new(principal: Option<Principal>) -> Grant {
        Grant {
            principal,
            recent: RecentlyAllowed::default(),
        }
    }

    #[cfg(test)]
    /// The policy documents `documents` (named `policy-0`, `policy-1`, …) for
    /// a connection as `client_id`, in the default ARN scope.
    pub(crate) fn for_documents(client_id: &str, documents: &[&str]) -> Grant {
        let documents: Vec<(String, u32, String)> = documents
            .iter()
            .enumerate()
            .map(|(i, text)| (format!("policy-{i}"), 1, (*text).to_owned()))
            .collect();
        Grant::new(Some(Principal::from_documents(
            &ArnScope::default(),
            &documents,
            client_id,
            None,
        )))
    }

    /// Allows `action` on `name` (client id, topic or filter), or says which
    /// statement (or the lack of one) denied it.
    pub(crate) fn check(&self, action: Action, name: &str) -> Result<(), Denied> {
        let Some(principal) = &self.principal else {
            return Ok(());
        };
        if principal.allows(action, name) {
            return Ok(());
        }
        Err(Denied(principal.evaluate_name(action, name)))
    }

    /// Allows `iot:Connect` on `client_id` for a CONNECT with `connect`'s
    /// attributes (`iot:ConnectAttributes`), or says which statement (or the
    /// lack of one) denied it.
    pub(crate) fn check_connect(
        &self,
        client_id: &str,
        connect: ConnectAttributes,
    ) -> Result<(), Denied> {
        let Some(principal) = &self.principal else {
            return Ok(());
        };
        let arn = principal.scope().arn(Action::Connect, client_id);
        let decision = principal.evaluate_connect(&arn, connect);
        if decision.is_allowed() {
            return Ok(());
        }
        Err(Denied(decision))
    }

    /// [`check`](Self::check), answered from the requests allowed lately
    /// when it is one of them.
    fn check_again(&mut self, action: Action, name: &str) -> Result<(), Denied> {
        if self.principal.is_none() || self.recent.contains(action, name) {
            return Ok(());
        }
        self.check(action, name)?;
        self.recent.insert(action, name);
        Ok(())
    }

    /// `iot:Publish`, then `iot:RetainPublish` when `retain`.
    pub(crate) fn check_publish(&mut self, topic: &str, retain: bool) -> Result<(), Denied> {
        self.check_again(Action::Publish, topic)?;
        if retain {
            self.check_again(Action::RetainPublish, topic)?;
        }
        Ok(())
    }

    /// `iot:Receive` on a message's topic.
    pub(crate) fn check_receive(&mut self, topic: &str) -> Result<(), Denied> {
        self.check_again(Action::Receive, topic)
    }
}

/// How many allowed requests a [`Grant`] remembers: as many topics as a
/// device publishes and receives on in turn (its telemetry, its shadow's
/// replies), or the publishers a subscriber hears from in the fan-in benchmark.
const REMEMBERED: usize = 8;

/// The last [`REMEMBERED`] requests a grant allowed, oldest replaced first;
/// empty (no allocation) until the first.
#[derive(Debug, Clone, Default)]
struct RecentlyAllowed {
    requests: Vec<(Action, String)>,
    /// The entry the next request replaces once all are taken.
    next: usize,
}

impl RecentlyAllowed {
    fn contains(&self, action: Action, name: &str) -> bool {
        self.requests.iter().any(|(a, n)| *a == action && n == name)
    }

    fn insert(&mut self, action: Action, name: &str) {
        if self.requests.len() < REMEMBERED {
            self.requests.push((action, name.to_owned()));
            return;
        }
        // The replaced entry's buffer takes the name: no allocation once
        // full, unless the name is longer.
        let (a, n) = &mut self.requests[self.next];
        *a = action;
        n.clear();
        n.push_str(name);
        self.next = (self.next + 1) % REMEMBERED;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Publish on `dt/*`, receive on `dt/a` only.
    fn grant() -> Grant {
        Grant::for_documents(
            "dev-1",
            &[r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/dt/*"},
                {"Effect":"Allow","Action":"iot:Receive","Resource":"arn:aws:iot:us-east-1:123456789012:topic/dt/a"}]}"#],
        )
    }

    #[test]
    fn a_remembered_request_answers_only_for_its_own_action_and_name() {
        let mut grant = grant();
        assert!(grant.check_publish("dt/b", false).is_ok());
        assert!(grant.check_publish("dt/b", false).is_ok(), "remembered");
        assert!(grant.check_receive("dt/b").is_err(), "another action");
        assert!(grant.check_receive("dt/a").is_ok());
        assert!(grant.check_publish("dt/b", true).is_err(), "RetainPublish");
        assert!(grant.check_publish("cmd/b", false).is_err());
        assert!(grant.check_publish("dt/", false).is_ok());
        assert!(grant.check_receive("dt/ab").is_err(), "a longer name");
        assert!(grant.check_receive("dt/").is_err(), "a shorter one");
    }

    #[test]
    fn a_denial_is_explained_each_time_and_never_remembered() {
        let mut grant = grant();
        for _ in 0..2 {
            let denied = grant.check_receive("dt/b").unwrap_err();
            assert!(
                denied
                    .to_string()
                    .contains("denied: no statement allowed it"),
                "{denied}"
            );
        }
        assert!(grant.recent.requests.is_empty());
    }

    #[test]
    fn at_most_a_few_requests_are_remembered_the_oldest_replaced_first() {
        let mut grant = grant();
        for i in 0..3 * REMEMBERED {
            assert!(grant.check_publish(&format!("dt/{i}"), false).is_ok());
            assert_eq!(grant.recent.requests.len(), REMEMBERED.min(i + 1));
        }
        let newest = (2 * REMEMBERED..3 * REMEMBERED).map(|i| format!("dt/{i}"));
        assert!(
            newest
                .into_iter()
                .all(|n| grant.recent.contains(Action::Publish, &n))
        );
        assert!(!grant.recent.contains(Action::Publish, "dt/0"));
    }

    #[test]
    fn a_new_grant_remembers_nothing_of_the_old_one() {
        let mut grant = grant();
        assert!(grant.check_publish("dt/b", false).is_ok());
        // What the connection does when the registry changes: its policies
        // are compiled again, into a new grant.
        grant = Grant::for_documents(
            "dev-1",
            &[r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/cmd/*"}]}"#],
        );
        assert!(grant.check_publish("dt/b", false).is_err());
    }
}
