//! Footprint: what idle connections cost in the client and in the broker, the size of
//! the `iotcore` binary, and the CPU of idle connected clients.
//!
//! * Client side: child processes (`iotcore bench --child idle-clients`, see
//!   [`crate::child`]) connect idle clients to the emulator, all children of a run at the
//!   same time while the bench process only waits: K iotcore clients and K rumqttc
//!   clients (memory per client, then CPU over an idle window), one of each (the whole
//!   process's growth for its first connection), and one client of each Python library
//!   in its own interpreter (`clients::python::idle_rss`).
//! * Broker side: the bench process connects C idle iotcore clients per run to the
//!   emulator, then to Mosquitto, and reads the broker's VmRSS before and after. The
//!   connections of earlier runs stay open, so that memory a broker freed is never
//!   counted again as new.
//! * The `iotcore` binary stripped of its symbols and debug information.

use std::path::Path;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt, stream};
use iotcore::Client;

use crate::child::{ChildClient, Credentials, IdleClients, IdleUsage, spawn_idle_clients};
use crate::clients::iotcore as sdk;
use crate::clients::python::{self, PythonClient, Versions};
use crate::error::{BenchResult, Context};
use crate::harness::{Identity, PeerKind, ProcessUsage, cpu_ticks_per_second};
use crate::report::{Better, Figure, Group, Measurement};
use crate::suite::Suite;

/// Idle clients per child process (divided by [`Suite::scale`], at least [`MIN_CLIENTS`]).
const CLIENTS: usize = 100;
/// The fewest clients per child of a quick run.
const MIN_CLIENTS: usize = 10;
/// Idle connections added to a broker per run (divided by [`Suite::scale`], at least
/// [`MIN_CONNECTIONS`]).
const CONNECTIONS: usize = 500;
/// The fewest connections per run of a quick run.
const MIN_CONNECTIONS: usize = 20;
/// Connections the bench process opens at once.
const CONNECTING: usize = 16;
/// From the last CONNACK to the memory reading.
const SETTLE: Duration = Duration::from_secs(1);
/// The idle window the children's CPU time is read over.
const IDLE: Duration = Duration::from_secs(10);
/// The idle window of a quick run.
const QUICK_IDLE: Duration = Duration::from_secs(2);
/// Bytes per MiB.
const MIB: f64 = 1024.0 * 1024.0;

/// Measures every footprint figure.
pub async fn run(suite: &Suite) -> BenchResult<Vec<Figure>> {
    let mut figures = client_side(suite).await?;
    figures.push(broker_side(suite).await?);
    figures.push(binary_size(suite).await?);
    Ok(figures)
}

/// Registers `count` things named `<prefix>-<n>`.
fn identities(suite: &Suite, prefix: &str, count: usize) -> BenchResult<Vec<Identity>> {
    (0..count)
        .map(|n| suite.identity(&format!("{prefix}-{n}")))
        .collect()
}

/// A request for a child with one client per identity.
fn request(client: ChildClient, port: u16, identities: &[Identity], idle: Duration) -> IdleClients {
    IdleClients {
        client,
        port,
        identities: identities.iter().map(Credentials::from).collect(),
        settle_ms: SETTLE.as_millis() as u64,
        idle_ms: idle.as_millis() as u64,
    }
}

/// A Python client's memory per run, or why it has none.
struct PythonPeer {
    client: PythonClient,
    identity: Identity,
    versions: Option<Versions>,
    kb: Vec<f64>,
    not_measured: Option<String>,
}

impl PythonPeer {
    fn measurement(&self) -> Measurement {
        let who = self.versions.as_ref().map_or_else(
            || self.client.package().to_owned(),
            |versions| format!("{}, {}", versions.label(), versions.interpreter()),
        );
        match &self.not_measured {
            Some(why) => Measurement::skipped(who, why.clone()),
            None => Measurement::new(who, self.kb.clone()),
        }
    }
}

