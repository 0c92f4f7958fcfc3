//! Jobs and their executions: what CreateJob stored and where each thing
//! stands with it.
//!
//! The store keeps records; the rules (who may move an execution where, when
//! a job completes) are the control layer's.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Store, StoreError, conversion_error};

/// Declares a string enum stored and serialized by its AWS name.
macro_rules! aws_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant,)*
        }

        impl $name {
            /// AWS's name of the value.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownJobValue;
            fn from_str(s: &str) -> Result<Self, UnknownJobValue> {
                match s {
                    $($text => Ok($name::$variant),)*
                    _ => Err(UnknownJobValue {
                        kind: stringify!($name),
                        value: s.to_owned(),
                    }),
                }
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                value
                    .as_str()?
                    .parse()
                    .map_err(|e| FromSqlError::Other(Box::new(e)))
            }
        }
    };
}

/// A value that is not one of an enum's AWS names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a {kind}")]
pub struct UnknownJobValue {
    /// The enum.
    pub kind: &'static str,
    /// The value given.
    pub value: String,
}

aws_enum! {
    /// A job's status (AWS's `JobStatus`).
    JobStatus {
        /// Executions are queued or running.
        InProgress = "IN_PROGRESS",
        /// CancelJob canceled it.
        Canceled = "CANCELED",
        /// Every execution reached a terminal status.
        Completed = "COMPLETED",
        /// DeleteJob is deleting it.
        DeletionInProgress = "DELETION_IN_PROGRESS",
    }
}

aws_enum! {
    /// Whether a job runs on the targets of its creation only (`SNAPSHOT`) or
    /// also on things that join its target groups later (`CONTINUOUS`).
    TargetSelection {
        /// The things targeted at creation.
        Snapshot = "SNAPSHOT",
        /// Also things added to a target group later.
        Continuous = "CONTINUOUS",
    }
}

aws_enum! {
    /// A job execution's status (AWS's `JobExecutionStatus`).
    ExecutionStatus {
        /// Waiting for the device.
        Queued = "QUEUED",
        /// The device is working on it.
        InProgress = "IN_PROGRESS",
        /// The device succeeded.
        Succeeded = "SUCCEEDED",
        /// The device failed.
        Failed = "FAILED",
        /// A timer ran out.
        TimedOut = "TIMED_OUT",
        /// The device refused it.
        Rejected = "REJECTED",
        /// The thing is no longer a target.
        Removed = "REMOVED",
        /// The job or the execution was canceled.
        Canceled = "CANCELED",
    }
}

impl ExecutionStatus {
    /// Whether nothing moves the execution on from this status.
    pub fn is_terminal(self) -> bool {
        !matches!(self, ExecutionStatus::Queued | ExecutionStatus::InProgress)
    }
}

impl JobStatus {
    /// Whether the job is over (COMPLETED or CANCELED).
    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Completed | JobStatus::Canceled)
    }
}

/// The configurations CreateJob and UpdateJob take, as the JSON given.
/// They are stored and returned; acting on them is not the store's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobConfigs {
    /// `timeoutConfig`.
    pub timeout: Option<Value>,
    /// `jobExecutionsRolloutConfig`.
    pub rollout: Option<Value>,
    /// `abortConfig`.
    pub abort: Option<Value>,
    /// `jobExecutionsRetryConfig`.
    pub retry: Option<Value>,
    /// `presignedUrlConfig`.
    pub presigned_url: Option<Value>,
    /// `schedulingConfig`.
    pub scheduling: Option<Value>,
}

/// A job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    /// Its id.
    pub job_id: String,
    /// The job document.
    pub document: String,
    /// Where the document was read from, if not given inline.
    pub document_source: Option<String>,
    /// Its description.
    pub description: Option<String>,
    /// The thing and thing-group ARNs it targets.
    pub targets: Vec<String>,
    /// SNAPSHOT or CONTINUOUS.
    pub target_selection: TargetSelection,
    /// Its status.
    pub status: JobStatus,
    /// Whether it was canceled with `force`.
    pub force_canceled: bool,
    /// CancelJob's reason code.
    pub reason_code: Option<String>,
    /// CancelJob's comment.
    pub comment: Option<String>,
    /// The namespace given at creation.
    pub namespace_id: Option<String>,
    /// Timeout, rollout, abort, retry, presigned URL and scheduling settings.
    pub configs: JobConfigs,
    /// When it was created, unix seconds.
    pub created_at: i64,
    /// When it last changed, unix seconds.
    pub last_updated_at: i64,
    /// When it completed or was canceled, unix seconds.
    pub completed_at: Option<i64>,
}

