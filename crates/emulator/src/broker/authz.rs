//! Authorization: the one authorizer the connections call.
//!
//! A connection's principal ([`crate::accept::Principal`]) must be usable: a
//! certificate registered and `ACTIVE`, an access key issued and not expired.
//! Then the AWS IoT policies attached to the certificate, or the policy the
//! access key was issued with, decide each action ([`crate::policy`]):
//! `iot:Connect` on the client id at CONNECT (and `iot:Publish`, plus
//! `iot:RetainPublish` if retained, on the will topic), `iot:Publish` and
//! `iot:RetainPublish` on each PUBLISH, `iot:Subscribe` on each filter, and
//! `iot:Receive` on each message delivered. A [`Grant`] holds the policies
//! compiled for one connection; when the registry changes the connection asks
//! for a new one, so certificate status and policy changes apply to live
//! connections.

use std::fmt;
use std::net::IpAddr;

use tokio::sync::watch;

use crate::policy::{Action, ArnScope, Decision, LoadError, Principal};
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
}

impl Authorizer {
    /// Authorizes with the registry in `store`, resources named in `scope`.
    pub(crate) fn new(store: Store, scope: ArnScope, watch: RegistryWatch) -> Authorizer {
        Authorizer {
            store,
            scope,
            watch,
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
                Ok(Grant {
                    principal: Some(Principal::from_documents(
                        &self.scope,
                        &documents,
                        client_id,
                        Some(ip),
                    )),
                })
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
            Ok(Grant { principal })
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
        let (id, client) = (certificate_id.to_owned(), client_id.to_owned());
        let (principal, status) = tokio::task::spawn_blocking(move || {
            Principal::load(&store, &scope, &id, &client, Some(ip))
        })
        .await
        .map_err(|e| Refused::Task(e.to_string()))??;
        if status != CertificateStatus::Active {
            return Err(Refused::NotActive {
                id: certificate_id.to_owned(),
                status,
            });
        }
        Ok(Grant {
            principal: Some(principal),
        })
    }
}

/// The compiled policies of one connection; none for an access key issued
/// without a policy, which may do everything.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    principal: Option<Principal>,
}

impl Grant {
    #[cfg(test)]
    /// The policy documents `documents` (named `policy-0`, `policy-1`, …) for
    /// a connection as `client_id`, in the default ARN scope.
    pub(crate) fn for_documents(client_id: &str, documents: &[&str]) -> Grant {
        let documents: Vec<(String, u32, String)> = documents
            .iter()
            .enumerate()
            .map(|(i, text)| (format!("policy-{i}"), 1, (*text).to_owned()))
            .collect();
        Grant {
            principal: Some(Principal::from_documents(
                &ArnScope::default(),
                &documents,
                client_id,
                None,
            )),
        }
    }

    /// Allows `action` on `name` (client id, topic or filter), or says which
    /// statement (or the lack of one) denied it.
    pub(crate) fn check(&self, action: Action, name: &str) -> Result<(), Denied> {
        let Some(principal) = &self.principal else {
            return Ok(());
        };
        let decision = principal.evaluate_name(action, name);
        if decision.is_allowed() {
            Ok(())
        } else {
            Err(Denied(decision))
        }
    }

    /// `iot:Publish`, then `iot:RetainPublish` when `retain`.
    pub(crate) fn check_publish(&self, topic: &str, retain: bool) -> Result<(), Denied> {
        self.check(Action::Publish, topic)?;
        if retain {
            self.check(Action::RetainPublish, topic)?;
        }
        Ok(())
    }
}
