//! Jobs: CreateJob, DescribeJob, ListJobs, UpdateJob, CancelJob, DeleteJob,
//! GetJobDocument.
//!
//! CreateJob queues one execution (number 1, version 1) for every thing its
//! targets name: things, and the things of static thing groups and of their
//! descendant groups. A CONTINUOUS job also queues an execution for a thing
//! added to one of its groups later, and moves the open execution of a thing
//! that is no longer a target to REMOVED (see
//! [`job_executions`](super::job_executions)). A SNAPSHOT job whose
//! executions all reached a terminal status is COMPLETED.
//!
//! The timeout, rollout (`maximumPerMinute`; an exponential rate runs at its
//! base rate), abort and retry configurations act (the jobs service runs its timers);
//! presigned URL and scheduling configurations are checked, stored and
//! returned, and scheduled jobs start at once. DeleteJob deletes at once,
//! where AWS passes through DELETION_IN_PROGRESS.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::job_configs::{
    AbortConfig, JobExecutionsRetryConfig, JobExecutionsRolloutConfig, PresignedUrlConfig,
    TimeoutConfig, stored,
};
use super::page::paginate;
use super::{Control, ControlError, ErrorCode, lenient};
use crate::jobs::state::service_move;
use crate::store::{
    ExecutionRecord, ExecutionStatus, JobConfigs, JobRecord, JobStatus, StoreError, TargetSelection,
};

/// Longest job document (AWS's quota), in bytes.
pub const MAX_JOB_DOCUMENT_BYTES: usize = 32 * 1024;

/// CreateJob's request.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateJobRequest {
    /// The job id (`[a-zA-Z0-9_-]{1,64}`).
    pub job_id: String,
    /// Thing and thing-group ARNs.
    pub targets: Vec<String>,
    /// The job document, inline.
    pub document: Option<String>,
    /// Or where to read it: the emulator takes a local file path (it does
    /// not fetch `s3://` or web URLs).
    pub document_source: Option<String>,
    /// A description.
    pub description: Option<String>,
    /// SNAPSHOT (the default) or CONTINUOUS.
    pub target_selection: Option<TargetSelection>,
    /// Stored, not acted on.
    pub presigned_url_config: Option<PresignedUrlConfig>,
    /// Stored and acted on.
    pub job_executions_rollout_config: Option<JobExecutionsRolloutConfig>,
    /// Stored and acted on.
    pub abort_config: Option<AbortConfig>,
    /// Stored and acted on.
    pub timeout_config: Option<TimeoutConfig>,
    /// Accepted; tags are not emulated.
    pub tags: Option<Value>,
    /// Stored and returned.
    pub namespace_id: Option<String>,
    /// Job templates are not emulated: refused.
    pub job_template_arn: Option<String>,
    /// Stored and acted on.
    pub job_executions_retry_config: Option<JobExecutionsRetryConfig>,
    /// Only for job templates: refused.
    pub document_parameters: Option<Value>,
    /// Stored, not acted on: the job starts at once.
    pub scheduling_config: Option<Value>,
    /// Software package versions are not emulated: refused.
    pub destination_package_versions: Option<Value>,
}

impl CreateJobRequest {
    /// A SNAPSHOT job `job_id` of `document` on `targets`.
    pub fn new(job_id: &str, targets: Vec<String>, document: &str) -> CreateJobRequest {
        CreateJobRequest {
            job_id: job_id.to_owned(),
            targets,
            document: Some(document.to_owned()),
            ..CreateJobRequest::default()
        }
    }
}

/// CreateJob's and CancelJob's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobIdentity {
    /// The job's ARN.
    pub job_arn: String,
    /// The job id.
    pub job_id: String,
    /// Its description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A request naming a job: DescribeJob's and GetJobDocument's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobIdRequest {
    /// The job id.
    pub job_id: String,
    /// Accepted; documents have no substitutions here.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub before_substitution: Option<bool>,
}

/// AWS's `jobProcessDetails`: how many executions are in each status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobProcessDetails {
    /// CANCELED executions.
    pub number_of_canceled_things: i64,
    /// SUCCEEDED executions.
    pub number_of_succeeded_things: i64,
    /// FAILED executions.
    pub number_of_failed_things: i64,
    /// REJECTED executions.
    pub number_of_rejected_things: i64,
    /// QUEUED executions.
    pub number_of_queued_things: i64,
    /// IN_PROGRESS executions.
    pub number_of_in_progress_things: i64,
    /// REMOVED executions.
    pub number_of_removed_things: i64,
    /// TIMED_OUT executions.
    pub number_of_timed_out_things: i64,
}

