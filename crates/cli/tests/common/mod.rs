//! What the CLI's test binaries share: running `iotcore`, and an `iotcore emulator`
//! process in the background. Each test binary uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The binary under test.
pub const IOTCORE: &str = env!("CARGO_BIN_EXE_iotcore");
/// How long a test waits for a line it expects before declaring it hung.
pub const HANG_GUARD: Duration = Duration::from_secs(30);

/// Runs `iotcore <args>` with `data_dir` as its data directory, to completion.
pub fn iotcore(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(IOTCORE)
        .args(args)
        .env("IOTCORE_DATA_DIR", data_dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("run iotcore")
}

/// Runs `iotcore ARGS` in `data`, expecting success; its stdout.
pub fn ok(data: &Path, args: &[&str]) -> String {
    let out = iotcore(data, args);
    assert!(
        out.status.success(),
        "iotcore {args:?} failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs `iotcore ARGS` in `data`, expecting failure; its stderr.
pub fn fails(data: &Path, args: &[&str]) -> String {
    let out = iotcore(data, args);
    assert!(
        !out.status.success(),
        "iotcore {args:?} succeeded:\n{}",
        text(&out.stdout)
    );
    text(&out.stderr)
}

/// Bytes as text, for assertion messages.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Lines of a child's output, read on a thread, waited for with a time limit.
pub struct Lines(mpsc::Receiver<String>);

impl Lines {
    /// Starts reading `stream` (to its end, so the writer never blocks on a full pipe).
    pub fn of(stream: impl std::io::Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                // Once the test stops listening, keep draining.
                let _ = tx.send(line);
            }
        });
        Lines(rx)
    }

    /// The next line that satisfies `pred`, skipping others; panics after [`HANG_GUARD`].
    pub fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.0.recv_timeout(left) {
                Ok(line) if pred(&line) => return line,
                Ok(_) => {}
                Err(_) => panic!("no line with {what}"),
            }
        }
    }
}

/// `iotcore emulator --port 0` in the background, with the port it printed; killed on drop.
pub struct Emulator {
    /// The process.
    pub child: Child,
    /// Its MQTT over TLS port on 127.0.0.1.
    pub port: u16,
    /// What it prints after its first line.
    pub lines: Lines,
}

impl Emulator {
    /// Starts it on `data_dir` and waits for its listening address.
    pub fn start(data_dir: &Path) -> Emulator {
        Emulator::start_with(data_dir, &[])
    }

    /// Like [`Emulator::start`], with more `iotcore emulator` arguments.
    pub fn start_with(data_dir: &Path, args: &[&str]) -> Emulator {
        Emulator::start_on(data_dir, 0, args)
    }

    /// Like [`Emulator::start_with`], on `port` (0: a free one).
    pub fn start_on(data_dir: &Path, port: u16, args: &[&str]) -> Emulator {
        let mut child = Command::new(IOTCORE)
            .args(["emulator", "--port", &port.to_string()])
            .args(args)
            .env("IOTCORE_DATA_DIR", data_dir)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the emulator");
        let stdout = child.stdout.take().expect("stdout");
        let lines = Lines::of(stdout);
        let first = lines.wait_for("the listening address", |l| l.contains("listening"));
        let port = first
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in the emulator's first line: {first:?}"));
        Emulator { child, port, lines }
    }

    /// The port as a command-line argument.
    pub fn port_arg(&self) -> String {
        self.port.to_string()
    }

    /// Sends `signal` (`-INT`, `-TERM`, `-9`) with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self) -> ExitStatus {
        self.child.wait().expect("wait for the emulator")
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// mosquitto_pub / mosquitto_sub arguments for thing `name`'s files in `dir`.
pub fn tls_args(dir: &Path, name: &str, port: u16) -> Vec<String> {
    let file = |f: String| dir.join(f).display().to_string();
    vec![
        "-h".into(),
        "localhost".into(),
        "-p".into(),
        port.to_string(),
        "-i".into(),
        name.into(),
        "--cafile".into(),
        file("root-ca.pem".into()),
        "--cert".into(),
        file(format!("{name}.cert.pem")),
        "--key".into(),
        file(format!("{name}.private.key")),
    ]
}
