//! Connect cost: connections per second from nothing to CONNACK, with ECDSA P-256
//! and RSA 2048 device keys.
//!
//! Each connection is TCP + a full mutual-TLS handshake + CONNECT → CONNACK, then
//! DISCONNECT and close. Every connection builds its own TLS configuration from the
//! identity's files, so a client has no session to resume: every handshake is a full
//! one. [`CONCURRENCY`] connections are in flight at a time.
//!
//! Three contenders, one side changed at a time: the iotcore SDK connecting to the
//! emulator (the subject), rumqttc connecting to the emulator (another client, same
//! keys), and the iotcore SDK connecting to Mosquitto (another broker, same server
//! certificate and CA). They take turns, never two at once, rotating who goes first.
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
use crate::harness::{AccessKey, Identity, MosquittoBroker};
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
    /// `None`: the broker could not be started (the reason is in `skipped`).
    port: Option<u16>,
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
    let mosquitto = MosquittoBroker::start_with(suite.emulator().broker_tls(), &MOSQUITTO_SETTINGS);
    let emulator_port = Some(suite.emulator().port());
    let contenders = [
        Contender {
            who: "iotcore → emulator".into(),
            library: Library::Iotcore,
            port: emulator_port,
            skipped: None,
        },
        Contender {
            who: format!("{} → emulator", suite.version_of("rumqttc")),
            library: Library::Rumqttc,
            port: emulator_port,
            skipped: None,
        },
        match &mosquitto {
            Ok(broker) => {
                suite.note_peer(&broker.name);
                Contender {
                    who: format!("iotcore → {}", broker.name),
                    library: Library::Iotcore,
                    port: Some(broker.port()),
                    skipped: None,
                }
            }
            Err(why) => Contender {
                who: "iotcore → Mosquitto".into(),
                library: Library::Iotcore,
                port: None,
                skipped: Some(why.to_string()),
            },
        },
    ];

    suite.progress("connect cost: warming up");
    for pool in &pools {
        for contender in &contenders {
            if let Some(port) = contender.port {
                connections_per_second(&contender.library, port, pool, CONCURRENCY).await?;
            }
        }
    }
    // rates[key][contender]: one value per run.
    let mut rates = vec![vec![Vec::new(); contenders.len()]; KEYS.len()];
    for round in 0..suite.runs() {
        suite.progress(&format!(
            "connect cost: run {} of {} ({connections} connections each)",
            round + 1,
            suite.runs()
        ));
        for (pool, rates) in pools.iter().zip(&mut rates) {
            for turn in 0..contenders.len() {
                let index = (round + turn) % contenders.len();
                let contender = &contenders[index];
                if let Some(port) = contender.port {
                    let rate =
                        connections_per_second(&contender.library, port, pool, connections).await?;
                    rates[index].push(rate);
                }
            }
        }
    }
    drop(mosquitto);

    Ok(KEYS
        .iter()
        .zip(rates)
        .map(|((_, label, _), rates)| {
            let mut rates = rates.into_iter();
            let subject = contenders[0].measurement(rates.next().unwrap_or_default());
            let figure = Figure::new(
                Group::ConnectCost,
                format!("{label} device key"),
                "conn/s",
                Better::Higher,
                subject,
            );
            contenders[1..]
                .iter()
                .zip(rates)
                .fold(figure, |figure, (contender, runs)| {
                    figure.peer(contender.measurement(runs))
                })
                .note(format!(
                    "{connections} connections per run, {CONCURRENCY} in flight; each is TCP + \
                     a full mutual-TLS handshake (a fresh TLS configuration per connection, so \
                     no session resumption; server key ECDSA P-256) + CONNECT → CONNACK + \
                     DISCONNECT; {label} client keys, {} client ids in rotation; Mosquitto \
                     with {}",
                    POOL_PER_SLOT * CONCURRENCY,
                    MOSQUITTO_SETTINGS.join(", ")
                ))
        })
        .collect())
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
