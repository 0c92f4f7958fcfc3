//! Running the Python peers in `tests/peers/` (AWS IoT Device SDK v2 for Python, paho-mqtt).
//!
//! Peers print one JSON object per line on stdout (`{"event": "connected", ...}`); diagnostics go
//! to stderr. Both are captured.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The time limit [`run_peer`] and [`spawn_peer`] give a peer before killing it. Peers have
/// their own, shorter `--timeout`; this one only keeps a wedged interpreter from hanging a test.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(120);

/// The workspace root (the directory holding the root `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .and_then(Path::parent)
        .unwrap_or(manifest_dir)
        .to_owned()
}

/// The Python interpreter that has the peers' packages: `$IOTCORE_PYTHON` if set, else
/// `<workspace>/.venv/bin/python`.
///
/// # Panics
///
/// If that interpreter does not exist (run `scripts/setup-peers`).
pub fn python() -> PathBuf {
    find_python().unwrap_or_else(|missing| {
        panic!(
            "Python peers not installed ({} does not exist): run scripts/setup-peers",
            missing.display()
        )
    })
}

/// The interpreter [`python`] would use, or the path where it was looked for in vain.
pub fn find_python() -> Result<PathBuf, PathBuf> {
    let python = std::env::var_os("IOTCORE_PYTHON")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/python"));
    if python.exists() {
        Ok(python)
    } else {
        Err(python)
    }
}

/// The path of a peer script, `<workspace>/tests/peers/<script>`.
///
/// # Panics
///
/// If the script does not exist.
pub fn peer_script(script: &str) -> PathBuf {
    let path = workspace_root().join("tests/peers").join(script);
    assert!(
        path.is_file(),
        "no peer script {script:?} at {}",
        path.display()
    );
    path
}

/// Runs `tests/peers/<script>` with `args` to completion (at most [`PEER_TIMEOUT`]) and returns
/// what it printed.
///
/// Must be called inside a tokio runtime. It does not block the runtime, so an emulator running
/// on the same runtime keeps serving the peer.
///
/// # Panics
///
/// If the interpreter or the script is missing, or the interpreter cannot be spawned.
pub async fn run_peer<I, S>(script: &str, args: I) -> PeerOutput
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_peer_with_timeout(script, args, PEER_TIMEOUT).await
}

/// [`run_peer`] with a time limit other than [`PEER_TIMEOUT`].
pub async fn run_peer_with_timeout<I, S>(script: &str, args: I, timeout: Duration) -> PeerOutput
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    PeerProcess::spawn(script, args, timeout).finish().await
}

/// Starts `tests/peers/<script>` with `args` and returns a handle to read its events as they come
/// (for example, wait for `"subscribed"` before publishing from the test). The peer is killed
/// after [`PEER_TIMEOUT`], or when the handle is dropped.
///
/// Must be called inside a tokio runtime.
///
/// # Panics
///
/// If the interpreter or the script is missing, or the interpreter cannot be spawned.
pub fn spawn_peer<I, S>(script: &str, args: I) -> PeerProcess
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    PeerProcess::spawn(script, args, PEER_TIMEOUT)
}

/// A running peer; see [`spawn_peer`].
#[derive(Debug)]
pub struct PeerProcess {
    script: String,
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    stdout: Vec<String>,
    stderr: JoinHandle<String>,
    deadline: Instant,
    timed_out: bool,
}