impl JobProcessDetails {
    /// The counts of `executions`.
    pub fn count(executions: &[ExecutionRecord]) -> JobProcessDetails {
        let mut d = JobProcessDetails::default();
        for e in executions {
            let n = match e.status {
                ExecutionStatus::Canceled => &mut d.number_of_canceled_things,
                ExecutionStatus::Succeeded => &mut d.number_of_succeeded_things,
                ExecutionStatus::Failed => &mut d.number_of_failed_things,
                ExecutionStatus::Rejected => &mut d.number_of_rejected_things,
                ExecutionStatus::Queued => &mut d.number_of_queued_things,
                ExecutionStatus::InProgress => &mut d.number_of_in_progress_things,
                ExecutionStatus::Removed => &mut d.number_of_removed_things,
                ExecutionStatus::TimedOut => &mut d.number_of_timed_out_things,
            };
            *n += 1;
        }
        d
    }
}

/// AWS's `Job`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    /// Its ARN.
    pub job_arn: String,
    /// Its id.
    pub job_id: String,
    /// SNAPSHOT or CONTINUOUS.
    pub target_selection: TargetSelection,
    /// Its status.
    pub status: JobStatus,
    /// Whether it was canceled with `force`.
    pub force_canceled: bool,
    /// CancelJob's reason code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
    /// CancelJob's comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The thing and group ARNs it targets.
    pub targets: Vec<String>,
    /// Its description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// As given (not acted on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presigned_url_config: Option<Value>,
    /// As given (not acted on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_executions_rollout_config: Option<Value>,
    /// As given (not acted on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort_config: Option<Value>,
    /// When it was created, epoch seconds.
    pub created_at: i64,
    /// When it last changed, epoch seconds.
    pub last_updated_at: i64,
    /// When it completed or was canceled, epoch seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<i64>,
    /// Execution counts by status.
    pub job_process_details: JobProcessDetails,
    /// As given (not acted on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_config: Option<Value>,
    /// As given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace_id: Option<String>,
    /// As given (not acted on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_executions_retry_config: Option<Value>,
    /// As given (not acted on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduling_config: Option<Value>,
    /// Always false: the emulator has no concurrent job rules.
    pub is_concurrent: bool,
}

/// DescribeJob's response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeJobResponse {
    /// Where the document was read from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_source: Option<String>,
    /// The job.
    pub job: Job,
}

/// ListJobs' request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListJobsRequest {
    /// Only jobs in this status.
    pub status: Option<JobStatus>,
    /// Only SNAPSHOT or only CONTINUOUS jobs.
    pub target_selection: Option<TargetSelection>,
    /// At most this many (1 to 250).
    #[serde(default, deserialize_with = "lenient::int")]
    pub max_results: Option<i64>,
    /// The token of the page to return.
    pub next_token: Option<String>,
    /// Only jobs that target this group.
    pub thing_group_name: Option<String>,
    /// Only jobs that target the group with this id.
    pub thing_group_id: Option<String>,
    /// Only jobs of this namespace.
    pub namespace_id: Option<String>,
}

/// AWS's `JobSummary`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSummary {
    /// Its ARN.
    pub job_arn: String,
    /// Its id.
    pub job_id: String,
    /// SNAPSHOT or CONTINUOUS.
    pub target_selection: TargetSelection,
    /// Its status.
    pub status: JobStatus,
    /// When it was created, epoch seconds.
    pub created_at: i64,
    /// When it last changed, epoch seconds.
    pub last_updated_at: i64,
    /// When it completed or was canceled, epoch seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<i64>,
    /// Always false.
    pub is_concurrent: bool,
}

