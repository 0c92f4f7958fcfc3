//! The Jobs device API's reserved topics: building and parsing.
//!
//! ```text
//! $aws/things/{thing}/jobs/get[/accepted|/rejected]               GetPendingJobExecutions
//! $aws/things/{thing}/jobs/start-next[/accepted|/rejected]        StartNextPendingJobExecution
//! $aws/things/{thing}/jobs/{jobId|$next}/get[/accepted|/rejected] DescribeJobExecution
//! $aws/things/{thing}/jobs/{jobId}/update[/accepted|/rejected]    UpdateJobExecution
//! $aws/things/{thing}/jobs/notify                                 JobExecutionsChanged
//! $aws/things/{thing}/jobs/notify-next                            NextJobExecutionChanged
//! ```
//!
//! [`JobsTopic`] is both the builder ([`JobsTopic::new`], then
//! [`JobsTopic::to_topic`] or `Display`) and the result of
//! [`JobsTopic::parse`]. A topic under `$aws/things/{thing}/jobs/` that is
//! none of these is [`JobsTopicError::Unknown`]: AWS answers a request on it
//! with an `InvalidTopic` error. Source: AWS IoT developer guide, "Jobs
//! device MQTT API operations" (`jobs-mqtt-api.md`).

use std::fmt;

use crate::names::{NameError, validate_thing_name};

/// The job id DescribeJobExecution takes for "the next pending execution".
pub const NEXT_JOB_ID: &str = "$next";

/// Longest job id (CreateJob: 1 to 64 characters of `[a-zA-Z0-9_-]`).
pub const MAX_JOB_ID_LEN: usize = 64;

/// A job id AWS would refuse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid job id '{0}': use 1 to 64 characters of a-z, A-Z, 0-9, '_', '-'")]
pub struct JobIdError(pub String);

/// Checks a job id: 1 to 64 characters of `[a-zA-Z0-9_-]`.
pub fn validate_job_id(job_id: &str) -> Result<(), JobIdError> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-');
    if job_id.is_empty() || job_id.len() > MAX_JOB_ID_LEN || !job_id.chars().all(ok) {
        return Err(JobIdError(job_id.to_owned()));
    }
    Ok(())
}

/// Which operation (or notification) of the Jobs device API a topic is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobsApi<'a> {
    /// `…/jobs/get`: GetPendingJobExecutions.
    GetPending,
    /// `…/jobs/start-next`: StartNextPendingJobExecution.
    StartNext,
    /// `…/jobs/{jobId}/get`: DescribeJobExecution; the id may be
    /// [`NEXT_JOB_ID`] (`$next`).
    Describe {
        /// The job's id, or `$next`.
        job_id: &'a str,
    },
    /// `…/jobs/{jobId}/update`: UpdateJobExecution.
    Update {
        /// The job's id.
        job_id: &'a str,
    },
    /// `…/jobs/notify`: the service's list of pending executions changed
    /// ([`JobExecutionsChanged`](super::JobExecutionsChanged)).
    Notify,
    /// `…/jobs/notify-next`: the next execution to run changed
    /// ([`NextJobExecutionChanged`](super::NextJobExecutionChanged)).
    NotifyNext,
}

impl JobsApi<'_> {
    /// AWS's name of the operation or notification.
    pub fn name(&self) -> &'static str {
        match self {
            JobsApi::GetPending => "GetPendingJobExecutions",
            JobsApi::StartNext => "StartNextPendingJobExecution",
            JobsApi::Describe { .. } => "DescribeJobExecution",
            JobsApi::Update { .. } => "UpdateJobExecution",
            JobsApi::Notify => "JobExecutionsChanged",
            JobsApi::NotifyNext => "NextJobExecutionChanged",
        }
    }

    /// Whether this is a notification topic (`notify`, `notify-next`), which
    /// has no `/accepted` or `/rejected` topics.
    pub fn is_notification(&self) -> bool {
        matches!(self, JobsApi::Notify | JobsApi::NotifyNext)
    }

    /// The job id of a describe or update.
    pub fn job_id(&self) -> Option<&str> {
        match self {
            JobsApi::Describe { job_id } | JobsApi::Update { job_id } => Some(job_id),
            _ => None,
        }
    }
}

