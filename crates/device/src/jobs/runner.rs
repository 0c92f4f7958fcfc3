//! The job runner: fetch, run, report, notice cancellations, resume.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use iotcore_model::jobs::{
    DescribeJobExecutionRequest, ErrorCode, JobExecutionStatus, JobExecutionSummary,
    MAX_STEP_TIMEOUT_MINUTES, StatusDetails, UpdateJobExecutionRequest,
};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, sleep, sleep_until};

use super::{JobsClient, JobsError};
use crate::client::Client;
use crate::service::ServiceErrorKind;
use crate::status::ConnectionState;

/// How often the runner asks for pending jobs when no notification came,
/// unless [`JobRunner::poll_interval`] says otherwise: a safety net for a
/// notification the connection lost.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(300);

/// The `statusDetails` key under which the runner reports why a job failed
/// or was rejected.
pub const REASON_KEY: &str = "reason";

/// Longest `reason` the runner reports, in characters.
const MAX_REASON_CHARS: usize = 1024;

/// The shortest wait before trying a request again.
const RETRY_FLOOR: Duration = Duration::from_millis(100);

/// The longest wait between two attempts at a request that failed for a
/// passing reason.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// How a job ended, as the handler says: the status to report and its
/// details.
///
/// A handler that returns `Ok(())` succeeded; one that returns an error
/// failed, with the error's message under [`REASON_KEY`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobOutcome {
    status: JobExecutionStatus,
    details: StatusDetails,
}

impl JobOutcome {
    /// SUCCEEDED.
    pub fn succeeded() -> Self {
        JobOutcome {
            status: JobExecutionStatus::Succeeded,
            details: StatusDetails::new(),
        }
    }

    /// FAILED, with `reason` under [`REASON_KEY`].
    pub fn failed(reason: impl fmt::Display) -> Self {
        JobOutcome::succeeded()
            .with_status(JobExecutionStatus::Failed)
            .with_detail(REASON_KEY, detail_value(&reason.to_string()))
    }

    /// REJECTED (the device will not run this job), with `reason` under
    /// [`REASON_KEY`].
    pub fn rejected(reason: impl fmt::Display) -> Self {
        JobOutcome::succeeded()
            .with_status(JobExecutionStatus::Rejected)
            .with_detail(REASON_KEY, detail_value(&reason.to_string()))
    }

    /// The same outcome with one more status detail.
    pub fn with_detail(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }

    fn with_status(mut self, status: JobExecutionStatus) -> Self {
        self.status = status;
        self
    }

    /// The status reported: SUCCEEDED, FAILED or REJECTED.
    pub fn status(&self) -> JobExecutionStatus {
        self.status
    }

    /// The status details reported.
    pub fn details(&self) -> &StatusDetails {
        &self.details
    }
}

impl From<()> for JobOutcome {
    fn from((): ()) -> Self {
        JobOutcome::succeeded()
    }
}

/// `text` as a status detail value: AWS refuses control characters and
/// empty values, so those become spaces and `-`, and it is cut to
/// [`MAX_REASON_CHARS`].
fn detail_value(text: &str) -> String {
    let value: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_REASON_CHARS)
        .collect();
    if value.trim().is_empty() {
        "-".to_owned()
    } else {
        value
    }
}

/// One job execution handed to the application's handler: its document, a
/// progress reporter, and word of a cancellation.
pub struct Job<D> {
    id: String,
    execution_number: i64,
    document: D,
    status_details: StatusDetails,
    resumed: bool,
    reporter: Reporter,
    canceled: watch::Receiver<Option<JobExecutionStatus>>,
}

impl<D> Job<D> {
    /// The job's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Which execution of the job on this thing.
    pub fn execution_number(&self) -> i64 {
        self.execution_number
    }

    /// The job document.
    pub fn document(&self) -> &D {
        &self.document
    }

    /// The status details the service held when the runner took the job:
    /// for a resumed job, the last progress the device reported before it
    /// restarted.
    pub fn status_details(&self) -> &StatusDetails {
        &self.status_details
    }

