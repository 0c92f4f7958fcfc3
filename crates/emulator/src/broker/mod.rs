//! The message broker: sessions by client id, the subscription trie shared by all
//! connections, shared subscription groups, retained messages, and routing.
//!
//! Locks are short and never held across an `.await`. Lock order, where two
//! are held at once: `sessions` → a session's state → `subscriptions`, and
//! `sessions` → `shared` → a group's state → a session's state. Routing a
//! publish takes the tries' read locks only to collect the matching sessions
//! and groups, then pushes into each session's queue (see [`session`] for the
//! queue policy) and hands the message to each group (see [`shared`]).

pub(crate) mod authz;
pub(crate) mod journal;
pub(crate) mod message;
pub(crate) mod negotiate;
pub(crate) mod records;
pub(crate) mod retained;
pub(crate) mod session;
pub(crate) mod shared;
pub(crate) mod trie;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime};

use iotcore_mqtt::packet::{RetainHandling, SubscriptionOptions};
use iotcore_mqtt::topic::{MatchMode, SharedFilter};
use iotcore_mqtt::{ProtocolVersion, QoS};
use tokio::sync::{oneshot, watch};

use self::journal::{Durable, Journal, Op, SessionLog};
use self::message::Message;
use self::records::{RestoredSession, delivery_from_publish};
use self::retained::{Retained, RetainedChange};
use self::session::{ConnectionId, Delivery, InFlight, Kick, Pushed, Session, SessionKey};
use self::shared::{Routed, SharedGroups};
use self::trie::SubscriptionTrie;
use crate::activity::Activity;
use crate::config::EmulatorConfig;
use crate::connection::stopped;

/// One subscription in the trie.
#[derive(Clone, Debug)]
struct Subscriber {
    session: Arc<Session>,
    options: SubscriptionOptions,
}

/// A connection attached to its session.
#[derive(Debug)]
pub(crate) struct Attached {
    /// The session, new or resumed.
    pub(crate) session: Arc<Session>,
    /// CONNACK's session-present flag.
    pub(crate) session_present: bool,
    /// Deliveries a previous connection left unacknowledged, to resume first.
    pub(crate) resume: Vec<InFlight>,
    /// Fires when the broker wants the connection gone (takeover).
    pub(crate) kick: oneshot::Receiver<Kick>,
}

/// What a SUBSCRIBE of one filter did.
#[derive(Debug)]
pub(crate) struct Subscribed {
    /// The retained message to deliver for it, if any.
    pub(crate) retained: Option<Delivery>,
}

/// What routing a message did.
#[derive(Debug)]
struct Published {
    /// Sessions (and group backlogs) it was queued for.
    delivered: usize,
    /// It changed stored state: queued for a persistent session, or retained.
    stored: bool,
}

/// The broker shared by every connection of an emulator.
#[derive(Debug)]
pub(crate) struct Broker {
    config: EmulatorConfig,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    subscriptions: RwLock<SubscriptionTrie<SessionKey, Subscriber>>,
    /// Shared subscription groups (`$share/<share-name>/<filter>`).
    shared: RwLock<SharedGroups>,
    retained: Retained,
    journal: Journal,
    next_key: AtomicU64,
    /// Flips to `true` when the emulator stops; session expiry timers end.
    stopping: watch::Receiver<bool>,
    /// Who watches what is routed and who connects (the console).
    activity: Activity,
}

impl Broker {
    /// An empty broker.
    pub(crate) fn new(
        config: EmulatorConfig,
        journal: Journal,
        stopping: watch::Receiver<bool>,
    ) -> Self {
        Broker {
            config,
            sessions: Mutex::new(HashMap::new()),
            subscriptions: RwLock::new(SubscriptionTrie::new(MatchMode::Aws)),
            shared: RwLock::new(SharedGroups::new(MatchMode::Aws)),
            retained: Retained::default(),
            journal,
            next_key: AtomicU64::new(1),
            stopping,
            activity: Activity::default(),
        }
    }

    /// The emulator configuration.
    pub(crate) fn config(&self) -> &EmulatorConfig {
        &self.config
    }

    /// What is routed and who connects, for whoever watches.
    pub(crate) fn activity(&self) -> &Activity {
        &self.activity
    }

    /// The journal: what must be stored before it is acknowledged.
    pub(crate) fn journal(&self) -> &Journal {
        &self.journal
    }

    fn sessions(&self) -> MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn new_session(
        &self,
        client_id: &str,
        protocol: ProtocolVersion,
        expiry: Duration,
    ) -> Arc<Session> {
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        let client_id: Arc<str> = client_id.into();
        let log = (!expiry.is_zero())
            .then(|| SessionLog::new(self.journal.clone(), Arc::clone(&client_id)));
        Arc::new(Session::new(key, client_id, protocol, expiry, log))
    }

