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
//! The shadow client is a typed layer over the [service framework](crate::service),
//! which does the following for every service alike:
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
//!   that time; dropping a request's future cancels it.
//! * **Reconnects**: a request the broker acknowledged whose reply has not
//!   come when the connection drops is not sent again (an update is not
//!   idempotent). If the client comes back without the broker's session its
//!   reply is lost, and the request fails at once with
//!   [`ShadowErrorKind::ConnectionLost`]: read the shadow before repeating
//!   an update. With a persistent session it keeps waiting for the reply.
//! * **Errors** ([`ShadowError`]) carry AWS's code, message and `clientToken`
//!   for a rejection ([`ShadowError::is_version_conflict`],
//!   [`ShadowError::is_not_found`]), and say what to check otherwise; the
//!   framework's [`ServiceError`](crate::service::ServiceError) is inside
//!   ([`ShadowError::service_error`]).
//!
//! The reply and event types are `iotcore-model`'s, re-exported here.
//!
//! [`Client::shadow`]: crate::Client::shadow
//! [`Client::named_shadow`]: crate::Client::named_shadow
//! [`Client::thing_shadow`]: crate::Client::thing_shadow

mod error;
mod manager;
mod streams;
mod typed;

use std::time::Duration;

use iotcore_model::topics::{TopicError, shadow_topic_prefix};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

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
pub use streams::{Deltas, Documents};
pub use typed::{TypedDocument, TypedShadow};

use crate::client::Client;
use crate::service::{Correlation, Rejection, Request, Service, ServiceChannel, json_kind};
use iotcore_model::shadow::Section;

/// How long a shadow request waits for its reply unless
/// [`ShadowClient::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = crate::service::DEFAULT_TIMEOUT;

/// Shadow requests one connection keeps in flight at most. AWS IoT Core
/// refuses the 11th with 429 (docs/aws-iot-core-behaviour.md §3.5); further
/// requests wait for a reply to free a place.
pub const MAX_IN_FLIGHT_REQUESTS: usize = 10;

/// The Device Shadow service, for the [service framework](crate::service).
static SHADOW: Service = Service::new("Device Shadow", Correlation::ClientToken)
    .with_max_in_flight(MAX_IN_FLIGHT_REQUESTS)
    .with_advice(advice);

/// What to do about a rejection, by AWS's code.
fn advice(rejection: &Rejection) -> Option<&'static str> {
    Some(match rejection.status_code()? {
        404 => "the shadow does not exist yet (an update creates it)",
        409 => "another update changed the shadow first; read it again and retry",
        413 => "the state is larger than AWS's 8 KB limit",
        429 => "too many requests in flight on this connection; retry later",
        400 => "fix the request",
        _ => return None,
    })
}

/// One shadow of one thing, reached through a [`Client`]'s connection.
///
/// Cheap to clone; every handle on the same shadow of the same client shares
/// one set of reply subscriptions. See the [module documentation](self) for
/// how requests, correlation and timeouts work.
#[derive(Clone)]
pub struct ShadowClient {
    client: Client,
    id: ShadowId,
    /// The shadow's topic prefix and its channel, or why its names are invalid.
    channel: Result<(String, ServiceChannel), TopicError>,
    timeout: Duration,
}

impl ShadowClient {
    pub(crate) fn new(client: Client, thing: String, name: Option<String>) -> Self {
        let channel = shadow_topic_prefix(&thing, name.as_deref()).map(|prefix| {
            let filters = [
                ShadowOperation::Get,
                ShadowOperation::Update,
                ShadowOperation::Delete,
            ]
            .map(|operation| format!("{prefix}/{operation}/+"));
            let channel = ServiceChannel::new(&client, &SHADOW, filters);
            (prefix, channel)
        });
        ShadowClient {
            client,
            id: ShadowId::new(thing, name),
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
        self.call(ShadowOperation::Get, json!({})).await
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
        self.call(ShadowOperation::Update, request).await
    }

    /// Deletes the shadow. Its version is kept: an update within 48 hours
    /// continues from it. Fails with 404 when there is no shadow.
    pub async fn delete(&self) -> Result<DeleteAccepted, ShadowError> {
        self.call(ShadowOperation::Delete, json!({})).await
    }

    /// A stream of the shadow's delta events from now on. Resolves once the
    /// reply topics are subscribed, so no event published afterwards is missed.
    pub async fn deltas(&self) -> Result<Deltas, ShadowError> {
        let (_, channel) = self.channel(ShadowOperation::Update)?;
        let deltas = Deltas::new(channel.listen(streams::delta));
        self.subscribe(&channel).await?;
        Ok(deltas)
    }

    /// A stream of the shadow's documents events (previous and current
    /// document after each update) from now on; like [`deltas`](Self::deltas).
    pub async fn documents(&self) -> Result<Documents, ShadowError> {
        let (_, channel) = self.channel(ShadowOperation::Update)?;
        let documents = Documents::new(channel.listen(streams::documents));
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
        let (_, channel) = self.channel(operation)?;
        channel
            .unsubscribe()
            .await
            .map_err(|e| ShadowError::service(operation, &self.id, e))
    }

    /// The same shadow with the state as the application's type `T`.
    pub fn typed<T: Serialize + DeserializeOwned>(&self) -> TypedShadow<T> {
        TypedShadow::new(self.clone())
    }

    /// The shadow's topic prefix and its channel with this handle's timeout.
    fn channel(&self, operation: ShadowOperation) -> Result<(&str, ServiceChannel), ShadowError> {
        match &self.channel {
            Ok((prefix, channel)) => Ok((prefix, channel.clone().with_timeout(self.timeout))),
            Err(e) => Err(ShadowError::invalid_name(e.clone()).about(operation, &self.id)),
        }
    }

    /// `value` as a patch of `section`.
    fn patch(&self, value: impl Serialize, section: Section) -> Result<StatePatch, ShadowError> {
        state_patch(value, section).map_err(|e| e.about(ShadowOperation::Update, &self.id))
    }

    /// Subscribes the reply topics within the timeout.
    async fn subscribe(&self, channel: &ServiceChannel) -> Result<(), ShadowError> {
        channel
            .subscribe()
            .await
            .map_err(|e| ShadowError::service(ShadowOperation::Update, &self.id, e))
    }

    /// One request with `body` (its `clientToken` set by the framework), and
    /// its typed reply.
    async fn call<T: DeserializeOwned>(
        &self,
        operation: ShadowOperation,
        body: impl Serialize,
    ) -> Result<T, ShadowError> {
        let (prefix, channel) = self.channel(operation)?;
        let request = Request::new(operation.as_str(), format!("{prefix}/{operation}"), body);
        channel
            .call(request)
            .await
            .map_err(|e| ShadowError::service(operation, &self.id, e))
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
