//! The durable offline queue (`ClientBuilder::offline_store`) across a device
//! process killed with SIGKILL: the device is a child process (this test
//! binary run again as [`child_device`]), publishing to the emulator
//! through a fault proxy; the subscriber lives in the test process.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use iotcore::offline_store::{LOG_FILE, parse};
use iotcore::{ErrorKind, OfflineQueueLimits, QoS};
use iotcore_test_support::FaultProxy;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use common::emulator::EmulatorBroker;
use common::{Credentials, builder_for, within};

/// Set (to anything) in the environment of the child process.
const CHILD: &str = "IOTCORE_OFFLINE_STORE_CHILD";
const THING: &str = "dev-store";
const TOPIC: &str = "dt/dev-store/seq";
/// The bound of the device's offline queue and store, in messages.
const MAX_MESSAGES: usize = 60;
/// What a child prints before each line meant for the test.
const SAY: &str = "child: ";

/// Not a test: the device process the test below starts, kills and starts
/// again. Run by re-executing this binary with [`CHILD`] set; otherwise it
/// does nothing.
///
/// Connects (with an offline store and a bound of [`MAX_MESSAGES`]), then
/// obeys lines on its standard input: `publish A B` issues QoS 1 publishes
/// of `A`..`B` to [`TOPIC`] in order, without waiting for them; each one
/// refused is reported as `refused <i> <kind>`, and `acked A B` once all
/// are acknowledged. Reports `disconnected` when the connection drops.
/// Closes the client and exits at the end of its input.
#[test]
#[ignore = "the device process of the offline store test, which starts it"]
fn child_device() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let env = |name: &str| PathBuf::from(std::env::var_os(name).expect(name));
    let port: u16 = std::env::var("CHILD_PORT").unwrap().parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        iotcore_test_support::init_tracing();
        let creds = Credentials {
            cert: env("CHILD_CERT"),
            key: env("CHILD_KEY"),
        };
        let client = builder_for(port, &env("CHILD_CA"), &creds, THING)
            .offline_store(env("CHILD_STORE"))
            .offline_queue_limits(OfflineQueueLimits {
                max_messages: MAX_MESSAGES,
                max_bytes: 1024 * 1024,
            })
            .connect()
            .await
            .expect("the child device connects");
        println!("{SAY}connected");
        let mut status = client.status();
        tokio::spawn(async move {
            while status.changed().await.is_ok() {
                if !status.borrow_and_update().is_connected() {
                    println!("{SAY}disconnected");
                }
            }
        });
        let (line_tx, mut lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::stdin().lines() {
                let _ = line_tx.send(line.expect("stdin"));
            }
        });
        let mut settled = Vec::new();
        while let Some(line) = lines.recv().await {
            let words: Vec<&str> = line.split_whitespace().collect();
            let ["publish", from, to] = words[..] else {
                panic!("unknown command {line:?}");
            };
            let (from, to): (usize, usize) = (from.parse().unwrap(), to.parse().unwrap());
            let mut waiting = Vec::new();
            for i in from..to {
                let client = client.clone();
                let mut publish = Box::pin(async move {
                    let result = client.publish(TOPIC, i.to_string(), QoS::AtLeastOnce).await;
                    report(i, result)
                });
                // The first poll hands the publish to the client: in order.
                if (&mut publish).now_or_never().is_none() {
                    waiting.push(publish);
                }
            }
            settled.push(tokio::spawn(async move {
                // Each refusal is reported as it happens, in the publish.
                let acked = futures_util::future::join_all(waiting).await;
                if acked.into_iter().all(|acked| acked) {
                    println!("{SAY}acked {from} {to}");
                }
            }));
        }
        for task in settled {
            task.await.unwrap();
        }
        client.close().await;
    });
}

/// Prints a refusal; true when acknowledged.
fn report(i: usize, result: Result<(), iotcore::Error>) -> bool {
    match result {
        Ok(()) => true,
        Err(e) => {
            println!("{SAY}refused {i} {:?}", e.kind());
            false
        }
    }
}

