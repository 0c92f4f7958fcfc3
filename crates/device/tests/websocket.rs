//! The device client over MQTT over WebSocket with SigV4, against the
//! in-process emulator: the emulator's access keys (`iotcore credentials
//! create`), directly and through an HTTP CONNECT proxy.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::emulator::EmulatorBroker;
use common::{connect_refused, fast_reconnect, next, wait_state, within};
use iotcore::aws_credentials::{AwsCredentials, CredentialsProvider};
use iotcore::{Client, ClientBuilder, DisconnectReason, Door, QoS};
use iotcore_emulator::control::AccessKeyOptions;
use iotcore_test_support::ConnectProxy;

fn issue(e: &EmulatorBroker, temporary: bool) -> AwsCredentials {
    let options = AccessKeyOptions {
        policy: None,
        temporary: temporary.then(|| Duration::from_secs(3600)),
    };
    let key = e
        .control()
        .create_access_key("device-sdk-test", &options)
        .expect("access key issued");
    AwsCredentials::new(key.access_key_id, key.secret_access_key, key.session_token)
}

/// A client of the emulator over WebSocket with `credentials`.
fn ws_client(e: &EmulatorBroker, thing: &str, credentials: CredentialsProvider) -> ClientBuilder {
    Client::builder(thing)
        .endpoint("127.0.0.1")
        .port(e.port())
        .amazon_root_cas(false)
        .root_ca_pem_file(e.ca())
        .expect("CA file")
        .websocket(credentials)
        .region("us-east-1")
        .reconnect_policy(fast_reconnect(11))
        .connect_timeout(Duration::from_secs(5))
}

/// Subscribes to `dt/<thing>/#`, publishes QoS 1 to it, and receives it.
async fn round_trip(client: &Client, thing: &str) {
    let mut sub = client
        .subscribe(&format!("dt/{thing}/#"), QoS::AtLeastOnce)
        .await
        .expect("subscribe over WebSocket");
    client
        .publish(&format!("dt/{thing}/t"), "over websocket", QoS::AtLeastOnce)
        .await
        .expect("QoS 1 publish over WebSocket");
    let message = next("the message back", &mut sub).await;
    assert_eq!(message.payload_str(), Some("over websocket"));
}

#[tokio::test]
async fn websocket_with_sigv4_publishes_subscribes_and_receives() {
    let e = EmulatorBroker::start().await;
    let credentials = CredentialsProvider::fixed(issue(&e, false));
    let client = within("connect", ws_client(&e, "ws-dev", credentials).connect())
        .await
        .expect("connects over WebSocket");
    round_trip(&client, "ws-dev").await;
    client.close().await;
}

#[tokio::test]
async fn temporary_credentials_send_their_session_token() {
    let e = EmulatorBroker::start().await;
    let temporary = issue(&e, true);
    assert!(temporary.session_token().is_some());
    let client = within(
        "connect",
        ws_client(&e, "ws-temp", CredentialsProvider::fixed(temporary.clone())).connect(),
    )
    .await
    .expect("temporary credentials with their token connect");
    round_trip(&client, "ws-temp").await;
    client.close().await;

    // Without the token the emulator refuses, as AWS does.
    let tokenless = AwsCredentials::new(
        temporary.access_key_id(),
        temporary.secret_access_key(),
        None,
    );
    let error = connect_refused(ws_client(
        &e,
        "ws-temp-2",
        CredentialsProvider::fixed(tokenless),
    ))
    .await;
    assert!(
        matches!(
            error.disconnect_reason(),
            Some(DisconnectReason::UpgradeRefused { status: 403, .. })
        ),
        "{error}"
    );
}

#[tokio::test]
async fn websocket_goes_through_a_connect_proxy() {
    let e = EmulatorBroker::start().await;
    let proxy = ConnectProxy::with_basic_auth("dev", "pw")
        .await
        .expect("proxy");
    let client = within(
        "connect through the proxy",
        ws_client(
            &e,
            "ws-proxied",
            CredentialsProvider::fixed(issue(&e, false)),
        )
        .proxy(&format!("http://dev:pw@{}", proxy.addr()))
        .expect("proxy url")
        .connect(),
    )
    .await
    .expect("connects over WebSocket through the proxy");
    round_trip(&client, "ws-proxied").await;
    client.close().await;
    assert_eq!(proxy.tunnels(), [format!("127.0.0.1:{}", e.port())]);
}

#[tokio::test]
async fn a_wrong_secret_is_refused_with_the_servers_403_and_not_retried() {
    let e = EmulatorBroker::start().await;
    let good = issue(&e, false);
    let wrong = AwsCredentials::new(good.access_key_id(), "not-the-secret", None);
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = attempts.clone();
    let provider = CredentialsProvider::from_fn(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        let wrong = wrong.clone();
        async move { Ok(wrong) }
    });
    let error = connect_refused(ws_client(&e, "ws-wrong", provider)).await;
    let reason = error.disconnect_reason().expect("a reason");
    assert!(
        matches!(
            reason,
            DisconnectReason::UpgradeRefused {
                door: Door::WebSocketSigV4,
                status: 403,
                ..
            }
        ),
        "{reason:?}"
    );
    let text = error.to_string();
    assert!(text.contains("403") && text.contains("signature"), "{text}");
    // The server's own explanation is kept.
    assert!(
        text.contains("The request signature we calculated does not match"),
        "{text}"
    );
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        1,
        "a 403 is not retried by connect()"
    );
}