/// One execution of a job on a thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionRecord {
    /// The job.
    pub job_id: String,
    /// The thing.
    pub thing_name: String,
    /// 1 for the first execution of the job on the thing, one more at each re-run.
    pub execution_number: i64,
    /// Its status.
    pub status: ExecutionStatus,
    /// The name/value pairs the device (or a cancel) reported.
    pub status_details: BTreeMap<String, String>,
    /// 1 when queued, one more at each change.
    pub version_number: i64,
    /// When it was queued, unix seconds.
    pub queued_at: i64,
    /// When it went IN_PROGRESS, unix seconds.
    pub started_at: Option<i64>,
    /// When it last changed, unix seconds.
    pub last_updated_at: i64,
    /// Whether it was canceled with `force` while IN_PROGRESS.
    pub force_canceled: bool,
    /// How many times it was retried.
    pub retry_attempt: i64,
    /// When the in-progress timer (the job's `timeoutConfig`) runs out, unix
    /// seconds; set when the execution goes IN_PROGRESS.
    pub in_progress_deadline: Option<i64>,
    /// When the step timer (the device's `stepTimeoutInMinutes`) runs out,
    /// unix seconds.
    pub step_deadline: Option<i64>,
    /// The order executions were queued in, across all jobs and things:
    /// assigned by the store when it first writes the execution (0 until then).
    pub queue_seq: i64,
}

impl ExecutionRecord {
    /// A QUEUED execution of `job_id` on `thing_name`, queued at `now`.
    pub fn queued(job_id: &str, thing_name: &str, execution_number: i64, now: i64) -> Self {
        ExecutionRecord {
            job_id: job_id.to_owned(),
            thing_name: thing_name.to_owned(),
            execution_number,
            status: ExecutionStatus::Queued,
            status_details: BTreeMap::new(),
            version_number: 1,
            queued_at: now,
            started_at: None,
            last_updated_at: now,
            force_canceled: false,
            retry_attempt: 0,
            in_progress_deadline: None,
            step_deadline: None,
            queue_seq: 0,
        }
    }

