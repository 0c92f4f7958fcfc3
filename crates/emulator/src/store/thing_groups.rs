//! Static thing groups: named sets of things, possibly nested, that jobs and
//! policies can target.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::things::{attributes_json, check_version, validate_attribute};
use super::{Store, StoreError, conversion_error, now_unix, validate_thing_name};
use crate::ids::new_uuid;

/// Most groups a thing may belong to (AWS quota).
pub const MAX_GROUPS_PER_THING: usize = 10;
/// Deepest nesting of groups (AWS quota).
pub const MAX_GROUP_DEPTH: usize = 7;

/// A static thing group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThingGroupRecord {
    /// Its name (the rules of thing names).
    pub name: String,
    /// AWS's `thingGroupId`, a UUID.
    pub group_id: String,
    /// The group it is nested in.
    pub parent: Option<String>,
    /// Its description.
    pub description: Option<String>,
    /// Its attributes.
    pub attributes: BTreeMap<String, String>,
    /// 1 at creation, one more at each update.
    pub version: i64,
    /// When it was created, unix seconds.
    pub created_at: i64,
}

const COLUMNS: &str = "name, group_id, parent, description, attributes, version, created_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<ThingGroupRecord> {
    let attributes: String = row.get(4)?;
    Ok(ThingGroupRecord {
        name: row.get(0)?,
        group_id: row.get(1)?,
        parent: row.get(2)?,
        description: row.get(3)?,
        attributes: serde_json::from_str(&attributes).map_err(|e| conversion_error(4, e))?,
        version: row.get(5)?,
        created_at: row.get(6)?,
    })
}

fn read_group(conn: &Connection, name: &str) -> rusqlite::Result<Option<ThingGroupRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM thing_groups WHERE name = ?1");
    conn.query_row(&sql, [name], from_row).optional()
}

fn exists(conn: &Connection, sql: &str, key: &str) -> rusqlite::Result<bool> {
    Ok(conn.query_row(sql, [key], |_| Ok(())).optional()?.is_some())
}

