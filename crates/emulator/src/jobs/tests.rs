//! Behaviour specs of the device side of jobs, on a manual clock: the
//! device operations, the timers, retries, rollout and abort, cancel and
//! group membership, and what survives a restart. Each test moves the clock
//! by hand and runs what the jobs worker runs ([`Control::run_job_timers`]).

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use iotcore_model::jobs::{
    ErrorCode, JobExecutionStatus, StartNextPendingJobExecutionRequest, UpdateJobExecutionRequest,
};
use serde_json::{Value, json};

use crate::clock::{Clock, ManualClock};
use crate::control::{
    CancelJobExecutionRequest, CancelJobRequest, Control, CreateJobRequest,
    CreateThingGroupRequest, CreateThingRequest, DescribeJobExecutionRequest, ExecutionStatus,
    JobIdRequest, JobStatus, JobsDataError, ThingGroupMembershipRequest,
};
use crate::policy::ArnScope;

const START: u64 = 1_700_000_000;

struct Jobs {
    _dir: tempfile::TempDir,
    control: Control,
    hand: ManualClock,
}

fn open(dir: &Path, clock: Clock) -> Control {
    Control::open(dir, ArnScope::default())
        .unwrap()
        .with_clock(clock)
}

impl Jobs {
    fn new(things: &[&str]) -> Jobs {
        let dir = tempfile::tempdir().unwrap();
        let (clock, hand) = Clock::manual(UNIX_EPOCH + Duration::from_secs(START));
        let control = open(dir.path(), clock);
        for thing in things {
            control
                .create_thing(CreateThingRequest::named(thing))
                .unwrap();
        }
        Jobs {
            _dir: dir,
            control,
            hand,
        }
    }

    fn arn(&self, kind: &str, name: &str) -> String {
        self.control.arn(kind, name)
    }

    /// CreateJob from AWS's JSON, with `targets` as thing names.
    fn create(&self, id: &str, things: &[&str], more: Value) {
        let mut request = json!({
            "jobId": id,
            "targets": things.iter().map(|t| self.arn("thing", t)).collect::<Vec<_>>(),
            "document": r#"{"operation":"install"}"#,
        });
        for (k, v) in more.as_object().unwrap() {
            request[k] = v.clone();
        }
        let request: CreateJobRequest = serde_json::from_value(request).unwrap();
        self.control.create_job(request).unwrap();
    }

    fn minutes(&self, minutes: u64) {
        self.hand.advance(Duration::from_secs(minutes * 60));
        self.control.run_job_timers().unwrap();
    }

    fn start_next(&self, thing: &str, step: Option<i64>) -> Option<String> {
        let request = StartNextPendingJobExecutionRequest {
            step_timeout_in_minutes: step,
            ..StartNextPendingJobExecutionRequest::default()
        };
        self.control
            .start_next_pending_job_execution(thing, &request)
            .unwrap()
            .map(|e| e.job_id)
    }

    fn update(
        &self,
        thing: &str,
        job: &str,
        status: JobExecutionStatus,
        step: Option<i64>,
    ) -> Result<(), JobsDataError> {
        let mut request = UpdateJobExecutionRequest::new(status);
        request.step_timeout_in_minutes = step;
        request.include_job_execution_state = Some(true);
        self.control
            .update_job_execution(thing, job, &request)
            .map(|_| ())
    }

    /// `(execution number, status, retry attempt)` of every execution of
    /// `job` on `thing`.
    fn executions(&self, job: &str, thing: &str) -> Vec<(i64, ExecutionStatus, i64)> {
        self.control
            .store
            .executions_of_thing(thing)
            .unwrap()
            .into_iter()
            .filter(|e| e.job_id == job)
            .map(|e| (e.execution_number, e.status, e.retry_attempt))
            .collect()
    }

    fn status(&self, job: &str, thing: &str) -> ExecutionStatus {
        self.executions(job, thing).last().unwrap().1
    }

    fn job_status(&self, job: &str) -> JobStatus {
        self.control
            .describe_job(JobIdRequest {
                job_id: job.into(),
                before_substitution: None,
            })
            .unwrap()
            .job
            .status
    }
}

use ExecutionStatus::{Canceled, Failed, InProgress, Queued, Removed, TimedOut};
use JobExecutionStatus as S;