/// ListJobs' response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListJobsResponse {
    /// The jobs of this page.
    pub jobs: Vec<JobSummary>,
    /// The token of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// UpdateJob's request: the fields given replace the job's.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateJobRequest {
    /// The job id.
    pub job_id: String,
    /// A new description.
    pub description: Option<String>,
    /// Stored, not acted on.
    pub presigned_url_config: Option<PresignedUrlConfig>,
    /// Stored and acted on.
    pub job_executions_rollout_config: Option<JobExecutionsRolloutConfig>,
    /// Stored and acted on.
    pub abort_config: Option<AbortConfig>,
    /// Stored and acted on.
    pub timeout_config: Option<TimeoutConfig>,
    /// Accepted.
    pub namespace_id: Option<String>,
    /// Stored and acted on.
    pub job_executions_retry_config: Option<JobExecutionsRetryConfig>,
}

/// CancelJob's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancelJobRequest {
    /// The job id.
    pub job_id: String,
    /// Why (`[A-Z0-9_]+`, at most 128).
    pub reason_code: Option<String>,
    /// A comment.
    pub comment: Option<String>,
    /// Also cancel IN_PROGRESS executions.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub force: Option<bool>,
}

/// DeleteJob's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteJobRequest {
    /// The job id.
    pub job_id: String,
    /// Delete a job that is still IN_PROGRESS.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub force: Option<bool>,
    /// Accepted.
    pub namespace_id: Option<String>,
}

/// GetJobDocument's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetJobDocumentResponse {
    /// The job document.
    pub document: String,
}

/// What a target ARN names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A thing.
    Thing(String),
    /// A static thing group.
    Group(String),
}

fn validate_job_id(job_id: &str) -> Result<(), ControlError> {
    let ok = (1..=64).contains(&job_id.len())
        && job_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ControlError::invalid(format!(
            "invalid job id {job_id:?}: use 1 to 64 of a-z, A-Z, 0-9, _ and -"
        )))
    }
}

/// Checks a description or comment: at most 2028 characters, no control
/// characters.
fn validate_text(name: &str, text: &Option<String>) -> Result<(), ControlError> {
    if let Some(text) = text {
        if text.chars().count() > 2028 || text.is_empty() || text.chars().any(char::is_control) {
            return Err(ControlError::invalid(format!(
                "{name} must be 1 to 2028 characters without control characters"
            )));
        }
    }
    Ok(())
}

fn job_not_found(job_id: &str) -> ControlError {
    ControlError::not_found(format!("job {job_id:?} does not exist"))
}

impl Control {
    /// CreateJob: stores the job and queues an execution for every thing its
    /// targets name.
    pub fn create_job(&self, request: CreateJobRequest) -> Result<JobIdentity, ControlError> {
        validate_job_id(&request.job_id)?;
        validate_text("description", &request.description)?;
        for (given, what) in [
            (request.job_template_arn.is_some(), "jobTemplateArn"),
            (request.document_parameters.is_some(), "documentParameters"),
            (
                request.destination_package_versions.is_some(),
                "destinationPackageVersions",
            ),
        ] {
            if given {
                return Err(ControlError::invalid(format!(
                    "{what} is not supported by the emulator (job templates and software \
                     packages are not emulated); give the document itself"
                )));
            }
        }
        if let Some(c) = &request.timeout_config {
            c.validate()?;
        }
        if let Some(c) = &request.job_executions_rollout_config {
            c.validate()?;
        }
        if let Some(c) = &request.abort_config {
            c.validate()?;
        }
        if let Some(c) = &request.job_executions_retry_config {
            c.validate()?;
        }
        if let Some(c) = &request.presigned_url_config {
            c.validate()?;
        }
        if request
            .scheduling_config
            .as_ref()
            .is_some_and(|c| !c.is_object())
        {
            return Err(ControlError::invalid("schedulingConfig must be an object"));
        }
        let document = job_document(&request.document, &request.document_source)?;
        if request.targets.is_empty() {
            return Err(ControlError::invalid("targets needs at least one ARN"));
        }
        let mut things = BTreeSet::new();
        for arn in &request.targets {
            match self.parse_target(arn)? {
                Target::Thing(name) => {
                    self.require_thing(&name)?;
                    things.insert(name);
                }
                Target::Group(name) => {
                    if self.store.thing_group(&name)?.is_none() {
                        return Err(StoreError::ThingGroupNotFound(name).into());
                    }
                    things.extend(self.store.things_in_group(&name, true)?);
                }
            }
        }
        let now = self.now();
        let job = JobRecord {
            job_id: request.job_id.clone(),
            document,
            document_source: request.document_source.clone(),
            description: request.description.clone(),
            targets: request.targets.clone(),
            target_selection: request
                .target_selection
                .unwrap_or(TargetSelection::Snapshot),
            status: JobStatus::InProgress,
            force_canceled: false,
            reason_code: None,
            comment: None,
            namespace_id: request.namespace_id.clone(),
            configs: JobConfigs {
                timeout: stored(&request.timeout_config)?,
                rollout: stored(&request.job_executions_rollout_config)?,
                abort: stored(&request.abort_config)?,
                retry: stored(&request.job_executions_retry_config)?,
                presigned_url: stored(&request.presigned_url_config)?,
                scheduling: request.scheduling_config.clone(),
            },
            created_at: now,
            last_updated_at: now,
            completed_at: None,
        };
        // A rollout rate holds back the things past its first minute's
        // allowance; the jobs service queues them as the minutes pass.
        let mut things: Vec<String> = things.into_iter().collect();
        let held_back = match crate::jobs::state::rollout_allowance(&job, now) {
            Some((allowed, _)) if things.len() > allowed => things.split_off(allowed),
            _ => Vec::new(),
        };
        let executions: Vec<ExecutionRecord> = things
            .iter()
            .map(|thing| ExecutionRecord::queued(&job.job_id, thing, 1, now))
            .collect();
        let _guard = self.lock_jobs();
        self.store
            .insert_job(&job, &executions)
            .map_err(|e| match e {
                StoreError::JobExists(id) => {
                    let arn = self.arn("job", &id);
                    ControlError::from(StoreError::JobExists(id.clone())).with_resource(id, arn)
                }
                e => e.into(),
            })?;
        if !held_back.is_empty() {
            self.store.set_rollout_pending(&job.job_id, &held_back)?;
        }
        self.changed();
        Ok(self.job_identity(&job))
    }

