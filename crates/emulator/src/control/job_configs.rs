//! The configurations CreateJob and UpdateJob take (timeout, rollout, abort,
//! retry, presigned URL, scheduling), with the ranges AWS's model gives.
//!
//! They are checked, stored and returned. The timeout, rollout, abort and
//! retry configurations act (the emulator's jobs service runs them); no
//! presigned URL is made and scheduled jobs start at once.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ControlError;

/// AWS's `timeoutConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TimeoutConfig {
    /// Minutes an execution may stay IN_PROGRESS (1 to 10080).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_progress_timeout_in_minutes: Option<i64>,
}

/// AWS's `jobExecutionsRolloutConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobExecutionsRolloutConfig {
    /// Executions notified per minute at most (1 to 1000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum_per_minute: Option<i64>,
    /// An increasing rate instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exponential_rate: Option<ExponentialRolloutRate>,
}

/// AWS's `exponentialRate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExponentialRolloutRate {
    /// The starting rate (1 to 1000).
    pub base_rate_per_minute: i64,
    /// The factor the rate grows by (1.1 to 5).
    pub increment_factor: f64,
    /// When the rate grows.
    pub rate_increase_criteria: RateIncreaseCriteria,
}

/// AWS's `rateIncreaseCriteria`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateIncreaseCriteria {
    /// After this many things were notified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number_of_notified_things: Option<i64>,
    /// After this many things succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number_of_succeeded_things: Option<i64>,
}

/// AWS's `abortConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AbortConfig {
    /// The criteria, any of which aborts the job.
    pub criteria_list: Vec<AbortCriteria>,
}

/// One abort criterion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AbortCriteria {
    /// FAILED, REJECTED, TIMED_OUT or ALL.
    pub failure_type: String,
    /// CANCEL.
    pub action: String,
    /// Percent of executed things that failed so (at most 100).
    pub threshold_percentage: f64,
    /// Executed things needed before the criterion applies (at least 1).
    pub min_number_of_executed_things: i64,
}

/// AWS's `jobExecutionsRetryConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobExecutionsRetryConfig {
    /// How often to retry after which failure.
    pub criteria_list: Vec<RetryCriteria>,
}

/// One retry criterion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryCriteria {
    /// FAILED, TIMED_OUT or ALL.
    pub failure_type: String,
    /// Retries (0 to 10; at most 10 in all criteria together).
    pub number_of_retries: i64,
}

/// AWS's `presignedUrlConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PresignedUrlConfig {
    /// The role that grants access to the S3 objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// How long the URLs are valid (60 to 3600 seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in_sec: Option<i64>,
}

fn in_range(name: &str, value: i64, low: i64, high: i64) -> Result<(), ControlError> {
    if (low..=high).contains(&value) {
        Ok(())
    } else {
        Err(ControlError::invalid(format!(
            "{name} is {value}; give {low} to {high}"
        )))
    }
}

fn one_of(name: &str, value: &str, allowed: &[&str]) -> Result<(), ControlError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(ControlError::invalid(format!(
            "{name} {value:?} is not one of {}",
            allowed.join(", ")
        )))
    }
}

impl TimeoutConfig {
    pub(crate) fn validate(&self) -> Result<(), ControlError> {
        if let Some(minutes) = self.in_progress_timeout_in_minutes {
            in_range("inProgressTimeoutInMinutes", minutes, 1, 10080)?;
        }
        Ok(())
    }
}

impl JobExecutionsRolloutConfig {
    pub(crate) fn validate(&self) -> Result<(), ControlError> {
        if let Some(rate) = self.maximum_per_minute {
            in_range("maximumPerMinute", rate, 1, 1000)?;
        }
        if let Some(rate) = &self.exponential_rate {
            in_range("baseRatePerMinute", rate.base_rate_per_minute, 1, 1000)?;
            if !(1.1..=5.0).contains(&rate.increment_factor) {
                return Err(ControlError::invalid(format!(
                    "incrementFactor is {}; give 1.1 to 5",
                    rate.increment_factor
                )));
            }
            let c = &rate.rate_increase_criteria;
            match (c.number_of_notified_things, c.number_of_succeeded_things) {
                (Some(n), None) => in_range("numberOfNotifiedThings", n, 1, i64::MAX)?,
                (None, Some(n)) => in_range("numberOfSucceededThings", n, 1, i64::MAX)?,
                _ => {
                    return Err(ControlError::invalid(
                        "rateIncreaseCriteria takes one of numberOfNotifiedThings and \
                         numberOfSucceededThings",
                    ));
                }
            }
        }
        Ok(())
    }
}

impl AbortConfig {
    pub(crate) fn validate(&self) -> Result<(), ControlError> {
        if self.criteria_list.is_empty() {
            return Err(ControlError::invalid(
                "abortConfig.criteriaList needs at least one criterion",
            ));
        }
        for c in &self.criteria_list {
            one_of(
                "failureType",
                &c.failure_type,
                &["FAILED", "REJECTED", "TIMED_OUT", "ALL"],
            )?;
            one_of("action", &c.action, &["CANCEL"])?;
            if !(0.0..=100.0).contains(&c.threshold_percentage) {
                return Err(ControlError::invalid(format!(
                    "thresholdPercentage is {}; give 0 to 100",
                    c.threshold_percentage
                )));
            }
            in_range(
                "minNumberOfExecutedThings",
                c.min_number_of_executed_things,
                1,
                i64::MAX,
            )?;
        }
        Ok(())
    }
}

impl JobExecutionsRetryConfig {
    pub(crate) fn validate(&self) -> Result<(), ControlError> {
        let mut total = 0;
        for c in &self.criteria_list {
            one_of(
                "failureType",
                &c.failure_type,
                &["FAILED", "TIMED_OUT", "ALL"],
            )?;
            in_range("numberOfRetries", c.number_of_retries, 0, 10)?;
            total += c.number_of_retries;
        }
        in_range("the retries of all criteria together", total, 0, 10)
    }
}

impl PresignedUrlConfig {
    pub(crate) fn validate(&self) -> Result<(), ControlError> {
        if let Some(secs) = self.expires_in_sec {
            in_range("expiresInSec", secs, 60, 3600)?;
        }
        Ok(())
    }
}

/// `config` as the JSON the store keeps.
pub(crate) fn stored<T: Serialize>(config: &Option<T>) -> Result<Option<Value>, ControlError> {
    config
        .as_ref()
        .map(|c| {
            serde_json::to_value(c)
                .map_err(|e| ControlError::new(super::ErrorCode::InternalFailure, e.to_string()))
        })
        .transpose()
}