#[test]
fn the_step_timer_times_the_execution_out_and_the_retry_config_queues_another() {
    let jobs = Jobs::new(&["dev"]);
    jobs.create(
        "fw",
        &["dev"],
        json!({"jobExecutionsRetryConfig": {"criteriaList": [
            {"failureType": "TIMED_OUT", "numberOfRetries": 1}
        ]}}),
    );
    assert_eq!(jobs.start_next("dev", Some(5)).as_deref(), Some("fw"));
    jobs.minutes(4);
    assert_eq!(jobs.status("fw", "dev"), InProgress, "4 of 5 minutes");
    jobs.minutes(1);
    assert_eq!(
        jobs.executions("fw", "dev"),
        vec![(1, TimedOut, 0), (2, Queued, 1)],
        "timed out at 5 minutes, and retried once as execution 2"
    );
    assert_eq!(jobs.start_next("dev", Some(1)).as_deref(), Some("fw"));
    jobs.minutes(1);
    assert_eq!(
        jobs.executions("fw", "dev"),
        vec![(1, TimedOut, 0), (2, TimedOut, 1)],
        "the one retry is used up"
    );
    assert_eq!(jobs.job_status("fw"), JobStatus::Completed);
}

#[test]
fn the_in_progress_timer_runs_from_the_start_and_no_update_moves_it() {
    let jobs = Jobs::new(&["dev"]);
    jobs.create(
        "fw",
        &["dev"],
        json!({"timeoutConfig": {"inProgressTimeoutInMinutes": 10}}),
    );
    jobs.minutes(3);
    assert_eq!(jobs.status("fw", "dev"), Queued, "QUEUED has no timer");
    jobs.start_next("dev", None);
    jobs.minutes(6);
    let described = jobs
        .control
        .describe_job_execution(DescribeJobExecutionRequest {
            job_id: "fw".into(),
            thing_name: "dev".into(),
            execution_number: None,
        })
        .unwrap()
        .execution;
    assert_eq!(described.approximate_seconds_before_timed_out, Some(4 * 60));
    jobs.update("dev", "fw", S::InProgress, None).unwrap();
    jobs.minutes(3);
    assert_eq!(
        jobs.status("fw", "dev"),
        InProgress,
        "9 minutes in progress"
    );
    jobs.minutes(1);
    assert_eq!(jobs.status("fw", "dev"), TimedOut, "10 minutes in progress");
    let err = jobs.update("dev", "fw", S::Succeeded, None).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidStateTransition);
}

#[test]
fn minus_one_cancels_the_step_timer() {
    let jobs = Jobs::new(&["dev"]);
    jobs.create("fw", &["dev"], json!({}));
    jobs.start_next("dev", Some(2));
    jobs.minutes(1);
    jobs.update("dev", "fw", S::InProgress, Some(-1)).unwrap();
    jobs.minutes(60);
    assert_eq!(
        jobs.status("fw", "dev"),
        InProgress,
        "no timer runs any more"
    );
}

#[test]
fn the_step_timer_never_outlives_the_in_progress_timer() {
    let jobs = Jobs::new(&["dev"]);
    jobs.create(
        "fw",
        &["dev"],
        json!({"timeoutConfig": {"inProgressTimeoutInMinutes": 5}}),
    );
    jobs.start_next("dev", Some(60));
    jobs.minutes(4);
    jobs.update("dev", "fw", S::InProgress, Some(30)).unwrap();
    jobs.minutes(1);
    assert_eq!(
        jobs.status("fw", "dev"),
        TimedOut,
        "a 60 and then a 30 minute step both end at the in-progress timer's 5 minutes"
    );
}

#[test]
fn a_failure_is_retried_as_the_retry_config_says_and_rejected_never() {
    let jobs = Jobs::new(&["a", "b"]);
    jobs.create(
        "fw",
        &["a", "b"],
        json!({"jobExecutionsRetryConfig": {"criteriaList": [
            {"failureType": "FAILED", "numberOfRetries": 2}
        ]}}),
    );
    for attempt in 0..3 {
        jobs.start_next("a", None);
        jobs.update("a", "fw", S::Failed, None).unwrap();
        assert_eq!(jobs.executions("fw", "a").len(), (attempt + 2).min(3));
    }
    assert_eq!(
        jobs.executions("fw", "a"),
        vec![(1, Failed, 0), (2, Failed, 1), (3, Failed, 2)]
    );
    jobs.update("b", "fw", S::Rejected, None).unwrap();
    assert_eq!(jobs.executions("fw", "b").len(), 1, "REJECTED is final");
    assert_eq!(jobs.job_status("fw"), JobStatus::Completed);
}

