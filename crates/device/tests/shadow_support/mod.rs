//! What the shadow tests share: an in-process emulator, devices confined to
//! their own topics, applications allowed on every device's shadow, and
//! bounded waits.
#![allow(dead_code)] // each test binary uses a different subset

use std::future::Future;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use iotcore::{Client, ClientBuilder, ReconnectPolicy};
use iotcore_emulator::control::{ThingOptions, ThingPolicy};
use iotcore_emulator::pki::{DeviceCredentials, KeyAlgorithm};
use iotcore_emulator::policy::PolicyTemplate;
use iotcore_emulator::{Emulator, EmulatorConfig, Quotas, Shadows};
use iotcore_test_support::init_tracing;
use tempfile::TempDir;

/// How long a test waits for something that should happen promptly before
/// declaring it hung. A guard against hangs, not a performance threshold.
pub const HANG_GUARD: Duration = Duration::from_secs(30);

/// An emulator on 127.0.0.1 with its state in a temporary directory.
pub struct Harness {
    emulator: Emulator,
    _data: TempDir,
}

impl Harness {
    pub async fn start() -> Harness {
        init_tracing();
        let data = tempfile::tempdir().expect("data dir");
        // AWS's quotas without the rates: the tests reconnect faster than AWS allows.
        let config = EmulatorConfig::new(data.path())
            .with_bind("127.0.0.1:0".parse().unwrap())
            .with_quotas(Quotas::aws().without_rates());
        let emulator = Emulator::start(config).await.expect("start emulator");
        Harness {
            emulator,
            _data: data,
        }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.emulator.local_addr()
    }

    /// The emulator's cloud-side shadow API (AWS's data-plane HTTPS API).
    pub fn shadows(&self) -> Shadows {
        self.emulator.shadows()
    }

    /// Registers `thing` with a certificate and the policy of `template`.
    pub fn register(&self, thing: &str, template: PolicyTemplate) -> DeviceCredentials {
        let options = ThingOptions::default()
            .with_key(KeyAlgorithm::EcdsaP256)
            .with_policy(ThingPolicy::Template(template));
        self.emulator
            .control()
            .create_thing_with_certificate(thing, &options)
            .expect("create thing")
            .credentials
    }

    /// A builder for `thing` with `credentials`, reaching the emulator at `port`
    /// (its own, or a proxy's), with fast reconnects.
    pub fn builder(
        &self,
        thing: &str,
        credentials: &DeviceCredentials,
        port: u16,
    ) -> ClientBuilder {
        Client::builder(thing)
            .endpoint("127.0.0.1")
            .port(port)
            .amazon_root_cas(false)
            .root_ca_pem(self.emulator.ca_pem())
            .expect("CA")
            .client_cert_pem(&credentials.certificate_pem, &credentials.private_key_pem)
            .expect("client certificate")
            .reconnect_policy(ReconnectPolicy {
                initial_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(200),
                reset_after: Duration::from_secs(30),
                seed: Some(7),
            })
    }

    /// A connected device: a thing confined to its own topics.
    pub async fn device(&self, thing: &str) -> Client {
        let credentials = self.register(thing, PolicyTemplate::Thing);
        within(
            "device connect",
            self.builder(thing, &credentials, self.addr().port())
                .connect(),
        )
        .await
        .expect("device connects")
    }

    /// A connected application: allowed on every device's shadow.
    pub async fn app(&self, thing: &str) -> Client {
        let credentials = self.register(thing, PolicyTemplate::Application);
        within(
            "app connect",
            self.builder(thing, &credentials, self.addr().port())
                .connect(),
        )
        .await
        .expect("application connects")
    }

    pub async fn shutdown(self) {
        self.emulator.shutdown().await;
    }
}

/// Awaits `fut`, failing the test if it hangs.
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(HANG_GUARD, fut).await {
        Ok(v) => v,
        Err(_) => panic!("hung waiting for {what}"),
    }
}

/// The next item of `stream`, failing the test if it hangs or ends.
pub async fn next<S: Stream + Unpin>(what: &str, stream: &mut S) -> S::Item {
    within(what, stream.next())
        .await
        .unwrap_or_else(|| panic!("stream ended while waiting for {what}"))
}

/// A JSON object from a `json!` literal.
pub fn object(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match value {
        serde_json::Value::Object(object) => object,
        other => panic!("not an object: {other}"),
    }
}
