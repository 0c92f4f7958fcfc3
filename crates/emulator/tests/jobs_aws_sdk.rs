//! AWS's own jobs clients against the emulator's Jobs device API:
//! `tests/peers/awsiot_jobs.py` drives `awsiot.iotjobs.IotJobsClient`
//! (exact subscriptions) or `IotJobsClientV2` (request-response with `+`
//! subscriptions, and a notify-next stream) over MQTT 3.1.1 or 5: the
//! notify-next stream sees a job created while the device is connected, then
//! get pending, describe `$next`, start next, update to SUCCEEDED, the empty
//! notify-next, and a second update refused with InvalidStateTransition.
//!
//! Needs `scripts/setup-peers` to have run.

mod support;

use iotcore_emulator::control::{CreateJobRequest, DescribeJobExecutionRequest, ExecutionStatus};
use iotcore_test_support::spawn_peer;
use serde_json::{Value, json};
use support::{Setup, peer_args};

async fn aws_jobs_client_runs_a_job(client: &str, protocol: &str) {
    let setup = Setup::start().await;
    let device = setup.device(&format!("awsiot-jobs-{client}-{protocol}"));
    let args = peer_args(
        &setup,
        &device,
        &[
            ("--client-id", device.name.as_str()),
            ("--client", client),
            ("--protocol", protocol),
        ],
    );
    let mut peer = spawn_peer("awsiot_jobs.py", &args);
    peer.wait_for_event("ready").await;
    let control = setup.emulator.control();
    let job_id = format!("firmware-{client}-{protocol}");
    control
        .create_job(CreateJobRequest::new(
            &job_id,
            vec![format!(
                "{}thing/{}",
                control.arn_scope().prefix(),
                device.name
            )],
            r#"{"operation":"install","version":"2.0"}"#,
        ))
        .expect("CreateJob");
    let output = peer.finish().await;
    output.assert_success();

    let events: Vec<Value> = output
        .events()
        .into_iter()
        .filter(|e| e["event"] != "received" && e["event"] != "connected")
        .collect();
    let document = json!({"operation": "install", "version": "2.0"});
    assert_eq!(
        events,
        vec![
            json!({"event": "ready"}),
            json!({"event": "notify-next", "job_id": job_id, "status": "QUEUED",
                   "document": document}),
            json!({"event": "pending", "queued": [job_id], "in_progress": [], "token_ok": true}),
            json!({"event": "describe", "job_id": job_id, "status": "QUEUED",
                   "document": document, "version": 1, "token_ok": true}),
            json!({"event": "start-next", "job_id": job_id, "status": "IN_PROGRESS",
                   "version": 2, "execution_number": 1, "started": true, "token_ok": true}),
            json!({"event": "update", "status": "SUCCEEDED", "version": 3, "token_ok": true}),
            json!({"event": "notify-next", "job_id": null}),
            json!({"event": "rejected", "code": "InvalidStateTransition",
                   "message": events[7]["message"], "state": "SUCCEEDED"}),
            json!({"event": "disconnected"}),
        ],
        "{events:#?}"
    );
    let execution = control
        .describe_job_execution(DescribeJobExecutionRequest {
            job_id,
            thing_name: device.name.clone(),
            execution_number: None,
        })
        .expect("DescribeJobExecution")
        .execution;
    assert_eq!(execution.status, ExecutionStatus::Succeeded);
}

#[tokio::test]
async fn iot_jobs_client_v1_over_mqtt_311() {
    aws_jobs_client_runs_a_job("v1", "3").await;
}

#[tokio::test]
async fn iot_jobs_client_v1_over_mqtt_5() {
    aws_jobs_client_runs_a_job("v1", "5").await;
}

#[tokio::test]
async fn iot_jobs_client_v2_over_mqtt_311() {
    aws_jobs_client_runs_a_job("v2", "3").await;
}

#[tokio::test]
async fn iot_jobs_client_v2_over_mqtt_5() {
    aws_jobs_client_runs_a_job("v2", "5").await;
}
