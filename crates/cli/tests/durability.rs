//! Nothing the emulator acknowledged is lost when its process dies.
//!
//! `iotcore emulator` runs as a child process behind a fault-injecting proxy.
//! Persistent sessions (clean session off, QoS 1) subscribe, our SDK and
//! paho-mqtt publish QoS 1 messages, and meanwhile the link is cut and the
//! emulator killed with SIGKILL and restarted on the same port and data
//! directory. Every message a publisher saw acknowledged must reach every
//! subscriber (duplicates are allowed: at least once).

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use iotcore::{Client, QoS, ReconnectPolicy};
use iotcore_test_support::{FaultProxy, PeerProcess, spawn_peer};
use tokio::time::Instant;

use common::{Emulator, HANG_GUARD, iotcore, text};

/// Messages per publisher.
const MESSAGES: usize = 1_500;
/// Faults injected while the messages flow, evenly over the stream.
const FAULTS: usize = 24;
/// How the emulator runs: no HTTPS API, and no AWS quotas, which would throttle
/// the publishers of this load test (100 publishes per second per connection)
/// and their reconnects after each fault (one CONNECT per second per client id).
const EMULATOR_ARGS: &[&str] = &["--no-api", "--quotas", "off"];

/// Every this many faults one is a SIGKILL of the emulator, the others cut the link.
const KILL_EVERY: usize = 6;
/// The topic filter of both subscribers (each publisher has its own topic under it).
const FILTER: &str = "dt/+/m";
/// How long everything may take before the test declares it hung.
const PATIENCE: Duration = Duration::from_secs(120);

/// Payloads seen, with how many times each was seen.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<HashMap<String, u32>>>);

impl Seen {
    fn add(&self, payload: String) {
        *self.0.lock().unwrap().entry(payload).or_default() += 1;
    }

    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    fn payloads(&self) -> HashSet<String> {
        self.0.lock().unwrap().keys().cloned().collect()
    }

    /// Copies beyond the first.
    fn duplicates(&self) -> u32 {
        self.0.lock().unwrap().values().map(|n| n - 1).sum()
    }
}

fn create_things(data: &Path, files: &Path, things: &[&str]) {
    for thing in things {
        let out = iotcore(
            data,
            &[
                "thing",
                "create",
                thing,
                "--template",
                "application",
                "--out",
                files.to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
}

/// Our SDK with a persistent session, reconnecting quickly, through `port`.
async fn device(thing: &str, files: &Path, port: u16) -> Client {
    Client::builder(thing)
        .endpoint("127.0.0.1")
        .port(port)
        .amazon_root_cas(false)
        .root_ca_pem_file(files.join("root-ca.pem"))
        .unwrap()
        .client_cert_pem_files(
            files.join(format!("{thing}.cert.pem")),
            files.join(format!("{thing}.private.key")),
        )
        .unwrap()
        .persistent_session(Duration::from_secs(3600))
        .reconnect_policy(ReconnectPolicy {
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(200),
            reset_after: Duration::from_secs(30),
            seed: Some(7),
        })
        .stream_buffer(4 * MESSAGES)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("{thing} connects: {e}"))
}

/// paho-mqtt with a persistent session through `port`, in `role` (see tests/peers/paho_durable.py).
fn paho(thing: &str, files: &Path, port: u16, role: &[&str]) -> PeerProcess {
    let file = |name: String| -> String { files.join(name).to_str().unwrap().to_owned() };
    let mut args = vec![
        "--port".to_owned(),
        port.to_string(),
        "--ca".to_owned(),
        file("root-ca.pem".into()),
        "--cert".to_owned(),
        file(format!("{thing}.cert.pem")),
        "--key".to_owned(),
        file(format!("{thing}.private.key")),
        "--client-id".to_owned(),
        thing.to_owned(),
        "--timeout".to_owned(),
        PATIENCE.as_secs().to_string(),
    ];
    args.extend(role.iter().map(|a| (*a).to_owned()));
    spawn_peer("paho_durable.py", args)
}

/// Records each `event` the peer prints (its `"payload"`) in `seen`, until it
/// prints `"done"` or ends.
fn record(mut peer: PeerProcess, event: &'static str, seen: Seen) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(line) = peer.next_event().await {
            match line["event"].as_str() {
                Some(e) if e == event => {
                    seen.add(line["payload"].as_str().unwrap_or_default().to_owned());
                }
                Some("done") => break,
                _ => {}
            }
        }
        peer.kill().await;
    })
}

