//! What one client shares for one shadow: the reply subscriptions, the
//! requests waiting for a reply (by `clientToken`), and the event listeners.
//!
//! The first request (or event stream) on a shadow subscribes to the three
//! wildcard reply filters `…/get/+`, `…/update/+` and `…/delete/+` — once, for
//! the client's life: the client restores them after a reconnect like any
//! other subscription — and spawns a dispatcher task that reads them:
//!
//! * `/accepted` and `/rejected` replies go to the request whose `clientToken`
//!   they carry, if it is one of ours and still waiting; any other reply (for
//!   another client on the same shadow, or for a request that timed out) is
//!   ignored;
//! * `/update/delta` and `/update/documents` go to every listener.
//!
//! The dispatcher holds no [`Client`](crate::Client), so it never keeps the
//! connection alive: it ends when the client closes (the subscription streams
//! end), failing the requests still waiting.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::try_join_all;
use futures_util::stream::select_all;
use iotcore_model::shadow::{DeltaEvent, DocumentsEvent};
use iotcore_model::topics::{ShadowOperation, ShadowTopic, ShadowTopicKind};
use serde::Deserialize;
use tokio::sync::oneshot;

use super::error::ShadowId;
use crate::QoS;
use crate::client::Client;
use crate::error::Error;
use crate::mailbox::{self, Pushed};
use crate::message::Message;
use crate::status::ConnectionState;
use crate::streams::Subscription;

/// A reply to one of our requests: accepted or rejected, and its payload.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) accepted: bool,
    pub(crate) payload: Bytes,
}

/// A shadow event for listeners.
#[derive(Clone, Debug)]
pub(crate) enum Event {
    /// `…/update/delta`.
    Delta(DeltaEvent),
    /// `…/update/documents` (boxed: two whole documents).
    Documents(Box<DocumentsEvent>),
}

/// Who listens to a shadow's events.
enum Listener {
    Deltas(mailbox::Sender<DeltaEvent>),
    Documents(mailbox::Sender<DocumentsEvent>),
    Events(mailbox::Sender<Event>),
}

impl Listener {
    /// Hands `event` over; false when the listener is gone.
    fn push(&self, event: &Event) -> bool {
        let pushed = match (self, event) {
            (Listener::Deltas(tx), Event::Delta(delta)) => tx.push(delta.clone()),
            (Listener::Documents(tx), Event::Documents(documents)) => {
                tx.push(DocumentsEvent::clone(documents))
            }
            (Listener::Events(tx), event) => tx.push(event.clone()),
            (Listener::Deltas(tx), _) => return !tx.is_closed(),
            (Listener::Documents(tx), _) => return !tx.is_closed(),
        };
        if pushed == Pushed::DisplacedOldest {
            tracing::warn!("shadow event stream is full: discarded its oldest event");
        }
        pushed != Pushed::ReceiverGone
    }
}

struct Waiting {
    operation: ShadowOperation,
    reply: oneshot::Sender<Reply>,
}

/// One shadow's shared state within one client.
pub(crate) struct Channel {
    id: ShadowId,
    /// `$aws/things/{thing}/shadow[/name/{shadow}]`, names validated.
    prefix: String,
    /// The generation of the live dispatcher; 0 while not subscribed.
    active: AtomicU64,
    /// Serializes subscribing, so concurrent first requests subscribe once.
    subscribing: tokio::sync::Mutex<()>,
    waiting: Mutex<HashMap<String, Waiting>>,
    listeners: Mutex<Vec<Listener>>,
    capacity: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Dispatchers get distinct generations across all channels.
static GENERATIONS: AtomicU64 = AtomicU64::new(1);

impl Channel {
    /// A channel for the shadow `id`, whose topics start with `prefix`;
    /// event streams buffer `capacity` items.
    pub(crate) fn new(id: ShadowId, prefix: String, capacity: usize) -> Self {
        Channel {
            id,
            prefix,
            active: AtomicU64::new(0),
            subscribing: tokio::sync::Mutex::new(()),
            waiting: Mutex::new(HashMap::new()),
            listeners: Mutex::new(Vec::new()),
            capacity,
        }
    }

