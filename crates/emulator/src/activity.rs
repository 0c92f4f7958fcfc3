//! What is happening in the broker, for whoever watches (the console): every
//! routed message, who is connected and how, and a log of connections,
//! disconnections and refusals with the reason that decided each.
//!
//! Watching costs nothing when nobody watches: a message is handed to the tap
//! only while a receiver exists. Receivers that fall behind lose the oldest
//! items (they are told how many), never slow the broker down.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use iotcore_mqtt::ProtocolVersion;
use tokio::sync::broadcast;

use crate::broker::message::Message;
use crate::broker::session::ConnectionId;

/// Messages a watcher may fall behind by before it loses the oldest.
const MESSAGE_BACKLOG: usize = 1024;
/// Events a watcher may fall behind by before it loses the oldest.
const EVENT_BACKLOG: usize = 256;
/// Events kept for a watcher that arrives later.
const RECENT_EVENTS: usize = 200;

/// What kind of thing happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventKind {
    /// A CONNECT was accepted.
    Connected,
    /// A connection ended.
    Disconnected,
    /// A CONNECT, PUBLISH or SUBSCRIBE was refused.
    Refused,
}

impl EventKind {
    /// A lowercase word for it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EventKind::Connected => "connected",
            EventKind::Disconnected => "disconnected",
            EventKind::Refused => "refused",
        }
    }
}

/// One entry of the activity log.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    /// When it happened.
    pub(crate) at: SystemTime,
    /// What happened.
    pub(crate) kind: EventKind,
    /// The client id (empty before a CONNECT named one).
    pub(crate) client_id: String,
    /// The request refused (`connect`, `publish`, `subscribe`), or AWS's
    /// `disconnectReason` of a disconnection.
    pub(crate) label: String,
    /// The topic or filter a refusal was about.
    pub(crate) subject: Option<String>,
    /// Why, in words: the policy statement that decided, the certificate's status…
    pub(crate) why: String,
}

/// A connection whose CONNECT was accepted.
#[derive(Debug, Clone)]
pub(crate) struct Connection {
    /// The client id.
    pub(crate) client_id: String,
    /// Who it authenticated as.
    pub(crate) principal: String,
    /// The way it came in.
    pub(crate) door: String,
    /// MQTT 3.1.1 or 5.
    pub(crate) protocol: ProtocolVersion,
    /// Its address.
    pub(crate) peer: SocketAddr,
    /// When its CONNECT was accepted.
    pub(crate) since: SystemTime,
}

/// The activity hub shared by the broker and every connection. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Activity {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    messages: broadcast::Sender<Arc<Message>>,
    events: broadcast::Sender<Arc<Event>>,
    recent: Mutex<VecDeque<Arc<Event>>>,
    connections: Mutex<BTreeMap<ConnectionId, Connection>>,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            inner: Arc::new(Inner {
                messages: broadcast::channel(MESSAGE_BACKLOG).0,
                events: broadcast::channel(EVENT_BACKLOG).0,
                recent: Mutex::new(VecDeque::with_capacity(RECENT_EVENTS)),
                connections: Mutex::new(BTreeMap::new()),
            }),
        }
    }
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Activity {
    /// A message the broker routed (any topic, reserved ones included).
    pub(crate) fn routed(&self, message: &Arc<Message>) {
        if self.inner.messages.receiver_count() > 0 {
            let _ = self.inner.messages.send(Arc::clone(message));
        }
    }

    /// Every message routed from now on.
    pub(crate) fn messages(&self) -> broadcast::Receiver<Arc<Message>> {
        self.inner.messages.subscribe()
    }

    /// Every event from now on.
    pub(crate) fn events(&self) -> broadcast::Receiver<Arc<Event>> {
        self.inner.events.subscribe()
    }

    /// The last events, oldest first.
    pub(crate) fn recent(&self) -> Vec<Arc<Event>> {
        locked(&self.inner.recent).iter().cloned().collect()
    }

    /// The connections whose CONNECT was accepted, by client id.
    pub(crate) fn connections(&self) -> Vec<Connection> {
        let mut all: Vec<Connection> = locked(&self.inner.connections).values().cloned().collect();
        all.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        all
    }

    /// `connection`'s CONNECT was accepted.
    pub(crate) fn connected(&self, id: ConnectionId, connection: Connection) {
        let why = format!(
            "{} as {}, MQTT {}, from {}",
            connection.door,
            connection.principal,
            protocol_name(connection.protocol),
            connection.peer
        );
        let client_id = connection.client_id.clone();
        locked(&self.inner.connections).insert(id, connection);
        self.record(EventKind::Connected, client_id, String::new(), None, why);
    }

    /// Connection `id` of `client_id` ended for AWS's `reason` (`why` in words).
    pub(crate) fn disconnected(
        &self,
        id: ConnectionId,
        client_id: &str,
        reason: &str,
        why: String,
    ) {
        locked(&self.inner.connections).remove(&id);
        self.record(
            EventKind::Disconnected,
            client_id.to_owned(),
            reason.to_owned(),
            None,
            why,
        );
    }

    /// A request of `client_id` was refused: `action` on `subject`, for `why`.
    pub(crate) fn refused(
        &self,
        client_id: &str,
        action: &str,
        subject: Option<&str>,
        why: impl Into<String>,
    ) {
        self.record(
            EventKind::Refused,
            client_id.to_owned(),
            action.to_owned(),
            subject.map(str::to_owned),
            why.into(),
        );
    }

    fn record(
        &self,
        kind: EventKind,
        client_id: String,
        label: String,
        subject: Option<String>,
        why: String,
    ) {
        let event = Arc::new(Event {
            at: SystemTime::now(),
            kind,
            client_id,
            label,
            subject,
            why,
        });
        {
            let mut recent = locked(&self.inner.recent);
            if recent.len() == RECENT_EVENTS {
                recent.pop_front();
            }
            recent.push_back(Arc::clone(&event));
        }
        let _ = self.inner.events.send(event);
    }
}