/// A running child device and the lines it says.
struct Device {
    child: Child,
    stdin: Option<ChildStdin>,
    said: mpsc::UnboundedReceiver<String>,
}

impl Device {
    fn start(port: u16, ca: &Path, creds: &Credentials, store: &Path) -> Device {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args(["child_device", "--exact", "--ignored", "--nocapture"])
            .env(CHILD, "1")
            .env("CHILD_PORT", port.to_string())
            .env("CHILD_CA", ca)
            .env("CHILD_CERT", &creds.cert)
            .env("CHILD_KEY", &creds.key)
            .env("CHILD_STORE", store)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the child device");
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let (tx, said) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stdout.next_line().await {
                if let Some(said) = line.strip_prefix(SAY) {
                    let _ = tx.send(said.to_owned());
                }
            }
        });
        Device { child, stdin, said }
    }

    async fn tell(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
    }

    /// The next line the child says, other than the `disconnected` of
    /// each failed reconnection.
    async fn next(&mut self) -> String {
        within("the child device to say something", async {
            loop {
                match self.said.recv().await {
                    Some(said) if said == "disconnected" => continue,
                    Some(said) => return said,
                    None => panic!("the child device ended"),
                }
            }
        })
        .await
    }

    /// Waits for the child to say `line`.
    async fn expect(&mut self, line: &str) {
        within(&format!("the child device to say {line:?}"), async {
            loop {
                match self.said.recv().await {
                    Some(said) if said == line => return,
                    Some(said) if said == "disconnected" => continue,
                    Some(said) => panic!("the child device said {said:?}, not {line:?}"),
                    None => panic!("the child device ended before saying {line:?}"),
                }
            }
        })
        .await;
    }
}

