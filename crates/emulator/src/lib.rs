//! iotcore-emulator: a local AWS IoT Core for tests and development.
//!
//! [`Emulator::start`] runs an MQTT broker over TLS that behaves like AWS IoT
//! Core's data endpoint: mandatory X.509 client certificates registered in the
//! emulator's registry, MQTT 3.1.1 and 5 on one port, QoS 0 and 1, retained
//! messages, last wills, persistent sessions, takeover, AWS's limits and
//! reserved-topic rules. State lives in a data directory and survives restarts.
//!
//! * [`api`]: the HTTPS API (AWS's control and HTTP data planes); its signed client.
//! * [`pki`]: the emulator's certificate authority, server and device certificates.
//! * [`policy`]: AWS IoT policies: documents, evaluation, built-in templates.
//! * [`provisioning`]: fleet provisioning by claim: templates, claim certificates, the MQTT API.
//! * [`control`]: AWS's control-plane operations on the registry (things, certificates,
//!   policies, thing types and groups, provisioning templates, access keys), used by the
//!   CLI and tests alike; the registry itself lives in SQLite under the data directory
//!   and is private to the emulator.
//! * [`data_plane`]: AWS's HTTP data plane on a running emulator: publish, retained
//!   messages, shadows.
//! * [`things`]: writing a device's certificate, key and root CA to files.
//! * [`clock`]: the one clock every timed rule reads; tests move a manual one.
//! * [`config`]: where the emulator listens and keeps its state, and its limits.
//!
//! How the broker works (one task per connection, a subscription trie shared by
//! all, bounded per-connection queues, write-behind persistence) is described in
//! the private `broker` module; AWS behaviours are cited from
//! `docs/aws-iot-core-behaviour.md`.
//!
//! # Where to start
//!
//! [`Emulator::start`] with an [`EmulatorConfig`] (a data directory, an
//! address; port 0 picks a free one) runs the emulator in the current tokio
//! runtime; [`Emulator::shutdown`] stops it, and a new start on the same data
//! directory resumes where it stopped:
//!
//! ```
//! use iotcore_emulator::{Emulator, EmulatorConfig};
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let data = tempfile::tempdir()?;
//! let config = EmulatorConfig::new(data.path()).with_bind("127.0.0.1:0".parse()?);
//! let emulator = Emulator::start(config).await?;
//! println!("listening on {}, devices trust:\n{}", emulator.local_addr(), emulator.ca_pem());
//! emulator.shutdown().await;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod accept;
mod activity;
pub mod api;
mod authorizer;
pub mod clock;
mod console;
pub mod control;
mod fsutil;
#[doc(hidden)]
pub mod fuzzing;
pub mod pki;
pub mod policy;
pub mod provisioning;
mod store;
pub mod things;

mod broker;
pub mod config;
mod connection;
pub mod data_plane;
mod emulator;
mod error;
mod ids;
mod jobs;
mod lifecycle;
mod listener;
pub mod local_core;
pub mod qualify;
pub mod quotas;
mod registry_watch;
mod services;
mod shadow;
mod tls;

pub use config::{EmulatorConfig, Limits};
pub use emulator::Emulator;
pub use error::EmulatorError;
pub use quotas::Quotas;
pub use shadow::{ShadowApiError, Shadows};
pub use tls::{ALPN_HTTP_CA, ALPN_MQTT, ALPN_MQTT_CA, ServerCertificate, TlsSetupError};

/// The README's example, compiled and run as a doctest so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