/// Client memory and idle CPU, from child processes.
async fn client_side(suite: &Suite) -> BenchResult<Vec<Figure>> {
    let k = (CLIENTS / suite.scale()).max(MIN_CLIENTS);
    let idle = if suite.options().quick {
        QUICK_IDLE
    } else {
        IDLE
    };
    let port = suite.emulator().port();
    let iotcore = suite.options().iotcore.as_path();
    let rumqttc = suite.version_of("rumqttc");
    suite.progress(&format!(
        "footprint: registering {} client things",
        2 * k + 4
    ));
    let ours = identities(suite, "bench-idle-iotcore", k)?;
    let theirs = identities(suite, "bench-idle-rumqttc", k)?;
    let our_one = identities(suite, "bench-one-iotcore", 1)?;
    let their_one = identities(suite, "bench-one-rumqttc", 1)?;
    let mut pythons = Vec::new();
    for client in PythonClient::ALL {
        pythons.push(PythonPeer {
            client,
            identity: suite.identity(&format!("bench-one-{}", client.name()))?,
            versions: None,
            kb: Vec::new(),
            not_measured: python::missing(),
        });
    }

    let ticks_per_second = cpu_ticks_per_second();
    let (mut many, mut one, mut cpu) = ([vec![], vec![]], [vec![], vec![]], [vec![], vec![]]);
    for run in 0..suite.runs() {
        suite.progress(&format!(
            "footprint: idle clients, run {} of {} ({k} per child, {} s idle)",
            run + 1,
            suite.runs(),
            idle.as_secs()
        ));
        let children = [
            request(ChildClient::Iotcore, port, &ours, idle),
            request(ChildClient::Rumqttc, port, &theirs, idle),
            request(ChildClient::Iotcore, port, &our_one, Duration::ZERO),
            request(ChildClient::Rumqttc, port, &their_one, Duration::ZERO),
        ];
        let python_runs = pythons.iter().map(|peer| async move {
            match &peer.not_measured {
                Some(_) => None,
                None => Some(python::idle_rss(peer.client, port, &peer.identity, SETTLE).await),
            }
        });
        let (usages, python_usages) = tokio::join!(
            futures_util::future::join_all(
                children
                    .iter()
                    .map(|request| spawn_idle_clients(iotcore, request))
            ),
            futures_util::future::join_all(python_runs)
        );
        let usages = usages
            .into_iter()
            .collect::<BenchResult<Vec<IdleUsage>>>()?;
        for (side, usage) in usages.iter().take(2).enumerate() {
            many[side].push(usage.kb_per_client());
            cpu[side].push(usage.idle_cpu_percent(ticks_per_second));
        }
        for (side, usage) in usages.iter().skip(2).enumerate() {
            one[side].push(usage.kb_per_client());
        }
        for (peer, measured) in pythons.iter_mut().zip(python_usages) {
            match measured {
                Some(Ok(rss)) => {
                    peer.kb.push(rss.delta_kb() as f64);
                    peer.versions = Some(rss.versions);
                }
                Some(Err(error)) => {
                    let why = format!("failed in run {}: {error}", run + 1);
                    suite.progress(&format!("footprint: {} {why}", peer.client.package()));
                    peer.kb.clear();
                    peer.not_measured = Some(why.lines().collect::<Vec<_>>().join(" "));
                }
                None => {}
            }
        }
    }
    for peer in &pythons {
        if let Some(versions) = &peer.versions {
            suite.note_peer(&versions.label());
            suite.note_peer(&versions.interpreter());
        }
    }

    let [ours_many, theirs_many] = many;
    let [ours_one, theirs_one] = one;
    let [ours_cpu, theirs_cpu] = cpu;
    let memory = Figure::new(
        Group::Footprint,
        format!("client memory per idle connection, {k} in one process"),
        "KiB",
        Better::Lower,
        Measurement::new("iotcore", ours_many),
    )
    .peer(Measurement::new(&rumqttc, theirs_many))
    .note(format!(
        "Client memory: a child process (this `iotcore` binary, current-thread runtime) \
         connects {k} idle clients to the emulator one after the other (MQTT 3.1.1, mTLS, \
         keep-alive 60 s, rumqttc with the suite's options: 100 in flight); (VmRSS {} s after \
         the last CONNACK − VmRSS before the first client) / {k}. \"First connection\": the \
         same with one client, so it includes what the library sets up once (runtime, TLS \
         provider); the Python clients each in their own interpreter \
         (tests/peers/bench_publish.py --rss, VmRSS growth from connecting one client).",
        SETTLE.as_secs()
    ));
    let first = pythons.iter().fold(
        Figure::new(
            Group::Footprint,
            "client memory of the first idle connection in a process",
            "KiB",
            Better::Lower,
            Measurement::new("iotcore", ours_one),
        )
        .peer(Measurement::new(&rumqttc, theirs_one)),
        |figure, peer| figure.peer(peer.measurement()),
    );
    let cpu = Figure::new(
        Group::Footprint,
        format!(
            "CPU of {k} idle connected clients in one process, {} s",
            idle.as_secs()
        ),
        "%",
        Better::Lower,
        Measurement::new("iotcore", ours_cpu),
    )
    .peer(Measurement::new(&rumqttc, theirs_cpu))
    .note(format!(
        "Idle CPU: user + system time of the same child processes over {} s after the memory \
         reading, in % of one core (/proc clock ticks: one tick, {:.0} ms, is {:.2} % over this \
         window; 0 means no tick). The window is shorter than the 60 s keep-alive, so it holds \
         no PINGREQ.",
        idle.as_secs(),
        1000.0 / ticks_per_second,
        100.0 / ticks_per_second / idle.as_secs_f64(),
    ));
    Ok(vec![memory, first, cpu])
}