impl Store {
    /// Creates a static thing group (CreateThingGroup), nested in `parent` if
    /// given. Fails if the name is invalid or taken, the parent does not exist,
    /// or the nesting would be deeper than [`MAX_GROUP_DEPTH`].
    pub fn create_thing_group(
        &self,
        name: &str,
        parent: Option<&str>,
        description: Option<&str>,
        attributes: &BTreeMap<String, String>,
    ) -> Result<ThingGroupRecord, StoreError> {
        validate_thing_name(name)?;
        for (key, value) in attributes {
            validate_attribute(key, value)?;
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if let Some(parent) = parent {
            let depth = ancestors(&tx, parent)?.len();
            if depth == 0 {
                return Err(StoreError::ThingGroupNotFound(parent.to_owned()));
            }
            if depth >= MAX_GROUP_DEPTH {
                return Err(StoreError::ThingGroupTooDeep(name.to_owned()));
            }
        }
        let record = ThingGroupRecord {
            name: name.to_owned(),
            group_id: new_uuid(),
            parent: parent.map(str::to_owned),
            description: description.map(str::to_owned),
            attributes: attributes.clone(),
            version: 1,
            created_at: now_unix(),
        };
        let inserted = tx.execute(
            "INSERT INTO thing_groups (name, group_id, parent, description, attributes, version, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (name) DO NOTHING",
            params![
                record.name,
                record.group_id,
                record.parent,
                record.description,
                attributes_json(&record.attributes)?,
                record.version,
                record.created_at
            ],
        )?;
        if inserted == 0 {
            return Err(StoreError::ThingGroupExists(name.to_owned()));
        }
        tx.commit()?;
        Ok(record)
    }

    /// The group `name`, if it exists.
    pub fn thing_group(&self, name: &str) -> Result<Option<ThingGroupRecord>, StoreError> {
        Ok(read_group(&self.conn(), name)?)
    }

    /// The names of group `name` and its ancestors, the group first; empty if
    /// it does not exist.
    pub fn thing_group_ancestors(&self, name: &str) -> Result<Vec<String>, StoreError> {
        Ok(ancestors(&self.conn(), name)?)
    }

    /// Every group, sorted by name.
    pub fn list_thing_groups(&self) -> Result<Vec<ThingGroupRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare(&format!("SELECT {COLUMNS} FROM thing_groups ORDER BY name"))?;
        let groups = stmt
            .query_map([], from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(groups)
    }

    /// Deletes a group (DeleteThingGroup); its things stay. Returns `false` if
    /// it did not exist (AWS succeeds then too). Fails while child groups
    /// exist, or with [`StoreError::VersionConflict`] on a version mismatch.
    pub fn delete_thing_group(
        &self,
        name: &str,
        expected_version: Option<i64>,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let Some(group) = read_group(&tx, name)? else {
            return Ok(false);
        };
        check_version(name, group.version, expected_version)?;
        if exists(&tx, "SELECT 1 FROM thing_groups WHERE parent = ?1", name)? {
            return Err(StoreError::ThingGroupHasChildren(name.to_owned()));
        }
        tx.execute("DELETE FROM thing_groups WHERE name = ?1", [name])?;
        tx.commit()?;
        Ok(true)
    }

    /// Adds a thing to a group (AddThingToThingGroup); a no-op if it is in it.
    /// Fails if either does not exist or the thing is in
    /// [`MAX_GROUPS_PER_THING`] groups already.
    pub fn add_thing_to_group(&self, group: &str, thing: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if !exists(&tx, "SELECT 1 FROM thing_groups WHERE name = ?1", group)? {
            return Err(StoreError::ThingGroupNotFound(group.to_owned()));
        }
        if !exists(&tx, "SELECT 1 FROM things WHERE name = ?1", thing)? {
            return Err(StoreError::ThingNotFound(thing.to_owned()));
        }
        let count: i64 = tx.query_row(
            "SELECT count(*) FROM thing_group_members WHERE thing_name = ?1 AND group_name <> ?2",
            [thing, group],
            |row| row.get(0),
        )?;
        if usize::try_from(count).unwrap_or(usize::MAX) >= MAX_GROUPS_PER_THING {
            return Err(StoreError::TooManyGroups(thing.to_owned()));
        }
        tx.execute(
            "INSERT INTO thing_group_members (group_name, thing_name) VALUES (?1, ?2)
             ON CONFLICT DO NOTHING",
            [group, thing],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Removes a thing from a group (RemoveThingFromThingGroup). Returns
    /// `false` if it was not in it.
    pub fn remove_thing_from_group(&self, group: &str, thing: &str) -> Result<bool, StoreError> {
        let deleted = self.conn().execute(
            "DELETE FROM thing_group_members WHERE group_name = ?1 AND thing_name = ?2",
            [group, thing],
        )?;
        Ok(deleted > 0)
    }

    /// The things in group `name`, sorted; with `recursive`, also those of
    /// its descendant groups.
    pub fn things_in_group(&self, name: &str, recursive: bool) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let sql = if recursive {
            "WITH RECURSIVE tree(name) AS (
                 SELECT ?1 UNION SELECT g.name FROM thing_groups g JOIN tree t ON g.parent = t.name
             )
             SELECT DISTINCT m.thing_name FROM thing_group_members m JOIN tree t ON m.group_name = t.name
             ORDER BY m.thing_name"
        } else {
            "SELECT thing_name FROM thing_group_members WHERE group_name = ?1 ORDER BY thing_name"
        };
        let things = conn
            .prepare(sql)?
            .query_map([name], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(things)
    }

    /// The groups thing `name` is directly in, sorted.
    pub fn groups_of_thing(&self, name: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let groups = conn
            .prepare("SELECT group_name FROM thing_group_members WHERE thing_name = ?1 ORDER BY group_name")?
            .query_map([name], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(groups)
    }
}

/// Group `name` and its ancestors, nearest first; empty if it does not exist.
fn ancestors(conn: &Connection, name: &str) -> rusqlite::Result<Vec<String>> {
    let mut chain = Vec::new();
    let mut next = Some(name.to_owned());
    while let Some(current) = next.take() {
        let parent: Option<Option<String>> = conn
            .query_row(
                "SELECT parent FROM thing_groups WHERE name = ?1",
                [&current],
                |row| row.get(0),
            )
            .optional()?;
        let Some(parent) = parent else { break };
        chain.push(current);
        if chain.len() > MAX_GROUP_DEPTH {
            break;
        }
        next = parent;
    }
    Ok(chain)
}
