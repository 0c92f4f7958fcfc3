//! Registry operations that span the store and the PKI: what `iotcore thing create`
//! does.
//!
//! [`create_thing_with_certificate`] is AWS's console flow "create a thing with a new
//! certificate" in one call: the thing, an `ACTIVE` certificate with a fresh key, and
//! the attachment between them. [`write_device_files`] then puts the certificate, the
//! private key and the root CA where a device (or a test) reads them.

use std::io;
use std::path::{Path, PathBuf};

use crate::fsutil::{MODE_PRIVATE, MODE_PUBLIC, write_atomic};
use crate::pki::{DeviceCredentials, KeyAlgorithm, Pki, PkiError};
use crate::store::{Store, StoreError, validate_thing_name};

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

/// Creates thing `name`, issues it a certificate with a new `alg` key (subject CN =
/// `name`), registers the certificate `ACTIVE` and attaches it to the thing.
///
/// Nothing is registered if any step fails; in particular an invalid or existing name
/// fails before a key is generated.
pub fn create_thing_with_certificate(
    store: &Store,
    pki: &Pki,
    name: &str,
    alg: KeyAlgorithm,
) -> Result<DeviceCredentials, ThingSetupError> {
    validate_thing_name(name)?;
    if store.thing(name)?.is_some() {
        return Err(StoreError::ThingExists(name.to_owned()).into());
    }
    let credentials = pki.issue_device_certificate(name, alg)?;
    store.create_thing_with_certificate(
        name,
        &credentials.certificate_id,
        &credentials.certificate_pem,
    )?;
    tracing::info!(thing = name, certificate_id = %credentials.certificate_id, "created thing");
    Ok(credentials)
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
    let files = DeviceFiles {
        certificate: out_dir.join(format!("{name}.cert.pem")),
        private_key: out_dir.join(format!("{name}.private.key")),
        root_ca: out_dir.join(ROOT_CA_FILE),
    };
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
