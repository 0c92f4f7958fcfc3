//! The job of `Job_Execution`: the emulator's own Jobs service (its request
//! handling, state machine and notifications) over a registry in memory that
//! holds the device's thing and the one job the case queues for it.
//!
//! The job is queued when the device first shows it is ready for jobs (it
//! subscribes to `notify` or `notify-next`, or sends a Jobs request), so that
//! a device that waits for `notify-next` hears of it, as from AWS when a job
//! is created while it listens.

use std::sync::Arc;

use iotcore_model::jobs::{JobsApi, JobsTopic, JobsTopicKind};
use serde_json::Value;

use crate::clock::Clock;
use crate::control::{Control, CreateJobRequest, CreateThingRequest};
use crate::jobs::notify::{self, Outgoing, Snapshot};
use crate::pki::Pki;
use crate::policy::ArnScope;
use crate::store::{Store, StoreError};

/// The id of the job the case queues.
pub const JOB_ID: &str = "device-advisor-job";

/// The job document queued when none is given: what a device that runs any
/// job can act on.
pub fn default_document() -> Value {
    serde_json::json!({
        "operation": "qualify",
        "description": "iotcore qualify's Job_Execution case: run this job and report SUCCEEDED"
    })
}

/// One case's Jobs service.
#[derive(Debug)]
pub(crate) struct CaseJobs {
    control: Control,
    document: Value,
    queued: bool,
    /// What the device's subscriptions were last told.
    snapshot: Snapshot,
}

/// What the server saw of a Jobs request and answered.
#[derive(Debug)]
pub(crate) struct Served {
    /// AWS's name of the operation.
    pub(crate) api: &'static str,
    /// The job the request named (`$next` included).
    pub(crate) job_id: Option<String>,
    /// The status an update asked for.
    pub(crate) status: Option<String>,
    /// The reply: its topic (`…/accepted` or `…/rejected`) and body.
    pub(crate) reply: Option<(String, Vec<u8>)>,
    /// Whether it was accepted.
    pub(crate) accepted: bool,
}

impl CaseJobs {
    /// A registry in memory, empty until [`CaseJobs::queue`], whose job
    /// timestamps read `clock`.
    pub(crate) fn new(
        pki: Arc<Pki>,
        document: Value,
        clock: Clock,
    ) -> Result<CaseJobs, StoreError> {
        let store = Store::open_in_memory()?;
        let control = Control::new(
            store,
            pki,
            ArnScope::default(),
            "localhost".to_owned(),
            None,
        )
        .with_clock(clock);
        Ok(CaseJobs {
            control,
            document,
            queued: false,
            snapshot: Snapshot::default(),
        })
    }

    /// Creates `thing` and queues the job for it, once: `Ok(Some(job id))`
    /// the first time, `Ok(None)` after.
    pub(crate) fn queue(&mut self, thing: &str) -> Result<Option<&'static str>, String> {
        if self.queued {
            return Ok(None);
        }
        self.queued = true;
        self.control
            .create_thing(CreateThingRequest {
                thing_name: thing.to_owned(),
                ..CreateThingRequest::default()
            })
            .map_err(|e| format!("the thing {thing:?} could not be created: {e}"))?;
        self.control
            .create_job(CreateJobRequest {
                job_id: JOB_ID.to_owned(),
                targets: vec![self.control.arn("thing", thing)],
                document: Some(self.document.to_string()),
                description: Some("Device Advisor's Job_Execution, offline".to_owned()),
                ..CreateJobRequest::default()
            })
            .map_err(|e| format!("the job could not be created: {e}"))?;
        Ok(Some(JOB_ID))
    }

    /// Serves a Jobs request, a PUBLISH to `topic`, as the Jobs service does.
    pub(crate) fn serve(&self, topic: &str, payload: &[u8]) -> Served {
        let parsed = JobsTopic::parse(topic).ok();
        let api = parsed.as_ref().map(JobsTopic::api);
        let status = match api {
            Some(JobsApi::Update { .. }) => serde_json::from_slice::<Value>(payload)
                .ok()
                .and_then(|v| v.get("status")?.as_str().map(str::to_owned)),
            _ => None,
        };
        let (accepted, body) = crate::jobs::serve_request(&self.control, topic, payload);
        let reply_kind = if accepted {
            JobsTopicKind::Accepted
        } else {
            JobsTopicKind::Rejected
        };
        let reply = parsed
            .and_then(|t| t.with_kind(reply_kind).ok())
            .map(|t| (t.to_topic(), body));
        Served {
            api: api.as_ref().map_or("not a Jobs API topic", JobsApi::name),
            job_id: api.as_ref().and_then(|a| a.job_id()).map(str::to_owned),
            status,
            reply,
            accepted,
        }
    }

    /// The notifications (`notify`, `notify-next`, events) of what changed
    /// since the last call.
    pub(crate) fn notifications(&mut self) -> Vec<Outgoing> {
        let after = match Snapshot::load(&self.control.store) {
            Ok(after) => after,
            Err(e) => {
                tracing::warn!("qualify: the jobs state could not be read: {e}");
                return Vec::new();
            }
        };
        let control = &self.control;
        let out = notify::changes(
            &self.snapshot,
            &after,
            &control.store,
            &|thing| control.arn("thing", thing),
            control.now(),
        );
        self.snapshot = after;
        out
    }

    /// Whether a subscription to `filter` by `thing` hears of jobs
    /// (`notify` or `notify-next`).
    pub(crate) fn listens(thing: &str, filter: &str) -> bool {
        [JobsApi::Notify, JobsApi::NotifyNext]
            .into_iter()
            .any(|api| {
                JobsTopic::new(thing, api, JobsTopicKind::Request).is_ok_and(|t| {
                    iotcore_mqtt::topic::matches(
                        filter,
                        &t.to_topic(),
                        iotcore_mqtt::topic::MatchMode::Aws,
                    )
                })
            })
    }
}
