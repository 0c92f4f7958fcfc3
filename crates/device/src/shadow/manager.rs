//! The shadow manager: a device's synchronised local copy of its shadow.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use iotcore_model::shadow::json::{delta, json_eq, merge};
use iotcore_model::shadow::{
    GetAccepted, Section, StatePatch, UpdateAccepted, UpdateRequest, UpdateState,
};
use iotcore_model::topics::ShadowOperation;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::{Instant, sleep_until};

use super::error::ShadowError;
use super::streams::{self, Event};
use super::typed::decode;
use super::{Object, ShadowClient, ShadowErrorKind, state_patch};
use crate::mailbox::{self, Receiver, Sender};
use crate::status::ConnectionState;

/// How many times [`ShadowManager::report`] reads the shadow again and
/// retries after a 409 `Version conflict` before giving up with it.
pub const MAX_CONFLICT_RETRIES: u32 = 5;

/// How long the manager waits before reading the shadow again when a read
/// after a reconnect failed while the connection stayed up.
const REREAD_DELAY: Duration = Duration::from_secs(5);

/// The manager's copy of the shadow at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LocalShadow {
    /// The desired state (empty when there is none).
    pub desired: Object,
    /// The reported state (empty when there is none).
    pub reported: Object,
    /// The document's version; `None` while the shadow does not exist.
    pub version: Option<u64>,
}

impl LocalShadow {
    /// The desired values reported does not match, if any.
    pub fn delta(&self) -> Option<Object> {
        let delta = delta(&self.desired, Some(&self.reported));
        (!delta.is_empty()).then_some(delta)
    }

    /// The desired state decoded as `T`.
    pub fn desired_as<T: DeserializeOwned>(&self) -> Result<T, ShadowError> {
        decode(self.desired.clone(), "desired state")
    }

    /// The reported state decoded as `T`.
    pub fn reported_as<T: DeserializeOwned>(&self) -> Result<T, ShadowError> {
        decode(self.reported.clone(), "reported state")
    }

    fn from_get(document: GetAccepted) -> Self {
        LocalShadow {
            desired: document.state.desired.unwrap_or_default(),
            reported: document.state.reported.unwrap_or_default(),
            version: Some(document.version),
        }
    }
}

/// How the manager learnt of a desired change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChangeSource {
    /// A delta event from the service.
    Delta,
    /// Reading the shadow: at start, after a reconnect (a change made while
    /// the device was offline), or after a version conflict.
    Read,
}

/// Desired values the device does not report yet, for the application to
/// apply.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredChange {
    delta: Object,
    version: u64,
    source: ChangeSource,
}

impl DesiredChange {
    /// Every desired value that differs from reported (nested paths kept),
    /// not only the latest change: a newer change supersedes older ones.
    pub fn delta(&self) -> &Object {
        &self.delta
    }

    /// The shadow's version when the change was seen.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// How the manager learnt of it.
    pub fn source(&self) -> ChangeSource {
        self.source
    }

    /// The delta decoded as `T` (a type whose fields are optional or
    /// defaulted fits any delta).
    pub fn delta_as<T: DeserializeOwned>(&self) -> Result<T, ShadowError> {
        decode(self.delta.clone(), "delta")
    }

    /// `state` (the device's state, say its last report) with the delta
    /// applied by the shadow's merge rules: what the device should become.
    /// `T` must serialize to a JSON object.
    ///
    /// A delta holds only the desired values that differ from reported, so
    /// this, not the desired section alone, is the state to apply.
    pub fn apply_to<T: Serialize + DeserializeOwned>(&self, state: &T) -> Result<T, ShadowError> {
        let mut object = match state_patch(state, Section::Reported)? {
            StatePatch::Merge(object) => object,
            _ => {
                return Err(ShadowError::invalid_state(
                    "the state to apply a delta to must serialize to a JSON object, not null",
                ));
            }
        };
        merge(&mut object, &self.delta);
        decode(object, "state with the delta applied")
    }
}

/// The stream of [`DesiredChange`]s a [`ShadowManager`] hands to the
/// application. Ends when the manager is dropped or the client closed.
///
/// Follows the crate's overflow rule (a full buffer discards its oldest
/// item); since each change carries every difference, the newest change
/// alone says what to do.
pub struct DesiredChanges {
    rx: Receiver<DesiredChange>,
}

impl DesiredChanges {
    /// How many changes were discarded because the buffer was full.
    pub fn dropped_changes(&self) -> u64 {
        self.rx.dropped()
    }
}

