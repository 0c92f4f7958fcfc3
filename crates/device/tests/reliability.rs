//! A connection that never gives up, against Mosquitto: the fault scenarios
//! through a fault-injecting proxy, and a broker restart that loses every
//! session.

mod common;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use iotcore::{ConnectionState, QoS};
use iotcore_test_support::FaultProxy;

use common::faults::{self, Faulty};
use common::mosquitto::MosquittoBroker;
use common::{wait_state, within};

async fn mosquitto_behind_proxy() -> (MosquittoBroker, Faulty) {
    // No cap on the broker's queue towards a subscriber: the scenarios are
    // about the device's side of the link.
    let m = MosquittoBroker::start_with(&["max_queued_messages 0"]);
    let proxy = Arc::new(FaultProxy::start(m.broker.addr()).await.expect("proxy"));
    let f = Faulty {
        direct: m.under_test(m.broker.port()),
        via: m.under_test(proxy.port()),
        proxy,
    };
    (m, f)
}

#[tokio::test]
async fn a_thousand_qos1_messages_all_arrive_while_the_link_is_cut_at_random_more_than_twenty_times()
 {
    let (_m, f) = mosquitto_behind_proxy().await;
    faults::a_thousand_qos1_messages_all_arrive_while_the_link_is_cut_at_random_more_than_twenty_times(&f).await;
}

#[tokio::test]
async fn a_half_open_link_is_detected_within_one_and_a_half_keep_alives() {
    let (_m, f) = mosquitto_behind_proxy().await;
    faults::a_half_open_link_is_detected_within_one_and_a_half_keep_alives(&f).await;
}

#[tokio::test]
async fn while_offline_qos0_fails_fast_and_qos1_waits_in_a_bounded_queue() {
    let (_m, f) = mosquitto_behind_proxy().await;
    faults::while_offline_qos0_fails_fast_and_qos1_waits_in_a_bounded_queue(&f).await;
}

#[tokio::test]
async fn status_events_follow_a_drop_and_the_reconnection() {
    let (_m, f) = mosquitto_behind_proxy().await;
    faults::status_events_follow_a_drop_and_the_reconnection(&f).await;
}

#[tokio::test]
async fn the_first_connect_retries_until_the_broker_is_reachable() {
    let (_m, f) = mosquitto_behind_proxy().await;
    faults::the_first_connect_retries_until_the_broker_is_reachable(&f).await;
}

#[tokio::test]
async fn the_first_connect_gives_up_after_the_configured_attempts() {
    let (_m, f) = mosquitto_behind_proxy().await;
    faults::the_first_connect_gives_up_after_the_configured_attempts(&f).await;
}

#[tokio::test]
async fn close_waits_for_in_flight_qos1_publishes() {
    let (_m, f) = mosquitto_behind_proxy().await;
    faults::close_waits_for_in_flight_qos1_publishes(&f).await;
}

#[tokio::test]
async fn a_persistent_session_resumes_and_gets_what_was_sent_while_offline() {
    let (_m, f) = mosquitto_behind_proxy().await;
    faults::a_persistent_session_resumes_and_gets_what_was_sent_while_offline(&f).await;
}

#[tokio::test]
async fn subscriptions_survive_a_broker_that_forgot_the_session() {
    let mut m = MosquittoBroker::start(); // no persistence: a restart forgets every session
    let b = m.under_test(m.broker.port());
    let device = b
        .client("dev-forgot")
        .persistent_session(Duration::from_secs(3600))
        .connect()
        .await
        .expect("device connect");
    let mut commands = device
        .subscribe("cmd/dev-forgot/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let mut status = device.status();

    m.broker.restart().expect("restart mosquitto");
    wait_state(&mut status, "the drop", |s| !s.is_connected()).await;
    let state = wait_state(
        &mut status,
        "the reconnection",
        ConnectionState::is_connected,
    )
    .await;
    assert_eq!(
        state,
        ConnectionState::Connected {
            session_present: false
        }
    );

    let cloud = b
        .client("cloud-forgot")
        .connect()
        .await
        .expect("cloud connect");
    // The device restores its subscription right after CONNACK; publish until
    // it is in place.
    let message = within("a message on the restored subscription", async {
        loop {
            cloud
                .publish("cmd/dev-forgot/reboot", "now", QoS::AtLeastOnce)
                .await
                .expect("cloud publish");
            if let Ok(Some(m)) =
                tokio::time::timeout(Duration::from_millis(200), commands.next()).await
            {
                break m;
            }
        }
    })
    .await;
    assert_eq!(message.topic(), "cmd/dev-forgot/reboot");
    device.close().await;
    cloud.close().await;
}
