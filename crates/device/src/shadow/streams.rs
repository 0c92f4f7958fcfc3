//! The event streams of a shadow: deltas and documents, picked out of the
//! messages on the shadow's reply filters that answer no request.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use iotcore_model::shadow::{DeltaEvent, DocumentsEvent};
use iotcore_model::topics::{ShadowTopic, ShadowTopicKind};
use serde::de::DeserializeOwned;

use crate::mailbox::Receiver;
use crate::message::Message;

/// A shadow event, for a listener that wants both kinds in order.
#[derive(Clone, Debug)]
pub(crate) enum Event {
    /// `…/update/delta`.
    Delta(DeltaEvent),
    /// `…/update/documents` (boxed: two whole documents).
    Documents(Box<DocumentsEvent>),
}

/// The event of `kind` in `message`, if it is one; a malformed event is
/// logged and skipped.
fn pick<T: DeserializeOwned>(message: &Message, kind: ShadowTopicKind) -> Option<T> {
    let topic = ShadowTopic::parse(message.topic()).ok()?;
    if topic.kind() != kind {
        return None;
    }
    serde_json::from_slice(message.payload())
        .inspect_err(|e| {
            tracing::warn!(topic = message.topic(), error = %e, "malformed shadow event ignored");
        })
        .ok()
}

/// A delta event.
pub(crate) fn delta(message: &Message) -> Option<DeltaEvent> {
    pick(message, ShadowTopicKind::Delta)
}

/// A documents event.
pub(crate) fn documents(message: &Message) -> Option<DocumentsEvent> {
    pick(message, ShadowTopicKind::Documents)
}

/// A delta or documents event.
pub(crate) fn event(message: &Message) -> Option<Event> {
    delta(message)
        .map(Event::Delta)
        .or_else(|| documents(message).map(|d| Event::Documents(Box::new(d))))
}

/// The shadow's `…/update/delta` events: every desired value that differs
/// from reported, each time an update of `desired` leaves a difference (the
/// seed library's `ShadowUpdated`).
///
/// Created by [`ShadowClient::deltas`](super::ShadowClient::deltas); receives
/// from its creation on, follows the crate's overflow rule (a full buffer
/// discards its oldest event, counted by [`dropped_events`](Self::dropped_events)),
/// and ends when the client is closed. Deltas sent while the client is offline
/// are lost unless the broker keeps the session: read the shadow after a
/// reconnect, or let a [`ShadowManager`](super::ShadowManager) do it.
pub struct Deltas {
    rx: Receiver<DeltaEvent>,
}

impl Deltas {
    pub(crate) fn new(rx: Receiver<DeltaEvent>) -> Self {
        Deltas { rx }
    }

    /// How many events were discarded because the buffer was full.
    pub fn dropped_events(&self) -> u64 {
        self.rx.dropped()
    }
}

impl Stream for Deltas {
    type Item = DeltaEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<DeltaEvent>> {
        Pin::new(&mut self.rx).poll_next(cx)
    }
}

impl std::fmt::Debug for Deltas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deltas").finish_non_exhaustive()
    }
}

/// The shadow's `…/update/documents` events: the whole document before and
/// after every accepted update, whoever made it.
///
/// Created by [`ShadowClient::documents`](super::ShadowClient::documents);
/// otherwise like [`Deltas`].
pub struct Documents {
    rx: Receiver<DocumentsEvent>,
}

impl Documents {
    pub(crate) fn new(rx: Receiver<DocumentsEvent>) -> Self {
        Documents { rx }
    }

    /// How many events were discarded because the buffer was full.
    pub fn dropped_events(&self) -> u64 {
        self.rx.dropped()
    }
}

impl Stream for Documents {
    type Item = DocumentsEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<DocumentsEvent>> {
        Pin::new(&mut self.rx).poll_next(cx)
    }
}

impl std::fmt::Debug for Documents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Documents").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::QoS;
    use iotcore_mqtt::packet::Publish;

    fn message(topic: &str, payload: &str) -> Message {
        Message::new(Publish::new(topic, payload.to_owned(), QoS::AtLeastOnce))
    }

    #[test]
    fn events_are_picked_by_topic_and_malformed_ones_skipped() {
        let delta_message = message(
            "$aws/things/dev1/shadow/update/delta",
            r#"{"state":{"led":"on"},"metadata":{"led":{"timestamp":1}},"version":2,"timestamp":1}"#,
        );
        let documents_message = message(
            "$aws/things/dev1/shadow/name/cfg/update/documents",
            r#"{"current":{"state":{"desired":{"led":"on"}},"metadata":{},"version":2},"timestamp":1}"#,
        );
        let d = delta(&delta_message).expect("a delta");
        assert_eq!(d.version, 2);
        assert_eq!(d.state["led"], "on");
        assert!(documents(&delta_message).is_none());
        assert_eq!(documents(&documents_message).unwrap().current.version(), 2);
        assert!(matches!(event(&delta_message), Some(Event::Delta(_))));
        assert!(matches!(
            event(&documents_message),
            Some(Event::Documents(_))
        ));
        for (topic, payload) in [
            ("$aws/things/dev1/shadow/update/delta", "not json"),
            ("$aws/things/dev1/shadow/update/accepted", "{}"),
            ("$aws/things/dev1/shadow/get/rejected", r#"{"code":404}"#),
            ("somewhere/else", "{}"),
        ] {
            assert!(event(&message(topic, payload)).is_none(), "{topic}");
        }
    }
}
