//! Device shadows: the JSON document AWS IoT Core keeps for each thing, with
//! the state the application wants (`desired`) and the state the device has
//! (`reported`).
//!
//! Three levels, pick the one that fits:
//!
//! * [`ShadowClient`] (from [`Client::shadow`], [`Client::named_shadow`] or
//!   [`Client::thing_shadow`]): the service's requests — [`get`](ShadowClient::get),
//!   [`update_reported`](ShadowClient::update_reported),
//!   [`update_desired`](ShadowClient::update_desired),
//!   [`update`](ShadowClient::update) (with an expected version),
//!   [`delete`](ShadowClient::delete) — and its events,
//!   [`deltas`](ShadowClient::deltas) and [`documents`](ShadowClient::documents).
//! * [`TypedShadow`] (from [`ShadowClient::typed`]): the same with the
//!   application's own serde type for the state.
//! * [`ShadowManager`]: a synchronised local copy for a device — it reads the
//!   shadow at start and after every reconnect, hands each desired change to
//!   the application, and reports back with the version it knows, retrying
//!   after a fresh read when another update came first (409).
//!
//! ```no_run
//! # async fn demo(client: iotcore::Client) -> Result<(), iotcore::shadow::ShadowError> {
//! use futures_util::StreamExt;
//! use serde_json::json;
//!
//! let shadow = client.shadow();                       // $aws/things/<thing>/shadow
//! match shadow.get().await {
//!     Ok(document) => tracing::info!(version = document.version, "shadow read"),
//!     Err(e) if e.is_not_found() => tracing::info!("no shadow yet"),
//!     Err(e) => return Err(e),
//! }
//! let accepted = shadow.update_reported(json!({"firmware": "1.2"})).await?;
//! tracing::info!(version = accepted.version, "reported");
//! let mut deltas = shadow.deltas().await?;
//! while let Some(delta) = deltas.next().await {
//!     tracing::info!(?delta.state, "the application wants a change");
//! }
//! # Ok(()) }
//! ```
//!
//! # How requests work
//!
//! * **Replies are subscribed before the first request is published**: the
//!   first request on a shadow subscribes to the wildcard reply filters
//!   `…/get/+`, `…/update/+` and `…/delete/+` once; they stay for the
//!   client's life and are restored after a reconnect like every other
//!   subscription. Later requests publish at once.
//! * **Correlation by `clientToken`**: every request carries a token unique to
//!   this client (a random prefix and a counter; any token in an
//!   [`UpdateRequest`] is replaced). Replies are matched by token, so any number of
//!   requests may be in flight, and replies meant for another client working
//!   on the same shadow are never taken for ours.
//! * **At most [`MAX_IN_FLIGHT_REQUESTS`] in flight** per client, AWS's limit
//!   per connection; further requests wait for a place instead of being
//!   refused with 429.
//! * **Subscriptions**: each shadow a client uses holds three subscriptions
//!   until [`ShadowClient::unsubscribe`]; AWS IoT Core allows 50 per
//!   connection, which matters to an application working on many things.
//! * **Timeouts**: each request, from subscribing to the reply, is bounded by
//!   the handle's timeout ([`DEFAULT_TIMEOUT`], see [`ShadowClient::with_timeout`]).
//!   A request made while offline waits in the client's offline queue within
//!   that time.
//! * **Errors** ([`ShadowError`]) carry AWS's code, message and `clientToken`
//!   for a rejection ([`ShadowError::is_version_conflict`],
//!   [`ShadowError::is_not_found`]), and say what to check otherwise.
//!
//! The reply and event types are `iotcore-model`'s, re-exported here.
//!
//! [`Client::shadow`]: crate::Client::shadow
//! [`Client::named_shadow`]: crate::Client::named_shadow
//! [`Client::thing_shadow`]: crate::Client::thing_shadow

