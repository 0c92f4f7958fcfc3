//! The live progress line on stderr, once a second: rewritten in place on a
//! terminal, one plain line per second otherwise (logs, CI).

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::histogram::Histogram;
use super::stats::Stats;

/// Prints progress every second until `stop` turns true.
pub async fn run(
    stats: Arc<Stats>,
    devices: usize,
    started: Instant,
    mut stop: watch::Receiver<bool>,
) {
    let terminal = std::io::stderr().is_terminal();
    let mut ticks = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let mut last_messages = 0;
    let mut last_time = Instant::now();
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|stopped| *stopped) => break,
            _ = ticks.tick() => {}
        }
        let snapshot = stats.snapshot();
        let now = Instant::now();
        let messages = snapshot.messages();
        let rate = (messages - last_messages) as f64 / (now - last_time).as_secs_f64();
        (last_messages, last_time) = (messages, now);
        let line = format!(
            "{:>5.0}s  connected {}/{devices}  msgs/s {rate:.0}  errors {}  telemetry {}  shadow {}",
            started.elapsed().as_secs_f64(),
            snapshot.connected,
            snapshot.error_count(),
            percentiles(&snapshot.latencies.telemetry),
            percentiles(&snapshot.latencies.shadow),
        );
        let mut stderr = std::io::stderr().lock();
        // Progress is best effort: a closed stderr must not stop the run.
        let _ = if terminal {
            write!(stderr, "\r\x1b[2K{line}")
        } else {
            writeln!(stderr, "{line}")
        };
        let _ = stderr.flush();
    }
    if terminal {
        let _ = writeln!(std::io::stderr());
    }
}

/// `p50 1.2ms p99 4.0ms`, or `-` before the first sample.
fn percentiles(histogram: &Histogram) -> String {
    match (histogram.quantile(0.5), histogram.quantile(0.99)) {
        (Some(p50), Some(p99)) => format!("p50 {} p99 {}", millis(p50), millis(p99)),
        _ => "-".to_owned(),
    }
}

/// A latency in milliseconds, with more decimals when small.
pub fn millis(latency: Duration) -> String {
    let ms = latency.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2}ms")
    } else {
        format!("{ms:.0}ms")
    }
}
