//! Shared subscriptions: sessions subscribed to the same
//! `$share/<share-name>/<filter>` form a group, and each message matching the
//! filter goes to one member of the group, not to all of them.
//!
//! AWS IoT Core's semantics (docs/aws-iot-core-behaviour.md §1.10), for MQTT 5
//! and MQTT 3.1.1 clients alike:
//! * each message goes to one member chosen at random among those connected;
//!   each group whose filter matches gets its own copy;
//! * a QoS 0 message that cannot be delivered is dropped, never retried;
//! * a QoS 1 message a member had queued or in flight when its connection
//!   ended goes to another connected member (a member's persistent session
//!   keeps its subscription, not the group's messages);
//! * when no member is connected, QoS 1 messages wait in the group's backlog if
//!   a member has a persistent session, and go to the first members to
//!   connect (AWS dequeues them at most 20 per second per member; the emulator
//!   hands them over at once); otherwise they are dropped;
//! * a shared subscription gets no retained messages when it is made.
//!
//! The backlog is bounded like a session queue ([`Limits::max_queued_qos1`],
//! oldest dropped first) and is not stored: it is lost when the emulator stops.
//!
//! Lock order: the registry (in the broker) → a group's state → a member
//! session's state. Nothing holds a session's state while taking a group's.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use iotcore_mqtt::QoS;
use iotcore_mqtt::packet::SubscriptionOptions;
use iotcore_mqtt::topic::MatchMode;
use rand::Rng;

use super::message::Message;
use super::session::{Delivery, Pushed, Session, SessionKey};
use super::trie::SubscriptionTrie;
use crate::config::Limits;

/// What became of a message handed to a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Routed {
    /// Queued for the member chosen.
    Delivered(Pushed),
    /// No member connected: kept in the group's backlog (`true` when the
    /// oldest backlog message was dropped to make room).
    Backlogged(bool),
    /// No member connected and none with a persistent session, or QoS 0.
    Dropped,
}

/// One group: the sessions subscribed to one shared filter.
#[derive(Debug)]
pub(crate) struct Group {
    /// `$share/<share-name>/<filter>`, as the members subscribed.
    key: Arc<str>,
    state: Mutex<GroupState>,
}

#[derive(Debug, Default)]
struct GroupState {
    /// By session key, so that the choice among members is reproducible
    /// given the random numbers.
    members: BTreeMap<SessionKey, Member>,
    backlog: VecDeque<Arc<Message>>,
}

#[derive(Debug)]
struct Member {
    session: Arc<Session>,
    options: SubscriptionOptions,
}

