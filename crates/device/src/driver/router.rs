//! Delivery of received messages to the streams that asked for them.

use std::sync::{Arc, Mutex, PoisonError};

use iotcore_mqtt::topic::{self, MatchMode};

use crate::mailbox::{self, Pushed};
use crate::message::Message;
use crate::status::ConnectionState;
use crate::streams::{Messages, StatusEvents, Subscription};

/// Listeners the [`crate::Client`] handle registers without a round trip
/// through the driver: catch-all message streams and status event streams.
#[derive(Default)]
pub(crate) struct Listeners {
    messages: Mutex<Vec<mailbox::Sender<Message>>>,
    status: Mutex<Vec<mailbox::Sender<ConnectionState>>>,
    capacity: usize,
}

impl Listeners {
    pub(crate) fn new(capacity: usize) -> Arc<Listeners> {
        Arc::new(Listeners {
            capacity,
            ..Listeners::default()
        })
    }

    /// A new catch-all stream.
    pub(crate) fn messages(&self) -> Messages {
        let (tx, rx) = mailbox::mailbox(self.capacity);
        lock(&self.messages).push(tx);
        Messages::new(rx)
    }

    /// A new status event stream.
    pub(crate) fn status_events(&self) -> StatusEvents {
        let (tx, rx) = mailbox::mailbox(self.capacity);
        lock(&self.status).push(tx);
        StatusEvents::new(rx)
    }

    /// Sends a state change to every status stream.
    pub(crate) fn publish_status(&self, state: &ConnectionState) {
        lock(&self.status).retain(|tx| tx.push(state.clone()) != Pushed::ReceiverGone);
    }

    /// Ends every stream (the client is closed).
    pub(crate) fn close(&self) {
        lock(&self.messages).clear();
        lock(&self.status).clear();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One subscription stream.
struct Route {
    filter: String,
    tx: mailbox::Sender<Message>,
}

/// Routes messages to subscription streams by topic filter, and to the
/// catch-all streams.
pub(crate) struct Router {
    routes: Vec<Route>,
    listeners: Arc<Listeners>,
    mode: MatchMode,
    capacity: usize,
}

impl Router {
    pub(crate) fn new(listeners: Arc<Listeners>, mode: MatchMode, capacity: usize) -> Router {
        Router {
            routes: Vec::new(),
            listeners,
            mode,
            capacity,
        }
    }

    /// A new stream for `filter`.
    pub(crate) fn add(&mut self, filter: String) -> Subscription {
        let (tx, rx) = mailbox::mailbox(self.capacity);
        self.routes.push(Route {
            filter: filter.clone(),
            tx,
        });
        Subscription::new(filter, rx)
    }

    /// Ends every stream of `filter`.
    pub(crate) fn remove(&mut self, filter: &str) {
        self.routes.retain(|r| r.filter != filter);
    }

    /// Delivers `message` to every stream whose filter matches its topic,
    /// and to every catch-all stream. Returns how many subscription streams
    /// matched.
    pub(crate) fn deliver(&mut self, message: &Message) -> usize {
        let mode = self.mode;
        let mut matched = 0;
        self.routes.retain(|route| {
            if !topic::matches(&route.filter, message.topic(), mode) {
                return !route.tx.is_closed();
            }
            matched += 1;
            match route.tx.push(message.clone()) {
                Pushed::Delivered => true,
                Pushed::DisplacedOldest => {
                    tracing::warn!(
                        filter = %route.filter,
                        "subscription stream is full: discarded its oldest message"
                    );
                    true
                }
                Pushed::ReceiverGone => false,
            }
        });
        lock(&self.listeners.messages)
            .retain(|tx| tx.push(message.clone()) != Pushed::ReceiverGone);
        matched
    }

    /// Ends every stream.
    pub(crate) fn close(&mut self) {
        self.routes.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use iotcore_mqtt::QoS;
    use iotcore_mqtt::packet::Publish;

    fn message(topic: &str) -> Message {
        Message::new(Publish::new(topic, "x", QoS::AtMostOnce))
    }

    #[tokio::test]
    async fn each_stream_gets_only_its_filter_and_the_catch_all_gets_everything() {
        let listeners = Listeners::new(8);
        let mut router = Router::new(listeners.clone(), MatchMode::Aws, 8);
        let mut temps = router.add("dt/+/temp".into());
        let mut cmds = router.add("cmd/#".into());
        let all = listeners.messages();
        assert_eq!(router.deliver(&message("dt/a/temp")), 1);
        assert_eq!(router.deliver(&message("cmd/reboot")), 1);
        assert_eq!(router.deliver(&message("other")), 0);
        router.close();
        listeners.close();
        assert_eq!(temps.next().await.unwrap().topic(), "dt/a/temp");
        assert!(temps.next().await.is_none());
        assert_eq!(cmds.next().await.unwrap().topic(), "cmd/reboot");
        let topics: Vec<String> = all.map(|m| m.topic().to_owned()).collect().await;
        assert_eq!(topics, ["dt/a/temp", "cmd/reboot", "other"]);
    }

    #[test]
    fn a_full_stream_loses_its_oldest_message_without_affecting_the_others() {
        let listeners = Listeners::new(2);
        let mut router = Router::new(listeners, MatchMode::Aws, 2);
        let slow = router.add("a/#".into());
        let fast = router.add("a/#".into());
        for i in 0..5 {
            router.deliver(&message(&format!("a/{i}")));
            assert_eq!(fast.try_next_for_test().unwrap().topic(), format!("a/{i}"));
        }
        assert_eq!(slow.dropped_messages(), 3);
        assert_eq!(slow.try_next_for_test().unwrap().topic(), "a/3");
        assert_eq!(slow.try_next_for_test().unwrap().topic(), "a/4");
    }

    #[test]
    fn dropped_streams_are_forgotten() {
        let listeners = Listeners::new(2);
        let mut router = Router::new(listeners, MatchMode::Aws, 2);
        drop(router.add("a/#".into()));
        router.deliver(&message("b"));
        assert!(router.routes.is_empty());
    }
}
