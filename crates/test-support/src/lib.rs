//! Shared test support for the iotcore workspace (a dev-dependency only; never published).
//!
//! - [`TestPki`]: a throw-away CA with server and client certificates on disk;
//! - [`Mosquitto`]: a real Mosquitto broker with mutual TLS on a free loopback port;
//! - [`FaultProxy`]: a TCP proxy that cuts, stalls or refuses connections on demand;
//! - [`ConnectProxy`]: an HTTP CONNECT proxy, with or without basic authentication;
//! - [`python`], [`run_peer`], [`spawn_peer`]: run the Python peers in `tests/peers/` (AWS IoT
//!   Device SDK v2 for Python) from the venv that `scripts/setup-peers` creates;
//! - [`Browser`]: headless Chromium driven over WebDriver (chromedriver), for web pages;
//! - [`Mutator`]: deterministic mutations of fuzz seeds, for the fuzz smoke of the test command;
//! - [`free_port`], [`init_tracing`].
//!
//! ```no_run
//! # async fn demo() -> iotcore_test_support::Result<()> {
//! use iotcore_test_support::{Mosquitto, TestPki, init_tracing};
//!
//! init_tracing();
//! let pki = TestPki::generate()?;
//! let broker = Mosquitto::start(&pki)?;
//! // connect to 127.0.0.1:broker.port(), trusting broker.ca_path(), with pki.client() ...
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod browser;
mod connect_proxy;
mod error;
mod fault_proxy;
mod logging;
mod mosquitto;
mod mutate;
mod net;
mod peer;
mod pki;
mod program;

pub use browser::{Browser, VIEWPORT, WAIT_TIMEOUT};
pub use connect_proxy::ConnectProxy;
pub use error::{Error, Result};
pub use fault_proxy::FaultProxy;
pub use logging::init_tracing;
pub use mosquitto::{BrokerTls, Mosquitto, MosquittoBuilder};
pub use mutate::{Mutator, read_seeds};
pub use net::free_port;
pub use peer::{
    PEER_TIMEOUT, PeerOutput, PeerProcess, find_python, peer_script, python, run_peer,
    run_peer_with_timeout, spawn_peer, workspace_root,
};
pub use pki::{CertFiles, TestPki};

/// The Rust snippets of the workspace README, compiled as doctests so that they
/// stay true. They live here, in a crate that is never published, because the
/// README is outside every published crate's package.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct WorkspaceReadmeDoctests;

/// The Rust snippets of the Greengrass guide, compiled likewise.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/guide/greengrass.md")]
struct GreengrassGuideDoctests;

/// The Rust snippets of the guide's "Getting started" chapter, compiled likewise.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/guide/getting-started.md")]
struct GettingStartedGuideDoctests;

/// The Rust snippets of the guide's "Persistent connections and sessions" chapter.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/guide/persistent-sessions.md")]
struct PersistentSessionsGuideDoctests;

/// The Rust snippets of the guide's "Troubleshooting disconnects" chapter.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/guide/troubleshooting.md")]
struct TroubleshootingGuideDoctests;

/// The Rust snippets of the guide's "Device shadows" chapter.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/guide/shadows.md")]
struct ShadowsGuideDoctests;

/// The Rust snippets of the guide's "Fleet provisioning" chapter.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/guide/fleet-provisioning.md")]
struct FleetProvisioningGuideDoctests;

/// The Rust snippets of the guide's "Jobs" chapter.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/guide/jobs.md")]
struct JobsGuideDoctests;

/// The Rust snippets of the guide's "The emulator console" chapter.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/guide/console.md")]
struct ConsoleGuideDoctests;

/// The Rust snippets of the guide's "WebSocket and custom authorizers" chapter.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/guide/websocket-and-custom-authorizers.md")]
struct WebSocketGuideDoctests;

/// The Rust snippets of the guide's "Testing your device offline" chapter.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/guide/testing-offline.md")]
struct TestingOfflineGuideDoctests;

/// The Rust snippets of the guide's chapter on migrating from nanoFramework.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/guide/migrating-from-nanoframework.md")]
struct MigratingFromNanoFrameworkGuideDoctests;

/// The Rust snippets of the guide's chapter on migrating from AWS's SDK v2.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/guide/migrating-from-aws-sdk-v2.md")]
struct MigratingFromAwsSdkGuideDoctests;

/// The Rust snippets of the guide's "Qualify your device offline" chapter.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/guide/qualify.md")]
struct QualifyGuideDoctests;
