//! Shadow update round trips of the device SDK and of AWS's Python SDK v2
//! (`awsiot.iotshadow`), against one in-process emulator over mutual TLS on
//! 127.0.0.1, in the same run.
//!
//! ```text
//! cargo bench -p iotcore --bench shadow            # add `-- --quick` for a short smoke run
//! ```
//!
//! A round trip is one `update` of the reported state of a classic shadow
//! (`{"n": i}`), from the call to the accepted reply in hand, one request at a
//! time. Each client updates its own thing's shadow over MQTT 3.1.1:
//!
//! * iotcore: `client.shadow().update_reported(…)`;
//! * awsiotsdk `IotShadowClient` (v1): subscribed once to `update/accepted`
//!   and `update/rejected`, each request published with a new clientToken;
//! * awsiotsdk `IotShadowClientV2`: the request-response client's `update_shadow`.
//!
//! The clients take turns (never two at once), [`ROUNDS`] rounds of
//! [`REQUESTS`] requests each after [`WARM_UP`] unmeasured ones; the table
//! pools every round's samples. The Python clients run as a subprocess per
//! round (`tests/peers/bench_shadow.py`). Prints the "Shadow round trip"
//! section of BENCHMARKS.md on stdout, progress on stderr. Without the
//! `--bench` flag that `cargo bench` passes (as under `cargo test
//! --all-targets`) it does nothing.

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use iotcore::Client;
use iotcore::shadow::ShadowClient;
use iotcore_emulator::pki::KeyAlgorithm;
use iotcore_emulator::things::{create_thing_with_certificate, write_device_files};
use iotcore_emulator::{Emulator, EmulatorConfig};
use iotcore_test_support::run_peer_with_timeout;
use serde_json::{Value, json};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Measured rounds per client.
const ROUNDS: usize = 3;
/// Measured requests per round.
const REQUESTS: usize = 1000;
/// Unmeasured requests before each round.
const WARM_UP: usize = 100;
/// `--quick`: this fraction of the requests, one round.
const QUICK_SCALE: usize = 10;
/// The most one round of the Python peer may take.
const PEER_TIMEOUT: Duration = Duration::from_secs(300);

/// One client under test.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Peer {
    Sdk,
    PythonV1,
    PythonV1Qos0,
    PythonV2,
}

impl Peer {
    const ALL: [Peer; 4] = [
        Peer::Sdk,
        Peer::PythonV1,
        Peer::PythonV1Qos0,
        Peer::PythonV2,
    ];

    fn label(self) -> &'static str {
        match self {
            Peer::Sdk => "iotcore `update_reported`",
            Peer::PythonV1 => "awsiotsdk `IotShadowClient`, QoS 1 replies",
            Peer::PythonV1Qos0 => "awsiotsdk `IotShadowClient`, QoS 0 replies",
            Peer::PythonV2 => "awsiotsdk `IotShadowClientV2`",
        }
    }

    fn thing(self) -> &'static str {
        match self {
            Peer::Sdk => "bench-shadow-sdk",
            Peer::PythonV1 => "bench-shadow-py-v1",
            Peer::PythonV1Qos0 => "bench-shadow-py-v1-qos0",
            Peer::PythonV2 => "bench-shadow-py-v2",
        }
    }

    /// `--client` and `--reply-qos` of the Python peer.
    fn python_args(self) -> Option<(&'static str, &'static str)> {
        match self {
            Peer::Sdk => None,
            Peer::PythonV1 => Some(("v1", "1")),
            Peer::PythonV1Qos0 => Some(("v1", "0")),
            Peer::PythonV2 => Some(("v2", "1")),
        }
    }
}

/// A registered thing's files.
struct Identity {
    thing: &'static str,
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        return ExitCode::SUCCESS;
    }
    if let Some(other) = args
        .iter()
        .find(|a| !matches!(a.as_str(), "--bench" | "--quick"))
    {
        eprintln!("shadow: unknown argument {other:?} (known: --quick)");
        return ExitCode::FAILURE;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(BoxError::from)
        .and_then(|runtime| runtime.block_on(bench(quick)));
    match result {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("shadow: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn bench(quick: bool) -> Result<String, BoxError> {
    let (rounds, requests, warm_up) = if quick {
        (1, REQUESTS / QUICK_SCALE, WARM_UP / QUICK_SCALE)
    } else {
        (ROUNDS, REQUESTS, WARM_UP)
    };
    let load = load_average();
    let dir = tempfile::tempdir()?;
    let config = EmulatorConfig::new(dir.path().join("data")).with_bind("127.0.0.1:0".parse()?);
    let emulator = Emulator::start(config).await?;
    let port = emulator.local_addr().port();
    let identities = Peer::ALL
        .iter()
        .map(|peer| register(&emulator, peer.thing(), dir.path()))
        .collect::<Result<Vec<_>, _>>()?;

    let sdk = &identities[0];
    let client = Client::builder(sdk.thing)
        .endpoint("127.0.0.1")
        .port(port)
        .amazon_root_cas(false)
        .root_ca_pem_file(&sdk.ca)?
        .client_cert_pem_files(&sdk.cert, &sdk.key)?
        .connect()
        .await?;
    let shadow = client.shadow();

    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); Peer::ALL.len()];
    let mut versions = String::from("?");
    for round in 1..=rounds {
        for (index, peer) in Peer::ALL.into_iter().enumerate() {
            eprintln!("round {round}/{rounds}: {}", peer.label());
            let round_samples = match peer.python_args() {
                None => sdk_round(&shadow, warm_up, requests).await?,
                Some(python) => {
                    let (peer_versions, round_samples) =
                        python_round(python, port, &identities[index], warm_up, requests).await?;
                    versions = peer_versions;
                    round_samples
                }
            };
            samples[index].extend(round_samples);
        }
    }
    client.close().await;
    emulator.shutdown().await;
    Ok(report(&samples, &versions, quick, &load))
}

