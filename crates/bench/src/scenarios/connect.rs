//! Connect cost: connections per second from nothing to CONNACK, with ECDSA P-256
//! and RSA 2048 device keys.
//!
//! Each connection is TCP + a full mutual-TLS handshake + CONNECT → CONNACK, then
//! DISCONNECT and close. Every connection builds its own TLS configuration from the
//! identity's files, so a client has no session to resume: every handshake is a full
//! one. [`CONCURRENCY`] connections are in flight at a time.
//!
//! Four contenders, one side changed at a time: the iotcore SDK connecting to the
//! emulator (the subject), rumqttc connecting to the emulator (another client, same
//! keys), and the iotcore SDK connecting to Mosquitto and to rumqttd (other brokers,
//! same server certificate and CA). They take turns, never two at once, rotating who
//! goes first.
//!
//! Around each run the suite reads the CPU time of the broker's process and of its
//! own (the clients'): the broker's accepts per CPU-second are its mutual-TLS
//! handshakes per second per core, and the client's CPU per connection says how much
//! of a connection is the client's own work.
//!
//! The emulator and Mosquitto, like AWS IoT Core, disconnect an older connection
//! when a new one brings the same client id (a takeover), and the emulator only
//! accepts a thing's own name as its client id. So the connections draw their
//! identities from a first-in first-out pool [`POOL_PER_SLOT`] times larger than
//! the concurrency: a client id comes back only after it has been closed and
//! several other connections have run, never while its last connection is open.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iotcore_emulator::pki::KeyAlgorithm;
use tokio::task::JoinSet;

use crate::clients::{iotcore, rumqttc};
use crate::error::{BenchError, BenchResult, Context};
use crate::harness::{
    AccessKey, Identity, PeerKind, ProcessUsage, RUMQTTD_SETTINGS, cpu_ticks_per_second,
};
use crate::report::{Better, Figure, Group, Measurement};
use crate::suite::Suite;

/// Connections in flight at a time.
pub(super) const CONCURRENCY: usize = 8;
/// Connections per run in a full run (divided by [`Suite::scale`]).
pub(super) const CONNECTIONS: usize = 400;
/// Identities per connection slot: each key algorithm has
/// `POOL_PER_SLOT × CONCURRENCY` things.
pub(super) const POOL_PER_SLOT: usize = 4;
/// TCP_NODELAY, which the emulator sets: with Nagle on (Mosquitto's default) its
/// CONNACK waits for the client's delayed ACK, and Mosquitto manages ~5× fewer
/// connections per second.
const MOSQUITTO_SETTINGS: [&str; 1] = ["set_tcp_nodelay true"];
/// The most one connection (connect, CONNACK, close) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The client library a contender connects with, and how.
#[derive(Clone, Debug)]
pub(super) enum Library {
    /// The iotcore SDK over mutual TLS.
    Iotcore,
    /// rumqttc over mutual TLS.
    Rumqttc,
    /// The iotcore SDK over WebSocket, signed with SigV4 with this key.
    IotcoreWebSocket(Arc<AccessKey>),
}

impl Library {
    async fn connect_once(&self, port: u16, identity: &Identity) -> BenchResult<()> {
        match self {
            Library::Iotcore => iotcore::connect_once(port, identity, CONNECT_TIMEOUT).await,
            Library::Rumqttc => rumqttc::connect_once(port, identity, CONNECT_TIMEOUT).await,
            Library::IotcoreWebSocket(key) => {
                iotcore::connect_once_over_websocket(port, identity, key, CONNECT_TIMEOUT).await
            }
        }
    }
}

/// A client library and the broker it connects to.
struct Contender {
    who: String,
    library: Library,
    /// The broker's port and process id; `None`: the broker could not be started
    /// (the reason is in `skipped`).
    server: Option<(u16, u32)>,
    skipped: Option<String>,
}

impl Contender {
    /// Its runs, or why it was not measured.
    fn measurement(&self, runs: Vec<f64>) -> Measurement {
        match &self.skipped {
            Some(why) => Measurement::skipped(&self.who, why),
            None => Measurement::new(&self.who, runs),
        }
    }
}

/// Identities handed out first-in first-out: one is back in line only once its
/// connection is closed.
pub(super) struct Pool {
    identities: Mutex<VecDeque<Identity>>,
}

impl Pool {
    pub(super) fn new(identities: Vec<Identity>) -> Pool {
        Pool {
            identities: Mutex::new(identities.into()),
        }
    }

    fn take(&self) -> BenchResult<Identity> {
        self.identities
            .lock()
            .ok()
            .and_then(|mut line| line.pop_front())
            .ok_or("the identity pool is empty (smaller than the concurrency)")
            .during("taking an identity")
    }

