//! The Jobs device API's request and reply documents, as AWS sends and takes
//! them (field names camelCase, timestamps in epoch seconds).
//!
//! Building one is plain construction plus [`JobsMessage::to_json`];
//! [`JobsMessage::from_json`] is the validating parser (the service's for
//! requests, the device's for replies and notifications). The job document
//! is a type parameter `D`, `serde_json::Value` unless the application names
//! its own type. Source: AWS IoT developer guide, "Jobs device MQTT API
//! operations" and "Jobs API data types" (`jobs-mqtt-api.md`, `jobs-api.md`),
//! and AWS's device SDKs' models (`iotjobs`).

use std::collections::BTreeMap;

use serde::de::{self, DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::JobsMessageError;
use super::status::JobExecutionStatus;

/// Name/value pairs a device reports about an execution (`statusDetails`).
pub type StatusDetails = BTreeMap<String, String>;

/// Longest step timeout, in minutes (7 days).
pub const MAX_STEP_TIMEOUT_MINUTES: i64 = 10_080;

/// The step timeout that cancels the current step timer.
pub const CANCEL_STEP_TIMER: i64 = -1;

/// A Jobs message: its JSON form, both ways.
pub trait JobsMessage: Serialize + DeserializeOwned {
    /// The message as JSON bytes.
    fn to_json(&self) -> Vec<u8> {
        // Maps with string keys, strings and numbers always serialize; a
        // document type whose Serialize fails gives an empty payload.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses a message: an empty payload is `{}`; a payload that is not
    /// UTF-8 JSON is [`JobsMessageError::InvalidJson`]; one that is not an
    /// object, lacks a required field, has a field of the wrong type or a
    /// value out of range is [`JobsMessageError::InvalidRequest`].
    fn from_json(payload: &[u8]) -> Result<Self, JobsMessageError> {
        let value = if payload.iter().all(u8::is_ascii_whitespace) {
            Value::Object(serde_json::Map::new())
        } else {
            serde_json::from_slice::<Value>(payload)
                .map_err(|e| JobsMessageError::InvalidJson(e.to_string()))?
        };
        if !value.is_object() {
            return Err(JobsMessageError::InvalidRequest(
                "the payload must be a JSON object".into(),
            ));
        }
        let message: Self = serde_json::from_value(value)
            .map_err(|e| JobsMessageError::InvalidRequest(e.to_string()))?;
        message.validate()?;
        Ok(message)
    }

    /// Checks what serde cannot (ranges); called by [`from_json`](Self::from_json).
    fn validate(&self) -> Result<(), JobsMessageError> {
        Ok(())
    }
}

/// Checks a `stepTimeoutInMinutes`: 1 to [`MAX_STEP_TIMEOUT_MINUTES`], or
/// [`CANCEL_STEP_TIMER`].
pub fn validate_step_timeout(minutes: Option<i64>) -> Result<(), JobsMessageError> {
    match minutes {
        None | Some(CANCEL_STEP_TIMER) | Some(1..=MAX_STEP_TIMEOUT_MINUTES) => Ok(()),
        Some(other) => Err(JobsMessageError::InvalidRequest(format!(
            "stepTimeoutInMinutes must be between 1 and {MAX_STEP_TIMEOUT_MINUTES}, or -1 to \
             cancel the step timer; it is {other}"
        ))),
    }
}

/// A job execution: `JobExecution` of the device API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobExecution<D = Value> {
    /// The job's id.
    pub job_id: String,
    /// The thing running it (AWS leaves it out of notifications).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thing_name: Option<String>,
    /// The job document, when the reply includes it.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub job_document: Option<D>,
    /// The execution's status.
    pub status: JobExecutionStatus,
    /// What the device last reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_details: Option<StatusDetails>,
    /// When it was queued, epoch seconds.
    pub queued_at: i64,
    /// When it went IN_PROGRESS, epoch seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    /// When it last changed, epoch seconds.
    pub last_updated_at: i64,
    /// Its version: one more at every update.
    pub version_number: i64,
    /// Which execution of the job on this thing, from 1.
    pub execution_number: i64,
}

/// An execution's status, details and version: `JobExecutionState`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobExecutionState {
    /// The execution's status.
    pub status: JobExecutionStatus,
    /// What the device last reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_details: Option<StatusDetails>,
    /// Its version.
    pub version_number: i64,
}

/// A pending execution in a list: `JobExecutionSummary`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobExecutionSummary {
    /// The job's id.
    pub job_id: String,
    /// When it was queued, epoch seconds.
    pub queued_at: i64,
    /// When it went IN_PROGRESS, epoch seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    /// When it last changed, epoch seconds.
    pub last_updated_at: i64,
    /// Its version.
    pub version_number: i64,
    /// Which execution of the job on this thing.
    pub execution_number: i64,
}

/// GetPendingJobExecutions' request (`…/jobs/get`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetPendingJobExecutionsRequest {
    /// Echoed in the reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

/// GetPendingJobExecutions' reply (`…/jobs/get/accepted`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetPendingJobExecutionsResponse {
    /// The executions IN_PROGRESS.
    #[serde(default)]
    pub in_progress_jobs: Vec<JobExecutionSummary>,
    /// The executions QUEUED.
    #[serde(default)]
    pub queued_jobs: Vec<JobExecutionSummary>,
    /// When the reply was sent, epoch seconds.
    pub timestamp: i64,
    /// The request's `clientToken`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

