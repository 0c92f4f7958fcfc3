//! The SDK's Greengrass core door (`ClientBuilder::greengrass_core`) against
//! the emulator (discovery) and a `LocalCore` (the core's broker), both in
//! process:
//!
//! * the first connectivity entry unreachable: the second is used, and the
//!   client says which address answered;
//! * the core's CA replaced while the device is connected: on its next
//!   connection the device fails TLS with the old CA, discovers again and
//!   connects with the new one, and what it published meanwhile arrives;
//! * a thing that is not associated: `connect` fails fast with the discovery
//!   refusal, which says what to check.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use iotcore::greengrass::{ConnectivityInfo, DiscoveryEndpoint};

use iotcore::{Client, DisconnectReason, QoS};
use iotcore_emulator::control::{
    BatchClientDevicesRequest, CreatePolicyRequest, CreateThingRequest, ThingOptions, ThingPolicy,
    UpdateConnectivityInfoRequest,
};
use iotcore_emulator::local_core::{LocalCore, LocalCoreConfig};
use iotcore_emulator::pki::{DeviceCredentials, KeyAlgorithm};
use iotcore_emulator::{Emulator, EmulatorConfig};
use iotcore_test_support::FaultProxy;
use tempfile::TempDir;

/// Safety net for what must happen; never a performance threshold.
const PATIENCE: Duration = Duration::from_secs(30);

const CORE: &str = "core1";

/// The cloud emulator with core device [`CORE`] and a local core running it.
struct Setup {
    _dirs: (TempDir, TempDir),
    cloud: Emulator,
    core: LocalCore,
}

