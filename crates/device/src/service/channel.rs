//! One set of reply subscriptions within one client: the requests waiting
//! on it, the listeners of its other messages, and the task that reads it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures_util::StreamExt;
use futures_util::future::try_join_all;
use futures_util::stream::select_all;
use tokio::sync::oneshot;

use super::Service;
use super::request::client_token_of;
use crate::QoS;
use crate::client::Client;
use crate::error::Error;
use crate::mailbox::{self, Pushed};
use crate::message::Message;
use crate::status::ConnectionState;
use crate::streams::Subscription;

/// A reply handed to the request it answers.
#[derive(Debug)]
pub(crate) struct Reply {
    /// True when it came on the request's accepted topic.
    pub(crate) accepted: bool,
    pub(crate) message: Message,
}

/// Why a waiting request gets no reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The client was closed.
    Closed,
    /// The reply subscriptions ended while the client lives (the broker
    /// refused to restore them after a reconnect).
    SubscriptionsLost,
}

pub(crate) type Outcome = Result<Reply, Ended>;

struct Waiting {
    id: u64,
    accepted: String,
    rejected: String,
    /// `None` for topic-only correlation.
    token: Option<String>,
    reply: oneshot::Sender<Outcome>,
}

/// Takes each message that answers no request; false once it wants no more.
type Listener = Box<dyn Fn(&Message) -> bool + Send + Sync>;

/// The shared state of one reply-filter set of one client.
pub(crate) struct Channel {
    service: &'static Service,
    filters: Vec<String>,
    /// The generation of the live dispatcher; 0 while not subscribed.
    active: AtomicU64,
    /// Serializes subscribing, so concurrent first requests subscribe once.
    subscribing: tokio::sync::Mutex<()>,
    /// Topic-only correlation: one request at a time, in arrival order.
    turn: tokio::sync::Mutex<()>,
    waiting: Mutex<Vec<Waiting>>,
    listeners: Mutex<Vec<Listener>>,
    next_id: AtomicU64,
    capacity: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Dispatchers get distinct generations across all channels.
static GENERATIONS: AtomicU64 = AtomicU64::new(1);

impl Channel {
    /// A channel of `service` whose replies arrive on `filters`; listener
    /// streams buffer `capacity` items.
    pub(crate) fn new(service: &'static Service, filters: Vec<String>, capacity: usize) -> Self {
        Channel {
            service,
            filters,
            active: AtomicU64::new(0),
            subscribing: tokio::sync::Mutex::new(()),
            turn: tokio::sync::Mutex::new(()),
            waiting: Mutex::new(Vec::new()),
            listeners: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            capacity,
        }
    }

    pub(crate) fn service(&self) -> &'static Service {
        self.service
    }

    pub(crate) fn filters(&self) -> &[String] {
        &self.filters
    }

