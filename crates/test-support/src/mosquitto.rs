//! A Mosquitto broker with mutual TLS on a free loopback port, one per test.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::error::{Error, Result};
use crate::net::{loopback, try_free_port};
use crate::pki::{CertFiles, TestPki};
use crate::program::find_program;

/// How long [`Mosquitto::start`] waits for the broker to start listening.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How many fresh ports to try when another process takes the chosen one first.
const PORT_ATTEMPTS: usize = 5;
/// How many lines of the broker's stderr are kept for error messages.
const LOG_LINES: usize = 200;

/// The TLS files a Mosquitto listener is configured with.
#[derive(Debug, Clone)]
pub struct BrokerTls {
    /// CA certificate (PEM) that client certificates must chain to; also what clients trust.
    pub ca: PathBuf,
    /// Server certificate (PEM).
    pub cert: PathBuf,
    /// Server private key (PEM).
    pub key: PathBuf,
}

impl From<&TestPki> for BrokerTls {
    fn from(pki: &TestPki) -> Self {
        BrokerTls {
            ca: pki.ca_path().to_owned(),
            cert: pki.server().cert().to_owned(),
            key: pki.server().key().to_owned(),
        }
    }
}

/// Configures a [`Mosquitto`] before starting it; see [`Mosquitto::builder`].
#[derive(Debug)]
pub struct MosquittoBuilder {
    tls: BrokerTls,
    extra: Vec<String>,
}

impl MosquittoBuilder {
    /// Appends a line to the generated `mosquitto.conf`, after the listener block (so
    /// listener-scoped options such as `max_keepalive 60` apply to the TLS listener).
    pub fn config_line(mut self, line: impl Into<String>) -> Self {
        self.extra.push(line.into());
        self
    }

    /// Starts the broker and waits until its TLS port is listening.
    ///
    /// # Panics
    ///
    /// If the `mosquitto` binary is not installed (run `scripts/setup-peers`).
    pub fn start(self) -> Result<Mosquitto> {
        let program = Mosquitto::program()
            .unwrap_or_else(|| panic!("mosquitto not installed: run scripts/setup-peers"));
        let dir = tempfile::Builder::new()
            .prefix("iotcore-mosquitto-")
            .tempdir()
            .map_err(|e| Error::io("creating a temporary directory in", std::env::temp_dir(), e))?;
        let conf = dir.path().join("mosquitto.conf");
        let mut attempt = 1;
        loop {
            let port = try_free_port()
                .map_err(|e| Error::io("binding a probe socket on", "127.0.0.1:0", e))?;
            std::fs::write(&conf, self.config(port)).map_err(|e| Error::io("writing", &conf, e))?;
            match Process::spawn(&program, &conf, port) {
                Ok(process) => {
                    return Ok(Mosquitto {
                        _dir: dir,
                        program,
                        conf,
                        port,
                        ca: self.tls.ca,
                        process,
                    });
                }
                Err(SpawnError::PortTaken(_)) if attempt < PORT_ATTEMPTS => {
                    tracing::debug!(port, "another process took mosquitto's port; retrying");
                    attempt += 1;
                }
                Err(e) => return Err(e.into_error()),
            }
        }
    }

    fn config(&self, port: u16) -> String {
        let mut conf = format!(
            "# written by iotcore-test-support\n\
             per_listener_settings false\n\
             persistence false\n\
             log_dest stderr\n\
             log_type error\n\
             log_type warning\n\
             log_type notice\n\
             log_type information\n\
             connection_messages true\n\
             log_timestamp_format %H:%M:%S\n\
             # Clients are authenticated by their certificate (its CN becomes the username);\n\
             # there is no password file, so nobody without a certificate gets in.\n\
             allow_anonymous false\n\
             listener {port} 127.0.0.1\n\
             cafile {ca}\n\
             certfile {cert}\n\
             keyfile {key}\n\
             require_certificate true\n\
             use_identity_as_username true\n",
            ca = self.tls.ca.display(),
            cert = self.tls.cert.display(),
            key = self.tls.key.display(),
        );
        for line in &self.extra {
            conf.push_str(line);
            conf.push('\n');
        }
        conf
    }
}

/// A running `mosquitto` process with one mutual-TLS listener on `127.0.0.1:<port()>`.
///
/// Clients must present a certificate signed by the configured CA; the certificate's common name
/// becomes their username. No persistence, no ACL. The process is killed when the value is
/// dropped.
#[derive(Debug)]
pub struct Mosquitto {
    _dir: TempDir,
    program: PathBuf,
    conf: PathBuf,
    port: u16,
    ca: PathBuf,
    process: Process,
}