    /// True when the execution was already IN_PROGRESS when the runner took
    /// it: the device was running it before a restart (or before a reply
    /// was lost). The handler should pick up where
    /// [`status_details`](Self::status_details) says it was.
    pub fn is_resumed(&self) -> bool {
        self.resumed
    }

    /// Reports progress: IN_PROGRESS with `details` (they replace the ones
    /// stored), and the runner's step timeout if it has one (the step timer
    /// starts again). A lost connection does not lose the report: it is
    /// sent again after the reconnect, and this waits for it. Fails when
    /// the service refuses; if the job is over (canceled, timed out), the
    /// cancellation is signalled too ([`canceled`](Self::canceled)).
    pub async fn progress<I, K, V>(&self, details: I) -> Result<(), JobsError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.report(details, self.reporter.step_timeout).await
    }

    /// Like [`progress`](Self::progress) with another step timeout: 1 to
    /// 10080 minutes, or [`CANCEL_STEP_TIMER`](super::CANCEL_STEP_TIMER)
    /// (-1) to stop the step timer.
    pub async fn progress_with_step_timeout<I, K, V>(
        &self,
        details: I,
        step_timeout_minutes: i64,
    ) -> Result<(), JobsError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.report(details, Some(step_timeout_minutes)).await
    }

    async fn report<I, K, V>(&self, details: I, step_timeout: Option<i64>) -> Result<(), JobsError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut request = UpdateJobExecutionRequest::new(JobExecutionStatus::InProgress);
        request.status_details = Some(
            details
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        request.step_timeout_in_minutes = step_timeout;
        request.execution_number = Some(self.execution_number);
        let result = update_until_answered(&self.reporter.jobs, &self.id, &request).await;
        if let Err(e) = &result {
            if let Some(status) = e.terminal_status() {
                self.reporter.canceled.send_replace(Some(status));
            }
        }
        result
    }

    /// True once the service ended the execution under the handler
    /// (canceled it, timed it out, removed the thing from the job).
    pub fn is_canceled(&self) -> bool {
        self.canceled.borrow().is_some()
    }

    /// Resolves when the service ends the execution under the handler, with
    /// the status it moved it to (CANCELED, TIMED_OUT, REMOVED…). A handler
    /// `select!`s on it to stop its work; the runner then reports nothing
    /// for the job (the service would refuse it).
    ///
    /// The runner learns of it from the Jobs notifications (and then asks
    /// the service), after a reconnect, and from a refused progress report.
    pub async fn canceled(&self) -> JobExecutionStatus {
        let mut canceled = self.canceled.clone();
        let status = canceled
            .wait_for(Option::is_some)
            .await
            .map(|status| *status);
        match status {
            Ok(Some(status)) => status,
            // The sender lives in this job's reporter: never dropped first.
            _ => std::future::pending().await,
        }
    }
}

impl<D> fmt::Debug for Job<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("id", &self.id)
            .field("execution_number", &self.execution_number)
            .field("resumed", &self.resumed)
            .field("canceled", &*self.canceled.borrow())
            .finish_non_exhaustive()
    }
}

/// What a job's reports go through.
struct Reporter {
    jobs: JobsClient,
    step_timeout: Option<i64>,
    canceled: Arc<watch::Sender<Option<JobExecutionStatus>>>,
}

/// Runs a thing's jobs with the application's handler, one at a time (or
/// [`concurrency`](Self::concurrency) at a time).
///
/// [`run`](Self::run) does, until the client is closed:
///
/// 1. **Fetch** the pending executions (GetPendingJobExecutions) at start,
///    on every `notify`/`notify-next` notification, after every reconnect,
///    when a job ends, and every [`poll_interval`](Self::poll_interval).
/// 2. **Take** the oldest: an IN_PROGRESS one first (the device was running
///    it before it restarted: it is resumed, [`Job::is_resumed`]), else the
///    oldest QUEUED one, moved to IN_PROGRESS with its version expected (so
///    two runners on one thing never both take it) and the step timeout.
/// 3. **Run** the handler with a [`Job`]: the document as `D` (a document
///    that does not decode is REJECTED with the reason), progress reports,
///    and a cancellation signal.
/// 4. **Report** the outcome: `Ok` → SUCCEEDED (or the [`JobOutcome`]
///    returned), `Err(e)` → FAILED with `e`'s message under [`REASON_KEY`],
///    a panic → FAILED. A lost connection does not lose the report: it is
///    sent again after the reconnect until the service answers (a repeat of
///    a report that already took is recognised and not an error). Nothing
///    is reported for a job the service canceled meanwhile.
///
/// Only then is the next job taken, so jobs run one after another in the
/// order the service queued them.
#[must_use = "a JobRunner does nothing until run"]
pub struct JobRunner<D = Value> {
    jobs: JobsClient,
    concurrency: usize,
    step_timeout: Option<i64>,
    poll_interval: Option<Duration>,
    _document: PhantomData<fn() -> D>,
}

