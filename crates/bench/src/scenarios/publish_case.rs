//! The publish cases of the client throughput figures.

use std::time::Duration;

/// QoS 1 publishes kept in flight when pipelining: the SDK's default in-flight
/// limit and AWS IoT Core's limit of unacknowledged QoS 1 publishes per connection.
pub const WINDOW: usize = 100;

/// How a client publishes the messages of a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Up to [`WINDOW`] publishes in flight, the way a device streams telemetry.
    Pipelined,
    /// Each publish awaited before the next.
    Sequential,
}

impl Mode {
    /// The name the Python peer uses.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Pipelined => "pipelined",
            Mode::Sequential => "sequential",
        }
    }
}

/// One row of the table: `count` publishes of `size` bytes at `qos`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Case {
    /// 0 or 1.
    pub qos: u8,
    /// Payload bytes.
    pub size: usize,
    /// Pipelined or sequential.
    pub mode: Mode,
    /// Messages per run.
    pub count: usize,
}

impl Case {
    /// The cases of a full run (`scale` divides the message counts, for a smoke run).
    pub fn all(scale: usize) -> Vec<Case> {
        let case = |qos, size, mode, count| {
            Case {
                qos,
                size,
                mode,
                count,
            }
            .scaled_down(scale)
        };
        vec![
            case(0, 64, Mode::Pipelined, 40_000),
            case(0, 1024, Mode::Pipelined, 40_000),
            case(1, 64, Mode::Pipelined, 20_000),
            case(1, 1024, Mode::Pipelined, 20_000),
            case(1, 64, Mode::Sequential, 2_000),
            case(1, 1024, Mode::Sequential, 2_000),
        ]
    }

    /// The same case with `divisor` times fewer messages (at least one).
    pub fn scaled_down(&self, divisor: usize) -> Case {
        Case {
            count: (self.count / divisor).max(1),
            ..*self
        }
    }

    /// The table's label, e.g. `QoS 1, 1 KB, pipelined (100 in flight)`.
    pub fn label(&self) -> String {
        let size = if self.size >= 1024 && self.size % 1024 == 0 {
            format!("{} KB", self.size / 1024)
        } else {
            format!("{} B", self.size)
        };
        let mode = match self.mode {
            Mode::Pipelined => format!("pipelined ({WINDOW} in flight)"),
            Mode::Sequential => "sequential (await each)".to_owned(),
        };
        format!("QoS {}, {size}, {mode}", self.qos)
    }

    /// Messages per second when the case's messages were delivered in `elapsed`.
    pub fn per_second(&self, elapsed: Duration) -> f64 {
        self.count as f64 / elapsed.as_secs_f64()
    }

    /// The argument that hands this case to the Python peer.
    pub fn python_arg(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.qos,
            self.size,
            self.mode.name(),
            self.count
        )
    }
}