/// Which topic of an operation: the request, or one of the service's replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobsTopicKind {
    /// The request a client publishes (no suffix); for `notify` and
    /// `notify-next`, the notification topic itself.
    Request,
    /// `/accepted`: the service did it.
    Accepted,
    /// `/rejected`: the service refused, with an error document.
    Rejected,
}

impl JobsTopicKind {
    /// The last topic level, or `None` for a request.
    pub fn suffix(self) -> Option<&'static str> {
        match self {
            JobsTopicKind::Request => None,
            JobsTopicKind::Accepted => Some("accepted"),
            JobsTopicKind::Rejected => Some("rejected"),
        }
    }

    fn from_suffix(level: &str) -> Option<Self> {
        match level {
            "accepted" => Some(JobsTopicKind::Accepted),
            "rejected" => Some(JobsTopicKind::Rejected),
            _ => None,
        }
    }
}

/// Why a topic is not a Jobs topic, or a Jobs topic cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JobsTopicError {
    /// The topic does not start with `$aws/things/{thing}/jobs/`.
    #[error("'{topic}' is not a Jobs topic: Jobs topics start with $aws/things/<thing>/jobs/")]
    NotJobs {
        /// The topic.
        topic: String,
    },
    /// Under the Jobs prefix, but none of the service's topics (AWS answers
    /// `InvalidTopic`).
    #[error(
        "'{topic}' is not a Jobs API topic: expected …/jobs/<get|start-next|notify|notify-next>, \
         …/jobs/<jobId|$next>/get or …/jobs/<jobId>/update, with /accepted or /rejected for replies"
    )]
    Unknown {
        /// The topic.
        topic: String,
    },
    /// A thing name AWS does not accept.
    #[error(transparent)]
    InvalidThingName(#[from] NameError),
    /// A job id AWS does not accept (`$next` is for describe only).
    #[error(transparent)]
    InvalidJobId(#[from] JobIdError),
    /// `notify` and `notify-next` have no `/accepted` or `/rejected` topic.
    #[error("{api} is a notification: it has no /accepted or /rejected topic")]
    NotificationReply {
        /// The notification's name.
        api: &'static str,
    },
}

/// A Jobs device API topic: thing, operation and kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct JobsTopic<'a> {
    thing: &'a str,
    api: JobsApi<'a>,
    kind: JobsTopicKind,
}

impl<'a> JobsTopic<'a> {
    /// A Jobs topic; fails on an invalid thing name or job id (`$next` is
    /// accepted for describe only), or on a reply kind for a notification.
    pub fn new(
        thing: &'a str,
        api: JobsApi<'a>,
        kind: JobsTopicKind,
    ) -> Result<Self, JobsTopicError> {
        validate_thing_name(thing)?;
        match api {
            JobsApi::Describe { job_id } if job_id == NEXT_JOB_ID => {}
            JobsApi::Describe { job_id } | JobsApi::Update { job_id } => validate_job_id(job_id)?,
            _ => {}
        }
        if api.is_notification() && kind != JobsTopicKind::Request {
            return Err(JobsTopicError::NotificationReply { api: api.name() });
        }
        Ok(JobsTopic { thing, api, kind })
    }

    /// Whether `topic` is under `$aws/things/{thing}/jobs/` (a cheap test
    /// before [`JobsTopic::parse`]; such a topic that does not parse is an
    /// `InvalidTopic` for AWS).
    pub fn is_reserved(topic: &str) -> bool {
        Self::split(topic).is_some()
    }

