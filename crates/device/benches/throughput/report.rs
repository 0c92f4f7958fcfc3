//! The printed report: where and how the run happened, the throughput table, memory.

use std::fmt::Write as _;
use std::process::Command;

use crate::cases::{Peer, Results};
use crate::memory::{DemoRss, Rss};

/// The command that produces a report with `args` given to the bench binary.
pub fn command(args: &[String]) -> String {
    let mut command =
        "cargo build --release -p iotcore-cli && cargo bench -p iotcore --bench throughput"
            .to_owned();
    let args: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--bench")
        .collect();
    if !args.is_empty() {
        command.push_str(" -- ");
        command.push_str(&args.join(" "));
    }
    command
}

/// Where the run happened.
pub struct Environment {
    /// `date -u`.
    pub date: String,
    /// CPU model and logical cores.
    pub machine: String,
    /// `/proc/loadavg` (1, 5, 15 min) at the start.
    pub load_at_start: String,
    /// `rustc --version`.
    pub rustc: String,
    /// rumqttc's version in Cargo.lock.
    pub rumqttc: String,
}

impl Environment {
    /// Reads the date, machine, load, toolchain and rumqttc version.
    pub fn capture() -> Environment {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        Environment {
            date: command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            machine: format!("{cpu}, {cores} cores, Linux {}", kernel.trim()),
            load_at_start: load_average(),
            rustc: command_output("rustc", &["--version"]),
            rumqttc: locked_version("rumqttc").unwrap_or_else(|| "?".into()),
        }
    }
}

/// `/proc/loadavg`'s three averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "?".into())
}

/// The version of `package` in the workspace's Cargo.lock.
fn locked_version(package: &str) -> Option<String> {
    let lock =
        std::fs::read_to_string(iotcore_test_support::workspace_root().join("Cargo.lock")).ok()?;
    let name = format!("name = \"{package}\"");
    let mut lines = lock.lines().skip_while(|l| *l != name);
    lines.next()?;
    let version = lines.next()?.strip_prefix("version = \"")?;
    Some(version.trim_end_matches('"').to_owned())
}

/// Everything the run measured.
pub struct Report<'a> {
    /// Where.
    pub environment: &'a Environment,
    /// The command that produced the report.
    pub command: String,
    /// The tokio runtime the clients and the emulator ran on.
    pub runtime: String,
    /// `/proc/loadavg` at the end.
    pub load_at_end: String,
    /// Runs per case.
    pub runs: usize,
    /// The Python peer's versions.
    pub python_versions: &'a str,
    /// Throughput.
    pub results: &'a Results,
    /// Idle client memory: iotcore, rumqttc, Python.
    pub idle: [Result<Rss, String>; 3],
    /// `iotcore demo`.
    pub demo: Result<DemoRss, String>,
}

impl Report<'_> {
    /// The report as the Markdown section of BENCHMARKS.md.
    pub fn markdown(&self) -> String {
        let env = self.environment;
        let mut out = String::new();
        let _ = writeln!(out, "## Device SDK\n");
        let _ = writeln!(out, "- Command: `{}`", self.command);
        let _ = writeln!(out, "- Date: {}", env.date);
        let _ = writeln!(out, "- Machine: {}", env.machine);
        let _ = writeln!(
            out,
            "- Load average (1/5/15 min): {} at the start, {} at the end",
            env.load_at_start, self.load_at_end
        );
        let _ = writeln!(out, "- Toolchain: {}, release profile", env.rustc);
        let _ = writeln!(out, "- Runtime: {}", self.runtime);
        let _ = writeln!(
            out,
            "- Peers: rumqttc {} (same process and tokio runtime; rustls 0.23 with aws-lc-rs, \
             same client certificate); AWS IoT Device SDK v2 for Python: {} (subprocess)",
            env.rumqttc, self.python_versions
        );
        let _ = writeln!(out, "\n### Publish throughput\n");
        let _ = writeln!(
            out,
            "Messages per second, median of {} run{} (in brackets: slowest–fastest run).\n",
            self.runs,
            if self.runs == 1 { "" } else { "s" }
        );
        let _ = writeln!(
            out,
            "| case | msgs | iotcore | rumqttc | Python SDK v2 | iotcore / rumqttc | iotcore / Python |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
        for (index, case) in self.results.cases().iter().enumerate() {
            let mut row = format!("| {} | {} |", case.label(), thousands(case.count as f64));
            for peer in Peer::ALL {
                let runs = self.results.runs(index, peer);
                let cell = match self.results.median(index, peer) {
                    Some(median) => format!(
                        " {} ({}–{}) |",
                        thousands(median),
                        thousands(runs.iter().copied().fold(f64::INFINITY, f64::min)),
                        thousands(runs.iter().copied().fold(0.0, f64::max)),
                    ),
                    None => " – |".to_owned(),
                };
                row.push_str(&cell);
            }
            let ours = self.results.median(index, Peer::Iotcore);
            for peer in [Peer::Rumqttc, Peer::Python] {
                let cell = match (ours, self.results.median(index, peer)) {
                    (Some(ours), Some(theirs)) => format!(" {:.2}× |", ours / theirs),
                    _ => " – |".to_owned(),
                };
                row.push_str(&cell);
            }
            let _ = writeln!(out, "{row}");
        }
        let _ = writeln!(out, "\n### Resident memory\n");
        let _ = writeln!(
            out,
            "| process | VmRSS before connecting | VmRSS connected, idle {} s | the client's share |",
            crate::memory::IDLE.as_secs()
        );
        let _ = writeln!(out, "|---|---:|---:|---:|");
        let names = [
            "iotcore `Client` (separate process, current-thread runtime)",
            "rumqttc `AsyncClient` + `EventLoop` (same)",
            "AWS IoT Device SDK v2 for Python (`python3` process)",
        ];
        for (name, rss) in names.iter().zip(&self.idle) {
            let _ = match rss {
                Ok(rss) => writeln!(
                    out,
                    "| {name} | {} KiB | {} KiB | {}{} KiB |",
                    thousands(rss.before_kb as f64),
                    thousands(rss.after_kb as f64),
                    if rss.delta_kb() < 0 { "−" } else { "+" },
                    thousands(rss.delta_kb().unsigned_abs() as f64)
                ),
                Err(why) => writeln!(out, "| {name} | not measured: {why} | | |"),
            };
        }
        let _ = match &self.demo {
            Ok(demo) => writeln!(
                out,
                "\n`iotcore demo` (`/usr/bin/time -v {} demo`, built {} min before the run): \
                 maximum resident set size {} KiB.",
                demo.binary.display(),
                demo.age.as_secs() / 60,
                thousands(demo.max_rss_kb as f64)
            ),
            Err(why) => writeln!(out, "\n`iotcore demo`: not measured: {why}"),
        };
        out
    }
}

/// `1234567.8` → `1,234,568`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}