impl Stream for DesiredChanges {
    type Item = DesiredChange;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<DesiredChange>> {
        Pin::new(&mut self.rx).poll_next(cx)
    }
}

impl std::fmt::Debug for DesiredChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DesiredChanges").finish_non_exhaustive()
    }
}

/// What the manager knows, behind one lock.
#[derive(Default)]
struct State {
    local: LocalShadow,
    /// The version of the last change handed to the application.
    notified_version: Option<u64>,
    /// The delta of that change.
    notified_delta: Option<Object>,
}

impl State {
    /// The change to hand over for `delta` at `version`, if the application
    /// has not seen it: a delta event is new when its version is; a delta
    /// found by reading is new when both its version and its content are.
    fn change(
        &mut self,
        delta: Object,
        version: u64,
        source: ChangeSource,
    ) -> Option<DesiredChange> {
        if delta.is_empty() || self.notified_version.is_some_and(|v| version <= v) {
            return None;
        }
        let seen = self.notified_delta.as_ref().is_some_and(|d| {
            json_eq(
                &serde_json::Value::Object(d.clone()),
                &serde_json::Value::Object(delta.clone()),
            )
        });
        self.notified_version = Some(version);
        if source == ChangeSource::Read && seen {
            return None;
        }
        self.notified_delta = Some(delta.clone());
        Some(DesiredChange {
            delta,
            version,
            source,
        })
    }

    /// A delta event: its values are desired values.
    fn on_delta(&mut self, delta: Object, version: u64) -> Option<DesiredChange> {
        if self.local.version.is_none_or(|v| version >= v) {
            merge(&mut self.local.desired, &delta);
            self.local.version = Some(version);
        }
        self.change(delta, version, ChangeSource::Delta)
    }

    /// A documents event: the whole document after an update.
    fn on_documents(&mut self, current: &iotcore_model::shadow::ShadowDocument) {
        if self.local.version.is_none_or(|v| current.version() >= v) {
            self.local = LocalShadow {
                desired: current.state().desired.clone().unwrap_or_default(),
                reported: current.state().reported.clone().unwrap_or_default(),
                version: Some(current.version()),
            };
        }
    }

    /// A read: the whole document, or `None` when there is no shadow.
    fn on_read(&mut self, document: Option<GetAccepted>) -> Option<DesiredChange> {
        let Some(document) = document else {
            self.local = LocalShadow::default();
            return None;
        };
        if self.local.version.is_some_and(|v| v > document.version) {
            // Events already brought a newer document.
            return None;
        }
        let version = document.version;
        let delta = document.state.delta.clone();
        self.local = LocalShadow::from_get(document);
        delta.and_then(|delta| self.change(delta, version, ChangeSource::Read))
    }

    /// Our own report was accepted.
    fn on_reported(&mut self, patch: &StatePatch, accepted: &UpdateAccepted) {
        if self.local.version.is_some_and(|v| v >= accepted.version) {
            // A documents event already brought this version or a later one.
            return;
        }
        match patch {
            StatePatch::Merge(patch) => merge(&mut self.local.reported, patch),
            StatePatch::Clear => self.local.reported.clear(),
            StatePatch::Absent => {}
        }
        self.local.version = Some(accepted.version);
    }
}

struct Shared {
    shadow: ShadowClient,
    state: Mutex<State>,
    /// `None` once the client is closed, which ends the application's stream.
    changes: Mutex<Option<Sender<DesiredChange>>>,
    /// Reports go one at a time, so the manager never conflicts with itself.
    reporting: tokio::sync::Mutex<()>,
    conflicts: AtomicU64,
    reads: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn hand_over(&self, change: Option<DesiredChange>) {
        let Some(change) = change else { return };
        tracing::debug!(shadow = %self.shadow.id(), version = change.version, source = ?change.source, "desired change");
        if let Some(tx) = lock(&self.changes).as_ref() {
            tx.push(change);
        }
    }

    fn on_event(&self, event: Event) {
        match event {
            Event::Delta(delta) => {
                let change = lock(&self.state).on_delta(delta.state, delta.version);
                self.hand_over(change);
            }
            Event::Documents(documents) => lock(&self.state).on_documents(&documents.current),
        }
    }

