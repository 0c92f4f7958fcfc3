//! What a run measured: figures, each with its subject, its peers and its target,
//! and where the run happened. Serialized as `bench/results/<date>.json`.

use serde::Serialize;

use crate::stats::median;

/// The six parts of the suite, in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Group {
    /// Publishes per second of one client over mTLS.
    ClientThroughput,
    /// Messages per second through the broker: fan-in and fan-out.
    BrokerThroughput,
    /// Publish → receive and shadow update → accepted.
    Latency,
    /// mTLS handshakes + CONNECT per second.
    ConnectCost,
    /// MQTT over WebSocket signed with SigV4 against mutual TLS: throughput and
    /// connect cost.
    WebSocket,
    /// Memory, binary size and idle CPU.
    Footprint,
}

impl Group {
    /// Every group, in report order.
    pub const ALL: [Group; 6] = [
        Group::ClientThroughput,
        Group::BrokerThroughput,
        Group::Latency,
        Group::ConnectCost,
        Group::WebSocket,
        Group::Footprint,
    ];

    /// The name used on the command line (`--only client-throughput`) and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Group::ClientThroughput => "client-throughput",
            Group::BrokerThroughput => "broker-throughput",
            Group::Latency => "latency",
            Group::ConnectCost => "connect-cost",
            Group::WebSocket => "websocket",
            Group::Footprint => "footprint",
        }
    }

    /// The heading in the Markdown report.
    pub fn title(self) -> &'static str {
        match self {
            Group::ClientThroughput => "Client throughput",
            Group::BrokerThroughput => "Broker throughput",
            Group::Latency => "Latency",
            Group::ConnectCost => "Connect cost",
            Group::WebSocket => "MQTT over WebSocket with SigV4",
            Group::Footprint => "Footprint",
        }
    }
}

/// Which way a figure improves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Better {
    /// Rates: more is better.
    Higher,
    /// Times, memory, sizes: less is better.
    Lower,
}

/// One contender's runs of one figure.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Measurement {
    /// Who was measured: `iotcore`, `rumqttc`, `Mosquitto 2.0.21`, …
    pub who: String,
    /// The value of each run, in the figure's unit.
    pub runs: Vec<f64>,
    /// Why it was not measured (a peer not installed), when `runs` is empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl Measurement {
    /// A contender measured once per run.
    pub fn new(who: impl Into<String>, runs: Vec<f64>) -> Measurement {
        Measurement {
            who: who.into(),
            runs,
            skipped: None,
        }
    }

    /// A contender that could not be measured, and why.
    pub fn skipped(who: impl Into<String>, why: impl Into<String>) -> Measurement {
        Measurement {
            who: who.into(),
            runs: Vec::new(),
            skipped: Some(why.into()),
        }
    }

    /// The median of the runs, if any.
    pub fn median(&self) -> Option<f64> {
        median(&self.runs)
    }
}

/// What a figure should reach.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Target {
    /// At least `times` better than the peer named `peer` (ratio as in [`Figure::ratio`]).
    Times {
        /// The peer's `who`, or its prefix (`Mosquitto` matches `Mosquitto 2.0.21`).
        peer: String,
        /// The least ratio.
        times: f64,
    },
    /// The subject's median below this value, in the figure's unit.
    Below {
        /// The bound.
        value: f64,
    },
}

