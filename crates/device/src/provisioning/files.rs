//! The provisioned credentials on disk.
//!
//! ```text
//! <dir>/<thing>.cert.pem      the certificate                    (0644)
//! <dir>/<thing>.private.key   the private key                    (0600)
//! <dir>/provisioned.json      thing name, certificate id, device
//!                             configuration, the two file names  (0644)
//! ```
//!
//! Each file is written atomically (a temporary file in the same directory,
//! created with its final mode, flushed to disk, renamed over the target, the
//! directory flushed), and `provisioned.json` last: when it exists, the key
//! and certificate it names are complete. A device that finds it at boot is
//! provisioned ([`super::Provisioned::load`]); one that does not provisions.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::ProvisioningError;

/// The name of the record written last.
pub const RECORD_FILE: &str = "provisioned.json";

const MODE_PRIVATE: u32 = 0o600;
const MODE_PUBLIC: u32 = 0o644;

/// Where [`super::Provisioned`]'s credentials were written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialFiles {
    /// `<thing>.cert.pem`.
    pub certificate: PathBuf,
    /// `<thing>.private.key`, readable by its owner only.
    pub private_key: PathBuf,
    /// `provisioned.json`.
    pub record: PathBuf,
}

/// `provisioned.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Record {
    pub(crate) thing_name: String,
    pub(crate) certificate_id: String,
    pub(crate) certificate_file: String,
    pub(crate) private_key_file: String,
    #[serde(default)]
    pub(crate) device_configuration: BTreeMap<String, String>,
}

/// Writes the key, the certificate, then the record, into `dir` (created if needed).
pub(crate) fn save(
    dir: &Path,
    record: &Record,
    certificate_pem: &str,
    private_key_pem: &str,
) -> Result<CredentialFiles, ProvisioningError> {
    let files = CredentialFiles {
        certificate: dir.join(&record.certificate_file),
        private_key: dir.join(&record.private_key_file),
        record: dir.join(RECORD_FILE),
    };
    let json = serde_json::to_vec_pretty(record).map_err(|e| ProvisioningError::Persist {
        path: files.record.clone(),
        source: io::Error::other(e),
    })?;
    for (path, bytes, mode) in [
        (&files.private_key, private_key_pem.as_bytes(), MODE_PRIVATE),
        (&files.certificate, certificate_pem.as_bytes(), MODE_PUBLIC),
        (&files.record, json.as_slice(), MODE_PUBLIC),
    ] {
        write_atomic(path, bytes, mode).map_err(|source| ProvisioningError::Persist {
            path: path.clone(),
            source,
        })?;
    }
    Ok(files)
}

/// Reads what [`save`] wrote; `None` when `dir` holds no record.
pub(crate) fn load(
    dir: &Path,
) -> Result<Option<(Record, String, String, CredentialFiles)>, ProvisioningError> {
    let record_path = dir.join(RECORD_FILE);
    let text = match fs::read(&record_path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ProvisioningError::Load {
                path: record_path,
                detail: e.to_string(),
            });
        }
    };
    let record: Record = serde_json::from_slice(&text).map_err(|e| ProvisioningError::Load {
        path: record_path.clone(),
        detail: format!("not a provisioning record: {e}"),
    })?;
    let files = CredentialFiles {
        certificate: dir.join(&record.certificate_file),
        private_key: dir.join(&record.private_key_file),
        record: record_path,
    };
    let read = |path: &PathBuf| {
        fs::read_to_string(path).map_err(|e| ProvisioningError::Load {
            path: path.clone(),
            detail: e.to_string(),
        })
    };
    let certificate = read(&files.certificate)?;
    let key = read(&files.private_key)?;
    Ok(Some((record, certificate, key, files)))
}

/// Writes `bytes` to `path` atomically, the file created with `mode` (Unix).
fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    fs::create_dir_all(&dir)?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp.{:016x}", rand::random::<u64>()));
    let tmp = dir.join(tmp_name);
    let written = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        #[cfg(not(unix))]
        let _ = mode;
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        // The rename is durable once the directory is flushed (where that is possible).
        if let Ok(dir) = File::open(&dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            thing_name: "dev-1".into(),
            certificate_id: "c".repeat(64),
            certificate_file: "dev-1.cert.pem".into(),
            private_key_file: "dev-1.private.key".into(),
            device_configuration: [("k".to_owned(), "v".to_owned())].into(),
        }
    }

    #[test]
    fn saved_credentials_load_back_and_the_key_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("nested/creds");
        assert!(load(&target).unwrap().is_none());
        let files = save(&target, &record(), "CERT", "KEY").unwrap();
        let (loaded, certificate, key, again) = load(&target).unwrap().unwrap();
        assert_eq!(
            (loaded, certificate.as_str(), key.as_str()),
            (record(), "CERT", "KEY")
        );
        assert_eq!(again, files);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&files.private_key)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Saving again replaces the files; no temporary file is left behind.
        save(&target, &record(), "CERT2", "KEY2").unwrap();
        let names: Vec<_> = fs::read_dir(&target)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
    }

    #[test]
    fn a_damaged_record_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(RECORD_FILE), "{").unwrap();
        let err = load(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("not a provisioning record"),
            "{err}"
        );
        let record = serde_json::to_vec(&record()).unwrap();
        fs::write(dir.path().join(RECORD_FILE), record).unwrap();
        let err = load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("dev-1.cert.pem"), "{err}");
    }
}
