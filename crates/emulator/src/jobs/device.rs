//! The device side of AWS IoT Jobs as operations on the control layer:
//! GetPendingJobExecutions, StartNextPendingJobExecution,
//! DescribeJobExecution (a job id or `$next`) and UpdateJobExecution, with
//! AWS's rules and error codes (docs/aws-iot-core-behaviour.md §5.1). The
//! MQTT service ([`super::JobsService`]) and the HTTPS `iot-jobs-data` API
//! both call these; what they add is the wire.
//!
//! Every change is made under the jobs lock and written in one transaction,
//! then announced like any registry change, so notifications and events
//! follow from it (see [`super::notify`]).

use std::collections::BTreeMap;

use iotcore_model::jobs::{
    ErrorCode, JobExecution, JobExecutionState, JobExecutionStatus, JobExecutionSummary,
    NEXT_JOB_ID, StartNextPendingJobExecutionRequest, UpdateJobExecutionRequest,
};
use serde_json::Value;

use super::state::{self, check_device_move, device_move};
use crate::control::{Control, ControlError};
use crate::store::{
    ExecutionRecord, ExecutionStatus, JobRecord, JobStatus, StoreError, TargetSelection,
};

/// A device's Jobs request refused: AWS's error code, why, and for
/// `InvalidStateTransition` and `VersionMismatch` the execution's state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct JobsDataError {
    /// AWS's code.
    pub code: ErrorCode,
    /// What went wrong.
    pub message: String,
    /// The execution's state, where AWS sends it.
    pub execution_state: Option<JobExecutionState>,
}

impl JobsDataError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        JobsDataError {
            code,
            message: message.into(),
            execution_state: None,
        }
    }

    fn with_state(mut self, e: &ExecutionRecord) -> Self {
        self.execution_state = Some(execution_state(e));
        self
    }
}

impl From<ControlError> for JobsDataError {
    fn from(e: ControlError) -> Self {
        use crate::control::ErrorCode as Control;
        let code = match e.code() {
            Control::ResourceNotFound => ErrorCode::ResourceNotFound,
            Control::InvalidRequest => ErrorCode::InvalidRequest,
            _ => {
                tracing::error!("jobs device API failure: {e}");
                ErrorCode::InternalError
            }
        };
        JobsDataError::new(code, e.to_string())
    }
}

impl From<StoreError> for JobsDataError {
    fn from(e: StoreError) -> Self {
        ControlError::from(e).into()
    }
}

/// GetPendingJobExecutions' answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingJobExecutions {
    /// The IN_PROGRESS executions, oldest first.
    pub in_progress_jobs: Vec<JobExecutionSummary>,
    /// The QUEUED executions, oldest first.
    pub queued_jobs: Vec<JobExecutionSummary>,
}

/// UpdateJobExecution's answer: what the request asked to include.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdatedJobExecution {
    /// The execution's new state, if `includeJobExecutionState`.
    pub execution_state: Option<JobExecutionState>,
    /// The job document, if `includeJobDocument`.
    pub job_document: Option<Value>,
}

/// The model's status of a stored execution.
pub(crate) fn model_status(status: ExecutionStatus) -> JobExecutionStatus {
    match status {
        ExecutionStatus::Queued => JobExecutionStatus::Queued,
        ExecutionStatus::InProgress => JobExecutionStatus::InProgress,
        ExecutionStatus::Succeeded => JobExecutionStatus::Succeeded,
        ExecutionStatus::Failed => JobExecutionStatus::Failed,
        ExecutionStatus::TimedOut => JobExecutionStatus::TimedOut,
        ExecutionStatus::Rejected => JobExecutionStatus::Rejected,
        ExecutionStatus::Removed => JobExecutionStatus::Removed,
        ExecutionStatus::Canceled => JobExecutionStatus::Canceled,
    }
}

fn store_status(status: JobExecutionStatus) -> ExecutionStatus {
    match status {
        JobExecutionStatus::Queued => ExecutionStatus::Queued,
        JobExecutionStatus::InProgress => ExecutionStatus::InProgress,
        JobExecutionStatus::Succeeded => ExecutionStatus::Succeeded,
        JobExecutionStatus::Failed => ExecutionStatus::Failed,
        JobExecutionStatus::TimedOut => ExecutionStatus::TimedOut,
        JobExecutionStatus::Rejected => ExecutionStatus::Rejected,
        JobExecutionStatus::Removed => ExecutionStatus::Removed,
        JobExecutionStatus::Canceled => ExecutionStatus::Canceled,
    }
}

fn details(e: &ExecutionRecord) -> Option<BTreeMap<String, String>> {
    (!e.status_details.is_empty()).then(|| e.status_details.clone())
}

/// AWS's `JobExecutionState` of `e`.
pub(crate) fn execution_state(e: &ExecutionRecord) -> JobExecutionState {
    JobExecutionState {
        status: model_status(e.status),
        status_details: details(e),
        version_number: e.version_number,
    }
}

