//! Job executions: DescribeJobExecution, ListJobExecutionsForJob,
//! ListJobExecutionsForThing, CancelJobExecution, DeleteJobExecution; and
//! what thing-group membership changes do to CONTINUOUS jobs.
//!
//! A thing that becomes a target of a CONTINUOUS job (added to one of its
//! groups, or to a descendant of one) gets a QUEUED execution, numbered one
//! more than its last, unless an execution of the job is still open on it. A
//! thing that is no longer a target (removed from the group) has its open
//! (QUEUED or IN_PROGRESS) executions moved to REMOVED; terminal ones stay.
//!
//! Every change of an execution's status adds one to its `versionNumber`
//! (AWS's docs confirm this for device updates; for service-side changes it
//! is the emulator's choice). `approximateSecondsBeforeTimedOut` is the time
//! left on the first of an IN_PROGRESS execution's timers.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::jobs::{Target, keyed};
use super::page::paginate;
use super::{Control, ControlError, ErrorCode, lenient};
use crate::jobs::state::service_move;
use crate::store::{ExecutionRecord, ExecutionStatus, JobRecord, JobStatus, TargetSelection};

/// AWS's `JobExecutionStatusDetails`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobExecutionStatusDetails {
    /// Name/value pairs.
    pub details_map: BTreeMap<String, String>,
}

/// AWS's `JobExecution`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobExecution {
    /// The job id.
    pub job_id: String,
    /// Its status.
    pub status: ExecutionStatus,
    /// Whether it was canceled with `force` while IN_PROGRESS.
    pub force_canceled: bool,
    /// The details reported.
    pub status_details: JobExecutionStatusDetails,
    /// The thing's ARN.
    pub thing_arn: String,
    /// When it was queued, epoch seconds.
    pub queued_at: i64,
    /// When it went IN_PROGRESS, epoch seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    /// When it last changed, epoch seconds.
    pub last_updated_at: i64,
    /// Which execution of the job on the thing, from 1.
    pub execution_number: i64,
    /// 1 when queued, one more at each change.
    pub version_number: i64,
    /// Seconds until a timer moves an IN_PROGRESS execution to TIMED_OUT, if
    /// one runs (absent once terminal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approximate_seconds_before_timed_out: Option<i64>,
}

/// AWS's `JobExecutionSummary`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobExecutionSummary {
    /// Its status.
    pub status: ExecutionStatus,
    /// When it was queued, epoch seconds.
    pub queued_at: i64,
    /// When it went IN_PROGRESS, epoch seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    /// When it last changed, epoch seconds.
    pub last_updated_at: i64,
    /// Which execution of the job on the thing.
    pub execution_number: i64,
    /// How many times it was retried.
    pub retry_attempt: i64,
}

impl From<&ExecutionRecord> for JobExecutionSummary {
    fn from(e: &ExecutionRecord) -> Self {
        JobExecutionSummary {
            status: e.status,
            queued_at: e.queued_at,
            started_at: e.started_at,
            last_updated_at: e.last_updated_at,
            execution_number: e.execution_number,
            retry_attempt: e.retry_attempt,
        }
    }
}

/// DescribeJobExecution's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DescribeJobExecutionRequest {
    /// The job id.
    pub job_id: String,
    /// The thing name.
    pub thing_name: String,
    /// Which execution; the latest when absent.
    #[serde(default, deserialize_with = "lenient::int")]
    pub execution_number: Option<i64>,
}

/// DescribeJobExecution's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeJobExecutionResponse {
    /// The execution.
    pub execution: JobExecution,
}

/// ListJobExecutionsForJob's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListJobExecutionsForJobRequest {
    /// The job id.
    pub job_id: String,
    /// Only executions in this status.
    pub status: Option<ExecutionStatus>,
    /// At most this many (1 to 250).
    #[serde(default, deserialize_with = "lenient::int")]
    pub max_results: Option<i64>,
    /// The token of the page to return.
    pub next_token: Option<String>,
}

/// An execution in ListJobExecutionsForJob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobExecutionSummaryForJob {
    /// The thing's ARN.
    pub thing_arn: String,
    /// The execution.
    pub job_execution_summary: JobExecutionSummary,
}