    /// Attaches `connection` to the session of `client_id`: resumes it when
    /// `clean_start` is false and it was created with the same protocol version
    /// (AWS does not resume across versions), otherwise ends it and starts a new
    /// one. A connection already attached is kicked (takeover).
    pub(crate) fn attach(
        self: &Arc<Self>,
        client_id: &str,
        protocol: ProtocolVersion,
        clean_start: bool,
        expiry: Duration,
        connection: ConnectionId,
    ) -> Attached {
        let (kick_tx, kick) = oneshot::channel();
        let mut sessions = self.sessions();
        let existing = sessions.get(client_id).cloned();
        let resumable = existing
            .as_ref()
            .is_some_and(|s| !clean_start && s.protocol() == protocol && !s.lock().ended);
        let (session, session_present) = match existing {
            Some(session) if resumable => (session, true),
            existing => {
                if let Some(old) = existing {
                    self.end_session(&mut sessions, &old);
                }
                let session = self.new_session(client_id, protocol, expiry);
                sessions.insert(client_id.to_owned(), Arc::clone(&session));
                (session, false)
            }
        };
        let resume = {
            let mut state = session.lock();
            state.attach(connection, kick_tx);
            state.expiry = expiry;
            std::mem::take(&mut state.unacked)
        };
        // Still under the registry lock: a session ended before is deleted
        // from the store before this one is written.
        session.log_settings();
        drop(sessions);
        // Deliveries stored while it was offline are waiting, and so may be
        // messages its shared subscriptions' groups kept while no member was on.
        session.wake();
        self.flush_group_backlogs(&session);
        Attached {
            session,
            session_present,
            resume,
            kick,
        }
    }

    /// Ends `session`: kicks its connection, drops its subscriptions, removes it
    /// from the registry and the store. The caller holds the registry lock.
    fn end_session(&self, sessions: &mut HashMap<String, Arc<Session>>, session: &Arc<Session>) {
        let (filters, shared): (Vec<String>, _) = {
            let mut state = session.lock();
            state.ended = true;
            state.kick(Kick::TakenOver);
            let filters = std::mem::take(&mut state.subscriptions)
                .into_keys()
                .collect();
            (filters, state.take_shared())
        };
        for filter in &filters {
            self.remove_subscription(session, filter);
        }
        self.redistribute(shared);
        if sessions
            .get(session.client_id())
            .is_some_and(|s| Arc::ptr_eq(s, session))
        {
            sessions.remove(session.client_id());
        }
        if let Some(log) = session.log() {
            log.delete_session();
        }
    }

    /// Detaches `connection` from `session` when the connection ends.
    ///
    /// `unacked` are the QoS 1 deliveries the connection sent or queued without
    /// receiving a PUBACK; the session keeps them if it lives on (the caller
    /// gives those of shared subscriptions to [`redistribute`](Self::redistribute)
    /// instead). `expiry` replaces the session's expiry (an MQTT 5 DISCONNECT
    /// may change it). A session with no expiry ends now; a persistent one is
    /// saved and expires later unless a connection resumes it. Either way the
    /// deliveries its shared subscriptions had queued go to other members of
    /// their groups.
    pub(crate) fn detach(
        self: &Arc<Self>,
        session: &Arc<Session>,
        connection: ConnectionId,
        unacked: Vec<InFlight>,
        expiry: Option<Duration>,
        now: SystemTime,
    ) {
        let mut state = session.lock();
        if state.ended {
            return;
        }
        if !state.detach(connection, now) {
            // Taken over by a connection that resumed the session and is
            // already running: it gets these as new deliveries.
            if let Some(log) = session.log() {
                for seq in unacked.iter().filter_map(|u| u.seq) {
                    log.in_flight(seq, None);
                }
            }
            state.requeue_front(
                unacked
                    .iter()
                    .map(|u| delivery_from_publish(&u.publish, None, u.seq, now)),
            );
            drop(state);
            session.wake();
            return;
        }
        // Other members of its groups take what its shared subscriptions
        // brought, once no lock is held.
        let shared = state.take_shared();
        if let Some(expiry) = expiry {
            state.expiry = expiry;
        }
        if state.expiry.is_zero() {
            drop(state);
            let mut sessions = self.sessions();
            self.end_session(&mut sessions, session);
            drop(sessions);
            self.redistribute(shared);
            return;
        }
        state.unacked.splice(0..0, unacked);
        let (expiry, generation) = (state.expiry, state.generation);
        drop(state);
        session.log_settings();
        self.expire_later(Arc::clone(session), generation, expiry);
        self.redistribute(shared);
    }