    fn give_back(&self, identity: Identity) {
        if let Ok(mut line) = self.identities.lock() {
            line.push_back(identity);
        }
    }
}

/// A key algorithm, its label and the prefix of its things.
const KEYS: [(KeyAlgorithm, &str, &str); 2] = [
    (KeyAlgorithm::EcdsaP256, "ECDSA P-256", "bench-cc-ec"),
    (KeyAlgorithm::Rsa2048, "RSA 2048", "bench-cc-rsa"),
];

/// Measures every contender with both key algorithms, [`Suite::runs`] times.
pub async fn run(suite: &Suite) -> BenchResult<Vec<Figure>> {
    let connections = (CONNECTIONS / suite.scale()).max(CONCURRENCY);
    let mut pools = Vec::new();
    for (key, label, prefix) in KEYS {
        suite.progress(&format!("connect cost: registering {label} things"));
        let identities = (0..POOL_PER_SLOT * CONCURRENCY)
            .map(|i| suite.emulator().identity(&format!("{prefix}-{i:02}"), key))
            .collect::<BenchResult<Vec<_>>>()?;
        pools.push(Arc::new(Pool::new(identities)));
    }
    let emulator_pid = suite.emulator().pid()?;
    let mut contenders = vec![
        Contender {
            who: "iotcore → emulator".into(),
            library: Library::Iotcore,
            server: Some((suite.emulator().port(), emulator_pid)),
            skipped: None,
        },
        Contender {
            who: format!("{} → emulator", suite.version_of("rumqttc")),
            library: Library::Rumqttc,
            server: Some((suite.emulator().port(), emulator_pid)),
            skipped: None,
        },
    ];
    let mut brokers = Vec::new();
    for kind in PeerKind::ALL {
        contenders.push(
            match kind.start(suite.emulator().broker_tls(), &MOSQUITTO_SETTINGS) {
                Ok(broker) => {
                    suite.note_peer(broker.name());
                    let contender = Contender {
                        who: format!("iotcore → {}", broker.name()),
                        library: Library::Iotcore,
                        server: Some((broker.port(), broker.pid())),
                        skipped: None,
                    };
                    brokers.push(broker);
                    contender
                }
                Err(why) => Contender {
                    who: format!("iotcore → {}", kind.label()),
                    library: Library::Iotcore,
                    server: None,
                    skipped: Some(why),
                },
            },
        );
    }

    suite.progress("connect cost: warming up");
    for pool in &pools {
        for contender in &contenders {
            if let Some((port, _)) = contender.server {
                connections_per_second(&contender.library, port, pool, CONCURRENCY).await?;
            }
        }
    }
    // runs[key][contender]: one value per run.
    let mut runs = vec![vec![Runs::default(); contenders.len()]; KEYS.len()];
    for round in 0..suite.runs() {
        suite.progress(&format!(
            "connect cost: run {} of {} ({connections} connections each)",
            round + 1,
            suite.runs()
        ));
        for (pool, runs) in pools.iter().zip(&mut runs) {
            for turn in 0..contenders.len() {
                let index = (round + turn) % contenders.len();
                if let Some(server) = contenders[index].server {
                    runs[index].push(
                        measure_once(&contenders[index].library, server, pool, connections).await?,
                    );
                }
            }
        }
    }
    drop(brokers);

    let mut figures = Vec::new();
    for ((_, label, _), runs) in KEYS.iter().zip(runs) {
        let figure = |name: String, unit: &str, better: Better, values: fn(&Runs) -> Vec<f64>| {
            let mut measured = contenders
                .iter()
                .zip(&runs)
                .map(|(contender, runs)| contender.measurement(values(runs)));
            let subject = measured
                .next()
                .unwrap_or_else(|| Measurement::new("iotcore", vec![]));
            measured.fold(
                Figure::new(Group::ConnectCost, name, unit, better, subject),
                Figure::peer,
            )
        };
        figures.push(
            figure(
                format!("{label} device key"),
                "conn/s",
                Better::Higher,
                |r| r.rates.clone(),
            )
            .note(format!(
                "{connections} connections per run, {CONCURRENCY} in flight; each is TCP + a full \
                 mutual-TLS handshake (a fresh TLS configuration per connection, so no session \
                 resumption; server key ECDSA P-256) + CONNECT → CONNACK + DISCONNECT; {label} \
                 client keys, {} client ids in rotation; every broker in its own process; \
                 Mosquitto with {}, rumqttd with {}",
                POOL_PER_SLOT * CONCURRENCY,
                MOSQUITTO_SETTINGS.join(", "),
                RUMQTTD_SETTINGS.join(", ")
            )),
        );
        // The broker's CPU: only the contenders that differ by broker (the client is
        // the iotcore SDK for all of them); rumqttc's server is the emulator again.
        let mut accepts = figure(
            format!("mTLS accepts per CPU-second of the broker, {label} device key"),
            "accepts/s/core",
            Better::Higher,
            |r| r.accepts_per_core.clone(),
        );
        accepts
            .peers
            .retain(|peer| !peer.who.starts_with("rumqttc"));
        figures.push(accepts.note(format!(
            "the runs above: connections of the run divided by the CPU time (user + system, \
             /proc/<pid>/stat) the broker's process spent in them: a full TLS 1.3 handshake \
             with the server's ECDSA P-256 signature, the {label} client certificate's chain \
             and signature checked, then CONNECT → CONNACK and DISCONNECT; the emulator also \
             looks up the certificate and its thing, checks the connect policy and publishes \
             the lifecycle events"
        )));
        let mut client = figure(
            format!("client CPU per connection, {label} device key"),
            "µs",
            Better::Lower,
            |r| r.client_us.clone(),
        );
        client.peers.retain(|peer| peer.who.starts_with("rumqttc"));
        figures.push(client.note(
            "the runs above, to the emulator: the bench process's CPU time (user + system) \
             per connection, the client's side of the same handshakes",
        ));
    }
    Ok(figures)
}