/// ListJobExecutionsForJob's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListJobExecutionsForJobResponse {
    /// The executions of this page, by thing name and execution number.
    pub execution_summaries: Vec<JobExecutionSummaryForJob>,
    /// The token of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// ListJobExecutionsForThing's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListJobExecutionsForThingRequest {
    /// The thing name.
    pub thing_name: String,
    /// Only executions in this status.
    pub status: Option<ExecutionStatus>,
    /// Only executions of jobs of this namespace.
    pub namespace_id: Option<String>,
    /// At most this many (1 to 250).
    #[serde(default, deserialize_with = "lenient::int")]
    pub max_results: Option<i64>,
    /// The token of the page to return.
    pub next_token: Option<String>,
    /// Only executions of this job.
    pub job_id: Option<String>,
}

/// An execution in ListJobExecutionsForThing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobExecutionSummaryForThing {
    /// The job id.
    pub job_id: String,
    /// The execution.
    pub job_execution_summary: JobExecutionSummary,
}

/// ListJobExecutionsForThing's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListJobExecutionsForThingResponse {
    /// The executions of this page, by job id and execution number.
    pub execution_summaries: Vec<JobExecutionSummaryForThing>,
    /// The token of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// CancelJobExecution's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancelJobExecutionRequest {
    /// The job id.
    pub job_id: String,
    /// The thing name.
    pub thing_name: String,
    /// Also cancel an IN_PROGRESS execution.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub force: Option<bool>,
    /// Fail with VersionConflictException unless the execution is at this version.
    #[serde(default, deserialize_with = "lenient::int")]
    pub expected_version: Option<i64>,
    /// Replaces the execution's status details.
    pub status_details: Option<BTreeMap<String, String>>,
}

/// DeleteJobExecution's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteJobExecutionRequest {
    /// The job id.
    pub job_id: String,
    /// The thing name.
    pub thing_name: String,
    /// Which execution.
    #[serde(default, deserialize_with = "lenient::int")]
    pub execution_number: Option<i64>,
    /// Delete an execution that is not terminal.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub force: Option<bool>,
    /// Accepted.
    pub namespace_id: Option<String>,
}

fn execution_not_found(job_id: &str, thing: &str, number: Option<i64>) -> ControlError {
    let which = number.map_or(String::new(), |n| format!(" number {n}"));
    ControlError::not_found(format!(
        "thing {thing:?} has no execution{which} of job {job_id:?}"
    ))
}

/// Whether a status-details map follows AWS's `DetailsMap` rules.
pub(crate) fn validate_details(details: &BTreeMap<String, String>) -> Result<(), ControlError> {
    for (k, v) in details {
        let key_ok = (1..=128).contains(&k.len())
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-'));
        if !key_ok || v.is_empty() || v.chars().any(char::is_control) {
            return Err(ControlError::invalid(format!(
                "statusDetails entry {k:?}: keys are 1 to 128 of a-z, A-Z, 0-9, :, _ and -; \
                 values are non-empty without control characters"
            )));
        }
    }
    Ok(())
}

/// A SNAPSHOT job still IN_PROGRESS whose executions are all terminal
/// becomes COMPLETED. Returns whether `job` changed.
pub(crate) fn settle(job: &mut JobRecord, executions: &[ExecutionRecord], now: i64) -> bool {
    let done = job.status == JobStatus::InProgress
        && job.target_selection == TargetSelection::Snapshot
        && !executions.is_empty()
        && executions.iter().all(|e| e.status.is_terminal());
    if done {
        job.status = JobStatus::Completed;
        job.completed_at = Some(now);
        job.last_updated_at = now;
    }
    done
}

impl Control {
    /// DescribeJobExecution: the execution `executionNumber` names, or the
    /// latest.
    pub fn describe_job_execution(
        &self,
        request: DescribeJobExecutionRequest,
    ) -> Result<DescribeJobExecutionResponse, ControlError> {
        let e = self.find_execution(
            &request.job_id,
            &request.thing_name,
            request.execution_number,
        )?;
        Ok(DescribeJobExecutionResponse {
            execution: self.job_execution(e),
        })
    }

    /// ListJobExecutionsForJob, by thing name and execution number.
    pub fn list_job_executions_for_job(
        &self,
        request: ListJobExecutionsForJobRequest,
    ) -> Result<ListJobExecutionsForJobResponse, ControlError> {
        self.require_job(&request.job_id)?;
        let executions: Vec<ExecutionRecord> = self
            .store
            .executions_of_job(&request.job_id)?
            .into_iter()
            .filter(|e| request.status.is_none_or(|s| e.status == s))
            .collect();
        let items = keyed(
            executions,
            |e| format!("{}/{:020}", e.thing_name, e.execution_number),
            |e| JobExecutionSummaryForJob {
                thing_arn: self.arn("thing", &e.thing_name),
                job_execution_summary: (&e).into(),
            },
        );
        let page = paginate(
            items,
            |(k, _)| k.as_str(),
            request.next_token.as_deref(),
            request.max_results,
            50,
            250,
        )?;
        Ok(ListJobExecutionsForJobResponse {
            execution_summaries: page.items.into_iter().map(|(_, e)| e).collect(),
            next_token: page.next,
        })
    }

