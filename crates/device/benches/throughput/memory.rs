//! Resident memory: one idle connected client in a small separate process (this
//! binary started again in [`CHILD_MODE`]), and the `iotcore demo` binary.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::BoxError;
use crate::rumqttc_client::Rumqttc;
use crate::sdk;
use crate::setup::Identity;

/// The first argument that makes this binary measure one client's memory and exit.
pub const CHILD_MODE: &str = "rss-child";
/// How long the measured client stays connected and idle before the second reading.
pub const IDLE: Duration = Duration::from_secs(1);
/// The most a child process may take.
const CHILD_TIMEOUT: Duration = Duration::from_secs(30);

/// A process's resident set size before and after connecting one client.
#[derive(Clone, Copy, Debug)]
pub struct Rss {
    /// VmRSS before the client is built, in KiB.
    pub before_kb: u64,
    /// VmRSS after connecting and idling for [`IDLE`], in KiB.
    pub after_kb: u64,
}

impl Rss {
    /// Reads `{"before_kb": A, "after_kb": B}`.
    pub fn from_json(value: &Value) -> Result<Rss, BoxError> {
        let field = |name: &str| {
            value[name]
                .as_u64()
                .ok_or_else(|| format!("no {name} in {value}"))
        };
        Ok(Rss {
            before_kb: field("before_kb")?,
            after_kb: field("after_kb")?,
        })
    }

    /// What connecting the client added, in KiB (negative if the process shrank).
    pub fn delta_kb(&self) -> i64 {
        self.after_kb as i64 - self.before_kb as i64
    }
}

/// The clients a child process can measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildClient {
    /// This crate's `Client`.
    Iotcore,
    /// rumqttc.
    Rumqttc,
}

impl ChildClient {
    const ALL: [ChildClient; 2] = [ChildClient::Iotcore, ChildClient::Rumqttc];

    fn name(self) -> &'static str {
        match self {
            ChildClient::Iotcore => "iotcore",
            ChildClient::Rumqttc => "rumqttc",
        }
    }

    fn parse(name: &str) -> Option<ChildClient> {
        Self::ALL.into_iter().find(|client| client.name() == name)
    }
}

/// This process's current resident set size (`VmRSS` in `/proc/self/status`), in KiB.
fn vm_rss_kb() -> Result<u64, BoxError> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS line in /proc/self/status".into())
}

/// Child mode: `rss-child <iotcore|rumqttc> <port> <thing> <cert> <key> <ca>`. Connects one
/// client on a current-thread runtime, idles, and prints `{"before_kb": A, "after_kb": B}`.
pub fn child_main(args: &[String]) -> Result<(), BoxError> {
    let [client, port, thing, cert, key, ca] = args else {
        return Err(format!(
            "usage: {CHILD_MODE} <iotcore|rumqttc> <port> <thing> <cert> <key> <ca>"
        )
        .into());
    };
    let port: u16 = port.parse()?;
    let identity = Identity {
        thing: thing.clone(),
        cert: cert.into(),
        key: key.into(),
        ca: ca.into(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let rss = runtime.block_on(async {
        let before_kb = vm_rss_kb()?;
        let after_kb = match ChildClient::parse(client) {
            Some(ChildClient::Iotcore) => {
                let client = sdk::connect(port, &identity).await?;
                tokio::time::sleep(IDLE).await;
                let after = vm_rss_kb()?;
                client.close().await;
                after
            }
            Some(ChildClient::Rumqttc) => {
                let client = Rumqttc::connect(port, &identity).await?;
                tokio::time::sleep(IDLE).await;
                let after = vm_rss_kb()?;
                client.close().await?;
                after
            }
            None => return Err(format!("unknown client {client:?}").into()),
        };
        Ok::<_, BoxError>(Rss {
            before_kb,
            after_kb,
        })
    })?;
    println!(
        "{}",
        json!({"before_kb": rss.before_kb, "after_kb": rss.after_kb})
    );
    Ok(())
}

/// Starts this binary in child mode for `client` and returns what it measured.
pub async fn idle_client(
    client: ChildClient,
    port: u16,
    identity: &Identity,
) -> Result<Rss, BoxError> {
    let exe = std::env::current_exe()?;
    let child = tokio::process::Command::new(exe)
        .arg(CHILD_MODE)
        .arg(client.name())
        .arg(port.to_string())
        .arg(&identity.thing)
        .arg(&identity.cert)
        .arg(&identity.key)
        .arg(&identity.ca)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let output = tokio::time::timeout(CHILD_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| format!("the {} memory child ran out of time", client.name()))??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "the {} memory child failed ({}): {}",
            client.name(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let last = stdout.lines().last().unwrap_or_default();
    Rss::from_json(&serde_json::from_str(last)?)
}

/// The `iotcore` binary's peak memory running `iotcore demo`.
pub struct DemoRss {
    /// The binary run.
    pub binary: PathBuf,
    /// How long before the run the binary was built.
    pub age: Duration,
    /// "Maximum resident set size" reported by `/usr/bin/time -v`, in KiB.
    pub max_rss_kb: u64,
}

/// `target/release/iotcore`, next to this bench binary's `deps/` directory.
fn demo_binary() -> Result<PathBuf, BoxError> {
    let exe = std::env::current_exe()?;
    let release = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot locate the target directory")?;
    let binary = release.join("iotcore");
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(format!(
            "{} does not exist: run `cargo build --release -p iotcore-cli` first",
            binary.display()
        )
        .into())
    }
}

/// Runs `target/release/iotcore demo` under `/usr/bin/time -v`.
pub async fn demo() -> Result<DemoRss, BoxError> {
    let binary = demo_binary()?;
    let age = SystemTime::now()
        .duration_since(std::fs::metadata(&binary)?.modified()?)
        .unwrap_or_default();
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("/usr/bin/time")
            .arg("-v")
            .arg(&binary)
            .arg("demo")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| "iotcore demo ran out of time")??;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("iotcore demo failed ({}): {stderr}", output.status).into());
    }
    let max_rss_kb = stderr
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("Maximum resident set size (kbytes):")
        })
        .and_then(|kb| kb.trim().parse().ok())
        .ok_or_else(|| format!("/usr/bin/time printed no maximum resident set size: {stderr}"))?;
    Ok(DemoRss {
        binary,
        age,
        max_rss_kb,
    })
}
