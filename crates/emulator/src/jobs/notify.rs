//! What the jobs service publishes after a change, whoever made it (a
//! device, the control plane, the CLI from another process, a timer): the
//! `notify` and `notify-next` notifications and the `$aws/events/job…`
//! events. The service keeps a [`Snapshot`] of every thing's pending
//! executions and every job's status; after a change it takes a new one and
//! publishes what [`changes`] finds between the two.
//!
//! AWS's rules (`jobs-comm-notifications.md`, docs/aws-iot-core-behaviour.md
//! §5.1), each named by a test in this module:
//!
//! * **notify**, the list of pending executions (IN_PROGRESS before QUEUED,
//!   each oldest first, at most 10), is published when a new execution is
//!   queued (*list-on-queued*) or a pending one reaches a terminal status or
//!   is deleted (*list-on-terminal*). A QUEUED → IN_PROGRESS move publishes
//!   nothing (*list-not-on-start*): the docs' rule text says it would, their
//!   walkthrough publishes nothing, and the walkthrough is followed.
//! * **notify-next**, the first pending execution with its job document, is
//!   published whenever the first entry changes: a new QUEUED execution that
//!   is first (*next-on-first-queued*), a QUEUED → IN_PROGRESS move that makes
//!   an execution first (*next-on-start-becoming-first*), the first one
//!   leaving the list (*next-on-first-terminal*, `{"timestamp":…}` alone when
//!   nothing is left). A change behind the first entry publishes nothing
//!   (*next-not-behind-first*).
//! * **events**: `$aws/events/job/{jobId}/completed|canceled|deleted` when a
//!   job reaches that status or goes, and
//!   `$aws/events/jobExecution/{jobId}/{succeeded|failed|rejected|timed_out|
//!   removed|canceled|deleted}` when an execution does (`events-jobs.md`).

use std::collections::{BTreeMap, BTreeSet};

use iotcore_model::jobs::{JobExecutionStatus, JobExecutionsChanged, NextJobExecutionChanged};
use serde_json::{Value, json};

use super::device::{document, execution, model_status, pending_in_order, summary};
use crate::control::JobProcessDetails;
use crate::store::{ExecutionRecord, ExecutionStatus, JobRecord, JobStatus, Store, StoreError};

/// Most executions a `notify` lists (AWS: 10 without a scheduling configuration).
const MAX_LISTED: usize = 10;

/// An execution's identity: job, thing, number.
type Key = (String, String, i64);

fn key(e: &ExecutionRecord) -> Key {
    (e.job_id.clone(), e.thing_name.clone(), e.execution_number)
}

/// Every thing's pending executions, in AWS's order, and every job.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Snapshot {
    pending: BTreeMap<String, Vec<ExecutionRecord>>,
    jobs: BTreeMap<String, JobRecord>,
}

impl Snapshot {
    /// The store's state now.
    pub(crate) fn load(store: &Store) -> Result<Snapshot, StoreError> {
        let mut by_thing: BTreeMap<String, Vec<ExecutionRecord>> = BTreeMap::new();
        for e in store.executions_in(&[ExecutionStatus::Queued, ExecutionStatus::InProgress])? {
            by_thing.entry(e.thing_name.clone()).or_default().push(e);
        }
        let pending = by_thing
            .into_iter()
            .map(|(thing, executions)| (thing, pending_in_order(executions)))
            .collect();
        let jobs = store
            .list_jobs()?
            .into_iter()
            .map(|j| (j.job_id.clone(), j))
            .collect();
        Ok(Snapshot { pending, jobs })
    }

    fn pending_of(&self, thing: &str) -> &[ExecutionRecord] {
        self.pending.get(thing).map_or(&[], Vec::as_slice)
    }
}

/// One message to publish.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outgoing {
    /// Its topic.
    pub(crate) topic: String,
    /// Its JSON body.
    pub(crate) body: Value,
}

