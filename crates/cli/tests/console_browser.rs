//! The emulator console in a real browser (Debian's Chromium over WebDriver),
//! as a new user meets it: `iotcore emulator` prints the console's address; a
//! device (the SDK) connects; the page shows its messages, publishes to it,
//! edits its shadow's desired state and sees its report, revokes its
//! certificate and shows it gone with the reason. Each view is photographed
//! into `target/console-screenshots/` (the README shows one of them).
//!
//! Needs `scripts/setup-peers` (chromium, chromium-driver).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Emulator, iotcore, text};
use fantoccini::{Client as Page, Locator};
use iotcore::{Client, ConnectionState, DisconnectReason, ReconnectPolicy};
use iotcore_test_support::Browser;
use tokio_stream::StreamExt;

/// A safety net against a hung test, never a performance threshold.
const PATIENCE: Duration = Duration::from_secs(30);

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir
}

async fn fill(page: &Page, css: &str, value: &str) {
    let field = page.find(Locator::Css(css)).await.expect(css);
    field.clear().await.expect("cleared");
    field.send_keys(value).await.expect("typed");
}

async fn click(page: &Page, css: &str) {
    page.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .expect("clicked");
}

/// Opens `path` and, for a live view, waits until its event stream is connected.
async fn open(browser: &Browser, base: &str, path: &str, live: bool) {
    browser
        .client()
        .goto(&format!("{base}{path}"))
        .await
        .expect("page loads");
    if live {
        browser
            .wait_for_text(".live", "live")
            .await
            .expect("the stream connects");
    }
}

async fn next_message<S: tokio_stream::Stream + Unpin>(stream: &mut S) -> S::Item {
    tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("in time")
        .expect("stream open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_a_devices_life_in_a_real_browser() {
    let data = tempfile::tempdir().unwrap();
    let files = data.path().join("files");
    let created = iotcore(
        data.path(),
        &[
            "thing",
            "create",
            "sensor-1",
            "--out",
            files.to_str().unwrap(),
        ],
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    let emulator = Emulator::start_with(data.path(), &["--no-api", "--console-port", "0"]);
    let line = emulator
        .lines
        .wait_for("the console's address", |l| l.starts_with("console: "));
    let base = line
        .trim_start_matches("console: ")
        .trim_end_matches('/')
        .to_owned();

    let device = Client::builder("sensor-1")
        .endpoint("127.0.0.1")
        .port(emulator.port)
        .amazon_root_cas(false)
        .root_ca_pem_file(files.join("root-ca.pem"))
        .unwrap()
        .client_cert_pem_files(
            files.join("sensor-1.cert.pem"),
            files.join("sensor-1.private.key"),
        )
        .unwrap()
        .reconnect_policy(ReconnectPolicy {
            initial_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(200),
            reset_after: Duration::from_secs(30),
            seed: Some(7),
        })
        .connect()
        .await
        .expect("the device connects");
    let mut commands = device.cloud_to_device().await.expect("subscribed");
    let mut deltas = device
        .shadow()
        .deltas()
        .await
        .expect("subscribed to deltas");
    let mut status = device.status_events();

    let browser = Browser::start().await.expect("the browser starts");
    let page = browser.client();
    let shots = screenshots();

    // The device's message reaches the page.
    open(&browser, &base, "/mqtt?filter=device%2F%23", true).await;
    device
        .send_message(r#"{"temperature":21.5}"#)
        .await
        .expect("sent");
    let shown = browser
        .wait_for_text("#messages", "device/sensor-1/messages/events")
        .await
        .expect("the message appears");
    assert!(
        shown.contains("\"temperature\": 21.5"),
        "pretty JSON: {shown}"
    );
    browser.screenshot(shots.join("mqtt.png")).await.unwrap();

    // A message published on the page reaches the device.
    fill(
        page,
        "#topic",
        "device/sensor-1/messages/devicebound/reboot",
    )
    .await;
    fill(page, "#payload", "now").await;
    click(page, "section[aria-labelledby=publish-heading] button").await;
    browser
        .wait_for_text(
            ".notice",
            "Published to device/sensor-1/messages/devicebound/reboot",
        )
        .await
        .expect("the page says it published");
    let command = next_message(&mut commands).await;
    assert_eq!(
        (command.sub_topic(), &command.payload()[..]),
        ("reboot", &b"now"[..])
    );

    // Desired edited on the page: the device gets the delta, its report appears.
    open(&browser, &base, "/shadows/sensor-1", false).await;
    fill(page, "#desired", r#"{"led": "on"}"#).await;
    click(page, "section[aria-labelledby=edit-heading] button").await;
    browser
        .wait_for_text(".notice", "Desired updated")
        .await
        .expect("the page says desired changed");
    browser
        .wait_for_text(".live", "live")
        .await
        .expect("live again");
    let delta = next_message(&mut deltas).await;
    assert_eq!(delta.state["led"], "on");
    device
        .shadow()
        .update_reported(serde_json::json!({ "led": "on" }))
        .await
        .expect("reported");
    let reported = browser
        .wait_for_text("#reported-state", "\"led\": \"on\"")
        .await
        .expect("the report appears");
    assert!(reported.contains("Reported"), "{reported}");
    browser
        .wait_for_text("#history", "version 2")
        .await
        .expect("the version appears in the history");
    browser.screenshot(shots.join("shadow.png")).await.unwrap();

    // Revoked on the page: the device is cut off and the connections view says why.
    open(&browser, &base, "/connections", true).await;
    browser
        .wait_for_text("#connected", "sensor-1")
        .await
        .expect("the device is listed as connected");
    open(&browser, &base, "/certificates", false).await;
    browser
        .screenshot(shots.join("certificates.png"))
        .await
        .unwrap();
    click(page, "button[value=REVOKED]").await;
    browser
        .wait_for_text(".notice", "is now REVOKED")
        .await
        .expect("the page says it is revoked");
    let reason = loop {
        match next_message(&mut status).await {
            ConnectionState::Disconnected { reason } => break reason,
            _ => continue,
        }
    };
    assert!(
        matches!(
            reason,
            DisconnectReason::ServerDisconnect { .. }
                | DisconnectReason::ServerClosed
                | DisconnectReason::PolicyDenialSuspected { .. }
        ),
        "{reason:?}"
    );
    open(&browser, &base, "/connections", true).await;
    let log = browser
        .wait_for_text("#log", "AUTH_ERROR")
        .await
        .expect("the log says why");
    assert!(log.contains("REVOKED"), "{log}");
    let connected = browser
        .wait_for_text("#tables", "Connected (0)")
        .await
        .expect("the device is gone");
    assert!(!connected.contains("sensor-1 MQTT over"), "{connected}");
    browser
        .screenshot(shots.join("connections.png"))
        .await
        .unwrap();

    // The other views, photographed.
    for (path, name) in [
        ("/", "overview"),
        ("/things", "things"),
        ("/policies", "policies"),
        ("/jobs", "jobs"),
        ("/greengrass", "greengrass"),
    ] {
        open(&browser, &base, path, false).await;
        browser
            .wait_for_text("h1", "")
            .await
            .expect("the page renders");
        browser
            .screenshot(shots.join(format!("{name}.png")))
            .await
            .unwrap();
    }
    browser.close().await.expect("the browser closes");
    device.close().await;
}
