//! The error type of the test-support crate.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// What went wrong while setting up a test fixture.
///
/// `Debug` prints the same text as `Display`, so that `.unwrap()` and `.expect()` in a test show a
/// readable message (including the broker's log) rather than a struct dump.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// rcgen could not generate a test key or certificate.
    #[error("generating the test {what} failed: {source}")]
    Certificate {
        /// Which certificate was being generated ("CA", "server certificate", ...).
        what: String,
        /// rcgen's error.
        #[source]
        source: rcgen::Error,
    },
    /// A file-system or process operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done ("writing", "spawning", ...).
        action: &'static str,
        /// The file or program concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Mosquitto exited while starting (bad configuration, unreadable files, port taken).
    #[error("mosquitto exited ({status}) while starting; its log:\n{log}")]
    MosquittoExited {
        /// How the process ended.
        status: ExitStatus,
        /// The last lines mosquitto wrote to stderr.
        log: String,
    },
    /// Mosquitto was still not listening when the start-up wait ran out.
    #[error(
        "mosquitto did not start listening on 127.0.0.1:{port} within {waited:?}; its log:\n{log}"
    )]
    MosquittoNotReady {
        /// The port mosquitto was told to listen on.
        port: u16,
        /// How long the harness waited.
        waited: Duration,
        /// The last lines mosquitto wrote to stderr.
        log: String,
    },
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Error {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
