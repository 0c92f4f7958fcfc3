//! The journal: what the broker must not forget (persistent sessions, their
//! subscriptions, queued and in-flight QoS 1 messages; retained messages),
//! written to the store before it is acknowledged.
//!
//! The broker sends [`Op`]s down an unbounded channel (sending never waits, and
//! routing stays in memory); one writer task takes every op waiting, up to
//! [`BATCH`], and commits them in one SQLite transaction on the blocking thread
//! pool (group commit: while one transaction runs, the next batch gathers). A
//! caller that must not answer before its changes are stored (a PUBACK, a
//! SUBACK) asks for a [`Durable`] after sending them: it completes once
//! everything sent before it is committed, or with the error that stopped the
//! commit. Ops from one task reach the writer in the order they were sent, and
//! a session's ops are sent under its lock, so the store sees each session's
//! changes in the order they happened.
//!
//! Within a batch, a message queued and acknowledged (or dropped) before the
//! commit is never written: it was delivered, or let go, before anything had
//! to be acknowledged for it.
//!
//! Durability: a commit reaches the operating system before its acknowledgement
//! leaves, so nothing acknowledged is lost when the emulator's process dies;
//! with [`EmulatorConfig::fsync`](crate::EmulatorConfig::fsync) each commit is
//! also synced to disk (survives a power loss).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::SystemTime;

use iotcore_mqtt::packet::SubscriptionOptions;
use tokio::sync::{mpsc, oneshot};

use super::message::Message;
use super::records::{queued_record, retained_record, subscription_record, unix};
use crate::store::{BrokerChange, Store, StoreError};

/// Most ops committed in one transaction.
const BATCH: usize = 1024;

/// Why changes could not be stored: what waited for them is not acknowledged.
#[derive(Clone, Debug, thiserror::Error)]
pub(crate) enum JournalError {
    /// The transaction failed.
    #[error("the store could not commit the broker's changes: {0}")]
    Commit(String),
    /// The writer is gone (the emulator is stopping).
    #[error("the store writer has stopped")]
    Stopped,
}

/// One change for the store, or a request to hear when the changes sent
/// before it are stored.
#[derive(Debug)]
pub(crate) enum Op {
    /// Create or update a persistent session (not its subscriptions or queue).
    PutSession {
        client_id: Arc<str>,
        protocol: u8,
        expiry_secs: u32,
        detached_at: Option<SystemTime>,
    },
    /// Delete a session with its subscriptions and queue.
    DeleteSession(Arc<str>),
    /// Add or replace a subscription.
    Subscribe {
        client_id: Arc<str>,
        filter: String,
        options: SubscriptionOptions,
    },
    /// Remove a subscription.
    Unsubscribe { client_id: Arc<str>, filter: String },
    /// Queue a QoS 1 message for a session.
    Enqueue {
        client_id: Arc<str>,
        seq: u64,
        message: Arc<Message>,
        retain: bool,
    },
    /// A queued message was sent with this packet id (`None`: to be sent anew).
    InFlight {
        client_id: Arc<str>,
        seq: u64,
        packet_id: Option<u16>,
    },
    /// A queued message is done with (acknowledged, expired or dropped).
    Remove { client_id: Arc<str>, seq: u64 },
    /// Store a retained message.
    SetRetained(Arc<Message>),
    /// Delete the retained message of a topic.
    DeleteRetained(String),
    /// Answer once everything sent before is stored.
    Sync(oneshot::Sender<Result<(), JournalError>>),
}

/// The broker's end of the journal. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Journal {
    ops: mpsc::UnboundedSender<Op>,
    /// The next queued message's `seq`: unique across sessions and restarts,
    /// so that a late change for an ended session never touches a new one's.
    next_seq: Arc<AtomicU64>,
}

