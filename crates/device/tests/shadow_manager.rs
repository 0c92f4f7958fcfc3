//! The shadow manager against the in-process emulator, through a fault proxy
//! where the connection has to drop.

mod shadow_support;

use std::time::Duration;

use iotcore::shadow::{ChangeSource, ShadowManager};
use iotcore::{Client, ConnectionState};
use iotcore_emulator::policy::PolicyTemplate;
use iotcore_test_support::FaultProxy;
use serde_json::json;
use shadow_support::{Harness, next, object, within};

/// A device reaching the emulator through a fault proxy.
async fn device_behind_proxy(h: &Harness, thing: &str) -> (Client, FaultProxy) {
    let credentials = h.register(thing, PolicyTemplate::Thing);
    let proxy = FaultProxy::start(h.addr()).await.expect("proxy");
    let device = within(
        "connect",
        h.builder(thing, &credentials, proxy.port()).connect(),
    )
    .await
    .expect("device connects");
    (device, proxy)
}

/// Cuts the device off and keeps it off until `proxy.refuse(false)`.
async fn go_offline(device: &Client, proxy: &FaultProxy) {
    proxy.refuse(true);
    proxy.cut();
    let mut status = device.status();
    within("disconnect", status.wait_for(|s| !s.is_connected()))
        .await
        .expect("status");
}

async fn wait_connected(device: &Client) {
    let mut status = device.status();
    within("reconnect", status.wait_for(ConnectionState::is_connected))
        .await
        .expect("status");
}

#[tokio::test]
async fn a_manager_starts_on_a_missing_shadow_and_reports_into_it() {
    let h = Harness::start().await;
    let device = h.device("sensor-1").await;
    let (manager, _changes) = within("start", ShadowManager::start(device.shadow()))
        .await
        .unwrap();
    assert_eq!(manager.local().version, None);
    assert_eq!(manager.reads(), 1);
    let accepted = within("report", manager.report(json!({"temp": 21})))
        .await
        .unwrap();
    assert_eq!(accepted.version, 1);
    let local = manager.local();
    assert_eq!(local.version, Some(1));
    assert_eq!(local.reported, object(json!({"temp": 21})));
    let e = within("array report", manager.report(json!([1])))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), iotcore::shadow::ShadowErrorKind::InvalidRequest);
    device.close().await;
}

#[tokio::test]
async fn a_desired_change_reaches_the_application_which_reports_it_back() {
    let h = Harness::start().await;
    let device = h.device("sensor-2").await;
    let app = h.app("fleet-app").await;
    let cloud = app.thing_shadow("sensor-2", None);
    // A change waiting before the manager starts is its first item.
    within("desire", cloud.update_desired(json!({"interval": 10})))
        .await
        .unwrap();
    let (manager, mut changes) = within("start", ShadowManager::start(device.shadow()))
        .await
        .unwrap();
    let change = next("waiting change", &mut changes).await;
    assert_eq!(change.source(), ChangeSource::Read);
    assert_eq!(change.delta(), &object(json!({"interval": 10})));
    within("report back", manager.report(change.delta()))
        .await
        .unwrap();
    assert_eq!(manager.local().delta(), None);

    within(
        "desire",
        cloud.update_desired(json!({"mode": {"eco": true}})),
    )
    .await
    .unwrap();
    let change = next("delta", &mut changes).await;
    assert_eq!(change.source(), ChangeSource::Delta);
    assert_eq!(change.delta(), &object(json!({"mode": {"eco": true}})));
    #[derive(serde::Serialize, serde::Deserialize, Default, Debug, PartialEq)]
    #[serde(default)]
    struct Mode {
        eco: bool,
    }
    #[derive(serde::Serialize, serde::Deserialize, Default, Debug, PartialEq)]
    #[serde(default)]
    struct Settings {
        interval: u32,
        mode: Mode,
    }
    let reported: Settings = manager.local().reported_as().unwrap();
    assert_eq!(reported.interval, 10);
    assert_eq!(
        change.apply_to(&reported).unwrap(),
        Settings {
            interval: 10,
            mode: Mode { eco: true }
        }
    );
    within("report back", manager.report(change.delta()))
        .await
        .unwrap();
    let document = within("cloud get", cloud.get()).await.unwrap();
    assert_eq!(document.state.delta, None, "the device caught up");
    assert_eq!(manager.local().version, Some(document.version));
    assert_eq!(manager.conflicts_retried(), 0);
    device.close().await;
    app.close().await;
}

#[tokio::test]
async fn a_desired_change_made_while_the_device_was_offline_reaches_it_after_reconnecting() {
    let h = Harness::start().await;
    let (device, proxy) = device_behind_proxy(&h, "sensor-3").await;
    let app = h.app("fleet-app").await;
    let (manager, mut changes) = within("start", ShadowManager::start(device.shadow()))
        .await
        .unwrap();
    within("report", manager.report(json!({"led": "off"})))
        .await
        .unwrap();

    go_offline(&device, &proxy).await;
    // The delta this publishes goes nowhere: the device is not connected and
    // its session is clean.
    within(
        "desire while offline",
        app.thing_shadow("sensor-3", None)
            .update_desired(json!({"led": "on"})),
    )
    .await
    .unwrap();
    proxy.refuse(false);

    let change = next("the missed change", &mut changes).await;
    assert_eq!(change.source(), ChangeSource::Read);
    assert_eq!(change.delta(), &object(json!({"led": "on"})));
    assert_eq!(change.version(), 2);
    assert!(manager.reads() >= 2);
    within("report back", manager.report(change.delta()))
        .await
        .unwrap();
    assert_eq!(manager.local().delta(), None);
    device.close().await;
    app.close().await;
}

#[tokio::test]
async fn a_report_refused_with_409_is_retried_after_a_fresh_read() {
    let h = Harness::start().await;
    let (device, proxy) = device_behind_proxy(&h, "sensor-4").await;
    let app = h.app("fleet-app").await;
    let (manager, mut changes) = within("start", ShadowManager::start(device.shadow()))
        .await
        .unwrap();
    within("report", manager.report(json!({"led": "off"})))
        .await
        .unwrap();
    assert_eq!(manager.local().version, Some(1));

    go_offline(&device, &proxy).await;
    within(
        "desire while offline",
        app.thing_shadow("sensor-4", None)
            .update_desired(json!({"led": "on"})),
    )
    .await
    .unwrap();
    // Made while offline, this report carries version 1 and waits in the
    // offline queue; the shadow is at version 2 when it arrives.
    let report = tokio::spawn(async move {
        let result = manager.report(json!({"battery": 80})).await;
        (manager, result)
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    proxy.refuse(false);
    wait_connected(&device).await;

    let (manager, result) = within("report", report).await.expect("report task");
    let accepted = result.expect("the retry succeeds");
    assert_eq!(accepted.version, 3);
    assert!(manager.conflicts_retried() >= 1);
    let change = next("the change the fresh read found", &mut changes).await;
    assert_eq!(change.delta(), &object(json!({"led": "on"})));
    let local = manager.local();
    assert_eq!(local.version, Some(3));
    assert_eq!(local.reported, object(json!({"led": "off", "battery": 80})));
    device.close().await;
    app.close().await;
}

#[tokio::test]
async fn the_change_stream_ends_when_the_client_closes() {
    let h = Harness::start().await;
    let device = h.device("sensor-5").await;
    let (_manager, mut changes) = within("start", ShadowManager::start(device.shadow()))
        .await
        .unwrap();
    device.close().await;
    assert!(
        within("end", futures_util::StreamExt::next(&mut changes))
            .await
            .is_none()
    );
}