#[test]
fn cancel_without_force_spares_in_progress_and_with_force_the_device_is_refused() {
    let jobs = Jobs::new(&["busy", "idle"]);
    jobs.create("fw", &["busy", "idle"], json!({}));
    jobs.start_next("busy", None);
    jobs.control
        .cancel_job(CancelJobRequest {
            job_id: "fw".into(),
            ..CancelJobRequest::default()
        })
        .unwrap();
    assert_eq!(jobs.status("fw", "idle"), Canceled);
    assert_eq!(jobs.status("fw", "busy"), InProgress, "not without force");
    jobs.update("busy", "fw", S::InProgress, None).unwrap();

    jobs.control
        .cancel_job(CancelJobRequest {
            job_id: "fw".into(),
            force: Some(true),
            ..CancelJobRequest::default()
        })
        .unwrap();
    assert_eq!(jobs.status("fw", "busy"), Canceled);
    let err = jobs.update("busy", "fw", S::Succeeded, None).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidStateTransition);
    let state = err.execution_state.expect("the error carries the state");
    assert_eq!(state.status, S::Canceled);
    assert_eq!(
        state.version_number, 4,
        "queued 1, started 2, updated 3, canceled 4"
    );
}

#[test]
fn a_canceled_execution_refuses_the_devices_next_update() {
    let jobs = Jobs::new(&["dev"]);
    jobs.create("fw", &["dev"], json!({}));
    jobs.start_next("dev", Some(5));
    jobs.control
        .cancel_job_execution(CancelJobExecutionRequest {
            job_id: "fw".into(),
            thing_name: "dev".into(),
            force: Some(true),
            ..CancelJobExecutionRequest::default()
        })
        .unwrap();
    let err = jobs.update("dev", "fw", S::InProgress, None).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidStateTransition);
    jobs.minutes(10);
    assert_eq!(jobs.status("fw", "dev"), Canceled, "the step timer stopped");
}

#[test]
fn a_continuous_job_reaches_a_thing_added_later_and_is_removed_when_it_leaves() {
    let jobs = Jobs::new(&["early", "late"]);
    jobs.control
        .create_thing_group(CreateThingGroupRequest {
            thing_group_name: "lamps".into(),
            ..CreateThingGroupRequest::default()
        })
        .unwrap();
    let membership = |thing: &str| ThingGroupMembershipRequest {
        thing_group_name: Some("lamps".into()),
        thing_name: Some(thing.into()),
        ..ThingGroupMembershipRequest::default()
    };
    jobs.control
        .add_thing_to_thing_group(membership("early"))
        .unwrap();
    let group = jobs.arn("thinggroup", "lamps");
    let request: CreateJobRequest = serde_json::from_value(json!({
        "jobId": "cfg", "targets": [group], "document": "{}",
        "targetSelection": "CONTINUOUS",
        "timeoutConfig": {"inProgressTimeoutInMinutes": 5},
    }))
    .unwrap();
    jobs.control.create_job(request).unwrap();
    assert!(jobs.executions("cfg", "late").is_empty());
    jobs.control
        .add_thing_to_thing_group(membership("late"))
        .unwrap();
    assert_eq!(jobs.executions("cfg", "late"), vec![(1, Queued, 0)]);
    assert_eq!(jobs.start_next("late", None).as_deref(), Some("cfg"));
    jobs.control
        .remove_thing_from_thing_group(membership("late"))
        .unwrap();
    assert_eq!(jobs.status("cfg", "late"), Removed);
    jobs.minutes(10);
    assert_eq!(jobs.status("cfg", "late"), Removed, "its timers stopped");
    let err = jobs.update("late", "cfg", S::Succeeded, None).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidStateTransition);
    jobs.control
        .add_thing_to_thing_group(membership("late"))
        .unwrap();
    assert_eq!(
        jobs.executions("cfg", "late"),
        vec![(1, Removed, 0), (2, Queued, 0)],
        "rejoining runs the job again as a new execution"
    );
}