    /// Ends `session` after `expiry` unless it was attached again meanwhile
    /// (its generation changed) or the emulator stops first.
    pub(crate) fn expire_later(
        self: &Arc<Self>,
        session: Arc<Session>,
        generation: u64,
        expiry: Duration,
    ) {
        let broker = Arc::clone(self);
        let mut stopping = self.stopping.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(expiry) => broker.expire(&session, generation),
                () = stopped(&mut stopping) => {}
            }
        });
    }

    fn expire(&self, session: &Arc<Session>, generation: u64) {
        let mut sessions = self.sessions();
        let expired = {
            let state = session.lock();
            !state.ended && !state.is_attached() && state.generation == generation
        };
        if expired {
            tracing::info!(
                client_id = session.client_id(),
                "persistent session expired"
            );
            self.end_session(&mut sessions, session);
        }
    }

    /// Re-creates a persistent session loaded from the store, detached, with its
    /// subscriptions and queued messages; it expires `expiry` after it was
    /// detached (after `now` if it was attached when saved).
    pub(crate) fn restore_session(self: &Arc<Self>, restored: RestoredSession, now: SystemTime) {
        let RestoredSession {
            client_id,
            protocol,
            expiry,
            detached_at,
            subscriptions,
            unacked,
            queued,
        } = restored;
        let detached_at = detached_at.unwrap_or(now);
        let Ok(remaining) = (detached_at + expiry).duration_since(now) else {
            tracing::info!(
                client_id,
                "persistent session expired while the emulator was stopped"
            );
            self.journal.send(Op::DeleteSession(client_id.into()));
            return;
        };
        let seqs = unacked.iter().filter_map(|u| u.seq);
        if let Some(max) = seqs.chain(queued.iter().filter_map(|d| d.seq)).max() {
            self.journal.seq_above(max);
        }
        let session = self.new_session(&client_id, protocol, expiry);
        let generation = {
            let mut state = session.lock();
            state.detached_at = Some(detached_at);
            state.unacked = unacked;
            state.requeue_front(queued.into_iter());
            state.subscriptions.extend(subscriptions.iter().cloned());
            state.generation
        };
        for (filter, options) in subscriptions {
            self.add_subscription(&session, &filter, options);
        }
        self.sessions().insert(client_id, Arc::clone(&session));
        self.expire_later(session, generation, remaining);
    }

    /// Adds or replaces `session`'s subscription to `filter`, and returns the
    /// retained message the subscription receives (MQTT 5 retain handling
    /// applied). The caller has checked the filter and the authorization, and
    /// checks `iot:Receive` on what it delivers.
    ///
    /// A shared subscription (`$share/<share-name>/<filter>`) joins its group
    /// instead, gets no retained message (AWS and MQTT 5 §4.8.2), and takes
    /// what the group kept while no member was connected.
    pub(crate) fn subscribe(
        &self,
        session: &Arc<Session>,
        filter: &str,
        options: SubscriptionOptions,
    ) -> Subscribed {
        let is_new = {
            let mut state = session.lock();
            if let Some(log) = session.log().filter(|_| !state.ended) {
                log.subscribe(filter, options);
            }
            state
                .subscriptions
                .insert(filter.to_owned(), options)
                .is_none()
        };
        let group = self.add_subscription(session, filter, options);
        if let Some(group) = group {
            group.flush_backlog(&self.config.limits);
            return Subscribed { retained: None };
        }
        let wanted = match options.retain_handling {
            RetainHandling::OnSubscribe => true,
            RetainHandling::OnNewSubscribe => is_new,
            RetainHandling::Never => false,
        };
        let retained = wanted
            .then(|| self.retained.for_filter(filter, SystemTime::now()))
            .flatten()
            .map(|message| Delivery {
                qos: message.qos.min(options.qos),
                message,
                retain: true,
                group: None,
                seq: None,
            });
        Subscribed { retained }
    }

    /// Puts `session`'s subscription to `filter` in the trie, or in its
    /// group for a shared subscription (returned). The caller keeps the
    /// session's own list of subscriptions.
    fn add_subscription(
        &self,
        session: &Arc<Session>,
        filter: &str,
        options: SubscriptionOptions,
    ) -> Option<Arc<shared::Group>> {
        if let Ok(Some(shared)) = SharedFilter::parse(filter) {
            let mut groups = self.shared.write().unwrap_or_else(|p| p.into_inner());
            return Some(groups.join(filter, shared.filter, session, options));
        }
        let subscriber = Subscriber {
            session: Arc::clone(session),
            options,
        };
        let mut trie = self
            .subscriptions
            .write()
            .unwrap_or_else(|p| p.into_inner());
        trie.insert(filter, session.key(), subscriber);
        None
    }

    /// Takes `session`'s subscription to `filter` out of the trie, or out of
    /// its group for a shared subscription.
    fn remove_subscription(&self, session: &Session, filter: &str) {
        if let Ok(Some(shared)) = SharedFilter::parse(filter) {
            let mut groups = self.shared.write().unwrap_or_else(|p| p.into_inner());
            groups.leave(filter, shared.filter, session.key());
            return;
        }
        let mut trie = self
            .subscriptions
            .write()
            .unwrap_or_else(|p| p.into_inner());
        trie.remove(filter, &session.key());
    }

    /// Hands the groups of `session`'s shared subscriptions the messages they
    /// kept while no member was connected.
    fn flush_group_backlogs(&self, session: &Session) {
        let keys: Vec<String> = session
            .lock()
            .subscriptions
            .keys()
            .filter(|filter| filter.starts_with(iotcore_mqtt::topic::SHARED_PREFIX))
            .cloned()
            .collect();
        for key in keys {
            let group = self
                .shared
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .get(&key);
            if let Some(group) = group {
                group.flush_backlog(&self.config.limits);
            }
        }
    }

    /// Gives deliveries that came through shared subscriptions, and that their
    /// member will not take (it disconnected), to another member of their
    /// group; others are ignored.
    pub(crate) fn redistribute(&self, deliveries: Vec<Delivery>) {
        for delivery in deliveries {
            let Some(key) = &delivery.group else { continue };
            let group = self
                .shared
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .get(key);
            let routed = match group {
                Some(group) => group.route(&delivery.message, &self.config.limits),
                None => Routed::Dropped,
            };
            tracing::debug!(
                group = %key,
                topic = %delivery.message.topic,
                ?routed,
                "a shared subscription's message went back to its group"
            );
        }
    }

    /// Number of subscriptions `session` holds.
    pub(crate) fn subscription_count(&self, session: &Session) -> usize {
        session.lock().subscriptions.len()
    }

    /// True when `session` already holds a subscription to `filter`.
    pub(crate) fn is_subscribed(&self, session: &Session, filter: &str) -> bool {
        session.lock().subscriptions.contains_key(filter)
    }

    /// Removes `session`'s subscription to `filter`; returns whether it existed.
    pub(crate) fn unsubscribe(&self, session: &Arc<Session>, filter: &str) -> bool {
        let existed = {
            let mut state = session.lock();
            let existed = state.subscriptions.remove(filter).is_some();
            if let Some(log) = session.log().filter(|_| existed && !state.ended) {
                log.unsubscribe(filter);
            }
            existed
        };
        if existed {
            self.remove_subscription(session, filter);
        }
        existed
    }

    /// Routes a message: updates the retained store if it is retained, then
    /// queues it for every session with a matching subscription (once per
    /// session, at the highest matching QoS, and not back to `from` when its
    /// subscription says no-local), and for one member of every shared
    /// subscription group whose filter matches. Each connection checks
    /// `iot:Receive` when it delivers.
    /// Returns the number of sessions (and group backlogs) it was queued for.
    pub(crate) fn publish(&self, message: Message, from: Option<SessionKey>) -> usize {
        self.route(message, from).delivered
    }

    /// [`publish`](Self::publish), for a publisher that acknowledges only what
    /// is stored: `Some` when the message changed stored state (it was queued
    /// for a persistent session, or retained), completing once that is stored.
    pub(crate) fn publish_durably(
        &self,
        message: Message,
        from: Option<SessionKey>,
    ) -> Option<Durable> {
        self.route(message, from)
            .stored
            .then(|| self.journal.sync())
    }

    fn route(&self, message: Message, from: Option<SessionKey>) -> Published {
        let message = Arc::new(message);
        self.activity.routed(&message);
        let mut stored = false;
        if message.retain {
            match self.retained.apply(&message) {
                RetainedChange::Stored => {
                    self.journal.send(Op::SetRetained(Arc::clone(&message)));
                    stored = true;
                }
                RetainedChange::Deleted => {
                    self.journal
                        .send(Op::DeleteRetained(message.topic.to_string()));
                    stored = true;
                }
                RetainedChange::Unchanged => {}
            }
        }
        let mut targets: Vec<(SessionKey, Subscriber)> = Vec::new();
        {
            let trie = self.subscriptions.read().unwrap_or_else(|p| p.into_inner());
            trie.for_each_match(&message.topic, |key, subscriber| {
                if subscriber.options.no_local && from == Some(*key) {
                    return;
                }
                targets.push((*key, subscriber.clone()));
            });
        }
        // One delivery per session, at the highest QoS of its matching subscriptions.
        targets.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.options.qos.cmp(&a.1.options.qos)));
        targets.dedup_by_key(|(key, _)| *key);

        let mut delivered = 0;
        for (_, subscriber) in targets {
            let session = &subscriber.session;
            let delivery = Delivery {
                message: Arc::clone(&message),
                qos: message.qos.min(subscriber.options.qos),
                // AWS clears RETAIN on live deliveries; MQTT 5 retain-as-published keeps it.
                retain: message.retain && subscriber.options.retain_as_published,
                group: None,
                seq: None,
            };
            let qos1 = delivery.qos == QoS::AtLeastOnce;
            let pushed = session.push(delivery, &self.config.limits);
            stored |= qos1 && pushed != Pushed::Dropped && session.log().is_some();
            match pushed {
                Pushed::Queued | Pushed::Stored => delivered += 1,
                Pushed::QueuedDroppingOldest => {
                    delivered += 1;
                    tracing::warn!(
                        client_id = session.client_id(),
                        limit = self.config.limits.max_queued_qos1,
                        "session queue full: dropped its oldest QoS 1 message"
                    );
                }
                Pushed::Dropped => {
                    tracing::debug!(
                        client_id = session.client_id(),
                        topic = %message.topic,
                        "QoS 0 message dropped (subscriber offline or its queue is full)"
                    );
                }
            }
        }
        let groups = self
            .shared
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .matching(&message.topic);
        for group in groups {
            match group.route(&message, &self.config.limits) {
                Routed::Delivered(Pushed::Dropped) | Routed::Dropped => tracing::debug!(
                    group = %group.key(),
                    topic = %message.topic,
                    "message dropped: no member of the shared subscription could take it"
                ),
                Routed::Delivered(_) | Routed::Backlogged(_) => delivered += 1,
            }
        }
        Published { delivered, stored }
    }

    /// The message retained on `topic`, unless it has expired.
    pub(crate) fn retained_message(&self, topic: &str, now: SystemTime) -> Option<Arc<Message>> {
        self.retained.for_filter(topic, now)
    }

    /// Loads a retained message read from the store.
    pub(crate) fn restore_retained(&self, message: Message) {
        self.retained.apply(&Arc::new(message));
    }

    /// The sessions that outlive their connections, for the final save at shutdown.
    pub(crate) fn persistent_sessions(&self) -> Vec<Arc<Session>> {
        self.sessions()
            .values()
            .filter(|s| !s.lock().expiry.is_zero())
            .cloned()
            .collect()
    }

    /// Every session, connected or kept for a client that went away, by client id.
    pub(crate) fn sessions_overview(&self) -> Vec<SessionOverview> {
        let sessions: Vec<Arc<Session>> = self.sessions().values().cloned().collect();
        let mut all: Vec<SessionOverview> = sessions
            .iter()
            .map(|session| {
                let state = session.lock();
                SessionOverview {
                    client_id: session.client_id().to_owned(),
                    protocol: session.protocol(),
                    connected: state.is_attached(),
                    expiry: state.expiry,
                    detached_at: state.detached_at,
                    subscriptions: state
                        .subscriptions
                        .iter()
                        .map(|(filter, options)| (filter.clone(), options.qos))
                        .collect(),
                    queued: state.queue_len(),
                    unacked: state.unacked.len(),
                }
            })
            .collect();
        all.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        all
    }
}

/// A session as [`Broker::sessions_overview`] shows it.
#[derive(Debug, Clone)]
pub(crate) struct SessionOverview {
    /// Its client id.
    pub(crate) client_id: String,
    /// The MQTT version it was made with.
    pub(crate) protocol: ProtocolVersion,
    /// A connection is attached to it.
    pub(crate) connected: bool,
    /// How long it outlives its connection (zero: a clean session).
    pub(crate) expiry: Duration,
    /// When its connection went away.
    pub(crate) detached_at: Option<SystemTime>,
    /// Its subscriptions: filter and QoS.
    pub(crate) subscriptions: Vec<(String, QoS)>,
    /// Messages waiting for its client.
    pub(crate) queued: usize,
    /// Messages sent and not acknowledged when its last connection ended.
    pub(crate) unacked: usize,
}

#[cfg(test)]
mod tests;
