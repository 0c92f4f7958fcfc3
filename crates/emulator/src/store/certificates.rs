//! Certificates and their attachments to things.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreError, now_unix};

/// Status of a registered certificate, as AWS IoT names them. Only `Active`
/// certificates may connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertificateStatus {
    /// Devices may connect with it.
    Active,
    /// Disabled; may be activated again.
    Inactive,
    /// Permanently disabled: its status can never change again.
    Revoked,
    /// Created by fleet provisioning and waiting for a template to activate it.
    PendingActivation,
}

impl CertificateStatus {
    /// The AWS spelling: `ACTIVE`, `INACTIVE`, `REVOKED`, `PENDING_ACTIVATION`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Inactive => "INACTIVE",
            Self::Revoked => "REVOKED",
            Self::PendingActivation => "PENDING_ACTIVATION",
        }
    }
}

impl fmt::Display for CertificateStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the AWS certificate status names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown certificate status {0:?}; expected ACTIVE, INACTIVE, REVOKED or PENDING_ACTIVATION"
)]
pub struct UnknownCertificateStatus(pub String);

impl FromStr for CertificateStatus {
    type Err = UnknownCertificateStatus;

    /// Parses the AWS spelling (see [`CertificateStatus::as_str`]), case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Self::Active,
            Self::Inactive,
            Self::Revoked,
            Self::PendingActivation,
        ]
        .into_iter()
        .find(|status| status.as_str().eq_ignore_ascii_case(s))
        .ok_or_else(|| UnknownCertificateStatus(s.to_owned()))
    }
}

impl ToSql for CertificateStatus {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for CertificateStatus {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value
            .as_str()?
            .parse()
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

/// A registered certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRecord {
    /// The certificate id: lowercase hex SHA-256 of its DER encoding.
    pub id: String,
    /// The certificate, PEM-encoded.
    pub pem: String,
    /// Its status.
    pub status: CertificateStatus,
    /// When it was registered, unix seconds.
    pub created_at: i64,
    /// When its status last changed (or it was registered), unix seconds.
    pub updated_at: i64,
    /// Names of the things it is attached to, sorted.
    pub things: Vec<String>,
}

fn validate_certificate_id(id: &str) -> Result<(), StoreError> {
    if id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(StoreError::InvalidCertificateId(id.to_owned()))
    }
}

/// Whether AWS's UpdateCertificate allows `from` → `to`; `Err` says why not.
fn check_status_change(from: CertificateStatus, to: CertificateStatus) -> Result<(), &'static str> {
    use CertificateStatus::*;
    match (from, to) {
        (Revoked, Revoked) => Ok(()),
        (Revoked, _) => Err("a revoked certificate's status can never change"),
        (_, PendingActivation) => Err("PENDING_ACTIVATION is only set by fleet provisioning"),
        _ => Ok(()),
    }
}

/// Validates the id and inserts a certificate.
pub(super) fn insert_certificate(
    conn: &Connection,
    id: &str,
    pem: &str,
    status: CertificateStatus,
) -> Result<CertificateRecord, StoreError> {
    validate_certificate_id(id)?;
    let created_at = now_unix();
    let inserted = conn.execute(
        "INSERT INTO certificates (id, pem, status, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)
         ON CONFLICT (id) DO NOTHING",
        params![id, pem, status, created_at],
    )?;
    if inserted == 0 {
        return Err(StoreError::CertificateExists(id.to_owned()));
    }
    Ok(CertificateRecord {
        id: id.to_owned(),
        pem: pem.to_owned(),
        status,
        created_at,
        updated_at: created_at,
        things: Vec::new(),
    })
}

impl Store {
    /// Registers a certificate under `id` (which must be the lowercase hex SHA-256 of its
    /// DER, see [`crate::pki::certificate_id`]) with an initial `status`.
    pub fn add_certificate(
        &self,
        id: &str,
        pem: &str,
        status: CertificateStatus,
    ) -> Result<CertificateRecord, StoreError> {
        insert_certificate(&self.conn(), id, pem, status)
    }