    /// Reads the shadow and hands over a change the application has not seen.
    async fn read(&self) -> Result<(), ShadowError> {
        let document = match self.shadow.get().await {
            Ok(document) => Some(document),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
        self.reads.fetch_add(1, Ordering::Relaxed);
        let change = lock(&self.state).on_read(document);
        self.hand_over(change);
        Ok(())
    }
}

/// A device's synchronised local copy of one shadow.
///
/// The manager reads the shadow when it starts (a missing shadow is an empty
/// one) and after **every reconnect**, so desired changes made while the
/// device was offline are not lost; between reads it follows the service's
/// delta and documents events. Each desired value the device does not report
/// yet reaches the application once, as a [`DesiredChange`] on the stream
/// [`start`](Self::start) returns. The application applies it (for a typed
/// state, [`DesiredChange::apply_to`] gives the state to become) and reports
/// what it now has with [`report`](Self::report), which sends the version
/// the manager knows: if another update came first (409), the manager reads
/// the shadow again — handing over any new desired change — and retries, up
/// to [`MAX_CONFLICT_RETRIES`] times.
///
/// ```no_run
/// # async fn demo(client: iotcore::Client) -> Result<(), iotcore::shadow::ShadowError> {
/// use futures_util::StreamExt;
/// use iotcore::shadow::ShadowManager;
///
/// let (manager, mut changes) = ShadowManager::start(client.shadow()).await?;
/// let mut state = serde_json::json!({"led": "off", "firmware": "1.2"});
/// manager.report(&state).await?;
/// while let Some(change) = changes.next().await {
///     // Make the device match (here: just the JSON), then say so.
///     state = change.apply_to(&state)?;
///     tracing::info!(version = change.version(), delta = ?change.delta(), "desired change");
///     manager.report(change.delta()).await?;
/// }
/// # Ok(()) }
/// ```
///
/// Dropping the manager stops it; the client and its other handles carry on.
pub struct ShadowManager {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl ShadowManager {
    /// Subscribes to the shadow's events, reads it, and starts following it.
    /// A desired change already waiting is the first item of the returned
    /// stream. Fails when the first read fails (404 is not a failure).
    pub async fn start(
        shadow: ShadowClient,
    ) -> Result<(ShadowManager, DesiredChanges), ShadowError> {
        let (_, channel) = shadow.channel(ShadowOperation::Get)?;
        let events = channel.listen(streams::event);
        shadow.subscribe(&channel).await?;
        let mut status = shadow.client().status();
        status.borrow_and_update();
        let (tx, rx) = mailbox::mailbox(shadow.client().services().capacity());
        let shared = Arc::new(Shared {
            shadow,
            state: Mutex::new(State::default()),
            changes: Mutex::new(Some(tx)),
            reporting: tokio::sync::Mutex::new(()),
            conflicts: AtomicU64::new(0),
            reads: AtomicU64::new(0),
        });
        shared.read().await?;
        let task = tokio::spawn(follow(Arc::clone(&shared), events, status));
        Ok((ShadowManager { shared, task }, DesiredChanges { rx }))
    }

    /// The shadow handle the manager works through.
    pub fn shadow(&self) -> &ShadowClient {
        &self.shared.shadow
    }

    /// A copy of the manager's document now.
    pub fn local(&self) -> LocalShadow {
        lock(&self.shared.state).local.clone()
    }