impl<D> JobRunner<D> {
    /// A runner for `jobs`' thing: one job at a time, no step timeout,
    /// polling every [`DEFAULT_POLL_INTERVAL`].
    pub fn new(jobs: JobsClient) -> Self {
        JobRunner {
            jobs,
            concurrency: 1,
            step_timeout: None,
            poll_interval: Some(DEFAULT_POLL_INTERVAL),
            _document: PhantomData,
        }
    }

    /// Runs up to `jobs` jobs at once (at least 1).
    pub fn concurrency(mut self, jobs: usize) -> Self {
        self.concurrency = jobs.max(1);
        self
    }

    /// Sets a step timer of `minutes` (1 to 10080; clamped) when a job is
    /// taken and with every progress report: the service times the
    /// execution out (TIMED_OUT) if the next report does not come in time.
    pub fn step_timeout_minutes(mut self, minutes: u32) -> Self {
        self.step_timeout = Some(i64::from(minutes).clamp(1, MAX_STEP_TIMEOUT_MINUTES));
        self
    }

    /// How often to ask for pending jobs when nothing else prompts it;
    /// `None`: only on notifications, reconnects and finished jobs.
    pub fn poll_interval(mut self, interval: Option<Duration>) -> Self {
        self.poll_interval = interval;
        self
    }
}

/// A job taken: what its handler needs.
struct Taken {
    job_id: String,
    execution_number: i64,
    document: Option<Value>,
    status_details: StatusDetails,
    resumed: bool,
}

/// The runner's state between two steps of its loop.
struct Running {
    /// Each running job's cancellation signal, by job id; it has receivers
    /// (the job's and its task's) until the handler is done.
    jobs: HashMap<String, Arc<watch::Sender<Option<JobExecutionStatus>>>>,
    /// The jobs' tasks; each returns its job id.
    tasks: JoinSet<String>,
}

