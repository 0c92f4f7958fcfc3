//! AWS IoT Jobs: the remote operations (firmware updates, configuration
//! rollouts, commands) the cloud queues for a device, and the device runs
//! and reports on.
//!
//! Two levels, pick the one that fits:
//!
//! * [`JobsClient`] (from [`Client::jobs`]): the Jobs device API's requests
//!   — [`get_pending`](JobsClient::get_pending),
//!   [`start_next`](JobsClient::start_next),
//!   [`describe`](JobsClient::describe) (with [`NEXT_JOB_ID`] for the next
//!   pending one), [`update`](JobsClient::update) — and its notifications,
//!   [`next_job_changes`](JobsClient::next_job_changes) (`notify-next`) and
//!   [`job_list_changes`](JobsClient::job_list_changes) (`notify`). The job
//!   document is the application's own serde type, or `serde_json::Value`.
//! * [`JobRunner`]: the loop every device writes by hand, done once. It
//!   fetches the next job (at start, on every notification, after every
//!   reconnect), hands it to the application's async handler with a
//!   progress reporter, reports the outcome, tells the handler when the
//!   cloud cancels the job, resumes a job the device was running before a
//!   restart, and never runs two at once unless asked.
//!
//! ```no_run
//! # async fn demo(client: iotcore::Client) -> Result<(), iotcore::jobs::JobsError> {
//! use iotcore::jobs::{Job, JobRunner};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct FirmwareUpdate {
//!     version: String,
//!     url: String,
//! }
//!
//! JobRunner::<FirmwareUpdate>::new(client.jobs())
//!     .step_timeout_minutes(10) // the service times a step out after 10 minutes
//!     .run(|job: Job<FirmwareUpdate>| async move {
//!         let update = job.document();
//!         job.progress([("step", "downloading")]).await?;
//!         tracing::info!(url = %update.url, "downloading");
//!         // ... download and verify ...
//!         job.progress([("step", "installing")]).await?;
//!         tracing::info!(version = %update.version, "installed");
//!         Ok::<_, iotcore::jobs::JobsError>(()) // SUCCEEDED; an Err is FAILED with its message
//!     })
//!     .await
//! # }
//! ```
//!
//! # How requests work
//!
//! The Jobs client is a typed layer over the [service framework](crate::service):
//! replies are matched by `clientToken`; the first request subscribes to the
//! wildcard reply filters `…/jobs/get/+`, `…/jobs/start-next/+`,
//! `…/jobs/+/get/+` and `…/jobs/+/update/+`, and the notification streams
//! to `…/jobs/notify` and `…/jobs/notify-next` (six subscriptions of AWS's
//! 50 per connection); each request is bounded by the handle's timeout;
//! a reply lost to a reconnect without the broker's session fails the
//! request at once with [`ServiceErrorKind::ConnectionLost`](crate::service::ServiceErrorKind::ConnectionLost).
//! Errors ([`JobsError`]) carry AWS's code ([`ErrorCode`]) and the
//! execution's state when the service refused.
//!
//! The request, reply and notification types are `iotcore-model`'s,
//! re-exported here.
//!
//! [`Client::jobs`]: crate::Client::jobs

mod error;
mod runner;
mod streams;

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::JobsError;
pub use iotcore_model::jobs::{
    CANCEL_STEP_TIMER, DescribeJobExecutionRequest, DescribeJobExecutionResponse, ErrorCode,
    ErrorResponse, GetPendingJobExecutionsRequest, GetPendingJobExecutionsResponse, JobExecution,
    JobExecutionState, JobExecutionStatus, JobExecutionSummary, JobExecutionsChanged,
    MAX_STEP_TIMEOUT_MINUTES, NEXT_JOB_ID, NextJobExecutionChanged, StartNextJobExecutionResponse,
    StartNextPendingJobExecutionRequest, StatusDetails, UpdateJobExecutionRequest,
    UpdateJobExecutionResponse,
};
pub use runner::{DEFAULT_POLL_INTERVAL, Job, JobOutcome, JobRunner, REASON_KEY};
pub use streams::{JobListChanges, NextJobChanges};

use iotcore_model::jobs::{JobsApi, JobsTopic, JobsTopicError, JobsTopicKind, jobs_topic_prefix};

