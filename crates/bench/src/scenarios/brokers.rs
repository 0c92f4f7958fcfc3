//! Broker throughput: QoS 1 messages per second through `iotcore emulator`, through
//! Mosquitto (single-threaded) and through rumqttd (multi-threaded), with the same clients (iotcore SDK clients in the bench
//! process), the same certificates and the same load.
//!
//! * fan-in: [`PUBLISHERS`] publishers, each to its own `dt/<thing>/bench`, one
//!   subscriber of `dt/+/bench`; the figure is messages per second received.
//! * fan-out: one publisher to [`FAN_OUT_TOPIC`], [`SUBSCRIBERS`] subscribers of it;
//!   the figure is deliveries per second (subscribers × messages).
//!
//! Publishers pipeline like the client throughput cases ([`WINDOW`] QoS 1 publishes
//! in flight), and stay at most [`AHEAD`] messages ahead of what their subscribers
//! have received: a broker acknowledges a publish when it has queued it, so without
//! that the publishers outrun a lone fan-in subscriber and every broker's queue
//! limit (the emulator's, like AWS IoT Core's: 10,000 QoS 1 messages per session)
//! ends in dropped messages. Subscribers subscribe at QoS 1 once, before anything is
//! timed (the SUBACK has come back). The clock runs from the first publish until
//! every subscriber holds every message; each subscriber counts what it receives
//! per publisher, and a message that never arrives is an error, not a hang.
//!
//! Both shapes run twice: with clean sessions (nothing for a broker to store), and
//! with persistent sessions for the subscribers (MQTT 3.1.1 clean session off), where
//! the emulator stores each QoS 1 message for the subscribers' sessions before its
//! PUBACK (see the emulator's journal). Mosquitto runs the persistent work with its
//! persistence on ([`MOSQUITTO_PERSISTENCE`]); the emulator's clean-session figure of
//! the same run is shown beside it: the cost of storing.
//!
//! QoS 0 is not measured: both brokers drop QoS 0 messages for a subscriber that
//! falls behind (the emulator past 1,000 queued, as AWS does), so no count of them
//! can be complete.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ::iotcore::{Client, QoS, Subscription};
use bytes::Bytes;
use futures_util::future::{join_all, try_join_all};
use futures_util::{StreamExt, TryStreamExt, stream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::clients::iotcore;
use crate::error::{BenchError, BenchResult, Context};
use crate::harness::{Identity, PeerKind, ProcessUsage, RUMQTTD_SETTINGS, cpu_ticks_per_second};
use crate::report::{Better, Figure, Group, Measurement, Target};
use crate::scenarios::publish_case::WINDOW;
use crate::suite::Suite;

/// Fan-in publishers.
const PUBLISHERS: usize = 8;
/// Fan-out subscribers.
const SUBSCRIBERS: usize = 8;
/// Messages per publisher per run in a full run (divided by [`Suite::scale`]).
const MESSAGES: usize = 20_000;
/// How far a publisher may run ahead of each of its subscribers, in messages:
/// `PUBLISHERS × AHEAD` stays below the brokers' queue of 10,000.
const AHEAD: u64 = 1_000;
/// Subscribers tell waiting publishers of their progress every this many messages.
const PROGRESS_STEP: u64 = 50;
/// Payload bytes.
const SIZE: usize = 64;
/// What the fan-in subscriber subscribes to: every publisher's `dt/<thing>/bench`.
const FAN_IN_FILTER: &str = "dt/+/bench";
/// The fan-out topic (outside [`FAN_IN_FILTER`]).
const FAN_OUT_TOPIC: &str = "dt/bench-fanout/all";
/// Warm-up before the first run: each shape once with this many times fewer messages.
const WARM_UP_SCALE: usize = 10;
/// A subscriber that receives nothing new for this long has lost messages.
const STALL: Duration = Duration::from_secs(5);
/// Mosquitto as close to the emulator as its settings go: 100 QoS 1 deliveries in
/// flight per subscriber (the emulator's and AWS IoT Core's window; Mosquitto's
/// default is 20), TCP_NODELAY (which the emulator sets), and no limit on queued
/// messages: at its default of 1,000, and even at the emulator's 10,000, Mosquitto
/// 2.0.11 drops messages for the fan-in subscriber under this paced load.
const MOSQUITTO_SETTINGS: [&str; 3] = [
    "max_inflight_messages 100",
    "max_queued_messages 0",
    "set_tcp_nodelay true",
];

/// The target against rumqttd, a multi-threaded broker on the same cores:
/// the emulator, checking its policies on every publish and delivery, 1.5× faster.
const RUMQTTD_TARGET: f64 = 1.5;

/// Mosquitto's persistence for the persistent-session work: on, saved to
/// `persistence_location` every second (its closest to the emulator's store before
/// PUBACK is `autosave_on_changes`, saving the whole database after every change).
const MOSQUITTO_PERSISTENCE: [&str; 2] = ["persistence true", "autosave_interval 1"];
/// How long the subscribers' persistent sessions outlive their connections.
const SESSION_EXPIRY: Duration = Duration::from_secs(3600);

/// The sessions the subscribers keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sessions {
    /// Clean sessions: nothing is stored.
    Clean,
    /// Persistent sessions: what is queued for them is stored.
    Persistent,
}

