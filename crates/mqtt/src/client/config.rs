//! What a client session sends in CONNECT and the limits it applies.

use std::time::Duration;

use bytes::Bytes;

use crate::packet::Will;
use crate::{Properties, ProtocolVersion};

/// AWS IoT Core's default (and largest) keep-alive, in seconds.
pub const AWS_KEEP_ALIVE_SECS: u16 = 1200;

/// Configuration of a [`ClientSession`](super::ClientSession).
///
/// Start from [`ClientConfig::new`] and set the fields that differ:
///
/// ```
/// # use iotcore_mqtt::client::ClientConfig;
/// # use iotcore_mqtt::ProtocolVersion;
/// let mut config = ClientConfig::new("my-thing");
/// config.protocol = ProtocolVersion::V311;
/// config.keep_alive = 60;
/// config.clean_start = false;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Protocol level spoken on every connection. Default: MQTT 5.
    pub protocol: ProtocolVersion,
    /// Client identifier. May be empty with MQTT 5: the server then assigns
    /// one (see [`reuse_assigned_client_id`](Self::reuse_assigned_client_id)).
    pub client_id: String,
    /// With an empty `client_id`: whether later connections send the id an
    /// MQTT 5 server assigned (the specification's model, so that the session
    /// can be resumed) or an empty one again, to be assigned a new id. AWS
    /// IoT Core assigns `$GEN/<uuid>` ids and refuses client ids starting with
    /// `$`, so a client of AWS must not send it back. Default: true.
    pub reuse_assigned_client_id: bool,
    /// Keep-alive in seconds; 0 disables it. An MQTT 5 server may replace it
    /// with its Server Keep Alive. Default: 1200 (AWS IoT Core's maximum).
    pub keep_alive: u16,
    /// Clean session (3.1.1) / clean start (5.0). Default: true.
    pub clean_start: bool,
    /// MQTT 5 Session Expiry Interval in seconds (sent as a CONNECT property;
    /// overrides one in `connect_properties`). Default: none (0, the session
    /// ends with the connection).
    pub session_expiry_interval: Option<u32>,
    /// Last will, published by the server if the connection ends abnormally.
    /// Boxed, like `connect_properties`: every session keeps its config for
    /// its whole life, and a will or properties inline took some 700 bytes
    /// of every client, most of which set neither.
    pub will: Option<Box<Will>>,
    /// User name (AWS SDKs append `?SDK=…&Version=…` metrics to it).
    pub username: Option<String>,
    /// Password.
    pub password: Option<Bytes>,
    /// Further MQTT 5 CONNECT properties: user properties, Receive Maximum,
    /// Topic Alias Maximum (the aliases the server may use towards us),
    /// Request Problem Information… Maximum Packet Size is set from
    /// `max_incoming_packet_size` and Session Expiry Interval from
    /// `session_expiry_interval`. Default: none.
    pub connect_properties: Option<Box<Properties>>,
    /// Most QoS 1 publishes sent and not yet acknowledged; further ones wait
    /// in order. The server's Receive Maximum lowers it. At least 1. Default:
    /// 100 (AWS IoT Core's limit of unacknowledged inbound publishes).
    pub max_inflight: u16,
    /// Largest packet accepted from the server, fixed header included; a larger
    /// one is a protocol violation. Sent as MQTT 5 Maximum Packet Size.
    /// Default: 256 KiB (AWS IoT Core sends at most 128 KB payloads).
    pub max_incoming_packet_size: usize,
    /// MQTT 3.1.1 only: when nothing has been acknowledged for this long,
    /// every QoS 1 PUBLISH (DUP set), SUBSCRIBE and UNSUBSCRIBE sent and not
    /// acknowledged is sent again on the same connection, with its packet
    /// identifier. MQTT 3.1.1 allows it and AWS IoT Device Advisor expects it
    /// (`MQTT_Publish_Retry_No_Puback`, `MQTT_Subscribe_Retry_No_Suback`);
    /// MQTT 5 allows a resend only after reconnecting [MQTT-4.4.0-1], so it is
    /// ignored there. Default: none (resent after reconnecting only).
    pub retry_unacknowledged: Option<Duration>,
}

impl ClientConfig {
    /// MQTT 5, clean start, keep-alive 1200 s, no will, no credentials,
    /// 100 publishes in flight, 256 KiB incoming packets.
    pub fn new(client_id: impl Into<String>) -> ClientConfig {
        ClientConfig {
            protocol: ProtocolVersion::V5,
            client_id: client_id.into(),
            reuse_assigned_client_id: true,
            keep_alive: AWS_KEEP_ALIVE_SECS,
            clean_start: true,
            session_expiry_interval: None,
            will: None,
            username: None,
            password: None,
            connect_properties: None,
            max_inflight: 100,
            max_incoming_packet_size: 256 * 1024,
            retry_unacknowledged: None,
        }
    }
}
