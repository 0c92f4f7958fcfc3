//! The transport seam: how the byte stream MQTT runs on is opened.
//!
//! The builder picks a [`Connector`]; the driver calls
//! [`Connector::connect`] on every connection attempt and gets a
//! [`Connected`]: a boxed byte stream, the login its CONNECT carries and
//! the [`Door`] it came through. Everything about TCP, proxies, TLS,
//! WebSocket upgrades and credentials lives here; the driver only moves
//! MQTT bytes over the stream, and asks [`io_error_reason`] what a failed
//! read or write means. Calling the connector again for each attempt is
//! what makes a reconnect fetch fresh credentials and sign again.
//!
//! The layers, bottom up: TCP ([`tcp`]) or a proxy's tunnel ([`proxy`]);
//! TLS ([`tls`]); for the WebSocket doors the upgrade ([`websocket`]),
//! signed with SigV4 ([`sigv4`]); the CONNECT user name ([`login`]).

mod greengrass;
mod login;
mod proxy;
mod session_store;
mod sigv4;
pub(crate) mod tcp;
pub(crate) mod tls;
mod websocket;

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::time::SystemTime;

use bytes::Bytes;
use iotcore_mqtt::ReasonCode;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::aws_credentials::CredentialsProvider;
use crate::custom_authorizer::CustomAuthorizer;
use crate::status::DisconnectReason;

pub(crate) use greengrass::GreengrassSetup;
pub(crate) use proxy::Proxy;

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

/// How a connection is authenticated: the doors of AWS IoT Core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Door {
    /// MQTT over TLS with a client certificate: port 8883, or 443 with ALPN
    /// `x-amzn-mqtt-ca`.
    MutualTls,
    /// MQTT over WebSocket (`wss://…/mqtt`), the upgrade signed with SigV4.
    WebSocketSigV4,
    /// MQTT over TLS on 443 with ALPN `mqtt`, authenticated by a custom
    /// authorizer (the token in the user name's query).
    CustomAuthorizer,
    /// MQTT over WebSocket, authenticated by a custom authorizer (the token
    /// in the upgrade's headers).
    CustomAuthorizerWebSocket,
    /// MQTT over TLS with a client certificate to a Greengrass core device's
    /// local broker, found by Greengrass discovery.
    GreengrassCore,
}

impl Door {
    /// The port AWS IoT Core takes this door on.
    pub fn default_port(self) -> u16 {
        match self {
            Door::MutualTls | Door::GreengrassCore => crate::DEFAULT_PORT,
            _ => crate::ALPN_PORT,
        }
    }

    /// What the server checks on this door, for messages.
    pub(crate) fn credentials_hint(self) -> &'static str {
        match self {
            Door::MutualTls => {
                "check that the certificate is ACTIVE and its policy allows iot:Connect for this client id"
            }
            Door::WebSocketSigV4 => {
                "check that the credentials' policy (IAM, or the IoT policy attached to the \
                 emulator's access key) allows iot:Connect for this client id"
            }
            Door::CustomAuthorizer | Door::CustomAuthorizerWebSocket => {
                "the custom authorizer denied the token, or the policy it returned does not \
                 allow iot:Connect for this client id"
            }
            Door::GreengrassCore => {
                "check that the thing is associated with the core device, its certificate is \
                 ACTIVE, and the client id is the thing name (the core's client device auth \
                 policy decides the rest)"
            }
        }
    }
}

impl fmt::Display for Door {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Door::MutualTls => "MQTT over mutual TLS",
            Door::WebSocketSigV4 => "MQTT over WebSocket with SigV4",
            Door::CustomAuthorizer => "MQTT with a custom authorizer",
            Door::CustomAuthorizerWebSocket => "MQTT over WebSocket with a custom authorizer",
            Door::GreengrassCore => "MQTT over mutual TLS to a Greengrass core",
        })
    }
}

/// What one successful [`Connector::connect`] gives the driver.
pub(crate) struct Connected {
    /// The stream MQTT runs on.
    pub(crate) stream: Stream,
    /// The CONNECT user name.
    pub(crate) username: Option<String>,
    /// The CONNECT password.
    pub(crate) password: Option<Bytes>,
}

/// A door's settings.
#[derive(Debug)]
pub(crate) enum DoorSetup {
    /// See [`Door::MutualTls`].
    MutualTls(tls::TlsSetup),
    /// See [`Door::WebSocketSigV4`].
    WebSocketSigV4 {
        tls: tls::TlsSetup,
        region: String,
        credentials: CredentialsProvider,
    },
    /// See [`Door::CustomAuthorizer`].
    CustomAuthorizer {
        tls: tls::TlsSetup,
        authorizer: CustomAuthorizer,
    },
    /// See [`Door::CustomAuthorizerWebSocket`].
    CustomAuthorizerWebSocket {
        tls: tls::TlsSetup,
        authorizer: CustomAuthorizer,
    },
    /// See [`Door::GreengrassCore`]: the TLS settings come from discovery.
    GreengrassCore(Box<GreengrassSetup>),
}

impl DoorSetup {
    fn door(&self) -> Door {
        match self {
            DoorSetup::MutualTls(_) => Door::MutualTls,
            DoorSetup::WebSocketSigV4 { .. } => Door::WebSocketSigV4,
            DoorSetup::CustomAuthorizer { .. } => Door::CustomAuthorizer,
            DoorSetup::CustomAuthorizerWebSocket { .. } => Door::CustomAuthorizerWebSocket,
            DoorSetup::GreengrassCore(_) => Door::GreengrassCore,
        }
    }

