//! Broker-side MQTT sessions: subscriptions and the outbound queue of one client id.
//!
//! A session outlives its connections when it is persistent. While a connection
//! is attached, the router pushes deliveries into the session's queue and wakes
//! the connection's task, which drains the queue at its own pace; nothing the
//! router does waits on a socket.
//!
//! Queue policy (a slow subscriber never slows anyone else):
//! * attached: a QoS 0 delivery is dropped when [`Limits::outbound_queue`]
//!   deliveries are already waiting; a QoS 1 delivery is always queued, and
//!   when [`Limits::max_queued_qos1`] of them are waiting the oldest is dropped;
//! * detached (a persistent session between connections): QoS 0 deliveries are
//!   dropped (AWS stores QoS 1 messages only), QoS 1 ones are queued as above.
//!
//! A persistent session has a [`SessionLog`]: every QoS 1 delivery queued for
//! it (but those of shared subscriptions, whose groups hand them to other
//! members) is journaled with a `seq` as it is queued, and removed from the
//! store once acknowledged, expired or dropped (see [`super::journal`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use iotcore_mqtt::packet::{Publish, SubscriptionOptions};
use iotcore_mqtt::{ProtocolVersion, QoS};
use tokio::sync::{Notify, oneshot};

use super::journal::SessionLog;
use super::message::Message;
use crate::config::Limits;

/// Identifies one session object (a client id may have several over time).
pub(crate) type SessionKey = u64;

/// Identifies one network connection.
pub(crate) type ConnectionId = u64;

/// A message on its way to one session: the shared message, the QoS it is
/// delivered at and its RETAIN flag for this subscriber.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Delivery {
    /// The message.
    pub(crate) message: Arc<Message>,
    /// Delivery QoS: the lower of the message's and the subscription's.
    pub(crate) qos: QoS,
    /// RETAIN as sent to this subscriber.
    pub(crate) retain: bool,
    /// The shared subscription (`$share/<share-name>/<filter>`) it was routed
    /// through, if any: should this session not take it, another member of
    /// that group gets it (see [`super::shared`]).
    pub(crate) group: Option<Arc<str>>,
    /// Its `seq` in the store when it is journaled for a persistent session.
    pub(crate) seq: Option<u64>,
}

/// A QoS 1 delivery sent to a connection and not acknowledged: resent first
/// (with its packet id and DUP) when the session is resumed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct InFlight {
    /// The PUBLISH as sent.
    pub(crate) publish: Publish,
    /// Its `seq` in the store, if it is stored.
    pub(crate) seq: Option<u64>,
}

/// Why the broker tells an attached connection to go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kick {
    /// Another connection with the same client id took the session over.
    TakenOver,
}

/// What became of a delivery pushed into a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued for the attached connection.
    Queued,
    /// Queued in a detached persistent session.
    Stored,
    /// Dropped: QoS 0 to a full queue or to a detached session.
    Dropped,
    /// Queued, and the oldest queued QoS 1 delivery was dropped to make room.
    QueuedDroppingOldest,
}

/// One client id's session.
#[derive(Debug)]
pub(crate) struct Session {
    key: SessionKey,
    client_id: Arc<str>,
    protocol: ProtocolVersion,
    /// Present for a persistent session: where its state is journaled.
    log: Option<SessionLog>,
    state: Mutex<SessionState>,
    wake: Notify,
}

/// The mutable part of a [`Session`]; never held across an `.await`.
#[derive(Debug)]
pub(crate) struct SessionState {
    /// Topic filter → options.
    pub(crate) subscriptions: BTreeMap<String, SubscriptionOptions>,
    queue: VecDeque<Delivery>,
    queued_qos1: usize,
    /// QoS 1 deliveries a previous connection sent and saw no PUBACK for, with
    /// their packet ids: the next connection resumes them first.
    pub(crate) unacked: Vec<InFlight>,
    link: Option<Link>,
    /// How long the session outlives its connection (zero: not at all).
    pub(crate) expiry: Duration,
    /// Set when the connection went away; the session expires `expiry` later.
    pub(crate) detached_at: Option<SystemTime>,
    /// Bumped on every detach, so that a stale expiry timer does nothing.
    pub(crate) generation: u64,
    /// The session was discarded (clean start elsewhere, expiry, shutdown).
    pub(crate) ended: bool,
}

