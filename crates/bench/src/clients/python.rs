//! The Python peers, each run as a subprocess of `tests/peers/bench_publish.py`: AWS's
//! IoT Device SDK v2 for Python (awsiotsdk on awscrt) and paho-mqtt, from the
//! workspace's `.venv` (made by `scripts/setup-peers`).
//!
//! A subprocess connects once (MQTT 3.1.1, clean session, the identity's files), warms
//! up, runs every case it is given and reports one JSON line per case; see the
//! script's docstring for the protocol.

use std::time::Duration;

use iotcore_test_support::{PeerOutput, find_python, run_peer_with_timeout};
use serde_json::Value;

use crate::error::{BenchError, BenchResult};
use crate::harness::{AccessKey, Identity};
use crate::scenarios::publish_case::{Case, WINDOW};

/// The peer script in `tests/peers/`.
const SCRIPT: &str = "bench_publish.py";
/// The most one subprocess may take.
const PEER_TIMEOUT: Duration = Duration::from_secs(150);

/// A Python MQTT client the script drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PythonClient {
    /// AWS's IoT Device SDK v2 for Python: awsiotsdk's connection builder on awscrt.
    Awscrt,
    /// paho-mqtt's `Client` with its network thread.
    Paho,
}

impl PythonClient {
    /// Both clients.
    pub const ALL: [PythonClient; 2] = [PythonClient::Awscrt, PythonClient::Paho];

    /// The script's `--client` value, also used in thing names.
    pub fn name(self) -> &'static str {
        match self {
            PythonClient::Awscrt => "awscrt",
            PythonClient::Paho => "paho",
        }
    }

    /// The package a figure names it by: the start of its [`Versions::label`], what a
    /// [`Target::Times`](crate::report::Target::Times) names, and its name when it
    /// could not run.
    pub fn package(self) -> &'static str {
        match self {
            PythonClient::Awscrt => "awsiotsdk",
            PythonClient::Paho => "paho-mqtt",
        }
    }
}

/// Why the Python peers cannot run (their interpreter is missing), if they cannot.
pub fn missing() -> Option<String> {
    find_python().err().map(|path| {
        format!(
            "Python peers not installed ({} does not exist): run scripts/setup-peers",
            path.display()
        )
    })
}

/// The versions a peer reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versions {
    /// `(package, version)`, the client's package first (`awsiotsdk`, then `awscrt`).
    pub packages: Vec<(String, String)>,
    /// The interpreter's version, e.g. `3.11.7`.
    pub python: String,
}

impl Versions {
    /// `awsiotsdk 1.31.0 (awscrt 0.36.1)`, `paho-mqtt 2.2.0`.
    pub fn label(&self) -> String {
        let named = |(package, version): &(String, String)| format!("{package} {version}");
        let mut packages = self.packages.iter().map(named);
        let first = packages.next().unwrap_or_default();
        let rest: Vec<String> = packages.collect();
        if rest.is_empty() {
            first
        } else {
            format!("{first} ({})", rest.join(", "))
        }
    }

    /// `Python 3.11.7`.
    pub fn interpreter(&self) -> String {
        format!("Python {}", self.python)
    }