    /// The TLS settings of the door; `None` for a Greengrass core, whose
    /// settings come from discovery.
    #[cfg(test)]
    pub(crate) fn tls(&self) -> Option<&tls::TlsSetup> {
        match self {
            DoorSetup::MutualTls(tls)
            | DoorSetup::WebSocketSigV4 { tls, .. }
            | DoorSetup::CustomAuthorizer { tls, .. }
            | DoorSetup::CustomAuthorizerWebSocket { tls, .. } => Some(tls),
            DoorSetup::GreengrassCore(_) => None,
        }
    }
}

/// Opens connections to the broker: chosen by the builder, called by the
/// driver on every attempt.
#[derive(Debug)]
pub(crate) struct Connector {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) proxy: Option<Proxy>,
    /// The address TCP connects from (to the broker, or to the proxy);
    /// `None`: the kernel's choice.
    pub(crate) local_address: Option<IpAddr>,
    pub(crate) setup: DoorSetup,
    /// The application's user name and password.
    pub(crate) username: Option<String>,
    pub(crate) password: Option<Bytes>,
    /// Whether to add the SDK metrics to the user name.
    pub(crate) metrics: bool,
}

impl Connector {
    /// The door this connector opens.
    pub(crate) fn door(&self) -> Door {
        self.setup.door()
    }

    /// The door's settings.
    #[cfg(test)]
    pub(crate) fn setup(&self) -> &DoorSetup {
        &self.setup
    }

    /// TCP, or a tunnel through the proxy.
    async fn open(&self) -> Result<Raw, DisconnectReason> {
        match &self.proxy {
            Some(proxy) => {
                proxy
                    .tunnel(&self.host, self.port, self.local_address)
                    .await
            }
            None => Ok(Box::new(
                tcp::connect(&self.host, self.port, self.local_address).await?,
            )),
        }
    }

    /// One connection attempt: credentials (if the door needs them), TCP or
    /// a tunnel, TLS, and the WebSocket upgrade on the WebSocket doors.
    pub(crate) async fn connect(&self) -> Result<Connected, DisconnectReason> {
        let door = self.door();
        let mut username = self.username.as_deref();
        let mut password = self.password.clone();
        let mut query: Vec<(&str, &str)> = Vec::new();
        let stream: Stream = match &self.setup {
            DoorSetup::MutualTls(tls) => Box::new(tls.handshake(self.open().await?).await?),
            DoorSetup::WebSocketSigV4 {
                tls,
                region,
                credentials,
            } => {
                let credentials = credentials
                    .credentials()
                    .await
                    .map_err(|source| DisconnectReason::CredentialsUnavailable { source })?;
                let tls = tls.handshake(self.open().await?).await?;
                // Signed last, so that the date is the moment of the upgrade.
                let target = sigv4::presign(&self.host, region, &credentials, SystemTime::now())
                    .map_err(|detail| DisconnectReason::WebSocket { door, detail })?;
                Box::new(websocket::upgrade(tls, &self.host, &target, &[], door).await?)
            }
            DoorSetup::CustomAuthorizer { tls, authorizer } => {
                query = authorizer.query();
                username = authorizer.username.as_deref().or(username);
                password = authorizer.password.clone().or(password);
                Box::new(tls.handshake(self.open().await?).await?)
            }
            DoorSetup::CustomAuthorizerWebSocket { tls, authorizer } => {
                let pairs = authorizer.query();
                let (target, headers) = if authorizer.in_websocket_query {
                    // The same `?key=value&…` encoding as the user name's query.
                    let target = login::username_with(Some(sigv4::PATH), &pairs);
                    (target.unwrap_or_else(|| sigv4::PATH.to_owned()), Vec::new())
                } else {
                    (sigv4::PATH.to_owned(), pairs)
                };
                username = authorizer.username.as_deref().or(username);
                password = authorizer.password.clone().or(password);
                let tls = tls.handshake(self.open().await?).await?;
                Box::new(websocket::upgrade(tls, &self.host, &target, &headers, door).await?)
            }
            DoorSetup::GreengrassCore(core) => core.connect().await?,
        };
        if self.metrics {
            query.extend(login::metrics());
        }
        Ok(Connected {
            stream,
            username: login::username_with(username, &query),
            password,
        })
    }
}

/// What a failed read or write on an established stream means.
pub(crate) fn io_error_reason(e: &io::Error) -> DisconnectReason {
    tls::classify_io_error(e)
}

/// The reason for a CONNACK refusal on `door`.
pub(crate) fn refusal(door: Door, reason: ReasonCode) -> DisconnectReason {
    match door {
        Door::MutualTls => DisconnectReason::ConnectionRefused { reason },
        door => DisconnectReason::LoginRefused {
            door,
            reason: Some(reason),
        },
    }
}

/// The reason for a hang-up before CONNACK on `door`.
pub(crate) fn closed_before_connack(door: Door, client_id: &str) -> DisconnectReason {
    match door {
        Door::MutualTls => DisconnectReason::ClosedBeforeConnAck {
            client_id: client_id.to_owned(),
        },
        door => DisconnectReason::LoginRefused { door, reason: None },
    }
}
