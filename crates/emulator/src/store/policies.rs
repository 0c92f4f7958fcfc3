//! AWS IoT policies: named documents with up to five versions, one of them the
//! default (the one in force), attached to certificates.
//!
//! The rules are AWS's CreatePolicy, CreatePolicyVersion, SetDefaultPolicyVersion,
//! DeletePolicyVersion, DeletePolicy, AttachPolicy and DetachPolicy: names
//! `[\w+=,.@-]{1,128}`; documents checked by [`PolicyDocument::parse`] before
//! they are stored; version ids count up from 1 and are never reused; the
//! default version cannot be deleted; a policy is deleted only once detached
//! and down to its default version; at most 10 policies per certificate.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreError, now_unix};
use crate::policy::PolicyDocument;

/// Most versions a policy may have (AWS: "A managed policy can have up to five versions").
pub const MAX_POLICY_VERSIONS: usize = 5;
/// Most policies attached to one certificate (AWS IoT quota).
pub const MAX_POLICIES_PER_CERTIFICATE: usize = 10;
/// Longest policy name.
const MAX_POLICY_NAME: usize = 128;

/// One version of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersionRecord {
    /// The version id, from 1.
    pub version: u32,
    /// The JSON document as it was given.
    pub document: String,
    /// When it was created, unix seconds.
    pub created_at: i64,
}

/// A policy with its versions and the certificates it is attached to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRecord {
    /// The policy name.
    pub name: String,
    /// The version in force.
    pub default_version: u32,
    /// Every version, oldest first.
    pub versions: Vec<PolicyVersionRecord>,
    /// Ids of the certificates it is attached to, sorted.
    pub certificates: Vec<String>,
    /// When it was created, unix seconds.
    pub created_at: i64,
}

impl PolicyRecord {
    /// The default version's document.
    pub fn default_document(&self) -> &str {
        self.versions
            .iter()
            .find(|v| v.version == self.default_version)
            .map_or("", |v| v.document.as_str())
    }
}

/// The default version of a policy attached to a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedPolicyRecord {
    /// The policy name.
    pub name: String,
    /// Its default version.
    pub version: u32,
    /// That version's document.
    pub document: String,
}

/// Checks a policy name against AWS's pattern `[\w+=,.@-]+`, 1 to 128 characters.
pub fn validate_policy_name(name: &str) -> Result<(), StoreError> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.len() > MAX_POLICY_NAME {
        "it is longer than 128 characters"
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
    {
        "it contains a character other than a-z, A-Z, 0-9 and _+=,.@-"
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidPolicyName {
        name: name.to_owned(),
        reason,
    })
}

/// Checks `document`, the document of policy `name`.
pub(super) fn check_document(name: &str, document: &str) -> Result<PolicyDocument, StoreError> {
    PolicyDocument::parse(document).map_err(|problem| StoreError::MalformedPolicy {
        name: name.to_owned(),
        problem,
    })
}

/// Validates and inserts a policy with its first version (the default).
pub(super) fn insert_policy(
    conn: &Connection,
    name: &str,
    document: &str,
) -> Result<(), StoreError> {
    validate_policy_name(name)?;
    check_document(name, document)?;
    let now = now_unix();
    let inserted = conn.execute(
        "INSERT INTO policies (name, default_version, last_version, created_at) VALUES (?1, 1, 1, ?2)
         ON CONFLICT (name) DO NOTHING",
        params![name, now],
    )?;
    if inserted == 0 {
        return Err(StoreError::PolicyExists(name.to_owned()));
    }
    conn.execute(
        "INSERT INTO policy_versions (policy_name, version, document, created_at) VALUES (?1, 1, ?2, ?3)",
        params![name, document, now],
    )?;
    Ok(())
}

/// Attaches a policy to a certificate; a no-op if already attached.
pub(super) fn insert_attachment(
    conn: &Connection,
    name: &str,
    certificate_id: &str,
) -> Result<(), StoreError> {
    let exists = |sql: &str, key: &str| -> rusqlite::Result<bool> {
        conn.query_row(sql, [key], |_| Ok(()))
            .optional()
            .map(|row| row.is_some())
    };
    if !exists("SELECT 1 FROM policies WHERE name = ?1", name)? {
        return Err(StoreError::PolicyNotFound(name.to_owned()));
    }
    if !exists("SELECT 1 FROM certificates WHERE id = ?1", certificate_id)? {
        return Err(StoreError::CertificateNotFound(certificate_id.to_owned()));
    }
    if exists_pair(conn, name, certificate_id)? {
        return Ok(());
    }
    let attached: i64 = conn.query_row(
        "SELECT count(*) FROM policy_principals WHERE certificate_id = ?1",
        [certificate_id],
        |row| row.get(0),
    )?;
    if usize::try_from(attached).unwrap_or(usize::MAX) >= MAX_POLICIES_PER_CERTIFICATE {
        return Err(StoreError::PolicyLimit {
            certificate_id: certificate_id.to_owned(),
            max: MAX_POLICIES_PER_CERTIFICATE,
        });
    }
    conn.execute(
        "INSERT INTO policy_principals (policy_name, certificate_id) VALUES (?1, ?2)",
        [name, certificate_id],
    )?;
    Ok(())
}

