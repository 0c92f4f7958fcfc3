//! Where the suite runs: machine, load, toolchain, peer versions.

use std::process::Command;

use crate::report::Environment;

impl Environment {
    /// Reads the date, machine, load and toolchain now; `load_at_end` and `peers`
    /// are filled in at the end of the run.
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
            load_at_end: String::new(),
            rustc: command_output("rustc", &["--version"]),
            commit: command_output(
                "git",
                &[
                    "-C",
                    &iotcore_test_support::workspace_root().to_string_lossy(),
                    "describe",
                    "--always",
                    "--dirty",
                ],
            ),
            peers: Vec::new(),
        }
    }
}

/// `/proc/loadavg`'s three averages (1, 5, 15 min).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// The first line a program prints, or `?`.
pub fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "?".into())
}

/// The version of `package` in the workspace's Cargo.lock (what this binary was built with).
pub fn locked_version(package: &str) -> Option<String> {
    let lock =
        std::fs::read_to_string(iotcore_test_support::workspace_root().join("Cargo.lock")).ok()?;
    let name = format!("name = \"{package}\"");
    let mut lines = lock.lines().skip_while(|l| *l != name);
    lines.next()?;
    let version = lines.next()?.strip_prefix("version = \"")?;
    Some(version.trim_end_matches('"').to_owned())
}
