//! iotcore: a device SDK for AWS IoT Core.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod backoff;
mod builder;
mod client;
mod credentials;
mod driver;
mod error;
mod limits;
mod mailbox;
mod message;
mod offline_queue;
mod status;
mod streams;
mod tls;

pub use backoff::ReconnectPolicy;
pub use builder::{ALPN_PORT, ClientBuilder, DEFAULT_PORT, LastWill};
pub use client::Client;
pub use error::{ConfigError, Error, ErrorKind};
pub use limits::AWS_MAX_PAYLOAD_BYTES;
pub use message::{CloudToDeviceMessage, Message};
pub use offline_queue::OfflineQueueLimits;
pub use status::{ConnectionState, DisconnectReason, Operation};
pub use streams::{CloudToDevice, Messages, StatusEvents, Subscription};
pub use tls::AWS_MQTT_ALPN;

pub use iotcore_mqtt::{ProtocolVersion, QoS, ReasonCode};