#[tokio::test]
async fn a_provider_failure_says_no_credentials() {
    let e = EmulatorBroker::start().await;
    let provider = CredentialsProvider::from_fn(|| async {
        Err(iotcore::aws_credentials::CredentialsError::Provider(
            "Cognito is unreachable".into(),
        ))
    });
    let error = within(
        "a failed connect",
        ws_client(&e, "ws-nocreds", provider)
            .initial_connect(2, Duration::from_secs(10))
            .connect(),
    )
    .await
    .expect_err("no credentials, no connection");
    let text = error.to_string();
    assert!(text.contains("Cognito is unreachable"), "{text}");
    assert!(matches!(
        error.disconnect_reason(),
        Some(DisconnectReason::CredentialsUnavailable { .. })
    ));
}

#[tokio::test]
async fn every_reconnect_asks_the_provider_again_and_loses_nothing() {
    let mut e = EmulatorBroker::start().await;
    let credentials = issue(&e, false);
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let provider = CredentialsProvider::from_fn(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        let credentials = credentials.clone();
        async move { Ok(credentials) }
    });
    let client = within("connect", ws_client(&e, "ws-again", provider).connect())
        .await
        .expect("connects");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let mut sub = client
        .subscribe("dt/ws-again/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let mut status = client.status();

    // The server goes away: the WebSocket closes under the client.
    e.restart().await;
    wait_state(&mut status, "the connection lost", |s| !s.is_connected()).await;
    // Published while disconnected: waits in the offline queue.
    let publish = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .publish("dt/ws-again/after", "queued", QoS::AtLeastOnce)
                .await
        })
    };
    wait_state(&mut status, "reconnected", |s| s.is_connected()).await;
    within("the queued publish", publish)
        .await
        .expect("task")
        .expect("the queued publish is acknowledged after the reconnect");
    let message = next("the queued message", &mut sub).await;
    assert_eq!(message.payload_str(), Some("queued"));
    assert!(
        calls.load(Ordering::SeqCst) >= 2,
        "the reconnect fetched credentials again (and so signed again)"
    );
    client.close().await;
}

#[tokio::test]
async fn a_websocket_closed_at_its_time_limit_reconnects_and_loses_nothing() {
    // AWS closes a WebSocket connection after 24 hours; here after 1 s.
    let mut limits = iotcore_emulator::Limits::default();
    limits.max_websocket_connection = Duration::from_secs(1);
    let e = EmulatorBroker::start_with_limits(limits).await;
    let watcher = within(
        "the watcher connects",
        e.under_test(e.port()).client("cloud-watch").connect(),
    )
    .await
    .expect("the watcher connects over mutual TLS");
    let mut disconnects = watcher
        .subscribe("$aws/events/presence/disconnected/ws-ttl", QoS::AtLeastOnce)
        .await
        .expect("subscribe to the lifecycle events");
    let client = within(
        "connect",
        ws_client(&e, "ws-ttl", CredentialsProvider::fixed(issue(&e, false))).connect(),
    )
    .await
    .expect("connects over WebSocket");
    let mut sub = client
        .subscribe("dt/ws-ttl/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe");

    // Publishes, one at a time, until the broker has closed the connection
    // twice at its limit; each is acknowledged, across the reconnects.
    let mut sent = 0;
    let mut reasons = Vec::new();
    while reasons.len() < 2 {
        client
            .publish(
                &format!("dt/ws-ttl/{sent}"),
                sent.to_string(),
                QoS::AtLeastOnce,
            )
            .await
            .expect("every publish is acknowledged, across the reconnects");
        sent += 1;
        assert!(
            sent < 5_000,
            "no WEBSOCKET_TTL_EXPIRATION disconnect after {sent} publishes: {reasons:?}"
        );
        if let Ok(Some(event)) = tokio::time::timeout(
            Duration::from_millis(20),
            futures_util::StreamExt::next(&mut disconnects),
        )
        .await
        {
            let event: serde_json::Value =
                serde_json::from_slice(event.payload()).expect("a JSON lifecycle event");
            reasons.push(
                event["disconnectReason"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
    }
    assert_eq!(
        reasons,
        ["WEBSOCKET_TTL_EXPIRATION", "WEBSOCKET_TTL_EXPIRATION"]
    );
    // Every message came back (at least once).
    let mut received = std::collections::BTreeSet::new();
    while received.len() < sent {
        let message = next("every message back", &mut sub).await;
        received.insert(message.payload_str().unwrap_or_default().to_owned());
    }
    client.close().await;
    watcher.close().await;
}
