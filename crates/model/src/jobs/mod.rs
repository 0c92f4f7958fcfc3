//! The Jobs device API: reserved topics, requests, replies, notifications
//! and errors.
//!
//! * [`JobsTopic`]: build and parse `$aws/things/{thing}/jobs/…` topics.
//! * [`JobsMessage`]: every document's JSON form both ways; requests
//!   ([`UpdateJobExecutionRequest`], …), replies
//!   ([`GetPendingJobExecutionsResponse`], …), the notifications
//!   ([`NextJobExecutionChanged`], [`JobExecutionsChanged`]) and the error
//!   reply ([`ErrorResponse`], with an [`ErrorCode`]).
//! * [`JobExecutionStatus`]: the eight statuses and which are terminal.
//!
//! The job document is a type parameter (`serde_json::Value` unless the
//! application names its own type). Timestamps are epoch seconds. Nothing
//! here keeps state: the execution state machine is the service's.
//!
//! ```
//! use iotcore_model::jobs::{
//!     JobExecutionStatus, JobsApi, JobsMessage, JobsTopic, JobsTopicKind,
//!     UpdateJobExecutionRequest,
//! };
//!
//! let topic = JobsTopic::parse("$aws/things/lamp-1/jobs/fw-42/update")?;
//! assert_eq!(topic.api(), JobsApi::Update { job_id: "fw-42" });
//! assert_eq!(
//!     topic.with_kind(JobsTopicKind::Accepted)?.to_topic(),
//!     "$aws/things/lamp-1/jobs/fw-42/update/accepted"
//! );
//!
//! let update = UpdateJobExecutionRequest::from_json(
//!     br#"{"status":"SUCCEEDED","expectedVersion":"2"}"#,
//! )?;
//! assert_eq!(update.status, JobExecutionStatus::Succeeded);
//! assert_eq!(update.expected_version, Some(2));
//! assert!(update.status.is_terminal());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod messages;
mod status;
mod topics;

pub use error::{ErrorCode, ErrorResponse, JobsMessageError};
pub use messages::{
    CANCEL_STEP_TIMER, DescribeJobExecutionRequest, DescribeJobExecutionResponse,
    GetPendingJobExecutionsRequest, GetPendingJobExecutionsResponse, JobExecution,
    JobExecutionState, JobExecutionSummary, JobExecutionsChanged, JobsMessage,
    MAX_STEP_TIMEOUT_MINUTES, NextJobExecutionChanged, StartNextJobExecutionResponse,
    StartNextPendingJobExecutionRequest, StatusDetails, UpdateJobExecutionRequest,
    UpdateJobExecutionResponse, validate_step_timeout,
};
pub use status::{JobExecutionStatus, UnknownStatus};
pub use topics::{
    JobIdError, JobsApi, JobsTopic, JobsTopicError, JobsTopicKind, MAX_JOB_ID_LEN, NEXT_JOB_ID,
    jobs_topic_prefix, validate_job_id,
};

#[cfg(test)]
mod tests;
