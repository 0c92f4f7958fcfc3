//! Custom authorizers (CreateAuthorizer and friends) and the account's
//! default authorizer (SetDefaultAuthorizer). The "Lambda function" of an
//! authorizer is a local command: see `crate::authorizer`.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, Row, params};

use super::{Store, StoreError, conversion_error};

/// A custom authorizer as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizerRecord {
    /// Its name.
    pub name: String,
    /// AWS's `authorizerFunctionArn`: in the emulator, the command run as
    /// the authorizer's Lambda function (by `sh -c`).
    pub function: String,
    /// The name of the token's query parameter or header.
    pub token_key_name: Option<String>,
    /// Key name → PEM public key, checking the token's signature.
    pub token_signing_public_keys: BTreeMap<String, String>,
    /// `ACTIVE` or `INACTIVE`.
    pub status: String,
    /// No signature is checked.
    pub signing_disabled: bool,
    /// AWS's `enableCachingForHttp` (kept, not used).
    pub enable_caching_for_http: bool,
    /// Whether it is the account's default authorizer.
    pub is_default: bool,
    /// When it was created, unix seconds.
    pub created_at: i64,
    /// When it was last changed, unix seconds.
    pub last_modified_at: i64,
}

const COLUMNS: &str = "name, function, token_key_name, token_signing_public_keys, status, \
                       signing_disabled, enable_caching_for_http, is_default, created_at, \
                       last_modified_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<AuthorizerRecord> {
    let keys: String = row.get(3)?;
    Ok(AuthorizerRecord {
        name: row.get(0)?,
        function: row.get(1)?,
        token_key_name: row.get(2)?,
        token_signing_public_keys: serde_json::from_str(&keys)
            .map_err(|e| conversion_error(3, e))?,
        status: row.get(4)?,
        signing_disabled: row.get(5)?,
        enable_caching_for_http: row.get(6)?,
        is_default: row.get(7)?,
        created_at: row.get(8)?,
        last_modified_at: row.get(9)?,
    })
}

fn keys_json(record: &AuthorizerRecord) -> String {
    serde_json::Value::from(
        record
            .token_signing_public_keys
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
            .collect::<serde_json::Map<_, _>>(),
    )
    .to_string()
}

impl Store {
    /// Stores a new authorizer; [`StoreError::AuthorizerExists`] if the name
    /// is taken.
    pub fn add_authorizer(&self, record: &AuthorizerRecord) -> Result<(), StoreError> {
        let inserted = self.conn().execute(
            &format!(
                "INSERT INTO authorizers ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, ?9)
                 ON CONFLICT (name) DO NOTHING"
            ),
            params![
                record.name,
                record.function,
                record.token_key_name,
                keys_json(record),
                record.status,
                record.signing_disabled,
                record.enable_caching_for_http,
                record.created_at,
                record.last_modified_at,
            ],
        )?;
        if inserted == 0 {
            return Err(StoreError::AuthorizerExists(record.name.clone()));
        }
        Ok(())
    }

    /// Authorizer `name`, if it exists.
    pub fn authorizer(&self, name: &str) -> Result<Option<AuthorizerRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM authorizers WHERE name = ?1");
        Ok(self.conn().query_row(&sql, [name], from_row).optional()?)
    }

    /// The account's default authorizer, if one was set.
    pub fn default_authorizer(&self) -> Result<Option<AuthorizerRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM authorizers WHERE is_default = 1");
        Ok(self.conn().query_row(&sql, [], from_row).optional()?)
    }

    /// Every authorizer, by name.
    pub fn list_authorizers(&self) -> Result<Vec<AuthorizerRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM authorizers ORDER BY name"))?;
        let records = stmt
            .query_map([], from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(records)
    }

    /// Replaces the function, token key name, keys, status and caching flag
    /// of an existing authorizer (`signing_disabled` never changes).
    pub fn update_authorizer(&self, record: &AuthorizerRecord) -> Result<(), StoreError> {
        let updated = self.conn().execute(
            "UPDATE authorizers SET function = ?2, token_key_name = ?3,
                 token_signing_public_keys = ?4, status = ?5, enable_caching_for_http = ?6,
                 last_modified_at = ?7
             WHERE name = ?1",
            params![
                record.name,
                record.function,
                record.token_key_name,
                keys_json(record),
                record.status,
                record.enable_caching_for_http,
                record.last_modified_at,
            ],
        )?;
        if updated == 0 {
            return Err(StoreError::AuthorizerNotFound(record.name.clone()));
        }
        Ok(())
    }

    /// Deletes authorizer `name`; `false` if it did not exist.
    pub fn delete_authorizer(&self, name: &str) -> Result<bool, StoreError> {
        let deleted = self
            .conn()
            .execute("DELETE FROM authorizers WHERE name = ?1", [name])?;
        Ok(deleted > 0)
    }

    /// Makes `name` the default authorizer (and no other).
    pub fn set_default_authorizer(&self, name: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE authorizers SET is_default = 0 WHERE is_default = 1",
            [],
        )?;
        let updated = tx.execute(
            "UPDATE authorizers SET is_default = 1 WHERE name = ?1",
            [name],
        )?;
        if updated == 0 {
            return Err(StoreError::AuthorizerNotFound(name.to_owned()));
        }
        tx.commit()?;
        Ok(())
    }
}
