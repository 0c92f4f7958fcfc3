//! The job execution state machine: which moves a device may make, the two
//! timers, retries, abort criteria and the rollout rate. Plain functions on
//! records and a time in unix seconds; the callers hold the jobs lock and
//! write what changed (docs/aws-iot-core-behaviour.md §5.1).
//!
//! * A device moves QUEUED → IN_PROGRESS, IN_PROGRESS → IN_PROGRESS, and
//!   QUEUED or IN_PROGRESS → SUCCEEDED, FAILED or REJECTED. The service moves
//!   executions to TIMED_OUT, REMOVED and CANCELED. Nothing leaves a terminal
//!   status. Every change adds one to `versionNumber`.
//! * The in-progress timer (the job's `timeoutConfig`) starts when the
//!   execution goes IN_PROGRESS and is never changed after. The step timer
//!   (`stepTimeoutInMinutes` of StartNext or of an IN_PROGRESS update) is
//!   replaced by each new value, cancelled by `-1`, and never runs past the
//!   in-progress timer. When either runs out the execution is TIMED_OUT.
//! * A FAILED or TIMED_OUT execution whose job's `jobExecutionsRetryConfig`
//!   allows another attempt is followed by a new QUEUED execution (number one
//!   more, `retryAttempt` one more).
//! * A job's `abortConfig` cancels it (its QUEUED executions and the things
//!   its rollout has not reached yet) once enough of its things failed.
//! * A job's `maximumPerMinute` queues at most that many executions in each
//!   minute since it was created.

use std::collections::BTreeMap;

