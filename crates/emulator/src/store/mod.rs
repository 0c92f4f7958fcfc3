//! Registry and broker state in SQLite.
//!
//! One database file, `<data dir>/iotcore.db`, holds what must survive a restart:
//!
//! * the registry: things ([`ThingRecord`]), certificates ([`CertificateRecord`]) and
//!   which certificates are attached to which things; policies ([`PolicyRecord`]) and
//!   which are attached to which certificates;
//! * the broker's retained messages ([`RetainedMessage`]);
//! * persistent MQTT sessions ([`SessionRecord`]): subscriptions and queued QoS 1
//!   messages of clients that are away;
//! * Device Shadow documents ([`ShadowRecord`]);
//! * jobs ([`JobRecord`]) and their executions on things ([`ExecutionRecord`]);
//! * fleet provisioning templates ([`TemplateRecord`]) and the ownership tokens of
//!   certificates waiting for their registration ([`TokenRecord`]);
//! * Greengrass core devices ([`CoreDeviceRecord`]) and the client devices
//!   associated with them.
//!
//! The store knows nothing of the MQTT codec: it takes and returns plain structs. The
//! mapping to `iotcore-mqtt` types is field for field:
//!
//! | store | MQTT |
//! |---|---|
//! | `qos: u8` | `QoS` as its numeric value (0 or 1) |
//! | `protocol_version: u8` | protocol level byte of CONNECT: 4 = 3.1.1, 5 = 5.0 |
//! | [`MessageProperties`] | the PUBLISH properties a broker forwards: payload format indicator, content type, response topic, correlation data, user properties (in order) |
//! | `expires_at` | the instant a Message Expiry Interval runs out, in unix seconds |
//! | [`SubscriptionRecord`] | a topic filter and its subscription options |
//! | `retain_handling: u8` | 0 send on subscribe, 1 only if new, 2 never |
//!
//! Times are unix seconds (`i64`). The database runs in WAL mode with a busy timeout.
//! Its schema is versioned with `PRAGMA user_version` and upgraded on open.
//!
//! [`Store`] is a cheap-to-clone handle (`Send + Sync`) around one SQLite connection
//! behind a mutex. Each call is short (one statement or one small transaction), so the
//! broker may call it from async tasks; it blocks the calling thread for that time.

mod authorizers;
mod certificates;
mod changes;
mod credentials;
mod error;
mod greengrass;
mod jobs;
mod policies;
mod provisioning;
mod retained;
mod schema;
mod sessions;
mod shadows;
mod thing_groups;
mod thing_types;
mod things;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;
use rusqlite::types::Type;

pub use authorizers::AuthorizerRecord;
pub use certificates::{CertificateRecord, CertificateStatus, UnknownCertificateStatus};
pub use changes::BrokerChange;
pub use credentials::CredentialRecord;
pub use error::StoreError;
pub use greengrass::CoreDeviceRecord;
pub use jobs::{
    ExecutionRecord, ExecutionStatus, JobConfigs, JobRecord, JobStatus, TargetSelection,
    UnknownJobValue,
};
pub use policies::{MAX_POLICY_VERSIONS, PolicyRecord};
pub use provisioning::{
    ExistingThing, Override, PolicyRegistration, Registration, TemplateError, TemplateRecord,
    ThingRegistration, TokenRecord,
};
pub use retained::RetainedMessage;
pub use sessions::{QueuedMessage, SessionRecord, SubscriptionRecord};
pub use shadows::ShadowRecord;
pub use thing_groups::ThingGroupRecord;
pub use thing_types::ThingTypeRecord;
pub use things::{DeletedThing, ThingRecord, validate_thing_name};

/// Name of the database file inside the data directory.
pub const DATABASE_FILE: &str = "iotcore.db";

/// How long a call waits for a lock held by another connection to the same file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Statements each connection keeps prepared (rusqlite's cache, 16 by default):
/// the registry reads of every MQTT connect and the broker's session writes use
/// `prepare_cached`, so their SQL is parsed once, not on every connection.
const STATEMENT_CACHE: usize = 64;

/// The MQTT 5 properties stored with a retained or queued message: those a broker
/// forwards to subscribers. `None`/empty means the property is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageProperties {
    /// Payload Format Indicator (0 unspecified bytes, 1 UTF-8).
    pub payload_format_indicator: Option<u8>,
    /// Content Type.
    pub content_type: Option<String>,
    /// Response Topic.
    pub response_topic: Option<String>,
    /// Correlation Data.
    pub correlation_data: Option<Vec<u8>>,
    /// User Properties, in the order they were sent.
    pub user_properties: Vec<(String, String)>,
}

impl MessageProperties {
    /// Reads the five columns `payload_format_indicator, content_type,
    /// response_topic, correlation_data, user_properties` of a row, in that
    /// order, starting at column `first`.
    fn from_row(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<MessageProperties> {
        let user_properties: String = row.get(first + 4)?;
        Ok(MessageProperties {
            payload_format_indicator: row.get(first)?,
            content_type: row.get(first + 1)?,
            response_topic: row.get(first + 2)?,
            correlation_data: row.get(first + 3)?,
            user_properties: user_properties_from_json(&user_properties, first + 4)?,
        })
    }
}

/// Handle to the emulator's database. Clones share one connection.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating it if needed) `<data_dir>/iotcore.db` and brings its schema up
    /// to date. Creates `data_dir` if it does not exist.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDirUnwritable {
            data_dir: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(DATABASE_FILE);
        let open_error = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open(&path).map_err(open_error)?;
        configure(&conn).map_err(open_error)?;
        schema::migrate(&mut conn, &path)?;
        Ok(Store {
            inner: Arc::new(Inner {
                path,
                conn: Mutex::new(conn),
            }),
        })
    }

    /// A database in memory, gone when the last clone is dropped: what
    /// `iotcore qualify` runs one case's jobs on. WAL does not apply.
    pub(crate) fn open_in_memory() -> Result<Store, StoreError> {
        let path = PathBuf::from(":memory:");
        let open_error = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open_in_memory().map_err(open_error)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_error)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        schema::migrate(&mut conn, &path)?;
        Ok(Store {
            inner: Arc::new(Inner {
                path,
                conn: Mutex::new(conn),
            }),
        })
    }

    /// Locks the connection. A panic in another thread while it held the lock cannot
    /// leave a half-done change behind (an open transaction rolls back when dropped),
    /// so a poisoned lock is used as is.
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.inner
            .conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Per-connection settings: WAL journal, busy timeout, foreign keys.
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(
            mode,
            "SQLite refused WAL mode; continuing with this journal mode"
        );
    }
    // WAL with synchronous=NORMAL never corrupts the database; a power cut may lose
    // the last transactions, which is fine for an emulator.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

/// The current time in unix seconds.
pub(crate) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Turns an error decoding a stored value into the error rusqlite reports for a column
/// it cannot convert.
fn conversion_error(
    column: usize,
    error: impl std::error::Error + Send + Sync + 'static,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, Type::Text, Box::new(error))
}

/// User properties as stored: a JSON array of `[name, value]` pairs.
fn user_properties_to_json(properties: &[(String, String)]) -> String {
    serde_json::Value::Array(
        properties
            .iter()
            .map(|(k, v)| serde_json::json!([k, v]))
            .collect(),
    )
    .to_string()
}

/// Decodes what [`user_properties_to_json`] wrote, reading column `column`.
fn user_properties_from_json(json: &str, column: usize) -> rusqlite::Result<Vec<(String, String)>> {
    serde_json::from_str(json).map_err(|e| conversion_error(column, e))
}

#[cfg(test)]
mod tests;
