//! Client throughput: publishes per second of one client over mutual TLS to the
//! emulator, for each [`Case`], the iotcore SDK against the other clients: rumqttc
//! (same process), AWS's IoT Device SDK v2 for Python (awscrt) and paho-mqtt (each a
//! subprocess, see [`python`]).
//!
//! Each client publishes to its own topic that nobody subscribes to, so the figures
//! measure the publish path (client, TLS, broker ingest) alone. QoS 1 "delivered"
//! means acknowledged (PUBACK); QoS 0 "delivered" means read by the broker: the
//! timing ends with the PUBACK of one more QoS 1 publish (not counted). The
//! clients take turns, never two at once, alternating who goes first. In each run a
//! Python client is a new process, connected once for all cases and warmed up first.

use std::time::Duration;

use crate::clients::python::{self, PythonClient, Versions};
use crate::clients::{iotcore, rumqttc::Rumqttc};
use crate::error::{BenchError, BenchResult};
use crate::harness::Identity;
use crate::report::{Better, Figure, Group, Measurement, Target};
use crate::scenarios::publish_case::{Case, Mode};
use crate::suite::Suite;

/// Warm-up before the first run: each case once with this many times fewer messages.
const WARM_UP_SCALE: usize = 10;
/// QoS 1 messages a Python process publishes before its cases (divided by [`Suite::scale`]).
const PYTHON_WARM_UP: usize = 2_000;

/// Runs every case [`Suite::runs`] times per client.
pub async fn run(suite: &Suite) -> BenchResult<Vec<Figure>> {
    let cases = Case::all(suite.scale());
    let port = suite.emulator().port();
    let ours = suite.identity("bench-tp-iotcore")?;
    let theirs = suite.identity("bench-tp-rumqttc")?;
    let mut pythons = Vec::new();
    for client in PythonClient::ALL {
        pythons.push(PythonPeer::new(suite, client)?);
    }
    let client = iotcore::connect(port, &ours).await?;
    let rumqttc = Rumqttc::connect(port, &theirs).await?;
    let (our_topic, their_topic) = (ours.topic(), theirs.topic());

    suite.progress("client throughput: warming up");
    for case in &cases {
        let case = case.scaled_down(WARM_UP_SCALE);
        iotcore::publish(&client, &our_topic, &case).await?;
        rumqttc.publish(&their_topic, &case).await?;
    }
    let mut rates: Vec<[Vec<f64>; 2]> = cases.iter().map(|_| Default::default()).collect();
    for round in 0..suite.runs() {
        suite.progress(&format!(
            "client throughput: run {} of {}",
            round + 1,
            suite.runs()
        ));
        for (case, rates) in cases.iter().zip(&mut rates) {
            let per_second = |elapsed| rate(case, elapsed);
            if round % 2 == 0 {
                rates[0].push(per_second(
                    iotcore::publish(&client, &our_topic, case).await?,
                ));
                rates[1].push(per_second(rumqttc.publish(&their_topic, case).await?));
            } else {
                rates[1].push(per_second(rumqttc.publish(&their_topic, case).await?));
                rates[0].push(per_second(
                    iotcore::publish(&client, &our_topic, case).await?,
                ));
            }
        }
        for turn in 0..pythons.len() {
            let next = (round + turn) % pythons.len();
            pythons[next].run(suite, &cases, round).await;
        }
    }
    client.close().await;
    rumqttc.close().await?;
    for python in &pythons {
        python.note_versions(suite);
    }

    Ok(cases
        .iter()
        .zip(rates)
        .enumerate()
        .map(|(index, (case, [ours, theirs]))| {
            let figure = Figure::new(
                Group::ClientThroughput,
                case.label(),
                "msgs/s",
                Better::Higher,
                Measurement::new("iotcore", ours),
            )
            .peer(Measurement::new(suite.version_of("rumqttc"), theirs));
            let figure = pythons.iter().fold(figure, |figure, python| {
                figure.peer(python.measurement(index))
            });
            match case.mode {
                Mode::Pipelined => figure
                    .target(Target::Times {
                        peer: "rumqttc".into(),
                        times: 1.5,
                    })
                    .target(Target::Times {
                        peer: PythonClient::Awscrt.package().into(),
                        times: 5.0,
                    }),
                Mode::Sequential => figure,
            }
        })
        .collect())
}

/// A Python client's rates so far, or why it has none.
struct PythonPeer {
    client: PythonClient,
    identity: Identity,
    versions: Option<Versions>,
    /// Messages per second, per case, one per run.
    rates: Vec<Vec<f64>>,
    /// Why it is not measured: not installed, or a run failed (its other runs are dropped).
    not_measured: Option<String>,
}

impl PythonPeer {
    fn new(suite: &Suite, client: PythonClient) -> BenchResult<PythonPeer> {
        Ok(PythonPeer {
            client,
            identity: suite.identity(&format!("bench-tp-{}", client.name()))?,
            versions: None,
            rates: Vec::new(),
            not_measured: python::missing(),
        })
    }

    /// Runs every case once in a new process; a failure is reported and ends its runs.
    async fn run(&mut self, suite: &Suite, cases: &[Case], round: usize) {
        if self.not_measured.is_some() {
            return;
        }
        let warm_up = (PYTHON_WARM_UP / suite.scale()).max(1);
        let port = suite.emulator().port();
        match python::round(self.client, port, &self.identity, cases, warm_up).await {
            Ok(measured) => {
                self.rates.resize(cases.len(), Vec::new());
                for ((rates, case), elapsed) in
                    self.rates.iter_mut().zip(cases).zip(measured.elapsed)
                {
                    rates.push(rate(case, elapsed));
                }
                self.versions = Some(measured.versions);
            }
            Err(error) => self.fail(suite, round, &error),
        }
    }

    fn fail(&mut self, suite: &Suite, round: usize, error: &BenchError) {
        let why = format!("failed in run {}: {error}", round + 1);
        suite.progress(&format!(
            "client throughput: {} {why}",
            self.client.package()
        ));
        self.rates.clear();
        self.not_measured = Some(why.lines().collect::<Vec<_>>().join(" "));
    }

    /// Notes the versions it reported for the report's environment.
    fn note_versions(&self, suite: &Suite) {
        if let Some(versions) = &self.versions {
            suite.note_peer(&versions.label());
            suite.note_peer(&versions.interpreter());
        }
    }

    /// Its runs of case `index`, named by the versions it reported.
    fn measurement(&self, index: usize) -> Measurement {
        let who = self
            .versions
            .as_ref()
            .map_or_else(|| self.client.package().to_owned(), Versions::label);
        match &self.not_measured {
            Some(why) => Measurement::skipped(who, why.clone()),
            None => Measurement::new(who, self.rates.get(index).cloned().unwrap_or_default()),
        }
    }
}

/// Messages per second of `case` delivered in `elapsed`.
fn rate(case: &Case, elapsed: Duration) -> f64 {
    case.count as f64 / elapsed.as_secs_f64()
}
