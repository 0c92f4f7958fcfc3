//! The benchmark suite behind `iotcore bench`: the iotcore device SDK and the
//! iotcore emulator measured against what a user would use instead, in the same
//! run, on loopback.
//!
//! * client throughput: the SDK against rumqttc and AWS's Python SDK v2 (awscrt)
//!   and paho-mqtt, all publishing to the same `iotcore emulator`;
//! * broker throughput: `iotcore emulator` against Mosquitto and rumqttd, fan-in and
//!   fan-out;
//! * latency: publish → receive, shadow update → accepted;
//! * connect cost: mTLS handshakes + CONNECT per second, ECDSA P-256 and RSA 2048,
//!   and the CPU each side spends on them (the brokers' accepts per core);
//! * MQTT over WebSocket with SigV4: QoS 1 throughput and connect cost against the
//!   SDK's own mutual TLS and AWS's Python SDK v2 over WebSocket;
//! * footprint: memory per idle connection in the client and in the broker, the
//!   stripped binary, CPU of an idle client.
//!
//! [`run`] measures and returns a [`Report`]; [`output::write`] turns it into
//! `bench/results/<date>.json`, a Markdown table and an SVG plot.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod child;
mod clients;
pub mod environment;
pub mod error;
mod harness;
pub mod markdown;
pub mod output;
pub mod plot;
pub mod report;
mod scenarios;
pub mod stats;
mod suite;

pub use error::{BenchError, BenchResult};
pub use iotcore_test_support::workspace_root;
pub use report::{Figure, Group, Report};
pub use suite::Options;

use harness::EmulatorProcess;
use report::Environment;
use suite::Suite;

/// Runs the parts of the suite `options` selects and returns what they measured.
///
/// A part that fails is recorded in [`Report::failures`] and the others still run;
/// only a failure to start the emulator ends the run early.
pub async fn run(options: Options) -> BenchResult<Report> {
    let mut environment = Environment::capture();
    let emulator = EmulatorProcess::start(&options.iotcore).await?;
    let suite = Suite::new(options.clone(), emulator);
    let mut figures = Vec::new();
    let mut failures = Vec::new();
    for group in Group::ALL.into_iter().filter(|g| options.includes(*g)) {
        suite.progress(&format!("{} …", group.title().to_lowercase()));
        let measured = match group {
            Group::ClientThroughput => scenarios::throughput::run(&suite).await,
            Group::Latency => scenarios::latency::run(&suite).await,
            Group::BrokerThroughput => scenarios::brokers::run(&suite).await,
            Group::ConnectCost => scenarios::connect::run(&suite).await,
            Group::WebSocket => scenarios::doors::run(&suite).await,
            Group::Footprint => scenarios::footprint::run(&suite).await,
        };
        match measured {
            Ok(mut more) => figures.append(&mut more),
            Err(error) => {
                suite.progress(&format!("{} failed: {error}", group.title()));
                failures.push(format!("{}: {error}", group.title()));
            }
        }
    }
    let runs = suite.runs();
    environment.peers = suite.finish().await;
    environment.load_at_end = environment::load_average();
    Ok(Report {
        command: options.command.clone(),
        runs,
        quick: options.quick,
        environment,
        figures,
        failures,
    })
}
