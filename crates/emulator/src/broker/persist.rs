//! Write-behind persistence of broker state (retained messages, persistent
//! sessions), off the routing path.
//!
//! The broker sends [`PersistOp`]s down an unbounded channel (sending never
//! waits); one writer task applies them to the store in order, in batches, on
//! the blocking thread pool. Session saves are coalesced: while a save of a
//! session is pending, further changes to it ride on that save, which
//! snapshots the session when it runs.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::{mpsc, oneshot};

use super::message::Message;
use super::records::{retained_record, session_record};
use super::session::Session;
use crate::store::{RetainedMessage, SessionRecord, Store};

/// Most operations written in one batch.
const BATCH: usize = 256;

/// One change for the store.
#[derive(Debug)]
pub(crate) enum PersistOp {
    /// Snapshot and save this session (or skip it if it has ended since).
    SaveSession(Arc<Session>),
    /// Delete the session of this client id.
    DeleteSession(String),
    /// Store this retained message.
    SetRetained(Arc<Message>),
    /// Delete the retained message of this topic.
    DeleteRetained(String),
    /// Answer once everything sent before has been written.
    Flush(oneshot::Sender<()>),
}

/// The broker's end of the persistence channel. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Persist {
    ops: mpsc::UnboundedSender<PersistOp>,
}

impl Persist {
    /// A handle and the receiver the writer task reads.
    pub(crate) fn channel() -> (Persist, mpsc::UnboundedReceiver<PersistOp>) {
        let (ops, rx) = mpsc::unbounded_channel();
        (Persist { ops }, rx)
    }

    fn send(&self, op: PersistOp) {
        if self.ops.send(op).is_err() {
            tracing::warn!(
                "the store writer has stopped: a change to the broker state is not saved"
            );
        }
    }

    /// Schedules a save of `session` unless one is already pending.
    pub(crate) fn save_session(&self, session: &Arc<Session>) {
        {
            let mut state = session.lock();
            if state.save_pending {
                return;
            }
            state.save_pending = true;
        }
        self.send(PersistOp::SaveSession(Arc::clone(session)));
    }

    /// Schedules the deletion of `client_id`'s session.
    pub(crate) fn delete_session(&self, client_id: &str) {
        self.send(PersistOp::DeleteSession(client_id.to_owned()));
    }

    /// Schedules storing a retained message.
    pub(crate) fn set_retained(&self, message: &Arc<Message>) {
        self.send(PersistOp::SetRetained(Arc::clone(message)));
    }

    /// Schedules deleting the retained message of `topic`.
    pub(crate) fn delete_retained(&self, topic: &str) {
        self.send(PersistOp::DeleteRetained(topic.to_owned()));
    }

    /// Waits until every change sent before this call is written.
    pub(crate) async fn flush(&self) {
        let (done, written) = oneshot::channel();
        self.send(PersistOp::Flush(done));
        // An error means the writer is gone: nothing more will be written anyway.
        let _ = written.await;
    }
}

/// A store write, with the data it needs captured.
enum Write {
    SaveSession(SessionRecord),
    DeleteSession(String),
    PutRetained(RetainedMessage),
    DeleteRetained(String),
}

/// Applies `ops` to `store` until every [`Persist`] handle is dropped.
pub(crate) async fn run_writer(store: Store, mut ops: mpsc::UnboundedReceiver<PersistOp>) {
    let mut batch = Vec::with_capacity(BATCH);
    while ops.recv_many(&mut batch, BATCH).await > 0 {
        let now = SystemTime::now();
        let mut flushed = Vec::new();
        let writes: Vec<Write> = batch
            .drain(..)
            .filter_map(|op| match op {
                PersistOp::SaveSession(session) => {
                    session_record(&session, now).map(Write::SaveSession)
                }
                PersistOp::DeleteSession(client_id) => Some(Write::DeleteSession(client_id)),
                PersistOp::SetRetained(message) => {
                    Some(Write::PutRetained(retained_record(&message, now)))
                }
                PersistOp::DeleteRetained(topic) => Some(Write::DeleteRetained(topic)),
                PersistOp::Flush(done) => {
                    flushed.push(done);
                    None
                }
            })
            .collect();
        if !writes.is_empty() {
            let store = store.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || apply(&store, writes)).await {
                tracing::error!("the store writer failed: {e}");
            }
        }
        for done in flushed {
            // The flusher may have given up waiting; nothing to tell then.
            let _ = done.send(());
        }
    }
}

fn apply(store: &Store, writes: Vec<Write>) {
    for write in writes {
        let (what, result) = match &write {
            Write::SaveSession(record) => (
                format!("save the session of {}", record.client_id),
                store.save_session(record),
            ),
            Write::DeleteSession(client_id) => (
                format!("delete the session of {client_id}"),
                store.delete_session(client_id).map(drop),
            ),
            Write::PutRetained(message) => (
                format!("store the retained message of {}", message.topic),
                store.put_retained(message),
            ),
            Write::DeleteRetained(topic) => (
                format!("delete the retained message of {topic}"),
                store.delete_retained(topic).map(drop),
            ),
        };
        if let Err(e) = result {
            tracing::error!("could not {what}: {e}");
        }
    }
}
