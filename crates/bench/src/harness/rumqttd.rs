//! rumqttd, a multi-threaded broker written in Rust, on the emulator's certificates.
//!
//! It runs as its own process (`cargo install rumqttd --features verify-client-cert`,
//! see `scripts/setup-peers --bench`), from a configuration file this module writes:
//! one MQTT 3.1.1 listener on 127.0.0.1 with mutual TLS (client certificates must
//! chain to the emulator's CA), no ACL (rumqttd has none), nothing else (no console,
//! no metrics, no WebSocket).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use iotcore_test_support::{BrokerTls, workspace_root};
use tempfile::TempDir;

use super::broker_peer::{BrokerPeer, version_of};
use crate::error::{BenchError, BenchResult, Context};

/// The environment variable naming the `rumqttd` binary to use.
pub const RUMQTTD_ENV: &str = "IOTCORE_RUMQTTD";
/// Where `scripts/setup-peers --bench` installs it, under the workspace.
const INSTALLED: &str = ".peers/bin/rumqttd";
/// How long rumqttd may take to listen.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How many fresh ports to try when another process takes the chosen one first.
const PORT_ATTEMPTS: usize = 5;

/// The settings this harness gives rumqttd, as they appear in its configuration,
/// for the notes under the figures. rumqttd keeps QoS 1 deliveries in flight per
/// subscriber at a fixed 100 (the emulator's and AWS IoT Core's window); it queues
/// nothing per subscriber: each reads the commit log of its filter at its own
/// cursor, so with segments this large (10 × 100 MiB per filter) no message of a
/// run is dropped. It has no TCP_NODELAY setting (its sockets keep Nagle's
/// algorithm on) and no worker-thread setting: each listener runs on a thread of
/// its own and the router on another, so one listener keeps two threads busy.
pub const RUMQTTD_SETTINGS: [&str; 4] = [
    "max_inflight_count 100",
    "max_segment_size 104857600",
    "max_segment_count 10",
    "next_connection_delay_ms 0",
];

/// A running rumqttd with mutual TLS, and its version.
pub struct RumqttdBroker {
    child: Child,
    port: u16,
    _dir: TempDir,
    /// `rumqttd 0.20.0`, or `rumqttd` when the version could not be read.
    name: String,
}

impl RumqttdBroker {
    /// The `rumqttd` binary: `$IOTCORE_RUMQTTD`, else the workspace's
    /// `.peers/bin/rumqttd`, else one on `PATH`; or where it was looked for.
    pub fn program() -> Result<PathBuf, String> {
        if let Some(path) = std::env::var_os(RUMQTTD_ENV).filter(|p| !p.is_empty()) {
            let path = PathBuf::from(path);
            return if path.is_file() {
                Ok(path)
            } else {
                Err(format!("{RUMQTTD_ENV}={} does not exist", path.display()))
            };
        }
        let installed = workspace_root().join(INSTALLED);
        if installed.is_file() {
            return Ok(installed);
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|dir| dir.join("rumqttd"))
            .find(|candidate| candidate.is_file())
            .ok_or_else(|| {
                format!(
                    "rumqttd is not installed (not in {}, not on PATH, {RUMQTTD_ENV} unset): \
                     run scripts/setup-peers --bench",
                    installed.display()
                )
            })
    }

    /// Starts rumqttd with `tls` (the emulator's CA and server certificate) and
    /// waits until it accepts connections, or says why it cannot.
    pub fn start(tls: &BrokerTls) -> BenchResult<RumqttdBroker> {
        let program = Self::program().during("starting rumqttd")?;
        let name = version_of(&program, "--version", "rumqttd ")
            .map_or_else(|| "rumqttd".to_owned(), |v| format!("rumqttd {v}"));
        let dir = tempfile::Builder::new()
            .prefix("iotcore-bench-rumqttd-")
            .tempdir()
            .during("making rumqttd's directory")?;
        let conf = dir.path().join("rumqttd.toml");
        let log = dir.path().join("rumqttd.log");
        let mut attempt = 1;
        loop {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|probe| probe.local_addr())
                .during("finding a free port for rumqttd")?
                .port();
            std::fs::write(&conf, config(port, tls)).during("writing rumqttd.toml")?;
            let mut child = Command::new(&program)
                .arg("--quiet")
                .arg("--config")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).during("creating rumqttd's log file")?)
                .spawn()
                .during(format!("starting {}", program.display()))?;
            match wait_ready(&mut child, port, &log) {
                Ok(()) => {
                    return Ok(RumqttdBroker {
                        child,
                        port,
                        _dir: dir,
                        name,
                    });
                }
                Err(why) => {
                    kill(&mut child);
                    if !(why.port_taken && attempt < PORT_ATTEMPTS) {
                        return Err(BenchError::new("starting rumqttd", why.text));
                    }
                    attempt += 1;
                }
            }
        }
    }
}

