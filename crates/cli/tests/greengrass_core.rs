//! `iotcore greengrass core run` end to end, beside `iotcore emulator`, both
//! as child processes:
//!
//! * the flow of AWS's `basic_discovery` sample, with AWS's Python SDK
//!   (`tests/peers/awsiot_discovery.py --publish`): discovery on the
//!   emulator hands the device the core's address and CA, the device
//!   connects to the core with its thing name and publishes, and the core's
//!   bridge delivers the message to a subscriber on the emulator;
//! * the core cut from the emulator (its bridge goes through a fault proxy):
//!   local devices go on talking through the core, and what the bridge owes
//!   the cloud arrives, in order, when the link returns.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt;
use iotcore::{Client, QoS};
use iotcore_test_support::{FaultProxy, run_peer};
use tempfile::TempDir;

mod common;

use common::{Emulator, IOTCORE, Lines, iotcore, ok, text};

/// Safety net for what must arrive; never a performance threshold.
const PATIENCE: Duration = Duration::from_secs(30);

/// Everything, and Greengrass discovery, for the test's devices.
const DEVICE_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iot:*","greengrass:Discover"],"Resource":"*"}]}"#;

const CORE: &str = "my-core";
const MAPPED: &str = "clients/+/hello/world";

/// An emulator with core device [`CORE`], client devices `sensor` and
/// `actuator` associated with it, and `watcher`, a cloud-side client.
struct Setup {
    data: TempDir,
    emulator: Emulator,
}

impl Setup {
    fn start() -> Setup {
        let data = tempfile::tempdir().expect("data directory");
        let emulator = Emulator::start_with(data.path(), &["--no-api"]);
        let policy = data.path().join("devices.json");
        std::fs::write(&policy, DEVICE_POLICY).expect("policy file");
        let setup = Setup { data, emulator };
        setup.ok(&["policy", "create", "devices", policy.to_str().unwrap()]);
        let out = setup.files();
        for thing in ["sensor", "actuator", "watcher"] {
            setup.ok(&[
                "thing",
                "create",
                thing,
                "--policy",
                "devices",
                "--out",
                out.to_str().unwrap(),
            ]);
        }
        setup.ok(&["greengrass", "core", "create", CORE]);
        setup.ok(&[
            "greengrass",
            "associate",
            CORE,
            "--thing",
            "sensor",
            "--thing",
            "actuator",
        ]);
        setup
    }

    fn ok(&self, args: &[&str]) -> String {
        ok(self.data.path(), args)
    }

    /// Where the devices' files are.
    fn files(&self) -> PathBuf {
        self.data.path().join("devices")
    }

    /// `iotcore greengrass core run` bridging [`MAPPED`] to the cloud on `cloud_port`.
    fn core(&self, cloud_port: u16) -> Core {
        let mut child = Command::new(IOTCORE)
            .args([
                "greengrass",
                "core",
                "run",
                CORE,
                "--port",
                "0",
                "--sync-every",
                "1s",
            ])
            .args([
                "--to-cloud",
                MAPPED,
                "--cloud-port",
                &cloud_port.to_string(),
            ])
            .env("IOTCORE_DATA_DIR", self.data.path())
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the core");
        let line = Lines::of(child.stdout.take().expect("stdout"))
            .wait_for("the core's address", |l| l.contains("listening on"));
        let port = line
            .rsplit(':')
            .next()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Core { child, port }
    }

    /// `thing` connected to 127.0.0.1:`port`, trusting `ca`.
    async fn client(&self, thing: &str, port: u16, ca: &Path) -> Client {
        let files = self.files();
        Client::builder(thing)
            .endpoint("127.0.0.1")
            .port(port)
            .amazon_root_cas(false)
            .root_ca_pem_file(ca)
            .unwrap()
            .client_cert_pem_files(
                files.join(format!("{thing}.cert.pem")),
                files.join(format!("{thing}.private.key")),
            )
            .unwrap()
            .connect()
            .await
            .unwrap_or_else(|e| panic!("{thing} connects to port {port}: {e}"))
    }

    /// `watcher` on the emulator, subscribed to [`MAPPED`]: what the bridge delivers.
    async fn watch_cloud(&self) -> (Client, iotcore::Subscription) {
        let watcher = self
            .client("watcher", self.emulator.port, &self.cloud_ca())
            .await;
        let bridged = watcher
            .subscribe(MAPPED, QoS::AtLeastOnce)
            .await
            .expect("subscribed");
        (watcher, bridged)
    }

    fn cloud_ca(&self) -> PathBuf {
        self.data.path().join("pki/ca.pem")
    }