mod channel;
mod error;
mod manager;
mod registry;
mod streams;
mod typed;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use iotcore_model::names::NameError;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::{ShadowError, ShadowErrorKind, ShadowId};
pub use iotcore_model::shadow::json::Object;
pub use iotcore_model::shadow::{
    DeleteAccepted, DeltaEvent, DocumentsEvent, ErrorResponse, GetAccepted, SectionMetadata,
    ShadowDocument, ShadowState, StatePatch, StateWithDelta, UpdateAccepted, UpdateRequest,
    UpdateState, UpdatedSections,
};
pub use iotcore_model::topics::ShadowOperation;
pub use manager::{
    ChangeSource, DesiredChange, DesiredChanges, LocalShadow, MAX_CONFLICT_RETRIES, ShadowManager,
};
pub use registry::MAX_IN_FLIGHT_REQUESTS;
pub use streams::{Deltas, Documents};
pub use typed::{TypedDocument, TypedShadow};

pub(crate) use registry::Registry;

use self::channel::{Channel, Reply};
use crate::QoS;
use crate::client::Client;
use crate::error::Error;
use iotcore_model::shadow::{Section, TokenRequest};

/// How long a shadow request waits for its reply unless
/// [`ShadowClient::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// One shadow of one thing, reached through a [`Client`]'s connection.
///
/// Cheap to clone; every handle on the same shadow of the same client shares
/// one set of reply subscriptions. See the [module documentation](self) for
/// how requests, correlation and timeouts work.
#[derive(Clone)]
pub struct ShadowClient {
    client: Client,
    id: ShadowId,
    channel: Result<Arc<Channel>, NameError>,
    timeout: Duration,
}

