//! The Jobs client and the job runner (`iotcore::jobs`) against the
//! emulator's Jobs service: jobs are created through the emulator's control
//! layer (as `iotcore jobs create` does) and the device runs them.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use iotcore::Client;
use iotcore::jobs::{
    ErrorCode, Job, JobExecutionStatus, JobOutcome, JobsError, NEXT_JOB_ID,
    StartNextPendingJobExecutionRequest, UpdateJobExecutionRequest,
};
use iotcore::service::ServiceErrorKind;
use iotcore_emulator::control::{
    CancelJobRequest, CreateJobRequest, DescribeJobExecutionRequest as ControlDescribe,
};
use iotcore_test_support::FaultProxy;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use common::emulator::EmulatorBroker;
use common::{builder_for, next, within};

/// A job document as a device application would type it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Firmware {
    version: String,
}

fn firmware(version: &str) -> String {
    json!({"version": version, "url": format!("https://example.com/fw-{version}.bin")}).to_string()
}

/// Queues job `id` with `document` for thing `thing`.
fn queue(emulator: &EmulatorBroker, id: &str, thing: &str, document: &str) {
    let control = emulator.control();
    let arn = format!("{}thing/{thing}", control.arn_scope().prefix());
    control
        .create_job(CreateJobRequest::new(id, vec![arn], document))
        .expect("job created");
}

/// The execution of `job` on `thing` as the control plane sees it: status
/// (AWS's spelling) and status details.
fn execution(
    emulator: &EmulatorBroker,
    job: &str,
    thing: &str,
) -> (String, BTreeMap<String, String>) {
    let execution = emulator
        .control()
        .describe_job_execution(ControlDescribe {
            job_id: job.to_owned(),
            thing_name: thing.to_owned(),
            execution_number: None,
        })
        .expect("execution described")
        .execution;
    let status = serde_json::to_value(execution.status).expect("status");
    let details = serde_json::to_value(&execution.status_details).expect("details");
    (
        status.as_str().expect("a string").to_owned(),
        serde_json::from_value(details["detailsMap"].clone()).unwrap_or_default(),
    )
}

