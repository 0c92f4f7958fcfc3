//! AWS IoT Jobs, the device side: the MQTT API on
//! `$aws/things/{thing}/jobs/…`, the execution state machine and its timers,
//! notifications and events (docs/aws-iot-core-behaviour.md §5.1).
//!
//! * [`device`]: GetPendingJobExecutions, StartNextPendingJobExecution,
//!   DescribeJobExecution and UpdateJobExecution as control-layer operations
//!   (the HTTPS `iot-jobs-data` API calls them too).
//! * [`state`]: the state machine's rules as plain functions.
//! * [`timers`]: what runs out with time: step and in-progress timeouts,
//!   rollout rates. Deadlines are stored with the executions, so they
//!   survive a restart, and read on the emulator's one
//!   [`Clock`](crate::clock::Clock).
//! * [`notify`]: `notify`, `notify-next` and the `$aws/events/job…` events,
//!   from a comparison of the state before and after each change.
//!
//! How a request flows: a connection hands a PUBLISH on a jobs topic to
//! [`JobsService`] (it claims every topic under `$aws/things/{thing}/jobs/`).
//! One worker task serves the requests in order; each reply goes to the
//! requesting client alone, subscribed or not (AWS: "your client is
//! automatically subscribed to the response message topics"), on the request
//! topic plus `/accepted` or `/rejected`. A topic that is none of the API's
//! is answered with `InvalidTopic` on its `/rejected` topic. A connection
//! with more than [`MAX_IN_FLIGHT_PER_CONNECTION`] requests unanswered is
//! answered `RequestThrottled`. After each request, each registry change
//! (whoever made it: the control plane, the CLI, another connection) and
//! each timer, the worker runs what is due and publishes the notifications
//! and events the change calls for.

pub(crate) mod device;
pub(crate) mod notify;
pub(crate) mod state;
pub(crate) mod timers;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use iotcore_model::jobs::{
    DescribeJobExecutionRequest, DescribeJobExecutionResponse, ErrorCode, ErrorResponse,
    GetPendingJobExecutionsRequest, GetPendingJobExecutionsResponse, JobsApi, JobsMessage,
    JobsTopic, JobsTopicKind, StartNextJobExecutionResponse, StartNextPendingJobExecutionRequest,
    UpdateJobExecutionRequest, UpdateJobExecutionResponse,
};
use iotcore_mqtt::topic::validate_aws_topic_name;
use serde_json::Value;
use tokio::sync::{mpsc, watch};

pub use device::{JobsDataError, PendingJobExecutions, UpdatedJobExecution};

use self::notify::Snapshot;
use crate::broker::Broker;
use crate::clock::Clock;
use crate::connection::stopped;
use crate::control::Control;
use crate::services::inflight::InFlight;
use crate::services::reply::{self, Audience};
use crate::services::{Request, Service};

/// Requests one connection may have unanswered before the next is answered
/// `RequestThrottled` (the emulator's limit; AWS's is a rate it does not
/// publish per connection).
pub(crate) const MAX_IN_FLIGHT_PER_CONNECTION: usize = 10;

/// The running jobs service; cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct JobsService {
    queue: mpsc::UnboundedSender<Request>,
    in_flight: Arc<InFlight>,
    broker: Arc<Broker>,
    clock: Clock,
}

impl JobsService {
    /// Starts the worker; `changes` announces registry changes; it stops
    /// when `closing` turns `true`.
    pub(crate) fn start(
        control: Control,
        broker: Arc<Broker>,
        changes: watch::Receiver<u64>,
        closing: watch::Receiver<bool>,
    ) -> JobsService {
        let (queue, requests) = mpsc::unbounded_channel();
        let in_flight = Arc::new(InFlight::new(MAX_IN_FLIGHT_PER_CONNECTION));
        let clock = control.clock().clone();
        let worker = Worker {
            control,
            broker: Arc::clone(&broker),
            in_flight: Arc::clone(&in_flight),
            snapshot: None,
        };
        tokio::spawn(worker.run(requests, changes, closing));
        JobsService {
            queue,
            in_flight,
            broker,
            clock,
        }
    }
}

