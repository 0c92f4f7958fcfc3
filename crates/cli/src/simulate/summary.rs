//! The final report: a table on stdout and the same figures as JSON.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use super::histogram::Histogram;
use super::progress::millis;
use super::stats::Snapshot;

/// Everything the summary reports besides the counters.
pub struct Context {
    /// Devices asked for.
    pub devices: usize,
    /// "embedded" or `host:port`.
    pub emulator: String,
    /// Whether the emulator ran in this process (then the memory figure is both).
    pub embedded: bool,
    /// Connection rate asked for, per second.
    pub ramp: f64,
    /// Telemetry period.
    pub telemetry_every: Duration,
    /// Shadow update period.
    pub shadow_every: Duration,
    /// How long the run lasted, from the first connection to the stop.
    pub elapsed: Duration,
    /// Whether Ctrl-C ended it early.
    pub interrupted: bool,
    /// How long making the things and certificates (or reading them) took.
    pub provisioning: Duration,
    /// Peak resident memory of this process, in KiB, when known.
    pub peak_rss_kib: Option<u64>,
}

/// The summary as JSON.
pub fn to_json(context: &Context, snapshot: &Snapshot) -> Value {
    let connected = snapshot.latencies.connect.count();
    json!({
        "emulator": context.emulator,
        "devices": context.devices,
        "ramp_per_s": context.ramp,
        "telemetry_every_s": context.telemetry_every.as_secs_f64(),
        "shadow_every_s": context.shadow_every.as_secs_f64(),
        "duration_s": context.elapsed.as_secs_f64(),
        "interrupted": context.interrupted,
        "provisioning_s": context.provisioning.as_secs_f64(),
        "connected": connected,
        "connect_failures": snapshot.connect_failures,
        "not_connected": not_connected(context.devices, snapshot),
        "telemetry_acked": snapshot.telemetry_acked,
        "shadow_accepted": snapshot.shadow_accepted,
        "messages": snapshot.messages(),
        "msgs_per_s": rate(snapshot.messages(), context.elapsed),
        "latency_ms": {
            "connect": latency_json(&snapshot.latencies.connect),
            "telemetry": latency_json(&snapshot.latencies.telemetry),
            "shadow": latency_json(&snapshot.latencies.shadow),
        },
        "error_count": snapshot.error_count(),
        "errors": snapshot.errors.iter().map(|((operation, kind), e)| json!({
            "operation": operation.name(),
            "kind": kind,
            "count": e.count,
            "example": e.example,
        })).collect::<Vec<_>>(),
        "peak_rss_kib": context.peak_rss_kib,
        "peak_rss_covers": rss_scope(context.embedded),
    })
}