    /// DescribeJob, with execution counts.
    pub fn describe_job(&self, request: JobIdRequest) -> Result<DescribeJobResponse, ControlError> {
        let job = self.require_job(&request.job_id)?;
        let executions = self.store.executions_of_job(&job.job_id)?;
        Ok(DescribeJobResponse {
            document_source: job.document_source.clone(),
            job: Job {
                job_arn: self.arn("job", &job.job_id),
                job_id: job.job_id,
                target_selection: job.target_selection,
                status: job.status,
                force_canceled: job.force_canceled,
                reason_code: job.reason_code,
                comment: job.comment,
                targets: job.targets,
                description: job.description,
                presigned_url_config: job.configs.presigned_url,
                job_executions_rollout_config: job.configs.rollout,
                abort_config: job.configs.abort,
                created_at: job.created_at,
                last_updated_at: job.last_updated_at,
                completed_at: job.completed_at,
                job_process_details: JobProcessDetails::count(&executions),
                timeout_config: job.configs.timeout,
                namespace_id: job.namespace_id,
                job_executions_retry_config: job.configs.retry,
                scheduling_config: job.configs.scheduling,
                is_concurrent: false,
            },
        })
    }

    /// GetJobDocument.
    pub fn get_job_document(
        &self,
        request: JobIdRequest,
    ) -> Result<GetJobDocumentResponse, ControlError> {
        let job = self.require_job(&request.job_id)?;
        Ok(GetJobDocumentResponse {
            document: job.document,
        })
    }

