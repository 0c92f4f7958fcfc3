//! Why a benchmark could not run.

use std::error::Error as StdError;

/// A failed step of the suite: what it was doing and why it failed.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {cause}")]
pub struct BenchError {
    step: String,
    #[source]
    cause: Box<dyn StdError + Send + Sync>,
}

impl BenchError {
    /// A failure of `step` for a reason given as text.
    pub fn new(step: impl Into<String>, why: impl Into<String>) -> BenchError {
        BenchError {
            step: step.into(),
            cause: why.into().into(),
        }
    }
}

/// The suite's result type.
pub type BenchResult<T> = Result<T, BenchError>;

/// Names the step an error happened in.
pub trait Context<T> {
    /// Wraps the error with `step`, e.g. "starting Mosquitto".
    fn during(self, step: impl Into<String>) -> BenchResult<T>;
}

impl<T, E> Context<T> for Result<T, E>
where
    E: Into<Box<dyn StdError + Send + Sync>>,
{
    fn during(self, step: impl Into<String>) -> BenchResult<T> {
        self.map_err(|cause| BenchError {
            step: step.into(),
            cause: cause.into(),
        })
    }
}
