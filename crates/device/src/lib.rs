//! iotcore: a device SDK for AWS IoT Core.
//!
//! A [`Client`] holds one MQTT connection to AWS IoT Core (or the
//! `iotcore-emulator`, or any MQTT broker) — over mutual TLS, WebSocket
//! with SigV4 or a custom authorizer, directly or through an HTTP proxy (see
//! [Doors](#doors)) — and keeps it up by itself.
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
//! # Doors
//!
//! AWS IoT Core takes devices through several doors; the builder picks one
//! and the client opens it again on every connection attempt ([`Door`]):
//!
//! ```no_run
//! # async fn demo() -> Result<(), iotcore::Error> {
//! use iotcore::aws_credentials::{AwsCredentials, CredentialsProvider};
//! use iotcore::{Client, CustomAuthorizer};
//!
//! let endpoint = "xxxx-ats.iot.eu-west-1.amazonaws.com";
//!
//! // MQTT over mutual TLS: port 8883, or .port(443) with ALPN x-amzn-mqtt-ca.
//! let mtls = Client::builder("my-thing")
//!     .endpoint(endpoint)
//!     .client_cert_pem_files("cert.pem", "key.pem")?
//!     .connect()
//!     .await?;
//!
//! // MQTT over WebSocket on 443, the upgrade signed with SigV4. Credentials
//! // are asked for on every attempt: fixed, the environment, the shared
//! // files (CredentialsProvider::profile), or your own async closure.
//! let websocket = Client::builder("my-thing")
//!     .endpoint(endpoint)                           // region read from it, or .region(..)
//!     .websocket(CredentialsProvider::from_fn(|| async {
//!         // e.g. Cognito or the AWS IoT credentials provider
//!         Ok(AwsCredentials::new("ASIA…", "secret", Some("session-token".into())))
//!     }))
//!     .connect()
//!     .await?;
//!
//! // A custom authorizer: MQTT on 443 with ALPN mqtt (or over WebSocket
//! // with .custom_authorizer_over_websocket).
//! let authorized = Client::builder("my-thing")
//!     .endpoint(endpoint)
//!     .custom_authorizer(
//!         CustomAuthorizer::new("my-authorizer")
//!             .token("token", "eyJ…")
//!             .signature("base64 RSA-SHA256 of the token"),
//!     )
//!     .connect()
//!     .await?;
//!
//! // Any door through an HTTP CONNECT proxy (or .proxy_from_env() for
//! // HTTPS_PROXY and NO_PROXY).
//! let proxied = Client::builder("my-thing")
//!     .endpoint(endpoint)
//!     .websocket(CredentialsProvider::environment())
//!     .proxy("http://user:password@proxy.corp.example:3128")?
//!     .connect()
//!     .await?;
//! # let _ = (mtls, websocket, authorized, proxied); Ok(()) }
//! ```
//!
//! The CONNECT user name carries `?SDK=IoTCoreRust&Version=…`, as AWS's
//! SDKs add theirs, joined to a custom authorizer's query with `&`
//! ([`ClientBuilder::metrics`] turns it off).
//!
//! When a door fails, the [`DisconnectReason`] says which and why:
//! [`DisconnectReason::ProxyRefused`] (407: the proxy wants credentials),
//! [`DisconnectReason::UpgradeRefused`] (AWS's 403 and its message: a bad
//! signature, an expired date, an unknown key, a token missing, or an
//! authorizer's refusal), [`DisconnectReason::CredentialsUnavailable`],
//! [`DisconnectReason::LoginRefused`] (CONNACK refusal or hang-up on a
//! SigV4 or authorizer door), or the TLS and certificate reasons of mutual
//! TLS. Reconnecting follows AWS's SDKs: the first
//! [`connect`](ClientBuilder::connect) fails at once on a refusal that
//! retrying cannot fix (those reasons, where
//! [`DisconnectReason::needs_configuration_change`] holds); a running client
//! keeps trying every door with full-jitter exponential backoff whose delay
//! grows with each failed attempt up to [`ReconnectPolicy::max_delay`]
//! (120 s by default) and only starts again from the first delay after a
//! connection stayed up for [`ReconnectPolicy::reset_after`] (30 s, the
//! CRT's default too), so a door that refuses is never hammered. Each
//! attempt asks the credentials provider again and signs afresh.
//!
//! # Delivery
//!
//! * QoS 1 publishes resolve on PUBACK; unacknowledged ones are resent (DUP)
//!   after every reconnect, whether or not the broker kept the session.
//! * While disconnected, QoS 1 publishes and (un)subscribe requests wait in a
//!   bounded offline queue ([`OfflineQueueLimits`]; full → the new request
//!   fails with [`ErrorKind::OfflineQueueFull`]); QoS 0 publishes fail at once
//!   with [`ErrorKind::Offline`].
//! * With [`ClientBuilder::offline_store`], QoS 1 publishes also outlive the
//!   process: each is written to a checksummed log before it is sent, and
//!   those not acknowledged when the process dies (queued or in flight) are
//!   resent, in order and first, by the next client opened on the directory
//!   — at least once, under the same bounds and overflow rule. See
//!   [`offline_store`] for what the new process sees, the file format, its
//!   recovery from a torn or damaged tail, and the fsync option.
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
//! # Greengrass discovery
//!
//! [`greengrass::discover`] asks, over HTTPS with the device's [`Identity`]
//! (not over MQTT, so not through the service framework below), which
//! Greengrass core devices the thing may connect to, their addresses in the
//! order to try them and their CAs; each refusal is a
//! [`greengrass::DiscoveryError`] saying what to check. See the
//! [`greengrass`] module.
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

pub mod aws_credentials;
mod backoff;
mod builder;
mod client;
mod credentials;
mod custom_authorizer;
mod driver;
mod error;
pub mod greengrass;
pub mod jobs;
mod limits;
mod mailbox;
mod message;
mod offline_queue;
pub mod offline_store;
pub mod provisioning;
pub mod service;
pub mod shadow;
mod status;
mod streams;
mod transport;

pub use backoff::ReconnectPolicy;
pub use builder::{ALPN_PORT, ClientBuilder, DEFAULT_PORT, LastWill};
pub use client::Client;
pub use credentials::Identity;
pub use custom_authorizer::CustomAuthorizer;
pub use error::{ConfigError, Error, ErrorKind};
pub use limits::AWS_MAX_PAYLOAD_BYTES;
pub use message::{CloudToDeviceMessage, Message};
pub use offline_queue::OfflineQueueLimits;
pub use status::{ConnectionState, DisconnectReason, Operation};
pub use streams::{CloudToDevice, Messages, StatusEvents, Subscription};
pub use transport::Door;
pub use transport::tls::{AWS_MQTT_ALPN, ServerTrust};

pub use iotcore_mqtt::topic::TopicName;
pub use iotcore_mqtt::{ProtocolVersion, QoS, ReasonCode};

/// The README's example, compiled as a doctest so that it stays true. (The
/// workspace README's snippets are compiled by `iotcore-test-support`: that
/// file is not part of this crate's package.)
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
