//! Jobs topics and messages, case by case, with AWS's sample documents.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::*;

use JobsTopicKind::{Accepted, Rejected, Request};

#[test]
fn every_topic_round_trips() {
    let cases = [
        ("$aws/things/t1/jobs/get", JobsApi::GetPending, Request),
        (
            "$aws/things/t1/jobs/get/accepted",
            JobsApi::GetPending,
            Accepted,
        ),
        (
            "$aws/things/t1/jobs/get/rejected",
            JobsApi::GetPending,
            Rejected,
        ),
        (
            "$aws/things/t1/jobs/start-next",
            JobsApi::StartNext,
            Request,
        ),
        (
            "$aws/things/t1/jobs/start-next/accepted",
            JobsApi::StartNext,
            Accepted,
        ),
        (
            "$aws/things/t1/jobs/start-next/rejected",
            JobsApi::StartNext,
            Rejected,
        ),
        (
            "$aws/things/t1/jobs/fw-1/get",
            JobsApi::Describe { job_id: "fw-1" },
            Request,
        ),
        (
            "$aws/things/t1/jobs/fw-1/get/accepted",
            JobsApi::Describe { job_id: "fw-1" },
            Accepted,
        ),
        (
            "$aws/things/t1/jobs/$next/get",
            JobsApi::Describe { job_id: "$next" },
            Request,
        ),
        (
            "$aws/things/t1/jobs/$next/get/rejected",
            JobsApi::Describe { job_id: "$next" },
            Rejected,
        ),
        (
            "$aws/things/t1/jobs/fw-1/update",
            JobsApi::Update { job_id: "fw-1" },
            Request,
        ),
        (
            "$aws/things/t1/jobs/fw-1/update/accepted",
            JobsApi::Update { job_id: "fw-1" },
            Accepted,
        ),
        (
            "$aws/things/t1/jobs/fw-1/update/rejected",
            JobsApi::Update { job_id: "fw-1" },
            Rejected,
        ),
        ("$aws/things/t1/jobs/notify", JobsApi::Notify, Request),
        (
            "$aws/things/t1/jobs/notify-next",
            JobsApi::NotifyNext,
            Request,
        ),
        // Job ids that look like operation names are still job ids.
        (
            "$aws/things/t1/jobs/get/get",
            JobsApi::Describe { job_id: "get" },
            Request,
        ),
        (
            "$aws/things/t1/jobs/notify/update/accepted",
            JobsApi::Update { job_id: "notify" },
            Accepted,
        ),
        (
            "$aws/things/t1/jobs/start-next/update",
            JobsApi::Update {
                job_id: "start-next",
            },
            Request,
        ),
    ];
    for (topic, api, kind) in cases {
        assert!(JobsTopic::is_reserved(topic), "{topic}");
        let parsed = JobsTopic::parse(topic).unwrap_or_else(|e| panic!("{topic}: {e}"));
        assert_eq!(parsed.thing(), "t1", "{topic}");
        assert_eq!(parsed.api(), api, "{topic}");
        assert_eq!(parsed.kind(), kind, "{topic}");
        assert_eq!(parsed.to_topic(), topic);
        assert_eq!(JobsTopic::new("t1", api, kind).unwrap(), parsed);
    }
    let request = JobsTopic::parse("$aws/things/t1/jobs/start-next").unwrap();
    assert_eq!(
        request.with_kind(Rejected).unwrap().to_topic(),
        "$aws/things/t1/jobs/start-next/rejected"
    );
    assert_eq!(jobs_topic_prefix("t1").unwrap(), "$aws/things/t1/jobs");
}

#[test]
fn topics_outside_the_jobs_prefix_are_not_jobs_topics() {
    for topic in [
        "",
        "a/b",
        "$aws/things/t1",
        "$aws/things/t1/jobs",
        "$aws/things/t1/shadow/get",
        "$aws/events/job/j1/created",
    ] {
        assert!(!JobsTopic::is_reserved(topic), "{topic}");
        assert!(
            matches!(JobsTopic::parse(topic), Err(JobsTopicError::NotJobs { .. })),
            "{topic}"
        );
    }
}

