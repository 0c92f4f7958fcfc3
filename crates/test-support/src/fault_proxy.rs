//! A TCP proxy that injects network faults: cut connections, stalled (half-open) links, refused
//! connections.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::net::loopback;

/// Size of the per-direction forwarding buffer.
const BUFFER: usize = 16 * 1024;

/// A TCP proxy on `127.0.0.1:<ephemeral>` that forwards every connection to an upstream address
/// and lets a test break the link on demand.
///
/// Controls (all take effect on the proxy's tasks right after the call returns):
/// - [`cut`](Self::cut): reset every current connection on both sides;
/// - [`stall`](Self::stall) / [`resume`](Self::resume): stop / restart forwarding in both
///   directions while every socket stays open (a half-open link: the sender's writes are accepted
///   by the kernel, nothing reaches the other side);
/// - [`refuse`](Self::refuse): close new connections as soon as they are accepted.
///
/// Dropping the proxy closes its listener and every connection.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    refuse: AtomicBool,
    /// Number of connections accepted so far (refused ones included).
    accepted: watch::Sender<usize>,
    /// Number of connections currently being forwarded.
    active: AtomicUsize,
    /// True while forwarding is stalled.
    stalled: watch::Sender<bool>,
    /// Bumped by every `cut()`; a connection ends when it changes.
    cuts: watch::Sender<u64>,
}

