//! The bytes a connection has taken from its session and not yet written,
//! written from the connection's own task beside its reads.
//!
//! [`Outgoing::poll_io`] polls both directions of the stream at once, so a
//! client that does not read (its socket full) never stops the connection from
//! reading it. The queue holds at most [`MAX_CHUNKS`] chunks while the session
//! is open: while it is full the connection takes nothing more from its
//! session's queue, so a slow subscriber backs up into its own queue only.
//! Chunks written one after another are flushed once, when none is left.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// Chunks queued before the connection stops taking more from its session.
const MAX_CHUNKS: usize = 8;

/// What one poll of the stream did: either side, or both.
#[derive(Debug)]
pub(super) struct Polled {
    /// `Some` once every queued chunk was written, or flushed when none was
    /// queued; the error if writing failed.
    pub(super) wrote: Option<io::Result<()>>,
    /// `Some` when a read finished: the bytes read (0 at end of stream), or
    /// the error.
    pub(super) read: Option<io::Result<usize>>,
}

/// The chunks waiting to be written, oldest first.
#[derive(Debug, Default)]
pub(super) struct Outgoing {
    chunks: VecDeque<Bytes>,
    /// Bytes were written since the last flush.
    unflushed: bool,
}

impl Outgoing {
    /// Whether another chunk may be taken from the session.
    pub(super) fn has_room(&self) -> bool {
        self.chunks.len() < MAX_CHUNKS
    }

    /// Whether everything was written and flushed.
    pub(super) fn is_idle(&self) -> bool {
        self.chunks.is_empty() && !self.unflushed
    }

    /// Queues `chunk` after the others.
    pub(super) fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.chunks.push_back(chunk);
        }
    }

    /// Writes what is queued and reads into `read_into` (when given), whichever
    /// the stream allows: ready as soon as one side is (see [`Polled`]).
    pub(super) fn poll_io<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
        read_into: Option<&mut BytesMut>,
        cx: &mut Context<'_>,
    ) -> Poll<Polled> {
        let wrote = if self.is_idle() {
            None
        } else {
            match self.poll_write(stream, cx) {
                Poll::Ready(result) => Some(result),
                Poll::Pending => None,
            }
        };
        let read = read_into.and_then(|buf| {
            match tokio_util::io::poll_read_buf(Pin::new(&mut *stream), cx, buf) {
                Poll::Ready(result) => Some(result),
                Poll::Pending => None,
            }
        });
        if wrote.is_none() && read.is_none() {
            return Poll::Pending;
        }
        Poll::Ready(Polled { wrote, read })
    }

    /// Writes every queued chunk; with none queued, flushes. A failed write
    /// drops what is queued: the connection is lost.
    fn poll_write<S: AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        let result = ready!(self.poll_write_queued(stream, cx));
        if result.is_err() {
            self.chunks.clear();
            self.unflushed = false;
        }
        Poll::Ready(result)
    }

    fn poll_write_queued<S: AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        if self.chunks.is_empty() {
            ready!(Pin::new(&mut *stream).poll_flush(cx))?;
            self.unflushed = false;
            return Poll::Ready(Ok(()));
        }
        while let Some(chunk) = self.chunks.front_mut() {
            let written = ready!(Pin::new(&mut *stream).poll_write(cx, chunk))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.unflushed = true;
            chunk.advance(written);
            if chunk.is_empty() {
                self.chunks.pop_front();
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Writes what is left, flushes, and shuts the stream down (over TLS,
    /// this sends close_notify).
    pub(super) async fn close<S: AsyncWrite + Unpin>(mut self, stream: &mut S) -> io::Result<()> {
        std::future::poll_fn(|cx| {
            while !self.is_idle() {
                ready!(self.poll_write(stream, cx))?;
            }
            Poll::Ready(Ok::<_, io::Error>(()))
        })
        .await?;
        stream.shutdown().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use tokio::io::{AsyncReadExt, duplex};

    /// Polls until every queued chunk is written and flushed.
    async fn drain(out: &mut Outgoing, stream: &mut tokio::io::DuplexStream) {
        while !out.is_idle() {
            let polled = poll_fn(|cx| out.poll_io(stream, None, cx)).await;
            polled.wrote.expect("a write result").expect("written");
        }
    }

    #[tokio::test]
    async fn writes_the_chunks_in_order() {
        let (mut ours, mut theirs) = duplex(1024);
        let mut out = Outgoing::default();
        out.push(Bytes::from_static(b"one,"));
        out.push(Bytes::new());
        out.push(Bytes::from_static(b"two"));
        drain(&mut out, &mut ours).await;
        let mut got = [0; 7];
        theirs.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"one,two");
    }

    #[tokio::test]
    async fn has_room_for_a_bounded_number_of_chunks() {
        let mut out = Outgoing::default();
        for _ in 0..MAX_CHUNKS {
            assert!(out.has_room());
            out.push(Bytes::from_static(b"x"));
        }
        assert!(!out.has_room());
        assert!(!out.is_idle());
    }

    #[tokio::test]
    async fn reads_while_the_peer_does_not_read() {
        // The peer's side holds 4 bytes: the write stays pending.
        let (mut ours, mut theirs) = duplex(4);
        let mut out = Outgoing::default();
        out.push(Bytes::from_static(b"more than four bytes"));
        let mut buf = BytesMut::with_capacity(16);
        let first = poll_fn(|cx| {
            let polled = out.poll_io(&mut ours, Some(&mut buf), cx);
            Poll::Ready(polled)
        })
        .await;
        assert!(first.is_pending(), "nothing to read, no room to write");

        theirs.write_all(b"ping").await.unwrap();
        let polled = poll_fn(|cx| out.poll_io(&mut ours, Some(&mut buf), cx)).await;
        assert!(polled.wrote.is_none(), "the write is still blocked");
        assert_eq!(polled.read.unwrap().unwrap(), 4);
        assert_eq!(&buf[..], b"ping");
        assert!(!out.is_idle());
    }

    #[tokio::test]
    async fn close_writes_the_rest_then_ends_the_stream() {
        let (mut ours, mut theirs) = duplex(4);
        let mut out = Outgoing::default();
        out.push(Bytes::from_static(b"last "));
        out.push(Bytes::from_static(b"words"));
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            theirs.read_to_end(&mut all).await.unwrap();
            all
        });
        out.close(&mut ours).await.unwrap();
        drop(ours);
        assert_eq!(reader.await.unwrap(), b"last words");
    }

    #[tokio::test]
    async fn a_failed_write_drops_what_is_queued() {
        let (mut ours, theirs) = duplex(64);
        drop(theirs);
        let mut out = Outgoing::default();
        out.push(Bytes::from_static(b"lost"));
        let polled = poll_fn(|cx| out.poll_io(&mut ours, None, cx)).await;
        assert!(polled.wrote.unwrap().is_err());
        assert!(out.is_idle());
    }
}
