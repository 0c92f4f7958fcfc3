//! Tests of the Jobs control plane: targets, CONTINUOUS membership, cancel and
//! delete rules, counts, versions and pagination.

use std::path::Path;

use super::*;
use crate::store::ExecutionRecord;

fn setup(dir: &Path) -> Control {
    Control::open(dir, ArnScope::default()).unwrap()
}

fn thing(c: &Control, name: &str) -> String {
    c.create_thing(CreateThingRequest::named(name))
        .unwrap()
        .thing_arn
}

fn group(c: &Control, name: &str, parent: Option<&str>) -> String {
    c.create_thing_group(CreateThingGroupRequest {
        thing_group_name: name.to_owned(),
        parent_group_name: parent.map(str::to_owned),
        ..CreateThingGroupRequest::default()
    })
    .unwrap()
    .thing_group_arn
}

fn membership(group: &str, thing: &str) -> ThingGroupMembershipRequest {
    ThingGroupMembershipRequest {
        thing_group_name: Some(group.to_owned()),
        thing_name: Some(thing.to_owned()),
        ..ThingGroupMembershipRequest::default()
    }
}

fn join(c: &Control, group: &str, thing: &str) {
    c.add_thing_to_thing_group(membership(group, thing))
        .unwrap();
}

fn leave(c: &Control, group: &str, thing: &str) {
    c.remove_thing_from_thing_group(membership(group, thing))
        .unwrap();
}

