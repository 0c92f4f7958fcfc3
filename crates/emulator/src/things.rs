//! A device's files: [`write_device_files`] puts the certificate, the private key
//! and the root CA that
//! [`Control::create_thing_with_certificate`](crate::control::Control::create_thing_with_certificate)
//! made where a device (or a test) reads them, as `iotcore thing create --out DIR`
//! does.

use std::io;
use std::path::{Path, PathBuf};

use crate::fsutil::{MODE_PRIVATE, MODE_PUBLIC, write_atomic};
use crate::pki::DeviceCredentials;
use crate::store::{StoreError, validate_thing_name};

/// File name of the root CA written by [`write_device_files`].
pub const ROOT_CA_FILE: &str = "root-ca.pem";

/// Why writing a device's files failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceFilesError {
    /// The name is not a valid thing name (and so not a safe file name).
    #[error(transparent)]
    Name(#[from] StoreError),
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

/// Writes `<name>.cert.pem`, `<name>.private.key` and [`ROOT_CA_FILE`] into `out_dir`
/// (created if needed), each atomically, the key readable by its owner only.
///
/// `name` must be a valid thing name, which also makes it a safe file name.
pub fn write_device_files(
    name: &str,
    credentials: &DeviceCredentials,
    ca_pem: &str,
    out_dir: &Path,
) -> Result<DeviceFiles, DeviceFilesError> {
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
            DeviceFilesError::WriteFile {
                path: path.clone(),
                source,
            }
        })?;
    }
    Ok(files)
}
