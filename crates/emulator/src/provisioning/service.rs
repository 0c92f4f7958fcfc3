//! The running service: takes requests from connections, serves each in its
//! own task, answers the requesting session, and drops expired tokens.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use iotcore_model::provisioning::{
    CreateCertificateFromCsrAccepted, CreateCertificateFromCsrRequest,
    CreateKeysAndCertificateAccepted, PayloadFormat, ProvisioningApi, ProvisioningError,
    ProvisioningTopic, ProvisioningTopicKind, RegisterThingAccepted, RegisterThingRequest,
    parse_create_keys_request,
};
use serde::Serialize;
use tokio::sync::{Semaphore, watch};

use super::TOKEN_LIFETIME;
use super::hook::{HookInput, run_hook};
use super::template::ProvisioningTemplate;
use crate::broker::Broker;
use crate::clock::Clock;
use crate::connection::stopped;
use crate::pki::{KeyAlgorithm, Pki, PkiError};
use crate::policy::ArnScope;
use crate::services::reply::{self, Audience};
use crate::services::{Request, Requester, Service};
use crate::store::{Store, StoreError, TemplateError};

/// How often expired ownership tokens are looked for.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// Requests served at once; more wait for a place.
const CONCURRENT_REQUESTS: usize = 16;
/// Random bytes in an ownership token.
const TOKEN_BYTES: usize = 48;
/// The subject of the certificates CreateKeysAndCertificate makes (AWS's).
const CREATED_CERTIFICATE_NAME: &str = "AWS IoT Certificate";

/// Which API, owned.
#[derive(Debug, Clone)]
enum Operation {
    CreateKeys,
    CreateFromCsr,
    Register { template: String },
}

/// The fleet provisioning service; cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct ProvisioningService {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    pki: Arc<Pki>,
    broker: Arc<Broker>,
    scope: ArnScope,
    clock: Clock,
    places: Semaphore,
}

impl ProvisioningService {
    /// Starts the service and its expired-token sweeper, which stops when
    /// `closing` turns `true`.
    pub(crate) fn start(
        store: Store,
        pki: Arc<Pki>,
        broker: Arc<Broker>,
        scope: ArnScope,
        clock: Clock,
        mut closing: watch::Receiver<bool>,
    ) -> ProvisioningService {
        let service = ProvisioningService {
            inner: Arc::new(Inner {
                store,
                pki,
                broker,
                scope,
                clock,
                places: Semaphore::new(CONCURRENT_REQUESTS),
            }),
        };
        let sweeper = service.clone();
        tokio::spawn(async move {
            loop {
                sweeper.sweep().await;
                tokio::select! {
                    () = tokio::time::sleep(SWEEP_INTERVAL) => {}
                    () = stopped(&mut closing) => return,
                }
            }
        });
        service
    }

    async fn run(
        &self,
        operation: &Operation,
        payload: &[u8],
        requester: &Requester,
    ) -> Result<Vec<u8>, ProvisioningError> {
        match operation {
            Operation::CreateKeys => {
                parse_create_keys_request(payload)?;
                let (issued, token) = self
                    .issue_pending(&requester.principal, |pki| {
                        pki.issue_device_certificate(
                            CREATED_CERTIFICATE_NAME,
                            KeyAlgorithm::Rsa2048,
                        )
                        .map(|c| (c.certificate_id.clone(), c.certificate_pem.clone(), c))
                    })
                    .await?;
                to_json(&CreateKeysAndCertificateAccepted {
                    certificate_id: issued.certificate_id,
                    certificate_pem: issued.certificate_pem,
                    private_key: issued.private_key_pem,
                    certificate_ownership_token: token,
                })
            }
            Operation::CreateFromCsr => {
                let request = CreateCertificateFromCsrRequest::parse(payload)?;
                let (issued, token) = self
                    .issue_pending(&requester.principal, move |pki| {
                        pki.sign_csr(&request.certificate_signing_request)
                            .map(|c| (c.certificate_id.clone(), c.certificate_pem.clone(), c))
                    })
                    .await?;
                to_json(&CreateCertificateFromCsrAccepted {
                    certificate_ownership_token: token,
                    certificate_id: issued.certificate_id,
                    certificate_pem: issued.certificate_pem,
                })
            }
            Operation::Register { template } => {
                let request = RegisterThingRequest::parse(payload)?;
                let accepted = self.register(template, request, requester).await?;
                to_json(&accepted)
            }
        }
    }

