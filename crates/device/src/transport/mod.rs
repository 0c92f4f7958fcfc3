//! The transport seam: how the byte stream MQTT runs on is opened.
//!
//! The builder picks a [`Connector`]; the driver calls
//! [`Connector::connect`] on every connection attempt and gets a
//! [`Connected`]: a boxed byte stream and the login its CONNECT carries.
//! Everything about TCP, TLS (and, on other doors, proxies, WebSocket
//! upgrades and credentials) lives here; the driver only moves MQTT bytes
//! over the stream, and asks [`io_error_reason`] what a failed read or write
//! means. Calling the connector again for each attempt is what lets a door
//! fetch fresh credentials and sign again on every reconnect.

mod tcp;
pub(crate) mod tls;

use std::io;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::status::DisconnectReason;

/// A byte stream under the door's protocol: TCP, or a proxy's tunnel.
pub(crate) trait RawIo: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> RawIo for T {}

/// TCP to the broker, or a tunnel to it.
pub(crate) type Raw = Box<dyn RawIo>;

/// The byte stream a connection runs on.
pub(crate) trait ByteStream: AsyncRead + AsyncWrite + Send + Unpin {
    /// Takes bytes into the stream's own send buffer without writing them,
    /// so that they leave together with the stream's closing bytes (TLS: the
    /// last packets and the close_notify in one write). Returns how many it
    /// took; a stream without such a buffer takes none.
    fn buffer_final(&mut self, bytes: &[u8]) -> usize {
        let _ = bytes;
        0
    }
}

/// An established stream, whatever the door.
pub(crate) type Stream = Box<dyn ByteStream>;

/// What one successful [`Connector::connect`] gives the driver.
pub(crate) struct Connected {
    /// The stream MQTT runs on.
    pub(crate) stream: Stream,
    /// The CONNECT user name.
    pub(crate) username: Option<String>,
    /// The CONNECT password.
    pub(crate) password: Option<Bytes>,
}

/// How the connection is authenticated, and so what runs over TCP.
#[derive(Debug)]
pub(crate) enum Door {
    /// MQTT over TLS with a client certificate: port 8883, or 443 with ALPN
    /// `x-amzn-mqtt-ca`.
    MutualTls(tls::TlsSetup),
}

/// Opens connections to the broker: chosen by the builder, called by the
/// driver on every attempt.
#[derive(Debug)]
pub(crate) struct Connector {
    host: String,
    port: u16,
    door: Door,
    username: Option<String>,
    password: Option<Bytes>,
}

impl Connector {
    /// A connector to `host:port` through `door`, logging in with the
    /// application's user name and password (if any).
    pub(crate) fn new(
        host: String,
        port: u16,
        door: Door,
        username: Option<String>,
        password: Option<Bytes>,
    ) -> Connector {
        Connector {
            host,
            port,
            door,
            username,
            password,
        }
    }

    /// The door this connector opens.
    #[cfg(test)]
    pub(crate) fn door(&self) -> &Door {
        &self.door
    }

    /// One connection attempt: TCP, then whatever the door runs over it.
    pub(crate) async fn connect(&self) -> Result<Connected, DisconnectReason> {
        let raw: Raw = Box::new(tcp::connect(&self.host, self.port).await?);
        let stream: Stream = match &self.door {
            Door::MutualTls(setup) => Box::new(setup.handshake(raw).await?),
        };
        Ok(Connected {
            stream,
            username: self.username.clone(),
            password: self.password.clone(),
        })
    }
}

/// What a failed read or write on an established stream means.
pub(crate) fn io_error_reason(e: &io::Error) -> DisconnectReason {
    tls::classify_io_error(e)
}