impl Journal {
    /// A journal and the receiver [`run_writer`] reads.
    pub(crate) fn channel() -> (Journal, mpsc::UnboundedReceiver<Op>) {
        let (ops, rx) = mpsc::unbounded_channel();
        let journal = Journal {
            ops,
            next_seq: Arc::new(AtomicU64::new(0)),
        };
        (journal, rx)
    }

    /// Sends `op` to the writer.
    pub(crate) fn send(&self, op: Op) {
        if self.ops.send(op).is_err() {
            tracing::warn!(
                "the store writer has stopped: a change to the broker state is not saved"
            );
        }
    }

    /// A `seq` for a message queued for a persistent session.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Makes every later `seq` greater than `seq` (one restored from the store).
    pub(crate) fn seq_above(&self, seq: u64) {
        self.next_seq.fetch_max(seq + 1, Ordering::Relaxed);
    }

    /// Completes once every op sent before this call is stored.
    pub(crate) fn sync(&self) -> Durable {
        let (done, stored) = oneshot::channel();
        self.send(Op::Sync(done));
        Durable(stored)
    }
}

/// Completes when the changes sent before it are stored (see [`Journal::sync`]).
#[derive(Debug)]
pub(crate) struct Durable(oneshot::Receiver<Result<(), JournalError>>);

impl Durable {
    /// The outcome if it is known already, without waiting.
    pub(crate) fn try_result(&mut self) -> Option<Result<(), JournalError>> {
        match self.0.try_recv() {
            Ok(result) => Some(result),
            Err(oneshot::error::TryRecvError::Empty) => None,
            Err(oneshot::error::TryRecvError::Closed) => Some(Err(JournalError::Stopped)),
        }
    }
}

impl Future for Durable {
    type Output = Result<(), JournalError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|result| result.unwrap_or(Err(JournalError::Stopped)))
    }
}

/// A persistent session's own end of the journal.
#[derive(Clone, Debug)]
pub(crate) struct SessionLog {
    journal: Journal,
    client_id: Arc<str>,
}

impl SessionLog {
    /// The log of `client_id`'s session.
    pub(crate) fn new(journal: Journal, client_id: Arc<str>) -> SessionLog {
        SessionLog { journal, client_id }
    }

    /// The journal it writes to.
    pub(crate) fn journal(&self) -> &Journal {
        &self.journal
    }

    fn client_id(&self) -> Arc<str> {
        Arc::clone(&self.client_id)
    }

    /// The session's settings: protocol level, expiry, and when it was detached.
    pub(crate) fn put_session(
        &self,
        protocol: u8,
        expiry_secs: u32,
        detached_at: Option<SystemTime>,
    ) {
        self.journal.send(Op::PutSession {
            client_id: self.client_id(),
            protocol,
            expiry_secs,
            detached_at,
        });
    }

    /// The session ended.
    pub(crate) fn delete_session(&self) {
        self.journal.send(Op::DeleteSession(self.client_id()));
    }

    /// A subscription was made or changed.
    pub(crate) fn subscribe(&self, filter: &str, options: SubscriptionOptions) {
        self.journal.send(Op::Subscribe {
            client_id: self.client_id(),
            filter: filter.to_owned(),
            options,
        });
    }

    /// A subscription was removed.
    pub(crate) fn unsubscribe(&self, filter: &str) {
        self.journal.send(Op::Unsubscribe {
            client_id: self.client_id(),
            filter: filter.to_owned(),
        });
    }

    /// Queues `message` (delivered with `retain`); returns its `seq`.
    pub(crate) fn enqueue(&self, message: &Arc<Message>, retain: bool) -> u64 {
        let seq = self.journal.next_seq();
        self.journal.send(Op::Enqueue {
            client_id: self.client_id(),
            seq,
            message: Arc::clone(message),
            retain,
        });
        seq
    }

    /// The message `seq` was sent with `packet_id` (`None`: it will be sent anew).
    pub(crate) fn in_flight(&self, seq: u64, packet_id: Option<u16>) {
        self.journal.send(Op::InFlight {
            client_id: self.client_id(),
            seq,
            packet_id,
        });
    }

