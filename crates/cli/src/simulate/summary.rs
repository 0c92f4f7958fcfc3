//! The final report: a table on stdout and the same figures as JSON.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::SimulateError;
use super::histogram::Histogram;
use super::progress::millis;
use super::shard::Shard;
use super::stats::Snapshot;
use crate::CliResult;

/// Everything the summary reports besides the counters.
pub struct Context {
    /// Devices this summary covers: a shard's slice, or the whole fleet.
    pub devices: usize,
    /// One process's run (a shard, maybe the whole fleet), or shards merged.
    pub part: Part,
    /// "embedded" or `host:port`.
    pub emulator: String,
    /// Connection rate asked for, per second (merged: the shards' sum).
    pub ramp: f64,
    /// Telemetry period.
    pub telemetry_every: Duration,
    /// Shadow update period.
    pub shadow_every: Duration,
    /// How long the run lasted, from the first connection to the stop.
    pub elapsed: Duration,
    /// When the first connection was attempted.
    pub started_at: OffsetDateTime,
    /// When the run stopped.
    pub ended_at: OffsetDateTime,
    /// Whether Ctrl-C ended it early.
    pub interrupted: bool,
    /// How long making the things and certificates (or reading them) took.
    pub provisioning: Duration,
    /// Peak resident memory, in KiB, when known.
    pub peak_rss_kib: Option<u64>,
    /// What the peak RSS figure includes.
    pub peak_rss_covers: String,
}

/// What a summary covers.
pub enum Part {
    /// One process: shard K/N of the fleet (1/1 when unsharded).
    Shard(ShardInfo),
    /// The summaries of every shard of a fleet, merged.
    Merged {
        /// How many shards.
        shards: u32,
    },
}

/// Which shard of which fleet a process ran, as its JSON summary says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// K and N.
    #[serde(flatten)]
    pub shard: Shard,
    /// The whole fleet's --devices.
    pub fleet_devices: usize,
    /// The slice's first device.
    pub first_thing: String,
    /// The slice's last device.
    pub last_thing: String,
}

/// Prints the summary's table, writes its JSON to `json` if given, and fails
/// unless every device connected and nothing failed.
pub fn report(context: &Context, snapshot: &Snapshot, json: Option<&Path>) -> CliResult {
    print!("{}", to_table(context, snapshot));
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&to_json(context, snapshot))?;
        std::fs::write(path, text + "\n")
            .map_err(|e| format!("cannot write the JSON summary to {}: {e}", path.display()))?;
    }
    let not_connected = not_connected(context.devices, snapshot);
    if not_connected > 0 || snapshot.error_count() > 0 {
        return Err(SimulateError::NotClean {
            connect_failures: snapshot.connect_failures,
            not_connected,
            ramp_hint: if not_connected > 0 && !context.interrupted {
                " (raise --ramp or --duration)"
            } else {
                ""
            },
            errors: snapshot.error_count(),
        }
        .into());
    }
    Ok(())
}

/// The summary as JSON: the figures, and what `iotcore simulate merge` needs
/// to combine shards (`shard`, the raw `latency_histograms`, the times).
pub fn to_json(context: &Context, snapshot: &Snapshot) -> Value {
    let connected = snapshot.latencies.connect.count();
    let (shard, shards) = match &context.part {
        Part::Shard(info) => (Some(info), 1),
        Part::Merged { shards } => (None, *shards),
    };
    let latencies = &snapshot.latencies;
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
        "peak_rss_covers": context.peak_rss_covers,
        "shard": shard,
        "shards": shards,
        "started_at": rfc3339(context.started_at),
        "ended_at": rfc3339(context.ended_at),
        "latency_histograms": {
            "connect": latencies.connect.to_buckets(),
            "telemetry": latencies.telemetry.to_buckets(),
            "shadow": latencies.shadow.to_buckets(),
        },
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
    match &context.part {
        Part::Shard(info) if info.shard != Shard::WHOLE => line(
            &mut out,
            "shard",
            format!(
                "{} of a fleet of {}: {} … {}",
                info.shard, info.fleet_devices, info.first_thing, info.last_thing
            ),
        ),
        Part::Shard(_) => {}
        Part::Merged { shards } => line(&mut out, "shards", format!("{shards}, merged")),
    }
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
                context.peak_rss_covers
            ),
            None => "unknown (not measured: no /proc/self/status)".to_owned(),
        },
    );
    out
}

/// Devices that neither connected nor failed to: not started, or still
/// connecting, when the run ended.
pub fn not_connected(devices: usize, snapshot: &Snapshot) -> u64 {
    (devices as u64).saturating_sub(snapshot.latencies.connect.count() + snapshot.connect_failures)
}

/// What a process's peak RSS figure includes.
pub fn rss_scope(embedded: bool) -> &'static str {
    if embedded {
        "simulator and embedded emulator together, one process"
    } else {
        "simulator process only; measure the emulator's separately"
    }
}

/// A time as RFC 3339, UTC, to the millisecond's precision the clock gives.
fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
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

fn proc_status_field(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_reports_its_memory() {
        assert!(peak_rss_kib().is_some_and(|kib| kib > 0));
    }
}
