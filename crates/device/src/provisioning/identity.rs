//! The three MQTT APIs of fleet provisioning over a connected client.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use iotcore_model::provisioning::{
    CreateCertificateFromCsrAccepted, CreateCertificateFromCsrRequest,
    CreateKeysAndCertificateAccepted, ErrorResponse, PayloadFormat, ProvisioningApi,
    ProvisioningTopic, ProvisioningTopicKind, RegisterThingAccepted, RegisterThingRequest,
};
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use super::error::ProvisioningError;
use crate::client::Client;
use crate::streams::Subscription;
use crate::{Error, QoS};

/// How long each request waits for its reply unless
/// [`IdentityClient::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The accepted and rejected streams of one request topic.
struct Replies {
    accepted: Subscription,
    rejected: Subscription,
}

/// Fleet provisioning's MQTT API (AWS's `IotIdentityClient`) over a client
/// connected with a claim certificate.
///
/// * The first request on an API subscribes to its exact `/accepted` and
///   `/rejected` topics and waits for both SUBACKs **before publishing**; the
///   subscriptions stay for the next requests.
/// * These APIs have no `clientToken`: replies are matched by topic, so
///   requests run one at a time per client (a second caller waits), and any
///   reply left over from a request that timed out is discarded before the
///   next request is published.
/// * Each request (subscribing included) is bounded by the handle's timeout.
///
/// Requests are JSON (`…/json`). Cheap to clone.
#[derive(Clone)]
pub struct IdentityClient {
    client: Client,
    timeout: Duration,
    replies: Arc<Mutex<HashMap<String, Replies>>>,
}

impl IdentityClient {
    /// The API over `client` (connected with a claim certificate whose policy
    /// allows the provisioning topics).
    pub fn new(client: &Client) -> IdentityClient {
        IdentityClient {
            client: client.clone(),
            timeout: DEFAULT_TIMEOUT,
            replies: Arc::default(),
        }
    }

    /// The same handle with another per-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> IdentityClient {
        self.timeout = timeout;
        self
    }

    /// CreateCertificateFromCsr: the service signs `csr_pem` (a PEM PKCS#10
    /// request made on the device) and returns the certificate, its id and an
    /// ownership token for [`register_thing`](Self::register_thing) (valid one
    /// hour). The certificate is `PENDING_ACTIVATION` until then.
    pub async fn create_certificate_from_csr(
        &self,
        csr_pem: &str,
    ) -> Result<CreateCertificateFromCsrAccepted, ProvisioningError> {
        let request = CreateCertificateFromCsrRequest {
            certificate_signing_request: csr_pem.to_owned(),
        };
        self.request(ProvisioningApi::CreateCertificateFromCsr, request.to_json())
            .await
    }

    /// CreateKeysAndCertificate: the service makes a key and a certificate and
    /// sends both (prefer [`create_certificate_from_csr`](Self::create_certificate_from_csr),
    /// which keeps the key on the device).
    pub async fn create_keys_and_certificate(
        &self,
    ) -> Result<CreateKeysAndCertificateAccepted, ProvisioningError> {
        self.request(ProvisioningApi::CreateKeysAndCertificate, b"{}".to_vec())
            .await
    }

    /// RegisterThing: provisions a thing with template `template`, the
    /// certificate of `token`, and the template's `parameters`.
    pub async fn register_thing(
        &self,
        template: &str,
        token: &str,
        parameters: &BTreeMap<String, String>,
    ) -> Result<RegisterThingAccepted, ProvisioningError> {
        let request = RegisterThingRequest {
            certificate_ownership_token: token.to_owned(),
            parameters: parameters.clone(),
        };
        self.request(
            ProvisioningApi::RegisterThing { template },
            request.to_json(),
        )
        .await
    }

    async fn request<T: DeserializeOwned>(
        &self,
        api: ProvisioningApi<'_>,
        payload: Vec<u8>,
    ) -> Result<T, ProvisioningError> {
        let operation = api.name();
        let topic =
            ProvisioningTopic::new(api, PayloadFormat::Json, ProvisioningTopicKind::Request)
                .map_err(|e| ProvisioningError::InvalidRequest(e.to_string()))?;
        let exchange = async {
            let mut replies = self.replies.lock().await;
            let key = topic.to_topic();
            if !replies.contains_key(&key) {
                let subscribe = |kind| {
                    self.client
                        .subscribe(topic.with_kind(kind).to_topic(), QoS::AtLeastOnce)
                };
                let accepted = subscribe(ProvisioningTopicKind::Accepted).await;
                let rejected = subscribe(ProvisioningTopicKind::Rejected).await;
                let mqtt = |source: Error| ProvisioningError::Mqtt { operation, source };
                replies.insert(
                    key.clone(),
                    Replies {
                        accepted: accepted.map_err(mqtt)?,
                        rejected: rejected.map_err(mqtt)?,
                    },
                );
            }
            let Some(streams) = replies.get_mut(&key) else {
                return Err(ProvisioningError::Mqtt {
                    operation,
                    source: Error::closed(),
                });
            };
            // A reply to an earlier request that timed out is not this one's.
            while let Some(Some(stale)) = streams.accepted.next().now_or_never() {
                tracing::debug!(topic = stale.topic(), "late provisioning reply discarded");
            }
            while let Some(Some(stale)) = streams.rejected.next().now_or_never() {
                tracing::debug!(topic = stale.topic(), "late provisioning reply discarded");
            }
            self.client
                .publish(key, payload, QoS::AtLeastOnce)
                .await
                .map_err(|source| ProvisioningError::Mqtt { operation, source })?;
            tokio::select! {
                accepted = streams.accepted.next() => Ok((true, accepted)),
                rejected = streams.rejected.next() => Ok((false, rejected)),
            }
        };
        let (accepted, message) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| ProvisioningError::Timeout {
                operation,
                after: self.timeout,
            })??;
        let Some(message) = message else {
            // The stream ended: the client was closed.
            self.replies.lock().await.remove(&topic.to_topic());
            return Err(ProvisioningError::Mqtt {
                operation,
                source: Error::closed(),
            });
        };
        let invalid = |e: serde_json::Error| ProvisioningError::InvalidReply {
            operation,
            detail: e.to_string(),
        };
        if accepted {
            serde_json::from_slice(message.payload()).map_err(invalid)
        } else {
            let response: ErrorResponse =
                serde_json::from_slice(message.payload()).map_err(invalid)?;
            Err(ProvisioningError::Rejected {
                operation,
                response,
            })
        }
    }
}

impl std::fmt::Debug for IdentityClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityClient")
            .field("client", &self.client)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
