//! iotcore-emulator: a local AWS IoT Core for tests and development.
//!
//! * [`pki`]: the emulator's certificate authority, server and device certificates.
//! * [`store`]: the registry and broker state in SQLite under the data directory.
//! * [`fsutil`]: atomic file writes with restrictive modes.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod fsutil;
pub mod pki;
pub mod store;
pub mod things;
