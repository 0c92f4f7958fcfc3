//! The job runner against a scripted Jobs service on Mosquitto: the
//! "service" is another client that answers each request as the test says,
//! so a test can lose a reply exactly when it wants (the device's link goes
//! through a fault proxy).

mod common;

use iotcore::jobs::{ErrorCode, Job, JobExecutionStatus, JobsError, UpdateJobExecutionRequest};
use iotcore::service::ServiceErrorKind;
use iotcore::{Client, QoS, Subscription};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use common::mosquitto::ProxiedMosquitto;
use common::{next, within};

const PREFIX: &str = "$aws/things/dev/jobs";

type Setup = ProxiedMosquitto;

impl Setup {
    async fn device(&self) -> Client {
        within("device connect", self.via.client("dev").connect())
            .await
            .expect("device connects")
    }

    /// The scripted service, seeing every request to the device's Jobs topics.
    async fn service(&self) -> Service {
        let client = within(
            "service connect",
            self.direct.client("jobs-service").connect(),
        )
        .await
        .expect("service connects");
        let requests = within(
            "service subscribe",
            client.subscribe(format!("{PREFIX}/#"), QoS::AtLeastOnce),
        )
        .await
        .expect("service subscribes");
        Service { client, requests }
    }
}

/// A request as the service saw it.
struct Seen {
    topic: String,
    body: Value,
}

struct Service {
    client: Client,
    requests: Subscription,
}

impl Service {
    /// The next request (replies and notifications on the same topics are
    /// skipped).
    async fn next(&mut self) -> Seen {
        loop {
            let message = next("a Jobs request", &mut self.requests).await;
            let topic = message.topic().to_owned();
            if topic.ends_with("/accepted")
                || topic.ends_with("/rejected")
                || topic.contains("/notify")
            {
                continue;
            }
            let body = serde_json::from_slice(message.payload()).expect("a JSON request");
            return Seen { topic, body };
        }
    }

    async fn reply(&self, seen: &Seen, kind: &str, mut body: Value) {
        body["clientToken"] = seen.body["clientToken"].clone();
        body["timestamp"] = json!(1_700_000_000);
        within(
            "reply",
            self.client.publish(
                format!("{}/{kind}", seen.topic),
                body.to_string(),
                QoS::AtLeastOnce,
            ),
        )
        .await
        .expect("reply published");
    }
}

fn summary(version: i64) -> Value {
    json!({"jobId": "j1", "queuedAt": 1, "lastUpdatedAt": 1, "versionNumber": version,
        "executionNumber": 1})
}

/// The device's requests follow AWS's topics and documents, and a refusal
/// comes back typed.
#[tokio::test]
async fn requests_use_aws_topics_and_refusals_carry_the_code_and_execution_state() {
    let s = Setup::start().await;
    let device = s.device().await;
    let mut service = s.service().await;
    let jobs = device.jobs();

    let pending = tokio::spawn({
        let jobs = jobs.clone();
        async move { jobs.get_pending().await }
    });
    let seen = service.next().await;
    assert_eq!(seen.topic, format!("{PREFIX}/get"));
    assert!(seen.body["clientToken"].is_string(), "{}", seen.body);
    service
        .reply(
            &seen,
            "accepted",
            json!({"inProgressJobs": [], "queuedJobs": [summary(1)]}),
        )
        .await;
    let pending = within("get pending", pending)
        .await
        .unwrap()
        .expect("accepted");
    assert_eq!(pending.queued_jobs[0].job_id, "j1");

    let update = tokio::spawn({
        let jobs = jobs.clone();
        async move {
            let mut request = UpdateJobExecutionRequest::new(JobExecutionStatus::InProgress);
            request.expected_version = Some(1);
            request.step_timeout_in_minutes = Some(-1);
            jobs.update::<Value>("j1", request).await
        }
    });
    let seen = service.next().await;
    assert_eq!(seen.topic, format!("{PREFIX}/j1/update"));
    assert_eq!(seen.body["status"], "IN_PROGRESS");
    assert_eq!(seen.body["expectedVersion"], 1);
    assert_eq!(seen.body["stepTimeoutInMinutes"], -1);
    service
        .reply(
            &seen,
            "rejected",
            json!({"code": "VersionMismatch", "message": "version 1 is not 2",
                "executionState": {"status": "IN_PROGRESS", "versionNumber": 2}}),
        )
        .await;
    let e = within("update", update).await.unwrap().unwrap_err();
    assert_eq!(e.kind(), ServiceErrorKind::Rejected);
    assert_eq!(e.code(), Some(ErrorCode::VersionMismatch));
    assert_eq!(e.execution_state().unwrap().version_number, 2);
    assert_eq!(e.terminal_status(), None);
    assert!(e.to_string().contains("version 1 is not 2"), "{e}");
}

