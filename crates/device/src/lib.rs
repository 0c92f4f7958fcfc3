//! iotcore: a device SDK for AWS IoT Core.
//!
//! A [`Client`] holds one MQTT connection over mutual TLS to AWS IoT Core
//! (or the `iotcore-emulator`, or any MQTT broker) and keeps it up by itself.
//!
//! ```no_run
//! # async fn demo() -> Result<(), iotcore::Error> {
//! use futures_util::StreamExt;
//! use iotcore::{Client, QoS};
//!
//! let client = Client::builder("my-thing")                    // also the client id
//!     .endpoint("xxxx-ats.iot.eu-west-1.amazonaws.com")
//!     .client_cert_pem_files("cert.pem", "key.pem")?          // PKCS#8, SEC1 or PKCS#1
//!     .connect()
//!     .await?;
//! let mut status = client.status_events();                    // Connecting, Connected, ...
//! client.publish("dt/my-thing/temp", "21.5", QoS::AtLeastOnce).await?; // resolves on PUBACK
//! client.send_message("{\"t\":21.5}").await?;                 // device/my-thing/messages/events
//! let mut commands = client.cloud_to_device().await?;         // device/my-thing/messages/devicebound/#
//! while let Some(command) = commands.next().await {
//!     tracing::info!(sub_topic = command.sub_topic(), "command");
//! }
//! client.close().await;
//! # Ok(()) }
//! ```
//!
//! # Connection
//!
//! TLS 1.2/1.3 via rustls (aws-lc-rs), SNI on, the server's name verified
//! against Amazon Root CA 1 and 3 (built in) plus any CA you add; port 8883,
//! or 443 with ALPN `x-amzn-mqtt-ca`; `TCP_NODELAY` set. MQTT 3.1.1 by
//! default, MQTT 5 on request. [`ClientBuilder::connect`] retries with
//! backoff within [`ClientBuilder::initial_connect`]'s bounds and fails fast
//! when retrying cannot help (untrusted server, refused certificate, not
//! authorized). Afterwards the client reconnects forever with full-jitter
//! exponential backoff ([`ReconnectPolicy`]); [`Client::status`] and
//! [`Client::status_events`] report every step with a [`DisconnectReason`]
//! that says what to check — including the hang-up AWS IoT Core uses to
//! answer a publish or subscribe its policy denies.
//!
//! # Delivery
//!
//! * QoS 1 publishes resolve on PUBACK; unacknowledged ones are resent (DUP)
//!   after every reconnect, whether or not the broker kept the session.
//! * While disconnected, QoS 1 publishes and (un)subscribe requests wait in a
//!   bounded offline queue ([`OfflineQueueLimits`]; full → the new request
//!   fails with [`ErrorKind::OfflineQueueFull`]); QoS 0 publishes fail at once
//!   with [`ErrorKind::Offline`].
//! * Subscriptions are restored when the broker did not keep the session.
//! * Each subscription has its own stream with a bounded buffer; when it is
//!   full the oldest message is discarded (see [`Subscription::dropped_messages`]),
//!   so a slow consumer never stalls the connection or other streams.
//! * Topics and payloads are checked against AWS IoT Core's limits before
//!   anything is sent ([`ClientBuilder::enforce_aws_limits`]).
//!
//! # Shadows
//!
//! [`Client::shadow`], [`Client::named_shadow`] and [`Client::thing_shadow`]
//! give a [`shadow::ShadowClient`] for the Device Shadow service (get,
//! update, delete, delta and documents events, correlated by `clientToken`);
//! [`shadow::TypedShadow`] works with the application's own serde type and
//! [`shadow::ShadowManager`] keeps a device's local copy in step, across
//! reconnects. See the [`shadow`] module.
//!
//! # Jobs
//!
//! [`Client::jobs`] gives a [`jobs::JobsClient`] for the Jobs device API
//! (pending executions, start next, describe, update, the `notify-next` and
//! `notify` streams), and [`jobs::JobRunner`] runs the cloud's jobs with the
//! application's async handler: fetched at start, on notifications and after
//! reconnects, progress and outcome reported across lost connections,
//! cancellations passed on, a job in progress resumed after a restart. See
//! the [`jobs`] module.
//!
//! # Fleet provisioning
//!
//! [`provisioning::FleetProvisioner`] turns a shared claim certificate into
//! the device's own identity (key made on the device, certificate signed from
//! its CSR, thing registered with a template, credentials saved atomically).
//! See the [`provisioning`] module.
//!
//! # Service framework
//!
//! All three are thin typed layers over the [`service`] module: one
//! request/response correlator (subscribe to the reply topics first, match
//! replies by `clientToken` or, where the service has none, by topic; a
//! timeout per request; cancellation on drop; a typed answer when a
//! reconnect loses a reply) and one error, [`service::ServiceError`], with
//! AWS's code and message when a service refuses. A client for another AWS
//! IoT service that answers on `…/accepted` and `…/rejected` plugs in there.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod backoff;
mod builder;
mod client;
mod credentials;
mod driver;
mod error;
pub mod jobs;
mod limits;
mod mailbox;
mod message;
mod offline_queue;
pub mod provisioning;
pub mod service;
pub mod shadow;
mod status;
mod streams;
mod transport;

pub use backoff::ReconnectPolicy;
pub use builder::{ALPN_PORT, ClientBuilder, DEFAULT_PORT, LastWill};
pub use client::Client;
pub use error::{ConfigError, Error, ErrorKind};
pub use limits::AWS_MAX_PAYLOAD_BYTES;
pub use message::{CloudToDeviceMessage, Message};
pub use offline_queue::OfflineQueueLimits;
pub use status::{ConnectionState, DisconnectReason, Operation};
pub use streams::{CloudToDevice, Messages, StatusEvents, Subscription};
pub use transport::tls::AWS_MQTT_ALPN;

pub use iotcore_mqtt::{ProtocolVersion, QoS, ReasonCode};

/// The README's example, compiled as a doctest so that it stays true. (The
/// workspace README's snippets are compiled by `iotcore-test-support`: that
/// file is not part of this crate's package.)
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