/// AWS's `JobExecutionSummary` of `e`.
pub(crate) fn summary(e: &ExecutionRecord) -> JobExecutionSummary {
    JobExecutionSummary {
        job_id: e.job_id.clone(),
        queued_at: e.queued_at,
        started_at: e.started_at,
        last_updated_at: e.last_updated_at,
        version_number: e.version_number,
        execution_number: e.execution_number,
    }
}

/// The job document as JSON (CreateJob checked that it is).
pub(crate) fn document(job: &JobRecord) -> Value {
    serde_json::from_str(&job.document).unwrap_or(Value::String(job.document.clone()))
}

/// AWS's `JobExecution` of `e`, with the job document if given.
pub(crate) fn execution(e: &ExecutionRecord, job_document: Option<Value>) -> JobExecution {
    JobExecution {
        job_id: e.job_id.clone(),
        thing_name: Some(e.thing_name.clone()),
        job_document,
        status: model_status(e.status),
        status_details: details(e),
        queued_at: e.queued_at,
        started_at: e.started_at,
        last_updated_at: e.last_updated_at,
        version_number: e.version_number,
        execution_number: e.execution_number,
    }
}

/// The pending (IN_PROGRESS, then QUEUED) executions among `executions`, each
/// kind in the order they were queued: AWS's order for GetPending, `$next`
/// and the notifications.
pub(crate) fn pending_in_order(executions: Vec<ExecutionRecord>) -> Vec<ExecutionRecord> {
    let mut pending: Vec<ExecutionRecord> = executions
        .into_iter()
        .filter(|e| !e.status.is_terminal())
        .collect();
    pending.sort_by(|a, b| {
        (b.status == ExecutionStatus::InProgress)
            .cmp(&(a.status == ExecutionStatus::InProgress))
            .then(a.queued_at.cmp(&b.queued_at))
            .then(a.queue_seq.cmp(&b.queue_seq))
            .then(a.job_id.cmp(&b.job_id))
    });
    pending
}

impl Control {
    fn require_thing_for_jobs(&self, thing_name: &str) -> Result<(), JobsDataError> {
        match self.store.thing(thing_name)? {
            Some(_) => Ok(()),
            None => Err(JobsDataError::new(
                ErrorCode::ResourceNotFound,
                format!("thing {thing_name:?} does not exist"),
            )),
        }
    }

    /// The thing's pending executions, IN_PROGRESS first.
    fn pending_of(&self, thing_name: &str) -> Result<Vec<ExecutionRecord>, JobsDataError> {
        Ok(pending_in_order(
            self.store.executions_of_thing(thing_name)?,
        ))
    }

    /// GetPendingJobExecutions: the thing's IN_PROGRESS and QUEUED executions.
    pub fn get_pending_job_executions(
        &self,
        thing_name: &str,
    ) -> Result<PendingJobExecutions, JobsDataError> {
        self.require_thing_for_jobs(thing_name)?;
        let (in_progress, queued): (Vec<_>, Vec<_>) = self
            .pending_of(thing_name)?
            .into_iter()
            .partition(|e| e.status == ExecutionStatus::InProgress);
        Ok(PendingJobExecutions {
            in_progress_jobs: in_progress.iter().map(summary).collect(),
            queued_jobs: queued.iter().map(summary).collect(),
        })
    }

    /// StartNextPendingJobExecution: the thing's next pending execution. A
    /// QUEUED one goes IN_PROGRESS (with the status details and step timeout
    /// given); an IN_PROGRESS one is returned as it is. `None` when nothing is
    /// pending.
    pub fn start_next_pending_job_execution(
        &self,
        thing_name: &str,
        request: &StartNextPendingJobExecutionRequest,
    ) -> Result<Option<JobExecution>, JobsDataError> {
        if let Some(details) = &request.status_details {
            crate::control::validate_details(details)?;
        }
        let _guard = self.lock_jobs();
        self.require_thing_for_jobs(thing_name)?;
        let Some(mut next) = self.pending_of(thing_name)?.into_iter().next() else {
            return Ok(None);
        };
        let job = self.require_job(&next.job_id)?;
        if next.status == ExecutionStatus::Queued {
            device_move(
                &mut next,
                &job,
                ExecutionStatus::InProgress,
                request.status_details.clone(),
                request.step_timeout_in_minutes,
                self.now(),
            );
            self.store.save_job(None, std::slice::from_ref(&next))?;
            self.changed();
        }
        Ok(Some(execution(&next, Some(document(&job)))))
    }

    /// DescribeJobExecution as a device asks it: `job_id` or `$next` (the
    /// next pending execution, `None` when there is none); execution
    /// `execution_number`, or the latest. A specific execution in a terminal
    /// status is refused with `TerminalStateReached`.
    pub fn describe_thing_job_execution(
        &self,
        thing_name: &str,
        job_id: &str,
        execution_number: Option<i64>,
        include_job_document: bool,
    ) -> Result<Option<JobExecution>, JobsDataError> {
        self.require_thing_for_jobs(thing_name)?;
        let found = if job_id == NEXT_JOB_ID {
            match self.pending_of(thing_name)?.into_iter().next() {
                Some(e) => e,
                None => return Ok(None),
            }
        } else {
            let e = self.find_execution(job_id, thing_name, execution_number)?;
            if e.status.is_terminal() {
                return Err(JobsDataError::new(
                    ErrorCode::TerminalStateReached,
                    format!(
                        "the execution of job {job_id:?} on thing {thing_name:?} is {}, a \
                         terminal status",
                        e.status
                    ),
                ));
            }
            e
        };
        let document = if include_job_document {
            Some(document(&self.require_job(&found.job_id)?))
        } else {
            None
        };
        Ok(Some(execution(&found, document)))
    }

