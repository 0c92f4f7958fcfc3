//! The Device Shadow service: classic and named shadows on the reserved topics
//! `$aws/things/{thing}/shadow[/name/{shadow}]/{get,update,delete}`, with AWS's
//! replies on `/accepted`, `/rejected`, `/update/delta` and `/update/documents`
//! (docs/aws-iot-core-behaviour.md §3). The semantics (merge, metadata, delta,
//! versions, errors) are `iotcore_model::shadow`'s; this module moves requests
//! and replies and keeps the documents in the store.
//!
//! How a request flows:
//!
//! 1. A connection that receives an authorized PUBLISH on a request topic hands
//!    it to the service ([`crate::services`]) instead of routing it; the
//!    connection acknowledges it as usual.
//! 2. The service counts the connection's requests in flight. AWS allows 10 per
//!    connection ([`crate::quotas::Quotas::shadow_in_flight`]); the 11th is
//!    answered at once with 429 on its `/rejected` topic. The others are
//!    queued for the worker.
//! 3. One worker task serves the queue in order, so requests on one shadow
//!    never race. It loads the shadow (from its cache, or the store), applies
//!    the request on a copy, writes the result to the store, and only then
//!    keeps it and publishes the replies through the broker, like any message:
//!    every subscriber of the reply topic receives them, `+` wildcards included.
//!    A request that fails leaves the document as it was; a store failure is
//!    answered with 500.
//!
//! "In flight" means received and not yet answered. Requests are served in
//! microseconds, so a client sees 429 only when it pipelines more than 10
//! requests faster than the worker answers them (a burst in one TCP write does).
//!
//! [`Shadows`] is the cloud-side access to the same shadows (what AWS's
//! data-plane HTTPS API does): its updates and deletes publish the same
//! accepted, delta and documents messages; its errors are returned, not published.

pub(crate) mod answer;
mod api;
pub(crate) mod worker;

use std::sync::Arc;

use bytes::Bytes;
use iotcore_model::shadow::{ShadowError, client_token_of};
use iotcore_model::topics::{ShadowOperation, ShadowTopic, ShadowTopicKind};
use tokio::sync::{mpsc, oneshot, watch};

pub use api::{ShadowApiError, Shadows};

use self::answer::Accepted;
use self::worker::{Job, Origin, Worker, publish_reply};
use crate::broker::Broker;
use crate::clock::Clock;
use crate::services::inflight::InFlight;
use crate::services::{Request, Service};
use crate::store::Store;

/// Identifies one shadow: its thing and its name (`None`: the classic shadow).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ShadowKey {
    pub(crate) thing: String,
    pub(crate) shadow: Option<String>,
}

impl ShadowKey {
    pub(crate) fn of(topic: &ShadowTopic<'_>) -> Self {
        ShadowKey {
            thing: topic.thing().to_owned(),
            shadow: topic.shadow().map(str::to_owned),
        }
    }

    /// The topic of `operation` and `kind` for this shadow.
    pub(crate) fn topic(
        &self,
        operation: ShadowOperation,
        kind: ShadowTopicKind,
    ) -> Option<String> {
        ShadowTopic::new(&self.thing, self.shadow.as_deref(), operation, kind)
            .ok()
            .map(|t| t.to_topic())
    }

    /// The name a 404 message gives: the shadow's, or the thing's for the
    /// classic shadow.
    fn display_name(&self) -> &str {
        self.shadow.as_deref().unwrap_or(&self.thing)
    }
}

/// The running shadow service; cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct ShadowService {
    jobs: mpsc::UnboundedSender<Job>,
    in_flight: Arc<InFlight>,
    broker: Arc<Broker>,
    /// What the replies refused at once (429) are timestamped with.
    clock: Clock,
}

/// The time on `clock` in unix seconds, as shadow documents, their metadata
/// and the service's replies are timestamped.
pub(crate) fn unix_now(clock: &Clock) -> u64 {
    u64::try_from(clock.unix_now()).unwrap_or(0)
}

impl ShadowService {
    /// Starts the worker; it stops when `closing` turns `true`. Documents,
    /// their metadata and the replies are timestamped with `clock`.
    ///
    /// A connection may have `max_in_flight` requests unanswered (AWS: "more
    /// than 10 in-flight requests on a single connection" → 429, §3.5).
    pub(crate) fn start(
        store: Store,
        broker: Arc<Broker>,
        max_in_flight: usize,
        clock: Clock,
        closing: watch::Receiver<bool>,
    ) -> ShadowService {
        let (jobs, queue) = mpsc::unbounded_channel();
        let in_flight = Arc::new(InFlight::new(max_in_flight));
        let worker = Worker::new(
            store,
            Arc::clone(&broker),
            Arc::clone(&in_flight),
            clock.clone(),
        );
        tokio::spawn(worker.run(queue, closing));
        ShadowService {
            jobs,
            in_flight,
            broker,
            clock,
        }
    }

    fn send(&self, job: Job) {
        if let Err(mpsc::error::SendError(job)) = self.jobs.send(job) {
            tracing::debug!(
                thing = job.key.thing,
                "shadow request dropped: the emulator is stopping"
            );
            if let Origin::Mqtt(connection) = job.origin {
                self.in_flight.release(connection);
            }
        }
    }

    /// Runs one request from the cloud side and waits for its result.
    async fn call(
        &self,
        key: ShadowKey,
        operation: ShadowOperation,
        payload: Bytes,
    ) -> Result<Accepted, ShadowApiError> {
        let (done, result) = oneshot::channel();
        self.send(Job {
            key,
            operation,
            payload,
            origin: Origin::Api(done),
        });
        result
            .await
            .map_err(|_| ShadowApiError::Stopped)?
            .map_err(ShadowApiError::Rejected)
    }
}

/// The shadow request topic `topic` names, if it is one.
fn request_topic(topic: &str) -> Option<ShadowTopic<'_>> {
    if !topic.starts_with("$aws/things/") {
        return None;
    }
    ShadowTopic::parse(topic)
        .ok()
        .filter(|t| t.kind() == ShadowTopicKind::Request)
}

impl Service for ShadowService {
    /// `…/shadow[/name/{shadow}]/{get,update,delete}`.
    fn claims(&self, topic: &str) -> bool {
        request_topic(topic).is_some()
    }

    /// Queues the request for the worker, or answers 429 at once when the
    /// connection has too many in flight.
    fn serve(&self, request: Request) {
        let Some(topic) = request_topic(&request.topic) else {
            return;
        };
        let connection = request.requester.connection;
        let key = ShadowKey::of(&topic);
        let operation = topic.operation();
        if !self.in_flight.try_acquire(connection) {
            tracing::info!(
                connection,
                topic = %request.topic,
                max = self.in_flight.max(),
                "shadow request refused: over the shadow-in-flight quota of the connection (429)"
            );
            let token = client_token_of(&request.payload);
            let reply = ShadowError::TooManyRequests.to_response(token, unix_now(&self.clock));
            publish_reply(
                &self.broker,
                &key,
                operation,
                ShadowTopicKind::Rejected,
                &reply,
            );
            return;
        }
        self.send(Job {
            key,
            operation,
            payload: request.payload,
            origin: Origin::Mqtt(connection),
        });
    }
}
