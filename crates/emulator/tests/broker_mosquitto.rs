//! Mosquitto's command-line clients (`mosquitto_pub`, `mosquitto_sub`), a peer
//! we did not write, publish and subscribe through the emulator with the files
//! `iotcore thing create` writes.

mod support;

use std::process::Stdio;
use std::time::Duration;

use iotcore_emulator::control::ThingPolicy;
use support::{Device, PATIENCE, Setup};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// Arguments reaching the emulator as `device` over MQTT `version` ("mqttv311" or "5").
fn args(setup: &Setup, device: &Device, version: &str) -> Vec<String> {
    let files = &device.files;
    [
        "-h",
        "127.0.0.1",
        "-p",
        &setup.addr().port().to_string(),
        "--cafile",
        &files.root_ca.display().to_string(),
        "--cert",
        &files.certificate.display().to_string(),
        "--key",
        &files.private_key.display().to_string(),
        "-i",
        &device.name,
        "-V",
        version,
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

/// Runs `mosquitto_pub` to completion; panics if it fails.
async fn mosquitto_pub(setup: &Setup, device: &Device, version: &str, extra: &[&str]) {
    let output = Command::new("mosquitto_pub")
        .args(args(setup, device, version))
        .args(extra)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(PATIENCE, output)
        .await
        .expect("mosquitto_pub finishes")
        .expect("mosquitto_pub runs (install mosquitto-clients: scripts/setup-peers)");
    assert!(
        output.status.success(),
        "mosquitto_pub failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A running `mosquitto_sub -d -v` and its output lines (debug lines tell when
/// it is subscribed, so that the test publishes only then).
struct Sub {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Sub {
    fn spawn(setup: &Setup, device: &Device, version: &str, extra: &[&str]) -> Sub {
        // mosquitto_sub block-buffers a piped stdout: have it flush every line.
        let mut child = Command::new("stdbuf")
            .args(["-oL", "mosquitto_sub"])
            .args(args(setup, device, version))
            .args(["-d", "-v", "-W", "30"])
            .args(extra)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("mosquitto_sub runs (install mosquitto-clients: scripts/setup-peers)");
        let stdout = child.stdout.take().expect("stdout piped");
        Sub {
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// Reads lines until one satisfies `wanted`; panics if the output ends first.
    async fn until(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        let mut seen = Vec::new();
        loop {
            let line = tokio::time::timeout(PATIENCE, self.lines.next_line())
                .await
                .expect("mosquitto_sub prints in time")
                .expect("mosquitto_sub output readable");
            match line {
                Some(line) if wanted(&line) => return line,
                Some(line) => seen.push(line),
                None => {
                    panic!("mosquitto_sub ended before the expected line; it printed {seen:#?}")
                }
            }
        }
    }

    async fn subscribed(&mut self) {
        self.until(|l| l.contains("received SUBACK")).await;
    }

    async fn finish(mut self) {
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("mosquitto_sub exits")
            .expect("mosquitto_sub status");
        assert!(status.success(), "mosquitto_sub failed: {status}");
    }
}

#[tokio::test]
async fn mosquitto_clients_publish_and_subscribe_through_the_emulator_over_mqtt311_and_mqtt5() {
    let setup = Setup::start().await;
    let (sub_dev, pub_dev) = (setup.device("mosq-sub"), setup.device("mosq-pub"));
    for version in ["mqttv311", "5"] {
        let topic = format!("sensors/mosq-pub/{version}");
        let mut sub = Sub::spawn(
            &setup,
            &sub_dev,
            version,
            &["-t", "sensors/+/+", "-q", "1", "-C", "1"],
        );
        sub.subscribed().await;
        mosquitto_pub(
            &setup,
            &pub_dev,
            version,
            &["-t", &topic, "-q", "1", "-m", "hello"],
        )
        .await;
        let expected = format!("{topic} hello");
        sub.until(|l| l == expected).await;
        sub.finish().await;
    }
}

#[tokio::test]
async fn mosquitto_sub_receives_a_retained_message_published_by_mosquitto_pub() {
    let setup = Setup::start().await;
    let (sub_dev, pub_dev) = (setup.device("mosq-sub"), setup.device("mosq-pub"));
    mosquitto_pub(
        &setup,
        &pub_dev,
        "mqttv311",
        &["-t", "config/mosq-pub", "-q", "1", "-r", "-m", "v42"],
    )
    .await;
    let mut sub = Sub::spawn(&setup, &sub_dev, "5", &["-t", "config/mosq-pub", "-C", "1"]);
    sub.until(|l| l.contains("received PUBLISH") && l.contains("r1"))
        .await;
    sub.until(|l| l == "config/mosq-pub v42").await;
    sub.finish().await;
}

#[tokio::test]
async fn mosquitto_pub_is_refused_with_a_client_id_that_is_not_its_thing() {
    let setup = Setup::start().await;
    let device = setup.device_with("mosq-pub", ThingPolicy::default());
    let impostor = Device {
        name: "someone-else".into(),
        ..device
    };
    let output = Command::new("mosquitto_pub")
        .args(args(&setup, &impostor, "5"))
        .args(["-t", "t", "-m", "x"])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(PATIENCE, output)
        .await
        .expect("mosquitto_pub finishes")
        .expect("mosquitto_pub runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not authorized") || stderr.contains("Not authorized"),
        "{stderr}"
    );
}