#[test]
fn an_expected_version_that_is_not_the_executions_is_a_version_mismatch() {
    let jobs = Jobs::new(&["dev"]);
    jobs.create("fw", &["dev"], json!({}));
    jobs.start_next("dev", None);
    let mut request = UpdateJobExecutionRequest::new(S::Succeeded);
    request.expected_version = Some(1);
    let err = jobs
        .control
        .update_job_execution("dev", "fw", &request)
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::VersionMismatch);
    assert_eq!(err.execution_state.unwrap().version_number, 2);
    request.expected_version = Some(2);
    request.include_job_execution_state = Some(true);
    request.include_job_document = Some(true);
    let updated = jobs
        .control
        .update_job_execution("dev", "fw", &request)
        .unwrap();
    let state = updated.execution_state.unwrap();
    assert_eq!((state.status, state.version_number), (S::Succeeded, 3));
    assert_eq!(updated.job_document, Some(json!({"operation": "install"})));
}

#[test]
fn nothing_leaves_a_terminal_status_and_describing_one_is_terminal_state_reached() {
    let jobs = Jobs::new(&["dev"]);
    jobs.create("fw", &["dev"], json!({}));
    jobs.update("dev", "fw", S::Succeeded, None).unwrap();
    for status in [S::InProgress, S::Succeeded, S::Failed, S::Rejected] {
        let err = jobs.update("dev", "fw", status, None).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidStateTransition, "{status}");
        assert_eq!(err.execution_state.unwrap().status, S::Succeeded);
    }
    let err = jobs
        .control
        .describe_thing_job_execution("dev", "fw", None, true)
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::TerminalStateReached);
    let next = jobs
        .control
        .describe_thing_job_execution("dev", "$next", None, true)
        .unwrap();
    assert!(next.is_none(), "nothing is pending");
}

#[test]
fn a_device_cannot_set_the_statuses_the_service_sets() {
    let jobs = Jobs::new(&["dev"]);
    jobs.create("fw", &["dev"], json!({}));
    for status in [S::Queued, S::TimedOut, S::Removed, S::Canceled] {
        let err = jobs.update("dev", "fw", status, None).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest, "{status}");
    }
    let err = jobs.update("dev", "nope", S::Succeeded, None).unwrap_err();
    assert_eq!(err.code, ErrorCode::ResourceNotFound);
    let err = jobs.update("ghost", "fw", S::Succeeded, None).unwrap_err();
    assert_eq!(err.code, ErrorCode::ResourceNotFound);
}

#[test]
fn pending_executions_are_in_progress_first_then_queued_each_oldest_first() {
    let jobs = Jobs::new(&["dev"]);
    jobs.create("zeta", &["dev"], json!({}));
    jobs.create("alpha", &["dev"], json!({}));
    jobs.minutes(1);
    jobs.create("mid", &["dev"], json!({}));
    jobs.update("dev", "mid", S::InProgress, None).unwrap();
    let pending = jobs.control.get_pending_job_executions("dev").unwrap();
    let ids = |list: &[iotcore_model::jobs::JobExecutionSummary]| {
        list.iter().map(|s| s.job_id.clone()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&pending.in_progress_jobs), ["mid"]);
    assert_eq!(
        ids(&pending.queued_jobs),
        ["zeta", "alpha"],
        "in creation order"
    );
    let next = jobs
        .control
        .describe_thing_job_execution("dev", "$next", None, false)
        .unwrap()
        .unwrap();
    assert_eq!((next.job_id.as_str(), next.job_document), ("mid", None));
    assert_eq!(jobs.start_next("dev", None).as_deref(), Some("mid"));
}

