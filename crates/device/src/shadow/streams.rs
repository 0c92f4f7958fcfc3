//! The event streams of a shadow: deltas and documents.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use iotcore_model::shadow::{DeltaEvent, DocumentsEvent};

use crate::mailbox::Receiver;

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