    fn core_ca(&self) -> PathBuf {
        self.data
            .path()
            .join("greengrass")
            .join(CORE)
            .join("pki/ca.pem")
    }
}

/// The core's process; killed on drop.
struct Core {
    child: Child,
    port: u16,
}

impl Drop for Core {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn next_payload(messages: &mut iotcore::Subscription) -> String {
    let message = tokio::time::timeout(PATIENCE, messages.next())
        .await
        .expect("a message in time")
        .expect("the stream goes on");
    message.payload_str().expect("UTF-8").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_basic_discovery_flow_reaches_the_cloud_through_the_core_and_its_bridge() {
    let setup = Setup::start();
    let core = setup.core(setup.emulator.port);
    let (watcher, mut bridged) = setup.watch_cloud().await;

    let files = setup.files();
    let port = setup.emulator.port.to_string();
    let run = run_peer(
        "awsiot_discovery.py",
        [
            "--port",
            &port,
            "--ca",
            setup.cloud_ca().to_str().unwrap(),
            "--cert",
            files.join("sensor.cert.pem").to_str().unwrap(),
            "--key",
            files.join("sensor.private.key").to_str().unwrap(),
            "--thing",
            "sensor",
            "--publish",
            "clients/sensor/hello/world",
            "--message",
            "hello through the core",
        ],
    )
    .await;
    assert!(run.success(), "{run}");
    let published = run
        .events()
        .into_iter()
        .find(|e| e["event"] == "published")
        .unwrap_or_else(|| panic!("no publish: {run}"));
    assert_eq!(published["port"], core.port, "{run}");
    assert_eq!(published["host"], "127.0.0.1", "{run}");

    assert_eq!(next_payload(&mut bridged).await, "hello through the core");

    // `iotcore discover` prints AWS's JSON, then which core address accepted the device.
    let discover = iotcore(
        setup.data.path(),
        &[
            "discover",
            "--thing",
            "sensor",
            "--cert",
            files.join("sensor.cert.pem").to_str().unwrap(),
            "--key",
            files.join("sensor.private.key").to_str().unwrap(),
            "--port",
            &port,
        ],
    );
    assert!(discover.status.success(), "{}", text(&discover.stderr));
    let answered = format!("at 127.0.0.1:{} as sensor", core.port);
    assert!(
        text(&discover.stderr).contains(&answered),
        "{}",
        text(&discover.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&discover.stdout).expect("AWS's JSON");
    assert_eq!(
        json["GGGroups"][0]["GGGroupId"],
        "greengrassV2-coreDevice-my-core"
    );
    watcher.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_from_the_cloud_the_core_serves_its_devices_and_catches_up_when_the_link_returns() {
    let setup = Setup::start();
    let proxy = FaultProxy::start(SocketAddr::from(([127, 0, 0, 1], setup.emulator.port)))
        .await
        .expect("proxy");
    let core = setup.core(proxy.port());
    let (watcher, mut bridged) = setup.watch_cloud().await;
    let sensor = setup.client("sensor", core.port, &setup.core_ca()).await;
    let actuator = setup.client("actuator", core.port, &setup.core_ca()).await;
    let mut local = actuator
        .subscribe(MAPPED, QoS::AtLeastOnce)
        .await
        .expect("subscribed on the core");

    sensor
        .publish("clients/sensor/hello/world", "before", QoS::AtLeastOnce)
        .await
        .expect("published");
    assert_eq!(next_payload(&mut local).await, "before");
    assert_eq!(next_payload(&mut bridged).await, "before");

    proxy.refuse(true);
    proxy.cut();
    const WHILE_CUT: usize = 20;
    for i in 0..WHILE_CUT {
        sensor
            .publish(
                "clients/sensor/hello/world",
                format!("cut-{i}"),
                QoS::AtLeastOnce,
            )
            .await
            .expect("the core acknowledges while the cloud is away");
    }
    for i in 0..WHILE_CUT {
        assert_eq!(next_payload(&mut local).await, format!("cut-{i}"));
    }

    proxy.refuse(false);
    // QoS 1 is at least once: a message the bridge sent just before the cut
    // may come again (DUP). Every new one comes in order.
    let mut seen = vec!["before".to_owned()];
    for i in 0..WHILE_CUT {
        let expected = format!("cut-{i}");
        loop {
            let payload = next_payload(&mut bridged).await;
            if payload == expected {
                break;
            }
            assert!(seen.contains(&payload), "{payload:?} before {expected:?}");
        }
        seen.push(expected);
    }
    sensor.close().await;
    actuator.close().await;
    watcher.close().await;
}
