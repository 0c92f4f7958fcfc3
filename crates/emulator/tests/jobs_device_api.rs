//! The Jobs device API over MQTT with a raw client: replies reach the
//! requester without a subscription and nobody else, every topic under
//! `$aws/things/T/jobs/` gets an answer (InvalidTopic for the unknown ones),
//! malformed requests get AWS's codes, the device's policy decides what it
//! may publish and receive, and the running emulator's timers fire on its
//! clock and notify subscribers.

mod support;

use std::time::{Duration, SystemTime};

use iotcore_emulator::clock::Clock;
use iotcore_emulator::control::CreateJobRequest;
use iotcore_emulator::control::ThingPolicy;
use iotcore_mqtt::{ProtocolVersion, QoS, ReasonCode};
use serde_json::{Value, json};
use support::{RawClient, Setup, create_policy};

fn body(payload: &[u8]) -> Value {
    serde_json::from_slice(payload).expect("a JSON reply")
}

fn create_job(setup: &Setup, id: &str, thing: &str, extra: Value) {
    let control = setup.emulator.control();
    let mut request = json!({
        "jobId": id,
        "targets": [format!("{}thing/{thing}", control.arn_scope().prefix())],
        "document": r#"{"operation":"reboot"}"#,
    });
    for (k, v) in extra.as_object().expect("an object") {
        request[k] = v.clone();
    }
    let request: CreateJobRequest = serde_json::from_value(request).expect("a CreateJob request");
    control.create_job(request).expect("CreateJob");
}

#[tokio::test]
async fn replies_reach_the_requester_without_a_subscription_and_nobody_else() {
    let setup = Setup::start().await;
    let device = setup.device("dev");
    let watcher = setup.device("watcher");
    create_job(&setup, "j1", "dev", json!({}));
    let mut other = RawClient::connected(setup.addr(), &watcher, ProtocolVersion::V5).await;
    other
        .subscribe(1, &["$aws/things/dev/jobs/#"], QoS::AtLeastOnce)
        .await;
    let mut client = RawClient::connected(setup.addr(), &device, ProtocolVersion::V311).await;
    let ack = client
        .publish_qos1(1, "$aws/things/dev/jobs/get", r#"{"clientToken":"t-1"}"#)
        .await;
    assert_eq!(ack, ReasonCode::SUCCESS);
    let reply = client.recv_publish().await;
    assert_eq!(reply.topic, "$aws/things/dev/jobs/get/accepted");
    let reply = body(&reply.payload);
    assert_eq!(reply["clientToken"], "t-1");
    assert_eq!(reply["queuedJobs"][0]["jobId"], "j1");
    assert_eq!(reply["inProgressJobs"], json!([]));
    let timestamp = reply["timestamp"].as_i64().expect("a timestamp");
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        (timestamp - i64::try_from(now).unwrap()).abs() < 3_600,
        "epoch seconds, not milliseconds: {timestamp}"
    );

    // The watcher, subscribed to every jobs topic of the thing, sees the
    // notifications of the update below but not the replies.
    let ack = client
        .publish_qos1(
            2,
            "$aws/things/dev/jobs/j1/update",
            r#"{"status":"SUCCEEDED","expectedVersion":"1","clientToken":"t-2"}"#,
        )
        .await;
    assert_eq!(ack, ReasonCode::SUCCESS);
    let reply = client.recv_publish().await;
    assert_eq!(reply.topic, "$aws/things/dev/jobs/j1/update/accepted");
    assert_eq!(body(&reply.payload)["clientToken"], "t-2");
    let mut seen = Vec::new();
    for _ in 0..2 {
        seen.push(other.recv_publish().await.topic);
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "$aws/things/dev/jobs/notify",
            "$aws/things/dev/jobs/notify-next"
        ]
    );
}

#[tokio::test]
async fn every_jobs_topic_is_answered_and_malformed_requests_get_aws_codes() {
    let setup = Setup::start().await;
    let device = setup.device("dev");
    create_job(&setup, "j1", "dev", json!({}));
    let mut client = RawClient::connected(setup.addr(), &device, ProtocolVersion::V5).await;
    let cases: &[(&str, &str, &str)] = &[
        ("$aws/things/dev/jobs/nonsense", "{}", "InvalidTopic"),
        ("$aws/things/dev/jobs/j1/frobnicate", "{}", "InvalidTopic"),
        ("$aws/things/dev/jobs/notify", "{}", "InvalidTopic"),
        ("$aws/things/dev/jobs/get/accepted", "{}", "InvalidTopic"),
        ("$aws/things/dev/jobs/get", "{not json", "InvalidJson"),
        (
            "$aws/things/dev/jobs/j1/update",
            r#"{"clientToken":"c"}"#,
            "InvalidRequest",
        ),
        (
            "$aws/things/dev/jobs/start-next",
            r#"{"stepTimeoutInMinutes":0,"clientToken":"c"}"#,
            "InvalidRequest",
        ),
        (
            "$aws/things/dev/jobs/nope/get",
            r#"{"clientToken":"c"}"#,
            "ResourceNotFound",
        ),
        (
            "$aws/things/dev/jobs/j1/update",
            r#"{"status":"IN_PROGRESS","expectedVersion":7,"clientToken":"c"}"#,
            "VersionMismatch",
        ),
    ];
    for (i, (topic, payload, code)) in cases.iter().enumerate() {
        let packet_id = u16::try_from(i + 1).unwrap();
        let ack = client.publish_qos1(packet_id, topic, *payload).await;
        assert_eq!(ack, ReasonCode::SUCCESS, "{topic}");
        let reply = client.recv_publish().await;
        assert_eq!(reply.topic, format!("{topic}/rejected"));
        let reply = body(&reply.payload);
        assert_eq!(reply["code"], *code, "{topic} {payload}: {reply}");
        if payload.contains("clientToken") {
            assert_eq!(reply["clientToken"], "c");
        }
        if *code == "VersionMismatch" {
            assert_eq!(reply["executionState"]["versionNumber"], 1);
            assert_eq!(reply["executionState"]["status"], "QUEUED");
        }
    }
}