/// How the messages flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    FanIn,
    FanOut,
}

impl Shape {
    const ALL: [Shape; 2] = [Shape::FanIn, Shape::FanOut];

    fn label(self, sessions: Sessions) -> String {
        let persistent = match sessions {
            Sessions::Clean => "",
            Sessions::Persistent => " persistent-session",
        };
        match self {
            Shape::FanIn => {
                format!("fan-in, {PUBLISHERS} publishers → 1{persistent} subscriber, QoS 1")
            }
            Shape::FanOut => {
                format!("fan-out, 1 publisher → {SUBSCRIBERS}{persistent} subscribers, QoS 1")
            }
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Shape::FanIn => "msgs/s",
            Shape::FanOut => "deliveries/s",
        }
    }
}

/// The identities of both shapes' clients (the same on both brokers).
struct Identities {
    publishers: Vec<Identity>,
    sink: Identity,
    source: Identity,
    subscribers: Vec<Identity>,
}

impl Identities {
    fn register(suite: &Suite) -> BenchResult<Identities> {
        Ok(Identities {
            publishers: (0..PUBLISHERS)
                .map(|i| suite.identity(&format!("bench-bt-pub-{i}")))
                .collect::<BenchResult<_>>()?,
            sink: suite.identity("bench-bt-sink")?,
            source: suite.identity("bench-bt-source")?,
            subscribers: (0..SUBSCRIBERS)
                .map(|i| suite.identity(&format!("bench-bt-sub-{i}")))
                .collect::<BenchResult<_>>()?,
        })
    }
}

/// What one subscriber has received in the current run, per publisher topic.
struct Tally {
    /// Who counts, on which broker: the name in error messages.
    name: String,
    sources: HashMap<String, usize>,
    /// Per source; receivers hear of it every [`PROGRESS_STEP`] messages.
    counts: Vec<watch::Sender<u64>>,
    total: AtomicU64,
    expected: AtomicU64,
    /// Messages its stream discarded because the consumer fell behind.
    discarded: AtomicU64,
    done_at: Mutex<Option<Instant>>,
    done: Notify,
}

impl Tally {
    fn new(name: String, topics: Vec<String>) -> Tally {
        Tally {
            name,
            counts: topics.iter().map(|_| watch::Sender::new(0)).collect(),
            sources: topics
                .into_iter()
                .enumerate()
                .map(|(i, t)| (t, i))
                .collect(),
            total: AtomicU64::new(0),
            expected: AtomicU64::new(u64::MAX),
            discarded: AtomicU64::new(0),
            done_at: Mutex::new(None),
            done: Notify::new(),
        }
    }

    /// Starts a run in which each publisher's topic brings `each` messages.
    fn expect(&self, each: u64) {
        for count in &self.counts {
            count.send_replace(0);
        }
        self.total.store(0, Ordering::SeqCst);
        if let Ok(mut done_at) = self.done_at.lock() {
            *done_at = None;
        }
        self.expected
            .store(each * self.counts.len() as u64, Ordering::SeqCst);
    }

