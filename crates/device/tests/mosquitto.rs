//! The device client against a real Mosquitto broker (mutual TLS on loopback).

mod common;

use common::mosquitto::MosquittoBroker;
use common::scenarios;

fn broker() -> MosquittoBroker {
    MosquittoBroker::start()
}

#[tokio::test]
async fn connect_reports_connected_then_closed() {
    let m = broker();
    scenarios::connect_reports_connected_then_closed(&m.under_test(m.broker.port())).await;
}

#[tokio::test]
async fn publish_qos0_and_qos1_reach_a_subscriber() {
    let m = broker();
    scenarios::publish_qos0_and_qos1_reach_a_subscriber(&m.under_test(m.broker.port())).await;
}

#[tokio::test]
async fn each_subscription_stream_gets_only_its_filter() {
    let m = broker();
    scenarios::each_subscription_stream_gets_only_its_filter(&m.under_test(m.broker.port())).await;
}

#[tokio::test]
async fn unsubscribe_ends_the_stream_and_stops_delivery() {
    let m = broker();
    scenarios::unsubscribe_ends_the_stream_and_stops_delivery(&m.under_test(m.broker.port())).await;
}

#[tokio::test]
async fn telemetry_and_cloud_to_device_use_the_seed_topics() {
    let m = broker();
    scenarios::telemetry_and_cloud_to_device_use_the_seed_topics(&m.under_test(m.broker.port()))
        .await;
}

#[tokio::test]
async fn a_server_signed_by_another_ca_is_refused() {
    let m = broker();
    scenarios::a_server_signed_by_another_ca_is_refused(&m.under_test(m.broker.port())).await;
}

#[tokio::test]
async fn an_unknown_client_certificate_is_refused() {
    let m = broker();
    scenarios::an_unknown_client_certificate_is_refused(&m.under_test(m.broker.port())).await;
}

#[tokio::test]
async fn close_fails_new_requests_and_ends_streams() {
    let m = broker();
    scenarios::close_fails_new_requests_and_ends_streams(&m.under_test(m.broker.port())).await;
}

#[tokio::test]
async fn requests_breaking_aws_limits_fail_before_sending() {
    let m = broker();
    scenarios::requests_breaking_aws_limits_fail_before_sending(&m.under_test(m.broker.port()))
        .await;
}

#[tokio::test]
async fn mqtt5_publish_and_subscribe_work_like_mqtt311() {
    use futures_util::StreamExt;
    use iotcore::{ProtocolVersion, QoS};

    let m = broker();
    let b = m.under_test(m.broker.port());
    let device = b
        .client("dev-v5")
        .protocol(ProtocolVersion::V5)
        .connect()
        .await
        .expect("MQTT 5 connect");
    let mut sub = device
        .subscribe("cmd/dev-v5/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    device
        .publish("cmd/dev-v5/echo", "five", QoS::AtLeastOnce)
        .await
        .expect("publish");
    let m5 = common::within("echo", sub.next()).await.expect("message");
    assert_eq!(m5.payload_str(), Some("five"));
    device
        .unsubscribe("cmd/dev-v5/#")
        .await
        .expect("unsubscribe");
    device.close().await;
}