impl Setup {
    async fn start() -> Setup {
        iotcore_test_support::init_tracing();
        let (data, core_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let cloud = Emulator::start(
            EmulatorConfig::new(data.path()).with_bind("127.0.0.1:0".parse().unwrap()),
        )
        .await
        .expect("emulator");
        let control = cloud.control();
        control
            .create_policy(CreatePolicyRequest {
                policy_name: "devices".into(),
                policy_document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iot:*","greengrass:Discover"],"Resource":"*"}]}"#.into(),
                tags: None,
            })
            .expect("policy");
        control
            .create_thing(CreateThingRequest::named(CORE))
            .expect("core thing");
        control.register_core_device(CORE).expect("core device");
        let core = LocalCore::start(
            LocalCoreConfig::new(CORE, core_dir.path(), "127.0.0.1:0".parse().unwrap()),
            control.clone(),
        )
        .await
        .expect("core");
        Setup {
            _dirs: (data, core_dir),
            cloud,
            core,
        }
    }

    /// Thing `name` with a certificate and policy, associated with the core
    /// (mirrored to it at once) if `associate`.
    async fn device(&self, name: &str, associate: bool) -> DeviceCredentials {
        let control = self.cloud.control();
        let credentials = control
            .create_thing_with_certificate(
                name,
                &ThingOptions::default()
                    .with_key(KeyAlgorithm::EcdsaP256)
                    .with_policy(ThingPolicy::Existing("devices".into())),
            )
            .expect("device")
            .credentials;
        if associate {
            control
                .batch_associate_client_device_with_core_device(BatchClientDevicesRequest::new(
                    CORE,
                    [name],
                ))
                .expect("associated");
            self.core.sync().await.expect("synced");
        }
        credentials
    }

    fn set_addresses(&self, addresses: &[SocketAddr]) {
        self.cloud
            .control()
            .update_connectivity_info(UpdateConnectivityInfoRequest {
                thing_name: CORE.into(),
                connectivity_info: addresses
                    .iter()
                    .enumerate()
                    .map(|(i, addr)| ConnectivityInfo {
                        id: format!("address-{i}"),
                        host_address: addr.ip().to_string(),
                        port: addr.port(),
                        metadata: String::new(),
                    })
                    .collect(),
            })
            .expect("connectivity");
    }

    /// Discovery on the emulator's MQTT port, with ALPN `x-amzn-http-ca`.
    fn discovery(&self) -> DiscoveryEndpoint {
        DiscoveryEndpoint::new("localhost", self.cloud.local_addr().port())
            .alpn(true)
            .amazon_root_cas(false)
            .root_ca_pem(self.cloud.ca_pem())
            .expect("CA")
    }

    fn builder(&self, name: &str, credentials: &DeviceCredentials) -> iotcore::ClientBuilder {
        Client::builder(name)
            .client_cert_pem(&credentials.certificate_pem, &credentials.private_key_pem)
            .expect("identity")
            .greengrass_core(self.discovery())
    }
}

/// A loopback port nothing listens on.
fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

async fn next(messages: &mut iotcore::Subscription) -> String {
    let message = tokio::time::timeout(PATIENCE, messages.next())
        .await
        .expect("a message in time")
        .expect("the stream goes on");
    message.payload_str().expect("UTF-8").to_owned()
}

#[tokio::test]
async fn an_unreachable_first_address_is_skipped_and_the_second_one_is_used() {
    let setup = Setup::start().await;
    let credentials = setup.device("sensor", true).await;
    setup.set_addresses(&[closed_port(), setup.core.local_addr()]);

    let client = setup
        .builder("sensor", &credentials)
        .connect()
        .await
        .expect("connected through the second address");
    let answered = client.greengrass_core().expect("a core answered");
    assert_eq!(answered.port, setup.core.local_addr().port());
    assert_eq!(answered.host, "127.0.0.1");
    assert!(
        answered.core_thing_arn.ends_with(":thing/core1"),
        "{answered:?}"
    );

    let mut messages = client.subscribe("local/#", QoS::AtLeastOnce).await.unwrap();
    client
        .publish("local/hello", "through the core", QoS::AtLeastOnce)
        .await
        .unwrap();
    assert_eq!(next(&mut messages).await, "through the core");
    client.close().await;
}

#[tokio::test]
async fn after_the_core_ca_changes_the_device_discovers_again_and_loses_nothing() {
    let setup = Setup::start().await;
    let sensor = setup.device("sensor", true).await;
    let actuator = setup.device("actuator", true).await;
    // The actuator reaches the core directly; the sensor through a proxy
    // that can cut its link (discovery lists only the proxy when it asks).
    setup.set_addresses(&[setup.core.local_addr()]);
    let actuator = setup
        .builder("actuator", &actuator)
        .connect()
        .await
        .expect("actuator connected");
    let proxy = FaultProxy::start(setup.core.local_addr()).await.unwrap();
    setup.set_addresses(&[proxy.addr()]);
    let sensor = setup
        .builder("sensor", &sensor)
        .persistent_session(Duration::from_secs(600))
        .connect()
        .await
        .expect("sensor connected");
    assert_eq!(sensor.greengrass_core().map(|a| a.port), Some(proxy.port()));
    let mut received = actuator
        .subscribe("data/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    sensor
        .publish("data/1", "before", QoS::AtLeastOnce)
        .await
        .unwrap();
    assert_eq!(next(&mut received).await, "before");

    setup.core.rotate_ca().await.expect("a new CA");
    proxy.cut();
    const DURING: usize = 5;
    let publishing = {
        let sensor = sensor.clone();
        tokio::spawn(async move {
            for i in 0..DURING {
                sensor
                    .publish(format!("data/{i}"), format!("during-{i}"), QoS::AtLeastOnce)
                    .await
                    .expect("acknowledged once reconnected");
            }
        })
    };
    for i in 0..DURING {
        assert_eq!(next(&mut received).await, format!("during-{i}"));
    }
    tokio::time::timeout(PATIENCE, publishing)
        .await
        .expect("the publishes complete")
        .unwrap();
    assert!(sensor.greengrass_core().is_some());
    sensor.close().await;
    actuator.close().await;
}

#[tokio::test]
async fn a_thing_that_is_not_associated_fails_fast_with_what_to_check() {
    let setup = Setup::start().await;
    let stranger = setup.device("stranger", false).await;
    let error = setup
        .builder("stranger", &stranger)
        .connect()
        .await
        .expect_err("not associated");
    match error.disconnect_reason() {
        Some(DisconnectReason::DiscoveryFailed { refused, detail }) => {
            assert!(refused, "{detail}");
            assert!(
                detail.contains("404") && detail.contains("associate"),
                "{detail}"
            );
        }
        other => panic!("expected a discovery refusal, got {other:?} ({error})"),
    }
}
