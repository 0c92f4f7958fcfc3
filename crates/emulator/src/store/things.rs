//! Things: the registry entries devices connect as.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::certificates::insert_certificate;
use super::policies::{insert_attachment, insert_policy};
use super::{CertificateStatus, Store, StoreError, conversion_error, now_unix};
use crate::ids::new_uuid;

/// Longest thing name AWS accepts.
const MAX_THING_NAME: usize = 128;
/// Longest attribute name AWS accepts.
const MAX_ATTRIBUTE_NAME: usize = 128;
/// Longest attribute value AWS accepts.
const MAX_ATTRIBUTE_VALUE: usize = 800;

/// A thing in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThingRecord {
    /// The thing name (1 to 128 letters, digits, `:`, `_` or `-`).
    pub name: String,
    /// The thing type name, if any.
    pub thing_type: Option<String>,
    /// Searchable attributes, name to value.
    pub attributes: BTreeMap<String, String>,
    /// When the thing was created, unix seconds.
    pub created_at: i64,
    /// AWS's `thingId`: a UUID given at creation.
    pub thing_id: String,
    /// AWS's thing `version`: 1 at creation, one more at each update.
    pub version: i64,
}

/// What deleting a thing with its credentials removed besides the thing
/// ([`Control::delete_thing_with_credentials`](crate::control::Control::delete_thing_with_credentials)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeletedThing {
    /// Certificates deleted (no other thing used them).
    pub certificates: Vec<String>,
    /// Certificates only detached (other things still use them).
    pub detached_certificates: Vec<String>,
    /// The thing's own policy, if it was deleted.
    pub policy: Option<String>,
}

/// Checks a thing (or thing type) name against AWS's rules: 1 to 128 characters, each
/// an ASCII letter, digit, `:`, `_` or `-`.
pub fn validate_thing_name(name: &str) -> Result<(), StoreError> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.len() > MAX_THING_NAME {
        "it is longer than 128 characters"
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'))
    {
        "it contains a character other than a-z, A-Z, 0-9, ':', '_' or '-'"
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidThingName {
        name: name.to_owned(),
        reason,
    })
}

/// Checks an attribute against AWS's `AttributePayload` rules: names of 1 to 128
/// characters among `a-zA-Z0-9_.,@/:#-`, values of up to 800 characters among the same
/// and `=[]`.
pub(super) fn validate_attribute(name: &str, value: &str) -> Result<(), StoreError> {
    let name_char = |b: u8| b.is_ascii_alphanumeric() || b"_.,@/:#-".contains(&b);
    let reason = if name.is_empty() || name.len() > MAX_ATTRIBUTE_NAME {
        "the name must have 1 to 128 characters"
    } else if !name.bytes().all(name_char) {
        "the name may only contain a-z, A-Z, 0-9 and _.,@/:#-"
    } else if value.len() > MAX_ATTRIBUTE_VALUE {
        "the value is longer than 800 characters"
    } else if !value.bytes().all(|b| name_char(b) || b"=[]".contains(&b)) {
        "the value may only contain a-z, A-Z, 0-9 and _.,@/:#-=[]"
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidAttribute {
        name: name.to_owned(),
        reason,
    })
}

/// Validates and inserts a thing.
pub(super) fn insert_thing(
    conn: &Connection,
    name: &str,
    thing_type: Option<&str>,
    attributes: &BTreeMap<String, String>,
) -> Result<ThingRecord, StoreError> {
    validate_thing_name(name)?;
    if let Some(thing_type) = thing_type {
        validate_thing_name(thing_type)?;
    }
    for (key, value) in attributes {
        validate_attribute(key, value)?;
    }
    let record = ThingRecord {
        name: name.to_owned(),
        thing_type: thing_type.map(str::to_owned),
        attributes: attributes.clone(),
        created_at: now_unix(),
        thing_id: new_uuid(),
        version: 1,
    };
    let inserted = conn.execute(
        "INSERT INTO things (name, thing_type, attributes, created_at, thing_id, version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (name) DO NOTHING",
        params![
            record.name,
            record.thing_type,
            attributes_json(&record.attributes)?,
            record.created_at,
            record.thing_id,
            record.version,
        ],
    )?;
    if inserted == 0 {
        return Err(StoreError::ThingExists(name.to_owned()));
    }
    Ok(record)
}