    fn count(&self, topic: &str) {
        let Some(&source) = self.sources.get(topic) else {
            return;
        };
        self.counts[source].send_if_modified(|count| {
            *count += 1;
            *count % PROGRESS_STEP == 0
        });
        let total = self.total.fetch_add(1, Ordering::SeqCst) + 1;
        if total == self.expected.load(Ordering::SeqCst) {
            if let Ok(mut done_at) = self.done_at.lock() {
                *done_at = Some(Instant::now());
            }
            self.done.notify_one();
        }
    }

    fn count_of(&self, source: usize) -> u64 {
        *self.counts[source].borrow()
    }

    /// Waits until `source` has brought `at_least` messages (within [`STALL`]).
    async fn reached(&self, source: usize, at_least: u64) -> BenchResult<()> {
        let mut progress = self.counts[source].subscribe();
        match tokio::time::timeout(STALL, progress.wait_for(|c| *c >= at_least)).await {
            Ok(_) => Ok(()),
            Err(_) => Err(self.shortfall(&format!(
                "a publisher waited {STALL:?} for it to reach {at_least} messages"
            ))),
        }
    }

    /// Counts the subscription's messages until it ends.
    fn spawn_counting(self: &Arc<Self>, mut subscription: Subscription) -> JoinHandle<()> {
        let tally = Arc::clone(self);
        tokio::spawn(async move {
            while let Some(message) = subscription.next().await {
                tally.count(message.topic());
                tally
                    .discarded
                    .store(subscription.dropped_messages(), Ordering::Relaxed);
            }
        })
    }

    /// When the last expected message arrived; an error once nothing new has
    /// arrived for [`STALL`], or when a publisher's count is off.
    async fn finished(&self) -> BenchResult<Instant> {
        let mut last = (self.total.load(Ordering::SeqCst), Instant::now());
        loop {
            let done_at = self.done_at.lock().ok().and_then(|d| *d);
            if let Some(done_at) = done_at {
                return self.check_each().map(|()| done_at);
            }
            let _ = tokio::time::timeout(Duration::from_millis(250), self.done.notified()).await;
            let total = self.total.load(Ordering::SeqCst);
            if total != last.0 {
                last = (total, Instant::now());
            } else if last.1.elapsed() >= STALL {
                return Err(self.shortfall(&format!("nothing new for {STALL:?}")));
            }
        }
    }

    /// Every publisher's count is its share of the total (no duplicates hiding a loss).
    fn check_each(&self) -> BenchResult<()> {
        let each = self.expected.load(Ordering::SeqCst) / self.counts.len() as u64;
        if (0..self.counts.len()).all(|source| self.count_of(source) == each) {
            Ok(())
        } else {
            Err(self.shortfall("duplicates made up the total"))
        }
    }

    fn shortfall(&self, why: &str) -> BenchError {
        let each = self.expected.load(Ordering::SeqCst) / self.counts.len() as u64;
        let mut topics: Vec<(&String, &usize)> = self.sources.iter().collect();
        topics.sort_by_key(|(_, source)| **source);
        let counts: Vec<String> = topics
            .into_iter()
            .map(|(topic, &source)| format!("{topic}: {}", self.count_of(source)))
            .collect();
        let discarded = self.discarded.load(Ordering::Relaxed);
        let client_side = if discarded > 0 {
            format!(
                "; the subscriber's own stream discarded {discarded} (its consumer fell behind)"
            )
        } else {
            String::new()
        };
        BenchError::new(
            format!("counting what {} received", self.name),
            format!(
                "{why}: expected {each} messages per publisher, received {}{client_side}; \
                 the broker lost or duplicated messages (a queue limit reached?)",
                counts.join(", ")
            ),
        )
    }
}

/// Publishes `count` QoS 1 messages to `topic`, [`WINDOW`] in flight, never more
/// than [`AHEAD`] ahead of any of `readers` (a tally and the index of this topic in it).
async fn publish_paced(
    client: &Client,
    topic: &str,
    count: usize,
    readers: Vec<(&Tally, usize)>,
) -> BenchResult<()> {
    let payload = Bytes::from(vec![0u8; SIZE]);
    let readers = &readers;
    stream::iter(0..count as u64)
        .then(|sent| async move {
            if sent >= AHEAD && sent % PROGRESS_STEP == 0 {
                for (tally, source) in readers {
                    tally.reached(*source, sent - AHEAD).await?;
                }
            }
            Ok(())
        })
        .map_ok(|()| async {
            client
                .publish(topic, payload.clone(), QoS::AtLeastOnce)
                .await
                .during(format!("publishing to {topic}"))
        })
        .try_buffer_unordered(WINDOW)
        .try_for_each(|()| async { Ok(()) })
        .await
}