    /// When the first of its timers runs out, if one runs.
    pub fn deadline(&self) -> Option<i64> {
        match (self.in_progress_deadline, self.step_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

const JOB_COLUMNS: &str = "job_id, document, document_source, description, targets, \
    target_selection, status, force_canceled, reason_code, comment, namespace_id, timeout_config, \
    rollout_config, abort_config, retry_config, presigned_url_config, scheduling_config, \
    created_at, last_updated_at, completed_at";

const EXECUTION_COLUMNS: &str = "job_id, thing_name, execution_number, status, status_details, \
    version_number, queued_at, started_at, last_updated_at, force_canceled, retry_attempt, \
    in_progress_deadline, step_deadline, queue_seq";

fn json_column<T: serde::de::DeserializeOwned>(
    row: &Row<'_>,
    column: usize,
) -> rusqlite::Result<T> {
    let text: String = row.get(column)?;
    serde_json::from_str(&text).map_err(|e| conversion_error(column, e))
}

fn config_column(row: &Row<'_>, column: usize) -> rusqlite::Result<Option<Value>> {
    let text: Option<String> = row.get(column)?;
    text.map(|t| serde_json::from_str(&t).map_err(|e| conversion_error(column, e)))
        .transpose()
}

fn job_from_row(row: &Row<'_>) -> rusqlite::Result<JobRecord> {
    Ok(JobRecord {
        job_id: row.get(0)?,
        document: row.get(1)?,
        document_source: row.get(2)?,
        description: row.get(3)?,
        targets: json_column(row, 4)?,
        target_selection: row.get(5)?,
        status: row.get(6)?,
        force_canceled: row.get(7)?,
        reason_code: row.get(8)?,
        comment: row.get(9)?,
        namespace_id: row.get(10)?,
        configs: JobConfigs {
            timeout: config_column(row, 11)?,
            rollout: config_column(row, 12)?,
            abort: config_column(row, 13)?,
            retry: config_column(row, 14)?,
            presigned_url: config_column(row, 15)?,
            scheduling: config_column(row, 16)?,
        },
        created_at: row.get(17)?,
        last_updated_at: row.get(18)?,
        completed_at: row.get(19)?,
    })
}

fn execution_from_row(row: &Row<'_>) -> rusqlite::Result<ExecutionRecord> {
    Ok(ExecutionRecord {
        job_id: row.get(0)?,
        thing_name: row.get(1)?,
        execution_number: row.get(2)?,
        status: row.get(3)?,
        status_details: json_column(row, 4)?,
        version_number: row.get(5)?,
        queued_at: row.get(6)?,
        started_at: row.get(7)?,
        last_updated_at: row.get(8)?,
        force_canceled: row.get(9)?,
        retry_attempt: row.get(10)?,
        in_progress_deadline: row.get(11)?,
        step_deadline: row.get(12)?,
        queue_seq: row.get(13)?,
    })
}

fn to_json(value: &impl Serialize) -> rusqlite::Result<String> {
    serde_json::to_string(value).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

fn config_json(value: &Option<Value>) -> rusqlite::Result<Option<String>> {
    value.as_ref().map(to_json).transpose()
}

fn write_job(conn: &Connection, job: &JobRecord, insert: bool) -> Result<usize, StoreError> {
    // An UPDATE, not a REPLACE: replacing the row would delete it first and
    // take its executions with it (ON DELETE CASCADE).
    let sql = if insert {
        format!(
            "INSERT INTO jobs ({JOB_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
             ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20) ON CONFLICT (job_id) DO NOTHING"
        )
    } else {
        let sets: Vec<String> = JOB_COLUMNS
            .split(", ")
            .enumerate()
            .skip(1)
            .map(|(i, column)| format!("{} = ?{}", column.trim(), i + 1))
            .collect();
        format!("UPDATE jobs SET {} WHERE job_id = ?1", sets.join(", "))
    };
    let c = &job.configs;
    Ok(conn.execute(
        &sql,
        params![
            job.job_id,
            job.document,
            job.document_source,
            job.description,
            to_json(&job.targets)?,
            job.target_selection,
            job.status,
            job.force_canceled,
            job.reason_code,
            job.comment,
            job.namespace_id,
            config_json(&c.timeout)?,
            config_json(&c.rollout)?,
            config_json(&c.abort)?,
            config_json(&c.retry)?,
            config_json(&c.presigned_url)?,
            config_json(&c.scheduling)?,
            job.created_at,
            job.last_updated_at,
            job.completed_at,
        ],
    )?)
}

fn write_execution(conn: &Connection, e: &ExecutionRecord) -> Result<(), StoreError> {
    conn.execute(
        &format!(
            "INSERT OR REPLACE INTO job_executions ({EXECUTION_COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,
                     COALESCE((SELECT queue_seq FROM job_executions
                               WHERE job_id = ?1 AND thing_name = ?2 AND execution_number = ?3),
                              (SELECT COALESCE(MAX(queue_seq), 0) + 1 FROM job_executions)))"
        ),
        params![
            e.job_id,
            e.thing_name,
            e.execution_number,
            e.status,
            to_json(&e.status_details)?,
            e.version_number,
            e.queued_at,
            e.started_at,
            e.last_updated_at,
            e.force_canceled,
            e.retry_attempt,
            e.in_progress_deadline,
            e.step_deadline,
        ],
    )?;
    Ok(())
}

fn query_executions(
    conn: &Connection,
    filter: &str,
    key: &str,
) -> Result<Vec<ExecutionRecord>, StoreError> {
    let sql = format!(
        "SELECT {EXECUTION_COLUMNS} FROM job_executions WHERE {filter} = ?1
         ORDER BY job_id, thing_name, execution_number"
    );
    let rows = conn
        .prepare(&sql)?
        .query_map([key], execution_from_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

impl Store {
    /// Stores a new job and its first executions in one transaction. Fails
    /// with [`StoreError::JobExists`] if the id is taken.
    pub fn insert_job(
        &self,
        job: &JobRecord,
        executions: &[ExecutionRecord],
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if write_job(&tx, job, true)? == 0 {
            return Err(StoreError::JobExists(job.job_id.clone()));
        }
        for execution in executions {
            write_execution(&tx, execution)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Writes a changed job (if given) and new or changed executions in one
    /// transaction.
    pub fn save_job(
        &self,
        job: Option<&JobRecord>,
        executions: &[ExecutionRecord],
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if let Some(job) = job {
            write_job(&tx, job, false)?;
        }
        for execution in executions {
            write_execution(&tx, execution)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The job `job_id`, if it exists.
    pub fn job(&self, job_id: &str) -> Result<Option<JobRecord>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = ?1");
        Ok(self
            .conn()
            .query_row(&sql, [job_id], job_from_row)
            .optional()?)
    }

    /// Every job, sorted by id.
    pub fn list_jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        let conn = self.conn();
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY job_id");
        let jobs = conn
            .prepare(&sql)?
            .query_map([], job_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(jobs)
    }

    /// Deletes a job and its executions. Returns `false` if it did not exist.
    pub fn delete_job(&self, job_id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM job_executions WHERE job_id = ?1", [job_id])?;
        let deleted = tx.execute("DELETE FROM jobs WHERE job_id = ?1", [job_id])?;
        tx.commit()?;
        Ok(deleted > 0)
    }

    /// The executions of job `job_id`, by thing name and execution number.
    pub fn executions_of_job(&self, job_id: &str) -> Result<Vec<ExecutionRecord>, StoreError> {
        query_executions(&self.conn(), "job_id", job_id)
    }

    /// The executions on thing `thing_name`, by job id and execution number.
    pub fn executions_of_thing(
        &self,
        thing_name: &str,
    ) -> Result<Vec<ExecutionRecord>, StoreError> {
        query_executions(&self.conn(), "thing_name", thing_name)
    }

    /// Deletes one execution. Returns `false` if it did not exist.
    pub fn delete_execution(
        &self,
        job_id: &str,
        thing_name: &str,
        execution_number: i64,
    ) -> Result<bool, StoreError> {
        let deleted = self.conn().execute(
            "DELETE FROM job_executions
             WHERE job_id = ?1 AND thing_name = ?2 AND execution_number = ?3",
            params![job_id, thing_name, execution_number],
        )?;
        Ok(deleted > 0)
    }

    /// Every execution in one of `statuses`, by job id, thing and number.
    pub fn executions_in(
        &self,
        statuses: &[ExecutionStatus],
    ) -> Result<Vec<ExecutionRecord>, StoreError> {
        let conn = self.conn();
        let list: Vec<String> = statuses.iter().map(|s| format!("'{s}'")).collect();
        let sql = format!(
            "SELECT {EXECUTION_COLUMNS} FROM job_executions WHERE status IN ({})
             ORDER BY job_id, thing_name, execution_number",
            list.join(", ")
        );
        let rows = conn
            .prepare(&sql)?
            .query_map([], execution_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Sets the things job `job_id` has yet to queue an execution for, in
    /// the order they are to be queued (its rollout rate holds them back).
    pub fn set_rollout_pending(&self, job_id: &str, things: &[String]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "DELETE FROM job_rollout_pending WHERE job_id = ?1",
            [job_id],
        )?;
        for (position, thing) in things.iter().enumerate() {
            tx.execute(
                "INSERT INTO job_rollout_pending (job_id, thing_name, position) VALUES (?1, ?2, ?3)",
                params![job_id, thing, i64::try_from(position).unwrap_or(i64::MAX)],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The things job `job_id` has yet to queue an execution for, in order.
    pub fn rollout_pending(&self, job_id: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let things = conn
            .prepare(
                "SELECT thing_name FROM job_rollout_pending WHERE job_id = ?1 ORDER BY position",
            )?
            .query_map([job_id], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(things)
    }
}
