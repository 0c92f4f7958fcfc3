//! Why an emulator could not start or stop cleanly.

use std::io;
use std::net::SocketAddr;

use crate::pki::PkiError;
use crate::store::StoreError;
use crate::tls::TlsSetupError;

/// Why [`Emulator::start`](crate::Emulator::start) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    /// Another process (or another emulator) listens on the address.
    #[error("{addr} is already in use: pick another port with --port")]
    AddressInUse {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The listener could not be opened for another reason.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's error.
        source: io::Error,
    },
    /// The certificate authority or the server certificate could not be loaded or
    /// created (an unwritable data directory shows here or as [`EmulatorError::Store`]).
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The SQLite registry could not be opened or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The TLS configuration could not be built from the PKI's certificates.
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    /// A start-up step running on the blocking thread pool panicked or was cancelled.
    #[error("emulator start-up failed: {0}")]
    Startup(String),
}
