//! Shared helpers of the device client's integration tests: the broker under
//! test (Mosquitto or the emulator), client builders, and bounded waits.
#![allow(dead_code)] // each test binary uses a different subset

pub mod emulator;
pub mod faults;
pub mod mosquitto;
pub mod scenarios;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use iotcore::{Client, ClientBuilder, ConnectionState, ErrorKind, ReconnectPolicy};
use tokio::sync::watch;

/// How long a test waits for something that should happen promptly before
/// declaring it hung. A guard against hangs, not a performance threshold.
pub const HANG_GUARD: Duration = Duration::from_secs(30);

/// A client certificate and key on disk.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What a scenario needs to know about the broker it runs against.
pub struct BrokerUnderTest {
    /// Where clients connect (the broker itself, or a fault proxy before it).
    pub port: u16,
    /// The CA that signed the broker's certificate.
    pub ca: PathBuf,
    /// Makes credentials the broker accepts for a thing / client id.
    pub issue: Box<dyn Fn(&str) -> Credentials + Send + Sync>,
    /// Makes credentials the broker has never seen (signed by another CA).
    pub issue_unknown: Box<dyn Fn(&str) -> Credentials + Send + Sync>,
    /// A CA that did not sign the broker's certificate.
    pub wrong_ca: PathBuf,
}

impl BrokerUnderTest {
    /// A builder for `thing`, trusting the broker's CA only, with fast
    /// reconnects so tests do not wait on production backoff.
    pub fn client(&self, thing: &str) -> ClientBuilder {
        let creds = (self.issue)(thing);
        builder_for(self.port, &self.ca, &creds, thing)
    }
}

/// A builder connecting to 127.0.0.1:`port` with `creds`, trusting `ca` only.
pub fn builder_for(
    port: u16,
    ca: &std::path::Path,
    creds: &Credentials,
    thing: &str,
) -> ClientBuilder {
    Client::builder(thing)
        .endpoint("127.0.0.1")
        .port(port)
        .amazon_root_cas(false)
        .root_ca_pem_file(ca)
        .expect("CA file")
        .client_cert_pem_files(&creds.cert, &creds.key)
        .expect("client certificate")
        .reconnect_policy(fast_reconnect(7))
        .connect_timeout(Duration::from_secs(5))
}

/// Backoff from 10 ms to 200 ms, seeded.
pub fn fast_reconnect(seed: u64) -> ReconnectPolicy {
    ReconnectPolicy {
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(200),
        reset_after: Duration::from_secs(30),
        seed: Some(seed),
    }
}

/// Awaits `fut`, failing the test if it hangs.
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(HANG_GUARD, fut).await {
        Ok(v) => v,
        Err(_) => panic!("hung waiting for {what}"),
    }
}

/// Connects with `builder`, expecting `connect()` to fail at once with
/// [`ErrorKind::ConnectRefused`]; returns the error.
pub async fn connect_refused(builder: ClientBuilder) -> iotcore::Error {
    let error = within("a refused connect", builder.connect())
        .await
        .expect_err("the connection is refused");
    assert_eq!(error.kind(), ErrorKind::ConnectRefused, "{error}");
    error
}

/// The next item of `stream`, failing the test if it hangs or ends.
pub async fn next<S: Stream + Unpin>(what: &str, stream: &mut S) -> S::Item {
    within(what, stream.next())
        .await
        .unwrap_or_else(|| panic!("stream ended while waiting for {what}"))
}

/// Waits until the state satisfies `pred`; returns that state.
pub async fn wait_state(
    status: &mut watch::Receiver<ConnectionState>,
    what: &str,
    pred: impl Fn(&ConnectionState) -> bool,
) -> ConnectionState {
    within(what, status.wait_for(|s| pred(s)))
        .await
        .expect("status channel closed")
        .clone()
}