impl Service for JobsService {
    /// Every topic under `$aws/things/{thing}/jobs/`.
    fn claims(&self, topic: &str) -> bool {
        JobsTopic::is_reserved(topic)
    }

    fn serve(&self, request: Request) {
        let connection = request.requester.connection;
        if !self.in_flight.try_acquire(connection) {
            tracing::info!(
                connection,
                topic = %request.topic,
                "jobs request refused: more than {MAX_IN_FLIGHT_PER_CONNECTION} unanswered on this connection"
            );
            let error = ErrorResponse::new(
                ErrorCode::RequestThrottled,
                format!(
                    "more than {MAX_IN_FLIGHT_PER_CONNECTION} jobs requests unanswered on this \
                     connection; wait for the replies"
                ),
                self.clock.unix_now(),
            )
            .with_client_token(client_token_of(&request.payload));
            answer(&self.broker, &request, false, &error.to_json());
            return;
        }
        if let Err(mpsc::error::SendError(request)) = self.queue.send(request) {
            tracing::debug!(
                topic = request.topic,
                "jobs request dropped: the emulator is stopping"
            );
            self.in_flight.release(connection);
        }
    }
}

/// The `clientToken` of a request payload, if it has one (also for
/// payloads the request type refuses, so that the error can carry it).
fn client_token_of(payload: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(payload).ok()?;
    value.get("clientToken")?.as_str().map(str::to_owned)
}

/// Sends `body` to the requester of `request`, on its topic plus
/// `/accepted` or `/rejected`.
fn answer(broker: &Broker, request: &Request, accepted: bool, body: &[u8]) {
    let suffix = if accepted { "accepted" } else { "rejected" };
    let topic = format!("{}/{suffix}", request.topic);
    if let Err(e) = validate_aws_topic_name(&topic) {
        tracing::info!(
            topic = request.topic,
            "jobs request not answered: its reply topic would be invalid ({e})"
        );
        return;
    }
    reply::send(
        broker,
        Some(&request.requester.session),
        Audience::Requester,
        topic,
        Bytes::copy_from_slice(body),
    );
}

/// Serves one request, a PUBLISH to `topic` with `payload`: the reply's
/// body and whether it was accepted. `iotcore qualify`'s server calls it too.
pub(crate) fn serve_request(control: &Control, topic: &str, payload: &[u8]) -> (bool, Vec<u8>) {
    let now = control.now();
    let token = client_token_of(payload);
    let refused = |code: ErrorCode, message: String| {
        let error = ErrorResponse::new(code, message, now).with_client_token(token.clone());
        (false, error.to_json())
    };
    let request_topic = topic;
    let topic = match JobsTopic::parse(request_topic) {
        Ok(t) if t.kind() == JobsTopicKind::Request && !t.api().is_notification() => t,
        Ok(_) => {
            return refused(
                ErrorCode::InvalidTopic,
                format!(
                    "{request_topic} is a topic the jobs service publishes to, not a request topic"
                ),
            );
        }
        Err(e) => return refused(ErrorCode::InvalidTopic, e.to_string()),
    };
    let thing = topic.thing();
    let result: Result<Vec<u8>, JobsDataError> = (|| match topic.api() {
        JobsApi::GetPending => {
            let request = GetPendingJobExecutionsRequest::from_json(payload).map_err(parse)?;
            let pending = control.get_pending_job_executions(thing)?;
            Ok(GetPendingJobExecutionsResponse {
                in_progress_jobs: pending.in_progress_jobs,
                queued_jobs: pending.queued_jobs,
                timestamp: now,
                client_token: request.client_token,
            }
            .to_json())
        }
        JobsApi::StartNext => {
            let request = StartNextPendingJobExecutionRequest::from_json(payload).map_err(parse)?;
            let execution = control.start_next_pending_job_execution(thing, &request)?;
            Ok(StartNextJobExecutionResponse {
                execution,
                timestamp: now,
                client_token: request.client_token,
            }
            .to_json())
        }
        JobsApi::Describe { job_id } => {
            let request = DescribeJobExecutionRequest::from_json(payload).map_err(parse)?;
            let execution = control.describe_thing_job_execution(
                thing,
                job_id,
                request.execution_number,
                request.include_job_document != Some(false),
            )?;
            Ok(DescribeJobExecutionResponse {
                execution,
                timestamp: now,
                client_token: request.client_token,
            }
            .to_json())
        }
        JobsApi::Update { job_id } => {
            let request = UpdateJobExecutionRequest::from_json(payload).map_err(parse)?;
            let updated = control.update_job_execution(thing, job_id, &request)?;
            Ok(UpdateJobExecutionResponse {
                execution_state: updated.execution_state,
                job_document: updated.job_document,
                timestamp: now,
                client_token: request.client_token,
            }
            .to_json())
        }
        JobsApi::Notify | JobsApi::NotifyNext => Err(JobsDataError {
            code: ErrorCode::InvalidTopic,
            message: "notifications are not requests".into(),
            execution_state: None,
        }),
    })();
    match result {
        Ok(body) => (true, body),
        Err(e) => {
            tracing::debug!(topic = request_topic, code = %e.code, "jobs request rejected: {}", e.message);
            let mut error =
                ErrorResponse::new(e.code, e.message, now).with_client_token(token.clone());
            error.execution_state = e.execution_state;
            (false, error.to_json())
        }
    }
}

