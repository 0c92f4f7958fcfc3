//! `iotcore emulator` in its own process, as a user runs it, and the things the
//! suite registers in it.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use iotcore_emulator::control::{
    AccessKeyOptions, Control, CreatePolicyRequest, ErrorCode, ThingOptions, ThingPolicy,
};
use iotcore_emulator::pki::KeyAlgorithm;
use iotcore_emulator::policy::{ArnScope, PolicyTemplate};
use iotcore_emulator::things::write_device_files;
use iotcore_test_support::BrokerTls;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::{AccessKey, Identity};
use crate::error::{BenchError, BenchResult, Context};

/// How long the emulator may take to say it is listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The line `iotcore emulator` prints once it listens, before the address.
const LISTENING: &str = "iotcore emulator listening on ";
/// The policy every bench thing gets: a cloud application's, free to publish and
/// subscribe in every device's `dt/…` namespace (fan-in and fan-out need that).
const BENCH_POLICY: &str = "bench-policy";
/// The policy of the suite's access keys (SigV4 over WebSocket): connect with any
/// `bench-…` client id, publish, subscribe and receive in `dt/…`. Without the thing
/// policy variables (a SigV4 connection has no thing), but checked on every publish
/// as a certificate's policy is.
const ACCESS_KEY_POLICY: &str = "bench-access-key-policy";

/// A running `iotcore emulator` with a temporary data directory.
pub struct EmulatorProcess {
    child: Child,
    port: u16,
    dir: TempDir,
    control: Control,
}

impl EmulatorProcess {
    /// Starts `<iotcore> --data-dir <temp> emulator --port 0` and waits until it listens.
    pub async fn start(iotcore: &Path) -> BenchResult<EmulatorProcess> {
        let dir = tempfile::Builder::new()
            .prefix("iotcore-bench-")
            .tempdir()
            .during("creating the emulator's data directory")?;
        let data = dir.path().join("data");
        let log = std::fs::File::create(dir.path().join("emulator.log"))
            .during("creating the emulator's log file")?;
        let mut child = Command::new(iotcore)
            .arg("--data-dir")
            .arg(&data)
            // Benchmarks measure the emulator, not AWS's throttles.
            .args(["emulator", "--port", "0", "--quotas", "off"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .during(format!("starting {} emulator", iotcore.display()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or("no stdout")
            .during("starting the emulator")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(START_TIMEOUT, lines.next_line())
            .await
            .during("waiting for the emulator to listen")?
            .during("reading the emulator's output")?;
        let port = first
            .as_deref()
            .and_then(|line| line.strip_prefix(LISTENING))
            .and_then(|addr| addr.rsplit_once(':'))
            .and_then(|(_, port)| port.parse().ok())
            .ok_or_else(|| {
                BenchError::new(
                    "starting the emulator",
                    format!(
                        "it printed {first:?}, not the address it listens on; its log: {}",
                        tail(&dir.path().join("emulator.log"))
                    ),
                )
            })?;
        // Keep reading stdout so that the emulator never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let scope = ArnScope::default();
        let control =
            Control::open(&data, scope.clone()).during("opening the emulator's registry")?;
        create_policy(
            &control,
            BENCH_POLICY,
            PolicyTemplate::Application.render(&scope),
        )?;
        create_policy(
            &control,
            ACCESS_KEY_POLICY,
            access_key_policy(scope.prefix()),
        )?;
        Ok(EmulatorProcess {
            child,
            port,
            dir,
            control,
        })
    }

    /// Its MQTT over TLS port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its process id.
    pub fn pid(&self) -> BenchResult<u32> {
        self.child
            .id()
            .ok_or("it has exited")
            .during("reading the emulator's process id")
    }

    /// Registers thing `name` with a new certificate for a `key` key pair and writes
    /// its files; the certificate may publish and subscribe in every `dt/…` topic.
    pub fn identity(&self, name: &str, key: KeyAlgorithm) -> BenchResult<Identity> {
        let options = ThingOptions::default()
            .with_key(key)
            .with_policy(ThingPolicy::Existing(BENCH_POLICY.to_owned()));
        let step = || format!("registering bench thing {name}");
        let created = self
            .control
            .create_thing_with_certificate(name, &options)
            .during(step())?;
        let files = write_device_files(
            name,
            &created.credentials,
            self.control.pki().ca_pem(),
            &self.dir.path().join("things"),
        )
        .during(step())?;
        Ok(Identity {
            thing: name.to_owned(),
            cert: files.certificate,
            key: files.private_key,
            ca: files.root_ca,
        })
    }

    /// Issues an access key `name` for MQTT over WebSocket with SigV4, under the
    /// suite's access-key policy.
    pub fn access_key(&self, name: &str) -> BenchResult<AccessKey> {
        let options = AccessKeyOptions {
            policy: Some(ACCESS_KEY_POLICY.to_owned()),
            temporary: None,
        };
        let record = self
            .control
            .create_access_key(name, &options)
            .during(format!("issuing bench access key {name}"))?;
        Ok(AccessKey {
            id: record.access_key_id,
            secret: record.secret_access_key,
        })
    }

    /// The emulator's CA and server certificate, for a Mosquitto that the same
    /// clients can reach with the same files.
    pub fn broker_tls(&self) -> BrokerTls {
        let pki = self.dir.path().join("data/pki");
        BrokerTls {
            ca: pki.join("ca.pem"),
            cert: pki.join("server.pem"),
            key: pki.join("server.key"),
        }
    }

    /// Stops the emulator (SIGKILL: its state is thrown away with the directory).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Creates policy `name` unless it exists (the data directory is reused).
fn create_policy(control: &Control, name: &str, document: String) -> BenchResult<()> {
    let created = control.create_policy(CreatePolicyRequest {
        policy_name: name.to_owned(),
        policy_document: document,
        tags: None,
    });
    match created {
        Err(e) if e.code() != ErrorCode::ResourceAlreadyExists => {
            Err(e).during(format!("creating policy {name}"))
        }
        _ => Ok(()),
    }
}

/// [`ACCESS_KEY_POLICY`]'s document, resources under `prefix` (`arn:aws:iot:REGION:ACCOUNT:`).
fn access_key_policy(prefix: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect",
             "Resource": format!("{prefix}client/bench-*")},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
             "Resource": format!("{prefix}topic/dt/*")},
            {"Effect": "Allow", "Action": "iot:Subscribe",
             "Resource": format!("{prefix}topicfilter/dt/*")},
        ],
    })
    .to_string()
}

/// The last lines of a log file, for an error message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