#[test]
fn unknown_topics_under_the_jobs_prefix_are_refused_as_unknown() {
    for topic in [
        "$aws/things/t1/jobs/",
        "$aws/things/t1/jobs/list",
        "$aws/things/t1/jobs/get/done",
        "$aws/things/t1/jobs/get/accepted/x",
        "$aws/things/t1/jobs/notify/accepted",
        "$aws/things/t1/jobs/notify-next/rejected",
        "$aws/things/t1/jobs/fw-1",
        "$aws/things/t1/jobs/fw-1/delete",
        "$aws/things/t1/jobs/fw-1/update/done",
        "$aws/things/t1/jobs/fw-1/update/accepted/x",
    ] {
        assert!(JobsTopic::is_reserved(topic), "{topic}");
        assert!(
            matches!(JobsTopic::parse(topic), Err(JobsTopicError::Unknown { .. })),
            "{topic}: {:?}",
            JobsTopic::parse(topic)
        );
    }
}

#[test]
fn invalid_names_are_refused() {
    assert!(matches!(
        JobsTopic::parse("$aws/things/t1/jobs/$next/update"),
        Err(JobsTopicError::InvalidJobId(_))
    ));
    assert!(matches!(
        JobsTopic::parse("$aws/things/t1/jobs/a.b/get"),
        Err(JobsTopicError::InvalidJobId(_))
    ));
    let long = "j".repeat(MAX_JOB_ID_LEN + 1);
    assert!(matches!(
        JobsTopic::new("t1", JobsApi::Update { job_id: &long }, Request),
        Err(JobsTopicError::InvalidJobId(_))
    ));
    assert!(matches!(
        JobsTopic::parse("$aws/things/t 1/jobs/get"),
        Err(JobsTopicError::InvalidThingName(_))
    ));
    assert!(matches!(
        JobsTopic::new("t1", JobsApi::NotifyNext, Accepted),
        Err(JobsTopicError::NotificationReply { .. })
    ));
    assert!(validate_job_id("fw_update-2").is_ok());
    assert!(validate_job_id("").is_err());
}

#[test]
fn statuses_spell_and_classify_as_aws() {
    use JobExecutionStatus::*;
    let wire: Vec<Value> = JobExecutionStatus::ALL
        .iter()
        .map(|s| serde_json::to_value(s).unwrap())
        .collect();
    assert_eq!(
        wire,
        json!([
            "QUEUED",
            "IN_PROGRESS",
            "SUCCEEDED",
            "FAILED",
            "TIMED_OUT",
            "REJECTED",
            "REMOVED",
            "CANCELED"
        ])
        .as_array()
        .unwrap()
        .clone()
    );
    for status in JobExecutionStatus::ALL {
        assert_eq!(
            status.as_str().parse::<JobExecutionStatus>().unwrap(),
            status
        );
        assert_eq!(status.to_string(), status.as_str());
    }
    let terminal: Vec<_> = JobExecutionStatus::ALL
        .into_iter()
        .filter(|s| s.is_terminal())
        .collect();
    assert_eq!(
        terminal,
        [Succeeded, Failed, TimedOut, Rejected, Removed, Canceled]
    );
    let by_device: Vec<_> = JobExecutionStatus::ALL
        .into_iter()
        .filter(|s| s.is_set_by_device())
        .collect();
    assert_eq!(by_device, [InProgress, Succeeded, Failed, Rejected]);
    assert!("SUCCESS".parse::<JobExecutionStatus>().is_err());
}

/// Parses `sample`, checks it against `expected`, and checks that writing it
/// back gives the same JSON.
fn round_trip<T: JobsMessage + PartialEq + std::fmt::Debug>(sample: Value, expected: &T) {
    let parsed = T::from_json(sample.to_string().as_bytes()).unwrap();
    assert_eq!(&parsed, expected);
    let written: Value = serde_json::from_slice(&parsed.to_json()).unwrap();
    assert_eq!(written, sample);
}

fn summary(
    job_id: &str,
    queued_at: i64,
    started_at: Option<i64>,
    version: i64,
) -> JobExecutionSummary {
    JobExecutionSummary {
        job_id: job_id.into(),
        queued_at,
        started_at,
        last_updated_at: started_at.unwrap_or(queued_at),
        version_number: version,
        execution_number: 1,
    }
}