/// The clients on one broker, connected for the whole part.
struct Rig {
    /// Fan-in publishers and their topics.
    publishers: Vec<(Client, String)>,
    sink: (Client, Arc<Tally>),
    source: Client,
    subscribers: Vec<(Client, Arc<Tally>)>,
    counting: Vec<JoinHandle<()>>,
}

impl Rig {
    /// Connects every client to `broker` at 127.0.0.1:`port` and subscribes (SUBACK
    /// received), the subscribers with `sessions`.
    async fn connect(
        broker: &str,
        port: u16,
        identities: &Identities,
        buffer: usize,
        sessions: Sessions,
    ) -> BenchResult<Rig> {
        let mut counting = Vec::new();
        let mut subscribe = async |identity: &Identity,
                                   filter: &str,
                                   topics: Vec<String>|
               -> BenchResult<(Client, Arc<Tally>)> {
            let name = format!("{} on {broker}", identity.thing);
            let builder = iotcore::builder(port, identity)?.stream_buffer(buffer);
            let builder = match sessions {
                Sessions::Clean => builder,
                Sessions::Persistent => builder.persistent_session(SESSION_EXPIRY),
            };
            let client = builder
                .connect()
                .await
                .during(format!("connecting {name}"))?;
            let subscription = client
                .subscribe(filter, QoS::AtLeastOnce)
                .await
                .during(format!("subscribing {name} to {filter}"))?;
            let tally = Arc::new(Tally::new(name, topics));
            counting.push(tally.spawn_counting(subscription));
            Ok((client, tally))
        };
        let mut publishers = Vec::new();
        for identity in &identities.publishers {
            publishers.push((iotcore::connect(port, identity).await?, identity.topic()));
        }
        let topics = publishers.iter().map(|(_, t)| t.clone()).collect();
        let sink = subscribe(&identities.sink, FAN_IN_FILTER, topics).await?;
        let source = iotcore::connect(port, &identities.source).await?;
        let mut subscribers = Vec::new();
        for identity in &identities.subscribers {
            let topics = vec![FAN_OUT_TOPIC.to_owned()];
            subscribers.push(subscribe(identity, FAN_OUT_TOPIC, topics).await?);
        }
        Ok(Rig {
            publishers,
            sink,
            source,
            subscribers,
            counting,
        })
    }

    /// Runs `shape` once with `messages` per publisher; returns messages (fan-in) or
    /// deliveries (fan-out) per second.
    async fn measure(&self, shape: Shape, messages: usize) -> BenchResult<f64> {
        let tallies: Vec<&Tally> = match shape {
            Shape::FanIn => vec![&self.sink.1],
            Shape::FanOut => self.subscribers.iter().map(|(_, t)| &**t).collect(),
        };
        for tally in &tallies {
            tally.expect(messages as u64);
        }
        let start = Instant::now();
        match shape {
            Shape::FanIn => {
                try_join_all(self.publishers.iter().enumerate().map(
                    |(source, (client, topic))| {
                        publish_paced(client, topic, messages, vec![(&self.sink.1, source)])
                    },
                ))
                .await?;
            }
            Shape::FanOut => {
                let readers: Vec<(&Tally, usize)> = tallies.iter().map(|t| (*t, 0)).collect();
                publish_paced(&self.source, FAN_OUT_TOPIC, messages, readers).await?;
            }
        }
        let mut last = start;
        for tally in &tallies {
            last = last.max(tally.finished().await?);
        }
        let received = self.deliveries(shape, messages);
        Ok(received as f64 / last.duration_since(start).as_secs_f64())
    }

    /// Messages received in a run of `shape` with `messages` per publisher: by the
    /// fan-in subscriber, or by every fan-out subscriber together.
    fn deliveries(&self, shape: Shape, messages: usize) -> usize {
        let subscribers = match shape {
            Shape::FanIn => 1,
            Shape::FanOut => self.subscribers.len(),
        };
        messages * subscribers * self.publishers_for(shape)
    }