use iotcore_model::jobs::{CANCEL_STEP_TIMER, ErrorCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::control::{
    AbortConfig, JobExecutionsRetryConfig, JobExecutionsRolloutConfig, TimeoutConfig,
};
use crate::store::{ExecutionRecord, ExecutionStatus, JobRecord};

/// Seconds in a minute: timers are given in minutes.
const MINUTE: i64 = 60;

/// A stored configuration, read back; one that no longer parses is ignored
/// (with a warning), as if it were not set.
fn config<T: DeserializeOwned>(job: &JobRecord, value: &Option<Value>, name: &str) -> Option<T> {
    let value = value.as_ref()?;
    match serde_json::from_value(value.clone()) {
        Ok(config) => Some(config),
        Err(e) => {
            tracing::warn!(job_id = job.job_id, "the stored {name} is ignored: {e}");
            None
        }
    }
}

/// The job's in-progress timeout, in seconds.
pub(crate) fn in_progress_timeout(job: &JobRecord) -> Option<i64> {
    let timeout: TimeoutConfig = config(job, &job.configs.timeout, "timeoutConfig")?;
    timeout
        .in_progress_timeout_in_minutes
        .map(|m| m.saturating_mul(MINUTE))
}

/// Why a device's move is refused: AWS's code and a message.
pub(crate) type Refusal = (ErrorCode, String);

/// Whether a device may move an execution from `from` to `to`.
pub(crate) fn check_device_move(from: ExecutionStatus, to: ExecutionStatus) -> Result<(), Refusal> {
    use ExecutionStatus::{Failed, InProgress, Queued, Rejected, Succeeded};
    if !matches!(to, InProgress | Succeeded | Failed | Rejected) {
        return Err((
            ErrorCode::InvalidRequest,
            format!("a device may set IN_PROGRESS, SUCCEEDED, FAILED or REJECTED, not {to}"),
        ));
    }
    match from {
        Queued | InProgress => Ok(()),
        _ => Err((
            ErrorCode::InvalidStateTransition,
            format!("the execution is {from}, a terminal status: it cannot become {to}"),
        )),
    }
}

/// Applies a device's step timeout: `None` leaves the step timer as it is,
/// [`CANCEL_STEP_TIMER`] cancels it, a number of minutes replaces it (never
/// past the in-progress timer).
pub(crate) fn set_step_timer(e: &mut ExecutionRecord, minutes: Option<i64>, now: i64) {
    match minutes {
        None => {}
        Some(CANCEL_STEP_TIMER) => e.step_deadline = None,
        Some(minutes) => {
            let deadline = now.saturating_add(minutes.saturating_mul(MINUTE));
            e.step_deadline = Some(match e.in_progress_deadline {
                Some(limit) => deadline.min(limit),
                None => deadline,
            });
        }
    }
}

/// Moves `e` to `status` at `now` as a device does: one more version,
/// `statusDetails` replaced when given; IN_PROGRESS from QUEUED starts the
/// in-progress timer and `startedAt`; IN_PROGRESS sets the step timer; a
/// terminal status stops both timers.
pub(crate) fn device_move(
    e: &mut ExecutionRecord,
    job: &JobRecord,
    status: ExecutionStatus,
    details: Option<BTreeMap<String, String>>,
    step_timeout_minutes: Option<i64>,
    now: i64,
) {
    if e.status == ExecutionStatus::Queued && status == ExecutionStatus::InProgress {
        e.started_at = Some(now);
        e.in_progress_deadline = in_progress_timeout(job).map(|t| now.saturating_add(t));
    }
    e.status = status;
    if let Some(details) = details {
        e.status_details = details;
    }
    if status == ExecutionStatus::InProgress {
        set_step_timer(e, step_timeout_minutes, now);
    } else {
        stop_timers(e);
    }
    e.version_number += 1;
    e.last_updated_at = now;
}

/// Moves `e` to a status the service sets (TIMED_OUT, REMOVED, CANCELED).
pub(crate) fn service_move(e: &mut ExecutionRecord, status: ExecutionStatus, now: i64) {
    e.status = status;
    stop_timers(e);
    e.version_number += 1;
    e.last_updated_at = now;
}

fn stop_timers(e: &mut ExecutionRecord) {
    e.in_progress_deadline = None;
    e.step_deadline = None;
}

/// Whether `e`'s timers have run out at `now`.
pub(crate) fn is_due(e: &ExecutionRecord, now: i64) -> bool {
    e.status == ExecutionStatus::InProgress && e.deadline().is_some_and(|d| d <= now)
}

/// The execution that retries `e` (just FAILED or TIMED_OUT), if the job's
/// retry configuration allows another attempt: QUEUED, numbered `next_number`,
/// one more `retryAttempt`.
pub(crate) fn retry_of(
    job: &JobRecord,
    e: &ExecutionRecord,
    next_number: i64,
    now: i64,
) -> Option<ExecutionRecord> {
    let retry: JobExecutionsRetryConfig =
        config(job, &job.configs.retry, "jobExecutionsRetryConfig")?;
    let kind = match e.status {
        ExecutionStatus::Failed => "FAILED",
        ExecutionStatus::TimedOut => "TIMED_OUT",
        _ => return None,
    };
    let allowed = retry
        .criteria_list
        .iter()
        .find(|c| c.failure_type == kind)
        .or_else(|| retry.criteria_list.iter().find(|c| c.failure_type == "ALL"))
        .map_or(0, |c| c.number_of_retries);
    if e.retry_attempt >= allowed {
        return None;
    }
    let mut next = ExecutionRecord::queued(&job.job_id, &e.thing_name, next_number, now);
    next.retry_attempt = e.retry_attempt + 1;
    Some(next)
}

/// The abort criterion the job's executions meet, if one does: the
/// `failureType` percentage of the things whose latest execution finished
/// (SUCCEEDED, FAILED, REJECTED or TIMED_OUT), once at least
/// `minNumberOfExecutedThings` finished.
pub(crate) fn abort_reason(job: &JobRecord, executions: &[ExecutionRecord]) -> Option<String> {
    let abort: AbortConfig = config(job, &job.configs.abort, "abortConfig")?;
    let mut latest: BTreeMap<&str, &ExecutionRecord> = BTreeMap::new();
    for e in executions {
        let entry = latest.entry(e.thing_name.as_str()).or_insert(e);
        if e.execution_number > entry.execution_number {
            *entry = e;
        }
    }
    use ExecutionStatus::{Failed, Rejected, Succeeded, TimedOut};
    let executed: Vec<ExecutionStatus> = latest
        .values()
        .map(|e| e.status)
        .filter(|s| matches!(s, Succeeded | Failed | Rejected | TimedOut))
        .collect();
    let total = executed.len();
    abort.criteria_list.iter().find_map(|c| {
        let failed = executed
            .iter()
            .filter(|s| match c.failure_type.as_str() {
                "ALL" => **s != Succeeded,
                kind => s.as_str() == kind,
            })
            .count();
        let min = usize::try_from(c.min_number_of_executed_things).unwrap_or(usize::MAX);
        // Counts of things: far below 2^52, exact in an f64.
        #[allow(clippy::cast_precision_loss)]
        let percent = if total == 0 {
            0.0
        } else {
            failed as f64 * 100.0 / total as f64
        };
        (total >= min && total > 0 && percent >= c.threshold_percentage).then(|| {
            format!(
                "abortConfig: {failed} of {total} executed things {} ({percent:.2}% ≥ {}%)",
                c.failure_type, c.threshold_percentage
            )
        })
    })
}

/// How many things a job with a rollout rate may have reached by `now`, and
/// when that number grows next; `None` for a job without a rate.
pub(crate) fn rollout_allowance(job: &JobRecord, now: i64) -> Option<(usize, i64)> {
    let rollout: JobExecutionsRolloutConfig =
        config(job, &job.configs.rollout, "jobExecutionsRolloutConfig")?;
    let per_minute = rollout.maximum_per_minute.or_else(|| {
        rollout
            .exponential_rate
            .as_ref()
            .map(|r| r.base_rate_per_minute)
    })?;
    let minutes = (now - job.created_at).max(0) / MINUTE;
    let allowed = per_minute.saturating_mul(minutes + 1);
    let next = job.created_at + (minutes + 1) * MINUTE;
    Some((usize::try_from(allowed).unwrap_or(usize::MAX), next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{JobConfigs, JobStatus, TargetSelection};
    use serde_json::json;

    fn job(configs: JobConfigs) -> JobRecord {
        JobRecord {
            job_id: "j".into(),
            document: "{}".into(),
            document_source: None,
            description: None,
            targets: vec![],
            target_selection: TargetSelection::Snapshot,
            status: JobStatus::InProgress,
            force_canceled: false,
            reason_code: None,
            comment: None,
            namespace_id: None,
            configs,
            created_at: 1_000,
            last_updated_at: 1_000,
            completed_at: None,
        }
    }

    fn timeout(minutes: i64) -> JobConfigs {
        JobConfigs {
            timeout: Some(json!({ "inProgressTimeoutInMinutes": minutes })),
            ..JobConfigs::default()
        }
    }

    #[test]
    fn starting_sets_the_in_progress_timer_and_the_step_timer_never_outlives_it() {
        let job = job(timeout(10));
        let mut e = ExecutionRecord::queued("j", "t", 1, 1_000);
        device_move(
            &mut e,
            &job,
            ExecutionStatus::InProgress,
            None,
            Some(60),
            1_000,
        );
        assert_eq!(e.started_at, Some(1_000));
        assert_eq!(e.in_progress_deadline, Some(1_600));
        assert_eq!(
            e.step_deadline,
            Some(1_600),
            "capped at the in-progress timer"
        );
        assert_eq!(e.version_number, 2);
        device_move(
            &mut e,
            &job,
            ExecutionStatus::InProgress,
            None,
            Some(2),
            1_100,
        );
        assert_eq!(
            e.step_deadline,
            Some(1_220),
            "a new step timeout replaces the old"
        );
        assert_eq!(
            e.in_progress_deadline,
            Some(1_600),
            "the in-progress timer never moves"
        );
        device_move(&mut e, &job, ExecutionStatus::InProgress, None, None, 1_150);
        assert_eq!(e.step_deadline, Some(1_220), "no step timeout: unchanged");
        device_move(
            &mut e,
            &job,
            ExecutionStatus::InProgress,
            None,
            Some(-1),
            1_200,
        );
        assert_eq!(e.step_deadline, None, "-1 cancels the step timer");
        assert_eq!(e.deadline(), Some(1_600));
        device_move(&mut e, &job, ExecutionStatus::Succeeded, None, None, 1_300);
        assert_eq!(e.deadline(), None, "a terminal status stops the timers");
        assert_eq!(e.version_number, 6);
    }

    #[test]
    fn devices_cannot_leave_a_terminal_status_nor_set_service_statuses() {
        use ExecutionStatus::*;
        assert!(check_device_move(Queued, InProgress).is_ok());
        assert!(check_device_move(InProgress, InProgress).is_ok());
        assert!(check_device_move(Queued, Succeeded).is_ok());
        for terminal in [Succeeded, Failed, Rejected, TimedOut, Removed, Canceled] {
            let (code, _) = check_device_move(terminal, InProgress).unwrap_err();
            assert_eq!(code, ErrorCode::InvalidStateTransition);
        }
        for service in [Queued, TimedOut, Removed, Canceled] {
            let (code, _) = check_device_move(InProgress, service).unwrap_err();
            assert_eq!(code, ErrorCode::InvalidRequest);
        }
    }

    #[test]
    fn retries_follow_the_criterion_of_the_failure_type_then_all() {
        let job = job(JobConfigs {
            retry: Some(json!({ "criteriaList": [
                { "failureType": "FAILED", "numberOfRetries": 1 },
                { "failureType": "ALL", "numberOfRetries": 3 },
            ]})),
            ..JobConfigs::default()
        });
        let mut failed = ExecutionRecord::queued("j", "t", 1, 0);
        failed.status = ExecutionStatus::Failed;
        let retry = retry_of(&job, &failed, 2, 50).unwrap();
        assert_eq!(
            (retry.execution_number, retry.retry_attempt, retry.status),
            (2, 1, ExecutionStatus::Queued)
        );
        failed.retry_attempt = 1;
        assert!(retry_of(&job, &failed, 3, 50).is_none(), "FAILED: 1 retry");
        failed.status = ExecutionStatus::TimedOut;
        assert!(
            retry_of(&job, &failed, 3, 50).is_some(),
            "TIMED_OUT: ALL's 3"
        );
        failed.status = ExecutionStatus::Rejected;
        assert!(
            retry_of(&job, &failed, 3, 50).is_none(),
            "REJECTED is never retried"
        );
    }

    #[test]
    fn abort_counts_the_latest_execution_of_each_thing_once_enough_finished() {
        let job = job(JobConfigs {
            abort: Some(json!({ "criteriaList": [{
                "failureType": "FAILED", "action": "CANCEL",
                "thresholdPercentage": 50, "minNumberOfExecutedThings": 2,
            }]})),
            ..JobConfigs::default()
        });
        let with = |thing: &str, n: i64, status| {
            let mut e = ExecutionRecord::queued("j", thing, n, 0);
            e.status = status;
            e
        };
        let one_failed = [with("a", 1, ExecutionStatus::Failed)];
        assert!(
            abort_reason(&job, &one_failed).is_none(),
            "one executed thing is not enough"
        );
        let retried = [
            with("a", 1, ExecutionStatus::Failed),
            with("a", 2, ExecutionStatus::Succeeded),
            with("b", 1, ExecutionStatus::Succeeded),
        ];
        assert!(
            abort_reason(&job, &retried).is_none(),
            "a's retry succeeded"
        );
        let half = [
            with("a", 1, ExecutionStatus::Failed),
            with("b", 1, ExecutionStatus::Succeeded),
            with("c", 1, ExecutionStatus::Queued),
        ];
        assert!(
            abort_reason(&job, &half).is_some(),
            "1 of 2 executed failed: 50%"
        );
    }

    #[test]
    fn the_rollout_rate_grows_the_allowance_each_minute_since_creation() {
        let job = job(JobConfigs {
            rollout: Some(json!({ "maximumPerMinute": 2 })),
            ..JobConfigs::default()
        });
        assert_eq!(rollout_allowance(&job, 1_000), Some((2, 1_060)));
        assert_eq!(rollout_allowance(&job, 1_059), Some((2, 1_060)));
        assert_eq!(rollout_allowance(&job, 1_060), Some((4, 1_120)));
        assert_eq!(
            rollout_allowance(&self::job(JobConfigs::default()), 1_060),
            None
        );
    }
}