fn parse(e: iotcore_model::jobs::JobsMessageError) -> JobsDataError {
    JobsDataError {
        code: e.code(),
        message: e.to_string(),
        execution_state: None,
    }
}

/// The worker's state.
struct Worker {
    control: Control,
    broker: Arc<Broker>,
    in_flight: Arc<InFlight>,
    /// What subscribers were last told; `None` until first read.
    snapshot: Option<Snapshot>,
}

impl Worker {
    async fn run(
        mut self,
        mut requests: mpsc::UnboundedReceiver<Request>,
        mut changes: watch::Receiver<u64>,
        mut closing: watch::Receiver<bool>,
    ) {
        let clock = self.control.clock().clone();
        let mut due = self.settle().await;
        loop {
            let wake = async {
                match due {
                    Some(at) => {
                        let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(at).unwrap_or(0));
                        clock.sleep_until(at).await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = stopped(&mut closing) => return,
                request = requests.recv() => match request {
                    Some(request) => self.serve(request).await,
                    None => return,
                },
                changed = changes.changed() => if changed.is_err() {
                    return;
                },
                () = wake => {}
            }
            due = self.settle().await;
        }
    }

    /// Serves one request and answers it.
    async fn serve(&mut self, request: Request) {
        let control = self.control.clone();
        let (request, (accepted, body)) = match tokio::task::spawn_blocking(move || {
            let reply = serve_request(&control, &request.topic, &request.payload);
            (request, reply)
        })
        .await
        {
            Ok(done) => done,
            Err(e) => {
                tracing::error!("a jobs request task failed: {e}");
                return;
            }
        };
        answer(&self.broker, &request, accepted, &body);
        self.in_flight.release(request.requester.connection);
    }

    /// Runs the timers that are due, then publishes what changed since
    /// subscribers were last told. Returns when a timer is due next.
    async fn settle(&mut self) -> Option<i64> {
        let control = self.control.clone();
        let before = self.snapshot.take();
        let result = tokio::task::spawn_blocking(move || {
            let due = control.run_job_timers();
            let after = Snapshot::load(&control.store);
            let now = control.now();
            let out = match (&before, &after) {
                (Some(before), Ok(after)) => notify::changes(
                    before,
                    after,
                    &control.store,
                    &|thing| control.arn("thing", thing),
                    now,
                ),
                _ => Vec::new(),
            };
            (due, after.ok().or(before), out)
        })
        .await;
        match result {
            Ok((due, snapshot, out)) => {
                self.snapshot = snapshot;
                for message in out {
                    reply::publish_json(&self.broker, message.topic, &message.body);
                }
                match due {
                    Ok(due) => due,
                    Err(e) => {
                        tracing::error!("the jobs timers did not run: {e}");
                        None
                    }
                }
            }
            Err(e) => {
                tracing::error!("the jobs timers task failed: {e}");
                None
            }
        }
    }
}
