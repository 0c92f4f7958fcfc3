//! Persistent MQTT sessions: subscriptions and queued QoS 1 messages.

use rusqlite::{OptionalExtension, Row};

use super::{MessageProperties, Store, StoreError};

/// A persistent session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The client id that owns the session.
    pub client_id: String,
    /// Protocol level of the connection that created it: 4 (MQTT 3.1.1) or 5 (MQTT 5.0).
    pub protocol_version: u8,
    /// How long the session outlives its connection, seconds (`u32::MAX`:
    /// for ever).
    pub session_expiry_secs: u32,
    /// When its connection went away, unix seconds; `None` while a client is connected.
    pub disconnected_at: Option<i64>,
    /// The session's subscriptions, sorted by filter when loaded.
    pub subscriptions: Vec<SubscriptionRecord>,
    /// Messages waiting for delivery or acknowledgement, in ascending `seq` order
    /// when loaded.
    pub queue: Vec<QueuedMessage>,
}

/// One subscription of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRecord {
    /// The topic filter.
    pub filter: String,
    /// Maximum QoS granted (0 or 1).
    pub qos: u8,
    /// MQTT 5 No Local option.
    pub no_local: bool,
    /// MQTT 5 Retain As Published option.
    pub retain_as_published: bool,
    /// MQTT 5 Retain Handling option: 0 send on subscribe, 1 only if new, 2 never.
    pub retain_handling: u8,
}

/// A message in a session's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    /// Position in the queue, chosen by the caller: unique within the session, and the
    /// queue is delivered in ascending order.
    pub seq: u64,
    /// The topic name.
    pub topic: String,
    /// The payload.
    pub payload: Vec<u8>,
    /// Delivery QoS (1 for what persistent sessions keep).
    pub qos: u8,
    /// RETAIN flag to deliver with.
    pub retain: bool,
    /// Its MQTT 5 properties.
    pub properties: MessageProperties,
    /// When its Message Expiry Interval runs out, unix seconds; `None` never.
    pub expires_at: Option<i64>,
    /// The packet identifier it was sent with, once sent: a resend after reconnecting
    /// must reuse it with the DUP flag. `None` if never sent.
    pub packet_id: Option<u16>,
}

pub(super) const QUEUE_COLUMNS: &str = "seq, topic, payload, qos, retain, payload_format_indicator, \
     content_type, response_topic, correlation_data, user_properties, expires_at, packet_id";

fn queued_from_row(row: &Row<'_>) -> rusqlite::Result<QueuedMessage> {
    Ok(QueuedMessage {
        seq: row.get(0)?,
        topic: row.get(1)?,
        payload: row.get(2)?,
        qos: row.get(3)?,
        retain: row.get(4)?,
        properties: MessageProperties::from_row(row, 5)?,
        expires_at: row.get(10)?,
        packet_id: row.get(11)?,
    })
}

impl Store {
    /// The stored session of `client_id`, with its subscriptions and queue.
    pub fn load_session(&self, client_id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let conn = self.conn();
        let session = conn
            .query_row(
                "SELECT protocol_version, session_expiry_secs, disconnected_at
                 FROM sessions WHERE client_id = ?1",
                [client_id],
                |row| {
                    Ok(SessionRecord {
                        client_id: client_id.to_owned(),
                        protocol_version: row.get(0)?,
                        session_expiry_secs: row.get(1)?,
                        disconnected_at: row.get(2)?,
                        subscriptions: Vec::new(),
                        queue: Vec::new(),
                    })
                },
            )
            .optional()?;
        let Some(mut session) = session else {
            return Ok(None);
        };
        let mut stmt = conn.prepare(
            "SELECT filter, qos, no_local, retain_as_published, retain_handling
             FROM session_subscriptions WHERE client_id = ?1 ORDER BY filter",
        )?;
        session.subscriptions = stmt
            .query_map([client_id], |row| {
                Ok(SubscriptionRecord {
                    filter: row.get(0)?,
                    qos: row.get(1)?,
                    no_local: row.get(2)?,
                    retain_as_published: row.get(3)?,
                    retain_handling: row.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {QUEUE_COLUMNS} FROM session_queue WHERE client_id = ?1 ORDER BY seq"
        ))?;
        session.queue = stmt
            .query_map([client_id], queued_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Some(session))
    }

    /// Client ids of all stored sessions, sorted (for loading at start).
    pub fn session_client_ids(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT client_id FROM sessions ORDER BY client_id")?;
        let ids = stmt
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(ids)
    }
}
