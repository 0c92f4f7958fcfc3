//! The status of a job execution.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The status of a job execution, as AWS spells it on the wire
/// (`QUEUED`, `IN_PROGRESS`, …).
///
/// The device sets `IN_PROGRESS`, `SUCCEEDED`, `FAILED` and `REJECTED`; the
/// service sets `QUEUED`, `TIMED_OUT`, `REMOVED` and `CANCELED`. Every status
/// but `QUEUED` and `IN_PROGRESS` is terminal. Source: AWS IoT developer
/// guide, "Job execution states" (`iot-jobs-lifecycle.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobExecutionStatus {
    /// Waiting for the device to start it.
    Queued,
    /// The device is running it.
    InProgress,
    /// The device finished it successfully.
    Succeeded,
    /// The device failed it.
    Failed,
    /// The in-progress or step timer expired first.
    TimedOut,
    /// The device refused it.
    Rejected,
    /// The thing is no longer one of the job's targets.
    Removed,
    /// The job (or this execution) was canceled.
    Canceled,
}

impl JobExecutionStatus {
    /// Every status, in AWS's order.
    pub const ALL: [JobExecutionStatus; 8] = [
        JobExecutionStatus::Queued,
        JobExecutionStatus::InProgress,
        JobExecutionStatus::Succeeded,
        JobExecutionStatus::Failed,
        JobExecutionStatus::TimedOut,
        JobExecutionStatus::Rejected,
        JobExecutionStatus::Removed,
        JobExecutionStatus::Canceled,
    ];

    /// AWS's spelling: `QUEUED`, `IN_PROGRESS`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            JobExecutionStatus::Queued => "QUEUED",
            JobExecutionStatus::InProgress => "IN_PROGRESS",
            JobExecutionStatus::Succeeded => "SUCCEEDED",
            JobExecutionStatus::Failed => "FAILED",
            JobExecutionStatus::TimedOut => "TIMED_OUT",
            JobExecutionStatus::Rejected => "REJECTED",
            JobExecutionStatus::Removed => "REMOVED",
            JobExecutionStatus::Canceled => "CANCELED",
        }
    }

    /// Whether the execution is over: every status but `QUEUED` and
    /// `IN_PROGRESS`. Nothing can change a terminal execution.
    pub fn is_terminal(self) -> bool {
        !matches!(
            self,
            JobExecutionStatus::Queued | JobExecutionStatus::InProgress
        )
    }

    /// Whether a device may set this status with UpdateJobExecution
    /// (`IN_PROGRESS`, `SUCCEEDED`, `FAILED`, `REJECTED`); the service sets
    /// the others.
    pub fn is_set_by_device(self) -> bool {
        matches!(
            self,
            JobExecutionStatus::InProgress
                | JobExecutionStatus::Succeeded
                | JobExecutionStatus::Failed
                | JobExecutionStatus::Rejected
        )
    }
}

impl fmt::Display for JobExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of AWS's eight execution statuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not a job execution status: expected QUEUED, IN_PROGRESS, SUCCEEDED, FAILED, \
     TIMED_OUT, REJECTED, REMOVED or CANCELED"
)]
pub struct UnknownStatus(pub String);

impl FromStr for JobExecutionStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobExecutionStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}