#[test]
fn the_rollout_rate_queues_at_most_maximum_per_minute_things_each_minute() {
    let things = ["t1", "t2", "t3", "t4", "t5"];
    let jobs = Jobs::new(&things);
    jobs.create(
        "fw",
        &things,
        json!({"jobExecutionsRolloutConfig": {"maximumPerMinute": 2}}),
    );
    let reached = || {
        things
            .iter()
            .filter(|t| !jobs.executions("fw", t).is_empty())
            .count()
    };
    assert_eq!(reached(), 2);
    jobs.minutes(0);
    assert_eq!(reached(), 2, "still the first minute");
    jobs.minutes(1);
    assert_eq!(reached(), 4);
    for t in &things[..4] {
        jobs.update(t, "fw", S::Succeeded, None).unwrap();
    }
    assert_eq!(
        jobs.job_status("fw"),
        JobStatus::InProgress,
        "not complete while a thing waits for its rollout"
    );
    jobs.minutes(1);
    assert_eq!(reached(), 5);
    jobs.update("t5", "fw", S::Succeeded, None).unwrap();
    assert_eq!(jobs.job_status("fw"), JobStatus::Completed);
}

#[test]
fn the_abort_config_cancels_the_job_and_its_queued_executions() {
    let things = ["a", "b", "c", "d"];
    let jobs = Jobs::new(&things);
    jobs.create(
        "fw",
        &things,
        json!({"abortConfig": {"criteriaList": [{
            "failureType": "FAILED", "action": "CANCEL",
            "thresholdPercentage": 50, "minNumberOfExecutedThings": 2
        }]}}),
    );
    jobs.start_next("c", None);
    jobs.update("a", "fw", S::Failed, None).unwrap();
    assert_eq!(
        jobs.job_status("fw"),
        JobStatus::InProgress,
        "1 executed thing"
    );
    jobs.update("b", "fw", S::Failed, None).unwrap();
    assert_eq!(jobs.job_status("fw"), JobStatus::Canceled, "2 of 2 failed");
    assert_eq!(jobs.status("fw", "d"), Canceled, "QUEUED is canceled");
    assert_eq!(jobs.status("fw", "c"), InProgress, "IN_PROGRESS is not");
}

#[test]
fn timers_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, hand) = Clock::manual(UNIX_EPOCH + Duration::from_secs(START));
    {
        let control = open(dir.path(), clock.clone());
        control
            .create_thing(CreateThingRequest::named("dev"))
            .unwrap();
        let request: CreateJobRequest = serde_json::from_value(json!({
            "jobId": "fw", "targets": [control.arn("thing", "dev")], "document": "{}",
        }))
        .unwrap();
        control.create_job(request).unwrap();
        let request = StartNextPendingJobExecutionRequest {
            step_timeout_in_minutes: Some(3),
            ..StartNextPendingJobExecutionRequest::default()
        };
        control
            .start_next_pending_job_execution("dev", &request)
            .unwrap();
        assert_eq!(
            control.run_job_timers().unwrap(),
            Some(i64::try_from(START).unwrap() + 180),
            "the next deadline is the step timer's"
        );
    }
    hand.advance(Duration::from_secs(180));
    let restarted = open(dir.path(), clock);
    assert_eq!(restarted.run_job_timers().unwrap(), None);
    let execution = restarted
        .describe_job_execution(DescribeJobExecutionRequest {
            job_id: "fw".into(),
            thing_name: "dev".into(),
            execution_number: None,
        })
        .unwrap()
        .execution;
    assert_eq!(execution.status, TimedOut);
    assert_eq!(
        execution.version_number, 3,
        "queued 1, started 2, timed out 3"
    );
}

#[test]
fn version_and_execution_numbers_count_as_aws_counts_them() {
    let jobs = Jobs::new(&["dev"]);
    jobs.create("fw", &["dev"], json!({}));
    let execution = |jobs: &Jobs| {
        jobs.control
            .describe_thing_job_execution("dev", "fw", None, false)
            .unwrap()
            .unwrap()
    };
    let queued = execution(&jobs);
    assert_eq!((queued.execution_number, queued.version_number), (1, 1));
    assert_eq!(queued.started_at, None);
    jobs.minutes(1);
    jobs.start_next("dev", None);
    let started = execution(&jobs);
    assert_eq!(started.version_number, 2);
    assert_eq!(started.started_at, Some(i64::try_from(START).unwrap() + 60));
    jobs.update("dev", "fw", S::InProgress, None).unwrap();
    assert_eq!(execution(&jobs).version_number, 3);
}
