//! Publish throughput and memory of the device SDK against rumqttc and AWS's
//! Python SDK v2, all on one in-process emulator over mutual TLS on 127.0.0.1.
//!
//! ```text
//! cargo build --release -p iotcore-cli      # for the `iotcore demo` memory figure
//! cargo bench -p iotcore --bench throughput # add `-- --quick` for a short smoke run
//! ```
//!
//! `-- --filter TEXT` runs only the cases whose label contains TEXT and
//! `-- --peer iotcore|rumqttc|python` (repeatable) only those clients, for
//! profiling one of them; such a narrowed run measures no memory.
//! `-- --current-thread` runs the clients and the emulator on one thread
//! instead of tokio's multi-thread runtime.
//!
//! Prints the "Device SDK" section of BENCHMARKS.md on stdout, progress on stderr.
//! Without the `--bench` flag that `cargo bench` passes (as under
//! `cargo test --all-targets`) it does nothing.
//!
//! Each client publishes to its own topic that nobody subscribes to, so the
//! figures measure the publish path (client, TLS, broker ingest) alone:
//!
//! * QoS 1 "delivered" means acknowledged (PUBACK). Pipelined: up to
//!   [`cases::WINDOW`] publishes in flight; sequential: each awaited.
//! * QoS 0 "delivered" means received by the broker: the timing ends with the
//!   PUBACK of one more QoS 1 publish (not counted), which the broker sends
//!   only after it has read everything sent before it on the connection.
//!
//! The clients take turns (never two at once); each case runs once per round,
//! five rounds, and the table shows the median. Runs with the Python SDK are a
//! subprocess per round (connected once for all cases, warmed up first).

mod cases;
mod memory;
mod python;
mod report;
mod rumqttc_client;
mod sdk;
mod setup;

use std::process::ExitCode;

use cases::{Case, Peer, Results};
use memory::ChildClient;
use report::{Environment, Report};
use rumqttc_client::Rumqttc;
use setup::Broker;

/// Errors of a bench binary: reported on stderr, exit status 1.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Rounds of a full run; the table reports the median.
const RUNS: usize = 5;
/// `--quick`: one round with a twentieth of the messages.
const QUICK_SCALE: usize = 20;
/// Warm-up before the first round: each case once with a tenth of its messages
/// (the Python peer warms up by itself).
const WARM_UP_SCALE: usize = 10;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first() {
        Some(mode) if mode == memory::CHILD_MODE => memory::child_main(&args[1..]),
        _ => bench_main(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("throughput: {error}");
            ExitCode::FAILURE
        }
    }
}

/// What to run: everything by default; `--filter` and `--peer` narrow a run down
/// for profiling (memory is then not measured).
struct Options {
    /// `--quick`: one round with fewer messages.
    quick: bool,
    /// `--filter TEXT`: only the cases whose label contains TEXT.
    filter: Option<String>,
    /// `--peer NAME` (repeatable): only these clients.
    peers: Vec<Peer>,
    /// `--current-thread`: run clients and emulator on one thread instead of
    /// tokio's multi-thread runtime (shows what cross-thread wake-ups cost).
    current_thread: bool,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, BoxError> {
        let mut options = Options {
            quick: false,
            filter: None,
            peers: Vec::new(),
            current_thread: false,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = || {
                args.next()
                    .ok_or_else(|| format!("{arg} needs a value"))
                    .cloned()
            };
            match arg.as_str() {
                "--bench" => {} // what `cargo bench` passes
                "--quick" => options.quick = true,
                "--current-thread" => options.current_thread = true,
                "--filter" => options.filter = Some(value()?),
                "--peer" => {
                    let name = value()?;
                    let peer = Peer::ALL
                        .into_iter()
                        .find(|p| p.name() == name)
                        .ok_or_else(|| {
                            format!("unknown peer {name:?} (iotcore, rumqttc, python)")
                        })?;
                    options.peers.push(peer);
                }
                other => {
                    return Err(format!(
                        "unknown argument {other:?} (known: --quick, --current-thread, --filter TEXT, --peer NAME)"
                    )
                    .into());
                }
            }
        }
        if options.peers.is_empty() {
            options.peers = Peer::ALL.to_vec();
        }
        Ok(options)
    }

    fn narrowed(&self) -> bool {
        self.filter.is_some() || self.peers.len() < Peer::ALL.len()
    }

    fn runs(&self, peer: Peer) -> bool {
        self.peers.contains(&peer)
    }