    /// The thing and the levels after `jobs/`.
    fn split(topic: &str) -> Option<(&str, &str)> {
        let rest = topic.strip_prefix("$aws/things/")?;
        let (thing, rest) = rest.split_once('/')?;
        let rest = rest.strip_prefix("jobs/")?;
        Some((thing, rest))
    }

    /// Parses a topic name. [`JobsTopicError::NotJobs`] means the topic is
    /// not under `$aws/things/{thing}/jobs/`; the other errors mean it is,
    /// but is not one of the service's topics.
    pub fn parse(topic: &'a str) -> Result<Self, JobsTopicError> {
        let Some((thing, rest)) = Self::split(topic) else {
            return Err(JobsTopicError::NotJobs {
                topic: topic.to_owned(),
            });
        };
        let unknown = || JobsTopicError::Unknown {
            topic: topic.to_owned(),
        };
        let job_api = |job_id: &'a str, operation: &str| match operation {
            "get" => Ok(JobsApi::Describe { job_id }),
            "update" => Ok(JobsApi::Update { job_id }),
            _ => Err(unknown()),
        };
        let levels: Vec<&'a str> = rest.split('/').collect();
        let (api, kind) = match levels.as_slice() {
            [single] => {
                let api = match *single {
                    "get" => JobsApi::GetPending,
                    "start-next" => JobsApi::StartNext,
                    "notify" => JobsApi::Notify,
                    "notify-next" => JobsApi::NotifyNext,
                    _ => return Err(unknown()),
                };
                (api, JobsTopicKind::Request)
            }
            [first, second] => match (*first, JobsTopicKind::from_suffix(second)) {
                ("get", Some(kind)) => (JobsApi::GetPending, kind),
                ("start-next", Some(kind)) => (JobsApi::StartNext, kind),
                (_, Some(_)) => return Err(unknown()),
                (job_id, None) => (job_api(job_id, second)?, JobsTopicKind::Request),
            },
            [job_id, operation, suffix] => (
                job_api(job_id, operation)?,
                JobsTopicKind::from_suffix(suffix).ok_or_else(unknown)?,
            ),
            _ => return Err(unknown()),
        };
        JobsTopic::new(thing, api, kind)
    }

    /// The thing.
    pub fn thing(&self) -> &'a str {
        self.thing
    }

    /// The operation or notification.
    pub fn api(&self) -> JobsApi<'a> {
        self.api
    }

    /// The kind of topic.
    pub fn kind(&self) -> JobsTopicKind {
        self.kind
    }

    /// The same thing and operation with another kind (a request's reply
    /// topics); fails for a reply kind of a notification.
    pub fn with_kind(self, kind: JobsTopicKind) -> Result<Self, JobsTopicError> {
        JobsTopic::new(self.thing, self.api, kind)
    }

    /// The topic name.
    pub fn to_topic(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for JobsTopic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "$aws/things/{}/jobs/", self.thing)?;
        match self.api {
            JobsApi::GetPending => f.write_str("get")?,
            JobsApi::StartNext => f.write_str("start-next")?,
            JobsApi::Describe { job_id } => write!(f, "{job_id}/get")?,
            JobsApi::Update { job_id } => write!(f, "{job_id}/update")?,
            JobsApi::Notify => f.write_str("notify")?,
            JobsApi::NotifyNext => f.write_str("notify-next")?,
        }
        if let Some(suffix) = self.kind.suffix() {
            write!(f, "/{suffix}")?;
        }
        Ok(())
    }
}

/// The prefix of a thing's Jobs topics, `$aws/things/{thing}/jobs` (append
/// `/get/+`, `/start-next/+`, `/+/get/+`, `/+/update/+` for the reply filters
/// AWS's SDKs subscribe to).
pub fn jobs_topic_prefix(thing: &str) -> Result<String, JobsTopicError> {
    validate_thing_name(thing)?;
    Ok(format!("$aws/things/{thing}/jobs"))
}