fn job(c: &Control, id: &str, targets: &[&str]) -> Result<JobIdentity, ControlError> {
    let targets = targets.iter().map(|t| (*t).to_owned()).collect();
    c.create_job(CreateJobRequest::new(id, targets, r#"{"op":"reboot"}"#))
}

fn continuous(c: &Control, id: &str, targets: &[&str]) {
    let mut request =
        CreateJobRequest::new(id, targets.iter().map(|t| (*t).to_owned()).collect(), "{}");
    request.target_selection = Some(TargetSelection::Continuous);
    c.create_job(request).unwrap();
}

/// `(thing, execution number, status)` of every execution of `job`.
fn executions(c: &Control, job: &str) -> Vec<(String, i64, ExecutionStatus)> {
    c.store
        .executions_of_job(job)
        .unwrap()
        .into_iter()
        .map(|e| (e.thing_name, e.execution_number, e.status))
        .collect()
}

fn execution(c: &Control, job: &str, thing: &str) -> JobExecution {
    c.describe_job_execution(DescribeJobExecutionRequest {
        job_id: job.to_owned(),
        thing_name: thing.to_owned(),
        execution_number: None,
    })
    .unwrap()
    .execution
}

/// What the device API will do: moves an execution to IN_PROGRESS.
fn start(c: &Control, job: &str, thing: &str) {
    let mut e: ExecutionRecord = c
        .store
        .executions_of_thing(thing)
        .unwrap()
        .into_iter()
        .rfind(|e| e.job_id == job)
        .unwrap();
    e.status = ExecutionStatus::InProgress;
    e.version_number += 1;
    e.started_at = Some(e.queued_at);
    c.store.save_job(None, &[e]).unwrap();
}

fn describe(c: &Control, id: &str) -> Job {
    c.describe_job(JobIdRequest {
        job_id: id.to_owned(),
        before_substitution: None,
    })
    .unwrap()
    .job
}

fn cancel_execution(
    c: &Control,
    job: &str,
    thing: &str,
    force: bool,
    expected_version: Option<i64>,
) -> Result<(), ControlError> {
    c.cancel_job_execution(CancelJobExecutionRequest {
        job_id: job.to_owned(),
        thing_name: thing.to_owned(),
        force: Some(force),
        expected_version,
        status_details: None,
    })
}

use ExecutionStatus::{Canceled, InProgress, Queued, Removed};

#[test]
fn create_job_queues_one_execution_per_thing_of_its_things_and_nested_groups() {
    let dir = tempfile::tempdir().unwrap();
    let c = setup(dir.path());
    let dev1 = thing(&c, "dev1");
    for name in ["lamp1", "lamp2", "dev2"] {
        thing(&c, name);
    }
    let lamps = group(&c, "lamps", None);
    group(&c, "kitchen", Some("lamps"));
    join(&c, "lamps", "lamp1");
    join(&c, "kitchen", "lamp2");
    join(&c, "kitchen", "dev1");

    let created = job(&c, "j1", &[&dev1, &lamps]).unwrap();
    assert_eq!(created.job_arn, c.arn("job", "j1"));
    assert_eq!(
        executions(&c, "j1"),
        [
            ("dev1".to_owned(), 1, Queued),
            ("lamp1".to_owned(), 1, Queued),
            ("lamp2".to_owned(), 1, Queued),
        ]
    );
    let e = execution(&c, "j1", "lamp2");
    assert_eq!(
        (e.version_number, e.execution_number, e.started_at),
        (1, 1, None)
    );
    assert_eq!(e.thing_arn, c.arn("thing", "lamp2"));
    let job = describe(&c, "j1");
    assert_eq!(job.status, JobStatus::InProgress);
    assert_eq!(job.target_selection, TargetSelection::Snapshot);
    assert_eq!(job.job_process_details.number_of_queued_things, 3);
    let document = c
        .get_job_document(JobIdRequest {
            job_id: "j1".into(),
            before_substitution: None,
        })
        .unwrap();
    assert_eq!(document.document, r#"{"op":"reboot"}"#);
}

#[test]
fn create_job_refuses_missing_targets_bad_ids_taken_ids_and_bad_documents() {
    let dir = tempfile::tempdir().unwrap();
    let c = setup(dir.path());
    let dev1 = thing(&c, "dev1");
    let code = |r: Result<JobIdentity, ControlError>| r.unwrap_err().code();

    let missing_thing = c.arn("thing", "ghost");
    let missing_group = c.arn("thinggroup", "ghosts");
    assert_eq!(
        code(job(&c, "j", &[&dev1, &missing_thing])),
        ErrorCode::ResourceNotFound
    );
    assert_eq!(
        code(job(&c, "j", &[&missing_group])),
        ErrorCode::ResourceNotFound
    );
    assert_eq!(code(job(&c, "j", &[])), ErrorCode::InvalidRequest);
    assert_eq!(
        code(job(&c, "j", &["arn:aws:iot:eu-west-9:1:thing/dev1"])),
        ErrorCode::InvalidRequest
    );
    for bad in ["", "has space", "a/b", &"x".repeat(65)] {
        assert_eq!(code(job(&c, bad, &[&dev1])), ErrorCode::InvalidRequest);
    }
    assert!(
        c.store.list_jobs().unwrap().is_empty(),
        "nothing was stored"
    );

    job(&c, "j", &[&dev1]).unwrap();
    let taken = job(&c, "j", &[&dev1]).unwrap_err();
    assert_eq!(taken.code(), ErrorCode::ResourceAlreadyExists);
    assert_eq!(taken.resource_arn(), Some(c.arn("job", "j").as_str()));

    let mut both = CreateJobRequest::new("k", vec![dev1.clone()], "{}");
    both.document_source = Some("/nonexistent".into());
    assert_eq!(code(c.create_job(both)), ErrorCode::InvalidRequest);
    let mut neither = CreateJobRequest::new("k", vec![dev1.clone()], "{}");
    neither.document = None;
    assert_eq!(code(c.create_job(neither)), ErrorCode::InvalidRequest);
    let not_json = CreateJobRequest::new("k", vec![dev1.clone()], "{");
    assert_eq!(code(c.create_job(not_json)), ErrorCode::InvalidRequest);
    let mut s3 = CreateJobRequest::new("k", vec![dev1.clone()], "{}");
    s3.document = None;
    s3.document_source = Some("s3://bucket/job.json".into());
    let err = c.create_job(s3).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidRequest);
    assert!(err.message().contains("does not fetch"), "{err}");
    let mut slow = CreateJobRequest::new("k", vec![dev1], "{}");
    slow.timeout_config = Some(TimeoutConfig {
        in_progress_timeout_in_minutes: Some(10081),
    });
    assert_eq!(code(c.create_job(slow)), ErrorCode::InvalidRequest);
}

#[test]
fn a_document_source_is_read_from_a_local_file() {
    let dir = tempfile::tempdir().unwrap();
    let c = setup(&dir.path().join("data"));
    let dev1 = thing(&c, "dev1");
    let file = dir.path().join("job.json");
    std::fs::write(&file, r#"{"url":"file:///fw.bin"}"#).unwrap();
    let mut request = CreateJobRequest::new("fw", vec![dev1], "");
    request.document = None;
    request.document_source = Some(file.display().to_string());
    c.create_job(request).unwrap();
    let described = c
        .describe_job(JobIdRequest {
            job_id: "fw".into(),
            before_substitution: None,
        })
        .unwrap();
    assert_eq!(
        described.document_source.as_deref(),
        Some(file.display().to_string().as_str())
    );
    let document = c
        .get_job_document(JobIdRequest {
            job_id: "fw".into(),
            before_substitution: None,
        })
        .unwrap();
    assert_eq!(document.document, r#"{"url":"file:///fw.bin"}"#);
}

#[test]
fn continuous_jobs_queue_things_that_join_and_remove_open_executions_of_things_that_leave() {
    let dir = tempfile::tempdir().unwrap();
    let c = setup(dir.path());
    for name in ["a", "b"] {
        thing(&c, name);
    }
    let lamps = group(&c, "lamps", None);
    group(&c, "kitchen", Some("lamps"));
    continuous(&c, "cont", &[&lamps]);
    job(&c, "snap", &[&lamps]).unwrap();
    assert!(executions(&c, "cont").is_empty());

    join(&c, "kitchen", "a");
    join(&c, "lamps", "b");
    assert_eq!(
        executions(&c, "cont"),
        [("a".to_owned(), 1, Queued), ("b".to_owned(), 1, Queued)]
    );
    assert!(
        executions(&c, "snap").is_empty(),
        "a SNAPSHOT job keeps its targets of creation"
    );

    join(&c, "lamps", "a");
    leave(&c, "kitchen", "a");
    assert_eq!(
        execution(&c, "cont", "a").status,
        Queued,
        "still a target through the parent group"
    );

    start(&c, "cont", "b");
    leave(&c, "lamps", "b");
    let removed = execution(&c, "cont", "b");
    assert_eq!(removed.status, Removed);
    assert_eq!(removed.version_number, 3);

    join(&c, "lamps", "b");
    assert_eq!(
        executions(&c, "cont"),
        [
            ("a".to_owned(), 1, Queued),
            ("b".to_owned(), 1, Removed),
            ("b".to_owned(), 2, Queued),
        ],
        "rejoining runs the job again under a new execution number"
    );
}

#[test]
fn leaving_the_group_leaves_terminal_executions_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let c = setup(dir.path());
    thing(&c, "a");
    let lamps = group(&c, "lamps", None);
    join(&c, "lamps", "a");
    continuous(&c, "cont", &[&lamps]);
    assert_eq!(executions(&c, "cont"), [("a".to_owned(), 1, Queued)]);
    cancel_execution(&c, "cont", "a", false, None).unwrap();
    leave(&c, "lamps", "a");
    assert_eq!(executions(&c, "cont"), [("a".to_owned(), 1, Canceled)]);
}

#[test]
fn cancel_job_without_force_cancels_only_queued_executions() {
    let dir = tempfile::tempdir().unwrap();
    let c = setup(dir.path());
    let targets = [thing(&c, "a"), thing(&c, "b")];
    job(&c, "j", &[&targets[0], &targets[1]]).unwrap();
    start(&c, "j", "a");

    let answer = c
        .cancel_job(CancelJobRequest {
            job_id: "j".into(),
            reason_code: Some("BAD_FIRMWARE".into()),
            comment: Some("rolled back".into()),
            force: None,
        })
        .unwrap();
    assert_eq!(answer.job_id, "j");
    assert_eq!(
        executions(&c, "j"),
        [
            ("a".to_owned(), 1, InProgress),
            ("b".to_owned(), 1, Canceled)
        ]
    );
    let job = describe(&c, "j");
    assert_eq!(job.status, JobStatus::Canceled);
    assert!(!job.force_canceled);
    assert_eq!(job.reason_code.as_deref(), Some("BAD_FIRMWARE"));
    assert_eq!(job.comment.as_deref(), Some("rolled back"));
    assert!(job.completed_at.is_some());
    assert!(!execution(&c, "j", "b").force_canceled);

    let bad = c.cancel_job(CancelJobRequest {
        job_id: "j".into(),
        reason_code: Some("lower case".into()),
        ..CancelJobRequest::default()
    });
    assert_eq!(bad.unwrap_err().code(), ErrorCode::InvalidRequest);
}

#[test]
fn cancel_job_with_force_also_cancels_in_progress_executions() {
    let dir = tempfile::tempdir().unwrap();
    let c = setup(dir.path());
    let targets = [thing(&c, "a"), thing(&c, "b")];
    job(&c, "j", &[&targets[0], &targets[1]]).unwrap();
    start(&c, "j", "a");
    c.cancel_job(CancelJobRequest {
        job_id: "j".into(),
        force: Some(true),
        ..CancelJobRequest::default()
    })
    .unwrap();
    assert_eq!(
        executions(&c, "j"),
        [("a".to_owned(), 1, Canceled), ("b".to_owned(), 1, Canceled)]
    );
    assert!(describe(&c, "j").force_canceled);
    assert!(execution(&c, "j", "a").force_canceled);
    assert!(!execution(&c, "j", "b").force_canceled);
}

#[test]
fn delete_job_needs_a_finished_job_unless_forced_and_takes_its_executions() {
    let dir = tempfile::tempdir().unwrap();
    let c = setup(dir.path());
    let a = thing(&c, "a");
    job(&c, "j", &[&a]).unwrap();
    job(&c, "k", &[&a]).unwrap();
    let delete = |id: &str, force| {
        c.delete_job(DeleteJobRequest {
            job_id: id.into(),
            force,
            namespace_id: None,
        })
    };
    assert_eq!(
        delete("j", None).unwrap_err().code(),
        ErrorCode::InvalidStateTransition
    );
    assert_eq!(executions(&c, "j").len(), 1, "nothing was deleted");

    c.cancel_job(CancelJobRequest {
        job_id: "j".into(),
        ..CancelJobRequest::default()
    })
    .unwrap();
    delete("j", None).unwrap();
    delete("k", Some(true)).unwrap();
    assert!(c.store.list_jobs().unwrap().is_empty());
    assert!(c.store.executions_of_thing("a").unwrap().is_empty());
    assert_eq!(
        delete("j", None).unwrap_err().code(),
        ErrorCode::ResourceNotFound
    );
}

#[test]
fn describe_job_counts_executions_by_status() {
    let dir = tempfile::tempdir().unwrap();
    let c = setup(dir.path());
    let targets: Vec<String> = ["a", "b", "c"].iter().map(|n| thing(&c, n)).collect();
    let refs: Vec<&str> = targets.iter().map(String::as_str).collect();
    job(&c, "j", &refs).unwrap();
    start(&c, "j", "a");
    cancel_execution(&c, "j", "b", false, None).unwrap();
    let details = describe(&c, "j").job_process_details;
    assert_eq!(
        details,
        JobProcessDetails {
            number_of_queued_things: 1,
            number_of_in_progress_things: 1,
            number_of_canceled_things: 1,
            ..JobProcessDetails::default()
        }
    );
}

#[test]
fn cancel_job_execution_follows_status_and_version_rules() {
    let dir = tempfile::tempdir().unwrap();
    let c = setup(dir.path());
    let targets = [thing(&c, "a"), thing(&c, "b")];
    job(&c, "j", &[&targets[0], &targets[1]]).unwrap();
    start(&c, "j", "a");

    let code = |r: Result<(), ControlError>| r.unwrap_err().code();
    assert_eq!(
        code(cancel_execution(&c, "j", "a", false, None)),
        ErrorCode::InvalidStateTransition
    );
    assert_eq!(
        code(cancel_execution(&c, "j", "a", true, Some(1))),
        ErrorCode::VersionConflict
    );
    assert_eq!(
        code(cancel_execution(&c, "j", "ghost", false, None)),
        ErrorCode::ResourceNotFound
    );
    c.cancel_job_execution(CancelJobExecutionRequest {
        job_id: "j".into(),
        thing_name: "b".into(),
        status_details: Some([("why".to_owned(), "operator".to_owned())].into()),
        ..CancelJobExecutionRequest::default()
    })
    .unwrap();
    let b = execution(&c, "j", "b");
    assert_eq!((b.status, b.version_number), (Canceled, 2));
    assert_eq!(b.status_details.details_map["why"], "operator");
    assert_eq!(
        code(cancel_execution(&c, "j", "b", true, None)),
        ErrorCode::InvalidStateTransition,
        "a terminal execution cannot be canceled again"
    );
    assert_eq!(describe(&c, "j").status, JobStatus::InProgress);

    cancel_execution(&c, "j", "a", true, Some(2)).unwrap();
    let a = execution(&c, "j", "a");
    assert!(a.force_canceled);
    let job = describe(&c, "j");
    assert_eq!(
        job.status,
        JobStatus::Completed,
        "a SNAPSHOT job whose executions are all terminal is COMPLETED"
    );
    assert!(job.completed_at.is_some());
}

#[test]
fn delete_job_execution_needs_a_terminal_execution_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let c = setup(dir.path());
    let a = thing(&c, "a");
    let b = thing(&c, "b");
    job(&c, "j", &[&a, &b]).unwrap();
    let delete = |thing: &str, number, force| {
        c.delete_job_execution(DeleteJobExecutionRequest {
            job_id: "j".into(),
            thing_name: thing.into(),
            execution_number: Some(number),
            force,
            namespace_id: None,
        })
    };
    assert_eq!(
        delete("a", 1, None).unwrap_err().code(),
        ErrorCode::InvalidStateTransition
    );
    assert_eq!(
        delete("a", 2, None).unwrap_err().code(),
        ErrorCode::ResourceNotFound
    );
    cancel_execution(&c, "j", "a", false, None).unwrap();
    delete("a", 1, None).unwrap();
    delete("b", 1, Some(true)).unwrap();
    assert!(executions(&c, "j").is_empty());
}

#[test]
fn listings_filter_and_page_through_every_job_and_execution_once() {
    let dir = tempfile::tempdir().unwrap();
    let c = setup(dir.path());
    let a = thing(&c, "a");
    let lamps = group(&c, "lamps", None);
    join(&c, "lamps", "a");
    for i in 0..5 {
        job(&c, &format!("j{i}"), &[&a]).unwrap();
    }
    continuous(&c, "c0", &[&lamps]);
    c.cancel_job(CancelJobRequest {
        job_id: "j1".into(),
        ..CancelJobRequest::default()
    })
    .unwrap();

    let mut ids = Vec::new();
    let mut token = None;
    loop {
        let page = c
            .list_jobs(ListJobsRequest {
                max_results: Some(2),
                next_token: token,
                ..ListJobsRequest::default()
            })
            .unwrap();
        assert!(page.jobs.len() <= 2);
        ids.extend(page.jobs.into_iter().map(|j| j.job_id));
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(ids, ["c0", "j0", "j1", "j2", "j3", "j4"]);

    let list = |request: ListJobsRequest| -> Vec<String> {
        let jobs = c.list_jobs(request).unwrap().jobs;
        jobs.into_iter().map(|j| j.job_id).collect()
    };
    assert_eq!(
        list(ListJobsRequest {
            status: Some(JobStatus::Canceled),
            ..ListJobsRequest::default()
        }),
        ["j1"]
    );
    let by_group = ListJobsRequest {
        thing_group_name: Some("lamps".into()),
        ..ListJobsRequest::default()
    };
    assert_eq!(list(by_group), ["c0"]);
    assert_eq!(
        list(ListJobsRequest {
            target_selection: Some(TargetSelection::Continuous),
            ..ListJobsRequest::default()
        }),
        ["c0"]
    );

    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = c
            .list_job_executions_for_thing(ListJobExecutionsForThingRequest {
                thing_name: "a".into(),
                max_results: Some(4),
                next_token: token,
                ..ListJobExecutionsForThingRequest::default()
            })
            .unwrap();
        seen.extend(page.execution_summaries.into_iter().map(|s| s.job_id));
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, ["c0", "j0", "j1", "j2", "j3", "j4"]);
    let canceled = c
        .list_job_executions_for_thing(ListJobExecutionsForThingRequest {
            thing_name: "a".into(),
            status: Some(Canceled),
            ..ListJobExecutionsForThingRequest::default()
        })
        .unwrap();
    assert_eq!(canceled.execution_summaries.len(), 1);
    let for_job = c
        .list_job_executions_for_job(ListJobExecutionsForJobRequest {
            job_id: "j0".into(),
            ..ListJobExecutionsForJobRequest::default()
        })
        .unwrap();
    assert_eq!(for_job.execution_summaries[0].thing_arn, a);
    let missing = c.list_job_executions_for_thing(ListJobExecutionsForThingRequest {
        thing_name: "ghost".into(),
        ..ListJobExecutionsForThingRequest::default()
    });
    assert_eq!(missing.unwrap_err().code(), ErrorCode::ResourceNotFound);
}

#[test]
fn update_job_replaces_description_and_configurations_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let c = setup(dir.path());
    let a = thing(&c, "a");
    job(&c, "j", &[&a]).unwrap();
    c.update_job(UpdateJobRequest {
        job_id: "j".into(),
        description: Some("new firmware".into()),
        timeout_config: Some(TimeoutConfig {
            in_progress_timeout_in_minutes: Some(30),
        }),
        job_executions_rollout_config: Some(JobExecutionsRolloutConfig {
            maximum_per_minute: Some(10),
            exponential_rate: None,
        }),
        ..UpdateJobRequest::default()
    })
    .unwrap();
    let job = describe(&c, "j");
    assert_eq!(job.description.as_deref(), Some("new firmware"));
    assert_eq!(
        executions(&c, "j"),
        [("a".to_owned(), 1, Queued)],
        "updating the job keeps its executions"
    );
    assert_eq!(
        job.timeout_config,
        Some(serde_json::json!({"inProgressTimeoutInMinutes": 30}))
    );
    assert_eq!(
        job.job_executions_rollout_config,
        Some(serde_json::json!({"maximumPerMinute": 10}))
    );
    let bad = c.update_job(UpdateJobRequest {
        job_id: "j".into(),
        job_executions_retry_config: Some(JobExecutionsRetryConfig {
            criteria_list: vec![RetryCriteria {
                failure_type: "FAILED".into(),
                number_of_retries: 11,
            }],
        }),
        ..UpdateJobRequest::default()
    });
    assert_eq!(bad.unwrap_err().code(), ErrorCode::InvalidRequest);
    let missing = c.update_job(UpdateJobRequest {
        job_id: "ghost".into(),
        ..UpdateJobRequest::default()
    });
    assert_eq!(missing.unwrap_err().code(), ErrorCode::ResourceNotFound);
}