    /// Waits for the turn of a topic-correlated request.
    pub(crate) async fn turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.turn.lock().await
    }

    /// Subscribes to the reply filters unless that is done: afterwards every
    /// message on them reaches this channel.
    pub(crate) async fn ensure_subscribed(self: &Arc<Self>, client: &Client) -> Result<(), Error> {
        if self.active.load(Ordering::Acquire) != 0 {
            return Ok(());
        }
        let _subscribing = self.subscribing.lock().await;
        if self.active.load(Ordering::Acquire) != 0 {
            return Ok(());
        }
        let subscriptions: Vec<Subscription> = try_join_all(
            self.filters
                .iter()
                .map(|filter| client.subscribe(filter.clone(), QoS::AtLeastOnce)),
        )
        .await?;
        let generation = GENERATIONS.fetch_add(1, Ordering::Relaxed);
        self.active.store(generation, Ordering::Release);
        tracing::debug!(service = self.service.name(), filters = ?self.filters, "subscribed to the reply topics");
        tokio::spawn(dispatch(
            Arc::clone(self),
            generation,
            subscriptions,
            client.status(),
        ));
        Ok(())
    }

    /// Unsubscribes from the reply filters (if subscribed); the next request
    /// or listener subscribes again. Listeners stay.
    pub(crate) async fn unsubscribe(&self, client: &Client) -> Result<(), Error> {
        let _subscribing = self.subscribing.lock().await;
        if self.active.swap(0, Ordering::AcqRel) == 0 {
            return Ok(());
        }
        tracing::debug!(service = self.service.name(), filters = ?self.filters, "unsubscribing from the reply topics");
        try_join_all(
            self.filters
                .iter()
                .map(|filter| client.unsubscribe(filter.clone())),
        )
        .await?;
        Ok(())
    }

    /// Registers a request whose reply comes on `accepted` or `rejected`
    /// (with `token`, when correlated by token); its reply arrives on the
    /// receiver. The registration ends when the returned guard is dropped.
    pub(crate) fn expect(
        self: &Arc<Self>,
        accepted: &str,
        rejected: &str,
        token: Option<String>,
    ) -> (oneshot::Receiver<Outcome>, Expected) {
        let (reply, receiver) = oneshot::channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.waiting).push(Waiting {
            id,
            accepted: accepted.to_owned(),
            rejected: rejected.to_owned(),
            token,
            reply,
        });
        let guard = Expected {
            channel: Arc::clone(self),
            id,
        };
        (receiver, guard)
    }

    /// A new stream of the messages that answer no request, as `pick` turns
    /// them into items (`None`: not for this stream).
    pub(crate) fn listen<T: Send + 'static>(
        &self,
        pick: impl Fn(&Message) -> Option<T> + Send + Sync + 'static,
    ) -> mailbox::Receiver<T> {
        let (tx, rx) = mailbox::mailbox(self.capacity);
        let service = self.service.name();
        lock(&self.listeners).push(Box::new(move |message| match pick(message) {
            Some(item) => {
                let pushed = tx.push(item);
                if pushed == Pushed::DisplacedOldest {
                    tracing::warn!(service, "event stream is full: discarded its oldest item");
                }
                pushed != Pushed::ReceiverGone
            }
            None => !tx.is_closed(),
        }));
        rx
    }

    /// Routes one message of the reply subscriptions: to the request it
    /// answers, else to the listeners.
    pub(crate) fn deliver(&self, message: &Message) {
        let topic = message.topic();
        let answered = {
            let mut waiting = lock(&self.waiting);
            // Parsed at most once, and only for a message on a reply topic.
            let mut token: Option<Option<String>> = None;
            let position = waiting.iter().position(|w| {
                if w.accepted != topic && w.rejected != topic {
                    return false;
                }
                match &w.token {
                    None => true,
                    Some(expected) => {
                        token
                            .get_or_insert_with(|| client_token_of(message.payload()))
                            .as_deref()
                            == Some(expected.as_str())
                    }
                }
            });
            position.map(|i| waiting.swap_remove(i))
        };
        match answered {
            Some(waiting) => {
                tracing::trace!(
                    service = self.service.name(),
                    topic,
                    token = waiting.token,
                    "reply"
                );
                // The requester may have stopped waiting; nothing to do then.
                let _ = waiting.reply.send(Ok(Reply {
                    accepted: waiting.accepted == topic,
                    message: message.clone(),
                }));
            }
            None => lock(&self.listeners).retain(|listener| listener(message)),
        }
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
            let ended = if closed {
                Ended::Closed
            } else {
                Ended::SubscriptionsLost
            };
            for waiting in lock(&self.waiting).drain(..) {
                let _ = waiting.reply.send(Err(ended));
            }
        }
        if closed {
            lock(&self.listeners).clear();
        }
        current
    }

    #[cfg(test)]
    fn waiting_count(&self) -> usize {
        lock(&self.waiting).len()
    }
}

/// A registered request; dropping it (reply received, timeout, caller gone)
/// forgets the registration.
pub(crate) struct Expected {
    channel: Arc<Channel>,
    id: u64,
}

