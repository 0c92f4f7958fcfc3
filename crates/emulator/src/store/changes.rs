//! Changes to the broker's state (persistent sessions, their subscriptions and
//! queues, retained messages), applied many at a time in one transaction: the
//! emulator's journal commits what it acknowledges this way (group commit).

use rusqlite::{Transaction, params};

use super::retained::put_retained_with;
use super::sessions::QUEUE_COLUMNS;
use super::{
    QueuedMessage, RetainedMessage, Store, StoreError, SubscriptionRecord, user_properties_to_json,
};

/// One change to the broker's stored state.
///
/// Each applies whatever was applied before it: a change to a session that is
/// not stored (it ended meanwhile) does nothing, so changes racing with the end
/// of their session never fail a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerChange {
    /// Creates the session of `client_id` or updates its settings, keeping its
    /// subscriptions and queue.
    PutSession {
        /// The client id.
        client_id: String,
        /// Protocol level: 4 (MQTT 3.1.1) or 5 (MQTT 5.0).
        protocol_version: u8,
        /// How long it outlives its connection, seconds.
        session_expiry_secs: u32,
        /// When its connection went away, unix seconds; `None` while connected.
        disconnected_at: Option<i64>,
    },
    /// Deletes the session of this client id, its subscriptions and queue.
    DeleteSession(String),
    /// Adds or replaces a subscription of a stored session.
    PutSubscription(String, SubscriptionRecord),
    /// Removes the subscription of a client id to a filter.
    DeleteSubscription {
        /// The client id.
        client_id: String,
        /// The topic filter.
        filter: String,
    },
    /// Adds a message to a stored session's queue (replacing one with its `seq`).
    Enqueue(String, QueuedMessage),
    /// Records the packet id a queued message was sent with (`None`: not sent).
    SetPacketId {
        /// The client id.
        client_id: String,
        /// The message's `seq`.
        seq: u64,
        /// The packet identifier, or `None` when it is to be sent anew.
        packet_id: Option<u16>,
    },
    /// Removes a message from a session's queue (acknowledged, expired or dropped).
    Dequeue {
        /// The client id.
        client_id: String,
        /// The message's `seq`.
        seq: u64,
    },
    /// Stores a retained message, replacing its topic's previous one.
    PutRetained(RetainedMessage),
    /// Deletes the retained message of a topic.
    DeleteRetained(String),
}

impl Store {
    /// Applies `changes` in order, in one transaction: all of them or, on an
    /// error, none.
    pub fn apply_broker_changes(&self, changes: &[BrokerChange]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for change in changes {
            apply(&tx, change)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Asks SQLite to make each commit durable against a power loss
    /// (`synchronous=FULL`: the WAL is synced on every commit) when `on`, or
    /// against a crash of the process only (`NORMAL`, the default: commits
    /// reach the operating system, and the WAL is synced at checkpoints).
    pub fn set_fsync(&self, on: bool) -> Result<(), StoreError> {
        let level = if on { "FULL" } else { "NORMAL" };
        self.conn().pragma_update(None, "synchronous", level)?;
        Ok(())
    }
}

fn apply(tx: &Transaction<'_>, change: &BrokerChange) -> Result<(), StoreError> {
    match change {
        BrokerChange::PutSession {
            client_id,
            protocol_version,
            session_expiry_secs,
            disconnected_at,
        } => {
            tx.prepare_cached(
                "INSERT INTO sessions (client_id, protocol_version, session_expiry_secs, disconnected_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (client_id) DO UPDATE SET protocol_version = excluded.protocol_version,
                     session_expiry_secs = excluded.session_expiry_secs,
                     disconnected_at = excluded.disconnected_at",
            )?
            .execute(params![
                client_id,
                protocol_version,
                session_expiry_secs,
                disconnected_at
            ])?;
        }
        BrokerChange::DeleteSession(client_id) => {
            // Deleting cascades to the subscriptions and queue.
            tx.prepare_cached("DELETE FROM sessions WHERE client_id = ?1")?
                .execute([client_id])?;
        }
        BrokerChange::PutSubscription(client_id, s) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO session_subscriptions
                 (client_id, filter, qos, no_local, retain_as_published, retain_handling)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM sessions WHERE client_id = ?1)",
            )?
            .execute(params![
                client_id,
                s.filter,
                s.qos,
                s.no_local,
                s.retain_as_published,
                s.retain_handling,
            ])?;
        }
        BrokerChange::DeleteSubscription { client_id, filter } => {
            tx.prepare_cached(
                "DELETE FROM session_subscriptions WHERE client_id = ?1 AND filter = ?2",
            )?
            .execute([client_id, filter])?;
        }
        BrokerChange::Enqueue(client_id, message) => {
            let p = &message.properties;
            tx.prepare_cached(&format!(
                "INSERT OR REPLACE INTO session_queue (client_id, {QUEUE_COLUMNS})
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13
                 WHERE EXISTS (SELECT 1 FROM sessions WHERE client_id = ?1)"
            ))?
            .execute(params![
                client_id,
                message.seq,
                message.topic,
                message.payload,
                message.qos,
                message.retain,
                p.payload_format_indicator,
                p.content_type,
                p.response_topic,
                p.correlation_data,
                user_properties_to_json(&p.user_properties),
                message.expires_at,
                message.packet_id,
            ])?;
        }
        BrokerChange::SetPacketId {
            client_id,
            seq,
            packet_id,
        } => {
            tx.prepare_cached(
                "UPDATE session_queue SET packet_id = ?3 WHERE client_id = ?1 AND seq = ?2",
            )?
            .execute(params![client_id, seq, packet_id])?;
        }
        BrokerChange::Dequeue { client_id, seq } => {
            tx.prepare_cached("DELETE FROM session_queue WHERE client_id = ?1 AND seq = ?2")?
                .execute(params![client_id, seq])?;
        }
        BrokerChange::PutRetained(message) => put_retained_with(tx, message)?,
        BrokerChange::DeleteRetained(topic) => {
            tx.prepare_cached("DELETE FROM retained_messages WHERE topic = ?1")?
                .execute([topic])?;
        }
    }
    Ok(())
}