#[derive(Debug)]
struct Link {
    connection: ConnectionId,
    kick: oneshot::Sender<Kick>,
}

impl Session {
    /// A new, empty, detached session; `log` is where a persistent one is
    /// journaled (the caller stores the session itself).
    pub(crate) fn new(
        key: SessionKey,
        client_id: Arc<str>,
        protocol: ProtocolVersion,
        expiry: Duration,
        log: Option<SessionLog>,
    ) -> Self {
        Session {
            key,
            client_id,
            protocol,
            log,
            state: Mutex::new(SessionState {
                subscriptions: BTreeMap::new(),
                queue: VecDeque::new(),
                queued_qos1: 0,
                unacked: Vec::new(),
                link: None,
                expiry,
                detached_at: None,
                generation: 0,
                ended: false,
            }),
            wake: Notify::new(),
        }
    }

    /// This session object's key.
    pub(crate) fn key(&self) -> SessionKey {
        self.key
    }

    /// The client id (for the default authorization, also the thing name).
    pub(crate) fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Where the session is journaled: `Some` for a persistent session.
    pub(crate) fn log(&self) -> Option<&SessionLog> {
        self.log.as_ref()
    }

    /// Journals the session's settings (not its subscriptions or queue).
    pub(crate) fn log_settings(&self) {
        if let Some(log) = &self.log {
            let state = self.lock();
            if !state.ended {
                log.put_session(
                    self.protocol.level(),
                    u32::try_from(state.expiry.as_secs()).unwrap_or(u32::MAX),
                    state.detached_at,
                );
            }
        }
    }

    /// The protocol the session was created with; AWS does not resume a session
    /// across protocol versions.
    pub(crate) fn protocol(&self) -> ProtocolVersion {
        self.protocol
    }

    /// Locks the session state. A poisoned lock (a panic elsewhere while it was
    /// held) still yields the state: every update leaves it consistent.
    pub(crate) fn lock(&self) -> MutexGuard<'_, SessionState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Resolves when deliveries may be waiting for the attached connection.
    pub(crate) async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Wakes the attached connection's task.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Pushes a delivery according to the queue policy (see the module docs).
    pub(crate) fn push(&self, delivery: Delivery, limits: &Limits) -> Pushed {
        let pushed = self.lock().push(delivery, limits, self.log.as_ref());
        if pushed != Pushed::Dropped {
            self.wake();
        }
        pushed
    }

    /// Pushes a delivery only while a connection is attached (`None`
    /// otherwise): how a shared subscription's group hands a message to one
    /// of its connected members.
    pub(crate) fn push_if_attached(&self, delivery: Delivery, limits: &Limits) -> Option<Pushed> {
        let pushed = {
            let mut state = self.lock();
            if !state.is_attached() {
                return None;
            }
            state.push(delivery, limits, self.log.as_ref())
        };
        if pushed != Pushed::Dropped {
            self.wake();
        }
        Some(pushed)
    }

    /// Takes deliveries from the front of the queue (see [`SessionState::take`]).
    pub(crate) fn take(&self, qos1_budget: usize, max: usize, now: SystemTime) -> Vec<Delivery> {
        self.lock().take(qos1_budget, max, now, self.log.as_ref())
    }

    /// Journals that the delivery stored as `seq` was sent with `packet_id`.
    pub(crate) fn sent(&self, seq: u64, packet_id: u16) {
        if let Some(log) = &self.log {
            log.in_flight(seq, Some(packet_id));
        }
    }

    /// Journals that the delivery stored as `seq` is done with: acknowledged,
    /// or not to be delivered after all.
    pub(crate) fn forget(&self, seq: u64) {
        if let Some(log) = &self.log {
            log.remove(seq);
        }
    }
}

impl SessionState {
    /// True while a connection is attached.
    pub(crate) fn is_attached(&self) -> bool {
        self.link.is_some()
    }

    /// True when `connection` is the one attached.
    pub(crate) fn is_attached_to(&self, connection: ConnectionId) -> bool {
        self.link
            .as_ref()
            .is_some_and(|l| l.connection == connection)
    }

    /// Attaches `connection`, kicking the one attached before it, if any.
    pub(crate) fn attach(&mut self, connection: ConnectionId, kick: oneshot::Sender<Kick>) {
        self.kick(Kick::TakenOver);
        self.link = Some(Link { connection, kick });
        self.detached_at = None;
    }

