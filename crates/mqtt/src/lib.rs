//! Sans-IO MQTT 3.1.1 and 5.0 for AWS IoT Core devices and brokers.
//!
//! This crate has no sockets, no clock and no async runtime. It is built from
//! three layers:
//!
//! * [`packet`]: every MQTT control packet as a plain Rust value, with a strict
//!   decoder ([`packet::decode`]) and an encoder ([`Packet::encode`]). Payloads
//!   are [`bytes::Bytes`] slices of the input buffer: decoding never copies them.
//! * [`topic`]: topic name and filter validation and wildcard matching, with an
//!   AWS IoT Core mode (see [`topic::MatchMode`]).
//! * [`client`] and [`server`]: session state machines in the shape of
//!   quinn-proto. Bytes and timeouts go in (time is always a parameter), bytes to
//!   send, events and the next deadline come out.
//!
//! # Where to start
//!
//! A device drives a [`client::ClientSession`] and a broker a
//! [`server::ServerSession`]: their module pages give the order of calls and a
//! driving loop (the `iotcore` crate is a complete tokio driver of the client,
//! the crate's README runs both sessions against each other in memory). To read
//! or write packets alone, use [`packet::decode`] and [`Packet::encode`]; to
//! check or match topics, the functions of [`topic`]:
//!
//! ```
//! use bytes::BytesMut;
//! use iotcore_mqtt::packet::{self, Publish};
//! use iotcore_mqtt::topic::{self, MatchMode};
//! use iotcore_mqtt::{Packet, ProtocolVersion, QoS};
//!
//! let mut publish = Publish::new("dt/dev1/temp", "21.5", QoS::AtLeastOnce);
//! publish.packet_id = Some(1);
//! let mut wire = BytesMut::new();
//! Packet::Publish(publish.clone()).encode(ProtocolVersion::V5, &mut wire)?;
//! let decoded = packet::decode(&mut wire, ProtocolVersion::V5, 128 * 1024)?;
//! assert_eq!(decoded, Some(Packet::Publish(publish)));
//!
//! assert!(topic::matches("dt/+/temp", "dt/dev1/temp", MatchMode::Aws));
//! assert!(!topic::matches("dt/dev1/#", "dt/dev1", MatchMode::Aws)); // unlike MQTT's rule
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
mod codec;
pub mod error;
pub mod packet;
pub mod properties;
pub mod reason;
pub mod server;
mod session;
pub mod topic;

pub use error::DecodeError;
pub use error::EncodeError;
pub use packet::Packet;
pub use properties::Properties;
pub use reason::ReasonCode;

/// The MQTT protocol level spoken on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtocolVersion {
    /// MQTT 3.1.1 (protocol level 4).
    V311,
    /// MQTT 5.0 (protocol level 5).
    V5,
}

impl ProtocolVersion {
    /// The protocol level byte carried in CONNECT.
    pub fn level(self) -> u8 {
        match self {
            ProtocolVersion::V311 => 4,
            ProtocolVersion::V5 => 5,
        }
    }
}

/// Quality of service of a publish or a subscription.
///
/// AWS IoT Core supports QoS 0 and 1 only; `ExactlyOnce` exists so that a
/// broker can decode (and refuse) a QoS 2 request from a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum QoS {
    /// Fire and forget.
    #[default]
    AtMostOnce = 0,
    /// Acknowledged by PUBACK, possibly delivered more than once.
    AtLeastOnce = 1,
    /// Four-step delivery; not supported by AWS IoT Core.
    ExactlyOnce = 2,
}

impl QoS {
    /// Parses the two-bit QoS value of a fixed header or subscription option.
    pub fn from_u8(v: u8) -> Option<QoS> {
        match v {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// The README's example, compiled and run as a doctest so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