/// "3.1.1" or "5".
pub(crate) fn protocol_name(protocol: ProtocolVersion) -> &'static str {
    match protocol {
        ProtocolVersion::V311 => "3.1.1",
        ProtocolVersion::V5 => "5",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(client_id: &str) -> Connection {
        Connection {
            client_id: client_id.into(),
            principal: "certificate abc".into(),
            door: "MQTT over mutual TLS".into(),
            protocol: ProtocolVersion::V5,
            peer: "127.0.0.1:5000".parse().unwrap(),
            since: SystemTime::now(),
        }
    }

    #[test]
    fn connections_come_and_go_and_the_log_keeps_why() {
        let activity = Activity::default();
        let mut events = activity.events();
        activity.connected(1, connection("b"));
        activity.connected(2, connection("a"));
        let names: Vec<_> = activity
            .connections()
            .into_iter()
            .map(|c| c.client_id)
            .collect();
        assert_eq!(names, ["a", "b"]);
        activity.disconnected(1, "b", "AUTH_ERROR", "certificate abc is REVOKED".into());
        assert_eq!(activity.connections().len(), 1);
        let first = events.try_recv().unwrap();
        assert_eq!(first.kind, EventKind::Connected);
        assert!(first.why.contains("MQTT 5"), "{}", first.why);
        events.try_recv().unwrap();
        let gone = events.try_recv().unwrap();
        assert_eq!(
            (gone.label.as_str(), gone.why.as_str()),
            ("AUTH_ERROR", "certificate abc is REVOKED")
        );
        assert_eq!(activity.recent().len(), 3);
    }

    #[test]
    fn the_log_keeps_the_last_events_only() {
        let activity = Activity::default();
        for i in 0..RECENT_EVENTS + 5 {
            activity.refused(
                &format!("c{i}"),
                "publish",
                Some("t"),
                "no statement allowed it",
            );
        }
        let recent = activity.recent();
        assert_eq!(recent.len(), RECENT_EVENTS);
        assert_eq!(recent[0].client_id, "c5");
    }

    #[test]
    fn messages_reach_watchers_only_while_they_watch() {
        let activity = Activity::default();
        let message = Arc::new(Message::new(
            "a/b".into(),
            bytes::Bytes::from_static(b"{}"),
            iotcore_mqtt::QoS::AtMostOnce,
            false,
            &iotcore_mqtt::Properties::default(),
            SystemTime::now(),
        ));
        activity.routed(&message);
        let mut watcher = activity.messages();
        activity.routed(&message);
        assert_eq!(watcher.try_recv().unwrap().topic, "a/b");
        assert!(watcher.try_recv().is_err());
    }
}
