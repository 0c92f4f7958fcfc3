//! Why a Jobs request failed.

use std::fmt;

use iotcore_model::jobs::{
    ErrorCode, ErrorResponse, JobExecutionState, JobExecutionStatus, JobsTopicError,
};

use crate::error::{Error, ErrorKind};
use crate::service::{Rejection, ServiceError, ServiceErrorKind};

/// A failed Jobs request: which operation, for which thing and job, and why.
///
/// When the service refused ([`kind`](Self::kind) is
/// [`ServiceErrorKind::Rejected`]), [`code`](Self::code) is AWS's code
/// (`VersionMismatch`, `InvalidStateTransition`, …) and
/// [`execution_state`](Self::execution_state) the execution's state, which
/// AWS sends with `VersionMismatch` and `InvalidStateTransition`.
pub struct JobsError {
    inner: Box<Inner>,
}

struct Inner {
    operation: &'static str,
    thing: String,
    job_id: Option<String>,
    source: Source,
}

enum Source {
    /// The service framework's error, and the Jobs error reply when the
    /// service refused with one.
    Service(ServiceError, Option<ErrorResponse>),
    /// The thing name or job id cannot make a Jobs topic.
    Topic(JobsTopicError),
}

impl JobsError {
    pub(crate) fn service(
        operation: &'static str,
        thing: &str,
        job_id: Option<&str>,
        error: ServiceError,
    ) -> Self {
        let reply = error
            .rejection()
            .and_then(|rejection| rejection.decode::<ErrorResponse>().ok());
        JobsError {
            inner: Box::new(Inner {
                operation,
                thing: thing.to_owned(),
                job_id: job_id.map(str::to_owned),
                source: Source::Service(error, reply),
            }),
        }
    }

    pub(crate) fn topic(
        operation: &'static str,
        thing: &str,
        job_id: Option<&str>,
        error: JobsTopicError,
    ) -> Self {
        JobsError {
            inner: Box::new(Inner {
                operation,
                thing: thing.to_owned(),
                job_id: job_id.map(str::to_owned),
                source: Source::Topic(error),
            }),
        }
    }

    /// What kind of failure this is; an invalid thing name or job id is
    /// [`ServiceErrorKind::InvalidRequest`] (nothing was sent).
    pub fn kind(&self) -> ServiceErrorKind {
        match &self.inner.source {
            Source::Service(error, _) => error.kind(),
            Source::Topic(_) => ServiceErrorKind::InvalidRequest,
        }
    }

    /// AWS's operation: `GetPendingJobExecutions`, `UpdateJobExecution`, ….
    pub fn operation(&self) -> &'static str {
        self.inner.operation
    }

    /// The thing the request was for.
    pub fn thing(&self) -> &str {
        &self.inner.thing
    }

    /// The job the request was for (describe and update).
    pub fn job_id(&self) -> Option<&str> {
        self.inner.job_id.as_deref()
    }

    /// AWS's error code, when the service refused.
    pub fn code(&self) -> Option<ErrorCode> {
        self.error_response().map(|reply| reply.code)
    }

    /// The execution's state the service sent with its refusal
    /// (`VersionMismatch`, `InvalidStateTransition`).
    pub fn execution_state(&self) -> Option<&JobExecutionState> {
        self.error_response()?.execution_state.as_ref()
    }

    /// The service's whole error reply, when it refused with a Jobs error
    /// document.
    pub fn error_response(&self) -> Option<&ErrorResponse> {
        match &self.inner.source {
            Source::Service(_, reply) => reply.as_ref(),
            Source::Topic(_) => None,
        }
    }

    /// The refusal as the service framework read it.
    pub fn rejection(&self) -> Option<&Rejection> {
        self.service_error()?.rejection()
    }

    /// The service framework's error inside, if the request got that far.
    pub fn service_error(&self) -> Option<&ServiceError> {
        match &self.inner.source {
            Source::Service(error, _) => Some(error),
            Source::Topic(_) => None,
        }
    }

    /// The MQTT client's error, for [`ServiceErrorKind::Client`].
    pub fn client_error(&self) -> Option<&Error> {
        self.service_error()?.client_error()
    }

    /// True when the client was closed: nothing sent through it will go.
    pub fn is_closed(&self) -> bool {
        self.client_error()
            .is_some_and(|e| e.kind() == ErrorKind::Closed)
    }

    /// True when trying again may succeed: a timeout, a reply lost to a
    /// reconnect, a transient client failure, `RequestThrottled` or
    /// `InternalError`.
    pub fn is_retryable(&self) -> bool {
        self.service_error().is_some_and(ServiceError::is_retryable)
    }

    /// The terminal status the execution is in, when the service refused
    /// because it is over (canceled, timed out, removed, or finished):
    /// `InvalidStateTransition`, `TerminalStateReached` or `VersionMismatch`
    /// with a terminal `executionState`. A `TerminalStateReached` without
    /// `executionState` does not say which status: it reports
    /// [`JobExecutionStatus::Canceled`].
    pub fn terminal_status(&self) -> Option<JobExecutionStatus> {
        let reply = self.error_response()?;
        let state = reply.execution_state.as_ref().map(|s| s.status);
        match reply.code {
            ErrorCode::TerminalStateReached => Some(state.unwrap_or(JobExecutionStatus::Canceled)),
            ErrorCode::InvalidStateTransition | ErrorCode::VersionMismatch => {
                state.filter(|s| s.is_terminal())
            }
            _ => None,
        }
    }
}

impl fmt::Display for JobsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Jobs {} for thing '{}'",
            self.inner.operation, self.inner.thing
        )?;
        if let Some(job_id) = &self.inner.job_id {
            write!(f, ", job '{job_id}'")?;
        }
        match &self.inner.source {
            Source::Service(error, _) => write!(f, ": {}", error.detail()),
            Source::Topic(error) => write!(f, " was not sent: {error}"),
        }
    }
}

impl fmt::Debug for JobsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobsError")
            .field("operation", &self.inner.operation)
            .field("thing", &self.inner.thing)
            .field("job_id", &self.inner.job_id)
            .field("kind", &self.kind())
            .field("code", &self.code())
            .field("message", &self.to_string())
            .finish()
    }
}

impl std::error::Error for JobsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.inner.source {
            Source::Service(error, _) => Some(error),
            Source::Topic(error) => Some(error),
        }
    }
}