#[test]
fn get_pending_reply_round_trips() {
    // jobs-mqtt-api.md, GetPendingJobExecutions response.
    let sample = json!({
        "inProgressJobs": [{"jobId": "job1", "queuedAt": 1517016947, "startedAt": 1517016950,
            "lastUpdatedAt": 1517016950, "versionNumber": 2, "executionNumber": 1}],
        "queuedJobs": [{"jobId": "job2", "queuedAt": 1517016948, "lastUpdatedAt": 1517016948,
            "versionNumber": 1, "executionNumber": 1}],
        "timestamp": 1517016960,
        "clientToken": "client-001"
    });
    round_trip(
        sample,
        &GetPendingJobExecutionsResponse {
            in_progress_jobs: vec![summary("job1", 1517016947, Some(1517016950), 2)],
            queued_jobs: vec![summary("job2", 1517016948, None, 1)],
            timestamp: 1517016960,
            client_token: Some("client-001".into()),
        },
    );
    round_trip(
        json!({"clientToken": "client-001"}),
        &GetPendingJobExecutionsRequest {
            client_token: Some("client-001".into()),
        },
    );
    assert_eq!(
        GetPendingJobExecutionsRequest::from_json(b"").unwrap(),
        GetPendingJobExecutionsRequest::default()
    );
}

fn execution(status: JobExecutionStatus, version: i64) -> JobExecution {
    JobExecution {
        job_id: "job1".into(),
        thing_name: Some("MyThing".into()),
        job_document: Some(json!({"operation": "firmware", "url": "https://example.com/fw.bin"})),
        status,
        status_details: None,
        queued_at: 1517016947,
        started_at: None,
        last_updated_at: 1517016947,
        version_number: version,
        execution_number: 1,
    }
}

#[test]
fn start_next_and_describe_round_trip() {
    let request = json!({"statusDetails": {"step": "download"}, "stepTimeoutInMinutes": 5,
        "clientToken": "t-1"});
    round_trip(
        request,
        &StartNextPendingJobExecutionRequest {
            status_details: Some([("step".to_owned(), "download".to_owned())].into()),
            step_timeout_in_minutes: Some(5),
            client_token: Some("t-1".into()),
        },
    );
    let mut started = execution(JobExecutionStatus::InProgress, 2);
    started.started_at = Some(1517016950);
    started.last_updated_at = 1517016950;
    started.status_details = Some([("step".to_owned(), "download".to_owned())].into());
    let reply = json!({
        "execution": {"jobId": "job1", "thingName": "MyThing",
            "jobDocument": {"operation": "firmware", "url": "https://example.com/fw.bin"},
            "status": "IN_PROGRESS", "statusDetails": {"step": "download"},
            "queuedAt": 1517016947, "startedAt": 1517016950, "lastUpdatedAt": 1517016950,
            "versionNumber": 2, "executionNumber": 1},
        "timestamp": 1517016950, "clientToken": "t-1"
    });
    round_trip(
        reply,
        &StartNextJobExecutionResponse {
            execution: Some(started.clone()),
            timestamp: 1517016950,
            client_token: Some("t-1".into()),
        },
    );
    // Nothing pending: no execution key.
    round_trip(
        json!({"timestamp": 1517016950, "clientToken": "t-2"}),
        &StartNextJobExecutionResponse::<Value> {
            execution: None,
            timestamp: 1517016950,
            client_token: Some("t-2".into()),
        },
    );
    round_trip(
        json!({"executionNumber": 1, "includeJobDocument": false, "clientToken": "t-3"}),
        &DescribeJobExecutionRequest {
            execution_number: Some(1),
            include_job_document: Some(false),
            client_token: Some("t-3".into()),
        },
    );
    let mut described = started;
    described.job_document = None;
    round_trip(
        json!({"execution": {"jobId": "job1", "thingName": "MyThing", "status": "IN_PROGRESS",
            "statusDetails": {"step": "download"}, "queuedAt": 1517016947,
            "startedAt": 1517016950, "lastUpdatedAt": 1517016950, "versionNumber": 2,
            "executionNumber": 1}, "timestamp": 1517016951, "clientToken": "t-3"}),
        &DescribeJobExecutionResponse {
            execution: Some(described),
            timestamp: 1517016951,
            client_token: Some("t-3".into()),
        },
    );
}

