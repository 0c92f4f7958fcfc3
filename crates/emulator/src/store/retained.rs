//! Retained messages.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{MessageProperties, Store, StoreError, user_properties_to_json};

/// The retained message of one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainedMessage {
    /// The topic name.
    pub topic: String,
    /// The payload (never empty: an empty retained payload deletes the message).
    pub payload: Vec<u8>,
    /// QoS it was published with (0 or 1).
    pub qos: u8,
    /// Its MQTT 5 properties.
    pub properties: MessageProperties,
    /// When its Message Expiry Interval runs out, unix seconds; `None` never.
    pub expires_at: Option<i64>,
    /// When it was published, unix seconds.
    pub updated_at: i64,
}

const RETAINED_COLUMNS: &str = "topic, payload, qos, payload_format_indicator, content_type, \
     response_topic, correlation_data, user_properties, expires_at, updated_at";

fn retained_from_row(row: &Row<'_>) -> rusqlite::Result<RetainedMessage> {
    Ok(RetainedMessage {
        topic: row.get(0)?,
        payload: row.get(1)?,
        qos: row.get(2)?,
        properties: MessageProperties::from_row(row, 3)?,
        expires_at: row.get(8)?,
        updated_at: row.get(9)?,
    })
}

impl Store {
    /// The retained message of `topic`, if any.
    pub fn retained(&self, topic: &str) -> Result<Option<RetainedMessage>, StoreError> {
        let sql = format!("SELECT {RETAINED_COLUMNS} FROM retained_messages WHERE topic = ?1");
        Ok(self
            .conn()
            .query_row(&sql, [topic], retained_from_row)
            .optional()?)
    }

    /// Every retained message, sorted by topic (for loading at start).
    pub fn all_retained(&self) -> Result<Vec<RetainedMessage>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {RETAINED_COLUMNS} FROM retained_messages ORDER BY topic"
        ))?;
        let messages = stmt
            .query_map([], retained_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(messages)
    }
}

/// Stores `message` as the retained message of its topic on `conn` (which may
/// be in a transaction).
pub(super) fn put_retained_with(
    conn: &Connection,
    message: &RetainedMessage,
) -> Result<(), StoreError> {
    let p = &message.properties;
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO retained_messages ({RETAINED_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))?
    .execute(params![
        message.topic,
        message.payload,
        message.qos,
        p.payload_format_indicator,
        p.content_type,
        p.response_topic,
        p.correlation_data,
        user_properties_to_json(&p.user_properties),
        message.expires_at,
        message.updated_at,
    ])?;
    Ok(())
}