    /// Merges `reported` into the reported state at the version the manager
    /// knows; on 409 reads the shadow again (handing over any new desired
    /// change) and retries, at most [`MAX_CONFLICT_RETRIES`] times. Reports
    /// go one at a time.
    pub async fn report(&self, reported: impl Serialize) -> Result<UpdateAccepted, ShadowError> {
        let shadow = &self.shared.shadow;
        let patch = state_patch(reported, Section::Reported)
            .map_err(|e| e.about(ShadowOperation::Update, shadow.id()))?;
        let _one_at_a_time = self.shared.reporting.lock().await;
        let mut conflicts = 0;
        loop {
            let version = lock(&self.shared.state).local.version;
            let request = UpdateRequest {
                state: UpdateState {
                    reported: patch.clone(),
                    ..UpdateState::default()
                },
                version,
                client_token: None,
            };
            match shadow.update(request).await {
                Ok(accepted) => {
                    lock(&self.shared.state).on_reported(&patch, &accepted);
                    return Ok(accepted);
                }
                Err(e) if e.is_version_conflict() && conflicts < MAX_CONFLICT_RETRIES => {
                    conflicts += 1;
                    self.shared.conflicts.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(shadow = %shadow.id(), ?version, "report refused with 409: reading the shadow again");
                    self.shared.read().await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads the shadow now (the manager does so by itself after every
    /// reconnect), handing over a desired change the application has not seen.
    pub async fn refresh(&self) -> Result<(), ShadowError> {
        self.shared.read().await
    }

    /// How many reports met a 409 and were retried after a fresh read.
    pub fn conflicts_retried(&self) -> u64 {
        self.shared.conflicts.load(Ordering::Relaxed)
    }

    /// How many times the manager has read the shadow.
    pub fn reads(&self) -> u64 {
        self.shared.reads.load(Ordering::Relaxed)
    }
}

impl Drop for ShadowManager {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for ShadowManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShadowManager")
            .field("shadow", self.shared.shadow.id())
            .field("local", &lock(&self.shared.state).local)
            .finish_non_exhaustive()
    }
}

/// The manager's task: follows the events, and reads the shadow after every
/// reconnect (again after [`REREAD_DELAY`] while such a read fails).
async fn follow(
    shared: Arc<Shared>,
    mut events: Receiver<Event>,
    mut status: tokio::sync::watch::Receiver<ConnectionState>,
) {
    let mut read_at: Option<Instant> = None;
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(event) => shared.on_event(event),
                None => break,
            },
            changed = status.changed() => {
                if changed.is_err() {
                    break;
                }
                match &*status.borrow_and_update() {
                    ConnectionState::Connected { .. } => read_at = Some(Instant::now()),
                    ConnectionState::Closed => break,
                    _ => {}
                }
            }
            _ = sleep_until(read_at.unwrap_or_else(Instant::now)), if read_at.is_some() => {
                read_at = None;
                match shared.read().await {
                    Ok(()) => tracing::debug!(shadow = %shared.shadow.id(), "shadow read after reconnect"),
                    // The connection went again (or is closed): the next
                    // `Connected` brings another read.
                    Err(e) if matches!(e.kind(), ShadowErrorKind::Client | ShadowErrorKind::ConnectionLost) => {
                        tracing::debug!(shadow = %shared.shadow.id(), error = %e, "shadow read after reconnect failed");
                    }
                    Err(e) => {
                        tracing::warn!(shadow = %shared.shadow.id(), error = %e, "shadow read after reconnect failed: retrying");
                        if status.borrow().is_connected() {
                            read_at = Some(Instant::now() + REREAD_DELAY);
                        }
                    }
                }
            }
        }
    }
    lock(&shared.changes).take();
}

#[cfg(test)]
mod tests {
    use super::*;
    use iotcore_model::shadow::{SectionMetadata, ShadowDocument, StateWithDelta};
    use serde_json::{Value, json};

    fn object(value: Value) -> Object {
        value.as_object().cloned().unwrap_or_default()
    }

    fn read(desired: Value, reported: Value, version: u64) -> GetAccepted {
        let desired = object(desired);
        let reported = object(reported);
        let d = delta(&desired, Some(&reported));
        GetAccepted {
            state: StateWithDelta {
                desired: Some(desired),
                reported: Some(reported),
                delta: (!d.is_empty()).then_some(d),
            },
            metadata: SectionMetadata::default(),
            version,
            timestamp: 1,
            client_token: None,
        }
    }

    fn accepted(version: u64) -> UpdateAccepted {
        UpdateAccepted {
            state: Default::default(),
            metadata: Default::default(),
            version,
            timestamp: 1,
            client_token: None,
        }
    }

    #[test]
    fn a_missing_shadow_is_empty_and_hands_over_nothing() {
        let mut s = State::default();
        assert_eq!(s.on_read(None), None);
        assert_eq!(s.local, LocalShadow::default());
    }

    #[test]
    fn a_delta_found_by_reading_is_handed_over_once() {
        let mut s = State::default();
        let change = s
            .on_read(Some(read(json!({"led": "on"}), json!({"led": "off"}), 3)))
            .expect("a change");
        assert_eq!(change.delta(), &object(json!({"led": "on"})));
        assert_eq!(change.version(), 3);
        assert_eq!(change.source(), ChangeSource::Read);
        // The same read again (a reconnect), and a later version with the
        // same delta (the device reported something else): nothing new.
        assert_eq!(
            s.on_read(Some(read(json!({"led": "on"}), json!({"led": "off"}), 3))),
            None
        );
        assert_eq!(
            s.on_read(Some(read(
                json!({"led": "on"}),
                json!({"led": "off", "t": 1}),
                4
            ))),
            None
        );
        // A different delta at a later version is new.
        let change = s
            .on_read(Some(read(
                json!({"led": "blink"}),
                json!({"led": "off"}),
                6,
            )))
            .expect("a new change");
        assert_eq!(change.delta(), &object(json!({"led": "blink"})));
    }

