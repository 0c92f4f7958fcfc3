//! The device client through an HTTP CONNECT proxy to the in-process emulator.

mod common;

use common::emulator::EmulatorBroker;
use common::{connect_refused, next, within};
use iotcore::{DisconnectReason, QoS};
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
        let error = connect_refused(broker.client(thing).proxy(&url).expect("proxy url")).await;
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

/// Set in the child of `the_proxy_comes_from_the_environment_unless_no_proxy_names_the_endpoint`:
/// `port|CA|certificate|key`.
const CHILD: &str = "IOTCORE_TEST_PROXY_FROM_ENV_CHILD";

/// `proxy_from_env()` reads HTTPS_PROXY and NO_PROXY, which only a process of
/// its own can be given: the test runs itself again as a child with them.
#[tokio::test]
async fn the_proxy_comes_from_the_environment_unless_no_proxy_names_the_endpoint() {
    if let Ok(target) = std::env::var(CHILD) {
        return connect_from_env(&target).await;
    }
    let e = EmulatorBroker::start().await;
    let proxy = ConnectProxy::start().await.expect("proxy");
    let creds = e.register_with_policy(
        "dev-env-proxied",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}"#,
    );
    let target = format!(
        "{}|{}|{}|{}",
        e.port(),
        e.ca().display(),
        creds.cert.display(),
        creds.key.display()
    );
    let run_child = |no_proxy: &str| {
        let exe = std::env::current_exe().expect("the test binary");
        tokio::process::Command::new(exe)
            .args([
                "--exact",
                "the_proxy_comes_from_the_environment_unless_no_proxy_names_the_endpoint",
                "--nocapture",
            ])
            .env(CHILD, &target)
            .env("HTTPS_PROXY", proxy.url())
            .env("NO_PROXY", no_proxy)
            .env_remove("https_proxy")
            .env_remove("no_proxy")
            .kill_on_drop(true)
            .output()
    };
    for (no_proxy, tunnels) in [("example.com", 1), ("example.com,127.0.0.1", 1)] {
        let output = within("the child", run_child(no_proxy))
            .await
            .expect("the child runs");
        assert!(
            output.status.success(),
            "the child (NO_PROXY={no_proxy}) failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            proxy.tunnels().len(),
            tunnels,
            "tunnels after a child with NO_PROXY={no_proxy}"
        );
    }
    assert_eq!(proxy.tunnels(), [format!("127.0.0.1:{}", e.port())]);
}

/// The child: connects with `proxy_from_env()` and publishes.
async fn connect_from_env(target: &str) {
    let parts: Vec<&str> = target.split('|').collect();
    let [port, ca, cert, key] = parts[..] else {
        panic!("port|CA|certificate|key, not {target}");
    };
    let creds = common::Credentials {
        cert: cert.into(),
        key: key.into(),
    };
    let port: u16 = port.parse().expect("port");
    let device = within(
        "connect with the environment's proxy",
        common::builder_for(port, std::path::Path::new(ca), &creds, "dev-env-proxied")
            .proxy_from_env()
            .connect(),
    )
    .await
    .expect("connects");
    device
        .publish("dt/dev-env-proxied/t", "env", QoS::AtLeastOnce)
        .await
        .expect("QoS 1 publish");
    device.close().await;
}
