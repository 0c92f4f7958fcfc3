//! Memory and CPU of a process, from `/proc/<pid>/`.

use crate::error::{BenchResult, Context};

/// A process's resident memory and CPU time at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessUsage {
    /// `VmRSS`, in KiB.
    pub rss_kb: u64,
    /// User + system CPU time, in clock ticks ([`cpu_ticks_per_second`]).
    pub cpu_ticks: u64,
}

impl ProcessUsage {
    /// Reads `/proc/<pid>/status` and `/proc/<pid>/stat` (`pid` 0: this process).
    pub fn of(pid: u32) -> BenchResult<ProcessUsage> {
        let dir = if pid == 0 {
            "/proc/self".to_owned()
        } else {
            format!("/proc/{pid}")
        };
        let status = std::fs::read_to_string(format!("{dir}/status"))
            .during(format!("reading {dir}/status"))?;
        let rss_kb = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or("no VmRSS line")
            .during(format!("reading {dir}/status"))?;
        let stat =
            std::fs::read_to_string(format!("{dir}/stat")).during(format!("reading {dir}/stat"))?;
        // Fields after the command name (which may hold spaces, so split after its ')'):
        // state is field 3; utime and stime are fields 14 and 15.
        let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let tick = |index: usize| fields.get(index - 3).and_then(|f| f.parse::<u64>().ok());
        let cpu_ticks = tick(14)
            .zip(tick(15))
            .map(|(user, system)| user + system)
            .ok_or("no utime/stime fields")
            .during(format!("reading {dir}/stat"))?;
        Ok(ProcessUsage { rss_kb, cpu_ticks })
    }
}

/// Clock ticks per second of `/proc/<pid>/stat`'s CPU times (`getconf CLK_TCK`; 100 on Linux).
pub fn cpu_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let usage = ProcessUsage::of(0).unwrap();
        assert!(usage.rss_kb > 0);
        let other = ProcessUsage::of(std::process::id()).unwrap();
        assert!(other.rss_kb > 0);
        assert!(ProcessUsage::of(u32::MAX).is_err());
    }
}