/// One row of the report: the subject's runs, the peers' runs in the same run, a target.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Figure {
    /// Its part of the suite.
    pub group: Group,
    /// What was measured, e.g. `QoS 1, 64 B, pipelined`.
    pub name: String,
    /// The unit of every value, e.g. `msgs/s`, `ms`, `KiB`.
    pub unit: String,
    /// Which way it improves.
    pub better: Better,
    /// What we build: the iotcore SDK or the emulator.
    pub subject: Measurement,
    /// What a user would use instead, measured in the same run.
    pub peers: Vec<Measurement>,
    /// What the subject should reach, if the issue sets a target.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Target>,
    /// How it was measured, in a sentence (shown under the table).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Figure {
    /// A figure of `group` with no peers and no target yet.
    pub fn new(
        group: Group,
        name: impl Into<String>,
        unit: impl Into<String>,
        better: Better,
        subject: Measurement,
    ) -> Figure {
        Figure {
            group,
            name: name.into(),
            unit: unit.into(),
            better,
            subject,
            peers: Vec::new(),
            targets: Vec::new(),
            note: None,
        }
    }

    /// Adds a peer measured in the same run.
    pub fn peer(mut self, peer: Measurement) -> Figure {
        self.peers.push(peer);
        self
    }

    /// Adds a target.
    pub fn target(mut self, target: Target) -> Figure {
        self.targets.push(target);
        self
    }

    /// Sets the note.
    pub fn note(mut self, note: impl Into<String>) -> Figure {
        self.note = Some(note.into());
        self
    }

    /// How many times better the subject is than `peer` (medians): subject / peer
    /// for rates, peer / subject for times and sizes. Above 1 means we win.
    pub fn ratio(&self, peer: &Measurement) -> Option<f64> {
        let (ours, theirs) = (self.subject.median()?, peer.median()?);
        let ratio = match self.better {
            Better::Higher => ours / theirs,
            Better::Lower => theirs / ours,
        };
        ratio.is_finite().then_some(ratio)
    }

    /// The peer a target names (by `who` prefix).
    pub fn find_peer(&self, name: &str) -> Option<&Measurement> {
        self.peers.iter().find(|p| p.who.starts_with(name))
    }

    /// Whether `target` is met; `None` when either side was not measured.
    pub fn met(&self, target: &Target) -> Option<bool> {
        match target {
            Target::Times { peer, times } => Some(self.ratio(self.find_peer(peer)?)? >= *times),
            Target::Below { value } => Some(self.subject.median()? < *value),
        }
    }
}

/// Where and how the suite ran.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Environment {
    /// UTC date and time of the start, `YYYY-MM-DD HH:MM UTC`.
    pub date: String,
    /// CPU model, logical cores and kernel.
    pub machine: String,
    /// `/proc/loadavg` at the start.
    pub load_at_start: String,
    /// `/proc/loadavg` at the end.
    pub load_at_end: String,
    /// `rustc --version` of the toolchain on PATH.
    pub rustc: String,
    /// The source tree's commit (`git describe --always --dirty`), or `?`.
    pub commit: String,
    /// Versions of the peers, e.g. `rumqttc 0.25.1`.
    pub peers: Vec<String>,
}

/// Everything one `iotcore bench` run measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// The command that produced it.
    pub command: String,
    /// Runs per figure (the tables show their median).
    pub runs: usize,
    /// Whether it was a `--quick` smoke run (fewer messages, one run).
    pub quick: bool,
    /// Where it ran.
    pub environment: Environment,
    /// Every figure, grouped in [`Group::ALL`] order.
    pub figures: Vec<Figure>,
    /// Parts of the suite that failed, with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(ours: f64, theirs: f64) -> Figure {
        Figure::new(
            Group::ClientThroughput,
            "QoS 0",
            "msgs/s",
            Better::Higher,
            Measurement::new("iotcore", vec![ours]),
        )
        .peer(Measurement::new("rumqttc 0.25.1", vec![theirs]))
        .target(Target::Times {
            peer: "rumqttc".into(),
            times: 1.5,
        })
    }

    #[test]
    fn ratios_say_how_many_times_better_we_are() {
        let figure = rate(300.0, 100.0);
        assert_eq!(figure.ratio(&figure.peers[0]), Some(3.0));
        assert_eq!(figure.met(&figure.targets[0]), Some(true));
        let slower = rate(100.0, 100.0);
        assert_eq!(slower.met(&slower.targets[0]), Some(false));

        let mut latency = rate(2.0, 1.0);
        latency.better = Better::Lower;
        assert_eq!(latency.ratio(&latency.peers[0]), Some(0.5));
    }

    #[test]
    fn unmeasured_sides_meet_no_target() {
        let mut figure = rate(300.0, 100.0);
        figure.peers[0] = Measurement::skipped("rumqttc", "not installed");
        assert_eq!(figure.met(&figure.targets[0]), None);
        let below = Figure::new(
            Group::Latency,
            "shadow",
            "ms",
            Better::Lower,
            Measurement::new("iotcore", vec![0.8, 0.9, 1.4]),
        )
        .target(Target::Below { value: 1.0 });
        assert_eq!(below.met(&below.targets[0]), Some(true));
    }
}