impl Group {
    fn new(key: Arc<str>) -> Group {
        Group {
            key,
            state: Mutex::new(GroupState::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The group's shared filter, `$share/<share-name>/<filter>`.
    pub(crate) fn key(&self) -> &Arc<str> {
        &self.key
    }

    /// Hands `message` to one connected member chosen at random (see the
    /// module documentation for what happens when none is connected).
    pub(crate) fn route(&self, message: &Arc<Message>, limits: &Limits) -> Routed {
        let mut state = self.lock();
        let mut candidates: Vec<&Member> = state
            .members
            .values()
            .filter(|m| m.session.lock().is_attached())
            .collect();
        let mut rng = rand::rng();
        while !candidates.is_empty() {
            let member = candidates.swap_remove(rng.random_range(0..candidates.len()));
            let delivery = Delivery {
                message: Arc::clone(message),
                qos: message.qos.min(member.options.qos),
                // AWS clears RETAIN on live deliveries; MQTT 5 retain-as-published keeps it.
                retain: message.retain && member.options.retain_as_published,
                group: Some(Arc::clone(&self.key)),
                seq: None,
            };
            // It may have disconnected since it was counted in.
            if let Some(pushed) = member.session.push_if_attached(delivery, limits) {
                return Routed::Delivered(pushed);
            }
        }
        let persistent = state
            .members
            .values()
            .any(|m| !m.session.lock().expiry.is_zero());
        if message.qos == QoS::AtMostOnce || !persistent {
            return Routed::Dropped;
        }
        let full = state.backlog.len() >= limits.max_queued_qos1;
        if full {
            state.backlog.pop_front();
        }
        state.backlog.push_back(Arc::clone(message));
        Routed::Backlogged(full)
    }

    /// Routes the backlog again, now that a member may be connected.
    pub(crate) fn flush_backlog(&self, limits: &Limits) {
        let backlog = std::mem::take(&mut self.lock().backlog);
        for message in backlog {
            // Messages that expired while waiting are dropped when taken.
            self.route(&message, limits);
        }
    }

    /// Number of members.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().members.len()
    }

    /// Number of messages waiting for a member to connect.
    #[cfg(test)]
    pub(crate) fn backlog_len(&self) -> usize {
        self.lock().backlog.len()
    }
}

/// Every group, found by shared filter and by the topics they match.
#[derive(Debug)]
pub(crate) struct SharedGroups {
    /// Groups indexed by the filter they share, keyed by their shared filter.
    trie: SubscriptionTrie<Arc<str>, Arc<Group>>,
    by_key: HashMap<Arc<str>, Arc<Group>>,
}

impl SharedGroups {
    /// No groups; filters match the way `mode` says.
    pub(crate) fn new(mode: MatchMode) -> SharedGroups {
        SharedGroups {
            trie: SubscriptionTrie::new(mode),
            by_key: HashMap::new(),
        }
    }

    /// Adds `session` to the group of `key` (`$share/<share-name>/<filter>`),
    /// creating it, or replaces its options there; returns the group.
    pub(crate) fn join(
        &mut self,
        key: &str,
        filter: &str,
        session: &Arc<Session>,
        options: SubscriptionOptions,
    ) -> Arc<Group> {
        let group = match self.by_key.get(key) {
            Some(group) => Arc::clone(group),
            None => {
                let key: Arc<str> = key.into();
                let group = Arc::new(Group::new(Arc::clone(&key)));
                self.trie
                    .insert(filter, Arc::clone(&key), Arc::clone(&group));
                self.by_key.insert(key, Arc::clone(&group));
                group
            }
        };
        group.lock().members.insert(
            session.key(),
            Member {
                session: Arc::clone(session),
                options,
            },
        );
        group
    }

    /// Removes `session` from the group of `key`; a group left without
    /// members goes, with its backlog.
    pub(crate) fn leave(&mut self, key: &str, filter: &str, session: SessionKey) {
        let Some(group) = self.by_key.get(key) else {
            return;
        };
        let empty = {
            let mut state = group.lock();
            state.members.remove(&session);
            state.members.is_empty()
        };
        if empty {
            if let Some((key, _)) = self.by_key.remove_entry(key) {
                self.trie.remove(filter, &key);
            }
        }
    }

    /// The group of `key`, if it has members.
    pub(crate) fn get(&self, key: &str) -> Option<Arc<Group>> {
        self.by_key.get(key).cloned()
    }

    /// The groups whose filter matches `topic`.
    pub(crate) fn matching(&self, topic: &str) -> Vec<Arc<Group>> {
        let mut groups = Vec::new();
        self.trie
            .for_each_match(topic, |_, group| groups.push(Arc::clone(group)));
        groups
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use bytes::Bytes;
    use iotcore_mqtt::{Properties, ProtocolVersion};
    use tokio::sync::oneshot;

    use super::*;

    fn session(key: SessionKey, expiry: Duration) -> Arc<Session> {
        Arc::new(Session::new(
            key,
            format!("member-{key}").into(),
            ProtocolVersion::V5,
            expiry,
            None,
        ))
    }

    fn attach(session: &Session) -> oneshot::Receiver<super::super::session::Kick> {
        let (tx, rx) = oneshot::channel();
        session.lock().attach(session.key(), tx);
        rx
    }

    fn message(qos: QoS, payload: &'static [u8]) -> Arc<Message> {
        Arc::new(Message::new(
            "jobs/run".into(),
            Bytes::from_static(payload),
            qos,
            false,
            &Properties::default(),
            SystemTime::UNIX_EPOCH,
        ))
    }

    fn queued(session: &Session) -> usize {
        session.lock().queue_len()
    }

    fn options(qos: QoS) -> SubscriptionOptions {
        SubscriptionOptions {
            qos,
            ..SubscriptionOptions::default()
        }
    }

    const KEY: &str = "$share/workers/jobs/+";

    #[test]
    fn each_message_goes_to_exactly_one_connected_member() {
        let limits = Limits::default();
        let mut groups = SharedGroups::new(MatchMode::Aws);
        let members: Vec<_> = (1..=3).map(|k| session(k, Duration::ZERO)).collect();
        let _kicks: Vec<_> = members.iter().map(|m| attach(m)).collect();
        for member in &members {
            groups.join(KEY, "jobs/+", member, options(QoS::AtLeastOnce));
        }
        let [group] = groups.matching("jobs/run").try_into().expect("one group");
        for _ in 0..30 {
            assert_eq!(
                group.route(&message(QoS::AtLeastOnce, b"m"), &limits),
                Routed::Delivered(Pushed::Queued)
            );
        }
        let counts: Vec<usize> = members.iter().map(|m| queued(m)).collect();
        assert_eq!(counts.iter().sum::<usize>(), 30, "{counts:?}");
        assert!(groups.matching("jobs/run/x").is_empty());
        assert!(groups.matching("other").is_empty());
    }

    #[test]
    fn a_disconnected_member_is_passed_over() {
        let limits = Limits::default();
        let mut groups = SharedGroups::new(MatchMode::Aws);
        let (online, offline) = (session(1, Duration::ZERO), session(2, Duration::ZERO));
        let _kick = attach(&online);
        let group = groups.join(KEY, "jobs/+", &online, options(QoS::AtLeastOnce));
        groups.join(KEY, "jobs/+", &offline, options(QoS::AtLeastOnce));
        for _ in 0..10 {
            group.route(&message(QoS::AtLeastOnce, b"m"), &limits);
        }
        assert_eq!((queued(&online), queued(&offline)), (10, 0));
    }

    #[test]
    fn with_no_member_connected_qos1_waits_only_for_a_persistent_member() {
        let limits = Limits {
            max_queued_qos1: 2,
            ..Limits::default()
        };
        let mut groups = SharedGroups::new(MatchMode::Aws);
        let clean = session(1, Duration::ZERO);
        let group = groups.join(KEY, "jobs/+", &clean, options(QoS::AtLeastOnce));
        assert_eq!(
            group.route(&message(QoS::AtLeastOnce, b"1"), &limits),
            Routed::Dropped
        );

        let persistent = session(2, Duration::from_secs(3600));
        groups.join(KEY, "jobs/+", &persistent, options(QoS::AtLeastOnce));
        assert_eq!(
            group.route(&message(QoS::AtMostOnce, b"0"), &limits),
            Routed::Dropped,
            "QoS 0 never waits"
        );
        assert_eq!(
            group.route(&message(QoS::AtLeastOnce, b"1"), &limits),
            Routed::Backlogged(false)
        );
        group.route(&message(QoS::AtLeastOnce, b"2"), &limits);
        assert_eq!(
            group.route(&message(QoS::AtLeastOnce, b"3"), &limits),
            Routed::Backlogged(true),
            "the oldest goes when the backlog is full"
        );
        assert_eq!(group.backlog_len(), 2);

        let _kick = attach(&clean);
        group.flush_backlog(&limits);
        assert_eq!(group.backlog_len(), 0);
        let payloads: Vec<Bytes> = clean
            .take(10, 10, SystemTime::UNIX_EPOCH)
            .into_iter()
            .map(|d| d.message.payload.clone())
            .collect();
        assert_eq!(payloads, [&b"2"[..], &b"3"[..]]);
    }

    #[test]
    fn the_delivery_qos_is_the_members_and_the_group_travels_with_it() {
        let limits = Limits::default();
        let mut groups = SharedGroups::new(MatchMode::Aws);
        let member = session(1, Duration::ZERO);
        let _kick = attach(&member);
        let group = groups.join(KEY, "jobs/+", &member, options(QoS::AtMostOnce));
        group.route(&message(QoS::AtLeastOnce, b"m"), &limits);
        let taken = member.take(10, 10, SystemTime::UNIX_EPOCH);
        assert_eq!(taken[0].qos, QoS::AtMostOnce);
        assert_eq!(taken[0].group.as_deref(), Some(KEY));
    }

    #[test]
    fn the_last_member_to_leave_removes_the_group() {
        let mut groups = SharedGroups::new(MatchMode::Aws);
        let (a, b) = (session(1, Duration::ZERO), session(2, Duration::ZERO));
        let group = groups.join(KEY, "jobs/+", &a, options(QoS::AtLeastOnce));
        groups.join(KEY, "jobs/+", &b, options(QoS::AtLeastOnce));
        groups.join(KEY, "jobs/+", &b, options(QoS::AtMostOnce));
        assert_eq!(group.len(), 2, "joining again replaces the options");
        groups.leave(KEY, "jobs/+", a.key());
        assert!(groups.get(KEY).is_some());
        groups.leave(KEY, "jobs/+", b.key());
        assert!(groups.get(KEY).is_none());
        assert!(groups.matching("jobs/run").is_empty());
    }
}
