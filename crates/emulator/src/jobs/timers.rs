//! What runs out with time: an execution's step and in-progress timers
//! (TIMED_OUT, then maybe a retry), and a job's rollout rate (more things
//! reached each minute). The deadlines live in the store with the
//! executions and jobs, so a restarted emulator finds them again; the jobs
//! worker calls [`Control::run_job_timers`] after every change and when the
//! earliest deadline comes, on the emulator's clock.

use std::collections::{BTreeMap, BTreeSet};

use super::state::{is_due, rollout_allowance, service_move};
use crate::control::Control;
use crate::store::{ExecutionRecord, ExecutionStatus, JobStatus, StoreError};

fn earliest(a: Option<i64>, b: i64) -> Option<i64> {
    Some(a.map_or(b, |a| a.min(b)))
}

impl Control {
    /// Times out the executions whose timers ran out and queues the
    /// executions rollout rates now allow; returns when something is due
    /// next (unix seconds), if anything is.
    pub(crate) fn run_job_timers(&self) -> Result<Option<i64>, StoreError> {
        let _guard = self.lock_jobs();
        let now = self.now();
        let mut next = None;
        let mut changed_any = false;

        let mut due: BTreeMap<String, Vec<ExecutionRecord>> = BTreeMap::new();
        for e in self.store.executions_in(&[ExecutionStatus::InProgress])? {
            if is_due(&e, now) {
                due.entry(e.job_id.clone()).or_default().push(e);
            } else if let Some(deadline) = e.deadline() {
                next = earliest(next, deadline);
            }
        }
        for (job_id, mut executions) in due {
            let Some(mut job) = self.store.job(&job_id)? else {
                continue;
            };
            for e in &mut executions {
                tracing::info!(
                    job_id,
                    thing = e.thing_name,
                    execution_number = e.execution_number,
                    "job execution TIMED_OUT"
                );
                service_move(e, ExecutionStatus::TimedOut, now);
            }
            let job_changed = self.conclude(&mut job, &mut executions, now)?;
            self.store
                .save_job(job_changed.then_some(&job), &executions)?;
            changed_any = true;
        }

        for job in self.store.list_jobs()? {
            if job.status != JobStatus::InProgress {
                continue;
            }
            let pending = self.store.rollout_pending(&job.job_id)?;
            if pending.is_empty() {
                continue;
            }
            let executions = self.store.executions_of_job(&job.job_id)?;
            let reached: BTreeSet<&str> =
                executions.iter().map(|e| e.thing_name.as_str()).collect();
            let (allowed, tick) = rollout_allowance(&job, now).unwrap_or((usize::MAX, now));
            let room = allowed.saturating_sub(reached.len()).min(pending.len());
            let (now_queued, rest) = pending.split_at(room);
            if !now_queued.is_empty() {
                let queued: Vec<ExecutionRecord> = now_queued
                    .iter()
                    .map(|thing| {
                        let number = executions
                            .iter()
                            .filter(|e| &e.thing_name == thing)
                            .map(|e| e.execution_number)
                            .max()
                            .unwrap_or(0)
                            + 1;
                        ExecutionRecord::queued(&job.job_id, thing, number, now)
                    })
                    .collect();
                tracing::info!(
                    job_id = job.job_id,
                    queued = queued.len(),
                    waiting = rest.len(),
                    "rollout: executions queued"
                );
                self.store.save_job(None, &queued)?;
                self.store.set_rollout_pending(&job.job_id, rest)?;
                changed_any = true;
            }
            if !rest.is_empty() {
                next = earliest(next, tick);
            }
        }
        if changed_any {
            self.changed();
        }
        Ok(next)
    }
}
