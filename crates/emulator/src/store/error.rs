//! The store's error type.

use std::io;
use std::path::PathBuf;

use super::CertificateStatus;
use crate::policy::PolicyDocumentError;

/// Why a store operation failed.
///
/// Variants up to [`StoreError::Migration`] come from opening the data directory;
/// the others say which registry rule a call broke, or that SQLite failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The data directory could not be created.
    #[error(
        "data directory {} is not writable: {source}; choose another data directory or fix its permissions",
        data_dir.display()
    )]
    DataDirUnwritable {
        /// The data directory the emulator was started with.
        data_dir: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The database file could not be opened or set up.
    #[error(
        "cannot open the database {}: {source}; check that the data directory is writable and that \
         the file is an iotcore database (move it away to start with an empty one)",
        path.display()
    )]
    Open {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The database was written by a newer iotcore.
    #[error(
        "the database {} has schema version {found}, newer than the {supported} this iotcore knows; \
         upgrade iotcore or use another data directory",
        path.display()
    )]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// The schema version in the file.
        found: i64,
        /// The newest schema version this build knows.
        supported: i64,
    },
    /// Upgrading the database schema failed; the database is left at the previous version.
    #[error(
        "upgrading the database {} to schema version {version} failed: {source}; \
         restore a backup or move the file away to start with an empty one",
        path.display()
    )]
    Migration {
        /// The database file.
        path: PathBuf,
        /// The schema version that could not be applied.
        version: i64,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A thing name breaks AWS's rules.
    #[error(
        "invalid thing name {name:?}: {reason}; use 1 to 128 characters among a-z, A-Z, 0-9, ':', '_' and '-'"
    )]
    InvalidThingName {
        /// The rejected name.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A thing attribute name or value breaks AWS's rules.
    #[error("invalid attribute {name:?}: {reason}")]
    InvalidAttribute {
        /// The attribute's name.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A thing with this name already exists.
    #[error("thing {0:?} already exists")]
    ThingExists(String),
    /// No thing has this name.
    #[error("thing {0:?} does not exist")]
    ThingNotFound(String),
    /// An update or delete named a version the thing no longer has.
    #[error("thing {name:?} is at version {actual}, not the expected version {expected}")]
    VersionConflict {
        /// The thing name.
        name: String,
        /// The version the caller expected.
        expected: i64,
        /// The thing's version.
        actual: i64,
    },
    /// The thing still has certificates attached (AWS's DeleteThing refuses too).
    #[error(
        "cannot delete thing {0:?}: it is still attached to one or more certificates; detach them first"
    )]
    ThingHasPrincipals(String),
    /// An authorizer with this name already exists.
    #[error("authorizer {0:?} already exists")]
    AuthorizerExists(String),
    /// No authorizer has this name.
    #[error("authorizer {0:?} does not exist")]
    AuthorizerNotFound(String),
    /// The thing is not a Greengrass core device.
    #[error("thing {0:?} is not a Greengrass core device")]
    CoreDeviceNotFound(String),
    /// A thing type with this name already exists.
    #[error("thing type {0:?} already exists")]
    ThingTypeExists(String),
    /// No thing type has this name.
    #[error("thing type {0:?} does not exist")]
    ThingTypeNotFound(String),
    /// A thing type that cannot be deleted (or used) now.
    #[error("thing type {name:?} cannot be used or deleted: {reason}")]
    ThingTypeInUse {
        /// The thing type.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// More searchable attributes than a thing type may have.
    #[error("a thing type may name at most 3 searchable attributes, not {0}")]
    TooManySearchableAttributes(usize),
    /// A thing group with this name already exists.
    #[error("thing group {0:?} already exists")]
    ThingGroupExists(String),
    /// No thing group has this name.
    #[error("thing group {0:?} does not exist")]
    ThingGroupNotFound(String),
    /// A group would be nested too deep.
    #[error("thing group {0:?} would be nested deeper than 7 levels")]
    ThingGroupTooDeep(String),
    /// A group with child groups cannot be deleted.
    #[error("cannot delete thing group {0:?}: it has child groups; delete them first")]
    ThingGroupHasChildren(String),
    /// A thing is in as many groups as it may be.
    #[error("thing {0:?} is already in 10 thing groups, the most it may be in")]
    TooManyGroups(String),
    /// A job with this id already exists.
    #[error("job {0:?} already exists")]
    JobExists(String),
    /// An access key id is taken.
    #[error("access key {0} already exists")]
    CredentialExists(String),
    /// A certificate id is not 64 lowercase hexadecimal characters.
    #[error("invalid certificate id {0:?}: expected the 64 lowercase hex characters of a SHA-256")]
    InvalidCertificateId(String),
    /// A certificate with this id is already registered.
    #[error("certificate {0} is already registered")]
    CertificateExists(String),
    /// No certificate has this id.
    #[error("certificate {0} does not exist")]
    CertificateNotFound(String),
    /// A certificate status change that AWS's UpdateCertificate refuses.
    #[error("certificate {id} cannot change from {from} to {to}: {reason}")]
    StatusChange {
        /// The certificate id.
        id: String,
        /// Its current status.
        from: CertificateStatus,
        /// The refused status.
        to: CertificateStatus,
        /// Why it is refused.
        reason: &'static str,
    },
    /// An active certificate cannot be deleted.
    #[error("cannot delete certificate {0}: it is ACTIVE; set it INACTIVE or REVOKED first")]
    CertificateActive(String),
    /// A certificate attached to things cannot be deleted.
    #[error("cannot delete certificate {id}: it is attached to {things:?}; detach it first")]
    CertificateAttached {
        /// The certificate id.
        id: String,
        /// The things it is attached to.
        things: Vec<String>,
    },
    /// A policy name breaks AWS's rules.
    #[error(
        "invalid policy name {name:?}: {reason}; use 1 to 128 characters among a-z, A-Z, 0-9 and _+=,.@-"
    )]
    InvalidPolicyName {
        /// The rejected name.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A policy document was refused; `problem` names the element at fault.
    #[error("policy {name:?} refused: {problem}")]
    MalformedPolicy {
        /// The policy name.
        name: String,
        /// What is wrong, and where.
        problem: PolicyDocumentError,
    },
    /// A policy with this name already exists.
    #[error(
        "policy {0:?} already exists; change it with `iotcore policy update` (a new version) or pick another name"
    )]
    PolicyExists(String),
    /// No policy has this name.
    #[error("policy {0:?} does not exist")]
    PolicyNotFound(String),
    /// The policy has no such version.
    #[error("policy {name:?} has no version {version}")]
    PolicyVersionNotFound {
        /// The policy name.
        name: String,
        /// The version asked for.
        version: u32,
    },
    /// The policy already has as many versions as AWS allows.
    #[error(
        "policy {name:?} already has {max} versions, AWS's limit; delete a version that is not the default first"
    )]
    PolicyVersionLimit {
        /// The policy name.
        name: String,
        /// The limit.
        max: usize,
    },
    /// The default version of a policy cannot be deleted.
    #[error(
        "version {version} is the default version of policy {name:?}; make another version the default first"
    )]
    DefaultPolicyVersion {
        /// The policy name.
        name: String,
        /// The version.
        version: u32,
    },
    /// A policy attached to certificates cannot be deleted.
    #[error(
        "cannot delete policy {name:?}: it is attached to certificates {certificates:?}; detach it first"
    )]
    PolicyAttached {
        /// The policy name.
        name: String,
        /// The certificates it is attached to.
        certificates: Vec<String>,
    },
    /// A policy with versions besides its default cannot be deleted (AWS's DeletePolicy).
    #[error("cannot delete policy {name:?}: delete its non-default versions {versions:?} first")]
    PolicyHasVersions {
        /// The policy name.
        name: String,
        /// Its versions other than the default.
        versions: Vec<u32>,
    },
    /// The certificate already has as many policies as AWS allows.
    #[error(
        "certificate {certificate_id} already has {max} policies attached, AWS's limit; detach one first"
    )]
    PolicyLimit {
        /// The certificate id.
        certificate_id: String,
        /// The limit.
        max: usize,
    },
    /// A certificate with policies attached cannot be deleted.
    #[error(
        "cannot delete certificate {id}: policies {policies:?} are attached to it; detach them first"
    )]
    CertificateHasPolicies {
        /// The certificate id.
        id: String,
        /// The policies attached to it.
        policies: Vec<String>,
    },
    /// A SQLite operation failed, or the database holds a value iotcore did not write.
    #[error("database operation failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
}