/// Waits until `done` holds, polling; panics with `what` after [`PATIENCE`].
async fn until(what: impl Fn() -> String, done: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out: {}", what());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn restart(data: PathBuf, port: u16) -> Emulator {
    tokio::task::spawn_blocking(move || Emulator::start_on(&data, port, EMULATOR_ARGS))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_message_reaches_persistent_subscribers_through_link_cuts_and_sigkills()
{
    let data = tempfile::tempdir().unwrap();
    let files = data.path().join("files");
    create_things(
        data.path(),
        &files,
        &["dur-sub-sdk", "dur-sub-paho", "dur-pub-sdk", "dur-pub-paho"],
    );
    let mut emulator = Emulator::start_with(data.path(), EMULATOR_ARGS);
    let port = emulator.port;
    let proxy = FaultProxy::start(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap();

    // The persistent subscribers, subscribed before anything is published.
    let (sdk_seen, paho_seen, acked) = (Seen::default(), Seen::default(), Seen::default());
    let subscriber = device("dur-sub-sdk", &files, proxy.port()).await;
    let mut stream = subscriber
        .subscribe(FILTER, QoS::AtLeastOnce)
        .await
        .unwrap();
    let counting = {
        let seen = sdk_seen.clone();
        tokio::spawn(async move {
            while let Some(message) = stream.next().await {
                seen.add(String::from_utf8_lossy(message.payload()).into_owned());
            }
        })
    };
    let mut paho_subscriber = paho(
        "dur-sub-paho",
        &files,
        proxy.port(),
        &["--role", "subscribe", "--filter", FILTER],
    );
    paho_subscriber.wait_for_event("subscribed").await;
    let paho_counting = record(paho_subscriber, "received", paho_seen.clone());

    // The publishers, both connected before the first fault: what each saw
    // acknowledged goes into `acked`.
    let mut paho_publisher = paho(
        "dur-pub-paho",
        &files,
        proxy.port(),
        &[
            "--role",
            "publish",
            "--topic",
            "dt/dur-pub-paho/m",
            "--prefix",
            "paho",
            "--count",
            &MESSAGES.to_string(),
        ],
    );
    paho_publisher.wait_for_event("connected").await;
    let paho_publishing = record(paho_publisher, "acked", acked.clone());
    let publisher = device("dur-pub-sdk", &files, proxy.port()).await;
    let sdk_publishing = {
        let (publisher, acked) = (publisher.clone(), acked.clone());
        tokio::spawn(async move {
            futures_util::stream::iter(0..MESSAGES)
                .for_each_concurrent(20, |i| {
                    let (publisher, acked) = (&publisher, &acked);
                    async move {
                        let payload = format!("sdk-{i}");
                        let sent = publisher
                            .publish("dt/dur-pub-sdk/m", payload.clone(), QoS::AtLeastOnce)
                            .await;
                        if sent.is_ok() {
                            acked.add(payload);
                        }
                    }
                })
                .await;
        })
    };

    // Faults, spread over the stream at random points.
    let jitter: Vec<u64> = (0..FAULTS).map(|_| rand::random_range(0..30u64)).collect();
    let (mut cuts, mut kills) = (0, 0);
    for (fault, jitter) in (1..=FAULTS).zip(jitter) {
        let at = fault * 2 * MESSAGES / (FAULTS + 2);
        until(
            || {
                let payloads = acked.payloads();
                let sdk = payloads.iter().filter(|p| p.starts_with("sdk")).count();
                format!(
                    "{} of {at} messages acknowledged (SDK {sdk}, paho {})",
                    payloads.len(),
                    payloads.len() - sdk
                )
            },
            || acked.len() >= at,
        )
        .await;
        tokio::time::sleep(Duration::from_millis(jitter)).await;
        if fault % KILL_EVERY == KILL_EVERY / 2 {
            emulator.signal("-9");
            emulator.wait();
            emulator = restart(data.path().to_owned(), port).await;
            kills += 1;
        } else {
            proxy.cut();
            cuts += 1;
        }
    }
    assert!(cuts >= 20 && kills >= 3, "{cuts} cuts, {kills} kills");
    sdk_publishing.await.unwrap();
    paho_publishing.await.unwrap();
    assert_eq!(acked.len(), 2 * MESSAGES, "every publish was acknowledged");

    // Every acknowledged message arrives (the subscribers take a while to catch up).
    let acknowledged = acked.payloads();
    let missing = |seen: &Seen| acknowledged.difference(&seen.payloads()).count();
    let deadline = Instant::now() + HANG_GUARD;
    while (missing(&sdk_seen) > 0 || missing(&paho_seen) > 0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (sdk_missing, paho_missing) = (missing(&sdk_seen), missing(&paho_seen));
    eprintln!(
        "{cuts} link cuts, {kills} SIGKILLs; duplicates received: SDK {}, paho {}",
        sdk_seen.duplicates(),
        paho_seen.duplicates()
    );
    assert_eq!(
        (sdk_missing, paho_missing),
        (0, 0),
        "acknowledged messages never delivered (SDK subscriber, paho subscriber)"
    );

    counting.abort();
    paho_counting.abort();
    publisher.close().await;
    subscriber.close().await;
}

/// The payloads of the `received` events `peer` prints until it has printed
/// `count` of them, with their DUP flags; panics after [`HANG_GUARD`].
async fn received(peer: &mut PeerProcess, count: usize) -> Vec<(String, bool)> {
    let mut got = Vec::new();
    while got.len() < count {
        let event = tokio::time::timeout(HANG_GUARD, peer.wait_for_event("received"))
            .await
            .unwrap_or_else(|_| panic!("only {got:?} of {count} messages arrived"));
        got.push((
            event["payload"].as_str().unwrap_or_default().to_owned(),
            event["dup"].as_bool().unwrap_or_default(),
        ));
    }
    got
}

async fn session_present(peer: &mut PeerProcess) -> bool {
    let connected = tokio::time::timeout(HANG_GUARD, peer.wait_for_event("connected"))
        .await
        .expect("a CONNACK");
    connected["session_present"].as_bool().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_sessions_subscriptions_queue_and_in_flight_messages_survive_a_sigkill() {
    let data = tempfile::tempdir().unwrap();
    let files = data.path().join("files");
    create_things(
        data.path(),
        &files,
        &["keep-online", "keep-offline", "keep-pub"],
    );
    let mut emulator = Emulator::start_with(data.path(), EMULATOR_ARGS);
    let port = emulator.port;
    let subscriber = |thing: &str, more: &[&str]| {
        let mut role = vec!["--role", "subscribe"];
        role.extend(["--filter", "dt/keep-pub/m", "--filter", "dt/keep-pub/late"]);
        role.extend(more);
        paho(thing, &files, port, &role)
    };
    // One subscriber stays connected and never acknowledges: what it gets stays
    // in flight. The other leaves: what it gets waits in its session's queue.
    let mut online = subscriber("keep-online", &["--no-ack"]);
    online.wait_for_event("subscribed").await;
    let mut offline = subscriber("keep-offline", &[]);
    offline.wait_for_event("subscribed").await;
    offline.kill().await;

    let publisher = device("keep-pub", &files, port).await;
    let sent = ["m-0", "m-1", "m-2"];
    for payload in sent {
        publisher
            .publish("dt/keep-pub/m", payload, QoS::AtLeastOnce)
            .await
            .unwrap();
    }
    let first = received(&mut online, sent.len()).await;
    assert!(first.iter().all(|(_, dup)| !dup), "{first:?}");

    emulator.signal("-9");
    emulator.wait();
    let _emulator = restart(data.path().to_owned(), port).await;

    // The connected subscriber comes back (paho reconnects by itself) to its
    // session and gets its unacknowledged messages again, marked DUP.
    assert!(session_present(&mut online).await, "the session survived");
    let again = received(&mut online, sent.len()).await;
    let expected: Vec<(String, bool)> = sent.iter().map(|p| ((*p).to_owned(), true)).collect();
    assert_eq!(
        again, expected,
        "in flight before the kill: resent with DUP"
    );

    // The other one reconnects to its session and gets what was queued for it.
    let mut offline = subscriber("keep-offline", &[]);
    assert!(session_present(&mut offline).await, "the session survived");
    let queued = received(&mut offline, sent.len()).await;
    let expected: Vec<(String, bool)> = sent.iter().map(|p| ((*p).to_owned(), false)).collect();
    assert_eq!(queued, expected, "queued before the kill");

    // Neither subscribed again: their subscriptions survived.
    publisher
        .publish("dt/keep-pub/late", "late", QoS::AtLeastOnce)
        .await
        .unwrap();
    for peer in [&mut online, &mut offline] {
        assert_eq!(received(peer, 1).await, [("late".to_owned(), false)]);
    }
    let subscribes =
        |output: iotcore_test_support::PeerOutput| output.events_named("subscribed").len();
    assert_eq!(subscribes(online.kill().await), 1, "once, before the kill");
    assert_eq!(
        subscribes(offline.kill().await),
        0,
        "never: the session had it"
    );
    publisher.close().await;
}
