//! A headless Chromium driven over WebDriver (chromedriver), for tests of web pages.
//!
//! [`Browser::start`] runs Debian's `chromedriver` on a free loopback port and opens a session
//! with Debian's `chromium`, headless, with a fixed viewport and a fresh profile. Tests drive
//! the page with fantoccini's API through [`Browser::client`].

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use rustix::process::{Pid, Signal, kill_process_group};
use serde_json::{Map, Value, json};
use tempfile::TempDir;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::net::{loopback, try_free_port};

/// Where Debian's `chromium` package puts the browser's launcher.
const CHROMIUM: &str = "/usr/bin/chromium";
/// Where Debian's `chromium-driver` package puts chromedriver.
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The size of the page's viewport in CSS pixels, and so of a screenshot (the device scale
/// factor is 1): fixed, so that screenshots are the same from one run to the next.
pub const VIEWPORT: (u32, u32) = (1280, 900);

/// How long [`Browser::wait_for_text`] polls before giving up. Generous: it only decides when a
/// test fails, never whether it passes.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long [`Browser::start`] waits for chromedriver to listen.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How many fresh ports to try when another process takes the chosen one first.
const PORT_ATTEMPTS: usize = 5;
/// How often readiness and text are polled.
const POLL: Duration = Duration::from_millis(50);
/// How many lines of chromedriver's output go into an error message.
const LOG_LINES: usize = 40;

/// Chromium's switches besides the profile directory.
///
/// Headless without a sandbox (tests run as root in containers) or a GPU; nothing that reaches
/// out to Google's servers (this machine's network is closed, and a test must not depend on it):
/// no background networking, component updates, sync or QUIC.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--force-device-scale-factor=1",
];