fn exists_pair(conn: &Connection, name: &str, certificate_id: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT 1 FROM policy_principals WHERE policy_name = ?1 AND certificate_id = ?2",
        [name, certificate_id],
        |_| Ok(()),
    )
    .optional()
    .map(|row| row.is_some())
}

/// Names of the policies attached to a certificate, sorted.
pub(super) fn policies_of(
    conn: &Connection,
    certificate_id: &str,
) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT policy_name FROM policy_principals WHERE certificate_id = ?1 ORDER BY policy_name",
    )?;
    stmt.query_map([certificate_id], |row| row.get(0))?
        .collect()
}

fn read_policy(conn: &Connection, name: &str) -> Result<Option<PolicyRecord>, StoreError> {
    let head = conn
        .query_row(
            "SELECT default_version, created_at FROM policies WHERE name = ?1",
            [name],
            |row| Ok((row.get::<_, u32>(0)?, row.get::<_, i64>(1)?)),
        )
        .optional()?;
    let Some((default_version, created_at)) = head else {
        return Ok(None);
    };
    let mut stmt = conn.prepare(
        "SELECT version, document, created_at FROM policy_versions WHERE policy_name = ?1 ORDER BY version",
    )?;
    let versions = stmt
        .query_map([name], |row| {
            Ok(PolicyVersionRecord {
                version: row.get(0)?,
                document: row.get(1)?,
                created_at: row.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt = conn.prepare(
        "SELECT certificate_id FROM policy_principals WHERE policy_name = ?1 ORDER BY certificate_id",
    )?;
    let certificates = stmt
        .query_map([name], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(PolicyRecord {
        name: name.to_owned(),
        default_version,
        versions,
        certificates,
        created_at,
    }))
}

impl Store {
    /// Creates policy `name` with `document` as version 1, its default
    /// (CreatePolicy). Fails if the name is invalid or taken, or the document is
    /// refused ([`StoreError::MalformedPolicy`] names the element at fault).
    pub fn create_policy(&self, name: &str, document: &str) -> Result<PolicyRecord, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        insert_policy(&tx, name, document)?;
        let record =
            read_policy(&tx, name)?.ok_or_else(|| StoreError::PolicyNotFound(name.to_owned()))?;
        tx.commit()?;
        Ok(record)
    }

    /// Adds a version to policy `name` (CreatePolicyVersion) and returns its id;
    /// with `set_as_default` it becomes the version in force.
    pub fn create_policy_version(
        &self,
        name: &str,
        document: &str,
        set_as_default: bool,
    ) -> Result<u32, StoreError> {
        check_document(name, document)?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let last: u32 = tx
            .query_row(
                "SELECT last_version FROM policies WHERE name = ?1",
                [name],
                |row| row.get(0),
            )
            .optional()?
            .ok_or_else(|| StoreError::PolicyNotFound(name.to_owned()))?;
        let count: i64 = tx.query_row(
            "SELECT count(*) FROM policy_versions WHERE policy_name = ?1",
            [name],
            |row| row.get(0),
        )?;
        if usize::try_from(count).unwrap_or(usize::MAX) >= MAX_POLICY_VERSIONS {
            return Err(StoreError::PolicyVersionLimit {
                name: name.to_owned(),
                max: MAX_POLICY_VERSIONS,
            });
        }
        let version = last + 1;
        tx.execute(
            "INSERT INTO policy_versions (policy_name, version, document, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![name, version, document, now_unix()],
        )?;
        tx.execute(
            "UPDATE policies SET last_version = ?2 WHERE name = ?1",
            params![name, version],
        )?;
        if set_as_default {
            tx.execute(
                "UPDATE policies SET default_version = ?2 WHERE name = ?1",
                params![name, version],
            )?;
        }
        tx.commit()?;
        Ok(version)
    }

    /// Makes `version` the version in force (SetDefaultPolicyVersion).
    pub fn set_default_policy_version(&self, name: &str, version: u32) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        self.require_version(&tx, name, version)?;
        tx.execute(
            "UPDATE policies SET default_version = ?2 WHERE name = ?1",
            params![name, version],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Deletes a version that is not the default (DeletePolicyVersion).
    pub fn delete_policy_version(&self, name: &str, version: u32) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let default = self.require_version(&tx, name, version)?;
        if default == version {
            return Err(StoreError::DefaultPolicyVersion {
                name: name.to_owned(),
                version,
            });
        }
        tx.execute(
            "DELETE FROM policy_versions WHERE policy_name = ?1 AND version = ?2",
            params![name, version],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Fails unless policy `name` has `version`; returns its default version.
    fn require_version(
        &self,
        conn: &Connection,
        name: &str,
        version: u32,
    ) -> Result<u32, StoreError> {
        let default: u32 = conn
            .query_row(
                "SELECT default_version FROM policies WHERE name = ?1",
                [name],
                |row| row.get(0),
            )
            .optional()?
            .ok_or_else(|| StoreError::PolicyNotFound(name.to_owned()))?;
        let exists = conn
            .query_row(
                "SELECT 1 FROM policy_versions WHERE policy_name = ?1 AND version = ?2",
                params![name, version],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if !exists {
            return Err(StoreError::PolicyVersionNotFound {
                name: name.to_owned(),
                version,
            });
        }
        Ok(default)
    }

    /// Deletes a policy (DeletePolicy). Returns `false` if it did not exist.
    /// As in AWS, it must be attached to no certificate and have no version
    /// besides its default.
    pub fn delete_policy(&self, name: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let Some(record) = read_policy(&tx, name)? else {
            return Ok(false);
        };
        if !record.certificates.is_empty() {
            return Err(StoreError::PolicyAttached {
                name: name.to_owned(),
                certificates: record.certificates,
            });
        }
        let others: Vec<u32> = record
            .versions
            .iter()
            .map(|v| v.version)
            .filter(|v| *v != record.default_version)
            .collect();
        if !others.is_empty() {
            return Err(StoreError::PolicyHasVersions {
                name: name.to_owned(),
                versions: others,
            });
        }
        tx.execute("DELETE FROM policies WHERE name = ?1", [name])?;
        tx.commit()?;
        Ok(true)
    }

    /// The policy `name` with its versions and attachments, if it exists.
    pub fn policy(&self, name: &str) -> Result<Option<PolicyRecord>, StoreError> {
        read_policy(&self.conn(), name)
    }

    /// Every policy, sorted by name.
    pub fn list_policies(&self) -> Result<Vec<PolicyRecord>, StoreError> {
        let conn = self.conn();
        let names: Vec<String> = conn
            .prepare("SELECT name FROM policies ORDER BY name")?
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        names
            .iter()
            .filter_map(|name| read_policy(&conn, name).transpose())
            .collect()
    }

    /// Attaches policy `name` to a certificate (AttachPolicy); a no-op if it
    /// already is.
    pub fn attach_policy(&self, name: &str, certificate_id: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        insert_attachment(&tx, name, certificate_id)?;
        tx.commit()?;
        Ok(())
    }

    /// Detaches policy `name` from a certificate (DetachPolicy). Returns `false`
    /// if it was not attached.
    pub fn detach_policy(&self, name: &str, certificate_id: &str) -> Result<bool, StoreError> {
        let deleted = self.conn().execute(
            "DELETE FROM policy_principals WHERE policy_name = ?1 AND certificate_id = ?2",
            [name, certificate_id],
        )?;
        Ok(deleted > 0)
    }

    /// The default versions of the policies attached to a certificate, by name.
    pub fn certificate_policies(
        &self,
        certificate_id: &str,
    ) -> Result<Vec<AttachedPolicyRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT p.name, p.default_version, v.document
             FROM policy_principals a
             JOIN policies p ON p.name = a.policy_name
             JOIN policy_versions v ON v.policy_name = p.name AND v.version = p.default_version
             WHERE a.certificate_id = ?1
             ORDER BY p.name",
        )?;
        let policies = stmt
            .query_map([certificate_id], |row| {
                Ok(AttachedPolicyRecord {
                    name: row.get(0)?,
                    version: row.get(1)?,
                    document: row.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(policies)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_follow_aws_rules() {
        for ok in ["a", "My_Policy+=,.@-1", &"p".repeat(128)] {
            validate_policy_name(ok).unwrap();
        }
        for bad in ["", "has space", "colon:ed", "slash/", &"p".repeat(129)] {
            assert!(
                matches!(
                    validate_policy_name(bad),
                    Err(StoreError::InvalidPolicyName { .. })
                ),
                "{bad:?}"
            );
        }
    }
}