/// Why rumqttd did not come up.
struct NotReady {
    text: String,
    /// Another process took the port first: worth another one.
    port_taken: bool,
}

/// Waits until `port` accepts a TCP connection; an error (with the log) if rumqttd
/// exits, cannot bind, or takes longer than [`READY_TIMEOUT`].
fn wait_ready(child: &mut Child, port: u16, log: &Path) -> Result<(), NotReady> {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        // rumqttd's listener thread ends on a bind error while its router runs on:
        // an address already in use shows in the log, not in an exit.
        if text.contains("AddrInUse") || text.contains("Address already in use") {
            return Err(NotReady {
                text: format!("port {port} in use: {text}"),
                port_taken: true,
            });
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(NotReady {
                text: format!("rumqttd exited ({status}): {text}"),
                port_taken: false,
            });
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if started.elapsed() > READY_TIMEOUT {
            return Err(NotReady {
                text: format!("not listening on port {port} after {READY_TIMEOUT:?}: {text}"),
                port_taken: false,
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill(child: &mut Child) {
    // Both fail only when the process is already gone.
    let _ = child.kill();
    let _ = child.wait();
}

impl BrokerPeer for RumqttdBroker {
    fn name(&self) -> &str {
        &self.name
    }

    fn port(&self) -> u16 {
        self.port
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for RumqttdBroker {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// rumqttd's configuration: one MQTT 3.1.1 listener on 127.0.0.1:`port` with
/// mutual TLS, and [`RUMQTTD_SETTINGS`].
fn config(port: u16, tls: &BrokerTls) -> String {
    let path = |p: &Path| p.display().to_string();
    format!(
        "# written by iotcore-bench\n\
         id = 0\n\
         \n\
         [router]\n\
         id = 0\n\
         max_connections = 10010\n\
         max_outgoing_packet_count = 200\n\
         max_segment_size = 104857600\n\
         max_segment_count = 10\n\
         \n\
         [v4.1]\n\
         name = \"v4-1\"\n\
         listen = \"127.0.0.1:{port}\"\n\
         next_connection_delay_ms = 0\n\
         \n\
         [v4.1.tls]\n\
         capath = {ca:?}\n\
         certpath = {cert:?}\n\
         keypath = {key:?}\n\
         \n\
         [v4.1.connections]\n\
         connection_timeout_ms = 60000\n\
         max_payload_size = 131072\n\
         max_inflight_count = 100\n\
         dynamic_filters = true\n",
        ca = path(&tls.ca),
        cert = path(&tls.cert),
        key = path(&tls.key),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_names_the_port_and_every_tls_file() {
        let tls = BrokerTls {
            ca: "/pki/ca.pem".into(),
            cert: "/pki/server.pem".into(),
            key: "/pki/server.key".into(),
        };
        let conf = config(18883, &tls);
        assert!(conf.contains("listen = \"127.0.0.1:18883\""), "{conf}");
        assert!(conf.contains("capath = \"/pki/ca.pem\""), "{conf}");
        assert!(conf.contains("certpath = \"/pki/server.pem\""), "{conf}");
        assert!(conf.contains("keypath = \"/pki/server.key\""), "{conf}");
        for setting in RUMQTTD_SETTINGS {
            let (key, value) = setting.split_once(' ').unwrap();
            assert!(
                conf.contains(&format!("{key} = {value}\n")),
                "{setting}: {conf}"
            );
        }
    }
}
