//! The footprint part's child process: the `iotcore` binary started again as
//! `iotcore bench --child idle-clients`, which reads an [`IdleClients`] (JSON) on stdin,
//! connects that many idle clients on a current-thread runtime and answers with an
//! [`IdleUsage`] (JSON, one line on stdout).
//!
//! A process of its own, so that its memory and CPU are those of the clients alone: the
//! bench process runs brokers' clients, Python subprocesses and its own runtime.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::clients::iotcore as sdk;
use crate::clients::rumqttc::Rumqttc;
use crate::error::{BenchError, BenchResult, Context};
use crate::harness::{Identity, ProcessUsage};

/// The `--child` mode that measures idle clients.
pub const IDLE_CLIENTS: &str = "idle-clients";
/// What a child may take beyond its settle and idle times (start, connects, closes).
const CHILD_OVERHEAD: Duration = Duration::from_secs(60);

/// The client library a child connects with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChildClient {
    /// The iotcore SDK (`clients::iotcore::connect`).
    Iotcore,
    /// rumqttc with the suite's options (`clients::rumqttc::Rumqttc`).
    Rumqttc,
}

/// A client's files, as a child receives them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// Thing name and client id.
    pub thing: String,
    /// Client certificate (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
    /// Trusted CA (PEM).
    pub ca: PathBuf,
}

impl From<&Identity> for Credentials {
    fn from(identity: &Identity) -> Credentials {
        Credentials {
            thing: identity.thing.clone(),
            cert: identity.cert.clone(),
            key: identity.key.clone(),
            ca: identity.ca.clone(),
        }
    }
}

impl Credentials {
    fn identity(&self) -> Identity {
        Identity {
            thing: self.thing.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
            ca: self.ca.clone(),
        }
    }
}

/// What an `idle-clients` child does: connect one client per identity to
/// 127.0.0.1:`port` (keep-alive at the library's setting), wait `settle_ms`, read its
/// memory, stay idle `idle_ms` and read its CPU time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdleClients {
    /// The library.
    pub client: ChildClient,
    /// The broker's port on 127.0.0.1.
    pub port: u16,
    /// One client per identity, connected one after the other.
    pub identities: Vec<Credentials>,
    /// Time between the last CONNACK and the memory reading, in ms.
    pub settle_ms: u64,
    /// The idle window the CPU time is read over, in ms.
    pub idle_ms: u64,
}

/// What a child measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdleUsage {
    /// How many clients were connected.
    pub clients: usize,
    /// VmRSS before the first client was built, in KiB.
    pub before_kb: u64,
    /// VmRSS with every client connected and settled, in KiB.
    pub after_kb: u64,
    /// CPU ticks (user + system) spent during the idle window.
    pub idle_cpu_ticks: u64,
    /// The idle window, in ms.
    pub idle_ms: u64,
}

impl IdleUsage {
    /// Resident memory the clients added, per client, in KiB.
    pub fn kb_per_client(&self) -> f64 {
        (self.after_kb as f64 - self.before_kb as f64) / self.clients.max(1) as f64
    }

    /// CPU used during the idle window, in % of one core.
    pub fn idle_cpu_percent(&self, ticks_per_second: f64) -> f64 {
        let seconds = self.idle_ms.max(1) as f64 / 1000.0;
        self.idle_cpu_ticks as f64 / ticks_per_second / seconds * 100.0
    }
}

/// Runs child `mode` with its request on stdin; returns the line to print on stdout.
pub fn main(mode: &str) -> BenchResult<String> {
    if mode != IDLE_CLIENTS {
        return Err(BenchError::new(
            "iotcore bench --child",
            format!("unknown child mode {mode:?} (known: {IDLE_CLIENTS})"),
        ));
    }
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .during("reading the child's request on stdin")?;
    let request: IdleClients =
        serde_json::from_str(&input).during("parsing the child's request")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .during("starting the child's runtime")?;
    let usage = runtime.block_on(idle_clients(&request))?;
    serde_json::to_string(&usage).during("writing the child's answer")
}

/// A connected client of either library.
enum Connected {
    Iotcore(iotcore::Client),
    Rumqttc(Rumqttc),
}

async fn idle_clients(request: &IdleClients) -> BenchResult<IdleUsage> {
    let before = ProcessUsage::of(0)?;
    let mut connected = Vec::with_capacity(request.identities.len());
    for credentials in &request.identities {
        let identity = credentials.identity();
        connected.push(match request.client {
            ChildClient::Iotcore => {
                Connected::Iotcore(sdk::connect(request.port, &identity).await?)
            }
            ChildClient::Rumqttc => {
                Connected::Rumqttc(Rumqttc::connect(request.port, &identity).await?)
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(request.settle_ms)).await;
    let settled = ProcessUsage::of(0)?;
    tokio::time::sleep(Duration::from_millis(request.idle_ms)).await;
    let idle = ProcessUsage::of(0)?;
    for client in connected {
        match client {
            Connected::Iotcore(client) => client.close().await,
            Connected::Rumqttc(client) => client.close().await?,
        }
    }
    Ok(IdleUsage {
        clients: request.identities.len(),
        before_kb: before.rss_kb,
        after_kb: settled.rss_kb,
        idle_cpu_ticks: idle.cpu_ticks.saturating_sub(settled.cpu_ticks),
        idle_ms: request.idle_ms,
    })
}

/// Starts `<iotcore> bench --child idle-clients`, hands it `request` and returns what it
/// measured.
pub async fn spawn_idle_clients(iotcore: &Path, request: &IdleClients) -> BenchResult<IdleUsage> {
    let step = || {
        format!(
            "{} idle {:?} child",
            request.identities.len(),
            request.client
        )
    };
    let input = serde_json::to_vec(request).during(step())?;
    let mut child = tokio::process::Command::new(iotcore)
        .args(["bench", "--child", IDLE_CLIENTS])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .during(format!("starting {} bench --child", iotcore.display()))?;
    let mut stdin = child.stdin.take().ok_or("no stdin").during(step())?;
    stdin.write_all(&input).await.during(step())?;
    drop(stdin);
    let limit = Duration::from_millis(request.settle_ms + request.idle_ms) + CHILD_OVERHEAD;
    let output = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .during(format!("waiting for the {}", step()))?
        .during(step())?;
    if !output.status.success() {
        return Err(BenchError::new(
            step(),
            format!(
                "it failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).during(format!("reading the answer of the {}", step()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_per_client_and_cpu_share() {
        let usage = IdleUsage {
            clients: 100,
            before_kb: 10_000,
            after_kb: 15_000,
            idle_cpu_ticks: 5,
            idle_ms: 10_000,
        };
        assert_eq!(usage.kb_per_client(), 50.0);
        assert!((usage.idle_cpu_percent(100.0) - 0.5).abs() < 1e-9);
        let shrank = IdleUsage {
            after_kb: 9_900,
            ..usage
        };
        assert_eq!(shrank.kb_per_client(), -1.0);
    }

    #[test]
    fn requests_survive_the_round_trip_through_json() {
        let request = IdleClients {
            client: ChildClient::Rumqttc,
            port: 8883,
            identities: vec![Credentials {
                thing: "t".into(),
                cert: "/c pem".into(),
                key: "/k".into(),
                ca: "/ca".into(),
            }],
            settle_ms: 1,
            idle_ms: 2,
        };
        let text = serde_json::to_string(&request).unwrap();
        assert!(text.contains("\"rumqttc\""));
        assert_eq!(serde_json::from_str::<IdleClients>(&text).unwrap(), request);
        assert!(main("nonsense").is_err());
    }
}
