//! Telling live connections that the registry changed, whoever changed it.
//!
//! Every change goes through the control layer ([`crate::control::Control`]).
//! In the emulator's own process, its control plane calls
//! [`RegistryWatch::poke`] after each change. Another process (the `iotcore`
//! CLI, with [`Control::open`](crate::control::Control::open) on the same data
//! directory) tells the running emulator through a Unix socket in the data
//! directory, [`NOTIFY_SOCKET`]: each connection to it is one "the registry
//! changed". Either way every connection then re-reads its certificate's
//! status and policies; nothing polls.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::{Notify, watch};

use crate::connection::stopped;

/// The socket, in the data directory, through which other processes tell a
/// running emulator that they changed its registry.
pub(crate) const NOTIFY_SOCKET: &str = "registry.sock";

/// The change notifications, and a way to announce a change.
#[derive(Debug, Clone)]
pub(crate) struct RegistryWatch {
    changes: watch::Receiver<u64>,
    poke: Arc<Notify>,
}

impl RegistryWatch {
    /// Starts the watcher task, listening on [`NOTIFY_SOCKET`] in `data_dir`
    /// for other processes' changes; it ends when `stopping` turns true.
    pub(crate) fn start(data_dir: &Path, mut stopping: watch::Receiver<bool>) -> RegistryWatch {
        let (tx, changes) = watch::channel(0u64);
        let poke = Arc::new(Notify::new());
        let woken = Arc::clone(&poke);
        let mut socket = NotifySocket::bind(data_dir);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = woken.notified() => {}
                    () = socket.accept() => {}
                    () = stopped(&mut stopping) => return,
                }
                tracing::debug!(
                    "registry changed: connections re-read their certificates and policies"
                );
                tx.send_modify(|generation| *generation += 1);
            }
        });
        RegistryWatch { changes, poke }
    }

    /// A receiver that changes whenever the registry did.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.clone()
    }

    /// Announces a change made in this process.
    pub(crate) fn poke(&self) {
        self.poke.notify_one();
    }
}

/// Tells the emulator running on `data_dir`, if any, that its registry
/// changed. Without a running emulator there is nobody to tell: nothing
/// happens.
pub(crate) fn notify_running_emulator(data_dir: &Path) {
    #[cfg(unix)]
    {
        let path = data_dir.join(NOTIFY_SOCKET);
        match std::os::unix::net::UnixStream::connect(&path) {
            Ok(_) => tracing::debug!("told the running emulator that the registry changed"),
            Err(e) => tracing::debug!(path = %path.display(), "no running emulator to tell: {e}"),
        }
    }
    #[cfg(not(unix))]
    let _ = data_dir;
}

/// The listening end of [`NOTIFY_SOCKET`]; removed when dropped.
struct NotifySocket {
    #[cfg(unix)]
    listener: Option<(tokio::net::UnixListener, PathBuf)>,
}

impl NotifySocket {
    #[cfg(unix)]
    fn bind(data_dir: &Path) -> NotifySocket {
        let path = data_dir.join(NOTIFY_SOCKET);
        // A socket file left by an emulator that was killed is in the way.
        let _ = std::fs::remove_file(&path);
        match tokio::net::UnixListener::bind(&path) {
            Ok(listener) => NotifySocket {
                listener: Some((listener, path)),
            },
            Err(e) => {
                tracing::warn!(
                    path = %path.display(),
                    "cannot listen for registry changes made by other processes ({e}): \
                     changes made with the iotcore CLI reach live connections only after a restart"
                );
                NotifySocket { listener: None }
            }
        }
    }

    #[cfg(not(unix))]
    fn bind(_data_dir: &Path) -> NotifySocket {
        NotifySocket {}
    }

    /// Resolves when another process announced a change; never without a socket.
    async fn accept(&mut self) {
        #[cfg(unix)]
        if let Some((listener, _)) = &self.listener {
            match listener.accept().await {
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!("accepting a registry notification failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    return;
                }
            }
        }
        std::future::pending::<()>().await;
    }
}

#[cfg(unix)]
impl Drop for NotifySocket {
    fn drop(&mut self) {
        if let Some((_, path)) = &self.listener {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Resolves when `changes` changed; never, once its sender is gone.
pub(crate) async fn changed(changes: &mut watch::Receiver<u64>) {
    if changes.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}
