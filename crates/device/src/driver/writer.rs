//! Writing to the transport from the driver's own loop.
//!
//! The driver keeps the bytes to send in a [`Writer`] and, in the same
//! `select!` that reads, runs timers and takes commands, polls
//! [`Writer::write_some`]: one cancel-safe write (or flush) at a time. A peer
//! that stops reading (a stalled link) therefore never blocks the driver: the
//! write simply stays pending while the driver keeps reading, answering
//! commands and running the keep-alive timer. Writing in the driver's task,
//! rather than in a task of its own, saves two thread hand-offs per request,
//! which is most of the cost of a publish that is awaited before the next.

use std::io;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};

use crate::transport::Stream;

/// Bytes queued for the transport, and how far writing has got.
pub(crate) struct Writer {
    half: WriteHalf<Stream>,
    buf: BytesMut,
    /// Stream offset at the end of everything queued.
    queued: u64,
    /// Stream offset up to which bytes are written and flushed.
    flushed: u64,
    /// Bytes written since the last flush.
    unflushed: u64,
}

impl Writer {
    pub(crate) fn new(half: WriteHalf<Stream>) -> Writer {
        Writer {
            half,
            buf: BytesMut::new(),
            queued: 0,
            flushed: 0,
            unflushed: 0,
        }
    }

    /// Queues bytes; returns the stream offset at which they end.
    pub(crate) fn send(&mut self, bytes: Bytes) -> u64 {
        self.queued += bytes.len() as u64;
        self.buf.extend_from_slice(&bytes);
        self.queued
    }

    /// The stream offset at the end of everything queued so far.
    pub(crate) fn queued(&self) -> u64 {
        self.queued
    }

    /// The stream offset up to which bytes have reached the operating system.
    pub(crate) fn flushed(&self) -> u64 {
        self.flushed
    }

    /// Bytes queued and not yet written and flushed.
    pub(crate) fn backlog(&self) -> u64 {
        self.queued - self.flushed
    }

    /// True while there is something to write or flush.
    pub(crate) fn is_busy(&self) -> bool {
        !self.buf.is_empty() || self.unflushed > 0
    }

    /// Writes some queued bytes, or flushes once everything is written.
    ///
    /// Cancel-safe: when another `select!` branch wins, nothing was written
    /// that is not accounted for, and the next call carries on. Pending while
    /// the peer does not read.
    pub(crate) async fn write_some(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            self.half.flush().await?;
            self.flushed += self.unflushed;
            self.unflushed = 0;
            return Ok(());
        }
        match self.half.write_buf(&mut self.buf).await? {
            0 => Err(io::ErrorKind::WriteZero.into()),
            n => {
                self.unflushed += n as u64;
                Ok(())
            }
        }
    }

    /// Writes what is queued, then closes the connection (TLS close_notify,
    /// TCP FIN); gives up and drops the connection after `grace`.
    ///
    /// The queued bytes are first handed to the stream's own send buffer
    /// (TLS: encrypted, not yet written), so that they and the closing bytes
    /// leave in one write (a DISCONNECT and a close_notify used to take two).
    pub(crate) async fn finish_within(mut self, reader: ReadHalf<Stream>, grace: Duration) {
        let mut stream = reader.unsplit(self.half);
        while !self.buf.is_empty() {
            match stream.buffer_final(&self.buf) {
                0 => break,
                n => self.buf.advance(n),
            }
        }
        let _ = tokio::time::timeout(grace, async {
            // Whatever did not fit, then everything with the close_notify.
            stream.write_all_buf(&mut self.buf).await?;
            stream.shutdown().await
        })
        .await;
    }
}
