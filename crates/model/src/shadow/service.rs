//! One shadow as the service keeps it, and the three operations on it.

use super::document::{ShadowDocument, UpdateOutcome};
use super::error::ShadowError;
use super::request::UpdateRequest;
use super::response::{DeleteAccepted, GetAccepted};

/// How long a deleted shadow's version is remembered: a shadow re-created
/// within 48 hours continues its version numbering, later it starts again
/// from 0 (docs/aws-iot-core-behaviour.md §3.4).
pub const DELETED_VERSION_RETENTION_SECS: u64 = 48 * 3600;

/// What is left of a deleted shadow: its last version and when it was deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tombstone {
    /// The version of the document when it was deleted.
    pub version: u64,
    /// When it was deleted, unix seconds.
    pub deleted_at: u64,
}

/// One classic or named shadow as the service keeps it: its document if it
/// exists, or the tombstone of the one deleted last.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoredShadow {
    document: Option<ShadowDocument>,
    tombstone: Option<Tombstone>,
}

impl StoredShadow {
    /// A shadow with `document` (`None`: it does not exist) and the tombstone
    /// of a deleted predecessor.
    pub fn new(document: Option<ShadowDocument>, tombstone: Option<Tombstone>) -> Self {
        StoredShadow {
            document,
            tombstone,
        }
    }

    /// The document, if the shadow exists.
    pub fn document(&self) -> Option<&ShadowDocument> {
        self.document.as_ref()
    }

    /// The tombstone of the last deletion, if any.
    pub fn tombstone(&self) -> Option<&Tombstone> {
        self.tombstone.as_ref()
    }

    /// `…/get`: the document, or 404 naming `name` (the shadow's name, or the
    /// thing's for a classic shadow).
    pub fn get(
        &self,
        client_token: Option<String>,
        name: &str,
        now: u64,
    ) -> Result<GetAccepted, ShadowError> {
        let document = self.document.as_ref().ok_or_else(|| not_found(name))?;
        Ok(document.get_accepted(client_token, now))
    }

    /// `…/update`: creates the shadow if needed (continuing a deleted one's
    /// version within 48 hours) and applies the request. On error nothing
    /// changes.
    pub fn update(
        &mut self,
        request: &UpdateRequest,
        now: u64,
    ) -> Result<UpdateOutcome, ShadowError> {
        let outcome = match &self.document {
            Some(document) => document.apply_update(request, now)?,
            None => {
                let mut outcome =
                    ShadowDocument::empty(self.base_version(now)).apply_update(request, now)?;
                outcome.documents.previous = None;
                outcome
            }
        };
        self.document = Some(outcome.document.clone());
        self.tombstone = None;
        Ok(outcome)
    }

    /// `…/delete`: removes the document, remembering its version; 404 naming
    /// `name` if there is none.
    pub fn delete(
        &mut self,
        client_token: Option<String>,
        name: &str,
        now: u64,
    ) -> Result<DeleteAccepted, ShadowError> {
        let document = self.document.take().ok_or_else(|| not_found(name))?;
        self.tombstone = Some(Tombstone {
            version: document.version(),
            deleted_at: now,
        });
        Ok(DeleteAccepted {
            version: document.version(),
            timestamp: now,
            client_token,
        })
    }

    /// The version a shadow created at `now` starts from (its first update
    /// makes it this + 1).
    fn base_version(&self, now: u64) -> u64 {
        match self.tombstone {
            Some(t) if now.saturating_sub(t.deleted_at) < DELETED_VERSION_RETENTION_SECS => {
                t.version
            }
            _ => 0,
        }
    }
}

fn not_found(name: &str) -> ShadowError {
    ShadowError::NotFound {
        name: name.to_owned(),
    }
}
