//! What the suite needs of a broker we did not write (Mosquitto, rumqttd), running in
//! its own process on the emulator's certificates.

use std::path::Path;

use iotcore_test_support::BrokerTls;

use super::mosquitto::MosquittoBroker;
use super::rumqttd::RumqttdBroker;

/// A running broker peer.
pub trait BrokerPeer: Send + Sync {
    /// Its name and version, e.g. `Mosquitto 2.0.11`, `rumqttd 0.20.0`.
    fn name(&self) -> &str;
    /// Its TLS port on 127.0.0.1.
    fn port(&self) -> u16;
    /// Its process id (to read its memory and CPU in `/proc`).
    fn pid(&self) -> u32;
}

/// The broker peers, in the order the suite shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerKind {
    /// Mosquitto (Debian package): single-threaded, written in C.
    Mosquitto,
    /// rumqttd (crates.io): multi-threaded, written in Rust.
    Rumqttd,
}

impl PeerKind {
    /// Every broker peer.
    pub const ALL: [PeerKind; 2] = [PeerKind::Mosquitto, PeerKind::Rumqttd];

    /// Its name without a version: what a [`Target::Times`](crate::report::Target)
    /// names, and its name when it could not run.
    pub fn label(self) -> &'static str {
        match self {
            PeerKind::Mosquitto => "Mosquitto",
            PeerKind::Rumqttd => "rumqttd",
        }
    }

    /// Starts it with `tls`, Mosquitto with `mosquitto_lines` added to its
    /// configuration (rumqttd's settings are its harness's own); or why it cannot
    /// run (not installed).
    pub fn start(
        self,
        tls: BrokerTls,
        mosquitto_lines: &[&str],
    ) -> Result<Box<dyn BrokerPeer>, String> {
        match self {
            PeerKind::Mosquitto => MosquittoBroker::start_with(tls, mosquitto_lines)
                .map(|b| Box::new(b) as Box<dyn BrokerPeer>),
            PeerKind::Rumqttd => {
                RumqttdBroker::start(&tls).map(|b| Box::new(b) as Box<dyn BrokerPeer>)
            }
        }
        .map_err(|why| why.to_string())
    }
}

/// The version `program arg` prints on the first line starting with `prefix`
/// (e.g. `mosquitto -h`: `mosquitto version 2.0.11`), if any.
pub fn version_of(program: &Path, arg: &str, prefix: &str) -> Option<String> {
    let output = std::process::Command::new(program).arg(arg).output().ok()?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(prefix).map(|v| v.trim().to_owned()))
}
