//! Cloud-side access to the emulator's shadows.

use bytes::Bytes;
use iotcore_model::names::{NameError, validate_shadow_name, validate_thing_name};
use iotcore_model::shadow::{
    DeleteAccepted, GetAccepted, ShadowError, TokenRequest, UpdateAccepted,
};
use iotcore_model::topics::ShadowOperation;

use super::answer::Accepted;
use super::{ShadowKey, ShadowService};

/// Why a cloud-side shadow call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShadowApiError {
    /// The service refused the request; the error carries AWS's code and message.
    #[error("the shadow service refused the request: {} {}", .0.code(), .0)]
    Rejected(ShadowError),
    /// The thing or shadow name breaks AWS's rules.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// The emulator stopped before answering.
    #[error("the emulator stopped before the shadow service answered; start it again")]
    Stopped,
}

/// The emulator's shadows as the cloud side sees them (AWS's data-plane
/// GetThingShadow, UpdateThingShadow and DeleteThingShadow): an application
/// changing `desired` while a device listens on MQTT. Updates and deletes made
/// here publish the same accepted, delta and documents messages as MQTT
/// requests do; errors are returned, not published. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Shadows {
    service: ShadowService,
}

impl Shadows {
    pub(crate) fn new(service: ShadowService) -> Self {
        Shadows { service }
    }

    fn key(thing: &str, shadow: Option<&str>) -> Result<ShadowKey, ShadowApiError> {
        validate_thing_name(thing)?;
        if let Some(shadow) = shadow {
            validate_shadow_name(shadow)?;
        }
        Ok(ShadowKey {
            thing: thing.to_owned(),
            shadow: shadow.map(str::to_owned),
        })
    }

    async fn call(
        &self,
        thing: &str,
        shadow: Option<&str>,
        operation: ShadowOperation,
        payload: Bytes,
    ) -> Result<Accepted, ShadowApiError> {
        let key = Self::key(thing, shadow)?;
        self.service.call(key, operation, payload).await
    }

    /// The document of `thing`'s shadow `shadow` (`None`: the classic shadow).
    pub async fn get(
        &self,
        thing: &str,
        shadow: Option<&str>,
    ) -> Result<GetAccepted, ShadowApiError> {
        match self
            .call(thing, shadow, ShadowOperation::Get, Bytes::new())
            .await?
        {
            Accepted::Get(reply) => Ok(reply),
            other => Err(mismatch(&other)),
        }
    }

    /// Applies an update request (`{"state":{"desired":…}}`, as on MQTT).
    pub async fn update(
        &self,
        thing: &str,
        shadow: Option<&str>,
        request: &[u8],
    ) -> Result<UpdateAccepted, ShadowApiError> {
        let payload = Bytes::copy_from_slice(request);
        match self
            .call(thing, shadow, ShadowOperation::Update, payload)
            .await?
        {
            Accepted::Update(reply) => Ok(reply),
            other => Err(mismatch(&other)),
        }
    }

    /// Deletes the shadow.
    pub async fn delete(
        &self,
        thing: &str,
        shadow: Option<&str>,
    ) -> Result<DeleteAccepted, ShadowApiError> {
        let payload = Bytes::from(TokenRequest::default().to_json());
        match self
            .call(thing, shadow, ShadowOperation::Delete, payload)
            .await?
        {
            Accepted::Delete(reply) => Ok(reply),
            other => Err(mismatch(&other)),
        }
    }
}

/// The worker answers each operation with its own kind of reply; anything else
/// is a bug reported as a service failure rather than a panic.
fn mismatch(reply: &Accepted) -> ShadowApiError {
    tracing::error!(
        ?reply,
        "the shadow worker answered with another operation's reply"
    );
    ShadowApiError::Rejected(ShadowError::InternalFailure)
}
