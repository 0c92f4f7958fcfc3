//! Registry operations that span the store and the PKI: what `iotcore thing create`
//! and `iotcore thing delete` do.
//!
//! [`create_thing`] is AWS's console flow "create a thing with a new certificate" in
//! one call: the thing, an `ACTIVE` certificate with a fresh key, the attachment
//! between them, and a policy for the certificate: by default the thing's own policy
//! `<thing>-policy` from [`PolicyTemplate::Thing`], which confines the device to its
//! own topics (see [`crate::policy`]). [`create_thing_with_certificate`] is the same
//! with every default. [`write_device_files`] then puts the certificate, the private
//! key and the root CA where a device (or a test) reads them. [`delete_thing`] undoes
//! [`create_thing`].

use std::io;
use std::path::{Path, PathBuf};

use crate::fsutil::{MODE_PRIVATE, MODE_PUBLIC, write_atomic};
use crate::pki::{DeviceCredentials, KeyAlgorithm, Pki, PkiError};
use crate::policy::{ArnScope, PolicyTemplate};
use crate::store::{DeletedThing, Store, StoreError, validate_thing_name};

/// File name of the root CA written by [`write_device_files`].
pub const ROOT_CA_FILE: &str = "root-ca.pem";

/// Why creating a thing with a certificate, or writing its files, failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ThingSetupError {
    /// The registry refused (invalid or taken name) or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The certificate could not be issued.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// A device file could not be written.
    #[error(
        "cannot write {}: {source}; choose another output directory or fix its permissions",
        path.display()
    )]
    WriteFile {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
}

/// Where [`write_device_files`] put a device's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFiles {
    /// `<name>.cert.pem`: the device certificate (mode 0644).
    pub certificate: PathBuf,
    /// `<name>.private.key`: the device's private key (mode 0600).
    pub private_key: PathBuf,
    /// `root-ca.pem`: the emulator's root CA, to verify the server (mode 0644).
    pub root_ca: PathBuf,
}

impl DeviceFiles {
    /// The files of device `name` in `dir`: where [`write_device_files`] writes
    /// them, and where a device (or `iotcore simulate --certs`) reads them.
    pub fn in_dir(dir: &Path, name: &str) -> DeviceFiles {
        DeviceFiles {
            certificate: dir.join(format!("{name}.cert.pem")),
            private_key: dir.join(format!("{name}.private.key")),
            root_ca: dir.join(ROOT_CA_FILE),
        }
    }
}

/// Which policy a new thing's certificate gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThingPolicy {
    /// Create the thing's own policy ([`thing_policy_name`]) from this template
    /// and attach it.
    Template(PolicyTemplate),
    /// Attach this existing policy.
    Existing(String),
    /// Attach none: as on AWS, the device cannot connect until a policy allows it.
    None,
}

impl Default for ThingPolicy {
    /// [`PolicyTemplate::Thing`].
    fn default() -> Self {
        ThingPolicy::Template(PolicyTemplate::Thing)
    }
}

/// How [`create_thing`] sets a thing up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ThingOptions {
    /// The key type of the new certificate.
    pub key: KeyAlgorithm,
    /// The policy attached to the certificate.
    pub policy: ThingPolicy,
    /// The region and account the template's ARNs name (the emulator's).
    pub scope: ArnScope,
}

impl ThingOptions {
    /// Sets [`ThingOptions::key`].
    pub fn with_key(mut self, key: KeyAlgorithm) -> Self {
        self.key = key;
        self
    }

    /// Sets [`ThingOptions::policy`].
    pub fn with_policy(mut self, policy: ThingPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets [`ThingOptions::scope`].
    pub fn with_scope(mut self, scope: ArnScope) -> Self {
        self.scope = scope;
        self
    }
}

/// The policy [`create_thing`] attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThingPolicyAttached {
    /// Its name.
    pub name: String,
    /// The document, when [`create_thing`] created the policy.
    pub created_document: Option<String>,
}

/// What [`create_thing`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedThing {
    /// The certificate and its private key.
    pub credentials: DeviceCredentials,
    /// The policy attached to the certificate, if any.
    pub policy: Option<ThingPolicyAttached>,
}