    /// ListJobs, by job id.
    pub fn list_jobs(&self, request: ListJobsRequest) -> Result<ListJobsResponse, ControlError> {
        let group = match (&request.thing_group_name, &request.thing_group_id) {
            (Some(name), _) => Some(self.arn("thinggroup", name)),
            (None, Some(id)) => self
                .store
                .list_thing_groups()?
                .into_iter()
                .find(|g| &g.group_id == id)
                .map(|g| Some(self.arn("thinggroup", &g.name)))
                .ok_or_else(|| {
                    ControlError::not_found(format!("no thing group has the id {id:?}"))
                })?,
            (None, None) => None,
        };
        let jobs: Vec<JobRecord> = self
            .store
            .list_jobs()?
            .into_iter()
            .filter(|j| request.status.is_none_or(|s| j.status == s))
            .filter(|j| {
                request
                    .target_selection
                    .is_none_or(|s| j.target_selection == s)
            })
            .filter(|j| group.as_ref().is_none_or(|g| j.targets.contains(g)))
            .filter(|j| {
                request
                    .namespace_id
                    .as_ref()
                    .is_none_or(|n| j.namespace_id.as_ref() == Some(n))
            })
            .collect();
        let page = paginate(
            jobs,
            |j| j.job_id.as_str(),
            request.next_token.as_deref(),
            request.max_results,
            50,
            250,
        )?;
        Ok(ListJobsResponse {
            jobs: page
                .items
                .into_iter()
                .map(|j| JobSummary {
                    job_arn: self.arn("job", &j.job_id),
                    job_id: j.job_id,
                    target_selection: j.target_selection,
                    status: j.status,
                    created_at: j.created_at,
                    last_updated_at: j.last_updated_at,
                    completed_at: j.completed_at,
                    is_concurrent: false,
                })
                .collect(),
            next_token: page.next,
        })
    }

    /// UpdateJob: replaces the description and configurations given.
    pub fn update_job(&self, request: UpdateJobRequest) -> Result<(), ControlError> {
        validate_text("description", &request.description)?;
        if let Some(c) = &request.timeout_config {
            c.validate()?;
        }
        if let Some(c) = &request.job_executions_rollout_config {
            c.validate()?;
        }
        if let Some(c) = &request.abort_config {
            c.validate()?;
        }
        if let Some(c) = &request.job_executions_retry_config {
            c.validate()?;
        }
        if let Some(c) = &request.presigned_url_config {
            c.validate()?;
        }
        let _guard = self.lock_jobs();
        let mut job = self.require_job(&request.job_id)?;
        if request.description.is_some() {
            job.description = request.description;
        }
        let c = &mut job.configs;
        if request.timeout_config.is_some() {
            c.timeout = stored(&request.timeout_config)?;
        }
        if request.job_executions_rollout_config.is_some() {
            c.rollout = stored(&request.job_executions_rollout_config)?;
        }
        if request.abort_config.is_some() {
            c.abort = stored(&request.abort_config)?;
        }
        if request.job_executions_retry_config.is_some() {
            c.retry = stored(&request.job_executions_retry_config)?;
        }
        if request.presigned_url_config.is_some() {
            c.presigned_url = stored(&request.presigned_url_config)?;
        }
        job.last_updated_at = self.now();
        self.store.save_job(Some(&job), &[])?;
        self.changed();
        Ok(())
    }

    /// CancelJob: the job goes CANCELED and its QUEUED executions too; with
    /// `force`, its IN_PROGRESS executions as well (marked force-canceled).
    /// A COMPLETED job cannot be canceled; a CANCELED one can be again (to
    /// force-cancel what is still IN_PROGRESS).
    pub fn cancel_job(&self, request: CancelJobRequest) -> Result<JobIdentity, ControlError> {
        if let Some(code) = &request.reason_code {
            let ok = !code.is_empty()
                && code.len() <= 128
                && code
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if !ok {
                return Err(ControlError::invalid(format!(
                    "invalid reasonCode {code:?}: use 1 to 128 of A-Z, 0-9 and _"
                )));
            }
        }
        validate_text("comment", &request.comment)?;
        let force = request.force == Some(true);
        let _guard = self.lock_jobs();
        let mut job = self.require_job(&request.job_id)?;
        if job.status == JobStatus::Completed {
            return Err(ControlError::invalid(format!(
                "job {:?} is COMPLETED and cannot be canceled",
                job.job_id
            )));
        }
        let now = self.now();
        let mut changed = Vec::new();
        for mut e in self.store.executions_of_job(&job.job_id)? {
            let cancel = match e.status {
                ExecutionStatus::Queued => true,
                ExecutionStatus::InProgress => force,
                _ => false,
            };
            if cancel {
                e.force_canceled = e.status == ExecutionStatus::InProgress;
                service_move(&mut e, ExecutionStatus::Canceled, now);
                changed.push(e);
            }
        }
        job.status = JobStatus::Canceled;
        job.force_canceled |= force;
        if request.reason_code.is_some() {
            job.reason_code = request.reason_code;
        }
        if request.comment.is_some() {
            job.comment = request.comment;
        }
        job.last_updated_at = now;
        job.completed_at.get_or_insert(now);
        self.store.save_job(Some(&job), &changed)?;
        self.store.set_rollout_pending(&job.job_id, &[])?;
        self.changed();
        Ok(self.job_identity(&job))
    }

