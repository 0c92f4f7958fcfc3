//! CONNECT: the first packet a client sends.

use bytes::Bytes;

use crate::{Properties, ProtocolVersion, QoS};

/// A CONNECT packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connect {
    /// The protocol level the client speaks.
    pub protocol: ProtocolVersion,
    /// Clean session (3.1.1) / clean start (5.0).
    pub clean_start: bool,
    /// Keep-alive interval in seconds; 0 disables it.
    pub keep_alive: u16,
    /// Client identifier (may be empty in MQTT 5 to ask the server for one).
    pub client_id: String,
    /// User name; AWS SDKs put `?SDK=…&Version=…` metrics here.
    pub username: Option<String>,
    /// Password (binary data).
    pub password: Option<Bytes>,
    /// Last will, published by the server if the connection ends abnormally.
    pub will: Option<Will>,
    /// MQTT 5 CONNECT properties (empty for 3.1.1).
    pub properties: Properties,
}

/// The last-will message of a CONNECT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Will {
    /// Topic the will is published to.
    pub topic: String,
    /// Will payload.
    pub payload: Bytes,
    /// QoS of the will publish.
    pub qos: QoS,
    /// Whether the will is retained.
    pub retain: bool,
    /// MQTT 5 will properties (empty for 3.1.1).
    pub properties: Properties,
}