    fn cases(&self) -> Vec<Case> {
        let scale = if self.quick { QUICK_SCALE } else { 1 };
        Case::all(scale)
            .into_iter()
            .filter(|case| {
                self.filter
                    .as_ref()
                    .is_none_or(|f| case.label().contains(f.as_str()))
            })
            .collect()
    }
}

fn bench_main(args: &[String]) -> Result<(), BoxError> {
    if !args.iter().any(|a| a == "--bench") {
        // `cargo test --all-targets` runs bench targets too, without `--bench`.
        eprintln!(
            "throughput: a benchmark, not a test; run it with \
             `cargo bench -p iotcore --bench throughput` (no --bench flag: nothing to do)"
        );
        return Ok(());
    }
    let options = Options::parse(args)?;
    if options.runs(Peer::Python) {
        // Fail before measuring anything when the Python peer is not installed.
        iotcore_test_support::python();
    }
    let mut runtime = if options.current_thread {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = runtime.enable_all().build()?;
    let markdown = runtime.block_on(bench(&options, report::command(args)))?;
    println!("{markdown}");
    Ok(())
}

async fn bench(options: &Options, command: String) -> Result<String, BoxError> {
    let environment = Environment::capture();
    let cases = options.cases();
    let runs = if options.quick { 1 } else { RUNS };
    let broker = Broker::start().await?;
    let port = broker.port();
    let ours = broker.identity("bench-iotcore")?;
    let theirs = broker.identity("bench-rumqttc")?;
    let aws = broker.identity("bench-python")?;

    let client = sdk::connect(port, &ours).await?;
    let rumqttc = Rumqttc::connect(port, &theirs).await?;
    let (our_topic, their_topic) = (ours.topic(), theirs.topic());
    eprintln!("throughput: warming up");
    for case in &cases {
        let case = case.scaled_down(WARM_UP_SCALE);
        if options.runs(Peer::Iotcore) {
            sdk::run(&client, &our_topic, &case).await?;
        }
        if options.runs(Peer::Rumqttc) {
            rumqttc.run(&their_topic, &case).await?;
        }
    }

    let mut results = Results::new(&cases);
    let mut python_versions = String::from("not run");
    for round in 0..runs {
        eprintln!(
            "throughput: round {} of {runs} (load {})",
            round + 1,
            report::load_average()
        );
        for (index, case) in cases.iter().enumerate() {
            // Alternate who goes first, so that neither always follows the other.
            let order = if round % 2 == 0 {
                [Peer::Iotcore, Peer::Rumqttc]
            } else {
                [Peer::Rumqttc, Peer::Iotcore]
            };
            for peer in order.into_iter().filter(|p| options.runs(*p)) {
                let elapsed = match peer {
                    Peer::Iotcore => sdk::run(&client, &our_topic, case).await?,
                    _ => rumqttc.run(&their_topic, case).await?,
                };
                results.record(index, peer, elapsed);
            }
        }
        if options.runs(Peer::Python) && !cases.is_empty() {
            let python = python::round(port, &aws, &cases).await?;
            for (index, elapsed) in python.elapsed {
                results.record(index, Peer::Python, elapsed);
            }
            python_versions = python.versions;
        }
    }
    client.close().await;
    rumqttc.close().await?;

    let (idle, demo) = if options.narrowed() {
        let skipped = "a narrowed run (--filter or --peer)";
        let idle = [(); 3].map(|()| Err(skipped.to_owned()));
        (idle, Err(skipped.to_owned()))
    } else {
        eprintln!("throughput: memory");
        let describe = |r: Result<memory::Rss, BoxError>| r.map_err(|e| e.to_string());
        let idle = [
            describe(memory::idle_client(ChildClient::Iotcore, port, &ours).await),
            describe(memory::idle_client(ChildClient::Rumqttc, port, &theirs).await),
            describe(python::idle_rss(port, &aws, memory::IDLE).await),
        ];
        (idle, memory::demo().await.map_err(|e| e.to_string()))
    };
    broker.shutdown().await;

    let report = Report {
        environment: &environment,
        command,
        runtime: if options.current_thread {
            "tokio current-thread runtime (clients and emulator on one thread)".to_owned()
        } else {
            format!(
                "tokio multi-thread runtime, {} workers (clients and emulator share it)",
                std::thread::available_parallelism().map_or(0, |n| n.get())
            )
        },
        load_at_end: report::load_average(),
        runs,
        python_versions: &python_versions,
        results: &results,
        idle,
        demo,
    };
    Ok(report.markdown())
}
