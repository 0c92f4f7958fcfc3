//! The in-process emulator as the broker under test.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use iotcore_emulator::control::{Control, CreatePolicyRequest, ThingOptions, ThingPolicy};
use iotcore_emulator::pki::KeyAlgorithm;
use iotcore_emulator::policy::PolicyTemplate;
use iotcore_emulator::things::write_device_files;
use iotcore_emulator::{Emulator, EmulatorConfig, Limits, Quotas};
use iotcore_test_support::{TestPki, init_tracing};
use tempfile::TempDir;

use super::{BrokerUnderTest, Credentials};

/// An emulator on 127.0.0.1 with its state in a temporary directory.
pub struct EmulatorBroker {
    emulator: Option<Emulator>,
    addr: SocketAddr,
    limits: Limits,
    data: TempDir,
    files: Arc<TempDir>,
    ca: PathBuf,
    stranger: Arc<TestPki>,
}

impl EmulatorBroker {
    pub async fn start() -> EmulatorBroker {
        EmulatorBroker::start_with_limits(Limits::default()).await
    }

    /// An emulator enforcing `limits` instead of AWS's.
    pub async fn start_with_limits(limits: Limits) -> EmulatorBroker {
        init_tracing();
        let data = tempfile::tempdir().expect("data dir");
        let files = Arc::new(tempfile::tempdir().expect("device files dir"));
        let emulator = start_at(&data, "127.0.0.1:0".parse().expect("addr"), &limits).await;
        let ca = files.path().join("emulator-ca.pem");
        std::fs::write(&ca, emulator.ca_pem()).expect("write CA");
        EmulatorBroker {
            addr: emulator.local_addr(),
            emulator: Some(emulator),
            limits,
            data,
            files,
            ca,
            stranger: Arc::new(TestPki::generate().expect("stranger PKI")),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Shuts the emulator down and starts it again on the same port and data.
    pub async fn restart(&mut self) {
        if let Some(emulator) = self.emulator.take() {
            emulator.shutdown().await;
        }
        self.emulator = Some(start_at(&self.data, self.addr, &self.limits).await);
    }

    /// The emulator's control layer (things, policies, jobs).
    pub fn control(&self) -> &Control {
        self.emulator.as_ref().expect("running").control()
    }

    /// The CA that signed the emulator's server certificate, as a PEM file.
    pub fn ca(&self) -> &std::path::Path {
        &self.ca
    }

    /// Registers thing `name` with a policy of its own, `<name>-policy`,
    /// holding `document`, and returns its credentials.
    pub fn register_with_policy(&self, name: &str, document: &str) -> Credentials {
        let emulator = self.emulator.as_ref().expect("running");
        let control = emulator.control();
        let policy_name = format!("{name}-policy");
        control
            .create_policy(CreatePolicyRequest {
                policy_name: policy_name.clone(),
                policy_document: document.into(),
                tags: None,
            })
            .expect("policy created");
        register_as(
            control,
            emulator.ca_pem(),
            &self.files,
            name,
            ThingPolicy::Existing(policy_name),
        )
    }

    /// The broker under test, reached at `port` (the emulator's, or a proxy's).
    pub fn under_test(&self, port: u16) -> BrokerUnderTest {
        let emulator = self.emulator.as_ref().expect("running");
        let control = emulator.control().clone();
        let unregistered = control.clone();
        let (files, unknown_files) = (self.files.clone(), self.files.clone());
        let ca_pem = emulator.ca_pem().to_owned();
        BrokerUnderTest {
            port,
            ca: self.ca.clone(),
            issue: Box::new(move |name| register(&control, &ca_pem, &files, name)),
            issue_unknown: Box::new(move |name| {
                // Signed by the emulator's CA but never registered: AWS's
                // "certificate not registered in this account".
                let creds = unregistered
                    .pki()
                    .issue_device_certificate(name, KeyAlgorithm::EcdsaP256)
                    .expect("issue certificate");
                let dir = unknown_files.path().join("unregistered");
                std::fs::create_dir_all(&dir).expect("dir");
                let files = write_device_files(name, &creds, "", &dir).expect("write files");
                Credentials {
                    cert: files.certificate,
                    key: files.private_key,
                }
            }),
            wrong_ca: self.stranger.ca_path().to_owned(),
        }
    }
}

async fn start_at(data: &TempDir, bind: SocketAddr, limits: &Limits) -> Emulator {
    // AWS's quotas without the rates: the scenarios reconnect and publish
    // faster than AWS allows.
    let config = EmulatorConfig::new(data.path())
        .with_bind(bind)
        .with_limits(limits.clone())
        .with_quotas(Quotas::aws().without_rates());
    Emulator::start(config).await.expect("start emulator")
}

/// Registers thing `name` as `iotcore thing create` does: with the default
/// thing policy (its own topics only), or, for the scenarios' cloud side
/// (`cloud-…`), the application policy (every device's topics).
fn register(control: &Control, ca_pem: &str, files: &TempDir, name: &str) -> Credentials {
    let template = if name.starts_with("cloud-") {
        PolicyTemplate::Application
    } else {
        PolicyTemplate::Thing
    };
    register_as(
        control,
        ca_pem,
        files,
        name,
        ThingPolicy::Template(template),
    )
}

/// Registers thing `name` with a new certificate and `policy` attached.
fn register_as(
    control: &Control,
    ca_pem: &str,
    files: &TempDir,
    name: &str,
    policy: ThingPolicy,
) -> Credentials {
    let options = ThingOptions::default()
        .with_key(KeyAlgorithm::EcdsaP256)
        .with_policy(policy);
    let creds = control
        .create_thing_with_certificate(name, &options)
        .expect("create thing")
        .credentials;
    let files = write_device_files(name, &creds, ca_pem, files.path()).expect("write files");
    Credentials {
        cert: files.certificate,
        key: files.private_key,
    }
}