    /// The message `seq` is done with.
    pub(crate) fn remove(&self, seq: u64) {
        self.journal.send(Op::Remove {
            client_id: self.client_id(),
            seq,
        });
    }
}

/// Commits `ops` to `store`, batch by batch, until every [`Journal`] is dropped.
pub(crate) async fn run_writer(store: Store, mut ops: mpsc::UnboundedReceiver<Op>) {
    let mut batch = Vec::with_capacity(BATCH);
    while ops.recv_many(&mut batch, BATCH).await > 0 {
        let (changes, waiting) = plan(batch.drain(..), SystemTime::now());
        let result = if changes.is_empty() {
            Ok(())
        } else {
            let store = store.clone();
            match tokio::task::spawn_blocking(move || store.apply_broker_changes(&changes)).await {
                Ok(result) => result.map_err(|e: StoreError| JournalError::Commit(e.to_string())),
                Err(e) => Err(JournalError::Commit(format!("the writer failed: {e}"))),
            }
        };
        if let Err(e) = &result {
            tracing::error!("{e}: what waited for it is not acknowledged");
        }
        for done in waiting {
            // The waiter may have gone (its connection closed): nothing to tell.
            let _ = done.send(result.clone());
        }
    }
}

/// The store changes of `ops`, and who waits for them. A message queued and
/// removed within the same ops is left out.
fn plan(
    ops: impl Iterator<Item = Op>,
    now: SystemTime,
) -> (
    Vec<BrokerChange>,
    Vec<oneshot::Sender<Result<(), JournalError>>>,
) {
    let mut changes: Vec<Option<BrokerChange>> = Vec::new();
    let mut waiting = Vec::new();
    // seq → index in `changes` of its Enqueue in this batch.
    let mut queued: HashMap<u64, usize> = HashMap::new();
    for op in ops {
        let change = match op {
            Op::PutSession {
                client_id,
                protocol,
                expiry_secs,
                detached_at,
            } => BrokerChange::PutSession {
                client_id: client_id.to_string(),
                protocol_version: protocol,
                session_expiry_secs: expiry_secs,
                disconnected_at: detached_at.map(unix),
            },
            Op::DeleteSession(client_id) => BrokerChange::DeleteSession(client_id.to_string()),
            Op::Subscribe {
                client_id,
                filter,
                options,
            } => BrokerChange::PutSubscription(
                client_id.to_string(),
                subscription_record(filter, &options),
            ),
            Op::Unsubscribe { client_id, filter } => BrokerChange::DeleteSubscription {
                client_id: client_id.to_string(),
                filter,
            },
            Op::Enqueue {
                client_id,
                seq,
                message,
                retain,
            } => {
                queued.insert(seq, changes.len());
                BrokerChange::Enqueue(
                    client_id.to_string(),
                    queued_record(seq, &message, retain, None),
                )
            }
            Op::InFlight {
                client_id,
                seq,
                packet_id,
            } => {
                if let Some(Some(BrokerChange::Enqueue(_, message))) =
                    queued.get(&seq).and_then(|&i| changes.get_mut(i))
                {
                    message.packet_id = packet_id;
                    continue;
                }
                BrokerChange::SetPacketId {
                    client_id: client_id.to_string(),
                    seq,
                    packet_id,
                }
            }
            Op::Remove { client_id, seq } => {
                if let Some(i) = queued.remove(&seq) {
                    changes[i] = None;
                    continue;
                }
                BrokerChange::Dequeue {
                    client_id: client_id.to_string(),
                    seq,
                }
            }
            Op::SetRetained(message) => BrokerChange::PutRetained(retained_record(&message, now)),
            Op::DeleteRetained(topic) => BrokerChange::DeleteRetained(topic),
            Op::Sync(done) => {
                waiting.push(done);
                continue;
            }
        };
        changes.push(Some(change));
    }
    (changes.into_iter().flatten().collect(), waiting)
}

#[cfg(test)]
mod tests;