    /// DeleteJob: deletes the job and its executions. A job still
    /// IN_PROGRESS needs `force` (InvalidStateTransitionException otherwise).
    pub fn delete_job(&self, request: DeleteJobRequest) -> Result<(), ControlError> {
        let _guard = self.lock_jobs();
        let job = self.require_job(&request.job_id)?;
        if !job.status.is_terminal() && request.force != Some(true) {
            return Err(ControlError::new(
                ErrorCode::InvalidStateTransition,
                format!(
                    "job {:?} is {}; cancel it first or delete it with force",
                    job.job_id, job.status
                ),
            ));
        }
        self.store.delete_job(&job.job_id)?;
        self.changed();
        Ok(())
    }

    /// The job `job_id`, or ResourceNotFoundException.
    pub(crate) fn require_job(&self, job_id: &str) -> Result<JobRecord, ControlError> {
        self.store.job(job_id)?.ok_or_else(|| job_not_found(job_id))
    }

    /// What `arn` names: a thing or a thing group of this emulator's region
    /// and account.
    pub(crate) fn parse_target(&self, arn: &str) -> Result<Target, ControlError> {
        let resource = arn.strip_prefix(self.arn_scope().prefix());
        let target = match resource.and_then(|r| r.split_once('/')) {
            Some(("thing", name)) if !name.is_empty() => Target::Thing(name.to_owned()),
            Some(("thinggroup", name)) if !name.is_empty() => Target::Group(name.to_owned()),
            _ => {
                return Err(ControlError::invalid(format!(
                    "target {arn:?} is not the ARN of a thing or thing group of {}…",
                    self.arn_scope().prefix()
                )));
            }
        };
        Ok(target)
    }

    fn job_identity(&self, job: &JobRecord) -> JobIdentity {
        JobIdentity {
            job_arn: self.arn("job", &job.job_id),
            job_id: job.job_id.clone(),
            description: job.description.clone(),
        }
    }
}

/// The document of a CreateJob: `document`, or the local file
/// `document_source` names; one of them, valid JSON, at most
/// [`MAX_JOB_DOCUMENT_BYTES`].
fn job_document(
    document: &Option<String>,
    source: &Option<String>,
) -> Result<String, ControlError> {
    let text = match (document, source) {
        (Some(_), Some(_)) => {
            return Err(ControlError::invalid(
                "give document or documentSource, not both",
            ));
        }
        (None, None) => return Err(ControlError::invalid("give document or documentSource")),
        (Some(document), None) => document.clone(),
        (None, Some(source)) => {
            let lower = source.to_ascii_lowercase();
            if ["s3://", "http://", "https://"]
                .iter()
                .any(|p| lower.starts_with(p))
            {
                return Err(ControlError::invalid(format!(
                    "documentSource {source:?}: the emulator does not fetch documents from S3 \
                     or the web; give the document inline, or a local file path"
                )));
            }
            let bytes = std::fs::read(source).map_err(|e| {
                ControlError::invalid(format!("cannot read documentSource {source:?}: {e}"))
            })?;
            String::from_utf8(bytes).map_err(|_| {
                ControlError::invalid(format!("documentSource {source:?} is not UTF-8"))
            })?
        }
    };
    if text.len() > MAX_JOB_DOCUMENT_BYTES {
        return Err(ControlError::invalid(format!(
            "the job document has {} bytes; at most {MAX_JOB_DOCUMENT_BYTES} are allowed",
            text.len()
        )));
    }
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&text) {
        return Err(ControlError::invalid(format!(
            "the job document is not valid JSON: {e}"
        )));
    }
    Ok(text)
}

/// The executions of `executions` keyed for pagination by `key`, sorted.
pub(crate) fn keyed<T>(
    executions: Vec<ExecutionRecord>,
    key: impl Fn(&ExecutionRecord) -> String,
    item: impl Fn(ExecutionRecord) -> T,
) -> Vec<(String, T)> {
    let mut items: BTreeMap<String, T> = BTreeMap::new();
    for e in executions {
        items.insert(key(&e), item(e));
    }
    items.into_iter().collect()
}