fn register(
    emulator: &Emulator,
    thing: &'static str,
    dir: &std::path::Path,
) -> Result<Identity, BoxError> {
    let credentials = create_thing_with_certificate(
        emulator.store(),
        emulator.pki(),
        thing,
        KeyAlgorithm::EcdsaP256,
    )?;
    let files = write_device_files(thing, &credentials, emulator.ca_pem(), &dir.join("things"))?;
    Ok(Identity {
        thing,
        cert: files.certificate,
        key: files.private_key,
        ca: files.root_ca,
    })
}

/// `warm_up` unmeasured updates, then `requests` timed ones.
async fn sdk_round(
    shadow: &ShadowClient,
    warm_up: usize,
    requests: usize,
) -> Result<Vec<Duration>, BoxError> {
    for n in 0..warm_up {
        shadow.update_reported(json!({ "n": n })).await?;
    }
    let mut samples = Vec::with_capacity(requests);
    for n in 0..requests {
        let start = Instant::now();
        shadow.update_reported(json!({ "n": n })).await?;
        samples.push(start.elapsed());
    }
    Ok(samples)
}

/// One round of the Python peer; returns its versions and samples.
async fn python_round(
    (client, reply_qos): (&str, &str),
    port: u16,
    identity: &Identity,
    warm_up: usize,
    requests: usize,
) -> Result<(String, Vec<Duration>), BoxError> {
    let path = |p: &PathBuf| p.display().to_string();
    let args = [
        "--port".to_owned(),
        port.to_string(),
        "--cert".into(),
        path(&identity.cert),
        "--key".into(),
        path(&identity.key),
        "--ca".into(),
        path(&identity.ca),
        "--client-id".into(),
        identity.thing.into(),
        "--client".into(),
        client.into(),
        "--reply-qos".into(),
        reply_qos.into(),
        "--requests".into(),
        requests.to_string(),
        "--warm-up".into(),
        warm_up.to_string(),
    ];
    let output = run_peer_with_timeout("bench_shadow.py", &args, PEER_TIMEOUT).await;
    if !output.success() {
        return Err(format!("the Python peer failed\n{output}").into());
    }
    let text = |v: &Value| v.as_str().unwrap_or("?").to_owned();
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
    let samples: Vec<Duration> = output
        .events_named("round_trips")
        .first()
        .and_then(|e| e["seconds"].as_array().cloned())
        .ok_or_else(|| format!("the Python peer reported no round trips\n{output}"))?
        .iter()
        .filter_map(Value::as_f64)
        .map(Duration::from_secs_f64)
        .collect();
    if samples.len() != requests {
        return Err(format!(
            "the Python peer reported {} of {requests} round trips",
            samples.len()
        )
        .into());
    }
    Ok((versions, samples))
}

/// The `q` quantile (0..=1) of sorted samples, nearest rank.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn report(samples: &[Vec<Duration>], versions: &str, quick: bool, load: &str) -> String {
    let mut rows = String::new();
    let mut p50s = Vec::new();
    for (peer, samples) in Peer::ALL.iter().zip(samples) {
        let mut sorted = samples.clone();
        sorted.sort();
        let mean = sorted.iter().sum::<Duration>() / sorted.len().max(1) as u32;
        let p50 = quantile(&sorted, 0.50);
        p50s.push(p50);
        rows.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            peer.label(),
            sorted.len(),
            micros(p50),
            micros(quantile(&sorted, 0.99)),
            micros(mean),
            micros(sorted.last().copied().unwrap_or_default()),
        ));
    }
    let ratio = |i: usize| p50s[i].as_secs_f64() / p50s[0].as_secs_f64().max(f64::MIN_POSITIVE);
    format!(
        "## Shadow round trip\n\n\
         One `update` of the reported state of a classic shadow (`{{\"n\": i}}`), from the call to \
         the `/update/accepted` reply in hand, one request at a time; MQTT 3.1.1 over mutual TLS \
         on 127.0.0.1 to one in-process emulator, each client on its own thing's shadow, the \
         clients taking turns. The Python clients are AWS's IoT Device SDK v2 (`awsiot.iotshadow`) \
         in a subprocess.\n\n\
         - Command: `cargo bench -p iotcore --bench shadow{quick}`\n\
         - Machine: {machine}\n\
         - Date: {date}; load average at start: {load}\n\
         - {rustc}; {versions}\n\
         - Source: `crates/device/benches/shadow.rs`, `tests/peers/bench_shadow.py`\n\n\
         | client | round trips | p50 | p99 | mean | max |\n\
         |---|---|---|---|---|---|\n\
         {rows}\n\
         Median round trip relative to iotcore: `IotShadowClient` {v1:.1}× (QoS 1 replies), \
         {v1_qos0:.1}× (QoS 0 replies); `IotShadowClientV2` {v2:.1}×.\n",
        quick = if quick { " -- --quick" } else { "" },
        machine = machine(),
        date = command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        rustc = command_output("rustc", &["--version"]),
        v1 = ratio(1),
        v1_qos0 = ratio(2),
        v2 = ratio(3),
    )
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores")
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "?".into())
}