use crate::client::Client;
use crate::service::{Correlation, Rejection, Request, Service, ServiceChannel};

/// How long a Jobs request waits for its reply unless
/// [`JobsClient::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = crate::service::DEFAULT_TIMEOUT;

/// The Jobs service, for the [service framework](crate::service).
static JOBS: Service = Service::new("Jobs", Correlation::ClientToken).with_advice(advice);

/// What to do about a refusal, by AWS's code.
fn advice(rejection: &Rejection) -> Option<&'static str> {
    Some(match rejection.error_code()? {
        "VersionMismatch" => {
            "the execution changed first; its state is in the error, retry from it"
        }
        "InvalidStateTransition" => {
            "the execution's status does not allow this (it may be over or canceled); see its executionState"
        }
        "TerminalStateReached" => "the execution is over",
        "ResourceNotFound" => "this thing has no such job execution",
        "RequestThrottled" => "too many requests; retry later",
        "InvalidRequest" | "InvalidJson" | "InvalidTopic" => "fix the request",
        _ => return None,
    })
}

/// A thing's jobs, reached through a [`Client`]'s connection.
///
/// Cheap to clone; every handle for the same thing on the same client shares
/// one set of subscriptions. See the [module documentation](self).
#[derive(Clone)]
pub struct JobsClient {
    client: Client,
    thing: String,
    /// The request and notification channels, or why the thing name cannot
    /// make Jobs topics.
    channels: Result<Channels, JobsTopicError>,
    timeout: Duration,
}

#[derive(Clone)]
struct Channels {
    requests: ServiceChannel,
    notifications: ServiceChannel,
}

