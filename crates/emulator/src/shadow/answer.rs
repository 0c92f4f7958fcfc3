//! Answering one shadow request, as a pure function of the shadow and the
//! request: what the worker does between reading and storing a shadow, and
//! what `iotcore qualify`'s server does with a shadow it keeps in memory.

use iotcore_model::shadow::{
    DeleteAccepted, DeltaEvent, DocumentsEvent, GetAccepted, ShadowError, StoredShadow,
    TokenRequest, UpdateAccepted, UpdateRequest,
};
use iotcore_model::topics::{ShadowOperation, ShadowTopicKind};

use super::ShadowKey;

/// An accepted request's reply.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Accepted {
    /// `…/get/accepted`.
    Get(GetAccepted),
    /// `…/update/accepted`.
    Update(UpdateAccepted),
    /// `…/delete/accepted`.
    Delete(DeleteAccepted),
}

/// What serving a request produced.
#[derive(Debug)]
pub(crate) struct Served {
    /// The reply on `…/accepted`.
    pub(crate) accepted: Accepted,
    /// `…/update/delta`, when the update left desired unlike reported.
    pub(crate) delta: Option<DeltaEvent>,
    /// `…/update/documents`, for an update.
    pub(crate) documents: Option<DocumentsEvent>,
}

impl Served {
    fn only(accepted: Accepted) -> Self {
        Served {
            accepted,
            delta: None,
            documents: None,
        }
    }

    /// The messages to publish, in order: each topic kind and its JSON.
    pub(crate) fn replies(&self) -> Vec<(ShadowTopicKind, serde_json::Value)> {
        let json = |body: Result<serde_json::Value, serde_json::Error>| {
            body.unwrap_or_else(|e| {
                tracing::error!("a shadow reply does not serialize: {e}");
                serde_json::Value::Null
            })
        };
        let accepted = match &self.accepted {
            Accepted::Get(reply) => serde_json::to_value(reply),
            Accepted::Update(reply) => serde_json::to_value(reply),
            Accepted::Delete(reply) => serde_json::to_value(reply),
        };
        let mut replies = vec![(ShadowTopicKind::Accepted, json(accepted))];
        if let Some(delta) = &self.delta {
            replies.push((ShadowTopicKind::Delta, json(serde_json::to_value(delta))));
        }
        if let Some(documents) = &self.documents {
            replies.push((
                ShadowTopicKind::Documents,
                json(serde_json::to_value(documents)),
            ));
        }
        replies
    }
}

/// Applies `operation` with `payload` to `shadow` at `now` (unix seconds).
/// `shadow` is changed only when the request is accepted.
pub(crate) fn answer(
    shadow: &mut StoredShadow,
    key: &ShadowKey,
    operation: ShadowOperation,
    payload: &[u8],
    now: u64,
) -> Result<Served, ShadowError> {
    let name = key.display_name();
    match operation {
        ShadowOperation::Get => {
            let request = TokenRequest::parse_get(payload)?;
            let reply = shadow.get(request.client_token, name, now)?;
            Ok(Served::only(Accepted::Get(reply)))
        }
        ShadowOperation::Update => {
            let request = UpdateRequest::parse(payload)?;
            let outcome = shadow.update(&request, now)?;
            Ok(Served {
                accepted: Accepted::Update(outcome.accepted),
                delta: outcome.delta,
                documents: Some(outcome.documents),
            })
        }
        ShadowOperation::Delete => {
            let request = TokenRequest::parse_delete(payload)?;
            let reply = shadow.delete(request.client_token, name, now)?;
            Ok(Served::only(Accepted::Delete(reply)))
        }
    }
}
