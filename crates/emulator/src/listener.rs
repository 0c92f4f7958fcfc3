//! The one accept loop of the emulator's listeners (the MQTT port and the
//! HTTPS API's): one task per connection, all of them awaited on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::connection::stopped;

/// Pause after a failed `accept` (out of file descriptors…), so that the loop
/// does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts connections until `closing` turns true, handing each to `serve`
/// (with its peer address and a connection number counting from 1) on its own
/// task; then waits for every connection task to finish (each says goodbye to
/// its client and detaches from its session). `name` says which listener in
/// the log.
pub(crate) async fn run<F, Fut>(
    listener: TcpListener,
    mut closing: watch::Receiver<bool>,
    name: &'static str,
    serve: F,
) where
    F: Fn(TcpStream, SocketAddr, u64) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut connections = JoinSet::new();
    let mut next_id = 0u64;
    loop {
        tokio::select! {
            () = stopped(&mut closing) => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    next_id += 1;
                    tracing::debug!(%peer, connection = next_id, listener = name, "TCP connection accepted");
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::debug!(%peer, "cannot set TCP_NODELAY: {e}");
                    }
                    connections.spawn(serve(tcp, peer, next_id));
                }
                Err(e) => {
                    tracing::warn!(listener = name, "accepting a connection failed: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(done) = connections.join_next(), if !connections.is_empty() => report(name, done),
        }
    }
    drop(listener);
    while let Some(done) = connections.join_next().await {
        report(name, done);
    }
}

fn report(name: &str, done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        if e.is_panic() {
            tracing::error!(listener = name, "a connection task panicked: {e}");
        }
    }
}
