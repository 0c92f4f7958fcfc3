//! Mosquitto, the broker the emulator is compared with, on the emulator's certificates.

use iotcore_test_support::{BrokerTls, Mosquitto};

use crate::error::{BenchResult, Context};

/// A running Mosquitto with mutual TLS, and its version.
pub struct MosquittoBroker {
    broker: Mosquitto,
    /// `Mosquitto 2.0.21`, or `Mosquitto` when the version could not be read.
    pub name: String,
}

impl MosquittoBroker {
    /// Starts Mosquitto with `tls` (the emulator's CA and server certificate), or says
    /// why it cannot: not installed.
    pub fn start(tls: BrokerTls) -> BenchResult<MosquittoBroker> {
        MosquittoBroker::start_with(tls, &[])
    }

    /// Like [`start`](Self::start), with `lines` added to `mosquitto.conf`
    /// (e.g. `max_inflight_messages 100`).
    pub fn start_with(tls: BrokerTls, lines: &[&str]) -> BenchResult<MosquittoBroker> {
        let program = Mosquitto::program()
            .ok_or("mosquitto is not installed: run scripts/setup-peers")
            .during("starting Mosquitto")?;
        let version = std::process::Command::new(&program)
            .arg("-h")
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .find_map(|l| l.strip_prefix("mosquitto version ").map(str::to_owned))
            });
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

    /// Its TLS port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.broker.port()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.broker.pid()
    }
}
