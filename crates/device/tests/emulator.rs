//! The device client against the in-process emulator of AWS IoT Core.

mod common;

use common::emulator::EmulatorBroker;
use common::{builder_for, next, scenarios};
use iotcore::{ProtocolVersion, QoS};

async fn emulator() -> EmulatorBroker {
    EmulatorBroker::start().await
}

#[tokio::test]
async fn connect_reports_connected_then_closed() {
    let e = emulator().await;
    scenarios::connect_reports_connected_then_closed(&e.under_test(e.port())).await;
}

#[tokio::test]
async fn publish_qos0_and_qos1_reach_a_subscriber() {
    let e = emulator().await;
    scenarios::publish_qos0_and_qos1_reach_a_subscriber(&e.under_test(e.port())).await;
}

#[tokio::test]
async fn each_subscription_stream_gets_only_its_filter() {
    let e = emulator().await;
    scenarios::each_subscription_stream_gets_only_its_filter(&e.under_test(e.port())).await;
}

#[tokio::test]
async fn unsubscribe_ends_the_stream_and_stops_delivery() {
    let e = emulator().await;
    scenarios::unsubscribe_ends_the_stream_and_stops_delivery(&e.under_test(e.port())).await;
}

#[tokio::test]
async fn telemetry_and_cloud_to_device_use_the_seed_topics() {
    let e = emulator().await;
    scenarios::telemetry_and_cloud_to_device_use_the_seed_topics(&e.under_test(e.port())).await;
}

#[tokio::test]
async fn a_server_signed_by_another_ca_is_refused() {
    let e = emulator().await;
    scenarios::a_server_signed_by_another_ca_is_refused(&e.under_test(e.port())).await;
}

#[tokio::test]
async fn an_unknown_client_certificate_is_refused() {
    let e = emulator().await;
    scenarios::an_unknown_client_certificate_is_refused(&e.under_test(e.port())).await;
}

#[tokio::test]
async fn close_fails_new_requests_and_ends_streams() {
    let e = emulator().await;
    scenarios::close_fails_new_requests_and_ends_streams(&e.under_test(e.port())).await;
}

#[tokio::test]
async fn requests_breaking_aws_limits_fail_before_sending() {
    let e = emulator().await;
    scenarios::requests_breaking_aws_limits_fail_before_sending(&e.under_test(e.port())).await;
}