    /// UpdateJobExecution: the device moves its execution of `job_id` to
    /// the status asked, if its version is `expectedVersion` (when given)
    /// and the move is one a device may make. A FAILED or TIMED_OUT
    /// execution may be retried, a finished one may abort its job or
    /// complete it.
    pub fn update_job_execution(
        &self,
        thing_name: &str,
        job_id: &str,
        request: &UpdateJobExecutionRequest,
    ) -> Result<UpdatedJobExecution, JobsDataError> {
        if let Some(details) = &request.status_details {
            crate::control::validate_details(details)?;
        }
        let _guard = self.lock_jobs();
        self.require_thing_for_jobs(thing_name)?;
        let mut e = self.find_execution(job_id, thing_name, request.execution_number)?;
        if let Some(expected) = request.expected_version {
            if expected != e.version_number {
                return Err(JobsDataError::new(
                    ErrorCode::VersionMismatch,
                    format!(
                        "the execution is at version {}, not the expected {expected}",
                        e.version_number
                    ),
                )
                .with_state(&e));
            }
        }
        let status = store_status(request.status);
        check_device_move(e.status, status)
            .map_err(|(code, message)| JobsDataError::new(code, message).with_state(&e))?;
        let mut job = self.require_job(job_id)?;
        let now = self.now();
        device_move(
            &mut e,
            &job,
            status,
            request.status_details.clone(),
            request.step_timeout_in_minutes,
            now,
        );
        let mut changed = vec![e.clone()];
        let job_changed = self.conclude(&mut job, &mut changed, now)?;
        self.store.save_job(job_changed.then_some(&job), &changed)?;
        self.changed();
        Ok(UpdatedJobExecution {
            execution_state: (request.include_job_execution_state == Some(true))
                .then(|| execution_state(&e)),
            job_document: (request.include_job_document == Some(true)).then(|| document(&job)),
        })
    }

    /// What follows executions of `job` that changed (`changed`, some of
    /// them maybe terminal now): retries are queued, the abort criteria are
    /// checked (an aborted job is canceled with its QUEUED executions and
    /// the rest of its rollout), and a SNAPSHOT job whose executions are all
    /// terminal completes. New and changed executions are added to
    /// `changed`; returns whether `job` changed. The caller holds the jobs
    /// lock and writes both.
    pub(crate) fn conclude(
        &self,
        job: &mut JobRecord,
        changed: &mut Vec<ExecutionRecord>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut all = self.store.executions_of_job(&job.job_id)?;
        let overlay = |all: &mut Vec<ExecutionRecord>, e: &ExecutionRecord| match all
            .iter_mut()
            .find(|o| o.thing_name == e.thing_name && o.execution_number == e.execution_number)
        {
            Some(slot) => *slot = e.clone(),
            None => all.push(e.clone()),
        };
        for e in changed.iter() {
            overlay(&mut all, e);
        }
        let mut retries = Vec::new();
        if job.status == JobStatus::InProgress {
            for e in changed.iter() {
                let next_number = all
                    .iter()
                    .filter(|o| o.thing_name == e.thing_name)
                    .map(|o| o.execution_number)
                    .max()
                    .unwrap_or(0)
                    + 1;
                if let Some(retry) = state::retry_of(job, e, next_number, now) {
                    overlay(&mut all, &retry);
                    retries.push(retry);
                }
            }
        }
        changed.extend(retries);
        let mut job_changed = false;
        if job.status == JobStatus::InProgress {
            if let Some(reason) = state::abort_reason(job, &all) {
                tracing::info!(job_id = job.job_id, "job aborted: {reason}");
                job.status = JobStatus::Canceled;
                job.comment = Some(format!("Job aborted: {reason}"));
                job.completed_at = Some(now);
                job.last_updated_at = now;
                job_changed = true;
                self.store.set_rollout_pending(&job.job_id, &[])?;
                for e in all
                    .iter_mut()
                    .filter(|e| e.status == ExecutionStatus::Queued)
                {
                    state::service_move(e, ExecutionStatus::Canceled, now);
                    changed.retain(|c| {
                        c.thing_name != e.thing_name || c.execution_number != e.execution_number
                    });
                    changed.push(e.clone());
                }
            }
        }
        let pending_rollout = !self.store.rollout_pending(&job.job_id)?.is_empty();
        if job.target_selection == TargetSelection::Snapshot && !pending_rollout {
            job_changed |= crate::control::settle(job, &all, now);
        }
        Ok(job_changed)
    }
}
