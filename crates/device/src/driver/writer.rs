//! The task that writes to the transport.
//!
//! Writing runs apart from the driver so that a peer that stops reading
//! (a stalled link) never blocks the driver: it keeps reading, answering
//! commands and running the keep-alive timer while bytes wait here.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncWriteExt, WriteHalf};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::status::DisconnectReason;
use crate::tls::{Transport, classify_io_error};

/// How far the writer has got.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Bytes handed to the operating system so far on this connection.
    pub(crate) written: u64,
    /// Set when a write failed; the writer has stopped.
    pub(crate) failed: Option<DisconnectReason>,
}

/// The driver's end of a writer task.
pub(crate) struct Writer {
    tx: Option<mpsc::UnboundedSender<Bytes>>,
    progress: watch::Receiver<Progress>,
    queued: u64,
    task: JoinHandle<()>,
}

impl Writer {
    pub(crate) fn spawn(half: WriteHalf<Transport>) -> Writer {
        let (tx, rx) = mpsc::unbounded_channel();
        let (progress_tx, progress) = watch::channel(Progress::default());
        let task = tokio::spawn(write_loop(half, rx, progress_tx));
        Writer {
            tx: Some(tx),
            progress,
            queued: 0,
            task,
        }
    }

    /// Queues bytes; returns the stream offset at which they end.
    pub(crate) fn send(&mut self, bytes: Bytes) -> u64 {
        self.queued += bytes.len() as u64;
        if let Some(tx) = &self.tx {
            // A send error means the task stopped after a failed write, which
            // `progress` reports.
            let _ = tx.send(bytes);
        }
        self.queued
    }

    /// The stream offset at the end of everything queued so far.
    pub(crate) fn queued(&self) -> u64 {
        self.queued
    }

    /// Bytes queued and not yet written.
    pub(crate) fn backlog(&self) -> u64 {
        self.queued.saturating_sub(self.progress.borrow().written)
    }

    /// The current progress.
    pub(crate) fn progress(&self) -> Progress {
        self.progress.borrow().clone()
    }

    /// Waits until the progress changes.
    pub(crate) async fn changed(&mut self) {
        if self.progress.changed().await.is_err() {
            // The task ended; its last progress stays readable. Never resolve
            // again so the caller's select does not spin.
            std::future::pending::<()>().await;
        }
    }

    /// Writes what is queued, then closes the connection (TLS close_notify,
    /// TCP FIN); gives up and drops the connection after `grace`.
    pub(crate) async fn finish_within(mut self, grace: Duration) {
        self.tx = None;
        if tokio::time::timeout(grace, &mut self.task).await.is_err() {
            self.task.abort();
        }
    }

    /// Stops writing at once.
    pub(crate) fn abort(self) {
        self.task.abort();
    }
}

async fn write_loop(
    mut half: WriteHalf<Transport>,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    progress: watch::Sender<Progress>,
) {
    let mut written = 0u64;
    while let Some(bytes) = rx.recv().await {
        let result = match half.write_all(&bytes).await {
            Ok(()) => half.flush().await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                written += bytes.len() as u64;
                progress.send_modify(|p| p.written = written);
            }
            Err(e) => {
                let reason = classify_io_error(&e);
                progress.send_modify(|p| p.failed = Some(reason));
                return;
            }
        }
    }
    let _ = half.shutdown().await;
}