    /// Issues a certificate with `issue` and registers it
    /// `PENDING_ACTIVATION` with a new ownership token.
    async fn issue_pending<T: Send + 'static>(
        &self,
        claim_certificate_id: &str,
        issue: impl FnOnce(&Pki) -> Result<(String, String, T), PkiError> + Send + 'static,
    ) -> Result<(T, String), ProvisioningError> {
        let inner = Arc::clone(&self.inner);
        let claim = claim_certificate_id.to_owned();
        let expires_at = inner
            .clock
            .unix_now()
            .saturating_add(TOKEN_LIFETIME.as_secs().try_into().unwrap_or(i64::MAX));
        let work = move || {
            let (id, pem, issued) = issue(&inner.pki).map_err(|e| match e {
                PkiError::InvalidCsr { .. } | PkiError::UnsupportedCsrKey { .. } => {
                    ProvisioningError::InvalidCsr(e.to_string())
                }
                other => internal(format!("cannot issue a certificate: {other}")),
            })?;
            let token = new_token();
            inner
                .store
                .add_pending_certificate(&id, &pem, &token, &claim, expires_at)
                .map_err(|e| internal(format!("cannot register the new certificate: {e}")))?;
            tracing::info!(
                certificate_id = id,
                "certificate created, PENDING_ACTIVATION"
            );
            Ok((issued, token))
        };
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| internal(format!("the certificate task failed: {e}")))?
    }

    async fn register(
        &self,
        template_name: &str,
        request: RegisterThingRequest,
        requester: &Requester,
    ) -> Result<RegisterThingAccepted, ProvisioningError> {
        let now = self.inner.clock.unix_now();
        let (template, hook, token, certificate_pem) = {
            let inner = Arc::clone(&self.inner);
            let name = template_name.to_owned();
            let token = request.certificate_ownership_token.clone();
            tokio::task::spawn_blocking(move || lookup(&inner.store, &name, &token, now))
                .await
                .map_err(|e| internal(format!("the registry lookup failed: {e}")))??
        };
        let mut parameters = request.parameters;
        if let Some(command) = hook {
            let input = HookInput {
                claim_certificate_id: requester.principal.clone(),
                certificate_id: token.certificate_id.clone(),
                certificate_pem,
                template_arn: format!(
                    "{}provisioningtemplate/{template_name}",
                    self.inner.scope.prefix()
                ),
                client_id: requester.client_id.clone(),
                parameters: parameters.clone(),
            };
            let overrides = run_hook(&command, &input).await?;
            parameters.extend(overrides);
        }
        let rendered = template.render(
            &parameters,
            &token.certificate_id,
            &request.certificate_ownership_token,
            &self.inner.scope,
        )?;
        let inner = Arc::clone(&self.inner);
        let registration = rendered.registration.clone();
        tokio::task::spawn_blocking(move || inner.store.register_thing(&registration))
            .await
            .map_err(|e| internal(format!("the registration task failed: {e}")))?
            .map_err(registration_error)?;
        tracing::info!(
            template = template_name,
            thing = rendered.registration.thing.name,
            certificate_id = token.certificate_id,
            "thing provisioned"
        );
        Ok(RegisterThingAccepted {
            device_configuration: rendered.device_configuration,
            thing_name: rendered.registration.thing.name,
        })
    }

    /// Drops expired tokens and their unused certificates.
    async fn sweep(&self) {
        let inner = Arc::clone(&self.inner);
        let now = inner.clock.unix_now();
        match tokio::task::spawn_blocking(move || inner.store.remove_expired_tokens(now)).await {
            Ok(Ok(deleted)) if !deleted.is_empty() => tracing::info!(
                certificates = ?deleted,
                "ownership tokens expired: their certificates were never registered and are deleted"
            ),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!("cannot drop expired ownership tokens: {e}"),
            Err(e) => tracing::warn!("the expired-token sweep did not run: {e}"),
        }
    }
}

/// The provisioning request topic `topic` names, if it is one.
fn request_topic(topic: &str) -> Option<ProvisioningTopic<'_>> {
    if !ProvisioningTopic::is_reserved(topic) {
        return None;
    }
    ProvisioningTopic::parse(topic)
        .ok()
        .filter(|t| t.kind() == ProvisioningTopicKind::Request)
}

impl Service for ProvisioningService {
    /// `$aws/certificates/create[-from-csr]/{json,cbor}` and
    /// `$aws/provisioning-templates/{template}/provision/{json,cbor}`.
    fn claims(&self, topic: &str) -> bool {
        request_topic(topic).is_some()
    }