    /// [`measure`](Self::measure), and the CPU time (user + system) the broker's
    /// process `pid` spent per message received, in µs.
    async fn measure_with_cpu(
        &self,
        pid: u32,
        shape: Shape,
        messages: usize,
    ) -> BenchResult<(f64, f64)> {
        let before = ProcessUsage::of(pid)?.cpu_ticks;
        let rate = self.measure(shape, messages).await?;
        let ticks = ProcessUsage::of(pid)?.cpu_ticks.saturating_sub(before);
        let seconds = ticks as f64 / cpu_ticks_per_second();
        Ok((
            rate,
            seconds * 1e6 / self.deliveries(shape, messages) as f64,
        ))
    }

    /// Publishers of `shape`.
    fn publishers_for(&self, shape: Shape) -> usize {
        match shape {
            Shape::FanIn => self.publishers.len(),
            Shape::FanOut => 1,
        }
    }

    async fn close(self) {
        let clients = self
            .publishers
            .iter()
            .map(|(client, _)| client)
            .chain([&self.sink.0, &self.source])
            .chain(self.subscribers.iter().map(|(client, _)| client));
        join_all(clients.map(Client::close)).await;
        for task in self.counting {
            task.abort();
        }
    }
}

/// Measures both shapes with clean sessions, then with persistent ones, on both
/// brokers.
pub async fn run(suite: &Suite) -> BenchResult<Vec<Figure>> {
    let identities = Identities::register(suite)?;
    let clean = measure(suite, &identities, Sessions::Clean).await?;
    let persistent = measure(suite, &identities, Sessions::Persistent).await?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let messages = (MESSAGES / suite.scale()).max(1);
    let mut figures = Vec::new();
    for (sessions, rates) in [
        (Sessions::Clean, &clean),
        (Sessions::Persistent, &persistent),
    ] {
        for ((shape, result), clean) in Shape::ALL.iter().zip(rates).zip(&clean) {
            let (subject, peers) = result
                .rates
                .split_first()
                .ok_or("no broker")
                .during("broker throughput")?;
            let mut figure = peers.iter().fold(
                Figure::new(
                    Group::BrokerThroughput,
                    shape.label(sessions),
                    shape.unit(),
                    Better::Higher,
                    subject.clone(),
                ),
                |figure, peer| figure.peer(peer.clone()),
            );
            figure = figure.target(Target::Times {
                peer: PeerKind::Mosquitto.label().into(),
                times: 1.0,
            });
            match sessions {
                Sessions::Clean => {
                    figure = figure.target(Target::Times {
                        peer: PeerKind::Rumqttd.label().into(),
                        times: RUMQTTD_TARGET,
                    });
                }
                Sessions::Persistent => {
                    let mut same_run = clean.rates[0].clone();
                    same_run.who =
                        "iotcore emulator, clean sessions (nothing stored), same run".into();
                    figure = figure.peer(same_run);
                }
            }
            figures.push(figure.note(note(*shape, sessions, messages, cores)));
        }
    }
    // Where the brokers' time goes: their CPU per message in the clean-session runs.
    for (shape, result) in Shape::ALL.iter().zip(&clean) {
        let (subject, peers) = result
            .cpu
            .split_first()
            .ok_or("no broker")
            .during("broker throughput")?;
        let name = format!(
            "broker CPU per message received, {}",
            shape.label(Sessions::Clean)
        );
        let figure = Figure::new(
            Group::BrokerThroughput,
            name,
            "µs",
            Better::Lower,
            subject.clone(),
        );
        figures.push(peers.iter().cloned().fold(figure, Figure::peer).note(
            "the clean-session runs above: the CPU time (user + system, /proc/<pid>/stat) of \
             the broker's process during a run, divided by the messages its subscribers \
             received (fan-out: every subscriber's copy); the clients' own CPU, in the bench \
             process, is not counted",
        ));
    }
    Ok(figures)
}

