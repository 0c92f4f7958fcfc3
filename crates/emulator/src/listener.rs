//! The accept loop: one task per connection, all of them awaited on shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::connection::{Shared, serve, stopped};

/// Pause after a failed `accept` (out of file descriptors…), so that the loop
/// does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts connections until the emulator stops, then waits for every
/// connection task to finish (each says goodbye to its client and detaches
/// from its session).
pub(crate) async fn run(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    let mut closing = shared.closing.clone();
    let mut next_id = 0u64;
    loop {
        tokio::select! {
            () = stopped(&mut closing) => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    next_id += 1;
                    tracing::debug!(%peer, connection = next_id, "TCP connection accepted");
                    connections.spawn(serve(Arc::clone(&shared), tcp, peer, next_id));
                }
                Err(e) => {
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(done) = connections.join_next(), if !connections.is_empty() => report(done),
        }
    }
    drop(listener);
    while let Some(done) = connections.join_next().await {
        report(done);
    }
}

fn report(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        if e.is_panic() {
            tracing::error!("a connection task panicked: {e}");
        }
    }
}