/// The summary as a text table.
pub fn to_table(context: &Context, snapshot: &Snapshot) -> String {
    let mut out = String::new();
    let connected = snapshot.latencies.connect.count();
    let line = |out: &mut String, label: &str, value: String| {
        let _ = writeln!(out, "{label:<22}{value}");
    };
    let _ = writeln!(out, "iotcore simulate: summary");
    line(&mut out, "emulator", context.emulator.clone());
    line(
        &mut out,
        "devices",
        format!(
            "{} (ramp {}/s, telemetry every {:?}, shadow every {:?})",
            context.devices, context.ramp, context.telemetry_every, context.shadow_every
        ),
    );
    line(
        &mut out,
        "duration",
        format!(
            "{:.1} s{}",
            context.elapsed.as_secs_f64(),
            if context.interrupted {
                " (stopped by Ctrl-C)"
            } else {
                ""
            }
        ),
    );
    line(
        &mut out,
        "provisioning",
        format!("{:.1} s", context.provisioning.as_secs_f64()),
    );
    line(
        &mut out,
        "connected",
        match not_connected(context.devices, snapshot) {
            0 => format!(
                "{connected}/{} ({} failed)",
                context.devices, snapshot.connect_failures
            ),
            late => format!(
                "{connected}/{} ({} failed, {late} not connected when the run ended)",
                context.devices, snapshot.connect_failures
            ),
        },
    );
    line(
        &mut out,
        "messages",
        format!(
            "{} telemetry acked, {} shadow updates accepted: {:.1} msgs/s",
            snapshot.telemetry_acked,
            snapshot.shadow_accepted,
            rate(snapshot.messages(), context.elapsed)
        ),
    );
    let _ = writeln!(
        out,
        "\n{:<22}{:>8} {:>10} {:>10} {:>10} {:>10}",
        "latency", "count", "p50", "p90", "p99", "max"
    );
    for (name, histogram) in [
        ("connect", &snapshot.latencies.connect),
        ("telemetry → PUBACK", &snapshot.latencies.telemetry),
        ("shadow → accepted", &snapshot.latencies.shadow),
    ] {
        let cell = |latency: Option<Duration>| latency.map_or("-".to_owned(), millis);
        let _ = writeln!(
            out,
            "{name:<22}{:>8} {:>10} {:>10} {:>10} {:>10}",
            histogram.count(),
            cell(histogram.quantile(0.5)),
            cell(histogram.quantile(0.9)),
            cell(histogram.quantile(0.99)),
            cell(histogram.max()),
        );
    }
    let _ = writeln!(out);
    if snapshot.errors.is_empty() {
        line(&mut out, "errors", "none".to_owned());
    } else {
        line(&mut out, "errors", snapshot.error_count().to_string());
        for ((operation, kind), e) in &snapshot.errors {
            let _ = writeln!(
                out,
                "  {:>8} × {} {kind}: {}",
                e.count,
                operation.name(),
                e.example
            );
        }
    }
    line(
        &mut out,
        "peak RSS",
        match context.peak_rss_kib {
            Some(kib) => format!(
                "{:.1} MiB ({})",
                kib as f64 / 1024.0,
                rss_scope(context.embedded)
            ),
            None => "unknown (no /proc/self/status)".to_owned(),
        },
    );
    out
}

/// Devices that neither connected nor failed to: not started, or still
/// connecting, when the run ended.
pub fn not_connected(devices: usize, snapshot: &Snapshot) -> u64 {
    (devices as u64).saturating_sub(snapshot.latencies.connect.count() + snapshot.connect_failures)
}

/// What the peak RSS figure includes.
fn rss_scope(embedded: bool) -> &'static str {
    if embedded {
        "simulator and embedded emulator together, one process"
    } else {
        "simulator process only; measure the emulator's separately"
    }
}

/// Count, percentiles and maximum in milliseconds, `null` when empty.
fn latency_json(histogram: &Histogram) -> Value {
    let ms = |latency: Option<Duration>| latency.map(|l| l.as_secs_f64() * 1000.0);
    json!({
        "count": histogram.count(),
        "p50": ms(histogram.quantile(0.5)),
        "p90": ms(histogram.quantile(0.9)),
        "p99": ms(histogram.quantile(0.99)),
        "max": ms(histogram.max()),
    })
}

fn rate(count: u64, elapsed: Duration) -> f64 {
    if elapsed.is_zero() {
        0.0
    } else {
        count as f64 / elapsed.as_secs_f64()
    }
}

/// This process's peak resident set size (VmHWM), in KiB, on Linux.
pub fn peak_rss_kib() -> Option<u64> {
    proc_status_field("VmHWM:")
}

/// The soft limit on open file descriptors, from /proc/self/limits.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    match line["Max open files".len()..].split_whitespace().next()? {
        "unlimited" => Some(u64::MAX),
        soft => soft.parse().ok(),
    }
}

fn proc_status_field(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_reports_its_memory_and_descriptor_limit() {
        assert!(peak_rss_kib().is_some_and(|kib| kib > 0));
        assert!(open_files_limit().is_some_and(|n| n > 0));
    }
}