#[tokio::test]
async fn an_empty_mqtt5_client_id_uses_and_reports_the_id_the_broker_assigns_on_each_connection() {
    let mut e = emulator().await;
    let arn = "arn:aws:iot:us-east-1:123456789012";
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": format!("{arn}:client/$GEN/*")},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
             "Resource": format!("{arn}:topic/dt/anonymous/*")},
            {"Effect": "Allow", "Action": "iot:Subscribe",
             "Resource": format!("{arn}:topicfilter/dt/anonymous/*")}
        ]
    });
    let creds = e.register_with_policy("anonymous", &policy.to_string());
    let client = builder_for(e.port(), e.ca(), &creds, "anonymous")
        .protocol(ProtocolVersion::V5)
        .client_id("")
        .connect()
        .await
        .expect("connect with an assigned id");
    let first = client.client_id();
    assert!(first.starts_with("$GEN/"), "{first}");
    let mut messages = client
        .subscribe("dt/anonymous/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    client
        .publish("dt/anonymous/hello", "hi", QoS::AtLeastOnce)
        .await
        .expect("publish");
    assert_eq!(
        next("the message", &mut messages).await.payload(),
        b"hi".as_slice()
    );

    // The emulator, like AWS, refuses a client id starting with '$': had the
    // client sent its assigned id back, it could not reconnect.
    let mut events = client.status_events();
    e.restart().await;
    while !next("reconnected", &mut events).await.is_connected() {}
    let second = client.client_id();
    assert!(second.starts_with("$GEN/"), "{second}");
    assert_ne!(second, first, "a new connection, a new id");
    client.close().await;
}

/// The fault scenarios with the emulator behind a fault proxy.
mod through_a_fault_proxy {
    use std::sync::Arc;

    use iotcore_test_support::FaultProxy;

    use super::common::emulator::EmulatorBroker;
    use super::common::faults::{self, Faulty};

    async fn emulator_behind_proxy() -> (EmulatorBroker, Faulty) {
        let e = EmulatorBroker::start().await;
        let proxy = Arc::new(FaultProxy::start(e.addr()).await.expect("proxy"));
        let f = Faulty {
            direct: e.under_test(e.port()),
            via: e.under_test(proxy.port()),
            proxy,
        };
        (e, f)
    }

    #[tokio::test]
    async fn a_thousand_qos1_messages_all_arrive_while_the_link_is_cut_at_random_more_than_twenty_times()
     {
        let (_e, f) = emulator_behind_proxy().await;
        faults::a_thousand_qos1_messages_all_arrive_while_the_link_is_cut_at_random_more_than_twenty_times(&f).await;
    }

    #[tokio::test]
    async fn a_half_open_link_is_detected_within_one_and_a_half_keep_alives() {
        let (_e, f) = emulator_behind_proxy().await;
        faults::a_half_open_link_is_detected_within_one_and_a_half_keep_alives(&f).await;
    }

    #[tokio::test]
    async fn while_offline_qos0_fails_fast_and_qos1_waits_in_a_bounded_queue() {
        let (_e, f) = emulator_behind_proxy().await;
        faults::while_offline_qos0_fails_fast_and_qos1_waits_in_a_bounded_queue(&f).await;
    }

    #[tokio::test]
    async fn status_events_follow_a_drop_and_the_reconnection() {
        let (_e, f) = emulator_behind_proxy().await;
        faults::status_events_follow_a_drop_and_the_reconnection(&f).await;
    }

    #[tokio::test]
    async fn the_first_connect_retries_until_the_broker_is_reachable() {
        let (_e, f) = emulator_behind_proxy().await;
        faults::the_first_connect_retries_until_the_broker_is_reachable(&f).await;
    }

    #[tokio::test]
    async fn the_first_connect_gives_up_after_the_configured_attempts() {
        let (_e, f) = emulator_behind_proxy().await;
        faults::the_first_connect_gives_up_after_the_configured_attempts(&f).await;
    }

    #[tokio::test]
    async fn close_waits_for_in_flight_qos1_publishes() {
        let (_e, f) = emulator_behind_proxy().await;
        faults::close_waits_for_in_flight_qos1_publishes(&f).await;
    }

    #[tokio::test]
    async fn a_persistent_session_resumes_and_gets_what_was_sent_while_offline() {
        let (_e, f) = emulator_behind_proxy().await;
        faults::a_persistent_session_resumes_and_gets_what_was_sent_while_offline(&f).await;
    }
}

#[tokio::test]
async fn the_client_reconnects_by_itself_when_the_emulator_restarts_mid_stream() {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use futures_util::StreamExt;
    use iotcore::{ConnectionState, QoS};
    use tokio::sync::watch;

    use common::{next, wait_state, within};

    const MESSAGES: usize = 300;
    let mut e = emulator().await;
    let b = e.under_test(e.port());
    let cloud = b
        .client("cloud-restart")
        .persistent_session(Duration::from_secs(3600))
        .stream_buffer(4 * MESSAGES)
        .connect()
        .await
        .expect("cloud connect");
    let mut telemetry = cloud
        .subscribe("dt/dev-restart/#", QoS::AtLeastOnce)
        .await
        .expect("cloud subscribe");
    let collector = tokio::spawn(async move {
        let mut seen = BTreeSet::new();
        while seen.len() < MESSAGES {
            let m = next("telemetry", &mut telemetry).await;
            seen.insert(m.payload_str().unwrap_or_default().to_owned());
        }
        seen.len()
    });
    let device = b
        .client("dev-restart")
        .connect()
        .await
        .expect("device connect");
    let mut commands = device
        .subscribe("cmd/dev-restart", QoS::AtLeastOnce)
        .await
        .expect("device subscribe");
    let mut events = device.status_events();

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
                            .publish("dt/dev-restart/n", i.to_string(), QoS::AtLeastOnce)
                            .await
                            .unwrap_or_else(|e| panic!("publish {i}: {e}"));
                        acked_tx.send_modify(|n| *n += 1);
                    }
                })
                .buffer_unordered(16)
                .collect::<Vec<()>>()
                .await;
        })
    };
    within(
        "a third of the stream",
        acked.wait_for(|n| *n >= MESSAGES / 3),
    )
    .await
    .expect("progress");
    e.restart().await;

    within("the rest of the stream", publisher)
        .await
        .expect("publisher");
    assert_eq!(
        within("every message", collector).await.expect("collector"),
        MESSAGES
    );
    let mut saw_drop = false;
    loop {
        match next("status events", &mut events).await {
            ConnectionState::Disconnected { .. } => saw_drop = true,
            ConnectionState::Connected { .. } if saw_drop => break,
            _ => {}
        }
    }
    let mut status = device.status();
    wait_state(&mut status, "connected", ConnectionState::is_connected).await;
    // The device's own subscription came back too.
    let message = within("a command after the restart", async {
        loop {
            cloud
                .publish("cmd/dev-restart", "still there?", QoS::AtLeastOnce)
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
    assert_eq!(message.payload_str(), Some("still there?"));
    device.close().await;
    cloud.close().await;
}

#[tokio::test]
async fn a_publish_the_policy_denies_is_reported_naming_the_topic() {
    use iotcore::{ConnectionState, DisconnectReason, ErrorKind, Operation, QoS};

    use common::next;

    let e = emulator().await;
    let b = e.under_test(e.port());
    let device = b.client("dev-policy").connect().await.expect("connect");
    let mut events = device.status_events();
    let denied = "$aws/things/someone-else/shadow/update";
    let publish = {
        let device = device.clone();
        tokio::spawn(async move { device.publish(denied, "{}", QoS::AtLeastOnce).await })
    };
    let reason = match next("the hang-up", &mut events).await {
        ConnectionState::Disconnected { reason } => reason,
        other => panic!("expected Disconnected, got {other:?}"),
    };
    let expected = DisconnectReason::PolicyDenialSuspected {
        operation: Operation::Publish,
        topic: denied.into(),
    };
    assert_eq!(reason, expected);
    // The publish is resent after the reconnect, denied again, and named again.
    loop {
        match next("the next hang-up", &mut events).await {
            ConnectionState::Disconnected { reason } => {
                assert_eq!(reason, expected);
                break;
            }
            ConnectionState::Closed => panic!("closed"),
            _ => {}
        }
    }
    device.close().await;
    let err = publish
        .await
        .expect("task")
        .expect_err("never acknowledged");
    assert_eq!(err.kind(), ErrorKind::Closed);
}
