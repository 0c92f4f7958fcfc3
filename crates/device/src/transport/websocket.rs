//! MQTT over WebSocket: the HTTP/1.1 upgrade on `/mqtt` with subprotocol
//! `mqtt`, then MQTT bytes carried in binary messages.
//!
//! The upgrade and the framing are tokio-tungstenite's; [`WsStream`] only
//! turns its messages into the byte stream the driver reads and writes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use futures_util::{Sink, Stream};
use http::header;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::status::DisconnectReason;
use crate::transport::{ByteStream, Door};

/// The subprotocol AWS IoT Core's SDKs ask for.
const SUBPROTOCOL: &str = "mqtt";
/// The most of a refusal's body kept for the error message.
const MAX_REFUSAL_BODY: usize = 512;

/// Upgrades `io` to a WebSocket at `path_and_query` on `host`, sending
/// `extra_headers` too; `door` names the door in errors.
pub(crate) async fn upgrade<S>(
    io: S,
    host: &str,
    path_and_query: &str,
    extra_headers: &[(&str, &str)],
    door: Door,
) -> Result<WsStream<S>, DisconnectReason>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut request = http::Request::builder()
        .uri(format!("wss://{host}{path_and_query}"))
        .header(header::HOST, host)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_VERSION, "13")
        .header(header::SEC_WEBSOCKET_KEY, generate_key())
        .header(header::SEC_WEBSOCKET_PROTOCOL, SUBPROTOCOL);
    for (name, value) in extra_headers {
        request = request.header(*name, *value);
    }
    let request = request.body(()).map_err(|e| DisconnectReason::WebSocket {
        door,
        detail: format!("cannot build the upgrade request: {e}"),
    })?;
    match tokio_tungstenite::client_async(request, io).await {
        Ok((ws, _)) => Ok(WsStream {
            ws,
            read: Bytes::new(),
        }),
        Err(WsError::Http(response)) => {
            let status = response.status();
            let body = response
                .body()
                .as_deref()
                .map(|b| {
                    String::from_utf8_lossy(&b[..b.len().min(MAX_REFUSAL_BODY)])
                        .trim()
                        .to_owned()
                })
                .filter(|b| !b.is_empty());
            Err(DisconnectReason::UpgradeRefused {
                door,
                status: status.as_u16(),
                detail: match body {
                    Some(body) => format!("{status}: {body}"),
                    None => status.to_string(),
                },
            })
        }
        Err(WsError::Io(e)) => Err(super::io_error_reason(&e)),
        Err(e) => Err(DisconnectReason::WebSocket {
            door,
            detail: e.to_string(),
        }),
    }
}

/// A WebSocket as a byte stream: each write is one binary message, reads
/// return the bytes of binary messages in order.
pub(crate) struct WsStream<S> {
    ws: WebSocketStream<S>,
    /// What is left of the last binary message read.
    read: Bytes,
}

fn ws_io_error(e: WsError) -> io::Error {
    match e {
        WsError::Io(e) => e,
        WsError::ConnectionClosed | WsError::AlreadyClosed => io::ErrorKind::UnexpectedEof.into(),
        other => io::Error::new(io::ErrorKind::InvalidData, other),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.read.is_empty() {
                let n = self.read.len().min(buf.remaining());
                buf.put_slice(&self.read[..n]);
                self.read.advance(n);
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(bytes))) => self.read = bytes,
                // The server's close (AWS: at the connection's 24 h limit) ends the stream.
                Some(Ok(Message::Close(_))) | None => return Poll::Ready(Ok(())),
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the server sent a text WebSocket message; MQTT travels in binary ones",
                    )));
                }
                // Pings are answered by tungstenite; pongs and raw frames carry nothing.
                Some(Ok(_)) => {}
                Some(Err(WsError::ConnectionClosed)) => return Poll::Ready(Ok(())),
                Some(Err(e)) => return Poll::Ready(Err(ws_io_error(e))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(ws_io_error)?;
        Pin::new(&mut self.ws)
            .start_send(Message::Binary(Bytes::copy_from_slice(buf)))
            .map_err(ws_io_error)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(ws_io_error)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match ready!(Pin::new(&mut self.ws).poll_close(cx)) {
            Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(ws_io_error(e))),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Send + Unpin> ByteStream for WsStream<S> {}