impl FaultProxy {
    /// Binds `127.0.0.1:0` and starts forwarding new connections to `upstream`.
    ///
    /// Must be called inside a tokio runtime; the proxy's tasks run on it.
    pub async fn start(upstream: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(loopback(0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            refuse: AtomicBool::new(false),
            accepted: watch::Sender::new(0),
            active: AtomicUsize::new(0),
            stalled: watch::Sender::new(false),
            cuts: watch::Sender::new(0),
        });
        let accept_task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        tracing::debug!(%addr, %upstream, "fault proxy listening");
        Ok(FaultProxy {
            addr,
            shared,
            accept_task,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port clients connect to (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The address every connection is forwarded to.
    pub fn upstream(&self) -> SocketAddr {
        self.shared.upstream
    }

    /// Resets every current connection, client side and upstream side (`SO_LINGER` 0, so the
    /// peers see a reset rather than an orderly close). New connections are not affected.
    pub fn cut(&self) {
        self.shared.cuts.send_modify(|n| *n += 1);
    }

    /// Stops forwarding bytes in both directions; sockets stay open and the proxy stops reading,
    /// so senders fill the kernel buffers and receivers see silence. Applies to new connections
    /// too until [`resume`](Self::resume).
    pub fn stall(&self) {
        self.shared.stalled.send_replace(true);
    }

    /// Undoes [`stall`](Self::stall): bytes held back are delivered and forwarding continues.
    pub fn resume(&self) {
        self.shared.stalled.send_replace(false);
    }

    /// While `true`, new connections are accepted and closed immediately (with a reset) without
    /// contacting upstream; current connections are left alone.
    pub fn refuse(&self, refuse: bool) {
        self.shared.refuse.store(refuse, Ordering::SeqCst);
    }

    /// How many connections the proxy has accepted so far, refused ones included.
    pub fn accepted(&self) -> usize {
        *self.shared.accepted.borrow()
    }

    /// How many connections are currently being forwarded.
    pub fn active(&self) -> usize {
        self.shared.active.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` connections have been accepted (refused ones included).
    ///
    /// Wrap it in `tokio::time::timeout` if the test should fail rather than hang.
    pub async fn wait_accepted(&self, n: usize) {
        let mut accepted = self.shared.accepted.subscribe();
        // The sender lives in `self.shared`, so the channel cannot close while we wait.
        let _ = accepted.wait_for(|&count| count >= n).await;
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Dropping the accept task drops its JoinSet, which aborts every connection task.
        self.accept_task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    shared.accepted.send_modify(|n| *n += 1);
                    if shared.refuse.load(Ordering::SeqCst) {
                        tracing::debug!(%peer, "fault proxy refusing connection");
                        reset(client);
                        continue;
                    }
                    // Subscribe before spawning so a cut() issued right after accept applies.
                    let cuts = shared.cuts.subscribe();
                    connections.spawn(forward(client, peer, Arc::clone(&shared), cuts));
                }
                Err(e) => {
                    // Per-connection errors (e.g. reset before accept); keep serving.
                    tracing::debug!(error = %e, "fault proxy accept failed");
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn forward(
    mut client: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut cuts: watch::Receiver<u64>,
) {
    let mut upstream = match TcpStream::connect(shared.upstream).await {
        Ok(upstream) => upstream,
        Err(e) => {
            tracing::debug!(%peer, upstream = %shared.upstream, error = %e,
                "fault proxy cannot reach upstream; resetting client");
            reset(client);
            return;
        }
    };
    shared.active.fetch_add(1, Ordering::SeqCst);
    let outcome = {
        let (mut client_read, mut client_write) = client.split();
        let (mut upstream_read, mut upstream_write) = upstream.split();
        let to_upstream = pump(
            &mut client_read,
            &mut upstream_write,
            shared.stalled.subscribe(),
        );
        let to_client = pump(
            &mut upstream_read,
            &mut client_write,
            shared.stalled.subscribe(),
        );
        tokio::select! {
            _ = cuts.changed() => Outcome::Cut,
            pumped = async { tokio::try_join!(to_upstream, to_client) } => match pumped {
                Ok(_) => Outcome::Closed,
                Err(e) => Outcome::Failed(e),
            },
        }
    };
    shared.active.fetch_sub(1, Ordering::SeqCst);
    match outcome {
        Outcome::Closed => {
            tracing::debug!(%peer, "fault proxy connection closed by both sides");
            return;
        }
        Outcome::Cut => tracing::debug!(%peer, "fault proxy cut connection"),
        Outcome::Failed(e) => tracing::debug!(%peer, error = %e, "fault proxy connection failed"),
    }
    reset(client);
    reset(upstream);
}

enum Outcome {
    /// Both directions reached end of stream; the closes were forwarded.
    Closed,
    /// `cut()` was called.
    Cut,
    /// One side failed (typically a reset); the other side gets a reset too.
    Failed(io::Error),
}

/// Copies `reader` to `writer` until end of stream (then shuts `writer` down), holding off
/// reading and writing while `stalled` is true.
async fn pump(
    reader: &mut (impl AsyncRead + Unpin),
    writer: &mut (impl AsyncWrite + Unpin),
    mut stalled: watch::Receiver<bool>,
) -> io::Result<()> {
    let mut buf = vec![0; BUFFER];
    loop {
        wait_unstalled(&mut stalled).await;
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return writer.shutdown().await;
        }
        // A stall that began while the read was pending holds these bytes back too.
        wait_unstalled(&mut stalled).await;
        writer.write_all(&buf[..n]).await?;
    }
}

async fn wait_unstalled(stalled: &mut watch::Receiver<bool>) {
    // The sender lives in `Shared`, which outlives every pump, so this cannot fail.
    let _ = stalled.wait_for(|stalled| !*stalled).await;
}

/// Closes `stream` with a TCP reset rather than an orderly FIN.
fn reset(stream: TcpStream) {
    if let Err(e) = stream.set_zero_linger() {
        tracing::debug!(error = %e, "cannot set SO_LINGER 0; closing normally");
    }
    drop(stream);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::mpsc;

    use super::*;

    /// How long a test watches for bytes that must not arrive. A correct proxy passes whatever
    /// the machine's speed; a slow machine can only make a broken proxy look correct.
    const SILENCE: Duration = Duration::from_millis(300);

    /// An upstream that echoes every connection and reports how each one ended.
    struct Echo {
        addr: SocketAddr,
        endings: mpsc::UnboundedReceiver<io::Result<()>>,
        accepted: Arc<AtomicUsize>,
    }

    impl Echo {
        async fn start() -> Self {
            let listener = TcpListener::bind(loopback(0)).await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (tx, endings) = mpsc::unbounded_channel();
            let accepted = Arc::new(AtomicUsize::new(0));
            let counter = Arc::clone(&accepted);
            tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let (mut read, mut write) = stream.split();
                        let ended = tokio::io::copy(&mut read, &mut write).await;
                        let ended = match ended {
                            Ok(_) => write.shutdown().await,
                            Err(e) => Err(e),
                        };
                        let _ = tx.send(ended);
                    });
                }
            });
            Echo {
                addr,
                endings,
                accepted,
            }
        }
    }

    async fn round_trip(stream: &mut TcpStream, message: &[u8]) {
        stream.write_all(message).await.unwrap();
        let mut echoed = vec![0; message.len()];
        stream.read_exact(&mut echoed).await.unwrap();
        assert_eq!(echoed, message);
    }

    /// Connects and reads, expecting the proxy to reset the connection. The reset may arrive
    /// before the connect completes, so it counts wherever it shows up.
    async fn expect_reset(addr: SocketAddr) {
        let ended = match TcpStream::connect(addr).await {
            Ok(mut stream) => read_to_end(&mut stream).await.map(drop),
            Err(e) => Err(e),
        };
        assert_eq!(
            ended.map_err(|e| e.kind()),
            Err(io::ErrorKind::ConnectionReset)
        );
    }

    /// Reads until end of stream or error, returning what the read ended with.
    async fn read_to_end(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).await.map(|_| rest)
    }

    #[tokio::test]
    async fn forwards_bytes_both_ways_and_counts_connections() {
        let echo = Echo::start().await;
        let proxy = FaultProxy::start(echo.addr).await.unwrap();
        assert_eq!(proxy.upstream(), echo.addr);
        let mut a = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut b = TcpStream::connect(proxy.addr()).await.unwrap();
        round_trip(&mut a, b"hello").await;
        round_trip(&mut b, &[7; 100_000]).await;
        assert_eq!(proxy.accepted(), 2);
        assert_eq!(proxy.active(), 2);
        assert_eq!(echo.accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn orderly_close_is_forwarded_as_end_of_stream() {
        let mut echo = Echo::start().await;
        let proxy = FaultProxy::start(echo.addr).await.unwrap();
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        client.write_all(b"last words").await.unwrap();
        client.shutdown().await.unwrap();
        assert_eq!(read_to_end(&mut client).await.unwrap(), b"last words");
        echo.endings.recv().await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn cut_resets_both_sides_and_new_connections_still_work() {
        let mut echo = Echo::start().await;
        let proxy = FaultProxy::start(echo.addr).await.unwrap();
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        round_trip(&mut client, b"before").await;

        proxy.cut();

        let err = read_to_end(&mut client).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        let upstream_end = echo.endings.recv().await.unwrap().unwrap_err();
        assert_eq!(upstream_end.kind(), io::ErrorKind::ConnectionReset);

        let mut again = TcpStream::connect(proxy.addr()).await.unwrap();
        round_trip(&mut again, b"after").await;
        assert_eq!(proxy.accepted(), 2);
        assert_eq!(proxy.active(), 1);
    }

    #[tokio::test]
    async fn stall_holds_bytes_back_until_resume() {
        let echo = Echo::start().await;
        let proxy = FaultProxy::start(echo.addr).await.unwrap();
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        round_trip(&mut client, b"before").await;

        proxy.stall();
        client.write_all(b"held").await.unwrap();
        let mut buf = [0; 4];
        let silent = tokio::time::timeout(SILENCE, client.read_exact(&mut buf)).await;
        assert!(silent.is_err(), "bytes crossed a stalled proxy: {buf:?}");
        assert_eq!(proxy.active(), 1, "a stall keeps the connection open");

        proxy.resume();
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"held");
        round_trip(&mut client, b"after").await;
    }

    #[tokio::test]
    async fn stall_applies_to_connections_made_while_stalled() {
        let echo = Echo::start().await;
        let proxy = FaultProxy::start(echo.addr).await.unwrap();
        proxy.stall();
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        client.write_all(b"early").await.unwrap();
        let mut buf = [0; 5];
        let silent = tokio::time::timeout(SILENCE, client.read_exact(&mut buf)).await;
        assert!(silent.is_err(), "bytes crossed a stalled proxy: {buf:?}");
        proxy.resume();
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"early");
    }

    #[tokio::test]
    async fn refuse_closes_new_connections_without_reaching_upstream() {
        let echo = Echo::start().await;
        let proxy = FaultProxy::start(echo.addr).await.unwrap();
        let mut kept = TcpStream::connect(proxy.addr()).await.unwrap();
        round_trip(&mut kept, b"kept").await;

        proxy.refuse(true);
        expect_reset(proxy.addr()).await;
        proxy.wait_accepted(2).await;
        assert_eq!(proxy.accepted(), 2);
        assert_eq!(echo.accepted.load(Ordering::SeqCst), 1);
        round_trip(&mut kept, b"still forwarded").await;

        proxy.refuse(false);
        let mut accepted = TcpStream::connect(proxy.addr()).await.unwrap();
        round_trip(&mut accepted, b"welcome back").await;
        assert_eq!(proxy.accepted(), 3);
    }

    #[tokio::test]
    async fn unreachable_upstream_resets_the_client() {
        // A port that was free a moment ago: nothing listens there.
        let dead = loopback(crate::net::free_port());
        let proxy = FaultProxy::start(dead).await.unwrap();
        expect_reset(proxy.addr()).await;
        assert_eq!(proxy.active(), 0);
    }

    #[tokio::test]
    async fn wait_accepted_returns_once_enough_connections_arrived() {
        let echo = Echo::start().await;
        let proxy = FaultProxy::start(echo.addr).await.unwrap();
        proxy.refuse(true);
        let addr = proxy.addr();
        let dialer = tokio::spawn(async move {
            for _ in 0..3 {
                expect_reset(addr).await;
            }
        });
        proxy.wait_accepted(3).await;
        assert_eq!(proxy.accepted(), 3);
        dialer.await.unwrap();
    }

    #[tokio::test]
    async fn dropping_the_proxy_closes_its_connections() {
        let echo = Echo::start().await;
        let proxy = FaultProxy::start(echo.addr).await.unwrap();
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        round_trip(&mut client, b"alive").await;
        let addr = proxy.addr();
        drop(proxy);
        // Aborted tasks drop their sockets: the client sees the end of the stream or a reset.
        let _ = read_to_end(&mut client).await;
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "listener still open"
        );
    }
}
