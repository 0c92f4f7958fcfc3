//! Reply documents the service publishes (docs/aws-iot-core-behaviour.md §3.2).
//! All of them serialize the way AWS sends them and deserialize what AWS sends.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::document::ShadowDocument;
use super::json::Object;

/// Deserializes a present value, `null` included, as `Some` (a missing one is
/// `None` through `#[serde(default)]`).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// `state` of a get reply: the sections that exist and the delta.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StateWithDelta {
    /// The desired state, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<Object>,
    /// The reported state, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<Object>,
    /// What desired has that reported has not (only when they differ).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<Object>,
}

/// `metadata` of a document: per-leaf timestamps of each section.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SectionMetadata {
    /// Timestamps of the desired state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<Object>,
    /// Timestamps of the reported state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<Object>,
}

/// `…/get/accepted`: the whole document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetAccepted {
    /// Desired, reported and delta.
    pub state: StateWithDelta,
    /// Timestamps of desired and reported.
    pub metadata: SectionMetadata,
    /// The document's version.
    pub version: u64,
    /// When the reply was sent, unix seconds.
    pub timestamp: u64,
    /// The request's `clientToken`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

/// The sections an update carried, as it carried them (`null` for a section it
/// removed): `state` and `metadata` of `…/update/accepted`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdatedSections {
    /// `desired` as the request sent it (`Some(Value::Null)` when removed).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub desired: Option<Value>,
    /// `reported` as the request sent it (`Some(Value::Null)` when removed).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub reported: Option<Value>,
}

/// `…/update/accepted`: what the request changed, its metadata and the new version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateAccepted {
    /// The request's sections.
    pub state: UpdatedSections,
    /// Timestamps of every value the request carried (deletions included).
    pub metadata: UpdatedSections,
    /// The document's new version.
    pub version: u64,
    /// When the update was applied, unix seconds.
    pub timestamp: u64,
    /// The request's `clientToken`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

/// `…/update/delta`: every desired value that reported does not match.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeltaEvent {
    /// The delta (no `desired`/`reported` wrapper).
    pub state: Object,
    /// The desired metadata of the delta's values.
    pub metadata: Object,
    /// The document's version.
    pub version: u64,
    /// When the update was applied, unix seconds.
    pub timestamp: u64,
    /// The `clientToken` of the update that caused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

/// `…/update/documents`: the document before and after an update.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentsEvent {
    /// The document before; absent when the update created the shadow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<ShadowDocument>,
    /// The document after.
    pub current: ShadowDocument,
    /// When the update was applied, unix seconds.
    pub timestamp: u64,
    /// The update's `clientToken`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

/// `…/delete/accepted`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteAccepted {
    /// The version of the deleted document.
    pub version: u64,
    /// When the shadow was deleted, unix seconds.
    pub timestamp: u64,
    /// The request's `clientToken`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}
