//! The worker task: serves shadow requests one at a time, keeps documents in
//! the store (and a cache of them), publishes the replies.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use iotcore_model::shadow::{
    ShadowDocument, ShadowError, StoredShadow, Tombstone, client_token_of,
};
use iotcore_model::topics::{ShadowOperation, ShadowTopicKind};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};

use super::answer::{Accepted, Served, answer};
use super::{ShadowKey, unix_now};
use crate::broker::Broker;
use crate::broker::session::ConnectionId;
use crate::clock::Clock;
use crate::connection::stopped;
use crate::services::inflight::InFlight;
use crate::services::reply::publish_json;
use crate::store::{ShadowRecord, Store};

/// One request for the worker.
#[derive(Debug)]
pub(crate) struct Job {
    /// The shadow.
    pub(crate) key: ShadowKey,
    /// get, update or delete.
    pub(crate) operation: ShadowOperation,
    /// The request payload.
    pub(crate) payload: Bytes,
    /// Who asked, and so where the answer goes.
    pub(crate) origin: Origin,
}

/// Who sent a request.
#[derive(Debug)]
pub(crate) enum Origin {
    /// A client over MQTT: replies are published; the connection's in-flight
    /// count is released once they are.
    Mqtt(ConnectionId),
    /// The cloud-side API: the result is returned; accepted updates and deletes
    /// are published too.
    Api(oneshot::Sender<Result<Accepted, ShadowError>>),
}

/// Publishes `body` as JSON on the `kind` topic of `operation` of shadow `key`,
/// to every subscriber, as the service (no publishing session).
pub(crate) fn publish_reply(
    broker: &Broker,
    key: &ShadowKey,
    operation: ShadowOperation,
    kind: ShadowTopicKind,
    body: &impl Serialize,
) {
    let Some(topic) = key.topic(operation, kind) else {
        // Keys come from parsed topics, so their topics are valid.
        tracing::error!(?key, "no {operation} topic for this shadow");
        return;
    };
    publish_json(broker, topic, body);
}

/// The worker's state.
pub(crate) struct Worker {
    store: Store,
    broker: Arc<Broker>,
    in_flight: Arc<InFlight>,
    /// What documents, metadata and replies are timestamped with.
    clock: Clock,
    /// Shadows read or written since start; the store is written first.
    cache: HashMap<ShadowKey, StoredShadow>,
}

impl Worker {
    pub(crate) fn new(
        store: Store,
        broker: Arc<Broker>,
        in_flight: Arc<InFlight>,
        clock: Clock,
    ) -> Self {
        Worker {
            store,
            broker,
            in_flight,
            clock,
            cache: HashMap::new(),
        }
    }

