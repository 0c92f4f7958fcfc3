//! The shadow document and what an update does to it.

use serde::{Deserialize, Serialize};

use super::error::{MAX_STATE_BYTES, Section, ShadowError};
use super::json::{Object, compact_len, delta, delta_metadata, merge_with_metadata, metadata_of};
use super::request::{StatePatch, UpdateRequest};
use super::response::{
    DeltaEvent, DocumentsEvent, GetAccepted, SectionMetadata, StateWithDelta, UpdateAccepted,
    UpdatedSections,
};

/// `state` of a stored document: the sections that exist.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ShadowState {
    /// The desired state, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<Object>,
    /// The reported state, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<Object>,
}

/// A shadow document: state, metadata (a timestamp per leaf, mirroring the
/// state) and version. Serializes as AWS's `{"state","metadata","version"}`
/// (the shape of `previous`/`current` in `…/update/documents`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ShadowDocument {
    state: ShadowState,
    metadata: SectionMetadata,
    version: u64,
}

/// What a successful update produced: the new document and the replies.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateOutcome {
    /// The document after the update.
    pub document: ShadowDocument,
    /// For `…/update/accepted`.
    pub accepted: UpdateAccepted,
    /// For `…/update/delta`: present when the update carried `desired` and
    /// desired differs from reported afterwards.
    pub delta: Option<DeltaEvent>,
    /// For `…/update/documents`.
    pub documents: DocumentsEvent,
}

impl ShadowDocument {
    /// An empty document at `version` (a shadow about to be created: its first
    /// update makes it `version + 1`).
    pub fn empty(version: u64) -> Self {
        ShadowDocument {
            version,
            ..ShadowDocument::default()
        }
    }

    /// The state.
    pub fn state(&self) -> &ShadowState {
        &self.state
    }

    /// The metadata.
    pub fn metadata(&self) -> &SectionMetadata {
        &self.metadata
    }

    /// The version: 1 after the first update, +1 per update.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The delta between desired and reported, if they differ.
    pub fn delta(&self) -> Option<Object> {
        let desired = self.state.desired.as_ref()?;
        let delta = delta(desired, self.state.reported.as_ref());
        (!delta.is_empty()).then_some(delta)
    }

    /// Size of the state as AWS counts it against 8 KB: desired and reported
    /// as compact JSON, metadata excluded.
    pub fn state_bytes(&self) -> usize {
        [&self.state.desired, &self.state.reported]
            .into_iter()
            .flatten()
            .map(compact_len)
            .sum()
    }

    /// The `…/get/accepted` reply at `now`.
    pub fn get_accepted(&self, client_token: Option<String>, now: u64) -> GetAccepted {
        GetAccepted {
            state: StateWithDelta {
                desired: self.state.desired.clone(),
                reported: self.state.reported.clone(),
                delta: self.delta(),
            },
            metadata: self.metadata.clone(),
            version: self.version,
            timestamp: now,
            client_token,
        }
    }

    fn sections_mut(&mut self, section: Section) -> (&mut Option<Object>, &mut Option<Object>) {
        match section {
            Section::Desired => (&mut self.state.desired, &mut self.metadata.desired),
            Section::Reported => (&mut self.state.reported, &mut self.metadata.reported),
        }
    }

    /// Applies `request` at `now` (unix seconds), AWS's way: 409 if its
    /// `version` is not this document's; `null` section removes it; objects
    /// merge; the version goes up by one; 413 if the state would exceed 8 KB.
    /// `self` is not changed: the new document is in the outcome, so a refused
    /// update can never leave a half-applied document behind.
    ///
    /// `documents.previous` is this document; the caller drops it when the
    /// update creates the shadow.
    pub fn apply_update(
        &self,
        request: &UpdateRequest,
        now: u64,
    ) -> Result<UpdateOutcome, ShadowError> {
        if request.version.is_some_and(|v| v != self.version) {
            return Err(ShadowError::VersionConflict);
        }
        let mut next = self.clone();
        next.version = self.version + 1;
        for section in [Section::Desired, Section::Reported] {
            let (state, metadata) = next.sections_mut(section);
            match request.state.section(section) {
                StatePatch::Absent => {}
                StatePatch::Clear => {
                    *state = None;
                    *metadata = None;
                }
                StatePatch::Merge(patch) => {
                    let mut merged = state.take().unwrap_or_default();
                    let mut merged_metadata = metadata.take().unwrap_or_default();
                    merge_with_metadata(&mut merged, &mut merged_metadata, patch, now);
                    if !merged.is_empty() {
                        *state = Some(merged);
                        *metadata = Some(merged_metadata);
                    }
                }
            }
        }
        if next.state_bytes() > MAX_STATE_BYTES {
            return Err(ShadowError::PayloadTooLarge);
        }
        let client_token = request.client_token.clone();
        let sent = |section: Section| request.state.section(section).to_value();
        let accepted = UpdateAccepted {
            state: UpdatedSections {
                desired: sent(Section::Desired),
                reported: sent(Section::Reported),
            },
            metadata: UpdatedSections {
                desired: sent(Section::Desired).map(|v| metadata_of(&v, now)),
                reported: sent(Section::Reported).map(|v| metadata_of(&v, now)),
            },
            version: next.version,
            timestamp: now,
            client_token: client_token.clone(),
        };
        let delta = if request.state.desired.is_absent() {
            None
        } else {
            next.delta().map(|state| DeltaEvent {
                metadata: delta_metadata(
                    &state,
                    next.metadata.desired.as_ref().unwrap_or(&Object::new()),
                ),
                state,
                version: next.version,
                timestamp: now,
                client_token: client_token.clone(),
            })
        };
        let documents = DocumentsEvent {
            previous: Some(self.clone()),
            current: next.clone(),
            timestamp: now,
            client_token,
        };
        Ok(UpdateOutcome {
            document: next,
            accepted,
            delta,
            documents,
        })
    }

    /// The document as JSON text (how the emulator stores it).
    pub fn to_json(&self) -> String {
        // Serializing maps of JSON values cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a document written by [`to_json`](Self::to_json).
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }
}