/// One shape's figures, one measurement per broker, the emulator's first.
struct ShapeResult {
    /// Messages (fan-in) or deliveries (fan-out) per second.
    rates: Vec<Measurement>,
    /// The broker process's CPU time per message received, in µs.
    cpu: Vec<Measurement>,
}

/// The emulator's and its peers' rates for each shape with `sessions`,
/// [`Suite::runs`] times, rotating which broker goes first: per shape, the
/// emulator's measurements and the peers'. Clean sessions: Mosquitto and rumqttd;
/// persistent sessions: Mosquitto with its persistence on (rumqttd stores nothing
/// on disk).
async fn measure(
    suite: &Suite,
    identities: &Identities,
    sessions: Sessions,
) -> BenchResult<Vec<ShapeResult>> {
    let messages = (MESSAGES / suite.scale()).max(1);
    // Room for a whole run in each subscriber's stream: none discarded client-side.
    let buffer = PUBLISHERS * messages;
    let work = match sessions {
        Sessions::Clean => "broker throughput",
        Sessions::Persistent => "broker throughput, persistent sessions",
    };
    let emulator = Rig::connect(
        "the emulator",
        suite.emulator().port(),
        identities,
        buffer,
        sessions,
    )
    .await?;
    let store = tempfile::tempdir().during("making Mosquitto's persistence directory")?;
    let location = format!("persistence_location {}/", store.path().display());
    let mut settings: Vec<&str> = MOSQUITTO_SETTINGS.to_vec();
    let kinds: &[PeerKind] = match sessions {
        Sessions::Clean => &PeerKind::ALL,
        Sessions::Persistent => {
            settings.extend(MOSQUITTO_PERSISTENCE);
            settings.push(&location);
            &[PeerKind::Mosquitto]
        }
    };
    // Each peer: its broker and rig, or why it could not run.
    let mut peers = Vec::new();
    for kind in kinds {
        peers.push(match kind.start(suite.emulator().broker_tls(), &settings) {
            Ok(broker) => {
                suite.note_peer(broker.name());
                let rig = Rig::connect(broker.name(), broker.port(), identities, buffer, sessions)
                    .await?;
                Ok((broker, rig))
            }
            Err(why) => Err(why),
        });
    }
    // Every rig and its broker's process id, the emulator's first.
    let rigs: Vec<(&Rig, u32)> = std::iter::once((&emulator, suite.emulator().pid()?))
        .chain(
            peers
                .iter()
                .filter_map(|p| p.as_ref().ok().map(|(broker, rig)| (rig, broker.pid()))),
        )
        .collect();

    suite.progress(&format!("{work}: warming up"));
    for (rig, _) in &rigs {
        for shape in Shape::ALL {
            rig.measure(shape, (messages / WARM_UP_SCALE).max(1))
                .await?;
        }
    }
    // runs[shape][broker]: (rate, CPU per message) per run.
    let mut runs = vec![vec![Vec::new(); rigs.len()]; Shape::ALL.len()];
    for round in 0..suite.runs() {
        suite.progress(&format!("{work}: run {} of {}", round + 1, suite.runs()));
        for (shape, runs) in Shape::ALL.iter().zip(&mut runs) {
            for turn in 0..rigs.len() {
                let broker = (round + turn) % rigs.len();
                let (rig, pid) = rigs[broker];
                runs[broker].push(rig.measure_with_cpu(pid, *shape, messages).await?);
            }
        }
    }
    emulator.close().await;
    // Each peer's name in the figures, or why it was not measured.
    let mut names = Vec::new();
    for (kind, peer) in kinds.iter().zip(peers) {
        names.push(match peer {
            Ok((broker, rig)) => {
                rig.close().await;
                let persistence = match sessions {
                    Sessions::Clean => "",
                    Sessions::Persistent => ", persistence on",
                };
                Ok(format!("{}{persistence}", broker.name()))
            }
            Err(why) => Err((kind.label(), why)),
        });
    }
    Ok(runs
        .into_iter()
        .map(|runs| {
            let mut runs = runs.into_iter();
            let mut result = ShapeResult {
                rates: Vec::new(),
                cpu: Vec::new(),
            };
            let named = std::iter::once(Ok("iotcore emulator".to_owned())).chain(names.clone());
            for name in named {
                match name {
                    Ok(name) => {
                        let (rates, cpu) = runs.next().unwrap_or_default().into_iter().unzip();
                        result.rates.push(Measurement::new(&name, rates));
                        result.cpu.push(Measurement::new(name, cpu));
                    }
                    Err((label, why)) => {
                        result.rates.push(Measurement::skipped(label, &why));
                        result.cpu.push(Measurement::skipped(label, why));
                    }
                }
            }
            result
        })
        .collect())
}

