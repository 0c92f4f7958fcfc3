//! Thing types: named kinds of things with searchable attribute names, which
//! can be deprecated (no new things of the type) and then deleted.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Store, StoreError, conversion_error, now_unix, validate_thing_name};
use crate::ids::new_uuid;

/// Most searchable attributes a thing type may name (AWS quota).
pub const MAX_SEARCHABLE_ATTRIBUTES: usize = 3;

/// A thing type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThingTypeRecord {
    /// Its name (the rules of thing names).
    pub name: String,
    /// AWS's `thingTypeId`, a UUID.
    pub thing_type_id: String,
    /// Its description.
    pub description: Option<String>,
    /// The attribute names things of this type may be searched by.
    pub searchable_attributes: Vec<String>,
    /// When it was deprecated, unix seconds; `None` while it is not.
    pub deprecated_at: Option<i64>,
    /// When it was created, unix seconds.
    pub created_at: i64,
}

const COLUMNS: &str = "name, thing_type_id, description, searchable, deprecated_at, created_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<ThingTypeRecord> {
    let searchable: String = row.get(3)?;
    Ok(ThingTypeRecord {
        name: row.get(0)?,
        thing_type_id: row.get(1)?,
        description: row.get(2)?,
        searchable_attributes: serde_json::from_str(&searchable)
            .map_err(|e| conversion_error(3, e))?,
        deprecated_at: row.get(4)?,
        created_at: row.get(5)?,
    })
}

/// Reads thing type `name`.
pub(super) fn read_thing_type(
    conn: &Connection,
    name: &str,
) -> rusqlite::Result<Option<ThingTypeRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM thing_types WHERE name = ?1");
    conn.query_row(&sql, [name], from_row).optional()
}

impl Store {
    /// Creates a thing type (CreateThingType). Fails if the name breaks AWS's
    /// rules, is taken, or more than [`MAX_SEARCHABLE_ATTRIBUTES`] are named.
    pub fn create_thing_type(
        &self,
        name: &str,
        description: Option<&str>,
        searchable_attributes: &[String],
    ) -> Result<ThingTypeRecord, StoreError> {
        validate_thing_name(name)?;
        if searchable_attributes.len() > MAX_SEARCHABLE_ATTRIBUTES {
            return Err(StoreError::TooManySearchableAttributes(
                searchable_attributes.len(),
            ));
        }
        let record = ThingTypeRecord {
            name: name.to_owned(),
            thing_type_id: new_uuid(),
            description: description.map(str::to_owned),
            searchable_attributes: searchable_attributes.to_vec(),
            deprecated_at: None,
            created_at: now_unix(),
        };
        let searchable = serde_json::to_string(&record.searchable_attributes)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        let inserted = self.conn().execute(
            "INSERT INTO thing_types (name, thing_type_id, description, searchable, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO NOTHING",
            params![
                record.name,
                record.thing_type_id,
                record.description,
                searchable,
                record.created_at
            ],
        )?;
        if inserted == 0 {
            return Err(StoreError::ThingTypeExists(name.to_owned()));
        }
        Ok(record)
    }

    /// The thing type `name`, if it exists.
    pub fn thing_type(&self, name: &str) -> Result<Option<ThingTypeRecord>, StoreError> {
        Ok(read_thing_type(&self.conn(), name)?)
    }

    /// Every thing type, sorted by name.
    pub fn list_thing_types(&self) -> Result<Vec<ThingTypeRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM thing_types ORDER BY name"))?;
        let types = stmt
            .query_map([], from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(types)
    }

    /// Deprecates a thing type, or undoes that (DeprecateThingType).
    pub fn deprecate_thing_type(&self, name: &str, undo: bool) -> Result<(), StoreError> {
        let deprecated_at = (!undo).then(now_unix);
        let changed = self.conn().execute(
            "UPDATE thing_types SET deprecated_at = ?2 WHERE name = ?1",
            params![name, deprecated_at],
        )?;
        if changed == 0 {
            return Err(StoreError::ThingTypeNotFound(name.to_owned()));
        }
        Ok(())
    }

    /// Deletes a thing type (DeleteThingType). As on AWS it must have been
    /// deprecated (for five minutes on AWS; at once here) and no thing may
    /// still be of that type.
    pub fn delete_thing_type(&self, name: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let record = read_thing_type(&tx, name)?
            .ok_or_else(|| StoreError::ThingTypeNotFound(name.to_owned()))?;
        if record.deprecated_at.is_none() {
            return Err(StoreError::ThingTypeInUse {
                name: name.to_owned(),
                reason: "it is not deprecated; deprecate it first",
            });
        }
        let used: i64 = tx.query_row(
            "SELECT count(*) FROM things WHERE thing_type = ?1",
            [name],
            |row| row.get(0),
        )?;
        if used > 0 {
            return Err(StoreError::ThingTypeInUse {
                name: name.to_owned(),
                reason: "things are still of this type",
            });
        }
        tx.execute("DELETE FROM thing_types WHERE name = ?1", [name])?;
        tx.commit()?;
        Ok(())
    }
}
