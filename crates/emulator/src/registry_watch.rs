//! Noticing registry changes while the emulator runs, whoever makes them.
//!
//! The registry lives in SQLite; the `iotcore` CLI changes it from another
//! process. Every change to things, certificates, policies or attachments bumps
//! a counter (triggers in the schema, see [`Store::registry_changes`]); a task
//! reads that counter every [`EmulatorConfig::registry_poll_interval`]
//! (one tiny query) and, when it moved, tells every connection, which then
//! re-reads its certificate's status and policies. [`RegistryWatch::poke`] makes
//! the check immediate (the in-process API of [`crate::Emulator`]).
//!
//! [`EmulatorConfig::registry_poll_interval`]: crate::EmulatorConfig::registry_poll_interval

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::connection::stopped;
use crate::store::Store;

/// The change notifications, and a way to ask for a check now.
#[derive(Debug, Clone)]
pub(crate) struct RegistryWatch {
    changes: watch::Receiver<u64>,
    poke: Arc<Notify>,
}

impl RegistryWatch {
    /// Starts the watcher task; it ends when `stopping` turns true.
    pub(crate) fn start(
        store: Store,
        interval: Duration,
        mut stopping: watch::Receiver<bool>,
    ) -> RegistryWatch {
        let (tx, changes) = watch::channel(0u64);
        let poke = Arc::new(Notify::new());
        let woken = Arc::clone(&poke);
        tokio::spawn(async move {
            let mut last = read(&store).await;
            loop {
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    () = woken.notified() => {}
                    () = stopped(&mut stopping) => return,
                }
                let now = read(&store).await;
                if now.is_some() && now != last {
                    last = now;
                    tracing::debug!(
                        "registry changed: connections re-read their certificates and policies"
                    );
                    tx.send_modify(|generation| *generation += 1);
                }
            }
        });
        RegistryWatch { changes, poke }
    }

    /// A receiver that changes whenever the registry did.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.clone()
    }

    /// Checks for changes now rather than at the next poll.
    pub(crate) fn poke(&self) {
        self.poke.notify_one();
    }
}

async fn read(store: &Store) -> Option<i64> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || store.registry_changes()).await {
        Ok(Ok(counter)) => Some(counter),
        Ok(Err(e)) => {
            tracing::warn!("cannot read the registry change counter: {e}");
            None
        }
        Err(e) => {
            tracing::warn!("the registry check did not run: {e}");
            None
        }
    }
}

/// Resolves when `changes` changed; never, once its sender is gone.
pub(crate) async fn changed(changes: &mut watch::Receiver<u64>) {
    if changes.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}