    /// ListJobExecutionsForThing, by job id and execution number.
    pub fn list_job_executions_for_thing(
        &self,
        request: ListJobExecutionsForThingRequest,
    ) -> Result<ListJobExecutionsForThingResponse, ControlError> {
        self.require_thing(&request.thing_name)?;
        let namespaced: Option<BTreeSet<String>> = match &request.namespace_id {
            None => None,
            Some(ns) => Some(
                self.store
                    .list_jobs()?
                    .into_iter()
                    .filter(|j| j.namespace_id.as_ref() == Some(ns))
                    .map(|j| j.job_id)
                    .collect(),
            ),
        };
        let executions: Vec<ExecutionRecord> = self
            .store
            .executions_of_thing(&request.thing_name)?
            .into_iter()
            .filter(|e| request.status.is_none_or(|s| e.status == s))
            .filter(|e| request.job_id.as_ref().is_none_or(|j| &e.job_id == j))
            .filter(|e| namespaced.as_ref().is_none_or(|n| n.contains(&e.job_id)))
            .collect();
        let items = keyed(
            executions,
            |e| format!("{}/{:020}", e.job_id, e.execution_number),
            |e| JobExecutionSummaryForThing {
                job_execution_summary: (&e).into(),
                job_id: e.job_id,
            },
        );
        let page = paginate(
            items,
            |(k, _)| k.as_str(),
            request.next_token.as_deref(),
            request.max_results,
            50,
            250,
        )?;
        Ok(ListJobExecutionsForThingResponse {
            execution_summaries: page.items.into_iter().map(|(_, e)| e).collect(),
            next_token: page.next,
        })
    }

    /// CancelJobExecution: cancels the latest execution of the job on the
    /// thing. A QUEUED one is canceled; an IN_PROGRESS one only with
    /// `force`; a terminal one not at all (InvalidStateTransitionException).
    pub fn cancel_job_execution(
        &self,
        request: CancelJobExecutionRequest,
    ) -> Result<(), ControlError> {
        if let Some(details) = &request.status_details {
            validate_details(details)?;
        }
        let _guard = self.lock_jobs();
        let mut job = self.require_job(&request.job_id)?;
        let mut e = self.find_execution(&request.job_id, &request.thing_name, None)?;
        if let Some(expected) = request.expected_version {
            if expected != e.version_number {
                return Err(ControlError::new(
                    ErrorCode::VersionConflict,
                    format!(
                        "the execution of job {:?} on thing {:?} is at version {}, not {expected}",
                        e.job_id, e.thing_name, e.version_number
                    ),
                ));
            }
        }
        let force = request.force == Some(true);
        match e.status {
            ExecutionStatus::Queued => {}
            ExecutionStatus::InProgress if force => e.force_canceled = true,
            status => {
                let hint = if status == ExecutionStatus::InProgress {
                    "; cancel it with force"
                } else {
                    ""
                };
                return Err(ControlError::new(
                    ErrorCode::InvalidStateTransition,
                    format!(
                        "the execution of job {:?} on thing {:?} is {status} and cannot be \
                         canceled{hint}",
                        e.job_id, e.thing_name
                    ),
                ));
            }
        }
        let now = self.now();
        service_move(&mut e, ExecutionStatus::Canceled, now);
        if let Some(details) = request.status_details {
            e.status_details = details;
        }
        let mut all = self.store.executions_of_job(&job.job_id)?;
        for other in &mut all {
            if other.thing_name == e.thing_name && other.execution_number == e.execution_number {
                *other = e.clone();
            }
        }
        let job_changed = settle(&mut job, &all, now);
        self.store
            .save_job(job_changed.then_some(&job), std::slice::from_ref(&e))?;
        self.changed();
        Ok(())
    }

