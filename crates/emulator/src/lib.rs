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
//! * [`store`]: the registry and broker state in SQLite under the data directory.
//! * [`things`]: creating things with their certificates, in one step.
//! * [`fsutil`]: atomic file writes with restrictive modes.
//! * [`config`]: where the emulator listens and keeps its state, and its limits.
//!
//! How the broker works (one task per connection, a subscription trie shared by
//! all, bounded per-connection queues, write-behind persistence) is described in
//! the private `broker` module; AWS behaviours are cited from
//! `docs/aws-iot-core-behaviour.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod fsutil;
pub mod pki;
pub mod policy;
pub mod provisioning;
pub mod store;
pub mod things;

mod broker;
pub mod config;
mod connection;
mod emulator;
mod error;
mod lifecycle;
mod listener;
mod registry_watch;
mod shadow;
mod tls;

pub use config::{EmulatorConfig, Limits};
pub use emulator::Emulator;
pub use error::EmulatorError;
pub use shadow::{ShadowApiError, Shadows};
pub use tls::{ALPN_MQTT_CA, TlsSetupError};
