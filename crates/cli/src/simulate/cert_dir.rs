//! The fleet's identities read from a directory (`--certs DIR`) instead of
//! made in the registry.
//!
//! `DIR` holds one subdirectory per device, named after its thing (also its
//! MQTT client id), with the files `iotcore thing create NAME --out DIR/NAME`
//! writes ([`DeviceFiles::in_dir`]): `NAME.cert.pem`, `NAME.private.key` and
//! `root-ca.pem`. `iotcore provision --out DIR/NAME` writes the first two
//! only; such a device trusts the emulator's CA in the data directory
//! ([`Pki::ca_cert_path`]). Every file is checked as the SDK checks it when a
//! device loads it, so a wrong one fails here, named, before any connection.

use std::collections::HashSet;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use iotcore::{Client, ConfigError};
use iotcore_emulator::pki::Pki;
use iotcore_emulator::things::DeviceFiles;
use iotcore_model::names::{NameError, validate_thing_name};

use super::identities::Identity;

/// Why the devices could not be read from the directory.
#[derive(Debug, thiserror::Error)]
pub enum CertDirError {
    /// The directory could not be listed.
    #[error(
        "cannot list the device directories in {}: {source}; --certs takes a directory with one \
         subdirectory per device",
        dir.display()
    )]
    List {
        /// The directory.
        dir: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Fewer device directories than devices asked for.
    #[error(
        "{} holds {found} device directories, but --devices asks for {asked}: lower --devices or \
         add devices (`iotcore thing create NAME --out {}/NAME`)",
        dir.display(),
        dir.display()
    )]
    TooFew {
        /// The directory.
        dir: PathBuf,
        /// Subdirectories found.
        found: usize,
        /// Devices asked for.
        asked: usize,
    },
    /// A device directory's name cannot be a thing name (nor a client id).
    #[error("device directory {}: {source}", path.display())]
    Name {
        /// The device directory.
        path: PathBuf,
        /// Which rule the name breaks.
        #[source]
        source: NameError,
    },
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A certificate, key or CA file is missing, unreadable or unusable.
    #[error("device {thing}: {source}")]
    Invalid {
        /// The device.
        thing: String,
        /// What is wrong, naming the file.
        #[source]
        source: ConfigError,
    },
    /// A device directory has no root CA and the data directory no emulator CA.
    #[error(
        "device {thing} has no root CA: neither {} nor the emulator's CA {} exists; put the CA \
         that signed the server's certificate in the device directory, or pass the emulator's \
         --data-dir",
        device_ca.display(),
        emulator_ca.display()
    )]
    NoRootCa {
        /// The device.
        thing: String,
        /// The root CA file looked for in the device directory.
        device_ca: PathBuf,
        /// The emulator's CA file looked for in the data directory.
        emulator_ca: PathBuf,
    },
}

/// Reads devices `range` of the fleet of the first `devices` devices, in name
/// order, in `dir` (a shard reads its slice, an unsharded run `0..devices`);
/// devices without a root CA of their own trust the emulator's CA in
/// `data_dir`.
pub fn read(
    dir: &Path,
    range: Range<usize>,
    devices: usize,
    data_dir: &Path,
) -> Result<Vec<Identity>, CertDirError> {
    let names = device_names(dir)?;
    if names.len() < devices {
        return Err(CertDirError::TooFew {
            dir: dir.to_path_buf(),
            found: names.len(),
            asked: devices,
        });
    }
    let mut root_cas = RootCas::new(Pki::ca_cert_path(data_dir));
    names
        .into_iter()
        .take(range.end)
        .skip(range.start)
        .map(|thing| read_device(&dir.join(&thing), thing, &mut root_cas))
        .collect()
}

