//! The access keys the emulator's HTTPS API verifies SigV4 signatures with
//! (what IAM users' keys are on AWS), issued by `iotcore credentials create`.

use rusqlite::{OptionalExtension, Row, params};

use super::{Store, StoreError};

/// An access key pair, optionally temporary (with a session token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRecord {
    /// The access key id (`AKIA…`, or `ASIA…` for temporary keys).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token temporary keys must present.
    pub session_token: Option<String>,
    /// A name saying whose key it is.
    pub name: String,
    /// An IoT policy limiting the operations the key may call, if any.
    pub policy: Option<String>,
    /// When it was issued, unix seconds.
    pub created_at: i64,
    /// When it stops working, unix seconds; `None` for long-term keys.
    pub expires_at: Option<i64>,
}

const COLUMNS: &str =
    "access_key_id, secret_access_key, session_token, name, policy, created_at, expires_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<CredentialRecord> {
    Ok(CredentialRecord {
        access_key_id: row.get(0)?,
        secret_access_key: row.get(1)?,
        session_token: row.get(2)?,
        name: row.get(3)?,
        policy: row.get(4)?,
        created_at: row.get(5)?,
        expires_at: row.get(6)?,
    })
}

impl Store {
    /// Stores an access key. Fails with [`StoreError::CredentialExists`] if its
    /// id is taken.
    pub fn add_credential(&self, record: &CredentialRecord) -> Result<(), StoreError> {
        let inserted = self.conn().execute(
            &format!(
                "INSERT INTO api_credentials ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (access_key_id) DO NOTHING"
            ),
            params![
                record.access_key_id,
                record.secret_access_key,
                record.session_token,
                record.name,
                record.policy,
                record.created_at,
                record.expires_at
            ],
        )?;
        if inserted == 0 {
            return Err(StoreError::CredentialExists(record.access_key_id.clone()));
        }
        Ok(())
    }

    /// The access key `access_key_id`, if issued.
    pub fn credential(&self, access_key_id: &str) -> Result<Option<CredentialRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM api_credentials WHERE access_key_id = ?1");
        Ok(self
            .conn()
            .query_row(&sql, [access_key_id], from_row)
            .optional()?)
    }

    /// Every access key, sorted by name then id.
    pub fn list_credentials(&self) -> Result<Vec<CredentialRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM api_credentials ORDER BY name, access_key_id"
        ))?;
        let keys = stmt
            .query_map([], from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(keys)
    }

    /// Deletes an access key. Returns `false` if it did not exist.
    pub fn delete_credential(&self, access_key_id: &str) -> Result<bool, StoreError> {
        let deleted = self.conn().execute(
            "DELETE FROM api_credentials WHERE access_key_id = ?1",
            [access_key_id],
        )?;
        Ok(deleted > 0)
    }
}