    /// Serves the request in the background and answers the requester's
    /// session, if it subscribed to the reply topic. CBOR requests are taken
    /// and not answered (logged).
    fn serve(&self, request: Request) {
        let Some(topic) = request_topic(&request.topic) else {
            return;
        };
        if topic.format() == PayloadFormat::Cbor {
            tracing::warn!(
                topic = %request.topic,
                "fleet provisioning request in CBOR not answered: the emulator serves the json topics only"
            );
            return;
        }
        let operation = match topic.api() {
            ProvisioningApi::CreateKeysAndCertificate => Operation::CreateKeys,
            ProvisioningApi::CreateCertificateFromCsr => Operation::CreateFromCsr,
            ProvisioningApi::RegisterThing { template } => Operation::Register {
                template: template.to_owned(),
            },
        };
        let accepted = topic.with_kind(ProvisioningTopicKind::Accepted).to_topic();
        let rejected = topic.with_kind(ProvisioningTopicKind::Rejected).to_topic();
        let Request {
            payload, requester, ..
        } = request;
        let service = self.clone();
        tokio::spawn(async move {
            let result = match service.inner.places.acquire().await {
                Ok(_place) => service.run(&operation, &payload, &requester).await,
                Err(_) => Err(ProvisioningError::InternalFailure),
            };
            let (topic, body) = match result {
                Ok(body) => {
                    tracing::info!(
                        client_id = requester.client_id,
                        ?operation,
                        "provisioning request accepted"
                    );
                    (accepted, body)
                }
                Err(error) => {
                    tracing::info!(
                        client_id = requester.client_id,
                        ?operation,
                        status = error.status_code(),
                        code = error.error_code(),
                        "provisioning request rejected: {error}"
                    );
                    (rejected, error.to_response().to_json())
                }
            };
            reply::send(
                &service.inner.broker,
                Some(&requester.session),
                Audience::SubscribedRequester,
                topic,
                Bytes::from(body),
            );
        });
    }
}

/// What RegisterThing needs from the registry: the template, its hook, the
/// token (checked: known, not expired) and its certificate's PEM.
fn lookup(
    store: &Store,
    template: &str,
    token: &str,
    now: i64,
) -> Result<
    (
        ProvisioningTemplate,
        Option<String>,
        crate::store::TokenRecord,
        String,
    ),
    ProvisioningError,
> {
    let store_error = |e: StoreError| internal(format!("cannot read the registry: {e}"));
    let record = store
        .template(template)
        .map_err(store_error)?
        .ok_or_else(|| ProvisioningError::TemplateNotFound {
            name: template.to_owned(),
        })?;
    if !record.enabled {
        return Err(ProvisioningError::TemplateFailure(format!(
            "the provisioning template {template} is disabled"
        )));
    }
    let parsed = ProvisioningTemplate::parse(&record.body)
        .map_err(|e| internal(format!("stored template {template} no longer parses: {e}")))?;
    let token = store
        .ownership_token(token)
        .map_err(store_error)?
        .ok_or(ProvisioningError::InvalidToken)?;
    if token.expires_at <= now {
        let deleted = store.remove_expired_tokens(now).map_err(store_error)?;
        tracing::info!(certificates = ?deleted, "expired ownership token refused; its certificate is deleted");
        return Err(ProvisioningError::ExpiredToken);
    }
    let certificate = store
        .certificate(&token.certificate_id)
        .map_err(store_error)?
        .ok_or(ProvisioningError::InvalidToken)?;
    Ok((parsed, record.hook_command, token, certificate.pem))
}

/// What a failed registration answers.
fn registration_error(error: TemplateError) -> ProvisioningError {
    match error {
        TemplateError::TokenUsed => ProvisioningError::InvalidToken,
        TemplateError::Conflict(why) => ProvisioningError::ResourceConflict(why),
        TemplateError::Store(
            e @ (StoreError::InvalidThingName { .. }
            | StoreError::InvalidAttribute { .. }
            | StoreError::InvalidPolicyName { .. }
            | StoreError::MalformedPolicy { .. }
            | StoreError::PolicyNotFound(_)
            | StoreError::PolicyLimit { .. }),
        ) => ProvisioningError::TemplateFailure(e.to_string()),
        other => internal(format!("cannot write the registration: {other}")),
    }
}

/// Logs why the service failed and answers 500.
fn internal(why: String) -> ProvisioningError {
    tracing::error!("fleet provisioning failure: {why}");
    ProvisioningError::InternalFailure
}

fn to_json(body: &impl Serialize) -> Result<Vec<u8>, ProvisioningError> {
    serde_json::to_vec(body).map_err(|e| internal(format!("cannot encode a reply: {e}")))
}

/// A new ownership token: random, hex.
fn new_token() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::fill(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_hex() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 2 * TOKEN_BYTES);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn registry_refusals_become_template_failures_and_the_rest_internal() {
        let used = registration_error(TemplateError::TokenUsed);
        assert_eq!(used, ProvisioningError::InvalidToken);
        let missing =
            registration_error(TemplateError::Store(StoreError::PolicyNotFound("p".into())));
        assert_eq!(missing.error_code(), "InvalidTemplate");
        let conflict = registration_error(TemplateError::Conflict("x".into()));
        assert_eq!(conflict.status_code(), 409);
        let other = registration_error(TemplateError::Store(StoreError::CertificateNotFound(
            "c".into(),
        )));
        assert_eq!(other, ProvisioningError::InternalFailure);
    }
}