/// Opens `identities.len()` idle iotcore connections to 127.0.0.1:`port`.
async fn connect_all(port: u16, identities: &[Identity]) -> BenchResult<Vec<Client>> {
    stream::iter(identities)
        .map(|identity| sdk::connect(port, identity))
        .buffer_unordered(CONNECTING)
        .try_collect()
        .await
}

/// Closes every client.
async fn close_all(clients: Vec<Client>) {
    stream::iter(clients)
        .for_each_concurrent(CONNECTING, |client| async move { client.close().await })
        .await;
}

/// A broker's memory per added connection, one value per run (`batches`: a run's
/// identities each), the connections of earlier runs kept open.
async fn per_connection(
    suite: &Suite,
    name: &str,
    pid: u32,
    port: u16,
    batches: &[Vec<Identity>],
) -> BenchResult<Vec<f64>> {
    let mut held = Vec::new();
    let mut kb = Vec::new();
    for (run, batch) in batches.iter().enumerate() {
        suite.progress(&format!(
            "footprint: {name}, run {} of {}: {} more idle connections ({} open)",
            run + 1,
            batches.len(),
            batch.len(),
            held.len()
        ));
        let before = ProcessUsage::of(pid)?.rss_kb;
        let connected = connect_all(port, batch).await;
        let connected = match connected {
            Ok(connected) => connected,
            Err(error) => {
                close_all(held).await;
                return Err(error);
            }
        };
        held.extend(connected);
        tokio::time::sleep(SETTLE).await;
        let after = ProcessUsage::of(pid)?.rss_kb;
        kb.push((after as f64 - before as f64) / batch.len() as f64);
    }
    close_all(held).await;
    Ok(kb)
}