    /// Tells the attached connection (if any) to go, and detaches it.
    pub(crate) fn kick(&mut self, why: Kick) {
        if let Some(old) = self.link.take() {
            // The old connection may already be gone; then there is no one to tell.
            let _ = old.kick.send(why);
        }
    }

    /// Detaches `connection` if it is the one attached; returns whether it was.
    /// QoS 0 deliveries still waiting are dropped: they are not kept offline.
    pub(crate) fn detach(&mut self, connection: ConnectionId, now: SystemTime) -> bool {
        if !self.is_attached_to(connection) {
            return false;
        }
        self.link = None;
        self.detached_at = Some(now);
        self.generation += 1;
        self.queue.retain(|d| d.qos != QoS::AtMostOnce);
        true
    }

    fn push(
        &mut self,
        mut delivery: Delivery,
        limits: &Limits,
        log: Option<&SessionLog>,
    ) -> Pushed {
        let attached = self.link.is_some();
        if delivery.qos == QoS::AtMostOnce {
            if !attached || self.queue.len() >= limits.outbound_queue {
                return Pushed::Dropped;
            }
            self.queue.push_back(delivery);
            return Pushed::Queued;
        }
        let mut outcome = if attached {
            Pushed::Queued
        } else {
            Pushed::Stored
        };
        let log = log.filter(|_| !self.ended);
        if self.queued_qos1 >= limits.max_queued_qos1 {
            if let Some(oldest) = self.queue.iter().position(|d| d.qos != QoS::AtMostOnce) {
                let dropped = self.queue.remove(oldest);
                if let (Some(log), Some(seq)) = (log, dropped.and_then(|d| d.seq)) {
                    log.remove(seq);
                }
                self.queued_qos1 -= 1;
                outcome = Pushed::QueuedDroppingOldest;
            }
        }
        if let Some(log) = log.filter(|_| delivery.group.is_none() && delivery.seq.is_none()) {
            delivery.seq = Some(log.enqueue(&delivery.message, delivery.retain));
        }
        self.queue.push_back(delivery);
        self.queued_qos1 += 1;
        outcome
    }

    /// Removes and returns the QoS 1 deliveries waiting that came through a
    /// shared subscription, for their groups to give to other members; QoS 0
    /// ones are dropped (AWS does not retry them).
    pub(crate) fn take_shared(&mut self) -> Vec<Delivery> {
        let mut shared = Vec::new();
        let mut kept = VecDeque::with_capacity(self.queue.len());
        for delivery in self.queue.drain(..) {
            match (&delivery.group, delivery.qos) {
                (None, _) => kept.push_back(delivery),
                (Some(_), QoS::AtMostOnce) => {}
                (Some(_), _) => {
                    self.queued_qos1 -= 1;
                    shared.push(delivery);
                }
            }
        }
        self.queue = kept;
        shared
    }

    /// Puts back, in front of the queue and in their order, QoS 1 deliveries a
    /// connection sent but did not see acknowledged.
    pub(crate) fn requeue_front(&mut self, unacked: impl DoubleEndedIterator<Item = Delivery>) {
        for delivery in unacked.rev().filter(|d| d.qos != QoS::AtMostOnce) {
            self.queue.push_front(delivery);
            self.queued_qos1 += 1;
        }
    }

    /// Takes deliveries from the front of the queue: any number of QoS 0 ones,
    /// at most `qos1_budget` QoS 1 ones, `max` in all, stopping (to keep order) at
    /// the first QoS 1 delivery over budget. Expired messages are discarded
    /// (and removed from `log`).
    fn take(
        &mut self,
        mut qos1_budget: usize,
        max: usize,
        now: SystemTime,
        log: Option<&SessionLog>,
    ) -> Vec<Delivery> {
        let mut taken = Vec::new();
        while taken.len() < max {
            let Some(front) = self.queue.front() else {
                break;
            };
            let qos1 = front.qos != QoS::AtMostOnce;
            if qos1 && qos1_budget == 0 && !front.message.is_expired(now) {
                break;
            }
            let Some(delivery) = self.queue.pop_front() else {
                break;
            };
            if qos1 {
                self.queued_qos1 -= 1;
            }
            if delivery.message.is_expired(now) {
                if let (Some(log), Some(seq)) = (log, delivery.seq) {
                    log.remove(seq);
                }
                continue;
            }
            if qos1 {
                qos1_budget -= 1;
            }
            taken.push(delivery);
        }
        taken
    }

