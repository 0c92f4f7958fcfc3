//! Fault scenarios, run against every broker through a [`FaultProxy`]:
//! cuts, stalls (half-open links) and refused connections.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use iotcore::{ConnectionState, DisconnectReason, ErrorKind, OfflineQueueLimits, QoS};
use iotcore_test_support::FaultProxy;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;

use super::{BrokerUnderTest, next, wait_state, within};

const MESSAGES: usize = 1000;
const CUTS: usize = 25;

/// A broker reached directly, and through a fault proxy.
pub struct Faulty {
    /// Clients that must not suffer the faults (the "cloud" side).
    pub direct: BrokerUnderTest,
    /// Clients whose link the proxy breaks (the device under test).
    pub via: BrokerUnderTest,
    pub proxy: Arc<FaultProxy>,
}

pub async fn a_thousand_qos1_messages_all_arrive_while_the_link_is_cut_at_random_more_than_twenty_times(
    f: &Faulty,
) {
    let cloud = f
        .direct
        .client("cloud-cuts")
        .stream_buffer(4 * MESSAGES)
        .connect()
        .await
        .expect("cloud connect");
    let mut received_stream = cloud
        .subscribe("dt/dev-cuts/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let collector = tokio::spawn(async move {
        let mut seen = BTreeSet::new();
        let mut deliveries = 0usize;
        while seen.len() < MESSAGES {
            let m = next("a published message", &mut received_stream).await;
            deliveries += 1;
            let n: usize = m
                .payload_str()
                .and_then(|s| s.parse().ok())
                .expect("numeric payload");
            seen.insert(n);
        }
        (seen, deliveries, received_stream.dropped_messages())
    });

    let device = f
        .via
        .client("dev-cuts")
        .connect()
        .await
        .expect("device connect");
    let (acked_tx, mut acked) = watch::channel(0usize);
    let publisher = {
        let device = device.clone();
        tokio::spawn(async move {
            futures_util::stream::iter(0..MESSAGES)
                .map(|i| {
                    let device = device.clone();
                    let acked_tx = acked_tx.clone();
                    async move {
                        device
                            .publish(
                                format!("dt/dev-cuts/{}", i % 8),
                                i.to_string(),
                                QoS::AtLeastOnce,
                            )
                            .await
                            .unwrap_or_else(|e| panic!("publish {i}: {e}"));
                        acked_tx.send_modify(|n| *n += 1);
                    }
                })
                .buffer_unordered(32)
                .collect::<Vec<()>>()
                .await;
        })
    };

    // Cut at random points of progress, each time on a live connection.
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut status = device.status();
    let mut cuts = 0;
    for k in 0..CUTS {
        let threshold = k * (MESSAGES - 100) / CUTS + rng.random_range(0..30);
        within("publishing progress", acked.wait_for(|n| *n >= threshold))
            .await
            .expect("progress channel");
        wait_state(
            &mut status,
            "reconnection before a cut",
            ConnectionState::is_connected,
        )
        .await;
        f.proxy.cut();
        cuts += 1;
        wait_state(&mut status, "the cut to be noticed", |s| !s.is_connected()).await;
    }
    within("all publishes acknowledged", publisher)
        .await
        .expect("publisher task");
    let (seen, deliveries, dropped) = within("every message at the subscriber", collector)
        .await
        .expect("collector task");

    assert!(cuts >= 20);
    assert!(
        f.proxy.accepted() > cuts,
        "the device reconnected after every cut"
    );
    assert_eq!(seen.len(), MESSAGES, "no message lost");
    assert_eq!(dropped, 0, "the subscriber's stream kept up");
    assert!(deliveries >= MESSAGES);
    tracing::info!(cuts, deliveries, "duplicates: {}", deliveries - MESSAGES);
    device.close().await;
    cloud.close().await;
}

