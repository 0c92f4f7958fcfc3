//! Behaviours every broker under test must show the same way, written once
//! and run against Mosquitto and the emulator.

use std::collections::BTreeSet;

use futures_util::StreamExt;
use iotcore::{ConnectionState, DisconnectReason, ErrorKind, QoS};

use super::{BrokerUnderTest, builder_for, next, within};

pub async fn connect_reports_connected_then_closed(b: &BrokerUnderTest) {
    let device = b.client("dev-connect").connect().await.expect("connect");
    let mut status = device.status();
    assert_eq!(
        *status.borrow_and_update(),
        ConnectionState::Connected {
            session_present: false
        }
    );
    device.close().await;
    within("Closed", status.wait_for(|s| *s == ConnectionState::Closed))
        .await
        .expect("status");
}

pub async fn publish_qos0_and_qos1_reach_a_subscriber(b: &BrokerUnderTest) {
    let cloud = b
        .client("cloud-pub")
        .connect()
        .await
        .expect("cloud connect");
    let mut sub = cloud
        .subscribe("dt/dev-pub/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let device = b.client("dev-pub").connect().await.expect("device connect");
    device
        .publish("dt/dev-pub/zero", "at most once", QoS::AtMostOnce)
        .await
        .expect("QoS 0 publish");
    device
        .publish("dt/dev-pub/one", "at least once", QoS::AtLeastOnce)
        .await
        .expect("QoS 1 publish");
    let mut got = BTreeSet::new();
    for _ in 0..2 {
        let m = next("published message", &mut sub).await;
        got.insert((
            m.topic().to_owned(),
            m.payload_str().unwrap_or("").to_owned(),
            m.qos(),
        ));
    }
    let expected = BTreeSet::from([
        (
            "dt/dev-pub/one".to_owned(),
            "at least once".to_owned(),
            QoS::AtLeastOnce,
        ),
        (
            "dt/dev-pub/zero".to_owned(),
            "at most once".to_owned(),
            QoS::AtMostOnce,
        ),
    ]);
    assert_eq!(got, expected);
    device.close().await;
    cloud.close().await;
}

pub async fn each_subscription_stream_gets_only_its_filter(b: &BrokerUnderTest) {
    let device = b
        .client("dev-route")
        .connect()
        .await
        .expect("device connect");
    let mut a = device
        .subscribe("cmd/dev-route/a/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe a");
    let mut bee = device
        .subscribe("cmd/dev-route/b/+", QoS::AtMostOnce)
        .await
        .expect("subscribe b");
    let mut all = device.messages();
    let cloud = b
        .client("cloud-route")
        .connect()
        .await
        .expect("cloud connect");
    for topic in [
        "cmd/dev-route/a/1",
        "cmd/dev-route/b/2",
        "cmd/dev-route/a/x/3",
    ] {
        cloud
            .publish(topic, topic, QoS::AtLeastOnce)
            .await
            .expect("cloud publish");
    }
    assert_eq!(next("a/1", &mut a).await.topic(), "cmd/dev-route/a/1");
    assert_eq!(next("a/x/3", &mut a).await.topic(), "cmd/dev-route/a/x/3");
    assert_eq!(next("b/2", &mut bee).await.topic(), "cmd/dev-route/b/2");
    let mut everything = BTreeSet::new();
    for _ in 0..3 {
        everything.insert(next("catch-all", &mut all).await.topic().to_owned());
    }
    assert_eq!(everything.len(), 3);
    assert!(a.topic_filter() == "cmd/dev-route/a/#" && bee.topic_filter() == "cmd/dev-route/b/+");
    device.close().await;
    assert!(
        a.next().await.is_none(),
        "streams end when the client closes"
    );
    cloud.close().await;
}

pub async fn unsubscribe_ends_the_stream_and_stops_delivery(b: &BrokerUnderTest) {
    let device = b
        .client("dev-unsub")
        .connect()
        .await
        .expect("device connect");
    let mut gone = device
        .subscribe("cmd/dev-unsub/gone", QoS::AtLeastOnce)
        .await
        .expect("subscribe gone");
    let _kept = device
        .subscribe("cmd/dev-unsub/kept", QoS::AtLeastOnce)
        .await
        .expect("subscribe kept");
    let mut all = device.messages();
    device
        .unsubscribe("cmd/dev-unsub/gone")
        .await
        .expect("unsubscribe");
    assert!(
        within("stream end", gone.next()).await.is_none(),
        "an unsubscribed stream ends"
    );
    let cloud = b
        .client("cloud-unsub")
        .connect()
        .await
        .expect("cloud connect");
    cloud
        .publish("cmd/dev-unsub/gone", "x", QoS::AtLeastOnce)
        .await
        .expect("publish gone");
    cloud
        .publish("cmd/dev-unsub/kept", "marker", QoS::AtLeastOnce)
        .await
        .expect("publish kept");
    // Both went through the same broker session in order: if "gone" were
    // still delivered it would arrive before the marker.
    assert_eq!(next("marker", &mut all).await.topic(), "cmd/dev-unsub/kept");
    device.close().await;
    cloud.close().await;
}

pub async fn telemetry_and_cloud_to_device_use_the_seed_topics(b: &BrokerUnderTest) {
    let thing = "dev-c2d";
    let cloud = b
        .client("cloud-c2d")
        .connect()
        .await
        .expect("cloud connect");
    let mut telemetry = cloud
        .subscribe(format!("device/{thing}/messages/events"), QoS::AtLeastOnce)
        .await
        .expect("cloud subscribe");
    let device = b.client(thing).connect().await.expect("device connect");
    let mut commands = device.cloud_to_device().await.expect("cloud_to_device");
    assert_eq!(
        commands.topic_filter(),
        format!("device/{thing}/messages/devicebound/#")
    );
    device
        .send_message("{\"t\":21.5}")
        .await
        .expect("send_message");
    let m = next("telemetry", &mut telemetry).await;
    assert_eq!(m.payload_str(), Some("{\"t\":21.5}"));
    cloud
        .publish(
            format!("device/{thing}/messages/devicebound/reboot/now"),
            "please",
            QoS::AtLeastOnce,
        )
        .await
        .expect("cloud publish");
    let command = next("cloud-to-device message", &mut commands).await;
    assert_eq!(command.sub_topic(), "reboot/now");
    assert_eq!(command.payload().as_ref(), b"please");
    device.close().await;
    cloud.close().await;
}

pub async fn a_server_signed_by_another_ca_is_refused(b: &BrokerUnderTest) {
    let creds = (b.issue)("dev-wrong-ca");
    let err = builder_for(b.port, &b.wrong_ca, &creds, "dev-wrong-ca")
        .connect()
        .await
        .expect_err("a server signed by an untrusted CA must be refused");
    assert_eq!(err.kind(), ErrorKind::ConnectRefused, "{err}");
    assert!(
        matches!(
            err.disconnect_reason(),
            Some(DisconnectReason::ServerCertificateUntrusted { .. })
        ),
        "{err:?}"
    );
}

pub async fn an_unknown_client_certificate_is_refused(b: &BrokerUnderTest) {
    let creds = (b.issue_unknown)("dev-unknown-cert");
    let err = builder_for(b.port, &b.ca, &creds, "dev-unknown-cert")
        .connect()
        .await
        .expect_err("an unknown client certificate must be refused");
    assert_eq!(err.kind(), ErrorKind::ConnectRefused, "{err}");
    assert!(
        matches!(
            err.disconnect_reason(),
            Some(DisconnectReason::ClientCertificateRejected { .. })
        ),
        "{err:?}"
    );
}

pub async fn close_fails_new_requests_and_ends_streams(b: &BrokerUnderTest) {
    let device = b.client("dev-close").connect().await.expect("connect");
    let mut sub = device
        .subscribe("cmd/dev-close/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let mut events = device.status_events();
    let other_handle = device.clone();
    device.close().await;
    assert!(within("stream end", sub.next()).await.is_none());
    assert_eq!(
        next("Closed event", &mut events).await,
        ConnectionState::Closed
    );
    let err = other_handle
        .publish("dt/dev-close", "late", QoS::AtLeastOnce)
        .await
        .expect_err("publish after close");
    assert_eq!(err.kind(), ErrorKind::Closed);
    other_handle.close().await; // idempotent
}

pub async fn requests_breaking_aws_limits_fail_before_sending(b: &BrokerUnderTest) {
    let device = b.client("dev-limits").connect().await.expect("connect");
    let deep = "a/b/c/d/e/f/g/h/i";
    let err = device
        .publish(deep, "x", QoS::AtMostOnce)
        .await
        .expect_err("nine levels");
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert_eq!(err.topic(), Some(deep));
    let big = vec![0u8; iotcore::AWS_MAX_PAYLOAD_BYTES + 1];
    let err = device
        .publish("dt/dev-limits", big, QoS::AtLeastOnce)
        .await
        .expect_err("too large");
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    let err = device
        .subscribe("a/#/b", QoS::AtLeastOnce)
        .await
        .expect_err("bad filter");
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    // The connection is unharmed.
    device
        .publish("dt/dev-limits", "fine", QoS::AtLeastOnce)
        .await
        .expect("a valid publish still works");
    assert!(device.status().borrow().is_connected());
    device.close().await;
}