impl Drop for Expected {
    fn drop(&mut self) {
        lock(&self.channel.waiting).retain(|w| w.id != self.id);
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
            service = channel.service.name(),
            filters = ?channel.filters,
            "the reply subscriptions ended (the broker refused to restore them?): the next request subscribes again"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Correlation;
    use iotcore_mqtt::packet::Publish;

    static BY_TOKEN: Service = Service::new("test", Correlation::ClientToken);
    static BY_TOPIC: Service = Service::new("test", Correlation::Topic);

    fn channel(service: &'static Service) -> Arc<Channel> {
        Arc::new(Channel::new(service, vec!["svc/+/+".into()], 4))
    }

    fn message(topic: &str, payload: &str) -> Message {
        Message::new(Publish::new(topic, payload.to_owned(), QoS::AtLeastOnce))
    }

    #[test]
    fn replies_reach_the_request_with_their_topic_and_token_only() {
        let c = channel(&BY_TOKEN);
        let (mut mine, _g1) = c.expect("svc/a/accepted", "svc/a/rejected", Some("tok-a".into()));
        let (mut other, _g2) = c.expect("svc/b/accepted", "svc/b/rejected", Some("tok-b".into()));
        let others = c.listen(|m| Some(m.topic().to_owned()));
        // Another client's reply, a reply without a token, a reply that is
        // not JSON, and our token on another request's topic are not ours.
        c.deliver(&message(
            "svc/a/accepted",
            r#"{"clientToken":"someone-else"}"#,
        ));
        c.deliver(&message("svc/a/accepted", r#"{"version":3}"#));
        c.deliver(&message("svc/a/accepted", "not json"));
        c.deliver(&message("svc/b/accepted", r#"{"clientToken":"tok-a"}"#));
        assert!(mine.try_recv().is_err());
        assert!(other.try_recv().is_err());
        for _ in 0..4 {
            assert!(
                others.try_next().is_some(),
                "unanswered messages go to listeners"
            );
        }
        c.deliver(&message(
            "svc/a/rejected",
            r#"{"code":409,"message":"Version conflict","clientToken":"tok-a"}"#,
        ));
        let reply = mine.try_recv().expect("our reply").expect("a reply");
        assert!(!reply.accepted);
        assert!(others.try_next().is_none(), "an answer is not an event");
        // Answered requests are forgotten: a duplicate reply goes to listeners.
        assert_eq!(c.waiting_count(), 1);
        c.deliver(&message("svc/a/accepted", r#"{"clientToken":"tok-a"}"#));
        assert!(others.try_next().is_some());
    }

    #[test]
    fn topic_correlation_takes_any_reply_on_the_requests_topics() {
        let c = channel(&BY_TOPIC);
        let (mut rx, _guard) = c.expect("svc/a/accepted", "svc/a/rejected", None);
        c.deliver(&message("svc/b/accepted", "{}"));
        assert!(rx.try_recv().is_err());
        c.deliver(&message("svc/a/accepted", "not even json"));
        let reply = rx.try_recv().unwrap().unwrap();
        assert!(reply.accepted);
        assert_eq!(reply.message.payload_str(), Some("not even json"));
    }

    #[test]
    fn a_dropped_registration_is_forgotten() {
        let c = channel(&BY_TOKEN);
        let (_rx, guard) = c.expect("svc/a/accepted", "svc/a/rejected", Some("t".into()));
        let (_rx2, _guard2) = c.expect("svc/a/accepted", "svc/a/rejected", Some("u".into()));
        assert_eq!(c.waiting_count(), 2);
        drop(guard);
        assert_eq!(c.waiting_count(), 1);
        // Its late reply is nobody's, and nothing panics.
        c.deliver(&message("svc/a/accepted", r#"{"clientToken":"t"}"#));
        assert_eq!(c.waiting_count(), 1);
    }

    #[test]
    fn gone_listeners_are_dropped() {
        let c = channel(&BY_TOKEN);
        drop(c.listen(|m| Some(m.clone())));
        drop(c.listen(|_| None::<()>));
        c.deliver(&message("svc/x/delta", "{}"));
        assert!(lock(&c.listeners).is_empty());
    }

    #[test]
    fn an_ended_dispatcher_fails_waiting_requests_and_allows_a_new_subscription() {
        let c = channel(&BY_TOKEN);
        c.active.store(7, Ordering::Release);
        let (mut rx, _guard) = c.expect("svc/a/accepted", "svc/a/rejected", Some("t".into()));
        let _events = c.listen(|m| Some(m.clone()));
        // A stale generation leaves a newer dispatcher and its requests alone.
        assert!(!c.dispatcher_ended(6, false));
        assert_eq!(c.active.load(Ordering::Acquire), 7);
        assert!(matches!(
            rx.try_recv(),
            Err(oneshot::error::TryRecvError::Empty)
        ));
        assert!(c.dispatcher_ended(7, false));
        assert_eq!(c.active.load(Ordering::Acquire), 0);
        assert!(matches!(rx.try_recv(), Ok(Err(Ended::SubscriptionsLost))));
        assert_eq!(
            lock(&c.listeners).len(),
            1,
            "listeners wait for the next subscription"
        );
        let (mut rx, _guard) = c.expect("svc/a/accepted", "svc/a/rejected", Some("u".into()));
        c.dispatcher_ended(0, true);
        assert!(matches!(rx.try_recv(), Ok(Err(Ended::Closed))));
        assert!(lock(&c.listeners).is_empty());
    }
}