/// What the store says now about executions that left the pending lists.
pub(crate) trait Lookup {
    /// The execution of `job_id` numbered `number` on `thing`, if it still exists.
    fn execution(&self, job_id: &str, thing: &str, number: i64) -> Option<ExecutionRecord>;
    /// The executions of `job_id`.
    fn executions_of_job(&self, job_id: &str) -> Vec<ExecutionRecord>;
}

impl Lookup for Store {
    fn execution(&self, job_id: &str, thing: &str, number: i64) -> Option<ExecutionRecord> {
        match self.executions_of_thing(thing) {
            Ok(executions) => executions
                .into_iter()
                .find(|e| e.job_id == job_id && e.execution_number == number),
            Err(e) => {
                tracing::warn!("cannot read the executions of thing {thing}: {e}");
                None
            }
        }
    }

    fn executions_of_job(&self, job_id: &str) -> Vec<ExecutionRecord> {
        Store::executions_of_job(self, job_id).unwrap_or_else(|e| {
            tracing::warn!("cannot read the executions of job {job_id}: {e}");
            Vec::new()
        })
    }
}

/// The messages that take subscribers from `before` to `after`, at `now`
/// (unix seconds); `arn` names a thing's ARN.
pub(crate) fn changes(
    before: &Snapshot,
    after: &Snapshot,
    lookup: &dyn Lookup,
    arn: &dyn Fn(&str) -> String,
    now: i64,
) -> Vec<Outgoing> {
    let mut out = Vec::new();
    let things: BTreeSet<&String> = before.pending.keys().chain(after.pending.keys()).collect();
    for thing in things {
        let (old, new) = (before.pending_of(thing), after.pending_of(thing));
        let old_keys: BTreeSet<Key> = old.iter().map(key).collect();
        let new_keys: BTreeSet<Key> = new.iter().map(key).collect();
        let queued = new
            .iter()
            .any(|e| e.status == ExecutionStatus::Queued && !old_keys.contains(&key(e)));
        let left: Vec<&ExecutionRecord> =
            old.iter().filter(|e| !new_keys.contains(&key(e))).collect();
        for gone in &left {
            let now_is = lookup.execution(&gone.job_id, &gone.thing_name, gone.execution_number);
            out.push(execution_event(gone, now_is.as_ref(), arn, now));
        }
        if queued || !left.is_empty() {
            out.push(list_notification(thing, new, now));
        }
        if old.first().map(key) != new.first().map(key) {
            out.push(next_notification(thing, new.first(), after, now));
        }
    }
    for (job_id, job) in &before.jobs {
        match after.jobs.get(job_id) {
            None => out.push(job_event(job, "deleted", lookup, now)),
            Some(now_job) if now_job.status != job.status => {
                let operation = match now_job.status {
                    JobStatus::Completed => "completed",
                    JobStatus::Canceled => "canceled",
                    _ => continue,
                };
                out.push(job_event(now_job, operation, lookup, now));
            }
            Some(_) => {}
        }
    }
    out
}

fn list_notification(thing: &str, pending: &[ExecutionRecord], now: i64) -> Outgoing {
    let mut jobs: BTreeMap<JobExecutionStatus, Vec<_>> = BTreeMap::new();
    for e in pending.iter().take(MAX_LISTED) {
        jobs.entry(model_status(e.status))
            .or_default()
            .push(summary(e));
    }
    let body = JobExecutionsChanged {
        jobs,
        timestamp: now,
    };
    Outgoing {
        topic: format!("$aws/things/{thing}/jobs/notify"),
        body: serde_json::to_value(body).unwrap_or(Value::Null),
    }
}

fn next_notification(
    thing: &str,
    first: Option<&ExecutionRecord>,
    after: &Snapshot,
    now: i64,
) -> Outgoing {
    let body = NextJobExecutionChanged {
        execution: first.map(|e| execution(e, after.jobs.get(&e.job_id).map(document))),
        timestamp: now,
    };
    Outgoing {
        topic: format!("$aws/things/{thing}/jobs/notify-next"),
        body: serde_json::to_value(body).unwrap_or(Value::Null),
    }
}

