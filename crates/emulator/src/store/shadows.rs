//! Device Shadow documents, one row per (thing, shadow name); the classic
//! shadow's name is the empty string. A deleted shadow keeps its row, without
//! document, so that a shadow re-created soon after continues its version
//! numbering (AWS's rule; the rule itself lives in `iotcore-model`).

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, now_unix};

/// One shadow as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowRecord {
    /// The thing's name.
    pub thing_name: String,
    /// The shadow's name; empty for the classic shadow.
    pub shadow_name: String,
    /// The document as JSON (`{"state","metadata","version"}`); `None` once deleted.
    pub document: Option<String>,
    /// The document's version, or the deleted document's.
    pub version: u64,
    /// When it was deleted, unix seconds; `None` while it exists.
    pub deleted_at: Option<i64>,
}

impl Store {
    /// The shadow `shadow_name` (empty: classic) of `thing_name`, if it exists or
    /// was deleted.
    pub fn shadow(
        &self,
        thing_name: &str,
        shadow_name: &str,
    ) -> Result<Option<ShadowRecord>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT document, version, deleted_at FROM shadows
                 WHERE thing_name = ?1 AND shadow_name = ?2",
                params![thing_name, shadow_name],
                |row| {
                    Ok(ShadowRecord {
                        thing_name: thing_name.to_owned(),
                        shadow_name: shadow_name.to_owned(),
                        document: row.get(0)?,
                        version: row.get(1)?,
                        deleted_at: row.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// The names of `thing_name`'s named shadows that exist (not deleted), sorted.
    pub fn named_shadows(&self, thing_name: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let names = conn
            .prepare(
                "SELECT shadow_name FROM shadows
                 WHERE thing_name = ?1 AND shadow_name <> '' AND document IS NOT NULL
                 ORDER BY shadow_name",
            )?
            .query_map([thing_name], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(names)
    }

    /// Every shadow that exists (not deleted): thing name, shadow name (empty:
    /// classic) and version, sorted.
    pub fn list_shadows(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        let conn = self.conn();
        let shadows = conn
            .prepare(
                "SELECT thing_name, shadow_name, version FROM shadows
                 WHERE document IS NOT NULL ORDER BY thing_name, shadow_name",
            )?
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(shadows)
    }

    /// Stores `record`, replacing what was stored for its thing and shadow name.
    pub fn put_shadow(&self, record: &ShadowRecord) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO shadows
                 (thing_name, shadow_name, document, version, deleted_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                record.thing_name,
                record.shadow_name,
                record.document,
                record.version,
                record.deleted_at,
                now_unix(),
            ],
        )?;
        Ok(())
    }
}