    /// DeleteJobExecution: only a terminal execution, unless `force`.
    pub fn delete_job_execution(
        &self,
        request: DeleteJobExecutionRequest,
    ) -> Result<(), ControlError> {
        let number = request
            .execution_number
            .ok_or_else(|| ControlError::invalid("give executionNumber"))?;
        let _guard = self.lock_jobs();
        let mut job = self.require_job(&request.job_id)?;
        let e = self.find_execution(&request.job_id, &request.thing_name, Some(number))?;
        if !e.status.is_terminal() && request.force != Some(true) {
            return Err(ControlError::new(
                ErrorCode::InvalidStateTransition,
                format!(
                    "execution {number} of job {:?} on thing {:?} is {}; delete it with force",
                    e.job_id, e.thing_name, e.status
                ),
            ));
        }
        self.store
            .delete_execution(&e.job_id, &e.thing_name, e.execution_number)?;
        let rest = self.store.executions_of_job(&job.job_id)?;
        if settle(&mut job, &rest, self.now()) {
            self.store.save_job(Some(&job), &[])?;
        }
        self.changed();
        Ok(())
    }

    /// The ids of the IN_PROGRESS CONTINUOUS jobs `thing` is a target of:
    /// named itself, or in a target group or one of its descendants.
    pub(crate) fn continuous_jobs_of(&self, thing: &str) -> Result<BTreeSet<String>, ControlError> {
        let mut groups = BTreeSet::new();
        for group in self.store.groups_of_thing(thing)? {
            groups.extend(self.store.thing_group_ancestors(&group)?);
        }
        let mut jobs = BTreeSet::new();
        for job in self.store.list_jobs()? {
            if job.target_selection != TargetSelection::Continuous
                || job.status != JobStatus::InProgress
            {
                continue;
            }
            let targeted = job.targets.iter().any(|arn| match self.parse_target(arn) {
                Ok(Target::Thing(name)) => name == thing,
                Ok(Target::Group(name)) => groups.contains(&name),
                Err(_) => false,
            });
            if targeted {
                jobs.insert(job.job_id);
            }
        }
        Ok(jobs)
    }

    /// Applies a change of `thing`'s group membership to CONTINUOUS jobs:
    /// `before` is [`continuous_jobs_of`](Self::continuous_jobs_of) before
    /// the change. New targets get a QUEUED execution; things no longer
    /// targeted have their open executions REMOVED.
    pub(crate) fn apply_membership_to_jobs(
        &self,
        thing: &str,
        before: &BTreeSet<String>,
    ) -> Result<(), ControlError> {
        let after = self.continuous_jobs_of(thing)?;
        let now = self.now();
        let mut changed = Vec::new();
        let executions = self.store.executions_of_thing(thing)?;
        for job_id in after.difference(before) {
            let mine: Vec<&ExecutionRecord> =
                executions.iter().filter(|e| &e.job_id == job_id).collect();
            if mine.iter().any(|e| !e.status.is_terminal()) {
                continue;
            }
            let number = mine.iter().map(|e| e.execution_number).max().unwrap_or(0) + 1;
            changed.push(ExecutionRecord::queued(job_id, thing, number, now));
        }
        for job_id in before.difference(&after) {
            for e in executions.iter().filter(|e| &e.job_id == job_id) {
                if !e.status.is_terminal() {
                    let mut e = e.clone();
                    service_move(&mut e, ExecutionStatus::Removed, now);
                    changed.push(e);
                }
            }
        }
        if !changed.is_empty() {
            self.store.save_job(None, &changed)?;
        }
        Ok(())
    }

    /// The execution `number` of the job on the thing, or the latest.
    pub(crate) fn find_execution(
        &self,
        job_id: &str,
        thing: &str,
        number: Option<i64>,
    ) -> Result<ExecutionRecord, ControlError> {
        self.store
            .executions_of_thing(thing)?
            .into_iter()
            .filter(|e| e.job_id == job_id)
            .filter(|e| number.is_none_or(|n| e.execution_number == n))
            .max_by_key(|e| e.execution_number)
            .ok_or_else(|| execution_not_found(job_id, thing, number))
    }

    fn job_execution(&self, e: ExecutionRecord) -> JobExecution {
        let now = self.now();
        let approximate_seconds_before_timed_out = (e.status == ExecutionStatus::InProgress)
            .then(|| e.deadline())
            .flatten()
            .map(|deadline| (deadline - now).max(0));
        JobExecution {
            approximate_seconds_before_timed_out,
            thing_arn: self.arn("thing", &e.thing_name),
            job_id: e.job_id,
            status: e.status,
            force_canceled: e.force_canceled,
            status_details: JobExecutionStatusDetails {
                details_map: e.status_details,
            },
            queued_at: e.queued_at,
            started_at: e.started_at,
            last_updated_at: e.last_updated_at,
            execution_number: e.execution_number,
            version_number: e.version_number,
        }
    }
}