/// Waits until the execution has `status`.
async fn wait_status(
    emulator: &EmulatorBroker,
    job: &str,
    thing: &str,
    status: &str,
) -> BTreeMap<String, String> {
    within(&format!("{job} to be {status}"), async {
        loop {
            let (now, details) = execution(emulator, job, thing);
            if now == status {
                return details;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

async fn device(emulator: &EmulatorBroker, thing: &str) -> Client {
    within(
        "device connect",
        emulator.under_test(emulator.port()).client(thing).connect(),
    )
    .await
    .expect("device connects")
}

#[tokio::test]
async fn the_jobs_client_gets_pending_starts_describes_and_updates_a_job() {
    let emulator = EmulatorBroker::start().await;
    let client = device(&emulator, "jc-dev1").await;
    queue(&emulator, "fw-1", "jc-dev1", &firmware("1.1"));
    let jobs = client.jobs();

    let pending = jobs.get_pending().await.expect("get pending");
    assert_eq!(pending.queued_jobs.len(), 1);
    assert_eq!(pending.queued_jobs[0].job_id, "fw-1");
    assert!(pending.in_progress_jobs.is_empty());

    let next = jobs
        .describe::<Firmware>(NEXT_JOB_ID, Default::default())
        .await
        .expect("describe $next")
        .execution
        .expect("a next job");
    assert_eq!(next.status, JobExecutionStatus::Queued);
    assert_eq!(next.job_document.unwrap().version, "1.1");

    let started = jobs
        .start_next::<Firmware>(StartNextPendingJobExecutionRequest {
            status_details: Some([("step".to_owned(), "download".to_owned())].into()),
            ..Default::default()
        })
        .await
        .expect("start next")
        .execution
        .expect("started");
    assert_eq!(started.job_id, "fw-1");
    assert_eq!(started.status, JobExecutionStatus::InProgress);

    let mut done = UpdateJobExecutionRequest::new(JobExecutionStatus::Succeeded);
    done.expected_version = Some(started.version_number);
    done.include_job_execution_state = Some(true);
    let reply = jobs.update::<Value>("fw-1", done).await.expect("update");
    let state = reply.execution_state.expect("state included");
    assert_eq!(state.status, JobExecutionStatus::Succeeded);
    assert_eq!(execution(&emulator, "fw-1", "jc-dev1").0, "SUCCEEDED");

    let empty = jobs
        .start_next::<Value>(Default::default())
        .await
        .expect("start next with nothing pending");
    assert!(empty.execution.is_none());
}

#[tokio::test]
async fn a_refused_update_carries_aws_code_and_the_execution_state() {
    let emulator = EmulatorBroker::start().await;
    let client = device(&emulator, "jc-dev2").await;
    queue(&emulator, "fw-2", "jc-dev2", &firmware("2.0"));
    let jobs = client.jobs();
    let mut stale = UpdateJobExecutionRequest::new(JobExecutionStatus::InProgress);
    stale.expected_version = Some(41);
    let e = jobs.update::<Value>("fw-2", stale).await.unwrap_err();
    assert_eq!(e.kind(), ServiceErrorKind::Rejected);
    assert_eq!(e.code(), Some(ErrorCode::VersionMismatch));
    let state = e
        .execution_state()
        .expect("the state comes with VersionMismatch");
    assert_eq!(state.status, JobExecutionStatus::Queued);
    assert_eq!(e.job_id(), Some("fw-2"));
    assert!(e.to_string().contains("VersionMismatch"), "{e}");

    let missing = jobs
        .update::<Value>(
            "no-such-job",
            UpdateJobExecutionRequest::new(JobExecutionStatus::InProgress),
        )
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Some(ErrorCode::ResourceNotFound));

    let invalid = jobs
        .update::<Value>(
            "bad.id",
            UpdateJobExecutionRequest::new(JobExecutionStatus::InProgress),
        )
        .await
        .unwrap_err();
    assert_eq!(invalid.kind(), ServiceErrorKind::InvalidRequest);
}

#[tokio::test]
async fn the_notify_next_stream_sees_a_job_queued_while_connected() {
    let emulator = EmulatorBroker::start().await;
    let client = device(&emulator, "jc-dev3").await;
    let jobs = client.jobs();
    let mut next_changes = jobs
        .next_job_changes::<Firmware>()
        .await
        .expect("notify-next");
    let mut list_changes = jobs.job_list_changes().await.expect("notify");
    queue(&emulator, "fw-3", "jc-dev3", &firmware("3.0"));
    let changed = next("notify-next", &mut next_changes).await;
    let execution = changed.execution.expect("the new job is next");
    assert_eq!(execution.job_id, "fw-3");
    assert_eq!(execution.job_document.unwrap().version, "3.0");
    let listed = next("notify", &mut list_changes).await;
    assert_eq!(listed.jobs[&JobExecutionStatus::Queued][0].job_id, "fw-3");
}

#[tokio::test]
async fn a_job_runs_to_succeeded_with_its_progress_reported() {
    let emulator = EmulatorBroker::start().await;
    let client = device(&emulator, "jr-dev1").await;
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let runner = tokio::spawn(
        client
            .jobs()
            .runner::<Firmware>()
            .run(move |job: Job<Firmware>| {
                let seen_tx = seen_tx.clone();
                async move {
                    job.progress([("step", "installing")]).await?;
                    seen_tx
                        .send((
                            job.id().to_owned(),
                            job.document().clone(),
                            job.is_resumed(),
                        ))
                        .ok();
                    Ok::<_, JobsError>(JobOutcome::succeeded().with_detail("installed", "4.0"))
                }
            }),
    );
    queue(&emulator, "fw-4", "jr-dev1", &firmware("4.0"));
    let (id, document, resumed) = within("the handler", seen.recv())
        .await
        .expect("handler ran");
    assert_eq!(id, "fw-4");
    assert_eq!(document.version, "4.0");
    assert!(!resumed);
    let details = wait_status(&emulator, "fw-4", "jr-dev1", "SUCCEEDED").await;
    assert_eq!(details.get("installed").map(String::as_str), Some("4.0"));
    runner.abort();
}

#[tokio::test]
async fn a_handler_error_fails_the_job_with_its_message() {
    let emulator = EmulatorBroker::start().await;
    let client = device(&emulator, "jr-dev2").await;
    let runner = tokio::spawn(
        client
            .jobs()
            .runner::<Value>()
            .run(|_job: Job<Value>| async { Err::<(), _>("checksum mismatch in image") }),
    );
    queue(&emulator, "fw-5", "jr-dev2", &firmware("5.0"));
    let details = wait_status(&emulator, "fw-5", "jr-dev2", "FAILED").await;
    assert_eq!(
        details.get(iotcore::jobs::REASON_KEY).map(String::as_str),
        Some("checksum mismatch in image")
    );
    runner.abort();
}

#[tokio::test]
async fn a_document_the_device_cannot_read_is_rejected() {
    let emulator = EmulatorBroker::start().await;
    let client = device(&emulator, "jr-dev6").await;
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&ran);
    let runner = tokio::spawn(client.jobs().runner::<Firmware>().run(
        move |_job: Job<Firmware>| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, JobsError>(()) }
        },
    ));
    queue(
        &emulator,
        "reboot-1",
        "jr-dev6",
        r#"{"operation":"reboot"}"#,
    );
    let details = wait_status(&emulator, "reboot-1", "jr-dev6", "REJECTED").await;
    assert!(
        details[iotcore::jobs::REASON_KEY].contains("version"),
        "{details:?}"
    );
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    runner.abort();
}

#[tokio::test]
async fn a_cancellation_reaches_the_running_handler() {
    let emulator = EmulatorBroker::start().await;
    let client = device(&emulator, "jr-dev3").await;
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let (canceled_tx, mut canceled) = mpsc::unbounded_channel();
    let runner = tokio::spawn(
        client
            .jobs()
            .runner::<Firmware>()
            .run(move |job: Job<Firmware>| {
                let (started_tx, canceled_tx) = (started_tx.clone(), canceled_tx.clone());
                async move {
                    job.progress([("step", "waiting")]).await?;
                    started_tx.send(()).ok();
                    let status = job.canceled().await;
                    canceled_tx.send(status).ok();
                    Ok::<_, JobsError>(())
                }
            }),
    );
    queue(&emulator, "fw-6", "jr-dev3", &firmware("6.0"));
    within("the handler to start", started.recv()).await;
    wait_status(&emulator, "fw-6", "jr-dev3", "IN_PROGRESS").await;
    emulator
        .control()
        .cancel_job(CancelJobRequest {
            job_id: "fw-6".into(),
            force: Some(true),
            ..Default::default()
        })
        .expect("cancel with force");
    let status = within("the cancellation", canceled.recv())
        .await
        .expect("told");
    assert_eq!(status, JobExecutionStatus::Canceled);
    // Nothing is reported over the cancellation.
    assert_eq!(execution(&emulator, "fw-6", "jr-dev3").0, "CANCELED");
    runner.abort();
}

#[tokio::test]
async fn a_device_killed_mid_job_resumes_it_after_restart() {
    let emulator = EmulatorBroker::start().await;
    // The same thing and certificate before and after the restart.
    let broker = emulator.under_test(emulator.port());
    let credentials = (broker.issue)("jr-dev4");
    let connect = || async {
        within(
            "device connect",
            builder_for(emulator.port(), &broker.ca, &credentials, "jr-dev4").connect(),
        )
        .await
        .expect("device connects")
    };
    let first = connect().await;
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let runner = tokio::spawn(
        first
            .jobs()
            .runner::<Firmware>()
            .run(move |job: Job<Firmware>| {
                let started_tx = started_tx.clone();
                async move {
                    job.progress([("step", "2-of-3")]).await?;
                    started_tx.send(()).ok();
                    std::future::pending::<()>().await;
                    Ok::<_, JobsError>(())
                }
            }),
    );
    queue(&emulator, "fw-7", "jr-dev4", &firmware("7.0"));
    within("the first run", started.recv()).await;
    // The device dies: its runner and client are gone, nothing reported.
    runner.abort();
    let _ = runner.await;
    first.close().await;
    drop(first);
    assert_eq!(execution(&emulator, "fw-7", "jr-dev4").0, "IN_PROGRESS");

    let second = connect().await;
    let (resumed_tx, mut resumed) = mpsc::unbounded_channel();
    let runner = tokio::spawn(
        second
            .jobs()
            .runner::<Firmware>()
            .run(move |job: Job<Firmware>| {
                let resumed_tx = resumed_tx.clone();
                async move {
                    resumed_tx
                        .send((
                            job.id().to_owned(),
                            job.is_resumed(),
                            job.status_details().clone(),
                        ))
                        .ok();
                    Ok::<_, JobsError>(())
                }
            }),
    );
    let (id, was_resumed, details) = within("the resumed run", resumed.recv())
        .await
        .expect("ran");
    assert_eq!(id, "fw-7");
    assert!(was_resumed);
    assert_eq!(details.get("step").map(String::as_str), Some("2-of-3"));
    wait_status(&emulator, "fw-7", "jr-dev4", "SUCCEEDED").await;
    runner.abort();
}

/// How long a test waits to be sure something does *not* happen.
const QUIET: Duration = Duration::from_millis(300);

#[tokio::test]
async fn never_two_jobs_at_once_unless_asked() {
    for concurrency in [1, 3] {
        let emulator = EmulatorBroker::start().await;
        let thing = format!("jr-dev5-{concurrency}");
        let client = device(&emulator, &thing).await;
        let (started_tx, mut started) = mpsc::unbounded_channel();
        let (release, released) = watch::channel(false);
        let runner = tokio::spawn(
            client
                .jobs()
                .runner::<Value>()
                .concurrency(concurrency)
                .run(move |job: Job<Value>| {
                    let (started_tx, mut released) = (started_tx.clone(), released.clone());
                    async move {
                        started_tx.send(job.id().to_owned()).ok();
                        released.wait_for(|go| *go).await.ok();
                        Ok::<_, JobsError>(())
                    }
                }),
        );
        for i in 0..4 {
            queue(&emulator, &format!("j{i}"), &thing, "{}");
        }
        let mut first = Vec::new();
        for _ in 0..concurrency {
            first.push(
                within("a job to start", started.recv())
                    .await
                    .expect("started"),
            );
        }
        // The oldest jobs first, and no more than asked while they run.
        let expected: Vec<String> = (0..concurrency).map(|i| format!("j{i}")).collect();
        first.sort();
        assert_eq!(first, expected);
        tokio::time::sleep(QUIET).await;
        assert!(
            started.try_recv().is_err(),
            "more than {concurrency} at once"
        );
        release.send_replace(true);
        for i in 0..4 {
            wait_status(&emulator, &format!("j{i}"), &thing, "SUCCEEDED").await;
        }
        runner.abort();
    }
}

#[tokio::test]
async fn a_hundred_jobs_run_one_after_another_while_the_link_is_cut_at_random() {
    const JOBS: usize = 100;
    let emulator = EmulatorBroker::start().await;
    let proxy = Arc::new(FaultProxy::start(emulator.addr()).await.expect("proxy"));
    let client = within(
        "device connect",
        emulator
            .under_test(proxy.port())
            .client("jr-many")
            .connect(),
    )
    .await
    .expect("device connects");
    for i in 0..JOBS {
        queue(
            &emulator,
            &format!("job-{i:03}"),
            "jr-many",
            &json!({"n": i}).to_string(),
        );
    }
    let (order_tx, mut order) = mpsc::unbounded_channel();
    let now = Arc::new(AtomicUsize::new(0));
    // After about one job in three, cut the link a random moment later: while
    // the outcome is reported, the next job fetched, taken or reported on.
    let rng = Arc::new(std::sync::Mutex::new(rand::rngs::StdRng::seed_from_u64(13)));
    let cuts = Arc::new(AtomicUsize::new(0));
    let (proxy_h, cuts_h) = (Arc::clone(&proxy), Arc::clone(&cuts));
    let runner = tokio::spawn(client.jobs().runner::<Value>().run(move |job: Job<Value>| {
        let (order_tx, now) = (order_tx.clone(), Arc::clone(&now));
        let (proxy, cuts) = (Arc::clone(&proxy_h), Arc::clone(&cuts_h));
        let cut_in = {
            let mut rng = rng.lock().unwrap();
            rng.random_ratio(1, 3)
                .then(|| Duration::from_millis(rng.random_range(0..60)))
        };
        async move {
            assert_eq!(now.fetch_add(1, Ordering::SeqCst), 0, "two jobs at once");
            job.progress([("step", "working")]).await?;
            order_tx.send((job.id().to_owned(), job.is_resumed())).ok();
            now.fetch_sub(1, Ordering::SeqCst);
            if let Some(delay) = cut_in {
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    proxy.cut();
                    cuts.fetch_add(1, Ordering::SeqCst);
                });
            }
            Ok::<_, JobsError>(())
        }
    }));
    let mut runs = Vec::new();
    let mut last_new = None;
    while last_new.as_deref() != Some(format!("job-{:03}", JOBS - 1).as_str()) {
        let (id, resumed) = within("the next job", order.recv()).await.expect("a run");
        if runs.last() != Some(&id) {
            runs.push(id.clone());
        } else {
            // The same job again: its claim's reply was lost, it resumed.
            assert!(resumed, "{id} ran twice without being resumed");
        }
        last_new = Some(id);
    }
    let expected: Vec<String> = (0..JOBS).map(|i| format!("job-{i:03}")).collect();
    assert_eq!(runs, expected, "every job once, in the order queued");
    for id in &expected {
        wait_status(&emulator, id, "jr-many", "SUCCEEDED").await;
    }
    assert!(
        proxy.accepted() > 5,
        "the link was cut ({} connections)",
        proxy.accepted()
    );
    runner.abort();
}