/// The publishes pending in the store's log, as the next client would read
/// it now; and whether the log ends with a whole record (a write may be
/// under way).
fn read_log(store: &Path) -> (Vec<usize>, bool) {
    let bytes = std::fs::read(store.join(LOG_FILE)).unwrap_or_default();
    let contents = parse(&bytes).expect("a store file");
    let pending = contents
        .pending
        .iter()
        .map(|p| {
            std::str::from_utf8(&p.publish.payload)
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    (pending, contents.damage.is_none())
}

/// The emulator, a proxy before it, a subscriber to [`TOPIC`], and the
/// device's credentials and store.
struct Setup {
    _emulator: EmulatorBroker,
    proxy: FaultProxy,
    ca: PathBuf,
    creds: Credentials,
    cloud: iotcore::Client,
    received: iotcore::Subscription,
    store: tempfile::TempDir,
    /// The payloads received, in the order they first arrived.
    order: Vec<usize>,
    seen: HashSet<usize>,
}

impl Setup {
    async fn new() -> Setup {
        let emulator = EmulatorBroker::start().await;
        let proxy = FaultProxy::start(emulator.addr()).await.expect("proxy");
        let broker = emulator.under_test(emulator.port());
        let creds = (broker.issue)(THING);
        let cloud = broker
            .client("cloud-store")
            .stream_buffer(1000)
            .connect()
            .await
            .expect("cloud connect");
        let received = cloud
            .subscribe(TOPIC, QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        Setup {
            _emulator: emulator,
            proxy,
            ca: broker.ca.clone(),
            creds,
            cloud,
            received,
            store: tempfile::tempdir().expect("store dir"),
            order: Vec::new(),
            seen: HashSet::new(),
        }
    }

    /// Starts a device process on the store, connecting through the proxy.
    async fn device(&self) -> Device {
        let mut device = Device::start(self.proxy.port(), &self.ca, &self.creds, self.store.path());
        device.expect("connected").await;
        device
    }

    /// Receives until `n` distinct payloads have arrived.
    async fn receive(&mut self, n: usize) {
        while self.seen.len() < n {
            let message = common::next("a message at the subscriber", &mut self.received).await;
            let i: usize = message.payload_str().unwrap().parse().unwrap();
            if self.seen.insert(i) {
                self.order.push(i);
            }
        }
    }

    async fn wait_pending_on_disk(&self, expected: impl IntoIterator<Item = usize>) {
        let expected: Vec<usize> = expected.into_iter().collect();
        within("the store's log to hold the publishes", async {
            while read_log(self.store.path()).0 != expected {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }

    /// Kills the device with SIGKILL.
    async fn kill(&self, mut device: Device) {
        device.child.start_kill().expect("kill");
        let status = within("the child to die", device.child.wait())
            .await
            .expect("wait");
        assert!(!status.success(), "killed: {status:?}");
    }

    /// Publishes `from..to` from the device, waits for their acknowledgement
    /// and for nothing to be pending, then closes the device.
    async fn finish(mut self, mut device: Device, from: usize, to: usize) -> Vec<usize> {
        device.tell(&format!("publish {from} {to}")).await;
        device.expect(&format!("acked {from} {to}")).await;
        device.stdin.take();
        let status = within("the child to exit", device.child.wait())
            .await
            .expect("wait");
        assert!(status.success(), "{status:?}");
        assert_eq!(
            read_log(self.store.path()),
            (vec![], true),
            "nothing pending"
        );
        self.receive(self.seen.len() + to - from).await;
        self.cloud.close().await;
        self.order
    }
}

#[tokio::test]
async fn publishes_queued_and_in_flight_when_the_device_is_killed_arrive_in_order_after_its_restart()
 {
    let mut s = Setup::new().await;

    // 1. Connected through the proxy, which then holds every byte back:
    //    publishes 0..40 are sent and never acknowledged.
    let mut device = s.device().await;
    s.proxy.stall();
    device.tell("publish 0 40").await;
    s.wait_pending_on_disk(0..40).await;

    // 2. The link is cut and reconnections refused: 40..60 wait in the
    //    offline queue; 60..80 are refused, as the bound counts the
    //    publishes in flight too.
    s.proxy.refuse(true);
    s.proxy.cut();
    device.expect("disconnected").await;
    device.tell("publish 40 80").await;
    let mut refused = Vec::new();
    for _ in MAX_MESSAGES..80 {
        refused.push(device.next().await);
    }
    let expected: Vec<String> = (MAX_MESSAGES..80)
        .map(|i| format!("refused {i} {:?}", ErrorKind::OfflineQueueFull))
        .collect();
    assert_eq!(refused, expected);
    s.wait_pending_on_disk(0..MAX_MESSAGES).await;

    // 3. SIGKILL, with nothing at the broker yet.
    s.kill(device).await;
    assert!(
        s.received.next().now_or_never().is_none(),
        "nothing reached the broker before the kill"
    );
    s.proxy.resume();
    s.proxy.refuse(false);

    // 4. Restarted on the same store: the recovered publishes go first (all
    //    of them, although the store was full); new ones are accepted once
    //    they are done.
    let device = s.device().await;
    s.receive(MAX_MESSAGES).await;
    s.wait_pending_on_disk([]).await;
    let order = s.finish(device, 80, 90).await;
    let expected: Vec<usize> = (0..MAX_MESSAGES).chain(80..90).collect();
    assert_eq!(order, expected, "every accepted publish arrives, in order");
}

#[tokio::test]
async fn a_log_cut_mid_record_by_the_crash_is_recovered_up_to_its_last_whole_record() {
    let mut s = Setup::new().await;
    let mut device = s.device().await;
    s.proxy.refuse(true);
    s.proxy.cut();
    device.expect("disconnected").await;
    device.tell("publish 0 10").await;
    s.wait_pending_on_disk(0..10).await;
    s.kill(device).await;

    // The last record loses its last 3 bytes, as a write cut short would.
    let log = s.store.path().join(LOG_FILE);
    let bytes = std::fs::read(&log).expect("log");
    std::fs::write(&log, &bytes[..bytes.len() - 3]).expect("cut the log");
    s.proxy.refuse(false);

    let device = s.device().await;
    s.receive(9).await;
    let order = s.finish(device, 10, 12).await;
    let expected: Vec<usize> = (0..9).chain(10..12).collect();
    assert_eq!(order, expected, "all but the torn publish arrive, in order");
}