/// The names of `dir`'s subdirectories, sorted; hidden ones (`.name`) skipped.
fn device_names(dir: &Path) -> Result<Vec<String>, CertDirError> {
    let list_error = |source| CertDirError::List {
        dir: dir.to_path_buf(),
        source,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(list_error)? {
        let entry = entry.map_err(list_error)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && entry.path().is_dir() {
            names.push(name);
        }
    }
    names.sort_unstable();
    Ok(names)
}

fn read_device(
    device_dir: &Path,
    thing: String,
    root_cas: &mut RootCas,
) -> Result<Identity, CertDirError> {
    validate_thing_name(&thing).map_err(|source| CertDirError::Name {
        path: device_dir.to_path_buf(),
        source,
    })?;
    let files = DeviceFiles::in_dir(device_dir, &thing);
    // The SDK's loader names the file that is missing or wrong, and checks that
    // the key belongs to the certificate.
    Client::builder(thing.as_str())
        .client_cert_pem_files(&files.certificate, &files.private_key)
        .map_err(|source| CertDirError::Invalid {
            thing: thing.clone(),
            source,
        })?;
    let root_ca_pem = root_cas.for_device(&thing, &files)?;
    Ok(Identity {
        certificate_pem: read_text(&files.certificate)?,
        private_key_pem: read_text(&files.private_key)?,
        root_ca_pem,
        thing,
    })
}

/// The root CAs read so far, one copy of each.
struct RootCas {
    /// The emulator's CA file in the data directory.
    emulator_ca: PathBuf,
    known: HashSet<Arc<str>>,
}

impl RootCas {
    fn new(emulator_ca: PathBuf) -> Self {
        Self {
            emulator_ca,
            known: HashSet::new(),
        }
    }

    /// The device directory's root CA, else the emulator's.
    fn for_device(&mut self, thing: &str, files: &DeviceFiles) -> Result<Arc<str>, CertDirError> {
        if files.root_ca.is_file() {
            return self.load(thing, &files.root_ca);
        }
        if !self.emulator_ca.is_file() {
            return Err(CertDirError::NoRootCa {
                thing: thing.to_owned(),
                device_ca: files.root_ca.clone(),
                emulator_ca: self.emulator_ca.clone(),
            });
        }
        self.load(thing, &self.emulator_ca.clone())
    }

    fn load(&mut self, thing: &str, path: &Path) -> Result<Arc<str>, CertDirError> {
        let text = read_text(path)?;
        if let Some(known) = self.known.get(text.as_str()) {
            return Ok(known.clone());
        }
        Client::builder(thing)
            .root_ca_pem_file(path)
            .map_err(|source| CertDirError::Invalid {
                thing: thing.to_owned(),
                source,
            })?;
        let ca: Arc<str> = Arc::from(text);
        self.known.insert(ca.clone());
        Ok(ca)
    }
}

fn read_text(path: &Path) -> Result<String, CertDirError> {
    std::fs::read_to_string(path).map_err(|source| CertDirError::Read {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use iotcore_emulator::pki::KeyAlgorithm;
    use iotcore_emulator::things::{ROOT_CA_FILE, write_device_files};

    use super::*;

    /// A data directory with the emulator's CA, and a device directory
    /// holding `things` as `iotcore thing create` writes them.
    struct Fixture {
        data: tempfile::TempDir,
        devices: tempfile::TempDir,
        pki: Pki,
    }

    impl Fixture {
        fn new(things: &[&str]) -> Fixture {
            let data = tempfile::tempdir().unwrap();
            let pki = Pki::load_or_create(data.path()).unwrap();
            let fixture = Fixture {
                data,
                devices: tempfile::tempdir().unwrap(),
                pki,
            };
            for thing in things {
                fixture.add(thing);
            }
            fixture
        }

        fn add(&self, thing: &str) -> DeviceFiles {
            let credentials = self
                .pki
                .issue_device_certificate(thing, KeyAlgorithm::EcdsaP256)
                .unwrap();
            let dir = self.devices.path().join(thing);
            write_device_files(thing, &credentials, self.pki.ca_pem(), &dir).unwrap()
        }

        fn read(&self, count: usize) -> Result<Vec<Identity>, CertDirError> {
            read(self.devices.path(), 0..count, count, self.data.path())
        }
    }

    fn things(identities: &[Identity]) -> Vec<&str> {
        identities.iter().map(|i| i.thing.as_str()).collect()
    }

    #[test]
    fn the_first_devices_in_name_order_are_read_with_their_files() {
        let fixture = Fixture::new(&["dev-c", "dev-a", "dev-d", "dev-b"]);
        std::fs::write(fixture.devices.path().join("README"), "not a device").unwrap();
        std::fs::create_dir(fixture.devices.path().join(".cache")).unwrap();
        let identities = fixture.read(3).unwrap();
        assert_eq!(things(&identities), ["dev-a", "dev-b", "dev-c"]);
        let files = DeviceFiles::in_dir(&fixture.devices.path().join("dev-b"), "dev-b");
        assert_eq!(
            identities[1].certificate_pem,
            std::fs::read_to_string(files.certificate).unwrap()
        );
        assert_eq!(
            identities[1].private_key_pem,
            std::fs::read_to_string(files.private_key).unwrap()
        );
        assert_eq!(&*identities[1].root_ca_pem, fixture.pki.ca_pem());
        // One copy of the CA for all.
        assert!(Arc::ptr_eq(
            &identities[0].root_ca_pem,
            &identities[2].root_ca_pem
        ));
    }

    #[test]
    fn a_shard_reads_its_slice_of_the_fleet_only() {
        let fixture = Fixture::new(&["dev-c", "dev-a", "dev-e", "dev-d", "dev-b"]);
        // The fleet is the first four; the second of two shards reads 2..4.
        let second = read(fixture.devices.path(), 2..4, 4, fixture.data.path()).unwrap();
        assert_eq!(things(&second), ["dev-c", "dev-d"]);
        let error = read(fixture.devices.path(), 4..6, 6, fixture.data.path())
            .err()
            .unwrap();
        assert!(matches!(
            error,
            CertDirError::TooFew {
                found: 5,
                asked: 6,
                ..
            }
        ));
    }

    #[test]
    fn fewer_devices_than_asked_is_an_error_with_both_counts() {
        let fixture = Fixture::new(&["dev-1", "dev-2"]);
        let error = fixture.read(3).err().unwrap();
        assert!(
            matches!(
                error,
                CertDirError::TooFew {
                    found: 2,
                    asked: 3,
                    ..
                }
            ),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(
            message.contains(&fixture.devices.path().display().to_string())
                && message.contains("holds 2 device directories")
                && message.contains("asks for 3"),
            "{message}"
        );
        let missing = fixture.devices.path().join("nowhere");
        let error = read(&missing, 0..1, 1, fixture.data.path()).err().unwrap();
        assert!(matches!(error, CertDirError::List { .. }), "{error:?}");
        assert!(error.to_string().contains("nowhere"), "{error}");
    }

    #[test]
    fn a_missing_or_invalid_file_is_named() {
        let fixture = Fixture::new(&["dev-1"]);
        let files = fixture.add("dev-2");

        std::fs::remove_file(&files.private_key).unwrap();
        let error = fixture.read(2).err().unwrap();
        assert!(matches!(error, CertDirError::Invalid { .. }), "{error:?}");
        assert!(
            error
                .to_string()
                .contains(&files.private_key.display().to_string()),
            "{error}"
        );

        std::fs::write(&files.private_key, "not a key").unwrap();
        let error = fixture.read(2).err().unwrap();
        assert!(
            error
                .to_string()
                .contains(&files.private_key.display().to_string()),
            "{error}"
        );

        // A key that is not the certificate's.
        let other = fixture.add("dev-3");
        std::fs::copy(&other.private_key, &files.private_key).unwrap();
        let error = fixture.read(2).err().unwrap();
        assert!(error.to_string().contains("does not belong"), "{error}");

        std::fs::write(&files.certificate, "-----BEGIN CERTIFICATE-----\nAA\n").unwrap();
        let error = fixture.read(2).err().unwrap();
        assert!(
            error
                .to_string()
                .contains(&files.certificate.display().to_string()),
            "{error}"
        );
        // The devices before it were fine.
        assert_eq!(things(&fixture.read(1).unwrap()), ["dev-1"]);
    }

    #[test]
    fn a_bad_root_ca_is_named_and_a_missing_one_falls_back_to_the_emulators() {
        let fixture = Fixture::new(&["dev-1"]);
        let files = fixture.add("dev-2");
        std::fs::write(&files.root_ca, "no certificate here").unwrap();
        let error = fixture.read(2).err().unwrap();
        assert!(
            error
                .to_string()
                .contains(&files.root_ca.display().to_string()),
            "{error}"
        );

        // As `iotcore provision` writes it: no root-ca.pem.
        std::fs::remove_file(&files.root_ca).unwrap();
        let identities = fixture.read(2).unwrap();
        assert_eq!(&*identities[1].root_ca_pem, fixture.pki.ca_pem());

        std::fs::remove_file(Pki::ca_cert_path(fixture.data.path())).unwrap();
        let error = fixture.read(2).err().unwrap();
        assert!(matches!(error, CertDirError::NoRootCa { .. }), "{error:?}");
        let message = error.to_string();
        assert!(
            message.contains(ROOT_CA_FILE) && message.contains("pki"),
            "{message}"
        );
    }

    #[test]
    fn a_directory_name_that_is_no_thing_name_is_refused() {
        let fixture = Fixture::new(&["dev-1"]);
        std::fs::create_dir(fixture.devices.path().join("bad name")).unwrap();
        let error = fixture.read(2).err().unwrap();
        assert!(matches!(error, CertDirError::Name { .. }), "{error:?}");
        assert!(error.to_string().contains("bad name"), "{error}");
    }
}