/// StartNextPendingJobExecution's request (`…/jobs/start-next`): moves the
/// next pending execution (IN_PROGRESS first, then the oldest QUEUED) to
/// IN_PROGRESS and returns it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartNextPendingJobExecutionRequest {
    /// Details to store; unchanged if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_details: Option<StatusDetails>,
    /// A step timer: 1 to 10080 minutes, or -1 to cancel it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_timeout_in_minutes: Option<i64>,
    /// Echoed in the reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

/// StartNextPendingJobExecution's reply (`…/jobs/start-next/accepted`);
/// `execution` is absent when nothing is pending.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartNextJobExecutionResponse<D = Value> {
    /// The execution started (or already IN_PROGRESS).
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub execution: Option<JobExecution<D>>,
    /// When the reply was sent, epoch seconds.
    pub timestamp: i64,
    /// The request's `clientToken`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

/// DescribeJobExecution's request (`…/jobs/{jobId|$next}/get`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeJobExecutionRequest {
    /// Which execution; the latest if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_number: Option<i64>,
    /// Whether the reply includes the job document (AWS's default: true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_job_document: Option<bool>,
    /// Echoed in the reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

/// DescribeJobExecution's reply (`…/jobs/{jobId|$next}/get/accepted`);
/// `execution` is absent for `$next` when nothing is pending.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeJobExecutionResponse<D = Value> {
    /// The execution.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub execution: Option<JobExecution<D>>,
    /// When the reply was sent, epoch seconds.
    pub timestamp: i64,
    /// The request's `clientToken`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

/// UpdateJobExecution's request (`…/jobs/{jobId}/update`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateJobExecutionRequest {
    /// The new status (the device sets IN_PROGRESS, SUCCEEDED, FAILED or
    /// REJECTED); required on every update.
    pub status: JobExecutionStatus,
    /// Details to store; unchanged if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_details: Option<StatusDetails>,
    /// The version the device last saw; a different current version is
    /// refused with `VersionMismatch`. AWS documents a number; AWS's
    /// embedded Jobs library sends a string: both are accepted.
    #[serde(
        default,
        deserialize_with = "number_or_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub expected_version: Option<i64>,
    /// Which execution; the latest if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_number: Option<i64>,
    /// Whether the reply includes `executionState` (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_job_execution_state: Option<bool>,
    /// Whether the reply includes `jobDocument` (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_job_document: Option<bool>,
    /// A new step timer: 1 to 10080 minutes, or -1 to cancel it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_timeout_in_minutes: Option<i64>,
    /// Echoed in the reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

impl UpdateJobExecutionRequest {
    /// An update to `status`, every other field absent.
    pub fn new(status: JobExecutionStatus) -> Self {
        UpdateJobExecutionRequest {
            status,
            status_details: None,
            expected_version: None,
            execution_number: None,
            include_job_execution_state: None,
            include_job_document: None,
            step_timeout_in_minutes: None,
            client_token: None,
        }
    }
}

/// UpdateJobExecution's reply (`…/jobs/{jobId}/update/accepted`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateJobExecutionResponse<D = Value> {
    /// The execution's new state, if the request asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_state: Option<JobExecutionState>,
    /// The job document, if the request asked for it.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub job_document: Option<D>,
    /// When the reply was sent, epoch seconds.
    pub timestamp: i64,
    /// The request's `clientToken`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

/// The `…/jobs/notify-next` notification: the next execution to run changed;
/// `execution` is absent when nothing is pending any more.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NextJobExecutionChanged<D = Value> {
    /// The next pending execution, with its job document.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub execution: Option<JobExecution<D>>,
    /// When it was sent, epoch seconds.
    pub timestamp: i64,
}

/// The `…/jobs/notify` notification: the list of pending executions changed.
/// `jobs` holds the pending ones by status (`IN_PROGRESS`, `QUEUED`); it is
/// empty when nothing is pending.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobExecutionsChanged {
    /// The pending executions by status.
    #[serde(default)]
    pub jobs: BTreeMap<JobExecutionStatus, Vec<JobExecutionSummary>>,
    /// When it was sent, epoch seconds.
    pub timestamp: i64,
}

fn none<T>() -> Option<T> {
    None
}

/// An optional integer sent as a JSON number or as a string of digits.
fn number_or_string<'de, De: Deserializer<'de>>(
    deserializer: De,
) -> Result<Option<i64>, De::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Number(i64),
        Text(String),
    }
    match Option::<Either>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Either::Number(n)) => Ok(Some(n)),
        Some(Either::Text(text)) => text.trim().parse().map(Some).map_err(|_| {
            de::Error::custom(format!(
                "expected a number or a string of digits, got \"{text}\""
            ))
        }),
    }
}

impl JobsMessage for GetPendingJobExecutionsRequest {}
impl JobsMessage for GetPendingJobExecutionsResponse {}
impl JobsMessage for DescribeJobExecutionRequest {}
impl JobsMessage for JobExecutionsChanged {}
impl<D: Serialize + DeserializeOwned> JobsMessage for StartNextJobExecutionResponse<D> {}
impl<D: Serialize + DeserializeOwned> JobsMessage for DescribeJobExecutionResponse<D> {}
impl<D: Serialize + DeserializeOwned> JobsMessage for UpdateJobExecutionResponse<D> {}
impl<D: Serialize + DeserializeOwned> JobsMessage for NextJobExecutionChanged<D> {}

impl JobsMessage for StartNextPendingJobExecutionRequest {
    fn validate(&self) -> Result<(), JobsMessageError> {
        validate_step_timeout(self.step_timeout_in_minutes)
    }
}

impl JobsMessage for UpdateJobExecutionRequest {
    fn validate(&self) -> Result<(), JobsMessageError> {
        validate_step_timeout(self.step_timeout_in_minutes)
    }
}

impl JobsMessage for super::ErrorResponse {}