    #[test]
    fn delta_events_are_handed_over_by_version_and_update_the_copy() {
        let mut s = State::default();
        s.on_read(Some(read(json!({"a": 1}), json!({"a": 1}), 2)));
        let change = s
            .on_delta(object(json!({"b": {"c": 2}})), 3)
            .expect("a change");
        assert_eq!(change.source(), ChangeSource::Delta);
        assert_eq!(s.local.desired, object(json!({"a": 1, "b": {"c": 2}})));
        assert_eq!(s.local.version, Some(3));
        // A duplicate or an older delta is not handed over again.
        assert_eq!(s.on_delta(object(json!({"b": {"c": 2}})), 3), None);
        assert_eq!(s.on_delta(object(json!({"x": 0})), 2), None);
        // A read that is older than what the events brought changes nothing.
        assert_eq!(s.on_read(Some(read(json!({}), json!({}), 2))), None);
        assert_eq!(s.local.desired, object(json!({"a": 1, "b": {"c": 2}})));
    }

    #[test]
    fn documents_events_replace_the_copy_when_not_older() {
        let mut s = State::default();
        s.on_read(Some(read(json!({"a": 1}), json!({}), 5)));
        let older: ShadowDocument = serde_json::from_value(
            json!({"state": {"desired": {"a": 0}}, "metadata": {}, "version": 4}),
        )
        .unwrap();
        s.on_documents(&older);
        assert_eq!(s.local.desired, object(json!({"a": 1})));
        let newer: ShadowDocument = serde_json::from_value(json!({
            "state": {"desired": {"a": 2}, "reported": {"a": 2}}, "metadata": {}, "version": 6
        }))
        .unwrap();
        s.on_documents(&newer);
        assert_eq!(s.local.reported, object(json!({"a": 2})));
        assert_eq!(s.local.version, Some(6));
        assert_eq!(s.local.delta(), None);
    }

    #[test]
    fn own_reports_merge_into_the_copy_unless_events_were_faster() {
        let mut s = State::default();
        s.on_read(Some(read(json!({"a": 1}), json!({"a": 0, "b": 1}), 5)));
        s.on_reported(
            &StatePatch::Merge(object(json!({"a": 1, "b": null}))),
            &accepted(6),
        );
        assert_eq!(s.local.reported, object(json!({"a": 1})));
        assert_eq!(s.local.version, Some(6));
        s.on_reported(&StatePatch::Merge(object(json!({"a": 9}))), &accepted(6));
        assert_eq!(
            s.local.reported,
            object(json!({"a": 1})),
            "already at version 6"
        );
        s.on_reported(&StatePatch::Clear, &accepted(7));
        assert!(s.local.reported.is_empty());
    }

    #[test]
    fn a_change_applies_to_the_devices_state() {
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Default)]
        #[serde(default)]
        struct Lamp {
            on: bool,
            brightness: u8,
            modes: Vec<String>,
        }
        let change = DesiredChange {
            delta: object(json!({"brightness": 80, "modes": ["eco"]})),
            version: 2,
            source: ChangeSource::Delta,
        };
        let now = Lamp {
            on: true,
            brightness: 30,
            modes: vec!["day".into(), "night".into()],
        };
        assert_eq!(
            change.apply_to(&now).unwrap(),
            Lamp {
                on: true,
                brightness: 80,
                modes: vec!["eco".into()]
            }
        );
        let e = change.apply_to(&Option::<Lamp>::None).unwrap_err();
        assert_eq!(e.kind(), ShadowErrorKind::InvalidRequest, "{e}");
        let e = change.apply_to(&7).unwrap_err();
        assert_eq!(e.kind(), ShadowErrorKind::InvalidRequest, "{e}");
        let wrong = DesiredChange {
            delta: object(json!({"brightness": "max"})),
            ..change
        };
        assert_eq!(
            wrong.apply_to(&now).unwrap_err().kind(),
            ShadowErrorKind::Decode
        );
    }

    #[test]
    fn local_copies_decode_into_application_types() {
        #[derive(serde::Deserialize, Debug, PartialEq, Default)]
        #[serde(default)]
        struct Lamp {
            on: bool,
        }
        let local = LocalShadow {
            desired: object(json!({"on": true})),
            reported: Object::new(),
            version: Some(1),
        };
        assert_eq!(local.desired_as::<Lamp>().unwrap(), Lamp { on: true });
        assert_eq!(local.reported_as::<Lamp>().unwrap(), Lamp { on: false });
        assert_eq!(local.delta(), Some(object(json!({"on": true}))));
    }
}
