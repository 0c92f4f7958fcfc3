//! The three MQTT APIs of fleet provisioning over a connected client.

use std::collections::BTreeMap;
use std::time::Duration;

use iotcore_model::provisioning::{
    CreateCertificateFromCsrAccepted, CreateCertificateFromCsrRequest,
    CreateKeysAndCertificateAccepted, PayloadFormat, ProvisioningApi, ProvisioningTopic,
    ProvisioningTopicKind, RegisterThingAccepted, RegisterThingRequest,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::error::ProvisioningError;
use crate::client::Client;
use crate::service::{Correlation, Rejection, Request, Service, ServiceChannel};

/// How long each request waits for its reply unless
/// [`IdentityClient::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Fleet provisioning, for the [service framework](crate::service): no
/// `clientToken`, so replies are matched by topic.
static PROVISIONING: Service =
    Service::new("fleet provisioning", Correlation::Topic).with_advice(advice);

/// What to do about a rejection, by AWS's `errorCode`.
fn advice(rejection: &Rejection) -> Option<&'static str> {
    Some(match rejection.error_code()? {
        "InvalidCertificateOwnershipToken" => {
            "the token is empty, unknown, used or older than one hour; create a new certificate \
             and register again"
        }
        "ResourceNotFound" => "no provisioning template has that name",
        "InvalidParameters" => "pass every parameter the template needs",
        "InvalidCsr" => {
            "send a PEM PKCS#10 request signed by an RSA ≥ 2048 or ECDSA P-256/384/521 key"
        }
        "AccessDenied" => "the template's pre-provisioning hook refused this device",
        "InvalidTemplate" => "the template cannot be applied with these parameters",
        _ => return None,
    })
}

/// Fleet provisioning's MQTT API (AWS's `IotIdentityClient`) over a client
/// connected with a claim certificate, on the [service framework](crate::service).
///
/// * The first request on an API subscribes to its exact `/accepted` and
///   `/rejected` topics and waits for both SUBACKs **before publishing**; the
///   subscriptions stay for the next requests, of this handle and any other
///   on the same client.
/// * These APIs have no `clientToken`: replies are matched by topic, so
///   requests to one API run one at a time per client (a second caller
///   waits its turn), and a reply that comes after its request gave up is
///   discarded unless the next request is already waiting.
/// * Each request (subscribing and waiting for its turn included) is
///   bounded by the handle's timeout.
///
/// Requests are JSON (`…/json`). Cheap to clone.
#[derive(Clone)]
pub struct IdentityClient {
    client: Client,
    timeout: Duration,
}

impl IdentityClient {
    /// The API over `client` (connected with a claim certificate whose policy
    /// allows the provisioning topics).
    pub fn new(client: &Client) -> IdentityClient {
        IdentityClient {
            client: client.clone(),
            timeout: DEFAULT_TIMEOUT,
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
        self.request(ProvisioningApi::CreateCertificateFromCsr, request)
            .await
    }

    /// CreateKeysAndCertificate: the service makes a key and a certificate and
    /// sends both (prefer [`create_certificate_from_csr`](Self::create_certificate_from_csr),
    /// which keeps the key on the device).
    pub async fn create_keys_and_certificate(
        &self,
    ) -> Result<CreateKeysAndCertificateAccepted, ProvisioningError> {
        self.request(ProvisioningApi::CreateKeysAndCertificate, json!({}))
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
        self.request(ProvisioningApi::RegisterThing { template }, request)
            .await
    }

    async fn request<T: DeserializeOwned>(
        &self,
        api: ProvisioningApi<'_>,
        body: impl Serialize,
    ) -> Result<T, ProvisioningError> {
        let topic =
            ProvisioningTopic::new(api, PayloadFormat::Json, ProvisioningTopicKind::Request)
                .map_err(|e| ProvisioningError::InvalidRequest(e.to_string()))?;
        let reply_topic = |kind| topic.with_kind(kind).to_topic();
        let channel = ServiceChannel::new(
            &self.client,
            &PROVISIONING,
            [
                reply_topic(ProvisioningTopicKind::Accepted),
                reply_topic(ProvisioningTopicKind::Rejected),
            ],
        )
        .with_timeout(self.timeout);
        let request = Request::new(api.name(), topic.to_topic(), body);
        Ok(channel.call(request).await?)
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