    /// The topic of `operation` (a request topic).
    pub(crate) fn request_topic(&self, operation: ShadowOperation) -> String {
        format!("{}/{operation}", self.prefix)
    }

    /// The wildcard filter of `operation`'s replies.
    fn reply_filter(&self, operation: ShadowOperation) -> String {
        format!("{}/{operation}/+", self.prefix)
    }

    /// Subscribes to the reply filters unless that is done: afterwards every
    /// reply and event of the shadow reaches this channel.
    pub(crate) async fn ensure_subscribed(self: &Arc<Self>, client: &Client) -> Result<(), Error> {
        if self.active.load(Ordering::Acquire) != 0 {
            return Ok(());
        }
        let _subscribing = self.subscribing.lock().await;
        if self.active.load(Ordering::Acquire) != 0 {
            return Ok(());
        }
        let subscriptions: Vec<Subscription> = try_join_all(
            [
                ShadowOperation::Get,
                ShadowOperation::Update,
                ShadowOperation::Delete,
            ]
            .map(|operation| client.subscribe(self.reply_filter(operation), QoS::AtLeastOnce)),
        )
        .await?;
        let generation = GENERATIONS.fetch_add(1, Ordering::Relaxed);
        self.active.store(generation, Ordering::Release);
        tracing::debug!(shadow = %self.id, "subscribed to the shadow's reply topics");
        tokio::spawn(dispatch(
            Arc::clone(self),
            generation,
            subscriptions,
            client.status(),
        ));
        Ok(())
    }

    /// Registers a request with `token`; its reply arrives on the receiver.
    /// The registration ends when the returned guard is dropped.
    pub(crate) fn expect(
        self: &Arc<Self>,
        token: String,
        operation: ShadowOperation,
    ) -> (oneshot::Receiver<Reply>, Expected) {
        let (reply, receiver) = oneshot::channel();
        lock(&self.waiting).insert(token.clone(), Waiting { operation, reply });
        let guard = Expected {
            channel: Arc::clone(self),
            token,
        };
        (receiver, guard)
    }

    /// A new delta stream's sender.
    pub(crate) fn listen_deltas(&self) -> mailbox::Receiver<DeltaEvent> {
        let (tx, rx) = mailbox::mailbox(self.capacity);
        lock(&self.listeners).push(Listener::Deltas(tx));
        rx
    }

    /// A new documents stream's sender.
    pub(crate) fn listen_documents(&self) -> mailbox::Receiver<DocumentsEvent> {
        let (tx, rx) = mailbox::mailbox(self.capacity);
        lock(&self.listeners).push(Listener::Documents(tx));
        rx
    }

    /// A new stream of deltas and documents, in the order they arrived.
    pub(crate) fn listen_events(&self) -> mailbox::Receiver<Event> {
        let (tx, rx) = mailbox::mailbox(self.capacity);
        lock(&self.listeners).push(Listener::Events(tx));
        rx
    }

    /// Routes one message of the reply subscriptions.
    fn deliver(&self, message: &Message) {
        let Ok(topic) = ShadowTopic::parse(message.topic()) else {
            tracing::debug!(topic = message.topic(), "not a shadow reply topic: ignored");
            return;
        };
        match topic.kind() {
            ShadowTopicKind::Accepted | ShadowTopicKind::Rejected => {
                self.answer(topic.operation(), topic.kind(), message.payload());
            }
            ShadowTopicKind::Delta => match serde_json::from_slice::<DeltaEvent>(message.payload())
            {
                Ok(delta) => self.notify(&Event::Delta(delta)),
                Err(e) => {
                    tracing::warn!(shadow = %self.id, error = %e, "malformed delta event ignored")
                }
            },
            ShadowTopicKind::Documents => {
                match serde_json::from_slice::<DocumentsEvent>(message.payload()) {
                    Ok(documents) => self.notify(&Event::Documents(Box::new(documents))),
                    Err(e) => tracing::warn!(
                        shadow = %self.id, error = %e, "malformed documents event ignored"
                    ),
                }
            }
            ShadowTopicKind::Request => {}
        }
    }