impl Mosquitto {
    /// Starts a broker with default settings; see [`MosquittoBuilder::start`].
    ///
    /// # Panics
    ///
    /// If the `mosquitto` binary is not installed (run `scripts/setup-peers`).
    pub fn start(tls: impl Into<BrokerTls>) -> Result<Self> {
        Self::builder(tls).start()
    }

    /// A builder for a broker with extra configuration lines.
    pub fn builder(tls: impl Into<BrokerTls>) -> MosquittoBuilder {
        MosquittoBuilder {
            tls: tls.into(),
            extra: Vec::new(),
        }
    }

    /// The installed `mosquitto` binary, if any (on `PATH`, `/usr/sbin` or `/usr/local/sbin`).
    pub fn program() -> Option<PathBuf> {
        find_program("mosquitto", &["/usr/sbin", "/usr/local/sbin"])
    }

    /// The broker's process id (to read its memory and CPU in `/proc`).
    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }

    /// The TLS port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        loopback(self.port)
    }

    /// The CA certificate clients should trust (the one the listener was configured with).
    pub fn ca_path(&self) -> &Path {
        &self.ca
    }

    /// The last lines the broker wrote to its log (stderr), for assertion messages.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Arguments for `mosquitto_pub` / `mosquitto_sub` to reach this broker as `client`:
    /// `-h 127.0.0.1 -p <port> --cafile <ca> --cert <cert> --key <key>`.
    pub fn client_args(&self, client: &CertFiles) -> Vec<OsString> {
        vec![
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            self.port.to_string().into(),
            "--cafile".into(),
            self.ca.clone().into(),
            "--cert".into(),
            client.cert().into(),
            "--key".into(),
            client.key().into(),
        ]
    }

    /// Kills the broker and starts it again on the same port with the same configuration.
    ///
    /// Every client is disconnected and, since persistence is off, every session is lost: this
    /// is a broker crash and restart.
    pub fn restart(&mut self) -> Result<()> {
        self.process.kill();
        self.process =
            Process::spawn(&self.program, &self.conf, self.port).map_err(SpawnError::into_error)?;
        Ok(())
    }
}

enum SpawnError {
    /// The listener port was taken by someone else between probing and binding.
    PortTaken(Error),
    Other(Error),
}

impl SpawnError {
    fn into_error(self) -> Error {
        match self {
            SpawnError::PortTaken(e) | SpawnError::Other(e) => e,
        }
    }
}

/// The child process and the thread draining its stderr into a bounded log.
#[derive(Debug)]
struct Process {
    child: Child,
    log: Arc<Mutex<VecDeque<String>>>,
}

impl Process {
    fn spawn(program: &Path, conf: &Path, port: u16) -> Result<Self, SpawnError> {
        let mut child = Command::new(program)
            .arg("-c")
            .arg(conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| SpawnError::Other(Error::io("spawning", program, e)))?;
        let log = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(stderr) = child.stderr.take() {
            let log = Arc::clone(&log);
            std::thread::spawn(move || drain_log(stderr, port, &log));
        }
        let mut process = Process { child, log };
        process.wait_ready(port)?;
        tracing::debug!(port, "mosquitto is listening");
        Ok(process)
    }

    /// Waits until the broker says it is running, which it does once it is listening.
    fn wait_ready(&mut self, port: u16) -> Result<(), SpawnError> {
        let started = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    // Give the drain thread a moment to collect the last lines.
                    std::thread::sleep(Duration::from_millis(50));
                    let log = self.log();
                    let port_taken = log.contains("Address already in use");
                    let error = Error::MosquittoExited { status, log };
                    return Err(if port_taken {
                        SpawnError::PortTaken(error)
                    } else {
                        SpawnError::Other(error)
                    });
                }
                Ok(None) => {}
                Err(e) => return Err(SpawnError::Other(Error::io("waiting for", "mosquitto", e))),
            }
            // Mosquitto logs "mosquitto version X running" once every listener is listening
            // (a bind failure makes it exit instead). Probing the port with a TCP connection
            // would only add a failed-handshake line to the log.
            if self.log().lines().any(is_running_line) {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                self.kill();
                return Err(SpawnError::Other(Error::MosquittoNotReady {
                    port,
                    waited: READY_TIMEOUT,
                    log: self.log(),
                }));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        let lines = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        lines.iter().map(|l| format!("{l}\n")).collect()
    }

    fn kill(&mut self) {
        // Both fail only when the process is already gone, which is what we want.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

fn is_running_line(line: &str) -> bool {
    line.contains("mosquitto version") && line.ends_with(" running")
}

fn drain_log(stderr: impl std::io::Read, port: u16, log: &Mutex<VecDeque<String>>) {
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        tracing::debug!(target: "mosquitto", port, "{line}");
        let mut lines = log.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() == LOG_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }
}