pub async fn a_half_open_link_is_detected_within_one_and_a_half_keep_alives(f: &Faulty) {
    let keep_alive = Duration::from_secs(30);
    let device = f
        .via
        .client("dev-stall")
        .keep_alive(keep_alive)
        .connect()
        .await
        .expect("device connect");
    let mut events = device.status_events();

    // From here on nothing crosses the proxy, and time is the test's: tokio
    // advances the paused clock straight to the driver's next timer, so the
    // instants below are the state machine's own schedule.
    f.proxy.stall();
    tokio::time::pause();
    let stalled_at = tokio::time::Instant::now();
    // In paused time the hang guard must outlast the keep-alive timers.
    let first_event = tokio::time::timeout(keep_alive * 10, events.next())
        .await
        .expect("no disconnection within ten keep-alives");
    let reason = match first_event {
        Some(ConnectionState::Disconnected { reason }) => reason,
        other => panic!("expected Disconnected, got {other:?}"),
    };
    let detected_after = stalled_at.elapsed();
    assert_eq!(reason, DisconnectReason::KeepAliveTimeout { keep_alive });
    // tokio's timers fire on whole milliseconds, rounding each deadline up:
    // the driver sleeps twice (until the PINGREQ, until the timeout).
    let timer_rounding = Duration::from_millis(2);
    assert!(
        detected_after <= keep_alive * 3 / 2 + timer_rounding,
        "detected after {detected_after:?} of silence"
    );
    assert!(
        detected_after > keep_alive,
        "detected after {detected_after:?}: before the keep-alive ran out"
    );

    // The link heals: the client gets back on its own.
    f.proxy.resume();
    tokio::time::resume();
    let mut status = device.status();
    wait_state(
        &mut status,
        "the reconnection",
        ConnectionState::is_connected,
    )
    .await;
    device.close().await;
}