/// What the runner reported, in order: (status, status details).
type Updates = Vec<(String, Value)>;

#[tokio::test]
async fn updates_whose_replies_a_cut_link_loses_are_sent_again_and_a_repeat_that_already_took_is_done()
 {
    let s = Setup::start().await;
    let device = s.device().await;
    let mut service = s.service().await;
    let (ran_tx, mut ran) = mpsc::unbounded_channel();
    let runner = tokio::spawn(device.jobs().runner::<Value>().run(move |job: Job<Value>| {
        let ran_tx = ran_tx.clone();
        async move {
            job.progress([("step", "1")]).await?;
            ran_tx.send(job.document().clone()).ok();
            Ok::<_, JobsError>(())
        }
    }));

    // The scripted service: one job, j1. It loses (by cutting the device's
    // link before answering) the first progress report, and the reply to the
    // first SUCCEEDED, which it applies; the second SUCCEEDED is refused as a
    // transition from SUCCEEDED, as AWS does.
    let mut updates: Updates = Vec::new();
    let mut status = "QUEUED";
    let mut version = 1;
    let mut progress_seen = 0;
    let mut succeeded_seen = 0;
    while succeeded_seen < 2 || status != "SUCCEEDED" {
        let seen = service.next().await;
        let tail = seen
            .topic
            .strip_prefix(PREFIX)
            .expect("a Jobs topic")
            .to_owned();
        match tail.as_str() {
            "/get" => {
                let (in_progress, queued) = match status {
                    "QUEUED" => (vec![], vec![summary(version)]),
                    "IN_PROGRESS" => (vec![summary(version)], vec![]),
                    _ => (vec![], vec![]),
                };
                service
                    .reply(
                        &seen,
                        "accepted",
                        json!({"inProgressJobs": in_progress, "queuedJobs": queued}),
                    )
                    .await;
            }
            "/j1/get" => {
                let execution = json!({"jobId": "j1", "status": status, "queuedAt": 1,
                    "lastUpdatedAt": 1, "versionNumber": version, "executionNumber": 1,
                    "jobDocument": {"op": "blink"}});
                service
                    .reply(&seen, "accepted", json!({"execution": execution}))
                    .await;
            }
            "/j1/update" => {
                let new = seen.body["status"].as_str().unwrap().to_owned();
                updates.push((new.clone(), seen.body["statusDetails"].clone()));
                if status == "SUCCEEDED" {
                    succeeded_seen += 1;
                    service
                        .reply(
                            &seen,
                            "rejected",
                            json!({"code": "InvalidStateTransition", "message": "terminal",
                                "executionState": {"status": "SUCCEEDED", "versionNumber": version}}),
                        )
                        .await;
                    continue;
                }
                version += 1;
                status = if new == "SUCCEEDED" {
                    "SUCCEEDED"
                } else {
                    "IN_PROGRESS"
                };
                let is_progress = seen.body["statusDetails"]["step"] == "1";
                progress_seen += usize::from(is_progress);
                if (is_progress && progress_seen == 1) || new == "SUCCEEDED" {
                    succeeded_seen += usize::from(new == "SUCCEEDED");
                    s.proxy.cut();
                    continue;
                }
                service
                    .reply(
                        &seen,
                        "accepted",
                        json!({"executionState": {"status": status, "versionNumber": version},
                            "jobDocument": {"op": "blink"}}),
                    )
                    .await;
            }
            other => panic!("unexpected request on {other}"),
        }
    }
    assert_eq!(
        within("the handler", ran.recv()).await,
        Some(json!({"op": "blink"}))
    );
    let statuses: Vec<&str> = updates.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        statuses,
        [
            "IN_PROGRESS",
            "IN_PROGRESS",
            "IN_PROGRESS",
            "SUCCEEDED",
            "SUCCEEDED"
        ],
        "take, progress (reply lost), progress again, SUCCEEDED (reply lost), SUCCEEDED again: {updates:?}"
    );
    assert_eq!(updates[1].1, json!({"step": "1"}));
    assert_eq!(updates[2].1, json!({"step": "1"}));
    // Done: the runner asks for the next job, and reports nothing more on j1.
    loop {
        let seen = service.next().await;
        assert!(
            !seen.topic.ends_with("/j1/update"),
            "j1 reported again: {}",
            seen.body
        );
        if seen.topic == format!("{PREFIX}/get") {
            break;
        }
        service
            .reply(&seen, "accepted", json!({"execution": null}))
            .await;
    }
    runner.abort();
}
