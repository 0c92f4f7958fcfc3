//! What the fleet measured, shared by every device task: counters, latency
//! histograms, and errors counted by kind.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::histogram::Histogram;

/// Which operation a latency or an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// TLS handshake, CONNECT and CONNACK.
    Connect,
    /// A QoS 1 telemetry publish, until its PUBACK.
    Telemetry,
    /// A shadow update, until its `…/update/accepted`.
    Shadow,
    /// An established connection that dropped.
    Connection,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 4] = [
        Operation::Connect,
        Operation::Telemetry,
        Operation::Shadow,
        Operation::Connection,
    ];

    /// The operation [`Operation::name`] names.
    pub fn from_name(name: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|o| o.name() == name)
    }

    /// Its name in the summary.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Connect => "connect",
            Operation::Telemetry => "telemetry",
            Operation::Shadow => "shadow update",
            Operation::Connection => "connection",
        }
    }
}

/// Counters and histograms, updated by every device.
#[derive(Default)]
pub struct Stats {
    connected: AtomicU64,
    connect_failures: AtomicU64,
    telemetry_acked: AtomicU64,
    shadow_accepted: AtomicU64,
    latencies: Mutex<Latencies>,
    errors: Mutex<Errors>,
}

/// Errors by operation and kind: how many, and the message of the first.
pub type Errors = BTreeMap<(Operation, String), ErrorCount>;

/// How often one kind of error happened.
#[derive(Clone, Debug)]
pub struct ErrorCount {
    /// How many times.
    pub count: u64,
    /// The full message of the first one.
    pub example: String,
}

/// One histogram per operation.
#[derive(Default, Clone)]
pub struct Latencies {
    /// Connect latencies.
    pub connect: Histogram,
    /// Publish → PUBACK latencies.
    pub telemetry: Histogram,
    /// Shadow update → accepted latencies.
    pub shadow: Histogram,
}

/// A copy of the counters at one moment.
#[derive(Clone)]
pub struct Snapshot {
    /// Devices connected now.
    pub connected: u64,
    /// Devices whose connection failed.
    pub connect_failures: u64,
    /// Telemetry publishes acknowledged.
    pub telemetry_acked: u64,
    /// Shadow updates accepted.
    pub shadow_accepted: u64,
    /// Latencies so far.
    pub latencies: Latencies,
    /// Errors by operation and kind.
    pub errors: Errors,
}

impl Snapshot {
    /// Every error counted (connection failures included).
    pub fn error_count(&self) -> u64 {
        self.errors.values().map(|e| e.count).sum()
    }

    /// Telemetry and shadow operations completed.
    pub fn messages(&self) -> u64 {
        self.telemetry_acked + self.shadow_accepted
    }
}

impl Stats {
    /// A connected device closed its connection.
    pub fn disconnected(&self) {
        self.connected.fetch_sub(1, Ordering::Relaxed);
    }

    /// An operation succeeded after `latency`.
    pub fn succeeded(&self, operation: Operation, latency: Duration) {
        let mut latencies = self.lock_latencies();
        match operation {
            Operation::Connect => {
                latencies.connect.record(latency);
                self.connected.fetch_add(1, Ordering::Relaxed);
            }
            Operation::Telemetry => {
                latencies.telemetry.record(latency);
                self.telemetry_acked.fetch_add(1, Ordering::Relaxed);
            }
            Operation::Shadow => {
                latencies.shadow.record(latency);
                self.shadow_accepted.fetch_add(1, Ordering::Relaxed);
            }
            Operation::Connection => {}
        }
    }

    /// An operation failed; `kind` is a short label such as "timeout",
    /// `message` the error's full text.
    pub fn failed(&self, operation: Operation, kind: &str, message: impl FnOnce() -> String) {
        if operation == Operation::Connect {
            self.connect_failures.fetch_add(1, Ordering::Relaxed);
        }
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        errors
            .entry((operation, kind.to_owned()))
            .or_insert_with(|| ErrorCount {
                count: 0,
                example: message(),
            })
            .count += 1;
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            connected: self.connected.load(Ordering::Relaxed),
            connect_failures: self.connect_failures.load(Ordering::Relaxed),
            telemetry_acked: self.telemetry_acked.load(Ordering::Relaxed),
            shadow_accepted: self.shadow_accepted.load(Ordering::Relaxed),
            latencies: self.lock_latencies().clone(),
            errors: self
                .errors
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    fn lock_latencies(&self) -> std::sync::MutexGuard<'_, Latencies> {
        // A panicking device task cannot leave a histogram half-updated in a
        // way that matters: keep counting.
        self.latencies.lock().unwrap_or_else(|e| e.into_inner())
    }
}