/// `$aws/events/jobExecution/{jobId}/{operation}` for an execution that left
/// the pending list: its terminal status, or `deleted`.
fn execution_event(
    was: &ExecutionRecord,
    now_is: Option<&ExecutionRecord>,
    arn: &dyn Fn(&str) -> String,
    now: i64,
) -> Outgoing {
    let (operation, status, details) = match now_is {
        Some(e) => (
            e.status.as_str().to_ascii_lowercase(),
            e.status.as_str(),
            &e.status_details,
        ),
        None => (
            "deleted".to_owned(),
            was.status.as_str(),
            &was.status_details,
        ),
    };
    let mut body = json!({
        "eventType": "JOB_EXECUTION",
        "eventId": crate::ids::new_uuid(),
        "timestamp": now,
        "operation": operation,
        "jobId": was.job_id,
        "thingArn": arn(&was.thing_name),
        "status": status,
    });
    if !details.is_empty() {
        body["statusDetails"] = json!(details);
    }
    Outgoing {
        topic: format!("$aws/events/jobExecution/{}/{operation}", was.job_id),
        body,
    }
}

/// `$aws/events/job/{jobId}/{operation}`.
fn job_event(job: &JobRecord, operation: &str, lookup: &dyn Lookup, now: i64) -> Outgoing {
    let mut body = json!({
        "eventType": "JOB",
        "eventId": crate::ids::new_uuid(),
        "timestamp": now,
        "operation": operation,
        "jobId": job.job_id,
        "status": job.status.as_str(),
        "targetSelection": job.target_selection.as_str(),
        "targets": job.targets,
        "createdAt": job.created_at,
        "lastUpdatedAt": job.last_updated_at,
    });
    if let Some(description) = &job.description {
        body["description"] = json!(description);
    }
    if let Some(completed_at) = job.completed_at {
        body["completedAt"] = json!(completed_at);
    }
    if let Some(comment) = &job.comment {
        body["comment"] = json!(comment);
    }
    if operation != "deleted" {
        body["jobProcessDetails"] = json!(JobProcessDetails::count(
            &lookup.executions_of_job(&job.job_id)
        ));
    }
    Outgoing {
        topic: format!("$aws/events/job/{}/{operation}", job.job_id),
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{JobConfigs, TargetSelection};

    const NOW: i64 = 1_700_000_000;

    fn record(job: &str, status: ExecutionStatus, queued_at: i64) -> ExecutionRecord {
        let mut e = ExecutionRecord::queued(job, "dev", 1, queued_at);
        e.status = status;
        e
    }

    fn job(id: &str, status: JobStatus) -> JobRecord {
        JobRecord {
            job_id: id.into(),
            document: r#"{"step":1}"#.into(),
            document_source: None,
            description: None,
            targets: vec![],
            target_selection: TargetSelection::Snapshot,
            status,
            force_canceled: false,
            reason_code: None,
            comment: None,
            namespace_id: None,
            configs: JobConfigs::default(),
            created_at: 1,
            last_updated_at: 1,
            completed_at: None,
        }
    }

    /// Thing `dev` with these executions pending; every job IN_PROGRESS.
    fn snapshot(pending: &[ExecutionRecord]) -> Snapshot {
        let mut s = Snapshot::default();
        for e in pending {
            s.jobs
                .insert(e.job_id.clone(), job(&e.job_id, JobStatus::InProgress));
        }
        if !pending.is_empty() {
            s.pending
                .insert("dev".into(), pending_in_order(pending.to_vec()));
        }
        s
    }

    /// The store after the change: the executions that left the lists.
    struct Now(Vec<ExecutionRecord>);

    impl Lookup for Now {
        fn execution(&self, job_id: &str, _: &str, number: i64) -> Option<ExecutionRecord> {
            self.0
                .iter()
                .find(|e| e.job_id == job_id && e.execution_number == number)
                .cloned()
        }
        fn executions_of_job(&self, job_id: &str) -> Vec<ExecutionRecord> {
            self.0
                .iter()
                .filter(|e| e.job_id == job_id)
                .cloned()
                .collect()
        }
    }

    fn topics(before: &Snapshot, after: &Snapshot, now: &Now) -> Vec<String> {
        changes(before, after, now, &|t| format!("arn:thing/{t}"), NOW)
            .into_iter()
            .map(|o| o.topic)
            .collect()
    }

    const NOTIFY: &str = "$aws/things/dev/jobs/notify";
    const NEXT: &str = "$aws/things/dev/jobs/notify-next";

    #[test]
    fn list_on_queued_and_next_on_first_queued() {
        let j1 = record("j1", ExecutionStatus::Queued, 10);
        let out = changes(
            &snapshot(&[]),
            &snapshot(std::slice::from_ref(&j1)),
            &Now(vec![]),
            &|t| t.to_owned(),
            NOW,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].topic, NOTIFY);
        assert_eq!(
            out[0].body,
            json!({"timestamp": NOW, "jobs": {"QUEUED": [{
                "jobId": "j1", "queuedAt": 10, "lastUpdatedAt": 10,
                "versionNumber": 1, "executionNumber": 1
            }]}})
        );
        assert_eq!(out[1].topic, NEXT);
        assert_eq!(out[1].body["execution"]["jobId"], "j1");
        assert_eq!(out[1].body["execution"]["thingName"], "dev");
        assert_eq!(out[1].body["execution"]["jobDocument"], json!({"step": 1}));
        assert_eq!(out[1].body["execution"]["status"], "QUEUED");
    }

    #[test]
    fn next_not_behind_first_when_a_second_job_is_queued() {
        let j1 = record("j1", ExecutionStatus::Queued, 10);
        let j2 = record("j2", ExecutionStatus::Queued, 20);
        let before = snapshot(std::slice::from_ref(&j1));
        let after = snapshot(&[j1, j2]);
        assert_eq!(topics(&before, &after, &Now(vec![])), [NOTIFY]);
    }

    #[test]
    fn list_not_on_start_and_next_not_when_the_first_starts() {
        let j1 = record("j1", ExecutionStatus::Queued, 10);
        let mut started = j1.clone();
        started.status = ExecutionStatus::InProgress;
        started.version_number = 2;
        let out = topics(&snapshot(&[j1]), &snapshot(&[started]), &Now(vec![]));
        assert!(out.is_empty(), "QUEUED → IN_PROGRESS of the first: {out:?}");
    }

    #[test]
    fn next_on_start_becoming_first() {
        let j1 = record("j1", ExecutionStatus::Queued, 10);
        let j2 = record("j2", ExecutionStatus::Queued, 20);
        let mut j2_started = j2.clone();
        j2_started.status = ExecutionStatus::InProgress;
        let before = snapshot(&[j1.clone(), j2]);
        let after = snapshot(&[j1, j2_started]);
        assert_eq!(topics(&before, &after, &Now(vec![])), [NEXT]);
    }

    #[test]
    fn list_on_terminal_and_next_on_first_terminal_with_an_event() {
        let j1 = record("j1", ExecutionStatus::InProgress, 10);
        let j2 = record("j2", ExecutionStatus::Queued, 20);
        let mut done = j1.clone();
        done.status = ExecutionStatus::Succeeded;
        done.status_details.insert("result".into(), "ok".into());
        let before = snapshot(&[j1, j2.clone()]);
        let mut after = snapshot(&[j2]);
        after.jobs = before.jobs.clone();
        let out = changes(
            &before,
            &after,
            &Now(vec![done]),
            &|t| format!("arn:thing/{t}"),
            NOW,
        );
        let topics: Vec<&str> = out.iter().map(|o| o.topic.as_str()).collect();
        assert_eq!(
            topics,
            ["$aws/events/jobExecution/j1/succeeded", NOTIFY, NEXT]
        );
        assert_eq!(out[0].body["eventType"], "JOB_EXECUTION");
        assert_eq!(out[0].body["thingArn"], "arn:thing/dev");
        assert_eq!(out[0].body["status"], "SUCCEEDED");
        assert_eq!(out[0].body["statusDetails"], json!({"result": "ok"}));
        assert_eq!(out[2].body["execution"]["jobId"], "j2");
    }

    #[test]
    fn next_on_first_terminal_with_nothing_left_is_the_timestamp_alone() {
        let j1 = record("j1", ExecutionStatus::InProgress, 10);
        let mut timed_out = j1.clone();
        timed_out.status = ExecutionStatus::TimedOut;
        let out = changes(
            &snapshot(std::slice::from_ref(&j1)),
            &Snapshot {
                jobs: snapshot(&[j1]).jobs,
                ..Snapshot::default()
            },
            &Now(vec![timed_out]),
            &|t| t.to_owned(),
            NOW,
        );
        let bodies: BTreeMap<&str, &Value> =
            out.iter().map(|o| (o.topic.as_str(), &o.body)).collect();
        assert_eq!(bodies[NOTIFY], &json!({"timestamp": NOW, "jobs": {}}));
        assert_eq!(bodies[NEXT], &json!({"timestamp": NOW}));
        assert!(bodies.contains_key("$aws/events/jobExecution/j1/timed_out"));
    }

    #[test]
    fn a_deleted_execution_is_an_event_and_leaves_the_list() {
        let j1 = record("j1", ExecutionStatus::Queued, 10);
        let out = topics(&snapshot(&[j1]), &Snapshot::default(), &Now(vec![]));
        assert!(out.contains(&"$aws/events/jobExecution/j1/deleted".to_owned()));
        assert!(out.contains(&NOTIFY.to_owned()));
        assert!(out.contains(&"$aws/events/job/j1/deleted".to_owned()));
    }

    #[test]
    fn the_list_holds_at_most_ten_in_progress_first() {
        let mut pending: Vec<ExecutionRecord> = (0..12)
            .map(|i| record(&format!("q{i:02}"), ExecutionStatus::Queued, 100 + i))
            .collect();
        pending.push(record("run", ExecutionStatus::InProgress, 500));
        let out = changes(
            &snapshot(&pending[..11]),
            &snapshot(&pending),
            &Now(vec![]),
            &|t| t.to_owned(),
            NOW,
        );
        let list = &out.iter().find(|o| o.topic == NOTIFY).unwrap().body["jobs"];
        assert_eq!(list["IN_PROGRESS"][0]["jobId"], "run");
        assert_eq!(list["QUEUED"].as_array().unwrap().len(), 9);
        assert_eq!(list["QUEUED"][0]["jobId"], "q00");
    }

    #[test]
    fn job_events_on_completed_and_canceled() {
        let mut before = Snapshot::default();
        before
            .jobs
            .insert("a".into(), job("a", JobStatus::InProgress));
        before
            .jobs
            .insert("b".into(), job("b", JobStatus::InProgress));
        let mut after = Snapshot::default();
        let mut a = job("a", JobStatus::Completed);
        a.completed_at = Some(NOW);
        after.jobs.insert("a".into(), a);
        after.jobs.insert("b".into(), job("b", JobStatus::Canceled));
        let mut done = record("a", ExecutionStatus::Succeeded, 1);
        done.thing_name = "dev".into();
        let out = changes(&before, &after, &Now(vec![done]), &|t| t.to_owned(), NOW);
        let topics: Vec<&str> = out.iter().map(|o| o.topic.as_str()).collect();
        assert_eq!(
            topics,
            ["$aws/events/job/a/completed", "$aws/events/job/b/canceled"]
        );
        assert_eq!(out[0].body["eventType"], "JOB");
        assert_eq!(out[0].body["status"], "COMPLETED");
        assert_eq!(out[0].body["completedAt"], NOW);
        assert_eq!(
            out[0].body["jobProcessDetails"]["numberOfSucceededThings"],
            1
        );
    }
}
