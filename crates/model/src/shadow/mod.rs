//! The Device Shadow service's messages and document algebra.
//!
//! * [`request`]: what clients publish ([`UpdateRequest`], [`TokenRequest`]),
//!   with the service's validating parsers.
//! * [`response`]: what the service publishes on `/accepted`, `/delta`,
//!   `/documents`; [`ErrorResponse`] for `/rejected`.
//! * [`ShadowDocument`]: a document and [`ShadowDocument::apply_update`].
//! * [`StoredShadow`]: a shadow's existence and version rules across get,
//!   update and delete.
//! * [`json`]: merge, delta, metadata and equality on JSON values.
//!
//! Everything is pure: time is a parameter (unix seconds), nothing does I/O.
//! Facts and their sources: docs/aws-iot-core-behaviour.md §3.

mod document;
mod error;
pub mod json;
pub mod request;
pub mod response;
mod service;

pub use document::{ShadowDocument, ShadowState, UpdateOutcome};
pub use error::{
    ErrorResponse, MAX_CLIENT_TOKEN_BYTES, MAX_STATE_BYTES, MAX_STATE_DEPTH, Section, ShadowError,
};
pub use request::{StatePatch, TokenRequest, UpdateRequest, UpdateState, client_token_of};
pub use response::{
    DeleteAccepted, DeltaEvent, DocumentsEvent, GetAccepted, SectionMetadata, StateWithDelta,
    UpdateAccepted, UpdatedSections,
};
pub use service::{DELETED_VERSION_RETENTION_SECS, StoredShadow, Tombstone};

#[cfg(test)]
mod tests;