    /// The status of the certificate with this id, if registered: what the
    /// TLS handshake checks, without the certificate's PEM and things.
    pub fn certificate_status(&self, id: &str) -> Result<Option<CertificateStatus>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT status FROM certificates WHERE id = ?1")?
            .query_row([id], |row| row.get(0))
            .optional()?)
    }

    /// The certificate with this id and the things it is attached to, if registered.
    pub fn certificate(&self, id: &str) -> Result<Option<CertificateRecord>, StoreError> {
        let conn = self.conn();
        let record = conn
            .prepare_cached(
                "SELECT id, pem, status, created_at, coalesce(updated_at, created_at)
                 FROM certificates WHERE id = ?1",
            )?
            .query_row([id], |row| {
                Ok(CertificateRecord {
                    id: row.get(0)?,
                    pem: row.get(1)?,
                    status: row.get(2)?,
                    created_at: row.get(3)?,
                    updated_at: row.get(4)?,
                    things: Vec::new(),
                })
            })
            .optional()?;
        let Some(mut record) = record else {
            return Ok(None);
        };
        let mut stmt = conn.prepare_cached(
            "SELECT thing_name FROM thing_principals WHERE certificate_id = ?1 ORDER BY thing_name",
        )?;
        record.things = stmt
            .query_map([id], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Some(record))
    }

    /// All registered certificates with their things, sorted by id.
    pub fn list_certificates(&self) -> Result<Vec<CertificateRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT c.id, c.pem, c.status, c.created_at, coalesce(c.updated_at, c.created_at), p.thing_name
             FROM certificates c LEFT JOIN thing_principals p ON p.certificate_id = c.id
             ORDER BY c.id, p.thing_name",
        )?;
        let mut rows = stmt.query([])?;
        let mut records: Vec<CertificateRecord> = Vec::new();
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            let thing: Option<String> = row.get(5)?;
            match records.last_mut() {
                Some(last) if last.id == id => last.things.extend(thing),
                _ => records.push(CertificateRecord {
                    id,
                    pem: row.get(1)?,
                    status: row.get(2)?,
                    created_at: row.get(3)?,
                    updated_at: row.get(4)?,
                    things: thing.into_iter().collect(),
                }),
            }
        }
        Ok(records)
    }

    /// Changes a certificate's status with AWS's UpdateCertificate rules: setting the
    /// current status again is a no-op, a revoked certificate never changes, and
    /// `PendingActivation` cannot be set.
    pub fn set_certificate_status(
        &self,
        id: &str,
        status: CertificateStatus,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let current: CertificateStatus = tx
            .query_row(
                "SELECT status FROM certificates WHERE id = ?1",
                [id],
                |row| row.get(0),
            )
            .optional()?
            .ok_or_else(|| StoreError::CertificateNotFound(id.to_owned()))?;
        if current == status {
            return Ok(());
        }
        check_status_change(current, status).map_err(|reason| StoreError::StatusChange {
            id: id.to_owned(),
            from: current,
            to: status,
            reason,
        })?;
        tx.execute(
            "UPDATE certificates SET status = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, status, now_unix()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Deletes a certificate. Returns `false` if it was not registered. As in AWS, an
    /// `Active` certificate, or one attached to things or policies, cannot be deleted.
    pub fn delete_certificate(&self, id: &str) -> Result<bool, StoreError> {
        let Some(record) = self.certificate(id)? else {
            return Ok(false);
        };
        if record.status == CertificateStatus::Active {
            return Err(StoreError::CertificateActive(id.to_owned()));
        }
        if !record.things.is_empty() {
            return Err(StoreError::CertificateAttached {
                id: id.to_owned(),
                things: record.things,
            });
        }
        let policies = super::policies::policies_of(&self.conn(), id)?;
        if !policies.is_empty() {
            return Err(StoreError::CertificateHasPolicies {
                id: id.to_owned(),
                policies,
            });
        }
        // Attaching needs the certificate row, and the foreign key refuses to delete it
        // if an attachment appeared since the check above.
        let deleted = self
            .conn()
            .execute("DELETE FROM certificates WHERE id = ?1", [id])?;
        Ok(deleted > 0)
    }

    /// Attaches a certificate to a thing (AttachThingPrincipal). Attaching twice is a
    /// no-op.
    pub fn attach_thing_principal(
        &self,
        thing_name: &str,
        certificate_id: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let exists = |sql: &str, key: &str| -> rusqlite::Result<bool> {
            tx.query_row(sql, [key], |_| Ok(()))
                .optional()
                .map(|row| row.is_some())
        };
        if !exists("SELECT 1 FROM things WHERE name = ?1", thing_name)? {
            return Err(StoreError::ThingNotFound(thing_name.to_owned()));
        }
        if !exists("SELECT 1 FROM certificates WHERE id = ?1", certificate_id)? {
            return Err(StoreError::CertificateNotFound(certificate_id.to_owned()));
        }
        tx.execute(
            "INSERT INTO thing_principals (thing_name, certificate_id) VALUES (?1, ?2)
             ON CONFLICT DO NOTHING",
            [thing_name, certificate_id],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Detaches a certificate from a thing. Returns `false` if it was not attached.
    pub fn detach_thing_principal(
        &self,
        thing_name: &str,
        certificate_id: &str,
    ) -> Result<bool, StoreError> {
        let deleted = self.conn().execute(
            "DELETE FROM thing_principals WHERE thing_name = ?1 AND certificate_id = ?2",
            [thing_name, certificate_id],
        )?;
        Ok(deleted > 0)
    }

    /// Ids of the certificates attached to a thing, sorted (ListThingPrincipals).
    pub fn thing_principals(&self, thing_name: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT certificate_id FROM thing_principals WHERE thing_name = ?1 ORDER BY certificate_id",
        )?;
        let ids = stmt
            .query_map([thing_name], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CertificateStatus::*;

    #[test]
    fn status_names_round_trip() {
        for status in [Active, Inactive, Revoked, PendingActivation] {
            assert_eq!(status.as_str().parse::<CertificateStatus>(), Ok(status));
        }
        assert_eq!("active".parse::<CertificateStatus>(), Ok(Active));
        assert!("REGISTER_INACTIVE".parse::<CertificateStatus>().is_err());
    }

    #[test]
    fn status_changes_follow_update_certificate() {
        assert!(check_status_change(Active, Inactive).is_ok());
        assert!(check_status_change(Inactive, Active).is_ok());
        assert!(check_status_change(Active, Revoked).is_ok());
        assert!(check_status_change(PendingActivation, Active).is_ok());
        assert!(check_status_change(Revoked, Active).is_err());
        assert!(check_status_change(Revoked, Inactive).is_err());
        assert!(check_status_change(Active, PendingActivation).is_err());
    }

    #[test]
    fn certificate_ids_are_64_lowercase_hex() {
        validate_certificate_id(&"a1".repeat(32)).unwrap();
        assert!(validate_certificate_id(&"A1".repeat(32)).is_err());
        assert!(validate_certificate_id("abc").is_err());
        assert!(validate_certificate_id(&"g1".repeat(32)).is_err());
    }
}