/// One contender's figures, one value per run.
#[derive(Clone, Debug, Default)]
struct Runs {
    /// Connections per second.
    rates: Vec<f64>,
    /// Connections per second of the broker process's CPU time.
    accepts_per_core: Vec<f64>,
    /// The bench process's (the client's) CPU time per connection, in µs.
    client_us: Vec<f64>,
}

impl Runs {
    fn push(&mut self, run: Run) {
        self.rates.push(run.rate);
        self.accepts_per_core.push(run.accepts_per_core);
        self.client_us.push(run.client_us);
    }
}

/// One run of one contender.
struct Run {
    rate: f64,
    accepts_per_core: f64,
    client_us: f64,
}

/// Makes `count` connections with `library` to `server` (its port and process id)
/// and reads the CPU time both processes spent on them.
async fn measure_once(
    library: &Library,
    (port, pid): (u16, u32),
    pool: &Arc<Pool>,
    count: usize,
) -> BenchResult<Run> {
    let ticks = cpu_ticks_per_second();
    let (server, client) = (ProcessUsage::of(pid)?, ProcessUsage::of(0)?);
    let rate = connections_per_second(library, port, pool, count).await?;
    let server_seconds = ProcessUsage::of(pid)?
        .cpu_ticks
        .saturating_sub(server.cpu_ticks) as f64
        / ticks;
    let client_seconds = ProcessUsage::of(0)?
        .cpu_ticks
        .saturating_sub(client.cpu_ticks) as f64
        / ticks;
    Ok(Run {
        rate,
        accepts_per_core: if server_seconds > 0.0 {
            count as f64 / server_seconds
        } else {
            f64::NAN
        },
        client_us: client_seconds * 1e6 / count as f64,
    })
}

/// Makes `count` connections with `library` to 127.0.0.1:`port`, [`CONCURRENCY`]
/// at a time, and returns connections per second.
pub(super) async fn connections_per_second(
    library: &Library,
    port: u16,
    pool: &Arc<Pool>,
    count: usize,
) -> BenchResult<f64> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = JoinSet::new();
    for _ in 0..CONCURRENCY.min(count) {
        let (pool, next, library) = (Arc::clone(pool), Arc::clone(&next), library.clone());
        workers.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < count {
                let identity = pool.take()?;
                let connected = library.connect_once(port, &identity).await;
                pool.give_back(identity);
                connected?;
            }
            Ok::<(), BenchError>(())
        });
    }
    while let Some(worker) = workers.join_next().await {
        worker.during("running a connection worker")??;
    }
    Ok(count as f64 / start.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(thing: &str) -> Identity {
        Identity {
            thing: thing.into(),
            cert: "cert.pem".into(),
            key: "key.pem".into(),
            ca: "ca.pem".into(),
        }
    }

    #[test]
    fn a_client_id_comes_back_only_after_every_other_one() {
        let pool = Pool::new(vec![identity("a"), identity("b"), identity("c")]);
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        pool.give_back(a);
        assert_eq!(pool.take().unwrap().thing, "c");
        assert_eq!(pool.take().unwrap().thing, "a");
        assert!(pool.take().is_err());
        pool.give_back(b);
        assert_eq!(pool.take().unwrap().thing, "b");
    }
}