    /// Number of deliveries waiting.
    pub(crate) fn queue_len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use iotcore_mqtt::Properties;

    fn delivery(n: u8, qos: QoS) -> Delivery {
        let message = Message::new(
            format!("t/{n}").into(),
            Bytes::from(vec![n]),
            qos,
            false,
            &Properties::default(),
            SystemTime::UNIX_EPOCH,
        );
        Delivery {
            message: Arc::new(message),
            qos,
            retain: false,
            group: None,
            seq: None,
        }
    }

    fn topics(deliveries: &[Delivery]) -> Vec<&str> {
        deliveries
            .iter()
            .map(|d| d.message.topic.as_str())
            .collect()
    }

    fn attached_session() -> (Session, oneshot::Receiver<Kick>) {
        let session = Session::new(
            1,
            "dev1".into(),
            ProtocolVersion::V5,
            Duration::from_secs(60),
            None,
        );
        let (tx, rx) = oneshot::channel();
        session.lock().attach(7, tx);
        (session, rx)
    }

    #[test]
    fn qos0_is_dropped_when_the_queue_is_full_and_qos1_is_kept() {
        let limits = Limits {
            outbound_queue: 2,
            ..Limits::default()
        };
        let (session, _kick) = attached_session();
        assert_eq!(
            session.push(delivery(0, QoS::AtMostOnce), &limits),
            Pushed::Queued
        );
        assert_eq!(
            session.push(delivery(1, QoS::AtMostOnce), &limits),
            Pushed::Queued
        );
        assert_eq!(
            session.push(delivery(2, QoS::AtMostOnce), &limits),
            Pushed::Dropped
        );
        assert_eq!(
            session.push(delivery(3, QoS::AtLeastOnce), &limits),
            Pushed::Queued
        );
        assert_eq!(
            topics(&session.take(10, 10, SystemTime::UNIX_EPOCH)),
            ["t/0", "t/1", "t/3"]
        );
    }

    #[test]
    fn the_oldest_qos1_delivery_goes_when_the_qos1_cap_is_reached() {
        let limits = Limits {
            max_queued_qos1: 2,
            ..Limits::default()
        };
        let (session, _kick) = attached_session();
        session.push(delivery(0, QoS::AtLeastOnce), &limits);
        session.push(delivery(1, QoS::AtMostOnce), &limits);
        session.push(delivery(2, QoS::AtLeastOnce), &limits);
        assert_eq!(
            session.push(delivery(3, QoS::AtLeastOnce), &limits),
            Pushed::QueuedDroppingOldest
        );
        assert_eq!(
            topics(&session.take(10, 10, SystemTime::UNIX_EPOCH)),
            ["t/1", "t/2", "t/3"]
        );
    }

    #[test]
    fn a_detached_session_keeps_qos1_only() {
        let limits = Limits::default();
        let (session, _kick) = attached_session();
        session.push(delivery(0, QoS::AtMostOnce), &limits);
        session.push(delivery(1, QoS::AtLeastOnce), &limits);
        assert!(session.lock().detach(7, SystemTime::UNIX_EPOCH));
        assert_eq!(
            session.push(delivery(2, QoS::AtMostOnce), &limits),
            Pushed::Dropped
        );
        assert_eq!(
            session.push(delivery(3, QoS::AtLeastOnce), &limits),
            Pushed::Stored
        );
        assert_eq!(
            topics(&session.take(10, 10, SystemTime::UNIX_EPOCH)),
            ["t/1", "t/3"]
        );
    }

    #[test]
    fn take_respects_the_qos1_budget_and_keeps_order() {
        let limits = Limits::default();
        let (session, _kick) = attached_session();
        for (n, qos) in [
            (0, QoS::AtLeastOnce),
            (1, QoS::AtMostOnce),
            (2, QoS::AtLeastOnce),
            (3, QoS::AtMostOnce),
        ] {
            session.push(delivery(n, qos), &limits);
        }
        let mut state = session.lock();
        assert_eq!(
            topics(&state.take(1, 10, SystemTime::UNIX_EPOCH, None)),
            ["t/0", "t/1"]
        );
        assert_eq!(
            topics(&state.take(0, 10, SystemTime::UNIX_EPOCH, None)),
            Vec::<&str>::new()
        );
        assert_eq!(
            topics(&state.take(5, 1, SystemTime::UNIX_EPOCH, None)),
            ["t/2"]
        );
        assert_eq!(state.queue_len(), 1);
    }

