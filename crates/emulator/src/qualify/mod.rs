//! `iotcore qualify`: AWS IoT Device Advisor's test cases, offline.
//!
//! Device Advisor is AWS's own statement of what a good device client does:
//! it withholds CONNACK, PUBACK, SUBACK and PINGRESP, disconnects the device,
//! and grades its reaction. It runs only in the cloud, against a real AWS
//! account. Here a qualifying server plays its part on loopback: each
//! [`CaseId`] has its [`Faults`] (what the server withholds or does), the
//! server writes a transcript ([`Observation`]s) of what the device did, and [`grade`]
//! turns the transcript into a [`Verdict`] with its evidence.
//!
//! [`grade`] is a pure function: tests feed it scripted transcripts, so each
//! case is proven to pass a device that does what it asks and to fail one that
//! does not.

mod case;
mod grade;
mod jobs;
mod long_duration;
mod report;
mod server;
mod transcript;

pub use case::{
    CaseId, Category, ConnackPlan, FRAGMENTED_PAYLOAD, Faults, LARGE_CERTIFICATE_BYTES,
    SMALL_PAYLOAD, SessionPlan, UnknownCase, WITHHELD_PER_CYCLE,
};
pub use grade::{Outcome, Shape, Verdict, classify, final_grade, grade};
pub use jobs::{JOB_ID, default_document};
pub use long_duration::{LongDuration, Scenario, UnknownScenario};
pub use report::{CaseReport, Report};
pub use server::{CaseResult, Qualifier, QualifierError};
pub use transcript::{Observation, Seen};
