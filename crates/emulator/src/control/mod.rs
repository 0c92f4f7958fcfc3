//! The control layer: AWS IoT's control-plane operations (CreateThing,
//! AttachPolicy, CreateKeysAndCertificate, …) with AWS's validation, request
//! and response shapes and errors.
//!
//! Everything that changes the registry goes through a [`Control`]: the
//! `iotcore` CLI, the emulator's HTTPS API (what the AWS CLI, boto3 and the
//! AWS SDKs call) and tests alike. The SQLite store behind it is private to
//! the emulator. A `Control` from a running [`Emulator`](crate::Emulator)
//! ([`Emulator::control`](crate::Emulator::control)) tells live connections
//! of every change it makes (a certificate deactivated is disconnected, a
//! policy update applies to the next publish); [`Control::open`] works on a
//! data directory while no emulator runs.
//!
//! Each operation takes a request and returns a response whose fields are
//! AWS's (`serde` names them as AWS's JSON does, so the HTTPS API is a thin
//! layer), and fails with a [`ControlError`] carrying AWS's error code.
//!
//! ```no_run
//! # fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use iotcore_emulator::control::{Control, CreateThingRequest};
//! use iotcore_emulator::policy::ArnScope;
//!
//! let control = Control::open("/tmp/iotcore".as_ref(), ArnScope::default())?;
//! let created = control.create_thing(CreateThingRequest::named("sensor-1"))?;
//! println!("{}", created.thing_arn);
//! # Ok(()) }
//! ```

mod authorizers;
mod certificates;
mod credentials;
mod endpoint;
mod error;
mod greengrass;
mod job_configs;
mod job_executions;
mod jobs;
mod page;
mod policies;
mod principals;
mod setup;
mod templates;
mod thing_groups;
mod thing_types;
mod things;

#[cfg(test)]
mod greengrass_tests;
#[cfg(test)]
mod jobs_tests;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub use crate::jobs::{JobsDataError, PendingJobExecutions, UpdatedJobExecution};
pub use authorizers::*;
pub use certificates::*;
pub use credentials::*;
pub use endpoint::*;
pub use error::{ControlError, ErrorCode};
pub use greengrass::*;
pub use job_configs::*;
pub use job_executions::*;
pub(crate) use job_executions::{settle, validate_details};
pub use jobs::*;
pub(crate) use page::paginate;
pub use policies::*;
pub use principals::*;
pub use setup::*;
pub use templates::*;
pub use thing_groups::*;
pub use thing_types::*;
pub use things::*;

pub use crate::store::{
    CertificateStatus, CredentialRecord, DeletedThing, ExecutionStatus, JobStatus,
    MAX_POLICY_VERSIONS, StoreError, TargetSelection, TemplateRecord, ThingRecord,
    UnknownCertificateStatus, UnknownJobValue,
};

use crate::clock::Clock;
use crate::pki::Pki;
use crate::policy::ArnScope;
use crate::registry_watch::notify_running_emulator;
use crate::store::Store;

/// Called after every change to the registry.
type OnChange = Arc<dyn Fn() + Send + Sync>;

/// The emulator's control plane: AWS-named operations on its registry.
///
/// Cheap to clone; clones share the store and the PKI.
#[derive(Clone)]
pub struct Control {
    pub(crate) store: Store,
    pki: Arc<Pki>,
    scope: ArnScope,
    data_endpoint: String,
    on_change: Option<OnChange>,
    /// Serializes the read-check-write steps of job operations.
    jobs_lock: Arc<Mutex<()>>,
    /// What job timestamps and timers read.
    clock: Clock,
}

impl fmt::Debug for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Control")
            .field("store", &self.store)
            .field("scope", &self.scope)
            .field("data_endpoint", &self.data_endpoint)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl Control {
    /// The control plane of the data directory `data_dir` while no emulator
    /// runs on it (what the CLI uses): opens the registry and loads (or, on
    /// first use, creates) the emulator's CA. Resources are named in `scope`.
    ///
    /// An emulator running on the same data directory is told of every
    /// change at once (through a socket in the data directory), so that its
    /// live connections apply it.
    pub fn open(data_dir: &Path, scope: ArnScope) -> Result<Control, ControlError> {
        let store = Store::open(data_dir)?;
        let pki = Pki::load_or_create(data_dir)?;
        let data_dir = data_dir.to_path_buf();
        Ok(Control::new(
            store,
            Arc::new(pki),
            scope,
            "localhost".to_owned(),
            Some(Arc::new(move || notify_running_emulator(&data_dir))),
        ))
    }

    /// A control plane over `store` and `pki`; `on_change` runs after every
    /// change (the running emulator passes one that tells its connections).
    pub(crate) fn new(
        store: Store,
        pki: Arc<Pki>,
        scope: ArnScope,
        data_endpoint: String,
        on_change: Option<OnChange>,
    ) -> Control {
        Control {
            store,
            pki,
            scope,
            data_endpoint,
            on_change,
            jobs_lock: Arc::new(Mutex::new(())),
            clock: Clock::system(),
        }
    }

    /// This control plane reading `clock` for job timestamps and timers
    /// (the system's by default).
    pub fn with_clock(mut self, clock: Clock) -> Control {
        self.clock = clock;
        self
    }

    /// The clock job timestamps and timers read.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The current time in unix seconds, on [`Control::clock`].
    pub(crate) fn now(&self) -> i64 {
        self.clock.unix_now()
    }

    /// The region and account resources are named in.
    pub fn arn_scope(&self) -> &ArnScope {
        &self.scope
    }

    /// The emulator's PKI (its CA signs device certificates).
    pub fn pki(&self) -> &Pki {
        &self.pki
    }

    /// Holds off other job changes of this process until dropped. A panic
    /// while it was held cannot leave a half-done change (each store write
    /// is one transaction), so a poisoned lock is used as is.
    pub(crate) fn lock_jobs(&self) -> MutexGuard<'_, ()> {
        self.jobs_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells live connections that the registry changed.
    pub(crate) fn changed(&self) {
        if let Some(on_change) = &self.on_change {
            on_change();
        }
    }

    /// `arn:aws:iot:<region>:<account>:<kind>/<name>`.
    pub(crate) fn arn(&self, kind: &str, name: &str) -> String {
        format!("{}{kind}/{name}", self.scope.prefix())
    }
}

/// Serde helpers for AWS's JSON: numbers and booleans that arrive as strings
/// (from a query string or a header) as well as JSON values.
pub(crate) mod lenient {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumberOrString {
        Number(i64),
        String(String),
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum BoolOrString {
        Bool(bool),
        String(String),
    }

    /// An optional integer given as a JSON number or a decimal string.
    pub(crate) fn int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        match Option::<NumberOrString>::deserialize(d)? {
            None => Ok(None),
            Some(NumberOrString::Number(n)) => Ok(Some(n)),
            Some(NumberOrString::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| serde::de::Error::custom(format!("{s:?} is not an integer"))),
        }
    }

    /// An optional boolean given as a JSON boolean or `"true"`/`"false"`.
    pub(crate) fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        match Option::<BoolOrString>::deserialize(d)? {
            None => Ok(None),
            Some(BoolOrString::Bool(b)) => Ok(Some(b)),
            Some(BoolOrString::String(s)) => match s.to_ascii_lowercase().as_str() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => Err(serde::de::Error::custom(format!("{s:?} is not a boolean"))),
            },
        }
    }
}