    /// Hands a reply to the request whose `clientToken` it carries.
    fn answer(&self, operation: ShadowOperation, kind: ShadowTopicKind, payload: &Bytes) {
        #[derive(Deserialize)]
        struct Token {
            #[serde(rename = "clientToken")]
            client_token: Option<String>,
        }
        let Some(token) = serde_json::from_slice::<Token>(payload)
            .ok()
            .and_then(|t| t.client_token)
        else {
            tracing::trace!(shadow = %self.id, %operation, "reply without clientToken ignored");
            return;
        };
        let waiting = {
            let mut waiting = lock(&self.waiting);
            match waiting.get(&token) {
                Some(w) if w.operation == operation => waiting.remove(&token),
                _ => None,
            }
        };
        match waiting {
            Some(waiting) => {
                // The requester may have stopped waiting; nothing to do then.
                let _ = waiting.reply.send(Reply {
                    accepted: kind == ShadowTopicKind::Accepted,
                    payload: payload.clone(),
                });
            }
            None => tracing::trace!(
                shadow = %self.id, %operation, token, "reply for another request ignored"
            ),
        }
    }

    fn notify(&self, event: &Event) {
        lock(&self.listeners).retain(|listener| listener.push(event));
    }

    /// The dispatcher of `generation` stopped: the next request subscribes
    /// again; requests waiting now get no reply and fail. True when it was
    /// the live dispatcher (not one [`unsubscribe`](Self::unsubscribe) retired).
    fn dispatcher_ended(&self, generation: u64, closed: bool) -> bool {
        let current = self
            .active
            .compare_exchange(generation, 0, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if current || closed {
            lock(&self.waiting).clear();
        }
        if closed {
            lock(&self.listeners).clear();
        }
        current
    }

    /// Unsubscribes from the reply filters (if subscribed); the next request
    /// or event stream subscribes again. Event streams stay open.
    pub(crate) async fn unsubscribe(&self, client: &Client) -> Result<(), Error> {
        let _subscribing = self.subscribing.lock().await;
        if self.active.swap(0, Ordering::AcqRel) == 0 {
            return Ok(());
        }
        tracing::debug!(shadow = %self.id, "unsubscribing from the shadow's reply topics");
        try_join_all(
            [
                ShadowOperation::Get,
                ShadowOperation::Update,
                ShadowOperation::Delete,
            ]
            .map(|operation| client.unsubscribe(self.reply_filter(operation))),
        )
        .await?;
        Ok(())
    }
}

/// A registered request; dropping it (reply received, timeout, caller gone)
/// forgets the registration.
pub(crate) struct Expected {
    channel: Arc<Channel>,
    token: String,
}

impl Drop for Expected {
    fn drop(&mut self) {
        lock(&self.channel.waiting).remove(&self.token);
    }
}

/// Reads the reply subscriptions until they end.
async fn dispatch(
    channel: Arc<Channel>,
    generation: u64,
    subscriptions: Vec<Subscription>,
    status: tokio::sync::watch::Receiver<ConnectionState>,
) {
    let mut messages = select_all(subscriptions);
    while let Some(message) = messages.next().await {
        channel.deliver(&message);
    }
    let closed = matches!(*status.borrow(), ConnectionState::Closed);
    if channel.dispatcher_ended(generation, closed) && !closed {
        tracing::warn!(
            shadow = %channel.id,
            "the shadow's reply subscriptions ended (the broker refused to restore them?): the next request subscribes again"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iotcore_mqtt::packet::Publish;

    fn channel() -> Arc<Channel> {
        Arc::new(Channel::new(
            ShadowId::new("dev1".into(), None),
            "$aws/things/dev1/shadow".into(),
            4,
        ))
    }

    fn message(topic: &str, payload: &str) -> Message {
        Message::new(Publish::new(topic, payload.to_owned(), QoS::AtLeastOnce))
    }

    #[test]
    fn topics_of_a_shadow() {
        let c = channel();
        assert_eq!(
            c.request_topic(ShadowOperation::Update),
            "$aws/things/dev1/shadow/update"
        );
        assert_eq!(
            c.reply_filter(ShadowOperation::Get),
            "$aws/things/dev1/shadow/get/+"
        );
    }

    #[tokio::test]
    async fn replies_reach_the_request_with_their_token_only() {
        let c = channel();
        let (mut mine, _guard) = c.expect("tok-a".into(), ShadowOperation::Update);
        let (mut other, _other_guard) = c.expect("tok-b".into(), ShadowOperation::Get);
        // Another client's reply, a reply without a token, and a reply of the
        // wrong operation for our token are all ignored.
        c.deliver(&message(
            "$aws/things/dev1/shadow/update/accepted",
            r#"{"clientToken":"someone-else","version":3}"#,
        ));
        c.deliver(&message(
            "$aws/things/dev1/shadow/update/accepted",
            r#"{"version":3}"#,
        ));
        c.deliver(&message(
            "$aws/things/dev1/shadow/get/accepted",
            r#"{"clientToken":"tok-a"}"#,
        ));
        assert!(mine.try_recv().is_err());
        c.deliver(&message(
            "$aws/things/dev1/shadow/update/rejected",
            r#"{"code":409,"message":"Version conflict","clientToken":"tok-a"}"#,
        ));
        let reply = mine.try_recv().expect("our reply");
        assert!(!reply.accepted);
        assert!(std::str::from_utf8(&reply.payload).unwrap().contains("409"));
        assert!(other.try_recv().is_err());
        // Answered requests are forgotten: a duplicate reply goes nowhere.
        assert!(!lock(&c.waiting).contains_key("tok-a"));
    }

    #[test]
    fn a_dropped_registration_is_forgotten() {
        let c = channel();
        let (_rx, guard) = c.expect("tok".into(), ShadowOperation::Get);
        assert_eq!(lock(&c.waiting).len(), 1);
        drop(guard);
        assert!(lock(&c.waiting).is_empty());
    }

    #[tokio::test]
    async fn events_reach_the_listeners_that_want_them() {
        let c = channel();
        let deltas = c.listen_deltas();
        let documents = c.listen_documents();
        let events = c.listen_events();
        c.deliver(&message(
            "$aws/things/dev1/shadow/update/delta",
            r#"{"state":{"led":"on"},"metadata":{"led":{"timestamp":1}},"version":2,"timestamp":1}"#,
        ));
        c.deliver(&message(
            "$aws/things/dev1/shadow/update/documents",
            r#"{"current":{"state":{"desired":{"led":"on"}},"metadata":{},"version":2},"timestamp":1}"#,
        ));
        c.deliver(&message("$aws/things/dev1/shadow/update/delta", "not json"));
        let delta = deltas.try_next().expect("a delta");
        assert_eq!(delta.version, 2);
        assert_eq!(delta.state["led"], "on");
        assert!(deltas.try_next().is_none());
        assert_eq!(
            documents.try_next().expect("documents").current.version(),
            2
        );
        assert!(documents.try_next().is_none());
        assert!(matches!(events.try_next(), Some(Event::Delta(_))));
        assert!(matches!(events.try_next(), Some(Event::Documents(_))));
        assert!(events.try_next().is_none());
    }

    #[test]
    fn gone_listeners_are_dropped() {
        let c = channel();
        drop(c.listen_deltas());
        drop(c.listen_events());
        c.notify(&Event::Delta(DeltaEvent {
            state: Default::default(),
            metadata: Default::default(),
            version: 1,
            timestamp: 1,
            client_token: None,
        }));
        assert!(lock(&c.listeners).is_empty());
    }

    #[test]
    fn an_ended_dispatcher_fails_waiting_requests_and_allows_a_new_subscription() {
        let c = channel();
        c.active.store(7, Ordering::Release);
        let (mut rx, _guard) = c.expect("tok".into(), ShadowOperation::Get);
        let _deltas = c.listen_deltas();
        // A stale generation leaves a newer dispatcher and its requests alone.
        assert!(!c.dispatcher_ended(6, false));
        assert_eq!(c.active.load(Ordering::Acquire), 7);
        assert!(matches!(
            rx.try_recv(),
            Err(oneshot::error::TryRecvError::Empty)
        ));
        assert!(c.dispatcher_ended(7, false));
        assert_eq!(c.active.load(Ordering::Acquire), 0);
        assert!(matches!(
            rx.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        ));
        assert_eq!(
            lock(&c.listeners).len(),
            1,
            "listeners wait for the next subscription"
        );
        c.dispatcher_ended(0, true);
        assert!(lock(&c.listeners).is_empty());
    }
}
