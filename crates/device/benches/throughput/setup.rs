//! The broker every client publishes to: one in-process emulator on 127.0.0.1,
//! with a registered thing (certificate and key files) per client.

use std::path::PathBuf;

use iotcore_emulator::pki::KeyAlgorithm;
use iotcore_emulator::things::{create_thing_with_certificate, write_device_files};
use iotcore_emulator::{Emulator, EmulatorConfig};
use tempfile::TempDir;

use crate::BoxError;

/// A client's credentials on disk; the thing name is also its client id.
#[derive(Clone, Debug)]
pub struct Identity {
    /// Thing name and MQTT client id.
    pub thing: String,
    /// Client certificate (PEM).
    pub cert: PathBuf,
    /// Private key (PEM, PKCS#8).
    pub key: PathBuf,
    /// The emulator's root CA (PEM).
    pub ca: PathBuf,
}

impl Identity {
    /// The topic this client publishes to (nobody subscribes to it).
    pub fn topic(&self) -> String {
        format!("dt/{}/bench", self.thing)
    }
}

/// A running emulator and the directory holding its data and the clients' files.
pub struct Broker {
    emulator: Emulator,
    dir: TempDir,
}

impl Broker {
    /// Starts an emulator on a free loopback port.
    pub async fn start() -> Result<Broker, BoxError> {
        let dir = tempfile::tempdir()?;
        let config = EmulatorConfig::new(dir.path().join("data")).with_bind("127.0.0.1:0".parse()?);
        let emulator = Emulator::start(config).await?;
        Ok(Broker { emulator, dir })
    }

    /// The emulator's TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.emulator.local_addr().port()
    }

    /// Registers thing `name` with a new ECDSA P-256 certificate and writes its files.
    pub fn identity(&self, name: &str) -> Result<Identity, BoxError> {
        let credentials = create_thing_with_certificate(
            self.emulator.store(),
            self.emulator.pki(),
            name,
            KeyAlgorithm::EcdsaP256,
        )?;
        let files = write_device_files(
            name,
            &credentials,
            self.emulator.ca_pem(),
            &self.dir.path().join("things"),
        )?;
        Ok(Identity {
            thing: name.to_owned(),
            cert: files.certificate,
            key: files.private_key,
            ca: files.root_ca,
        })
    }

    /// Stops the emulator and removes its files.
    pub async fn shutdown(self) {
        self.emulator.shutdown().await;
    }
}
