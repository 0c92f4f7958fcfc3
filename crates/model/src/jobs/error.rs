//! The Jobs device API's error reply (`…/rejected`) and the codes in it,
//! and why a message does not parse.
//!
//! Source: AWS IoT developer guide, "Jobs device MQTT and HTTPS APIs",
//! `ErrorResponse` and `JobExecutionState` (`jobs-api.md`); the code names are
//! the ones AWS's device SDKs model (`RejectedErrorCode`).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::messages::JobExecutionState;

/// The `code` of a Jobs error reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The request was sent to a topic in the Jobs namespace that maps to no
    /// API.
    InvalidTopic,
    /// The request is not valid UTF-8 JSON.
    InvalidJson,
    /// The request's contents are invalid; the message says why.
    InvalidRequest,
    /// The update would move the execution to a status its current one does
    /// not allow (from a terminal status, say a canceled job); the reply
    /// carries `executionState`.
    InvalidStateTransition,
    /// No such execution.
    ResourceNotFound,
    /// `expectedVersion` is not the execution's version; the reply carries
    /// `executionState`.
    VersionMismatch,
    /// The service failed.
    InternalError,
    /// Too many requests.
    RequestThrottled,
    /// Describe of an execution in a terminal status.
    TerminalStateReached,
    /// A code this version does not know (AWS added one); deserializing keeps
    /// the reply readable, serializing writes `Unknown`.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// AWS's spelling of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidTopic => "InvalidTopic",
            ErrorCode::InvalidJson => "InvalidJson",
            ErrorCode::InvalidRequest => "InvalidRequest",
            ErrorCode::InvalidStateTransition => "InvalidStateTransition",
            ErrorCode::ResourceNotFound => "ResourceNotFound",
            ErrorCode::VersionMismatch => "VersionMismatch",
            ErrorCode::InternalError => "InternalError",
            ErrorCode::RequestThrottled => "RequestThrottled",
            ErrorCode::TerminalStateReached => "TerminalStateReached",
            ErrorCode::Unknown => "Unknown",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The document on `…/rejected`:
/// `{"code","message","clientToken","timestamp","executionState"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorResponse {
    /// What kind of error.
    pub code: ErrorCode,
    /// What went wrong, in words.
    #[serde(default)]
    pub message: String,
    /// The request's `clientToken`, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
    /// When the service refused, epoch seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// The execution's state, with `InvalidStateTransition` and
    /// `VersionMismatch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_state: Option<JobExecutionState>,
}

impl ErrorResponse {
    /// An error reply with `code` and `message`, at `timestamp` (epoch
    /// seconds), without a client token or execution state.
    pub fn new(code: ErrorCode, message: impl Into<String>, timestamp: i64) -> Self {
        ErrorResponse {
            code,
            message: message.into(),
            client_token: None,
            timestamp: Some(timestamp),
            execution_state: None,
        }
    }

    /// The same reply echoing the request's `clientToken`.
    pub fn with_client_token(mut self, client_token: Option<String>) -> Self {
        self.client_token = client_token;
        self
    }

    /// The same reply carrying the execution's state.
    pub fn with_execution_state(mut self, state: JobExecutionState) -> Self {
        self.execution_state = Some(state);
        self
    }
}

/// Why a Jobs message does not parse: the service answers a request that
/// fails this way with [`code`](Self::code).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JobsMessageError {
    /// The payload is not UTF-8 JSON.
    #[error("the payload is not valid UTF-8 JSON: {0}")]
    InvalidJson(String),
    /// The payload is JSON but not the message: not an object, a field of
    /// the wrong type, a required field missing, a value out of range.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl JobsMessageError {
    /// The error code the service answers with: `InvalidJson` or
    /// `InvalidRequest`.
    pub fn code(&self) -> ErrorCode {
        match self {
            JobsMessageError::InvalidJson(_) => ErrorCode::InvalidJson,
            JobsMessageError::InvalidRequest(_) => ErrorCode::InvalidRequest,
        }
    }

    /// The `/rejected` document for a request that failed this way.
    pub fn to_response(&self, client_token: Option<String>, timestamp: i64) -> ErrorResponse {
        ErrorResponse::new(self.code(), self.to_string(), timestamp).with_client_token(client_token)
    }
}
