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
    /// Debian's `chromium` or `chromium-driver` is not installed.
    #[error(
        "{} is missing: run scripts/setup-peers (it installs Debian's chromium and chromium-driver)",
        program.display()
    )]
    BrowserNotInstalled {
        /// The program looked for.
        program: PathBuf,
    },
    /// chromedriver exited while starting.
    #[error("chromedriver exited ({status}) while starting; its log:\n{log}")]
    ChromedriverExited {
        /// How the process ended.
        status: ExitStatus,
        /// The last lines chromedriver wrote.
        log: String,
    },
    /// chromedriver was still not listening when the start-up wait ran out.
    #[error("chromedriver did not listen on 127.0.0.1:{port} within {waited:?}; its log:\n{log}")]
    ChromedriverNotReady {
        /// The port chromedriver was told to listen on.
        port: u16,
        /// How long the harness waited.
        waited: Duration,
        /// The last lines chromedriver wrote.
        log: String,
    },
    /// chromedriver could not open a session with headless Chromium.
    #[error("opening a headless Chromium session failed: {source}; chromedriver's log:\n{log}")]
    BrowserSession {
        /// fantoccini's error (chromedriver's answer, or why there was none).
        #[source]
        source: Box<fantoccini::error::NewSessionError>,
        /// The last lines chromedriver (and Chromium) wrote.
        log: String,
    },
    /// The browser's answer to "how large is the window's frame?" was not two numbers.
    #[error("the browser's window frame could not be measured: it answered {answer}")]
    BrowserFrame {
        /// What the script returned.
        answer: serde_json::Value,
    },
    /// A WebDriver command failed.
    #[error("{action} in the browser failed: {source}")]
    WebDriver {
        /// What was being done ("taking a screenshot", ...).
        action: &'static str,
        /// fantoccini's error.
        #[source]
        source: Box<fantoccini::error::CmdError>,
    },
    /// [`Browser::wait_for_text`](crate::Browser::wait_for_text) ran out of time.
    #[error("the element {css:?} did not show {expected:?} within {waited:?}; last seen: {last:?}")]
    TextNotShown {
        /// The CSS selector of the element.
        css: String,
        /// The text waited for.
        expected: String,
        /// The element's text when last read (`None`: no such element was ever found).
        last: Option<String>,
        /// How long the harness waited.
        waited: Duration,
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