#[test]
fn update_request_takes_expected_version_as_number_or_string() {
    let full = json!({"status": "IN_PROGRESS", "statusDetails": {"progress": "50%"},
        "expectedVersion": 2, "executionNumber": 1, "includeJobExecutionState": true,
        "includeJobDocument": true, "stepTimeoutInMinutes": -1, "clientToken": "t-4"});
    let mut expected = UpdateJobExecutionRequest::new(JobExecutionStatus::InProgress);
    expected.status_details = Some([("progress".to_owned(), "50%".to_owned())].into());
    expected.expected_version = Some(2);
    expected.execution_number = Some(1);
    expected.include_job_execution_state = Some(true);
    expected.include_job_document = Some(true);
    expected.step_timeout_in_minutes = Some(CANCEL_STEP_TIMER);
    expected.client_token = Some("t-4".into());
    round_trip(full, &expected);
    // AWS's embedded Jobs library sends the version as a string.
    let as_string =
        UpdateJobExecutionRequest::from_json(br#"{"status":"SUCCEEDED","expectedVersion":"7"}"#)
            .unwrap();
    assert_eq!(as_string.expected_version, Some(7));
    assert_eq!(as_string.status, JobExecutionStatus::Succeeded);
    let absent = UpdateJobExecutionRequest::from_json(br#"{"status":"FAILED"}"#).unwrap();
    assert_eq!(
        absent,
        UpdateJobExecutionRequest::new(JobExecutionStatus::Failed)
    );
}

#[test]
fn bad_requests_are_typed_errors() {
    let invalid_json = |payload: &[u8]| {
        matches!(
            UpdateJobExecutionRequest::from_json(payload),
            Err(JobsMessageError::InvalidJson(_))
        )
    };
    assert!(invalid_json(b"{not json"));
    assert!(invalid_json(b"\xff\xfe"));
    for payload in [
        &br#"[1,2]"#[..],
        br#"{}"#,
        br#"{"status":"DONE"}"#,
        br#"{"status":"SUCCEEDED","expectedVersion":"seven"}"#,
        br#"{"status":"SUCCEEDED","expectedVersion":true}"#,
        br#"{"status":"SUCCEEDED","statusDetails":{"n":1}}"#,
        br#"{"status":"IN_PROGRESS","stepTimeoutInMinutes":0}"#,
        br#"{"status":"IN_PROGRESS","stepTimeoutInMinutes":10081}"#,
        br#"{"status":"IN_PROGRESS","stepTimeoutInMinutes":-2}"#,
    ] {
        let error = UpdateJobExecutionRequest::from_json(payload).unwrap_err();
        assert!(
            matches!(error, JobsMessageError::InvalidRequest(_)),
            "{}: {error:?}",
            String::from_utf8_lossy(payload)
        );
        assert_eq!(error.code(), ErrorCode::InvalidRequest);
    }
    assert!(
        StartNextPendingJobExecutionRequest::from_json(br#"{"stepTimeoutInMinutes":10080}"#)
            .is_ok()
    );
    assert!(
        StartNextPendingJobExecutionRequest::from_json(br#"{"stepTimeoutInMinutes":0}"#).is_err()
    );
    let reply = JobsMessageError::InvalidJson("x".into()).to_response(Some("t".into()), 5);
    assert_eq!(reply.code, ErrorCode::InvalidJson);
    assert_eq!(reply.client_token.as_deref(), Some("t"));
}

#[test]
fn update_reply_round_trips() {
    round_trip(
        json!({"executionState": {"status": "SUCCEEDED", "statusDetails": {"detail": "done"},
            "versionNumber": 3}, "jobDocument": {"operation": "reboot"},
            "timestamp": 1517016990, "clientToken": "t-5"}),
        &UpdateJobExecutionResponse {
            execution_state: Some(JobExecutionState {
                status: JobExecutionStatus::Succeeded,
                status_details: Some([("detail".to_owned(), "done".to_owned())].into()),
                version_number: 3,
            }),
            job_document: Some(json!({"operation": "reboot"})),
            timestamp: 1517016990,
            client_token: Some("t-5".into()),
        },
    );
    round_trip(
        json!({"timestamp": 1517016990, "clientToken": "t-6"}),
        &UpdateJobExecutionResponse::<Value> {
            execution_state: None,
            job_document: None,
            timestamp: 1517016990,
            client_token: Some("t-6".into()),
        },
    );
}

#[test]
fn notifications_round_trip_as_in_aws_walkthrough() {
    // jobs-comm-notifications.md: a job queued, then the queue empty.
    let mut queued = execution(JobExecutionStatus::Queued, 1);
    queued.thing_name = None;
    queued.job_document = Some(json!({"operation": "test"}));
    round_trip(
        json!({"timestamp": 1517016948, "execution": {"jobId": "job1", "status": "QUEUED",
            "queuedAt": 1517016947, "lastUpdatedAt": 1517016947, "versionNumber": 1,
            "executionNumber": 1, "jobDocument": {"operation": "test"}}}),
        &NextJobExecutionChanged {
            execution: Some(queued),
            timestamp: 1517016948,
        },
    );
    round_trip(
        json!({"timestamp": 1517016949}),
        &NextJobExecutionChanged::<Value> {
            execution: None,
            timestamp: 1517016949,
        },
    );
    round_trip(
        json!({"timestamp": 1517016948, "jobs": {"QUEUED": [{"jobId": "job1",
            "queuedAt": 1517016947, "lastUpdatedAt": 1517016947, "executionNumber": 1,
            "versionNumber": 1}]}}),
        &JobExecutionsChanged {
            jobs: [(
                JobExecutionStatus::Queued,
                vec![summary("job1", 1517016947, None, 1)],
            )]
            .into(),
            timestamp: 1517016948,
        },
    );
    round_trip(
        json!({"timestamp": 1517016949, "jobs": {}}),
        &JobExecutionsChanged {
            jobs: Default::default(),
            timestamp: 1517016949,
        },
    );
}

#[test]
fn error_replies_round_trip_with_the_execution_state() {
    round_trip(
        json!({"code": "VersionMismatch", "message": "expected version 1, current 2",
            "clientToken": "t-7", "timestamp": 1517016990,
            "executionState": {"status": "IN_PROGRESS", "versionNumber": 2}}),
        &ErrorResponse::new(
            ErrorCode::VersionMismatch,
            "expected version 1, current 2",
            1517016990,
        )
        .with_client_token(Some("t-7".into()))
        .with_execution_state(JobExecutionState {
            status: JobExecutionStatus::InProgress,
            status_details: None,
            version_number: 2,
        }),
    );
    for code in [
        "InvalidTopic",
        "InvalidJson",
        "InvalidRequest",
        "InvalidStateTransition",
        "ResourceNotFound",
        "VersionMismatch",
        "InternalError",
        "RequestThrottled",
        "TerminalStateReached",
    ] {
        let parsed: ErrorCode = serde_json::from_value(json!(code)).unwrap();
        assert_eq!(parsed.as_str(), code);
    }
    let newer = ErrorResponse::from_json(br#"{"code":"SomethingNew","message":"m"}"#).unwrap();
    assert_eq!(newer.code, ErrorCode::Unknown);
}

#[test]
fn the_job_document_can_be_the_applications_own_type() {
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Firmware {
        version: String,
        url: String,
    }
    let payload = json!({"timestamp": 5, "execution": {"jobId": "fw", "status": "QUEUED",
        "queuedAt": 1, "lastUpdatedAt": 1, "versionNumber": 1, "executionNumber": 1,
        "jobDocument": {"version": "2.0", "url": "https://example.com/fw"}}});
    let next =
        NextJobExecutionChanged::<Firmware>::from_json(payload.to_string().as_bytes()).unwrap();
    assert_eq!(
        next.execution.unwrap().job_document.unwrap(),
        Firmware {
            version: "2.0".into(),
            url: "https://example.com/fw".into()
        }
    );
    let wrong = json!({"timestamp": 5, "execution": {"jobId": "fw", "status": "QUEUED",
        "queuedAt": 1, "lastUpdatedAt": 1, "versionNumber": 1, "executionNumber": 1,
        "jobDocument": {"operation": "reboot"}}});
    assert!(matches!(
        NextJobExecutionChanged::<Firmware>::from_json(wrong.to_string().as_bytes()),
        Err(JobsMessageError::InvalidRequest(_))
    ));
}
