//! Shadow round trips of AWS's IoT Device SDK v2 for Python (`awsiot.iotshadow`), run as a
//! subprocess: `tests/peers/bench_shadow.py`.

use std::time::Duration;

use iotcore_test_support::run_peer_with_timeout;
use serde_json::Value;

use crate::clients::python::Versions;
use crate::error::{BenchError, BenchResult};
use crate::harness::Identity;

/// The peer script in `tests/peers/`.
const SCRIPT: &str = "bench_shadow.py";
/// What one run of the peer may take beyond its time budget (interpreter start, connect,
/// warm-up).
const OVERHEAD: Duration = Duration::from_secs(60);

/// One of the SDK's shadow clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShadowClient {
    /// `IotShadowClient`, subscribed once to `update/accepted` and `update/rejected` at
    /// `reply_qos` (AWS's samples use 1), replies matched by a fresh clientToken.
    Classic {
        /// QoS of the reply subscriptions: 0 or 1.
        reply_qos: u8,
    },
    /// `IotShadowClientV2`, the request-response client (`update_shadow(...).result()`).
    RequestResponse,
}

impl ShadowClient {
    /// Every client the suite compares with.
    pub const ALL: [ShadowClient; 3] = [
        ShadowClient::Classic { reply_qos: 1 },
        ShadowClient::Classic { reply_qos: 0 },
        ShadowClient::RequestResponse,
    ];

    /// The table's name, e.g. `awsiotsdk IotShadowClient, QoS 1 replies`.
    pub fn label(self) -> String {
        match self {
            ShadowClient::Classic { reply_qos } => {
                format!("awsiotsdk IotShadowClient, QoS {reply_qos} replies")
            }
            ShadowClient::RequestResponse => "awsiotsdk IotShadowClientV2".to_owned(),
        }
    }

    /// The script's `--client` and `--reply-qos`.
    fn args(self) -> [String; 4] {
        let (client, reply_qos) = match self {
            ShadowClient::Classic { reply_qos } => ("v1", reply_qos),
            ShadowClient::RequestResponse => ("v2", 1),
        };
        [
            "--client".into(),
            client.into(),
            "--reply-qos".into(),
            reply_qos.to_string(),
        ]
    }
}

/// How many round trips one run of the peer takes.
#[derive(Clone, Copy, Debug)]
pub struct Rounds {
    /// Unmeasured updates first.
    pub warm_up: usize,
    /// Measured updates at most.
    pub requests: usize,
    /// No further measured update once this much time has passed (at least one is made).
    pub budget: Duration,
}

/// What one run of the peer measured.
pub struct ShadowRun {
    /// awsiotsdk's, awscrt's and Python's versions.
    pub versions: Versions,
    /// Each measured round trip.
    pub samples: Vec<Duration>,
}

/// Runs `client` once in a new Python process against 127.0.0.1:`port`, on the shadow
/// of `identity`'s thing.
pub async fn round_trips(
    client: ShadowClient,
    port: u16,
    identity: &Identity,
    rounds: Rounds,
) -> BenchResult<ShadowRun> {
    let step = format!("running {SCRIPT} ({})", client.label());
    let mut args = vec!["--port".to_owned(), port.to_string()];
    args.extend(identity.peer_args());
    args.extend([
        "--requests".into(),
        rounds.requests.to_string(),
        "--warm-up".into(),
        rounds.warm_up.to_string(),
        "--max-seconds".into(),
        rounds.budget.as_secs_f64().to_string(),
    ]);
    args.extend(client.args());
    let output = run_peer_with_timeout(SCRIPT, &args, rounds.budget + OVERHEAD).await;
    if !output.success() {
        return Err(BenchError::new(step, format!("the peer failed\n{output}")));
    }
    let text = |v: &Value| v.as_str().unwrap_or("?").to_owned();
    let versions = output
        .events_named("versions")
        .first()
        .map(|v| Versions {
            packages: ["awsiotsdk", "awscrt"]
                .map(|package| (package.to_owned(), text(&v[package])))
                .into(),
            python: text(&v["python"]),
        })
        .ok_or_else(|| BenchError::new(&step, "the peer did not report its versions"))?;
    let samples: Vec<Duration> = output
        .events_named("round_trips")
        .first()
        .and_then(|e| e["seconds"].as_array().cloned())
        .ok_or_else(|| BenchError::new(&step, format!("no round trips reported\n{output}")))?
        .iter()
        .filter_map(Value::as_f64)
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .collect();
    if samples.is_empty() {
        return Err(BenchError::new(step, "the peer measured no round trip"));
    }
    Ok(ShadowRun { versions, samples })
}