    #[test]
    fn expired_messages_are_discarded_when_taken() {
        let limits = Limits::default();
        let (session, _kick) = attached_session();
        let properties = Properties {
            message_expiry_interval: Some(5),
            ..Properties::default()
        };
        let expiring = Message::new(
            "old".into(),
            Bytes::new(),
            QoS::AtLeastOnce,
            false,
            &properties,
            SystemTime::UNIX_EPOCH,
        );
        session.push(
            Delivery {
                message: Arc::new(expiring),
                qos: QoS::AtLeastOnce,
                retain: false,
                group: None,
                seq: None,
            },
            &limits,
        );
        session.push(delivery(1, QoS::AtLeastOnce), &limits);
        let later = SystemTime::UNIX_EPOCH + Duration::from_secs(5);
        assert_eq!(
            topics(&session.take(0, 10, later)),
            Vec::<&str>::new(),
            "expired one needs no budget, live one does"
        );
        assert_eq!(topics(&session.take(1, 10, later)), ["t/1"]);
    }

    #[test]
    fn attaching_kicks_the_previous_connection_and_only_the_attached_one_detaches() {
        let (session, first) = attached_session();
        let (tx, mut second) = oneshot::channel();
        session.lock().attach(8, tx);
        assert_eq!(first.blocking_recv(), Ok(Kick::TakenOver));
        assert!(
            !session.lock().detach(7, SystemTime::UNIX_EPOCH),
            "the old connection no longer owns it"
        );
        assert!(session.lock().is_attached_to(8));
        assert!(second.try_recv().is_err());
        assert!(session.lock().detach(8, SystemTime::UNIX_EPOCH));
        assert!(!session.lock().is_attached());
    }

    #[test]
    fn shared_deliveries_are_taken_out_of_the_queue_and_the_others_stay() {
        let limits = Limits::default();
        let (session, _kick) = attached_session();
        let shared = |n, qos| Delivery {
            group: Some("$share/g/t/+".into()),
            ..delivery(n, qos)
        };
        session.push(delivery(0, QoS::AtLeastOnce), &limits);
        session.push(shared(1, QoS::AtLeastOnce), &limits);
        session.push(shared(2, QoS::AtMostOnce), &limits);
        session.push(delivery(3, QoS::AtMostOnce), &limits);
        session.push(shared(4, QoS::AtLeastOnce), &limits);
        let mut state = session.lock();
        assert_eq!(topics(&state.take_shared()), ["t/1", "t/4"]);
        assert_eq!(
            topics(&state.take(10, 10, SystemTime::UNIX_EPOCH, None)),
            ["t/0", "t/3"]
        );
        assert_eq!(state.queue_len(), 0);
    }

    #[test]
    fn push_if_attached_refuses_a_detached_session() {
        let limits = Limits::default();
        let (session, _kick) = attached_session();
        assert_eq!(
            session.push_if_attached(delivery(0, QoS::AtLeastOnce), &limits),
            Some(Pushed::Queued)
        );
        assert!(session.lock().detach(7, SystemTime::UNIX_EPOCH));
        assert_eq!(
            session.push_if_attached(delivery(1, QoS::AtLeastOnce), &limits),
            None
        );
        assert_eq!(session.lock().queue_len(), 1);
    }

    #[test]
    fn unacked_deliveries_go_back_in_front_in_order() {
        let limits = Limits::default();
        let (session, _kick) = attached_session();
        session.push(delivery(2, QoS::AtLeastOnce), &limits);
        let mut state = session.lock();
        state.requeue_front(
            [
                delivery(0, QoS::AtLeastOnce),
                delivery(9, QoS::AtMostOnce),
                delivery(1, QoS::AtLeastOnce),
            ]
            .into_iter(),
        );
        assert_eq!(
            topics(&state.take(10, 10, SystemTime::UNIX_EPOCH, None)),
            ["t/0", "t/1", "t/2"]
        );
    }
}
