//! AWS IoT Device SDK v2 for Python, run as a subprocess: `tests/peers/bench_publish.py`.

use std::time::Duration;

use iotcore_test_support::run_peer_with_timeout;
use serde_json::Value;

use crate::BoxError;
use crate::cases::{Case, WINDOW};
use crate::memory::Rss;
use crate::setup::Identity;

/// The peer script in `tests/peers/`.
const SCRIPT: &str = "bench_publish.py";
/// The most one round of the peer may take.
const ROUND_TIMEOUT: Duration = Duration::from_secs(150);
/// QoS 1 messages the peer publishes (pipelined) before the first case, so
/// that no case pays for a cold start.
const WARM_UP: usize = 2_000;

/// What one round of the peer measured.
pub struct Round {
    /// `awsiotsdk X, awscrt Y, Python Z`.
    pub versions: String,
    /// The time each case took, by index into the cases.
    pub elapsed: Vec<(usize, Duration)>,
}

fn connection_args(port: u16, identity: &Identity) -> Vec<String> {
    let path = |p: &std::path::Path| p.display().to_string();
    vec![
        "--port".into(),
        port.to_string(),
        "--cert".into(),
        path(&identity.cert),
        "--key".into(),
        path(&identity.key),
        "--ca".into(),
        path(&identity.ca),
        "--client-id".into(),
        identity.thing.clone(),
        "--topic".into(),
        identity.topic(),
    ]
}

/// Runs every case once in a new peer process (connected once for all of them).
pub async fn round(port: u16, identity: &Identity, cases: &[Case]) -> Result<Round, BoxError> {
    let mut args = connection_args(port, identity);
    args.extend(["--window".into(), WINDOW.to_string()]);
    args.extend(["--warm-up".into(), WARM_UP.to_string()]);
    for case in cases {
        args.extend(["--case".into(), case.python_arg()]);
    }
    let output = run_peer_with_timeout(SCRIPT, &args, ROUND_TIMEOUT).await;
    if !output.success() {
        return Err(format!("the Python peer failed\n{output}").into());
    }
    let versions = output
        .events_named("versions")
        .first()
        .map(|v| {
            format!(
                "awsiotsdk {}, awscrt {}, Python {}",
                text(&v["awsiotsdk"]),
                text(&v["awscrt"]),
                text(&v["python"])
            )
        })
        .ok_or("the Python peer did not report its versions")?;
    let mut elapsed = Vec::new();
    for result in output.events_named("result") {
        let index = cases
            .iter()
            .position(|case| {
                result["qos"] == case.qos
                    && result["size"] == case.size
                    && result["mode"] == case.mode.name()
            })
            .ok_or_else(|| format!("the Python peer reported an unknown case: {result}"))?;
        let seconds = result["seconds"]
            .as_f64()
            .filter(|s| *s > 0.0)
            .ok_or_else(|| format!("the Python peer reported no time: {result}"))?;
        elapsed.push((index, Duration::from_secs_f64(seconds)));
    }
    if elapsed.len() != cases.len() {
        return Err(format!(
            "the Python peer ran {} of {} cases\n{output}",
            elapsed.len(),
            cases.len()
        )
        .into());
    }
    Ok(Round { versions, elapsed })
}

/// The peer's resident memory before and after connecting one idle client.
pub async fn idle_rss(port: u16, identity: &Identity, idle: Duration) -> Result<Rss, BoxError> {
    let mut args = connection_args(port, identity);
    args.extend([
        "--rss".into(),
        "--idle".into(),
        idle.as_secs_f64().to_string(),
    ]);
    let output = run_peer_with_timeout(SCRIPT, &args, ROUND_TIMEOUT).await;
    let event = output
        .events_named("rss")
        .into_iter()
        .next()
        .filter(|_| output.success())
        .ok_or_else(|| format!("the Python peer did not report its memory\n{output}"))?;
    Rss::from_json(&event)
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or("?").to_owned()
}