fn note(shape: Shape, sessions: Sessions, messages: usize, cores: usize) -> String {
    let flow = match shape {
        Shape::FanIn => format!(
            "{PUBLISHERS} publishers × {messages} messages, each to its own dt/<thing>/bench, \
             one subscriber of {FAN_IN_FILTER}"
        ),
        Shape::FanOut => format!(
            "1 publisher × {messages} messages to {FAN_OUT_TOPIC}, {SUBSCRIBERS} subscribers \
             of it"
        ),
    };
    format!(
        "{flow}; {SIZE} B payloads, publishers pipelined ({WINDOW} in flight, at most {AHEAD} \
         ahead of their subscribers), subscribers at QoS 1, subscribed before the clock \
         starts; timed until every subscriber holds every message (counted per publisher); \
         the same iotcore SDK clients, in the bench process, for every broker, each broker \
         in its own process on the same {cores} cores. The emulator runs on a multi-thread \
         runtime (all {cores} cores) and checks its policy on every publish and delivery; \
         Mosquitto is single-threaded, without ACLs, with the emulator's in-flight window and \
         TCP_NODELAY and no queue limit ({}){}",
        MOSQUITTO_SETTINGS.join(", "),
        match sessions {
            Sessions::Clean => format!(
                "; rumqttd runs its listener and its router on a thread each (it has no \
                 worker-thread setting), with mutual TLS against the emulator's CA, no ACL (it \
                 has none), 100 QoS 1 deliveries in flight per subscriber (fixed in rumqttd) and \
                 commit-log segments large enough that no subscriber loses a message ({}); it \
                 has no TCP_NODELAY setting",
                RUMQTTD_SETTINGS.join(", ")
            ),
            Sessions::Persistent => format!(
                ". Persistent sessions: the subscribers connect with clean session off; the \
                 emulator stores each message queued for them (SQLite, group commit, no fsync) \
                 before its PUBACK; Mosquitto keeps them in memory with its persistence on \
                 ({}, in a temporary directory): a crash loses up to the last second",
                MOSQUITTO_PERSISTENCE.join(", ")
            ),
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally() -> Tally {
        Tally::new(
            "sink".into(),
            vec!["dt/a/bench".into(), "dt/b/bench".into()],
        )
    }

    #[tokio::test]
    async fn a_tally_is_done_when_every_publisher_has_brought_its_share() {
        let tally = tally();
        tally.expect(2);
        for topic in ["dt/a/bench", "dt/other/bench", "dt/b/bench", "dt/a/bench"] {
            tally.count(topic);
        }
        assert!(tally.done_at.lock().unwrap().is_none());
        assert_eq!((tally.count_of(0), tally.count_of(1)), (2, 1));
        tally.count("dt/b/bench");
        assert!(tally.finished().await.is_ok());
        tally.expect(1);
        assert_eq!((tally.count_of(0), tally.count_of(1)), (0, 0));
        assert!(tally.done_at.lock().unwrap().is_none());
    }

    #[tokio::test]
    async fn duplicates_that_make_up_the_total_are_an_error() {
        let tally = tally();
        tally.expect(2);
        for topic in ["dt/a/bench", "dt/a/bench", "dt/a/bench", "dt/b/bench"] {
            tally.count(topic);
        }
        let error = tally.finished().await.unwrap_err().to_string();
        assert!(error.contains("dt/a/bench: 3, dt/b/bench: 1"), "{error}");
    }

    #[tokio::test]
    async fn a_publisher_waits_for_its_own_topic_only() {
        let tally = tally();
        tally.expect(1_000);
        for _ in 0..PROGRESS_STEP {
            tally.count("dt/b/bench");
        }
        assert!(tally.reached(1, PROGRESS_STEP).await.is_ok());
        assert!(tally.reached(0, 0).await.is_ok());
    }
}