impl JobsClient {
    pub(crate) fn new(client: Client, thing: String) -> Self {
        let channels = jobs_topic_prefix(&thing).map(|prefix| Channels {
            requests: ServiceChannel::new(
                &client,
                &JOBS,
                ["get/+", "start-next/+", "+/get/+", "+/update/+"]
                    .map(|tail| format!("{prefix}/{tail}")),
            ),
            notifications: ServiceChannel::new(
                &client,
                &JOBS,
                ["notify", "notify-next"].map(|tail| format!("{prefix}/{tail}")),
            ),
        });
        JobsClient {
            client,
            thing,
            channels,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same handle with another per-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The thing whose jobs these are.
    pub fn thing(&self) -> &str {
        &self.thing
    }

    /// The client the requests go through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// GetPendingJobExecutions: the thing's executions IN_PROGRESS and
    /// QUEUED, each list oldest first.
    pub async fn get_pending(&self) -> Result<GetPendingJobExecutionsResponse, JobsError> {
        self.call(
            JobsApi::GetPending,
            GetPendingJobExecutionsRequest::default(),
        )
        .await
    }

    /// StartNextPendingJobExecution: moves the next pending execution (an
    /// IN_PROGRESS one first, else the oldest QUEUED) to IN_PROGRESS, with
    /// the request's status details and step timer, and returns it with its
    /// job document as `D`; `execution` is `None` when nothing is pending.
    pub async fn start_next<D: DeserializeOwned>(
        &self,
        request: StartNextPendingJobExecutionRequest,
    ) -> Result<StartNextJobExecutionResponse<D>, JobsError> {
        self.call(JobsApi::StartNext, request).await
    }

    /// DescribeJobExecution of `job_id`, or with [`NEXT_JOB_ID`] of the next
    /// pending execution (`execution` is then `None` when nothing is
    /// pending). The job document is included unless the request says
    /// `include_job_document: Some(false)`.
    pub async fn describe<D: DeserializeOwned>(
        &self,
        job_id: &str,
        request: DescribeJobExecutionRequest,
    ) -> Result<DescribeJobExecutionResponse<D>, JobsError> {
        self.call(JobsApi::Describe { job_id }, request).await
    }

    /// UpdateJobExecution of `job_id`: its new status (IN_PROGRESS,
    /// SUCCEEDED, FAILED or REJECTED), details, step timer, and with
    /// `expected_version` the version it must be at (else `VersionMismatch`).
    /// An execution that is over refuses with `InvalidStateTransition`
    /// ([`JobsError::terminal_status`]).
    pub async fn update<D: DeserializeOwned>(
        &self,
        job_id: &str,
        request: UpdateJobExecutionRequest,
    ) -> Result<UpdateJobExecutionResponse<D>, JobsError> {
        self.call(JobsApi::Update { job_id }, request).await
    }

    /// A stream of the `notify-next` notifications from now on, with the job
    /// document as `D`. Resolves once the notification topics are
    /// subscribed, so nothing published afterwards is missed.
    pub async fn next_job_changes<D>(&self) -> Result<NextJobChanges<D>, JobsError>
    where
        D: DeserializeOwned + Send + 'static,
    {
        let changes = self.listen_next_job_changes()?;
        self.subscribe_notifications().await?;
        Ok(changes)
    }

    /// A stream of the `notify` notifications from now on; like
    /// [`next_job_changes`](Self::next_job_changes).
    pub async fn job_list_changes(&self) -> Result<JobListChanges, JobsError> {
        let changes = self.listen_job_list_changes()?;
        self.subscribe_notifications().await?;
        Ok(changes)
    }

    /// Unsubscribes from the Jobs reply and notification topics, for an
    /// application done with this thing's jobs. The next request or stream
    /// subscribes again; open streams stay open but receive nothing
    /// meanwhile.
    pub async fn unsubscribe(&self) -> Result<(), JobsError> {
        let channels = self.channels("unsubscribe", None)?;
        for channel in [&channels.requests, &channels.notifications] {
            channel
                .clone()
                .with_timeout(self.timeout)
                .unsubscribe()
                .await
                .map_err(|e| JobsError::service("unsubscribe", &self.thing, None, e))?;
        }
        Ok(())
    }

    /// A [`JobRunner`] for this thing's jobs, with the job document as `D`.
    pub fn runner<D>(&self) -> JobRunner<D> {
        JobRunner::new(self.clone())
    }

    /// The notify-next stream, without subscribing.
    pub(crate) fn listen_next_job_changes<D>(&self) -> Result<NextJobChanges<D>, JobsError>
    where
        D: DeserializeOwned + Send + 'static,
    {
        let channels = self.channels("NextJobExecutionChanged", None)?;
        Ok(NextJobChanges::new(
            channels.notifications.listen(streams::next_changed::<D>),
        ))
    }

    /// The notify stream, without subscribing.
    pub(crate) fn listen_job_list_changes(&self) -> Result<JobListChanges, JobsError> {
        let channels = self.channels("JobExecutionsChanged", None)?;
        Ok(JobListChanges::new(
            channels.notifications.listen(streams::list_changed),
        ))
    }

    /// Subscribes to the notification topics within the timeout.
    pub(crate) async fn subscribe_notifications(&self) -> Result<(), JobsError> {
        let operation = "subscribe";
        self.channels(operation, None)?
            .notifications
            .clone()
            .with_timeout(self.timeout)
            .subscribe()
            .await
            .map_err(|e| JobsError::service(operation, &self.thing, None, e))
    }

    fn channels(
        &self,
        operation: &'static str,
        job_id: Option<&str>,
    ) -> Result<&Channels, JobsError> {
        self.channels
            .as_ref()
            .map_err(|e| JobsError::topic(operation, &self.thing, job_id, e.clone()))
    }

    /// One request of `api` with `body` (its `clientToken` set by the
    /// framework), and its typed reply.
    async fn call<T: DeserializeOwned>(
        &self,
        api: JobsApi<'_>,
        body: impl Serialize,
    ) -> Result<T, JobsError> {
        let (operation, job_id) = (api.name(), api.job_id());
        let channel = self.channels(operation, job_id)?.requests.clone();
        let topic = JobsTopic::new(&self.thing, api, JobsTopicKind::Request)
            .map_err(|e| JobsError::topic(operation, &self.thing, job_id, e))?;
        channel
            .with_timeout(self.timeout)
            .call(Request::new(operation, topic.to_topic(), body))
            .await
            .map_err(|e| JobsError::service(operation, &self.thing, job_id, e))
    }
}

impl std::fmt::Debug for JobsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobsClient")
            .field("thing", &self.thing)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