    /// Serves `queue` until the emulator stops.
    pub(crate) async fn run(
        mut self,
        mut queue: mpsc::UnboundedReceiver<Job>,
        mut closing: watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                biased;
                () = stopped(&mut closing) => return,
                job = queue.recv() => match job {
                    Some(job) => self.serve(job).await,
                    None => return,
                },
            }
        }
    }

    async fn serve(&mut self, job: Job) {
        let Job {
            key,
            operation,
            payload,
            origin,
        } = job;
        let now = unix_now(&self.clock);
        let result = self.apply(&key, operation, &payload, now).await;
        match &result {
            Ok(_) => {
                tracing::debug!(thing = key.thing, shadow = ?key.shadow, %operation, "shadow request accepted")
            }
            Err(e) => {
                tracing::debug!(thing = key.thing, shadow = ?key.shadow, %operation, code = e.code(), "shadow request rejected: {e}")
            }
        }
        match origin {
            Origin::Mqtt(connection) => {
                match result {
                    Ok(served) => self.publish(&key, operation, served),
                    Err(error) => {
                        let reply = error.to_response(client_token_of(&payload), now);
                        publish_reply(
                            &self.broker,
                            &key,
                            operation,
                            ShadowTopicKind::Rejected,
                            &reply,
                        );
                    }
                }
                self.in_flight.release(connection);
            }
            Origin::Api(done) => {
                let result = result.map(|served| {
                    let accepted = served.accepted.clone();
                    // A get through the API is not published (AWS publishes
                    // get/accepted only to MQTT requests).
                    if operation != ShadowOperation::Get {
                        self.publish(&key, operation, served);
                    }
                    accepted
                });
                // The caller may have stopped waiting.
                let _ = done.send(result);
            }
        }
    }

    fn publish(&self, key: &ShadowKey, operation: ShadowOperation, served: Served) {
        for (kind, body) in served.replies() {
            publish_reply(&self.broker, key, operation, kind, &body);
        }
    }

    /// Applies one request. A request that changes the shadow is applied to a
    /// copy, which replaces the shadow only once the store holds it.
    async fn apply(
        &mut self,
        key: &ShadowKey,
        operation: ShadowOperation,
        payload: &[u8],
        now: u64,
    ) -> Result<Served, ShadowError> {
        let mut next = self.load(key).await?;
        let served = answer(&mut next, key, operation, payload, now)?;
        if operation != ShadowOperation::Get {
            self.save(key, next).await?;
        }
        Ok(served)
    }

    /// A copy of the shadow of `key`, from the cache or the store. Shadows the
    /// store does not know are not cached, so requests for made-up names
    /// cost no memory.
    async fn load(&mut self, key: &ShadowKey) -> Result<StoredShadow, ShadowError> {
        if let Some(shadow) = self.cache.get(key) {
            return Ok(shadow.clone());
        }
        let store = self.store.clone();
        let (thing, name) = (key.thing.clone(), key.shadow.clone().unwrap_or_default());
        let record = tokio::task::spawn_blocking(move || store.shadow(&thing, &name))
            .await
            .map_err(|e| internal(key, format!("the store lookup did not finish: {e}")))?
            .map_err(|e| internal(key, format!("cannot read the shadow: {e}")))?;
        let Some(record) = record else {
            return Ok(StoredShadow::default());
        };
        let shadow = from_record(record).map_err(|why| internal(key, why))?;
        self.cache.insert(key.clone(), shadow.clone());
        Ok(shadow)
    }

    /// Writes `shadow` to the store, then keeps it.
    async fn save(&mut self, key: &ShadowKey, shadow: StoredShadow) -> Result<(), ShadowError> {
        let Some(record) = to_record(key, &shadow) else {
            return Err(internal(
                key,
                "a shadow with neither document nor tombstone cannot be stored".into(),
            ));
        };
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.put_shadow(&record))
            .await
            .map_err(|e| internal(key, format!("the store write did not finish: {e}")))?
            .map_err(|e| internal(key, format!("cannot write the shadow: {e}")))?;
        self.cache.insert(key.clone(), shadow);
        Ok(())
    }
}

/// Logs why the service failed and answers 500.
fn internal(key: &ShadowKey, why: String) -> ShadowError {
    tracing::error!(thing = key.thing, shadow = ?key.shadow, "shadow service failure: {why}");
    ShadowError::InternalFailure
}

fn from_record(record: ShadowRecord) -> Result<StoredShadow, String> {
    match record.document {
        Some(json) => {
            let document = ShadowDocument::from_json(&json)
                .map_err(|e| format!("the stored document is not a shadow document: {e}"))?;
            Ok(StoredShadow::new(Some(document), None))
        }
        None => Ok(StoredShadow::new(
            None,
            Some(Tombstone {
                version: record.version,
                deleted_at: record
                    .deleted_at
                    .and_then(|at| u64::try_from(at).ok())
                    .unwrap_or(0),
            }),
        )),
    }
}

fn to_record(key: &ShadowKey, shadow: &StoredShadow) -> Option<ShadowRecord> {
    let (document, version, deleted_at) = match (shadow.document(), shadow.tombstone()) {
        (Some(document), _) => (Some(document.to_json()), document.version(), None),
        (None, Some(tombstone)) => (
            None,
            tombstone.version,
            Some(i64::try_from(tombstone.deleted_at).unwrap_or(i64::MAX)),
        ),
        (None, None) => return None,
    };
    Some(ShadowRecord {
        thing_name: key.thing.clone(),
        shadow_name: key.shadow.clone().unwrap_or_default(),
        document,
        version,
        deleted_at,
    })
}