/// Attributes as stored: a JSON object.
pub(super) fn attributes_json(attributes: &BTreeMap<String, String>) -> rusqlite::Result<String> {
    serde_json::to_string(attributes)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// The columns [`thing_from_row`] reads, in its order: a literal, so that
/// the queries naming them are too (no SQL formatted per call).
macro_rules! thing_columns {
    () => {
        "name, thing_type, attributes, created_at, thing_id, version"
    };
}

fn thing_from_row(row: &Row<'_>) -> rusqlite::Result<ThingRecord> {
    let attributes: String = row.get(2)?;
    Ok(ThingRecord {
        name: row.get(0)?,
        thing_type: row.get(1)?,
        attributes: serde_json::from_str(&attributes).map_err(|e| conversion_error(2, e))?,
        created_at: row.get(3)?,
        thing_id: row.get::<_, Option<String>>(4)?.unwrap_or_default(),
        version: row.get(5)?,
    })
}

/// Reads thing `name` inside a transaction or connection.
pub(super) fn read_thing(conn: &Connection, name: &str) -> rusqlite::Result<Option<ThingRecord>> {
    conn.prepare_cached(concat!(
        "SELECT ",
        thing_columns!(),
        " FROM things WHERE name = ?1"
    ))?
    .query_row([name], thing_from_row)
    .optional()
}

/// Fails with [`StoreError::VersionConflict`] unless `expected` is absent or is
/// `actual`, the version of the thing (or group) `name`.
pub(super) fn check_version(
    name: &str,
    actual: i64,
    expected: Option<i64>,
) -> Result<(), StoreError> {
    match expected {
        Some(expected) if expected != actual => Err(StoreError::VersionConflict {
            name: name.to_owned(),
            expected,
            actual,
        }),
        _ => Ok(()),
    }
}

impl Store {
    /// Creates a thing. Fails with [`StoreError::ThingExists`] if the name is taken, and
    /// with a validation error if the name, the type name or an attribute breaks AWS's
    /// rules.
    pub fn create_thing(
        &self,
        name: &str,
        thing_type: Option<&str>,
        attributes: &BTreeMap<String, String>,
    ) -> Result<ThingRecord, StoreError> {
        insert_thing(&self.conn(), name, thing_type, attributes)
    }

    /// Creates a thing (no type, no attributes), registers `certificate_pem` under
    /// `certificate_id` as `Active` and attaches it to the thing, all or nothing.
    /// Fails like [`Store::create_thing`] and [`Store::add_certificate`].
    pub fn create_thing_with_certificate(
        &self,
        name: &str,
        certificate_id: &str,
        certificate_pem: &str,
    ) -> Result<ThingRecord, StoreError> {
        self.create_thing_with_credentials(name, certificate_id, certificate_pem, None)
    }

    /// Like [`Store::create_thing_with_certificate`], and attaches policy
    /// `policy` to the certificate, creating it first with `new_document` when
    /// given; all or nothing. Fails also like [`Store::create_policy`] and
    /// [`Store::attach_policy`].
    pub fn create_thing_with_certificate_and_policy(
        &self,
        name: &str,
        certificate_id: &str,
        certificate_pem: &str,
        policy: &str,
        new_document: Option<&str>,
    ) -> Result<ThingRecord, StoreError> {
        self.create_thing_with_credentials(
            name,
            certificate_id,
            certificate_pem,
            Some((policy, new_document)),
        )
    }

    fn create_thing_with_credentials(
        &self,
        name: &str,
        certificate_id: &str,
        certificate_pem: &str,
        policy: Option<(&str, Option<&str>)>,
    ) -> Result<ThingRecord, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let thing = insert_thing(&tx, name, None, &BTreeMap::new())?;
        insert_certificate(
            &tx,
            certificate_id,
            certificate_pem,
            CertificateStatus::Active,
        )?;
        tx.execute(
            "INSERT INTO thing_principals (thing_name, certificate_id) VALUES (?1, ?2)",
            [name, certificate_id],
        )?;
        if let Some((policy, new_document)) = policy {
            if let Some(document) = new_document {
                insert_policy(&tx, policy, document)?;
            }
            insert_attachment(&tx, policy, certificate_id)?;
        }
        tx.commit()?;
        Ok(thing)
    }

    /// Deletes a thing with what was made for it: detaches its certificates;
    /// deletes each certificate no other thing uses (with its policy
    /// attachments: it stops working at once); then deletes `own_policy` if no
    /// certificate uses it any more. All or nothing. Fails with
    /// [`StoreError::ThingNotFound`] if there is no such thing.
    pub fn delete_thing_with_credentials(
        &self,
        name: &str,
        own_policy: &str,
    ) -> Result<DeletedThing, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let exists = tx
            .query_row("SELECT 1 FROM things WHERE name = ?1", [name], |_| Ok(()))
            .optional()?
            .is_some();
        if !exists {
            return Err(StoreError::ThingNotFound(name.to_owned()));
        }
        let certificates: Vec<String> = tx
            .prepare("SELECT certificate_id FROM thing_principals WHERE thing_name = ?1 ORDER BY certificate_id")?
            .query_map([name], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        tx.execute("DELETE FROM thing_principals WHERE thing_name = ?1", [name])?;
        let mut deleted = DeletedThing::default();
        for id in certificates {
            let still_used: i64 = tx.query_row(
                "SELECT count(*) FROM thing_principals WHERE certificate_id = ?1",
                [&id],
                |row| row.get(0),
            )?;
            if still_used > 0 {
                deleted.detached_certificates.push(id);
                continue;
            }
            tx.execute(
                "DELETE FROM policy_principals WHERE certificate_id = ?1",
                [&id],
            )?;
            tx.execute("DELETE FROM certificates WHERE id = ?1", [&id])?;
            deleted.certificates.push(id);
        }
        let policy_unused = tx
            .query_row(
                "SELECT 1 FROM policies WHERE name = ?1",
                [own_policy],
                |_| Ok(()),
            )
            .optional()?
            .is_some()
            && tx
                .query_row(
                    "SELECT 1 FROM policy_principals WHERE policy_name = ?1",
                    [own_policy],
                    |_| Ok(()),
                )
                .optional()?
                .is_none();
        if policy_unused {
            tx.execute("DELETE FROM policies WHERE name = ?1", [own_policy])?;
            deleted.policy = Some(own_policy.to_owned());
        }
        tx.execute("DELETE FROM things WHERE name = ?1", [name])?;
        tx.commit()?;
        Ok(deleted)
    }

    /// The thing named `name`, if it exists.
    pub fn thing(&self, name: &str) -> Result<Option<ThingRecord>, StoreError> {
        Ok(read_thing(&self.conn(), name)?)
    }

    /// Thing `name`, if certificate `certificate_id` is attached to it: the
    /// thing a connection's policy variables name (one query).
    pub fn attached_thing(
        &self,
        certificate_id: &str,
        name: &str,
    ) -> Result<Option<ThingRecord>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(concat!(
                "SELECT ",
                thing_columns!(),
                " FROM things WHERE name = ?2 AND EXISTS (SELECT 1 FROM thing_principals
                   WHERE thing_name = ?2 AND certificate_id = ?1)"
            ))?
            .query_row([certificate_id, name], thing_from_row)
            .optional()?)
    }

    /// Changes thing `name` (UpdateThing): `change` edits its type and
    /// attributes, which are then validated and stored with the version one
    /// higher. Fails with [`StoreError::ThingNotFound`], with
    /// [`StoreError::VersionConflict`] when `expected_version` is given and is
    /// not the thing's, or with what `change` or validation returns.
    pub fn update_thing(
        &self,
        name: &str,
        expected_version: Option<i64>,
        change: impl FnOnce(&mut ThingRecord) -> Result<(), StoreError>,
    ) -> Result<ThingRecord, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut thing =
            read_thing(&tx, name)?.ok_or_else(|| StoreError::ThingNotFound(name.to_owned()))?;
        check_version(&thing.name, thing.version, expected_version)?;
        change(&mut thing)?;
        if let Some(thing_type) = &thing.thing_type {
            validate_thing_name(thing_type)?;
        }
        for (key, value) in &thing.attributes {
            validate_attribute(key, value)?;
        }
        thing.version += 1;
        tx.execute(
            "UPDATE things SET thing_type = ?2, attributes = ?3, version = ?4 WHERE name = ?1",
            params![
                name,
                thing.thing_type,
                attributes_json(&thing.attributes)?,
                thing.version
            ],
        )?;
        tx.commit()?;
        Ok(thing)
    }

    /// All things, sorted by name.
    pub fn list_things(&self) -> Result<Vec<ThingRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(concat!(
            "SELECT ",
            thing_columns!(),
            " FROM things ORDER BY name"
        ))?;
        let things = stmt
            .query_map([], thing_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(things)
    }

    /// Deletes a thing. Returns `false` if it did not exist (AWS's DeleteThing succeeds
    /// then too). Fails with [`StoreError::ThingHasPrincipals`] while certificates are
    /// attached to it, as AWS does, and with [`StoreError::VersionConflict`] when
    /// `expected_version` is given and is not the thing's.
    pub fn delete_thing(
        &self,
        name: &str,
        expected_version: Option<i64>,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        match read_thing(&tx, name)? {
            Some(thing) => check_version(&thing.name, thing.version, expected_version)?,
            None => return Ok(false),
        }
        let attached: i64 = tx.query_row(
            "SELECT count(*) FROM thing_principals WHERE thing_name = ?1",
            [name],
            |row| row.get(0),
        )?;
        if attached > 0 {
            return Err(StoreError::ThingHasPrincipals(name.to_owned()));
        }
        let deleted = tx.execute("DELETE FROM things WHERE name = ?1", [name])?;
        tx.commit()?;
        Ok(deleted > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thing_names_follow_aws_rules() {
        for ok in ["a", "My_Thing-1:x", &"x".repeat(128)] {
            validate_thing_name(ok).unwrap();
        }
        for bad in [
            "",
            "has space",
            "dot.ted",
            "slash/",
            "ünï",
            &"x".repeat(129),
            "a#b",
        ] {
            assert!(
                matches!(
                    validate_thing_name(bad),
                    Err(StoreError::InvalidThingName { .. })
                ),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn attributes_follow_aws_rules() {
        validate_attribute("serial.number", "AB-12=[x]").unwrap();
        validate_attribute("k", "").unwrap();
        assert!(validate_attribute("", "v").is_err());
        assert!(validate_attribute("a b", "v").is_err());
        assert!(validate_attribute("k", "a b").is_err());
        assert!(validate_attribute("k", &"v".repeat(801)).is_err());
    }
}