/// A headless Chromium session, driven over WebDriver by a chromedriver child process.
///
/// Dropping it kills chromedriver together with the Chromium it started (they share a process
/// group), so a failing test leaves no browser behind; [`Browser::close`] ends the session
/// politely first.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use fantoccini::Locator;
/// use iotcore_test_support::Browser;
///
/// let browser = Browser::start().await?;
/// browser.client().goto("http://127.0.0.1:8080/").await?;
/// browser.client().find(Locator::Css("button#publish")).await?.click().await?;
/// browser.wait_for_text("#log", "published").await?;
/// browser.screenshot("console.png").await?;
/// browser.close().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Browser {
    // Dropped in this order: the WebDriver handle, then the processes, then their files.
    client: Client,
    driver: Driver,
    dir: TempDir,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a session with headless Chromium:
    /// a viewport of [`VIEWPORT`], a new profile in a temporary directory.
    ///
    /// # Errors
    ///
    /// [`Error::BrowserNotInstalled`] when Debian's `chromium` or `chromium-driver` is missing
    /// (run `scripts/setup-peers`); otherwise an error carrying chromedriver's log.
    pub async fn start() -> Result<Self> {
        require_installed(Path::new(CHROMIUM))?;
        require_installed(Path::new(CHROMEDRIVER))?;
        let dir = tempfile::Builder::new()
            .prefix("iotcore-browser-")
            .tempdir()
            .map_err(|e| Error::io("creating a temporary directory in", std::env::temp_dir(), e))?;
        let profile = dir.path().join("profile");
        let home = dir.path().join("home");
        for path in [&profile, &home] {
            std::fs::create_dir(path).map_err(|e| Error::io("creating", path, e))?;
        }
        let driver = Driver::start(Path::new(CHROMEDRIVER), dir.path()).await?;
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities(Path::new(CHROMIUM), &profile));
        let client = builder
            .connect(&format!("http://{}", loopback(driver.port)))
            .await
            .map_err(|source| Error::BrowserSession {
                source: Box::new(source),
                log: driver.log(),
            })?;
        tracing::debug!(port = driver.port, "headless Chromium session open");
        let browser = Browser {
            client,
            driver,
            dir,
        };
        browser.fit_viewport().await?;
        Ok(browser)
    }

    /// Sizes the window so that the viewport is [`VIEWPORT`]: even headless, Chromium's window
    /// has a frame and a toolbar of its own, whose size varies between versions.
    async fn fit_viewport(&self) -> Result<()> {
        let webdriver = |source| Error::WebDriver {
            action: "sizing the window",
            source: Box::new(source),
        };
        let frame = self
            .client
            .execute(
                "return [window.outerWidth - window.innerWidth, \
                         window.outerHeight - window.innerHeight];",
                Vec::new(),
            )
            .await
            .map_err(webdriver)?;
        let extra = |i: usize| frame[i].as_u64().and_then(|v| u32::try_from(v).ok());
        let (Some(extra_width), Some(extra_height)) = (extra(0), extra(1)) else {
            return Err(Error::BrowserFrame { answer: frame });
        };
        let (width, height) = VIEWPORT;
        self.client
            .set_window_size(width + extra_width, height + extra_height)
            .await
            .map_err(webdriver)
    }

    /// The WebDriver client: `goto`, `find(Locator::Css(..))`, `click`, `send_keys`,
    /// `wait().for_element(..)` and the rest of fantoccini's API.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Polls the text of the first element matching `css` until it contains `text`, and returns
    /// that text. An element that is missing or replaced meanwhile is looked up again.
    ///
    /// # Errors
    ///
    /// [`Error::TextNotShown`] after [`WAIT_TIMEOUT`], with the text last seen; a WebDriver
    /// error other than a missing or stale element at once.
    pub async fn wait_for_text(&self, css: &str, text: &str) -> Result<String> {
        let started = Instant::now();
        let mut last = None;
        loop {
            match self.text_of(css).await {
                Ok(seen) if seen.contains(text) => return Ok(seen),
                Ok(seen) => last = Some(seen),
                Err(e) if is_missing_or_stale(&e) => {}
                Err(source) => {
                    return Err(Error::WebDriver {
                        action: "reading an element's text",
                        source: Box::new(source),
                    });
                }
            }
            if started.elapsed() > WAIT_TIMEOUT {
                return Err(Error::TextNotShown {
                    css: css.to_owned(),
                    expected: text.to_owned(),
                    last,
                    waited: WAIT_TIMEOUT,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn text_of(&self, css: &str) -> Result<String, fantoccini::error::CmdError> {
        self.client.find(Locator::Css(css)).await?.text().await
    }

    /// Writes a PNG of the visible part of the page (the window's viewport) to `path`, creating
    /// its parent directories.
    pub async fn screenshot(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let png = self
            .client
            .screenshot()
            .await
            .map_err(|source| Error::WebDriver {
                action: "taking a screenshot",
                source: Box::new(source),
            })?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
        }
        std::fs::write(path, png).map_err(|e| Error::io("writing", path, e))
    }

    /// Ends the WebDriver session (Chromium quits), then stops chromedriver.
    pub async fn close(self) -> Result<()> {
        let Browser {
            client,
            driver,
            dir,
        } = self;
        let closed = client.close().await.map_err(|source| Error::WebDriver {
            action: "closing the session",
            source: Box::new(source),
        });
        drop(driver);
        drop(dir);
        closed
    }
}

/// The capabilities of a new session: Debian's Chromium, headless, with its profile in
/// `profile`.
fn capabilities(chromium: &Path, profile: &Path) -> Map<String, Value> {
    let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| (*a).to_owned()).collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    let mut capabilities = Map::new();
    capabilities.insert("browserName".to_owned(), json!("chrome"));
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({ "binary": chromium, "args": args }),
    );
    capabilities
}

fn require_installed(program: &Path) -> Result<()> {
    if program.is_file() {
        Ok(())
    } else {
        Err(Error::BrowserNotInstalled {
            program: program.to_owned(),
        })
    }
}

/// Whether a WebDriver error means "not there (yet)" rather than a broken session.
fn is_missing_or_stale(error: &fantoccini::error::CmdError) -> bool {
    use fantoccini::error::ErrorStatus;
    matches!(error, fantoccini::error::CmdError::Standard(e)
        if matches!(e.error, ErrorStatus::NoSuchElement | ErrorStatus::StaleElementReference))
}

/// The chromedriver process, leader of its own process group.
#[derive(Debug)]
struct Driver {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Driver {
    /// Starts chromedriver with its files in `dir` (see [`spawn`]) and waits until it listens.
    async fn start(program: &Path, dir: &Path) -> Result<Self> {
        let mut attempt = 1;
        loop {
            let port = try_free_port()
                .map_err(|e| Error::io("binding a probe socket on", "127.0.0.1:0", e))?;
            let mut driver = spawn(program, port, dir)?;
            match driver.wait_ready().await {
                Ok(()) => return Ok(driver),
                Err(Error::ChromedriverExited { log, .. })
                    if attempt < PORT_ATTEMPTS && log.contains("Address already in use") =>
                {
                    tracing::debug!(port, "another process took chromedriver's port; retrying");
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits until chromedriver accepts connections on its port.
    async fn wait_ready(&mut self) -> Result<()> {
        let started = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    return Err(Error::ChromedriverExited {
                        status,
                        log: self.log(),
                    });
                }
                Ok(None) => {}
                Err(e) => return Err(Error::io("waiting for", CHROMEDRIVER, e)),
            }
            if tokio::net::TcpStream::connect(loopback(self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(Error::ChromedriverNotReady {
                    port: self.port,
                    waited: READY_TIMEOUT,
                    log: self.log(),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The last lines chromedriver (and the Chromium it started) wrote.
    fn log(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(LOG_LINES)..];
        tail.iter().map(|l| format!("{l}\n")).collect()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver leads its own process group, which Chromium's processes join: killing
        // chromedriver alone would orphan them. (Chromium's crash handler leaves the group, and
        // exits by itself once the browser is gone.)
        let group = Pid::from_child(&self.child);
        if let Err(e) = kill_process_group(group, Signal::KILL) {
            tracing::debug!("killing chromedriver's process group: {e}");
        }
        // Fails only when the process is already reaped, which is what we want.
        let _ = self.child.wait();
    }
}

/// Starts chromedriver on `127.0.0.1:<port>` in a process group of its own, with its output in
/// `dir/chromedriver.log` and `HOME` in `dir/home`, so that nothing Chromium writes outside its
/// profile lands in the user's home.
fn spawn(program: &Path, port: u16, dir: &Path) -> Result<Driver> {
    use std::os::unix::process::CommandExt;
    let log = dir.join("chromedriver.log");
    let out = std::fs::File::create(&log).map_err(|e| Error::io("creating", &log, e))?;
    let err = out.try_clone().map_err(|e| Error::io("opening", &log, e))?;
    let home = dir.join("home");
    let child = Command::new(program)
        .arg(format!("--port={port}"))
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| Error::io("spawning", program, e))?;
    Ok(Driver { child, port, log })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_names_the_setup_script() {
        let error = require_installed(Path::new("/nonexistent/chromedriver")).unwrap_err();
        assert!(matches!(error, Error::BrowserNotInstalled { .. }));
        let message = error.to_string();
        assert!(message.contains("/nonexistent/chromedriver"), "{message}");
        assert!(message.contains("scripts/setup-peers"), "{message}");
    }

    #[test]
    fn the_session_asks_for_headless_chromium_in_its_own_profile() {
        let caps = capabilities(Path::new(CHROMIUM), Path::new("profile-dir"));
        let options = &caps["goog:chromeOptions"];
        assert_eq!(options["binary"], CHROMIUM);
        let args: Vec<&str> = options["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        for wanted in [
            "--headless",
            "--disable-background-networking",
            "--user-data-dir=profile-dir",
        ] {
            assert!(args.contains(&wanted), "{wanted} missing from {args:?}");
        }
    }
}
