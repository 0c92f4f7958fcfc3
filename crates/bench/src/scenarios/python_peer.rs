//! A Python client measured in the publish figures: a new process per run (see
//! [`python`]), its rates per case, or why it has none.

use crate::clients::python::{self, PythonClient, Versions};
use crate::error::BenchError;
use crate::harness::{AccessKey, Identity};
use crate::report::Measurement;
use crate::scenarios::publish_case::Case;
use crate::suite::Suite;

/// QoS 1 messages a Python process publishes before its cases (divided by [`Suite::scale`]).
const PYTHON_WARM_UP: usize = 2_000;

/// A Python client's rates so far, or why it has none.
pub(super) struct PythonPeer {
    client: PythonClient,
    identity: Identity,
    /// `Some`: it connects over WebSocket signed with this key; `None`: over mutual TLS.
    key: Option<AccessKey>,
    versions: Option<Versions>,
    /// Messages per second, per case, one per run.
    rates: Vec<Vec<f64>>,
    /// Why it is not measured: not installed, or a run failed (its other runs are dropped).
    not_measured: Option<String>,
}

impl PythonPeer {
    /// A peer of `client` connecting as `identity`, over WebSocket with `key` if given.
    pub(super) fn new(
        client: PythonClient,
        identity: Identity,
        key: Option<AccessKey>,
    ) -> PythonPeer {
        PythonPeer {
            client,
            identity,
            key,
            versions: None,
            rates: Vec::new(),
            not_measured: python::missing(),
        }
    }

    /// Runs every case once in a new process; a failure is reported and ends its runs.
    pub(super) async fn run(&mut self, suite: &Suite, cases: &[Case], round: usize) {
        if self.not_measured.is_some() {
            return;
        }
        let warm_up = (PYTHON_WARM_UP / suite.scale()).max(1);
        let port = suite.emulator().port();
        let door = match &self.key {
            Some(key) => python::Door::WebSocket(key),
            None => python::Door::MutualTls,
        };
        match python::round(self.client, port, &self.identity, door, cases, warm_up).await {
            Ok(measured) => {
                self.rates.resize(cases.len(), Vec::new());
                for ((rates, case), elapsed) in
                    self.rates.iter_mut().zip(cases).zip(measured.elapsed)
                {
                    rates.push(case.per_second(elapsed));
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
    pub(super) fn note_versions(&self, suite: &Suite) {
        if let Some(versions) = &self.versions {
            suite.note_peer(&versions.label());
            suite.note_peer(&versions.interpreter());
        }
    }

    /// Its runs of case `index`, named by the versions it reported (and
    /// `over WebSocket` when it connects so).
    pub(super) fn measurement(&self, index: usize) -> Measurement {
        let who = self
            .versions
            .as_ref()
            .map_or_else(|| self.client.package().to_owned(), Versions::label);
        let who = match self.key {
            Some(_) => format!("{who} over WebSocket"),
            None => who,
        };
        match &self.not_measured {
            Some(why) => Measurement::skipped(who, why.clone()),
            None => Measurement::new(who, self.rates.get(index).cloned().unwrap_or_default()),
        }
    }
}