impl ShadowClient {
    pub(crate) fn new(client: Client, thing: String, name: Option<String>) -> Self {
        let id = ShadowId::new(thing, name);
        let channel = client.shadow_registry().channel(&id);
        ShadowClient {
            client,
            id,
            channel,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same handle with another per-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Which shadow this is.
    pub fn id(&self) -> &ShadowId {
        &self.id
    }

    /// The client the requests go through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Reads the whole document (`…/get`): desired, reported, their delta,
    /// metadata and version. Fails with 404 ([`ShadowError::is_not_found`])
    /// when the shadow does not exist.
    pub async fn get(&self) -> Result<GetAccepted, ShadowError> {
        self.call(ShadowOperation::Get, |token| {
            TokenRequest::with_client_token(token).to_json()
        })
        .await
    }

    /// Merges `reported` into the reported state (`null` values delete keys;
    /// `null` as a whole removes the section). `reported` must serialize to a
    /// JSON object or `null`.
    pub async fn update_reported(
        &self,
        reported: impl Serialize,
    ) -> Result<UpdateAccepted, ShadowError> {
        let patch = self.patch(reported, Section::Reported)?;
        self.update(UpdateRequest {
            state: UpdateState {
                reported: patch,
                ..UpdateState::default()
            },
            ..UpdateRequest::default()
        })
        .await
    }

    /// Merges `desired` into the desired state, like
    /// [`update_reported`](Self::update_reported) (the cloud side's request).
    pub async fn update_desired(
        &self,
        desired: impl Serialize,
    ) -> Result<UpdateAccepted, ShadowError> {
        let patch = self.patch(desired, Section::Desired)?;
        self.update(UpdateRequest {
            state: UpdateState {
                desired: patch,
                ..UpdateState::default()
            },
            ..UpdateRequest::default()
        })
        .await
    }

    /// Sends an update request as given: both sections, and with
    /// [`UpdateRequest::with_version`] the version the shadow must be at
    /// (else 409, [`ShadowError::is_version_conflict`]). Its `clientToken` is
    /// replaced by the client's own.
    pub async fn update(&self, request: UpdateRequest) -> Result<UpdateAccepted, ShadowError> {
        self.call(ShadowOperation::Update, move |token| {
            request.with_client_token(token).to_json()
        })
        .await
    }

    /// Deletes the shadow. Its version is kept: an update within 48 hours
    /// continues from it. Fails with 404 when there is no shadow.
    pub async fn delete(&self) -> Result<DeleteAccepted, ShadowError> {
        self.call(ShadowOperation::Delete, |token| {
            TokenRequest::with_client_token(token).to_json()
        })
        .await
    }

    /// A stream of the shadow's delta events from now on. Resolves once the
    /// reply topics are subscribed, so no event published afterwards is missed.
    pub async fn deltas(&self) -> Result<Deltas, ShadowError> {
        let channel = self.channel(ShadowOperation::Update)?;
        let deltas = Deltas::new(channel.listen_deltas());
        self.subscribe(&channel).await?;
        Ok(deltas)
    }

    /// A stream of the shadow's documents events (previous and current
    /// document after each update) from now on; like [`deltas`](Self::deltas).
    pub async fn documents(&self) -> Result<Documents, ShadowError> {
        let channel = self.channel(ShadowOperation::Update)?;
        let documents = Documents::new(channel.listen_documents());
        self.subscribe(&channel).await?;
        Ok(documents)
    }

    /// Unsubscribes from the shadow's reply topics, for an application that
    /// is done with this shadow: each shadow a client has used holds three
    /// subscriptions, and AWS IoT Core allows 50 per connection. The next
    /// request or event stream on the shadow subscribes again; open event
    /// streams stay open but receive nothing meanwhile. A request still
    /// waiting for its reply may then time out.
    pub async fn unsubscribe(&self) -> Result<(), ShadowError> {
        let operation = ShadowOperation::Update;
        let channel = self.channel(operation)?;
        match tokio::time::timeout(self.timeout, channel.unsubscribe(&self.client)).await {
            Ok(result) => result.map_err(|e| ShadowError::client(operation, &self.id, e)),
            Err(_) => Err(ShadowError::timeout(operation, &self.id, self.timeout)),
        }
    }

    /// The same shadow with the state as the application's type `T`.
    pub fn typed<T: Serialize + DeserializeOwned>(&self) -> TypedShadow<T> {
        TypedShadow::new(self.clone())
    }

    fn channel(&self, operation: ShadowOperation) -> Result<Arc<Channel>, ShadowError> {
        self.channel
            .clone()
            .map_err(|e| ShadowError::invalid_name(e).about(operation, &self.id))
    }

    /// `value` as a patch of `section`.
    fn patch(&self, value: impl Serialize, section: Section) -> Result<StatePatch, ShadowError> {
        state_patch(value, section).map_err(|e| e.about(ShadowOperation::Update, &self.id))
    }

    /// Subscribes the reply topics within the timeout.
    async fn subscribe(&self, channel: &Arc<Channel>) -> Result<(), ShadowError> {
        let operation = ShadowOperation::Update;
        match tokio::time::timeout(self.timeout, channel.ensure_subscribed(&self.client)).await {
            Ok(result) => result.map_err(|e| ShadowError::client(operation, &self.id, e)),
            Err(_) => Err(ShadowError::timeout(operation, &self.id, self.timeout)),
        }
    }

    /// One request: the payload made with our token, and its typed reply.
    async fn call<T: DeserializeOwned>(
        &self,
        operation: ShadowOperation,
        payload: impl FnOnce(String) -> Vec<u8>,
    ) -> Result<T, ShadowError> {
        let channel = self.channel(operation)?;
        let reply = tokio::time::timeout(self.timeout, self.exchange(&channel, operation, payload))
            .await
            .map_err(|_| ShadowError::timeout(operation, &self.id, self.timeout))??;
        if reply.accepted {
            serde_json::from_slice(&reply.payload)
                .map_err(|e| ShadowError::invalid_reply(operation, &self.id, e))
        } else {
            let response: ErrorResponse = serde_json::from_slice(&reply.payload)
                .map_err(|e| ShadowError::invalid_reply(operation, &self.id, e))?;
            Err(ShadowError::rejected(operation, &self.id, response))
        }
    }

    async fn exchange(
        &self,
        channel: &Arc<Channel>,
        operation: ShadowOperation,
        payload: impl FnOnce(String) -> Vec<u8>,
    ) -> Result<Reply, ShadowError> {
        let failed = |e: Error| ShadowError::client(operation, &self.id, e);
        channel
            .ensure_subscribed(&self.client)
            .await
            .map_err(failed)?;
        let registry = self.client.shadow_registry();
        let _place = registry
            .in_flight()
            .acquire()
            .await
            .map_err(|_| failed(Error::closed()))?;
        let token = registry.next_token();
        let (reply, _expected) = channel.expect(token.clone(), operation);
        let topic = channel.request_topic(operation);
        tracing::debug!(shadow = %self.id, %operation, token, "shadow request");
        self.client
            .publish(topic, Bytes::from(payload(token)), QoS::AtLeastOnce)
            .await
            .map_err(failed)?;
        reply.await.map_err(|_| failed(Error::closed()))
    }
}

/// `value` as the patch of `section`: a JSON object merges, `null` removes
/// the section; anything else is refused before sending.
pub(crate) fn state_patch(
    value: impl Serialize,
    section: Section,
) -> Result<StatePatch, ShadowError> {
    let key = section.key();
    let value = serde_json::to_value(value).map_err(|e| {
        ShadowError::invalid_state(format!("the {key} state cannot be written as JSON: {e}"))
    })?;
    let kind = json_kind(&value);
    StatePatch::from_value(value, section).map_err(|_| {
        ShadowError::invalid_state(format!(
            "the {key} state must be a JSON object (or null to remove the section), not {kind}"
        ))
    })
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

impl std::fmt::Debug for ShadowClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShadowClient")
            .field("shadow", &self.id)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn states_must_be_objects_or_null() {
        assert_eq!(
            state_patch(json!({"a": 1}), Section::Reported).unwrap(),
            StatePatch::Merge(json!({"a": 1}).as_object().unwrap().clone())
        );
        assert_eq!(
            state_patch(serde_json::Value::Null, Section::Desired).unwrap(),
            StatePatch::Clear
        );
        let e = state_patch(json!([1, 2]), Section::Desired).unwrap_err();
        assert_eq!(e.kind(), ShadowErrorKind::InvalidRequest);
        assert!(
            e.to_string()
                .contains("desired state must be a JSON object"),
            "{e}"
        );
        assert!(e.to_string().contains("not an array"), "{e}");
        let e = state_patch(7, Section::Reported).unwrap_err();
        assert!(e.to_string().contains("not a number"), "{e}");
    }

    #[test]
    fn handles_and_their_futures_can_move_between_tasks() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        fn assert_send<T: Send>(_: &T) {}
        assert_send_sync::<ShadowClient>();
        assert_send_sync::<TypedShadow<serde_json::Value>>();
        assert_send_sync::<ShadowManager>();
        assert_send_sync::<Deltas>();
        assert_send_sync::<DesiredChanges>();
        let client: Option<Client> = None;
        if let Some(client) = client {
            let shadow = client.shadow();
            assert_send(&shadow.get());
            assert_send(&shadow.update_reported(json!({})));
            assert_send(&shadow.deltas());
            assert_send(&shadow.typed::<serde_json::Value>().get());
            assert_send(&ShadowManager::start(shadow.clone()));
        }
        let manager: Option<ShadowManager> = None;
        if let Some(manager) = &manager {
            assert_send(&manager.report(json!({})));
            assert_send(&manager.refresh());
        }
    }

    #[test]
    fn unserializable_states_are_refused() {
        let mut map = std::collections::HashMap::new();
        map.insert((1, 2), 3);
        let e = state_patch(map, Section::Reported).unwrap_err();
        assert_eq!(e.kind(), ShadowErrorKind::InvalidRequest);
        assert!(e.to_string().contains("cannot be written as JSON"), "{e}");
    }
}