/// Broker memory per idle connection: the emulator against Mosquitto and rumqttd.
async fn broker_side(suite: &Suite) -> BenchResult<Figure> {
    let c = (CONNECTIONS / suite.scale()).max(MIN_CONNECTIONS);
    suite.progress(&format!(
        "footprint: registering {} connection things",
        c * suite.runs()
    ));
    let batches = (0..suite.runs())
        .map(|run| identities(suite, &format!("bench-conn-{run}"), c))
        .collect::<BenchResult<Vec<_>>>()?;
    let emulator = suite.emulator();
    let ours = per_connection(
        suite,
        "emulator",
        emulator.pid()?,
        emulator.port(),
        &batches,
    )
    .await?;
    let mut theirs = Vec::new();
    for kind in PeerKind::ALL {
        theirs.push(match kind.start(emulator.broker_tls(), &[]) {
            Ok(broker) => {
                suite.note_peer(broker.name());
                let kb =
                    per_connection(suite, broker.name(), broker.pid(), broker.port(), &batches)
                        .await?;
                Measurement::new(broker.name(), kb)
            }
            Err(why) => {
                Measurement::skipped(kind.label(), why.lines().collect::<Vec<_>>().join(" "))
            }
        });
    }
    let figure = Figure::new(
        Group::Footprint,
        "broker memory per idle connection",
        "KiB",
        Better::Lower,
        Measurement::new("iotcore", ours),
    );
    Ok(theirs.into_iter().fold(figure, Figure::peer).note(format!(
        "Broker memory: the bench process connects {c} idle iotcore clients per run \
         ({CONNECTING} at a time, mTLS, each its own thing) to the `iotcore emulator` process, \
         then the same to Mosquitto and to rumqttd (same certificates, no persistence); (broker VmRSS {} s \
         after the last CONNACK − before) / {c}. Earlier runs' connections stay open: run n \
         measures connections (n−1)·{c}+1 to n·{c}, so memory a broker freed is not counted \
         as new.",
        SETTLE.as_secs(),
    )))
}

/// The `iotcore` binary after `strip` (or `objcopy --strip-all`).
async fn binary_size(suite: &Suite) -> BenchResult<Figure> {
    let binary = suite.options().iotcore.as_path();
    let unstripped = std::fs::metadata(binary)
        .during(format!("reading the size of {}", binary.display()))?
        .len();
    let dir = tempfile::tempdir().during("creating a directory for the stripped binary")?;
    let copy = dir.path().join("iotcore");
    let (size, how) = match strip(binary, &copy).await {
        Ok(tool) => {
            let size = std::fs::metadata(&copy)
                .during("reading the size of the stripped binary")?
                .len();
            (size, format!("a copy stripped with `{tool}`"))
        }
        Err(why) => (
            unstripped,
            format!("NOT stripped ({why}): the figure is the binary as built"),
        ),
    };
    Ok(Figure::new(
        Group::Footprint,
        "`iotcore` binary, stripped",
        "MiB",
        Better::Lower,
        Measurement::new("iotcore", vec![size as f64 / MIB]),
    )
    .note(format!(
        "Binary: {} ({:.1} MiB as built, release profile with debug = 1), {how}. One binary \
         holds the CLI, the emulator, the fleet simulator and this suite; rustls and aws-lc \
         are linked in statically, only libc, libm and libgcc_s dynamically. No peer: nothing \
         else ships that set in one file.",
        // Relative to the source tree, so that no report names this machine's paths.
        binary
            .strip_prefix(crate::workspace_root())
            .unwrap_or(binary)
            .display(),
        unstripped as f64 / MIB
    )))
}

/// Writes a stripped copy of `binary` to `copy`; returns the tool used or why none worked.
async fn strip(binary: &Path, copy: &Path) -> Result<&'static str, String> {
    let attempts: [(&'static str, Vec<&std::ffi::OsStr>); 2] = [
        (
            "strip",
            vec!["-o".as_ref(), copy.as_os_str(), binary.as_os_str()],
        ),
        (
            "objcopy",
            vec!["--strip-all".as_ref(), binary.as_os_str(), copy.as_os_str()],
        ),
    ];
    let mut failures = Vec::new();
    for (tool, args) in attempts {
        match tokio::process::Command::new(tool).args(args).output().await {
            Ok(output) if output.status.success() => return Ok(tool),
            Ok(output) => failures.push(format!(
                "{tool} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )),
            Err(error) => failures.push(format!("no {tool}: {error}")),
        }
    }
    Err(failures.join("; "))
}