    /// Reads `{"packages": [["awsiotsdk", "1.31.0"], …], "python": "3.11.7"}`.
    fn from_event(event: &Value) -> Result<Versions, String> {
        let text = |value: &Value| value.as_str().map(str::to_owned);
        let packages = event["packages"]
            .as_array()
            .filter(|p| !p.is_empty())
            .and_then(|packages| {
                packages
                    .iter()
                    .map(|pair| Some((text(&pair[0])?, text(&pair[1])?)))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| format!("no package versions in {event}"))?;
        let python =
            text(&event["python"]).ok_or_else(|| format!("no Python version in {event}"))?;
        Ok(Versions { packages, python })
    }
}

/// How a Python peer connects.
#[derive(Clone, Copy, Debug)]
pub enum Door<'a> {
    /// MQTT over mutual TLS with the identity's certificate.
    MutualTls,
    /// MQTT over WebSocket signed with SigV4 with this key (awscrt only).
    WebSocket(&'a AccessKey),
}

/// What one subprocess measured.
#[derive(Clone, Debug)]
pub struct Round {
    /// The versions it reported.
    pub versions: Versions,
    /// The time each case took until the broker had every message, in the order of the cases.
    pub elapsed: Vec<Duration>,
}

/// Runs every case once in a new subprocess of `client`, connected once through
/// `door` for all of them after publishing `warm_up` QoS 1 messages (not measured).
pub async fn round(
    client: PythonClient,
    port: u16,
    identity: &Identity,
    door: Door<'_>,
    cases: &[Case],
    warm_up: usize,
) -> BenchResult<Round> {
    let mut args = connection_args(client, port, identity);
    if let Door::WebSocket(key) = door {
        args.extend(key.peer_args());
    }
    args.extend(["--window".into(), WINDOW.to_string()]);
    args.extend(["--warm-up".into(), warm_up.to_string()]);
    for case in cases {
        args.extend(["--case".into(), case.python_arg()]);
    }
    let events = run(client, &args).await?;
    let step = || format!("reading what the {} peer measured", client.package());
    let versions = versions(&events).map_err(|why| BenchError::new(step(), why))?;
    let results: Vec<&Value> = events.iter().filter(|e| e["event"] == "result").collect();
    let elapsed = elapsed(&results, cases).map_err(|why| BenchError::new(step(), why))?;
    Ok(Round { versions, elapsed })
}

/// The resident memory of a Python peer process with one idle connected client.
#[derive(Clone, Debug)]
pub struct IdleRss {
    /// The versions it reported.
    pub versions: Versions,
    /// VmRSS once the client's library is imported, before connecting, in KiB.
    pub before_kb: u64,
    /// VmRSS after connecting and idling, in KiB.
    pub after_kb: u64,
}

impl IdleRss {
    /// What connecting the client added, in KiB (negative if the process shrank).
    pub fn delta_kb(&self) -> i64 {
        self.after_kb as i64 - self.before_kb as i64
    }
}

/// Starts a subprocess of `client`, connects it, lets it idle for `idle` and returns
/// its resident memory before and after connecting.
pub async fn idle_rss(
    client: PythonClient,
    port: u16,
    identity: &Identity,
    idle: Duration,
) -> BenchResult<IdleRss> {
    let mut args = connection_args(client, port, identity);
    args.extend([
        "--rss".into(),
        "--idle".into(),
        idle.as_secs_f64().to_string(),
    ]);
    let events = run(client, &args).await?;
    let read = || -> Result<IdleRss, String> {
        let event = events
            .iter()
            .find(|e| e["event"] == "rss")
            .ok_or("no rss event")?;
        let field = |name: &str| {
            event[name]
                .as_u64()
                .ok_or_else(|| format!("no {name} in {event}"))
        };
        Ok(IdleRss {
            versions: versions(&events)?,
            before_kb: field("before_kb")?,
            after_kb: field("after_kb")?,
        })
    };
    read().map_err(|why| {
        BenchError::new(
            format!("reading the {} peer's memory", client.package()),
            why,
        )
    })
}

fn connection_args(client: PythonClient, port: u16, identity: &Identity) -> Vec<String> {
    let mut args = vec![
        "--client".into(),
        client.name().into(),
        "--port".into(),
        port.to_string(),
        "--topic".into(),
        identity.topic(),
    ];
    args.extend(identity.peer_args());
    args
}

/// Runs the script to completion and returns its events, or what it printed if it failed.
async fn run(client: PythonClient, args: &[String]) -> BenchResult<Vec<Value>> {
    let step = format!("running the {} peer ({SCRIPT})", client.package());
    if let Some(why) = missing() {
        return Err(BenchError::new(step, why));
    }
    let output = run_peer_with_timeout(SCRIPT, args, PEER_TIMEOUT).await;
    if output.success() {
        return Ok(output.events());
    }
    tracing::warn!(peer = client.package(), %output, "a Python peer failed");
    Err(BenchError::new(step, failure(&output)))
}

/// Why a peer failed, in one line: its error event, else how it ended and the last
/// line of its stderr.
fn failure(output: &PeerOutput) -> String {
    let reported = output
        .events_named("error")
        .first()
        .and_then(|e| e["message"].as_str().map(str::to_owned));
    reported
        .unwrap_or_else(|| {
            let ended = if output.timed_out {
                format!("killed after {} s", PEER_TIMEOUT.as_secs())
            } else {
                output
                    .status
                    .map_or_else(|| "exit status unknown".to_owned(), |s| s.to_string())
            };
            let last = output.stderr.lines().rev().find(|l| !l.trim().is_empty());
            format!("{ended}; stderr: {}", last.unwrap_or("(empty)").trim())
        })
        .replace('\n', " ")
}

fn versions(events: &[Value]) -> Result<Versions, String> {
    let event = events
        .iter()
        .find(|e| e["event"] == "versions")
        .ok_or("no versions event")?;
    Versions::from_event(event)
}

/// The seconds of each `result` event, which must report `cases` in order.
fn elapsed(results: &[&Value], cases: &[Case]) -> Result<Vec<Duration>, String> {
    if results.len() != cases.len() {
        return Err(format!(
            "{} results for {} cases",
            results.len(),
            cases.len()
        ));
    }
    cases
        .iter()
        .zip(results)
        .map(|(case, result)| {
            let same = result["qos"] == case.qos
                && result["size"] == case.size
                && result["mode"] == case.mode.name()
                && result["messages"] == case.count;
            if !same {
                return Err(format!("{result} is not case {}", case.python_arg()));
            }
            result["seconds"]
                .as_f64()
                .filter(|s| s.is_finite() && *s > 0.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| format!("no time in {result}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::scenarios::publish_case::Mode;

    fn versions_of(event: Value) -> Result<Versions, String> {
        Versions::from_event(&event)
    }

    #[test]
    fn the_label_names_the_client_package_first_and_the_others_in_brackets() {
        let awscrt = versions_of(json!({
            "packages": [["awsiotsdk", "1.31.0"], ["awscrt", "0.36.1"]],
            "python": "3.11.7",
        }))
        .unwrap();
        assert_eq!(awscrt.label(), "awsiotsdk 1.31.0 (awscrt 0.36.1)");
        assert_eq!(awscrt.interpreter(), "Python 3.11.7");
        let paho = versions_of(json!({"packages": [["paho-mqtt", "2.2.0"]], "python": "3.12.1"}));
        assert_eq!(paho.unwrap().label(), "paho-mqtt 2.2.0");
    }

    #[test]
    fn versions_without_packages_or_python_are_an_error() {
        assert!(versions_of(json!({"packages": [], "python": "3.11.7"})).is_err());
        assert!(versions_of(json!({"packages": [["paho-mqtt", 2]], "python": "3"})).is_err());
        assert!(versions_of(json!({"packages": [["paho-mqtt", "2.2.0"]]})).is_err());
    }

    fn result(qos: u8, size: usize, mode: &str, messages: usize, seconds: f64) -> Value {
        json!({"event": "result", "qos": qos, "size": size, "mode": mode,
               "messages": messages, "seconds": seconds})
    }

    #[test]
    fn results_are_read_in_the_order_of_the_cases() {
        let cases = Case::all(1);
        let results: Vec<Value> = cases
            .iter()
            .enumerate()
            .map(|(i, c)| result(c.qos, c.size, c.mode.name(), c.count, 1.0 + i as f64))
            .collect();
        let results: Vec<&Value> = results.iter().collect();
        let elapsed = elapsed(&results, &cases).unwrap();
        assert_eq!(elapsed.len(), cases.len());
        assert_eq!(elapsed[2], Duration::from_secs(3));
    }

    #[test]
    fn a_missing_swapped_or_untimed_result_is_an_error() {
        let case = |qos, mode| Case {
            qos,
            size: 64,
            mode,
            count: 10,
        };
        let cases = [case(0, Mode::Pipelined), case(1, Mode::Sequential)];
        let first = result(0, 64, "pipelined", 10, 0.5);
        let second = result(1, 64, "sequential", 10, 0.5);
        assert!(elapsed(&[&first], &cases).is_err());
        assert!(elapsed(&[&second, &first], &cases).is_err());
        let untimed = result(1, 64, "sequential", 10, 0.0);
        assert!(elapsed(&[&first, &untimed], &cases).is_err());
        let fewer = result(1, 64, "sequential", 9, 0.5);
        assert!(elapsed(&[&first, &fewer], &cases).is_err());
        assert!(elapsed(&[&first, &second], &cases).is_ok());
    }
}