#[tokio::test]
async fn the_devices_policy_decides_what_it_may_request_and_receive() {
    let setup = Setup::start().await;
    let control = setup.emulator.control();
    let prefix = control.arn_scope().prefix().to_owned();
    create_policy(
        control,
        "jobs-get-only",
        &json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
            {"Effect": "Allow", "Action": "iot:Publish",
             "Resource": [format!("{prefix}topic/$aws/things/dev/jobs/get"),
                          format!("{prefix}topic/$aws/things/dev/jobs/start-next")]},
            {"Effect": "Allow", "Action": "iot:Receive",
             "Resource": format!("{prefix}topic/$aws/things/dev/jobs/get/*")},
        ]})
        .to_string(),
    );
    let device = setup.device_with("dev", ThingPolicy::Existing("jobs-get-only".into()));
    create_job(&setup, "j1", "dev", json!({}));
    let mut client = RawClient::connected(setup.addr(), &device, ProtocolVersion::V5).await;
    // May publish start-next, may not receive its reply: the job starts, the
    // reply is not delivered.
    let ack = client
        .publish_qos1(1, "$aws/things/dev/jobs/start-next", "{}")
        .await;
    assert_eq!(ack, ReasonCode::SUCCESS);
    let ack = client
        .publish_qos1(2, "$aws/things/dev/jobs/get", "{}")
        .await;
    assert_eq!(ack, ReasonCode::SUCCESS);
    let reply = client.recv_publish().await;
    assert_eq!(reply.topic, "$aws/things/dev/jobs/get/accepted");
    assert_eq!(body(&reply.payload)["inProgressJobs"][0]["jobId"], "j1");
    // May not publish an update at all.
    let ack = client
        .publish_qos1(
            3,
            "$aws/things/dev/jobs/j1/update",
            r#"{"status":"SUCCEEDED"}"#,
        )
        .await;
    assert_eq!(ack, ReasonCode::NOT_AUTHORIZED);
}

#[tokio::test]
async fn the_running_emulator_times_executions_out_on_its_clock_and_notifies() {
    let (clock, hand) = Clock::manual(SystemTime::now());
    let setup = Setup::start_with(|config| config.with_clock(clock)).await;
    let device = setup.device("dev");
    create_job(
        &setup,
        "j1",
        "dev",
        json!({"timeoutConfig": {"inProgressTimeoutInMinutes": 30}}),
    );
    let mut client = RawClient::connected(setup.addr(), &device, ProtocolVersion::V311).await;
    client
        .subscribe(
            1,
            &[
                "$aws/things/dev/jobs/notify",
                "$aws/events/jobExecution/j1/+",
            ],
            QoS::AtLeastOnce,
        )
        .await;
    client
        .publish_qos1(
            2,
            "$aws/things/dev/jobs/start-next",
            r#"{"stepTimeoutInMinutes":10}"#,
        )
        .await;
    let started = client.recv_publish().await;
    assert_eq!(started.topic, "$aws/things/dev/jobs/start-next/accepted");
    assert_eq!(body(&started.payload)["execution"]["status"], "IN_PROGRESS");

    hand.advance(Duration::from_secs(10 * 60));
    let mut seen = Vec::new();
    for _ in 0..2 {
        let message = client.recv_publish().await;
        seen.push((message.topic, body(&message.payload)));
    }
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(seen[0].0, "$aws/events/jobExecution/j1/timed_out");
    assert_eq!(seen[0].1["status"], "TIMED_OUT");
    assert_eq!(seen[1].0, "$aws/things/dev/jobs/notify");
    assert_eq!(seen[1].1["jobs"], json!({}));
    client
        .publish_qos1(
            3,
            "$aws/things/dev/jobs/j1/update",
            r#"{"status":"SUCCEEDED"}"#,
        )
        .await;
    let refused = client.recv_publish().await;
    assert_eq!(refused.topic, "$aws/things/dev/jobs/j1/update/rejected");
    let refused = body(&refused.payload);
    assert_eq!(refused["code"], "InvalidStateTransition");
    assert_eq!(refused["executionState"]["status"], "TIMED_OUT");
}