impl PeerProcess {
    fn spawn<I, S>(script: &str, args: I, timeout: Duration) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let python = python();
        let path = peer_script(script);
        let mut child = Command::new(&python)
            .arg(&path)
            .args(args)
            .current_dir(workspace_root())
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot spawn {} {}: {e}", python.display(), path.display())
            });
        let (tx, lines) = mpsc::unbounded_channel();
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(async move {
                let mut reader = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let stderr = tokio::spawn(read_all(child.stderr.take()));
        PeerProcess {
            script: script.to_owned(),
            child,
            lines,
            stdout: Vec::new(),
            stderr,
            deadline: Instant::now() + timeout,
            timed_out: false,
        }
    }

    /// The next JSON event the peer printed, or `None` once its stdout is closed or its time is
    /// up. Lines that are not JSON are kept in the output but skipped here.
    pub async fn next_event(&mut self) -> Option<Value> {
        while let Some(line) = self.next_line().await {
            match serde_json::from_str(&line) {
                Ok(event) => return Some(event),
                Err(_) => {
                    tracing::warn!(script = %self.script, %line, "peer printed a non-JSON line")
                }
            }
        }
        None
    }

    /// Reads events until one has `"event": <event>` and returns it.
    ///
    /// # Panics
    ///
    /// If the peer ends, or runs out of time, first; the message includes everything it printed.
    pub async fn wait_for_event(&mut self, event: &str) -> Value {
        while let Some(next) = self.next_event().await {
            if next["event"] == event {
                return next;
            }
        }
        let output = self.collect().await;
        panic!("peer ended before printing a {event:?} event\n{output}");
    }

    /// Waits for the peer to exit (reading the rest of its output) and returns its output.
    /// A peer still running at its deadline is killed.
    pub async fn finish(mut self) -> PeerOutput {
        while self.next_line().await.is_some() {}
        self.collect().await
    }

    /// Kills the peer now and returns what it printed.
    pub async fn kill(mut self) -> PeerOutput {
        self.terminate().await;
        self.collect().await
    }

    async fn next_line(&mut self) -> Option<String> {
        if self.timed_out {
            return None;
        }
        match tokio::time::timeout_at(self.deadline, self.lines.recv()).await {
            Ok(Some(line)) => {
                self.stdout.push(line.clone());
                Some(line)
            }
            Ok(None) => None,
            Err(_) => {
                tracing::warn!(script = %self.script, "peer ran out of time; killing it");
                self.timed_out = true;
                self.terminate().await;
                None
            }
        }
    }

    async fn terminate(&mut self) {
        // Fails only if the process already exited.
        let _ = self.child.kill().await;
    }

    async fn collect(&mut self) -> PeerOutput {
        let status = match tokio::time::timeout_at(self.deadline, self.child.wait()).await {
            Ok(status) => status.ok(),
            Err(_) => {
                self.timed_out = true;
                self.terminate().await;
                None
            }
        };
        // The pipes close when the process is gone; collect whatever stdout is still queued.
        while let Ok(line) = self.lines.try_recv() {
            self.stdout.push(line);
        }
        let stderr = (&mut self.stderr).await.unwrap_or_default();
        PeerOutput {
            script: self.script.clone(),
            status: if self.timed_out { None } else { status },
            stdout: self.stdout.iter().map(|l| format!("{l}\n")).collect(),
            stderr,
            timed_out: self.timed_out,
        }
    }
}

async fn read_all(pipe: Option<impl AsyncRead + Unpin>) -> String {
    let mut bytes = Vec::new();
    if let Some(mut pipe) = pipe {
        // A read error only truncates the diagnostics.
        let _ = pipe.read_to_end(&mut bytes).await;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// What a peer printed and how it ended.
#[derive(Debug, Clone)]
pub struct PeerOutput {
    /// The script's file name.
    pub script: String,
    /// The exit status; `None` if the peer was killed for running out of time.
    pub status: Option<ExitStatus>,
    /// Everything printed on stdout (JSON lines).
    pub stdout: String,
    /// Everything printed on stderr.
    pub stderr: String,
    /// Whether the peer was killed for running out of time.
    pub timed_out: bool,
}

impl PeerOutput {
    /// Whether the peer exited with status 0 in time.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// Every JSON line of stdout, in order (other lines skipped).
    pub fn events(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// The events whose `"event"` field is `event`, in order.
    pub fn events_named(&self, event: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == event)
            .collect()
    }

    /// Panics, showing the whole output, unless the peer succeeded.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(self.success(), "peer failed\n{self}");
        self
    }
}

impl fmt::Display for PeerOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.timed_out, self.status) {
            (true, _) => writeln!(f, "{}: killed after running out of time", self.script)?,
            (false, Some(status)) => writeln!(f, "{}: {status}", self.script)?,
            (false, None) => writeln!(f, "{}: exit status unknown", self.script)?,
        }
        writeln!(
            f,
            "--- stdout ---\n{}--- stderr ---\n{}",
            self.stdout, self.stderr
        )
    }
}
