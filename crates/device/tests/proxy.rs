//! The device client through an HTTP CONNECT proxy to the in-process emulator.

mod common;

use common::emulator::EmulatorBroker;
use common::{next, within};
use iotcore::{DisconnectReason, ErrorKind, QoS};
use iotcore_test_support::ConnectProxy;

/// The device publishes through the proxy; a subscriber connected directly gets it.
async fn publish_through(e: &EmulatorBroker, proxy_url: &str, thing: &str) {
    let broker = e.under_test(e.port());
    let cloud = broker
        .client("cloud-watcher")
        .connect()
        .await
        .expect("cloud connect");
    let mut sub = cloud
        .subscribe(&format!("dt/{thing}/#"), QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let device = within(
        "connect through the proxy",
        broker
            .client(thing)
            .proxy(proxy_url)
            .expect("proxy url")
            .connect(),
    )
    .await
    .expect("device connects through the proxy");
    device
        .publish(&format!("dt/{thing}/t"), "via proxy", QoS::AtLeastOnce)
        .await
        .expect("QoS 1 publish through the proxy");
    let message = next("the proxied publish", &mut sub).await;
    assert_eq!(message.payload_str(), Some("via proxy"));
    device.close().await;
    cloud.close().await;
}

#[tokio::test]
async fn mutual_tls_goes_through_a_connect_proxy() {
    let e = EmulatorBroker::start().await;
    let proxy = ConnectProxy::start().await.expect("proxy");
    publish_through(&e, &proxy.url(), "dev-proxied").await;
    assert_eq!(proxy.tunnels(), [format!("127.0.0.1:{}", e.port())]);
}

#[tokio::test]
async fn basic_auth_credentials_in_the_proxy_url_are_sent() {
    let e = EmulatorBroker::start().await;
    let proxy = ConnectProxy::with_basic_auth("alice", "p@ss:word")
        .await
        .expect("proxy");
    let url = format!("http://alice:p%40ss%3Aword@{}", proxy.addr());
    publish_through(&e, &url, "dev-auth-proxied").await;
    assert_eq!(proxy.tunnels().len(), 1);
    assert_eq!(proxy.refused(), 0);
}

#[tokio::test]
async fn wrong_proxy_credentials_fail_fast_with_the_proxy_refusal() {
    let e = EmulatorBroker::start().await;
    let proxy = ConnectProxy::with_basic_auth("alice", "right")
        .await
        .expect("proxy");
    let broker = e.under_test(e.port());
    for (thing, url) in [
        (
            "dev-wrong-auth",
            format!("http://alice:wrong@{}", proxy.addr()),
        ),
        ("dev-no-auth", proxy.url()),
    ] {
        let error = within(
            "a refused connect",
            broker
                .client(thing)
                .proxy(&url)
                .expect("proxy url")
                .connect(),
        )
        .await
        .expect_err("the proxy refuses");
        assert_eq!(error.kind(), ErrorKind::ConnectRefused, "{error}");
        let reason = error.disconnect_reason().expect("a reason");
        assert!(
            matches!(reason, DisconnectReason::ProxyRefused { status: 407, .. }),
            "{reason:?}"
        );
        let text = error.to_string();
        assert!(text.contains("proxy") && text.contains("407"), "{text}");
    }
    assert_eq!(proxy.refused(), 2, "one attempt each: a 407 is not retried");
    assert!(proxy.tunnels().is_empty());
}
