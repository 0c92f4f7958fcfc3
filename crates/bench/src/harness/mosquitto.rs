//! Mosquitto, the broker the emulator is compared with, on the emulator's certificates.

use iotcore_test_support::{BrokerTls, Mosquitto};

use super::broker_peer::{BrokerPeer, version_of};
use crate::error::{BenchResult, Context};

/// A running Mosquitto with mutual TLS, and its version.
pub struct MosquittoBroker {
    broker: Mosquitto,
    /// `Mosquitto 2.0.21`, or `Mosquitto` when the version could not be read.
    pub name: String,
}

impl MosquittoBroker {
    /// Starts Mosquitto with `tls` (the emulator's CA and server certificate) and
    /// `lines` added to `mosquitto.conf` (e.g. `max_inflight_messages 100`), or says
    /// why it cannot: not installed.
    pub fn start_with(tls: BrokerTls, lines: &[&str]) -> BenchResult<MosquittoBroker> {
        let program = Mosquitto::program()
            .ok_or("mosquitto is not installed: run scripts/setup-peers")
            .during("starting Mosquitto")?;
        let version = version_of(&program, "-h", "mosquitto version ");
        // Started as root, Mosquitto reads its files as user `mosquitto`, which cannot read
        // the emulator's private server key (mode 0600); `user root` keeps it root (and is
        // ignored when not started as root).
        let broker = lines
            .iter()
            .fold(Mosquitto::builder(tls).config_line("user root"), |b, l| {
                b.config_line(*l)
            })
            .start()
            .during("starting Mosquitto")?;
        Ok(MosquittoBroker {
            broker,
            name: version.map_or_else(|| "Mosquitto".to_owned(), |v| format!("Mosquitto {v}")),
        })
    }
}

impl BrokerPeer for MosquittoBroker {
    fn name(&self) -> &str {
        &self.name
    }

    fn port(&self) -> u16 {
        self.broker.port()
    }

    fn pid(&self) -> u32 {
        self.broker.pid()
    }
}