pub async fn while_offline_qos0_fails_fast_and_qos1_waits_in_a_bounded_queue(f: &Faulty) {
    let cloud = f
        .direct
        .client("cloud-offline")
        .connect()
        .await
        .expect("cloud connect");
    let mut received = cloud
        .subscribe("dt/dev-offline/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let device = f
        .via
        .client("dev-offline")
        .offline_queue_limits(OfflineQueueLimits {
            max_messages: 2,
            max_bytes: 1024,
        })
        .connect()
        .await
        .expect("device connect");
    let mut status = device.status();

    f.proxy.refuse(true);
    f.proxy.cut();
    wait_state(&mut status, "the drop", |s| !s.is_connected()).await;

    let err = device
        .publish("dt/dev-offline/zero", "x", QoS::AtMostOnce)
        .await
        .expect_err("QoS 0 while offline");
    assert_eq!(err.kind(), ErrorKind::Offline);

    let mut first = Box::pin(device.publish("dt/dev-offline/1", "first", QoS::AtLeastOnce));
    let mut second = Box::pin(device.publish("dt/dev-offline/2", "second", QoS::AtLeastOnce));
    assert!(
        (&mut first).now_or_never().is_none(),
        "queued, not answered"
    );
    assert!(
        (&mut second).now_or_never().is_none(),
        "queued, not answered"
    );
    let err = device
        .publish("dt/dev-offline/3", "third", QoS::AtLeastOnce)
        .await
        .expect_err("queue full");
    assert_eq!(err.kind(), ErrorKind::OfflineQueueFull);
    assert_eq!(err.topic(), Some("dt/dev-offline/3"));

    f.proxy.refuse(false);
    within("queued publish 1", first)
        .await
        .expect("first delivered");
    within("queued publish 2", second)
        .await
        .expect("second delivered");
    let mut payloads = BTreeSet::new();
    for _ in 0..2 {
        let m = next("queued message", &mut received).await;
        payloads.insert(m.payload_str().unwrap_or_default().to_owned());
    }
    assert_eq!(
        payloads,
        BTreeSet::from(["first".to_owned(), "second".to_owned()])
    );
    device.close().await;
    cloud.close().await;
}

pub async fn status_events_follow_a_drop_and_the_reconnection(f: &Faulty) {
    let device = f
        .via
        .client("dev-status")
        .connect()
        .await
        .expect("device connect");
    let mut events = device.status_events();
    f.proxy.cut();
    let mut seen = Vec::new();
    loop {
        let state = next("a status event", &mut events).await;
        let done = state.is_connected();
        seen.push(state);
        if done {
            break;
        }
    }
    assert!(
        matches!(seen[0], ConnectionState::Disconnected { .. }),
        "{seen:?}"
    );
    assert!(
        matches!(seen[1], ConnectionState::Reconnecting { attempt: 1, .. }),
        "{seen:?}"
    );
    assert_eq!(seen[2], ConnectionState::Connecting, "{seen:?}");
    assert_eq!(
        seen.last(),
        Some(&ConnectionState::Connected {
            session_present: false
        })
    );
    device.close().await;
    assert_eq!(next("Closed", &mut events).await, ConnectionState::Closed);
}

pub async fn the_first_connect_retries_until_the_broker_is_reachable(f: &Faulty) {
    f.proxy.refuse(true);
    let opener = {
        let proxy = f.proxy.clone();
        tokio::spawn(async move {
            proxy.wait_accepted(3).await;
            proxy.refuse(false);
        })
    };
    let device = f
        .via
        .client("dev-late-broker")
        .connect()
        .await
        .expect("connect() retries until the broker answers");
    within("opener", opener).await.expect("opener task");
    assert!(
        f.proxy.accepted() >= 4,
        "three refused attempts, then one that got through"
    );
    assert!(device.status().borrow().is_connected());
    device.close().await;
}

pub async fn the_first_connect_gives_up_after_the_configured_attempts(f: &Faulty) {
    f.proxy.refuse(true);
    let err = f
        .via
        .client("dev-no-broker")
        .initial_connect(3, Duration::from_secs(60))
        .connect()
        .await
        .expect_err("the broker never answers");
    assert_eq!(err.kind(), ErrorKind::ConnectFailed, "{err}");
    assert!(err.disconnect_reason().is_some(), "{err:?}");
    assert_eq!(f.proxy.accepted(), 3);
}

pub async fn close_waits_for_in_flight_qos1_publishes(f: &Faulty) {
    let cloud = f
        .direct
        .client("cloud-close")
        .connect()
        .await
        .expect("cloud connect");
    let mut received = cloud
        .subscribe("dt/dev-close-flush", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let device = f
        .direct
        .client("dev-close-flush")
        .connect()
        .await
        .expect("device connect");
    let mut publish = Box::pin(device.publish("dt/dev-close-flush", "last", QoS::AtLeastOnce));
    assert!(
        (&mut publish).now_or_never().is_none(),
        "sent, not yet acknowledged"
    );
    device.close().await;
    within("the publish", publish)
        .await
        .expect("close() let the in-flight publish finish");
    assert_eq!(
        next("the last message", &mut received).await.payload_str(),
        Some("last")
    );
    cloud.close().await;
}

pub async fn a_persistent_session_resumes_and_gets_what_was_sent_while_offline(f: &Faulty) {
    let device = f
        .via
        .client("dev-persist")
        .persistent_session(Duration::from_secs(3600))
        .connect()
        .await
        .expect("device connect");
    let mut commands = device
        .subscribe("cmd/dev-persist/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let mut status = device.status();

    f.proxy.refuse(true);
    f.proxy.cut();
    wait_state(&mut status, "the drop", |s| !s.is_connected()).await;
    let cloud = f
        .direct
        .client("cloud-persist")
        .connect()
        .await
        .expect("cloud connect");
    cloud
        .publish("cmd/dev-persist/while-away", "stored", QoS::AtLeastOnce)
        .await
        .expect("cloud publish");
    f.proxy.refuse(false);

    let state = wait_state(
        &mut status,
        "the reconnection",
        ConnectionState::is_connected,
    )
    .await;
    assert_eq!(
        state,
        ConnectionState::Connected {
            session_present: true
        }
    );
    let m = next("the stored message", &mut commands).await;
    assert_eq!(m.topic(), "cmd/dev-persist/while-away");
    assert_eq!(m.payload_str(), Some("stored"));
    device.close().await;
    cloud.close().await;
}