/// The name of thing `thing`'s own policy: `<thing>-policy`, with each `:` (allowed in
/// thing names, not in policy names) written `.`.
pub fn thing_policy_name(thing: &str) -> String {
    format!("{}-policy", thing.replace(':', "."))
}

/// Creates thing `name`, issues it a certificate with a new key (subject CN =
/// `name`), registers the certificate `ACTIVE`, attaches it to the thing, and
/// attaches the policy `options` asks for (by default a new `<name>-policy` from
/// [`PolicyTemplate::Thing`]).
///
/// Nothing is registered if any step fails; in particular an invalid or existing name,
/// or an existing `<name>-policy`, fails before a key is generated.
pub fn create_thing(
    store: &Store,
    pki: &Pki,
    name: &str,
    options: &ThingOptions,
) -> Result<CreatedThing, ThingSetupError> {
    validate_thing_name(name)?;
    if store.thing(name)?.is_some() {
        return Err(StoreError::ThingExists(name.to_owned()).into());
    }
    let policy = match &options.policy {
        ThingPolicy::Template(template) => {
            let policy = thing_policy_name(name);
            if store.policy(&policy)?.is_some() {
                return Err(StoreError::PolicyExists(policy).into());
            }
            Some((policy, Some(template.render(&options.scope))))
        }
        ThingPolicy::Existing(policy) => {
            if store.policy(policy)?.is_none() {
                return Err(StoreError::PolicyNotFound(policy.clone()).into());
            }
            Some((policy.clone(), None))
        }
        ThingPolicy::None => None,
    };
    let credentials = pki.issue_device_certificate(name, options.key)?;
    let (id, pem) = (&credentials.certificate_id, &credentials.certificate_pem);
    match &policy {
        Some((policy, document)) => store.create_thing_with_certificate_and_policy(
            name,
            id,
            pem,
            policy,
            document.as_deref(),
        )?,
        None => store.create_thing_with_certificate(name, id, pem)?,
    };
    tracing::info!(
        thing = name,
        certificate_id = %credentials.certificate_id,
        policy = policy.as_ref().map_or("none", |(p, _)| p.as_str()),
        "created thing"
    );
    Ok(CreatedThing {
        credentials,
        policy: policy.map(|(name, created_document)| ThingPolicyAttached {
            name,
            created_document,
        }),
    })
}

/// [`create_thing`] with the default options but key type `alg`: the certificate
/// gets the thing's own policy from [`PolicyTemplate::Thing`].
pub fn create_thing_with_certificate(
    store: &Store,
    pki: &Pki,
    name: &str,
    alg: KeyAlgorithm,
) -> Result<DeviceCredentials, ThingSetupError> {
    let options = ThingOptions::default().with_key(alg);
    Ok(create_thing(store, pki, name, &options)?.credentials)
}

/// Deletes thing `name` and what [`create_thing`] made for it: its certificates
/// that no other thing uses (devices using them are disconnected) and its own
/// policy ([`thing_policy_name`]) unless another certificate uses it.
pub fn delete_thing(store: &Store, name: &str) -> Result<DeletedThing, ThingSetupError> {
    let deleted = store.delete_thing_with_credentials(name, &thing_policy_name(name))?;
    tracing::info!(thing = name, ?deleted, "deleted thing");
    Ok(deleted)
}

/// Writes `<name>.cert.pem`, `<name>.private.key` and [`ROOT_CA_FILE`] into `out_dir`
/// (created if needed), each atomically, the key readable by its owner only.
///
/// `name` must be a valid thing name, which also makes it a safe file name.
pub fn write_device_files(
    name: &str,
    credentials: &DeviceCredentials,
    ca_pem: &str,
    out_dir: &Path,
) -> Result<DeviceFiles, ThingSetupError> {
    validate_thing_name(name)?;
    let files = DeviceFiles::in_dir(out_dir, name);
    for (path, content, mode) in [
        (
            &files.private_key,
            credentials.private_key_pem.as_str(),
            MODE_PRIVATE,
        ),
        (
            &files.certificate,
            credentials.certificate_pem.as_str(),
            MODE_PUBLIC,
        ),
        (&files.root_ca, ca_pem, MODE_PUBLIC),
    ] {
        write_atomic(path, content.as_bytes(), mode).map_err(|source| {
            ThingSetupError::WriteFile {
                path: path.clone(),
                source,
            }
        })?;
    }
    Ok(files)
}