impl<D: DeserializeOwned + Send + Sync + 'static> JobRunner<D> {
    /// Runs jobs with `handler` until the client is closed (then `Ok`), as
    /// the [type's documentation](Self) says. Fails at once only when the
    /// thing name cannot make Jobs topics; requests that fail on the way are
    /// retried (with a growing delay, and after the reconnect).
    ///
    /// The handler returns `Ok(r)` with `r` anything that becomes a
    /// [`JobOutcome`] (`()` is SUCCEEDED), or an error whose message is
    /// reported with FAILED. Dropping this future stops the runner and
    /// every handler, and reports nothing: the service keeps the executions
    /// IN_PROGRESS, and the next runner resumes them.
    pub async fn run<H, F, R, E>(self, handler: H) -> Result<(), JobsError>
    where
        H: Fn(Job<D>) -> F + Send + Sync + 'static,
        F: Future<Output = Result<R, E>> + Send + 'static,
        R: Into<JobOutcome>,
        E: fmt::Display,
    {
        let handler = Arc::new(handler);
        let jobs = &self.jobs;
        let mut next_changes = jobs.listen_next_job_changes::<Value>()?;
        let mut list_changes = jobs.listen_job_list_changes()?;
        let mut status = jobs.client().status();
        let mut running = Running {
            jobs: HashMap::new(),
            tasks: JoinSet::new(),
        };
        let mut subscribed = false;
        let mut fetch_at = Some(Instant::now());
        let mut failures = 0u32;
        let mut suspects = HashSet::new();
        let mut poll_at = self.poll_interval.map(|p| Instant::now() + p);
        loop {
            let now = Instant::now();
            let room = running.jobs.len() < self.concurrency;
            if fetch_at.is_some_and(|at| at <= now) && (room || !subscribed) {
                // Subscribe to the notifications first, then fetch.
                let attempt = if subscribed {
                    self.fetch(&mut running, &handler).await
                } else {
                    jobs.subscribe_notifications().await
                };
                match attempt {
                    Ok(()) => {
                        failures = 0;
                        if subscribed {
                            fetch_at = None;
                        }
                        subscribed = true;
                    }
                    Err(e) if e.is_closed() => return Ok(()),
                    Err(e) => {
                        let delay = retry_delay(&e, &mut failures);
                        tracing::warn!(error = %e, retry_in = ?delay, "Jobs runner: will retry");
                        fetch_at = Some(Instant::now() + delay);
                    }
                }
                continue;
            }
            if !suspects.is_empty() {
                self.check(&running, std::mem::take(&mut suspects)).await;
            }
            let wake = [fetch_at.filter(|_| room || !subscribed), poll_at]
                .into_iter()
                .flatten()
                .min();
            tokio::select! {
                Some(done) = running.tasks.join_next(), if !running.tasks.is_empty() => {
                    if let Ok(job_id) = done {
                        running.jobs.remove(&job_id);
                    } else {
                        // A task that did not return (it cannot panic): keep
                        // only the jobs whose tasks still run.
                        running.jobs.retain(|_, signal| signal.receiver_count() > 0);
                    }
                    fetch_at = Some(Instant::now());
                }
                changed = next_changes.next() => {
                    let Some(changed) = changed else { return Ok(()) };
                    let next = changed.execution.map(|e| e.job_id);
                    suspects.extend(
                        running.jobs.keys().filter(|id| Some(*id) != next.as_ref()).cloned(),
                    );
                    fetch_at = Some(Instant::now());
                }
                changed = list_changes.next() => {
                    let Some(changed) = changed else { return Ok(()) };
                    let in_progress: HashSet<String> = changed
                        .jobs
                        .get(&JobExecutionStatus::InProgress)
                        .into_iter()
                        .flatten()
                        .map(|summary| summary.job_id.clone())
                        .collect();
                    suspects.extend(
                        running.jobs.keys().filter(|id| !in_progress.contains(*id)).cloned(),
                    );
                    fetch_at = Some(Instant::now());
                }
                changed = status.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    let state = status.borrow_and_update().clone();
                    match state {
                        ConnectionState::Closed => return Ok(()),
                        ConnectionState::Connected { .. } => {
                            // Notifications sent while offline are lost.
                            suspects.extend(running.jobs.keys().cloned());
                            fetch_at = Some(Instant::now());
                        }
                        _ => {}
                    }
                }
                () = sleep_until(wake.unwrap_or(now)), if wake.is_some() => {
                    let now = Instant::now();
                    if let (Some(interval), Some(at)) = (self.poll_interval, poll_at) {
                        if at <= now {
                            poll_at = Some(now + interval);
                            fetch_at = Some(fetch_at.map_or(now, |at| at.min(now)));
                        }
                    }
                }
            }
        }
    }

    /// Asks for the pending executions and takes as many as there is room
    /// for.
    async fn fetch<H, F, R, E>(
        &self,
        running: &mut Running,
        handler: &Arc<H>,
    ) -> Result<(), JobsError>
    where
        H: Fn(Job<D>) -> F + Send + Sync + 'static,
        F: Future<Output = Result<R, E>> + Send + 'static,
        R: Into<JobOutcome>,
        E: fmt::Display,
    {
        let pending = self.jobs.get_pending().await?;
        let candidates = pending
            .in_progress_jobs
            .iter()
            .map(|summary| (summary, true))
            .chain(pending.queued_jobs.iter().map(|summary| (summary, false)));
        for (summary, in_progress) in candidates {
            if running.jobs.len() >= self.concurrency {
                break;
            }
            if running.jobs.contains_key(&summary.job_id) {
                continue;
            }
            let taken = if in_progress {
                self.resume(summary).await?
            } else {
                self.take(summary).await?
            };
            if let Some(taken) = taken {
                self.spawn(running, handler, taken);
            }
        }
        Ok(())
    }

    /// Moves a QUEUED execution to IN_PROGRESS; `None` when another runner
    /// or the service changed it first.
    async fn take(&self, summary: &JobExecutionSummary) -> Result<Option<Taken>, JobsError> {
        let mut request = UpdateJobExecutionRequest::new(JobExecutionStatus::InProgress);
        request.expected_version = Some(summary.version_number);
        request.execution_number = Some(summary.execution_number);
        request.include_job_document = Some(true);
        request.include_job_execution_state = Some(true);
        request.step_timeout_in_minutes = self.step_timeout;
        let reply = match self.jobs.update::<Value>(&summary.job_id, request).await {
            Ok(reply) => reply,
            Err(e) if changed_first(&e) => {
                tracing::debug!(job = summary.job_id, error = %e, "job changed before it was taken");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let document = match reply.job_document {
            Some(document) => Some(document),
            None => {
                self.document(&summary.job_id, summary.execution_number)
                    .await?
            }
        };
        tracing::info!(job = summary.job_id, "job taken");
        Ok(Some(Taken {
            job_id: summary.job_id.clone(),
            execution_number: summary.execution_number,
            document,
            status_details: reply
                .execution_state
                .and_then(|state| state.status_details)
                .unwrap_or_default(),
            resumed: false,
        }))
    }

    /// Reads an IN_PROGRESS execution to run it again; `None` when it ended
    /// meanwhile.
    async fn resume(&self, summary: &JobExecutionSummary) -> Result<Option<Taken>, JobsError> {
        let request = DescribeJobExecutionRequest {
            execution_number: Some(summary.execution_number),
            include_job_document: Some(true),
            client_token: None,
        };
        let execution = match self.jobs.describe::<Value>(&summary.job_id, request).await {
            Ok(reply) => reply.execution,
            Err(e) if changed_first(&e) => None,
            Err(e) => return Err(e),
        };
        let Some(execution) = execution.filter(|e| e.status == JobExecutionStatus::InProgress)
        else {
            return Ok(None);
        };
        tracing::info!(job = summary.job_id, "resuming a job in progress");
        Ok(Some(Taken {
            job_id: execution.job_id,
            execution_number: execution.execution_number,
            document: execution.job_document,
            status_details: execution.status_details.unwrap_or_default(),
            resumed: true,
        }))
    }

    /// The job document of an execution, when a reply left it out.
    async fn document(
        &self,
        job_id: &str,
        execution_number: i64,
    ) -> Result<Option<Value>, JobsError> {
        let request = DescribeJobExecutionRequest {
            execution_number: Some(execution_number),
            include_job_document: Some(true),
            client_token: None,
        };
        let reply = self.jobs.describe::<Value>(job_id, request).await?;
        Ok(reply.execution.and_then(|e| e.job_document))
    }

    /// Starts a task that runs the handler on a job taken and reports how it
    /// ended.
    fn spawn<H, F, R, E>(&self, running: &mut Running, handler: &Arc<H>, taken: Taken)
    where
        H: Fn(Job<D>) -> F + Send + Sync + 'static,
        F: Future<Output = Result<R, E>> + Send + 'static,
        R: Into<JobOutcome>,
        E: fmt::Display,
    {
        let (signal, canceled) = watch::channel(None);
        let signal = Arc::new(signal);
        running
            .jobs
            .insert(taken.job_id.clone(), Arc::clone(&signal));
        let jobs = self.jobs.clone();
        let step_timeout = self.step_timeout;
        let handler = Arc::clone(handler);
        running.tasks.spawn(async move {
            let document = taken
                .document
                .ok_or_else(|| "the service sent no job document".to_owned())
                .and_then(|document| {
                    serde_json::from_value::<D>(document)
                        .map_err(|e| format!("the job document is not what this device runs: {e}"))
                });
            let outcome = match document {
                Err(reason) => JobOutcome::rejected(reason),
                Ok(document) => {
                    let job = Job {
                        id: taken.job_id.clone(),
                        execution_number: taken.execution_number,
                        document,
                        status_details: taken.status_details,
                        resumed: taken.resumed,
                        reporter: Reporter {
                            jobs: jobs.clone(),
                            step_timeout,
                            canceled: Arc::clone(&signal),
                        },
                        canceled: canceled.clone(),
                    };
                    let work = handler(job);
                    // The outcome as Send values, whatever R and E are.
                    let mut task = AbortOnDrop(tokio::spawn(async move {
                        work.await.map(Into::into).map_err(|e| e.to_string())
                    }));
                    match (&mut task.0).await {
                        Ok(Ok(outcome)) => outcome,
                        Ok(Err(e)) => JobOutcome::failed(e),
                        Err(e) if e.is_panic() => JobOutcome::failed("the job handler panicked"),
                        Err(_) => return taken.job_id,
                    }
                }
            };
            let ended = *canceled.borrow();
            // No receiver left: the runner knows the handler is done.
            drop(canceled);
            if let Some(status) = ended {
                tracing::info!(job = taken.job_id, %status, "job ended by the service: outcome not reported");
                return taken.job_id;
            }
            finish(&jobs, &taken.job_id, taken.execution_number, outcome).await;
            taken.job_id
        });
    }

    /// Asks the service about running jobs a notification or a reconnect
    /// made doubtful, and signals the ones it ended.
    async fn check(&self, running: &Running, suspects: HashSet<String>) {
        for job_id in suspects {
            let Some(signal) = running.jobs.get(&job_id) else {
                continue;
            };
            if signal.borrow().is_some() || signal.receiver_count() == 0 {
                // Known to be over, or its handler is done and the outcome
                // being reported.
                continue;
            }
            let request = DescribeJobExecutionRequest {
                include_job_document: Some(false),
                ..DescribeJobExecutionRequest::default()
            };
            let ended = match self.jobs.describe::<Value>(&job_id, request).await {
                Ok(reply) => reply
                    .execution
                    .map(|e| e.status)
                    .filter(|s| s.is_terminal()),
                Err(e) if e.code() == Some(ErrorCode::ResourceNotFound) => {
                    Some(JobExecutionStatus::Removed)
                }
                Err(e) => {
                    if e.terminal_status().is_none() {
                        tracing::debug!(job = job_id, error = %e, "could not check a running job");
                    }
                    e.terminal_status()
                }
            };
            if let Some(status) = ended {
                tracing::info!(job = job_id, %status, "job ended by the service while running");
                signal.send_replace(Some(status));
            }
        }
    }
}

/// Whether `e` says the execution changed (or ended, or went) before the
/// request: nothing to take.
fn changed_first(e: &JobsError) -> bool {
    matches!(
        e.code(),
        Some(
            ErrorCode::VersionMismatch
                | ErrorCode::InvalidStateTransition
                | ErrorCode::TerminalStateReached
                | ErrorCode::ResourceNotFound
        )
    )
}

/// Reports `outcome` until the service answers.
async fn finish(jobs: &JobsClient, job_id: &str, execution_number: i64, outcome: JobOutcome) {
    let mut request = UpdateJobExecutionRequest::new(outcome.status);
    request.status_details = Some(outcome.details);
    request.execution_number = Some(execution_number);
    match update_until_answered(jobs, job_id, &request).await {
        Ok(()) => tracing::info!(job = job_id, status = %outcome.status, "job finished"),
        Err(e) => match e.terminal_status() {
            // An attempt whose reply a reconnect lost took after all.
            Some(status) if status == outcome.status => {
                tracing::info!(job = job_id, %status, "job finished");
            }
            Some(status) => {
                tracing::info!(job = job_id, %status, "job ended by the service first: outcome not reported");
            }
            None => tracing::warn!(job = job_id, error = %e, "the job's outcome was not reported"),
        },
    }
}

/// Sends an update until the service answers: a failure for a passing
/// reason (timeout, reply lost to a reconnect, offline, throttled) is tried
/// again once connected, with a growing delay.
async fn update_until_answered(
    jobs: &JobsClient,
    job_id: &str,
    request: &UpdateJobExecutionRequest,
) -> Result<(), JobsError> {
    let mut failures = 0;
    loop {
        match jobs.update::<Value>(job_id, request.clone()).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_retryable() && !e.is_closed() => {
                tracing::debug!(job = job_id, error = %e, "job update: will retry");
                let delay = retry_delay(&e, &mut failures);
                if !connected(jobs.client()).await {
                    return Err(e);
                }
                sleep(delay).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Waits until the client is connected; false if it was closed.
async fn connected(client: &Client) -> bool {
    let mut status = client.status();
    match status
        .wait_for(|s| s.is_connected() || matches!(s, ConnectionState::Closed))
        .await
    {
        Ok(state) => state.is_connected(),
        Err(_) => false,
    }
}

/// The delay before trying again after `e`, counting it in `failures`: a
/// reply lost to a reconnect is tried again soon (the reconnect was the
/// trouble, and it is over), any other failure after 100 ms doubling with
/// each failure in a row, up to [`MAX_RETRY_DELAY`].
fn retry_delay(e: &JobsError, failures: &mut u32) -> Duration {
    if e.kind() == ServiceErrorKind::ConnectionLost {
        return RETRY_FLOOR;
    }
    *failures += 1;
    RETRY_FLOOR
        .saturating_mul(1 << failures.saturating_sub(1).min(10))
        .min(MAX_RETRY_DELAY)
}

/// A task aborted when its handle is dropped (a handler dies with its
/// runner).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_carry_their_status_and_a_clean_reason() {
        assert_eq!(JobOutcome::from(()).status(), JobExecutionStatus::Succeeded);
        let failed = JobOutcome::failed("disk full\nat /data");
        assert_eq!(failed.status(), JobExecutionStatus::Failed);
        assert_eq!(failed.details()[REASON_KEY], "disk full at /data");
        let rejected = JobOutcome::rejected("").with_detail("firmware", "1.2");
        assert_eq!(rejected.status(), JobExecutionStatus::Rejected);
        assert_eq!(rejected.details()[REASON_KEY], "-");
        assert_eq!(rejected.details()["firmware"], "1.2");
        let long = JobOutcome::failed("x".repeat(5000));
        assert_eq!(long.details()[REASON_KEY].chars().count(), MAX_REASON_CHARS);
    }

    #[test]
    fn jobs_runners_and_their_futures_can_move_between_tasks() {
        fn assert_send<T: Send>(_: &T) {}
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Job<serde_json::Value>>();
        assert_send_sync::<JobRunner<serde_json::Value>>();
        let job: Option<Job<serde_json::Value>> = None;
        if let Some(job) = &job {
            assert_send(&job.progress([("a", "b")]));
            assert_send(&job.canceled());
        }
        let jobs: Option<JobsClient> = None;
        if let Some(jobs) = jobs {
            assert_send(&jobs.get_pending());
            assert_send(
                &jobs
                    .runner::<serde_json::Value>()
                    .run(|_job| async { Ok::<_, JobsError>(()) }),
            );
        }
    }

    #[test]
    fn retries_wait_longer_each_time_up_to_a_bound_unless_a_reconnect_lost_the_reply() {
        use iotcore_model::jobs::JobsTopicError;
        let invalid = JobsError::topic(
            "UpdateJobExecution",
            "t",
            None,
            JobsTopicError::Unknown { topic: "x".into() },
        );
        let mut failures = 0;
        let delays: Vec<Duration> = (0..4)
            .map(|_| retry_delay(&invalid, &mut failures))
            .collect();
        let ms = Duration::from_millis;
        assert_eq!(delays, [ms(100), ms(200), ms(400), ms(800)]);
        for _ in 0..40 {
            retry_delay(&invalid, &mut failures);
        }
        assert_eq!(retry_delay(&invalid, &mut failures), MAX_RETRY_DELAY);

        let lost = JobsError::service(
            "UpdateJobExecution",
            "t",
            Some("j"),
            crate::service::ServiceError::new(
                "Jobs",
                "UpdateJobExecution",
                "$aws/things/t/jobs/j/update",
                crate::service::Detail::ConnectionLost(crate::service::Lost::FreshSession),
            ),
        );
        let before = failures;
        assert_eq!(retry_delay(&lost, &mut failures), RETRY_FLOOR);
        assert_eq!(failures, before, "a lost reply is not a failure in a row");
    }
}
