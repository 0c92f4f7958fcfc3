//! `iotcore::greengrass::discover` against the emulator's discovery endpoint:
//! the 200 answer parsed (on the MQTT port with ALPN `x-amzn-http-ca`, and on
//! the API port without), and each refusal a typed error: 403 `Forbidden`,
//! 404 `NotFound`, an inactive certificate `ConnectionClosed` (on both
//! ports), an untrusted server `Tls`.

use iotcore::Identity;
use iotcore::greengrass::{ConnectivityInfo, DiscoveryEndpoint, DiscoveryError, discover};
use iotcore_emulator::control::{
    BatchClientDevicesRequest, CreatePolicyRequest, CreateThingRequest, ThingOptions, ThingPolicy,
    UpdateCertificateRequest, UpdateConnectivityInfoRequest,
};
use iotcore_emulator::pki::{DeviceCredentials, KeyAlgorithm};
use iotcore_emulator::{Emulator, EmulatorConfig};
use tempfile::TempDir;

/// An emulator (MQTT and API ports free) with core device `core1` (two
/// addresses, the emulator's CA as its CA), `dev1` associated with it,
/// `dev2` not, `dev3` associated without the Discover permission.
struct Setup {
    _dir: TempDir,
    emulator: Emulator,
}

impl Setup {
    async fn start() -> Setup {
        iotcore_test_support::init_tracing();
        let dir = tempfile::tempdir().expect("data dir");
        let config = EmulatorConfig::new(dir.path())
            .with_bind("127.0.0.1:0".parse().expect("addr"))
            .with_api_bind("127.0.0.1:0".parse().expect("addr"));
        let emulator = Emulator::start(config).await.expect("emulator");
        let control = emulator.control();
        let arn = format!("{}thing/dev1", control.arn_scope().prefix());
        let document = serde_json::json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "greengrass:Discover", "Resource": [arn, arn.replace("dev1", "dev2")]},
        ]});
        control
            .create_policy(CreatePolicyRequest {
                policy_name: "discover".into(),
                policy_document: document.to_string(),
                tags: None,
            })
            .expect("policy");
        control
            .create_thing(CreateThingRequest::named("core1"))
            .expect("core");
        control.register_core_device("core1").expect("core device");
        control
            .update_connectivity_info(UpdateConnectivityInfoRequest {
                thing_name: "core1".into(),
                connectivity_info: vec![
                    address("lan", "192.0.2.7", 8883),
                    address("lo", "127.0.0.1", 18883),
                ],
            })
            .expect("connectivity");
        control
            .put_certificate_authorities("core1", &[emulator.ca_pem().to_owned()])
            .expect("CA");
        Setup {
            _dir: dir,
            emulator,
        }
    }

    /// Thing `name` with a certificate that has policy "discover" attached,
    /// associated with core1 when `associate`.
    fn device(&self, name: &str, associate: bool) -> DeviceCredentials {
        let control = self.emulator.control();
        let credentials = control
            .create_thing_with_certificate(
                name,
                &ThingOptions::default()
                    .with_key(KeyAlgorithm::EcdsaP256)
                    .with_policy(ThingPolicy::Existing("discover".into())),
            )
            .expect("device")
            .credentials;
        if associate {
            control
                .batch_associate_client_device_with_core_device(BatchClientDevicesRequest::new(
                    "core1",
                    [name],
                ))
                .expect("associated");
        }
        credentials
    }

    /// The MQTT port, with ALPN `x-amzn-http-ca`, trusting the emulator's CA only.
    fn mqtt_port(&self) -> DiscoveryEndpoint {
        DiscoveryEndpoint::new("localhost", self.emulator.local_addr().port())
            .alpn(true)
            .amazon_root_cas(false)
            .root_ca_pem(self.emulator.ca_pem())
            .expect("CA")
    }

    /// The API port, without ALPN (AWS's 8443), trusting the emulator's CA only.
    fn api_port(&self) -> DiscoveryEndpoint {
        let port = self.emulator.api_addr().expect("API").port();
        DiscoveryEndpoint::new("localhost", port)
            .amazon_root_cas(false)
            .root_ca_pem(self.emulator.ca_pem())
            .expect("CA")
    }
}

fn address(id: &str, host: &str, port: u16) -> ConnectivityInfo {
    ConnectivityInfo {
        id: id.into(),
        host_address: host.into(),
        port,
        metadata: String::new(),
    }
}

fn identity(credentials: &DeviceCredentials) -> Identity {
    Identity::from_pem(
        credentials.certificate_pem.as_bytes(),
        credentials.private_key_pem.as_bytes(),
    )
    .expect("identity")
}

#[tokio::test]
async fn discovery_returns_the_associated_core_its_addresses_in_order_and_its_ca() {
    let setup = Setup::start().await;
    let dev1 = identity(&setup.device("dev1", true));
    for endpoint in [setup.mqtt_port(), setup.api_port()] {
        let response = discover(&dev1, &endpoint, "dev1")
            .await
            .expect("discovered");
        assert_eq!(response.groups.len(), 1);
        let group = &response.groups[0];
        assert_eq!(group.id, "greengrassV2-coreDevice-core1");
        assert_eq!(group.cas, [setup.emulator.ca_pem()]);
        let candidates: Vec<(&str, &str, u16)> = response
            .candidates()
            .map(|(_, core, a)| (core.thing_arn.as_str(), a.host_address.as_str(), a.port))
            .collect();
        let arn = format!("{}thing/core1", setup.emulator.arn_scope().prefix());
        assert_eq!(
            candidates,
            [
                (arn.as_str(), "192.0.2.7", 8883),
                (arn.as_str(), "127.0.0.1", 18883)
            ]
        );
    }
}

#[tokio::test]
async fn refusals_are_typed_errors_that_say_what_to_check() {
    let setup = Setup::start().await;
    let dev1 = setup.device("dev1", true);
    let dev2 = identity(&setup.device("dev2", false));
    let dev3 = identity(&setup.device("dev3", true));

    let error = discover(&dev3, &setup.mqtt_port(), "dev3")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, DiscoveryError::Forbidden { thing } if thing == "dev3"),
        "{error}"
    );
    let error = discover(&dev2, &setup.mqtt_port(), "dev2")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, DiscoveryError::NotFound { thing } if thing == "dev2"),
        "{error}"
    );
    let error = discover(&dev2, &setup.api_port(), "dev1")
        .await
        .unwrap_err();
    assert!(
        matches!(error, DiscoveryError::ConnectionClosed { .. }),
        "dev2's certificate is not attached to dev1: {error}"
    );

    let untrusting = DiscoveryEndpoint::new("localhost", setup.emulator.local_addr().port())
        .alpn(true)
        .amazon_root_cas(true);
    let error = discover(&identity(&dev1), &untrusting, "dev1")
        .await
        .unwrap_err();
    assert!(matches!(error, DiscoveryError::Tls { .. }), "{error}");

    setup
        .emulator
        .control()
        .update_certificate(UpdateCertificateRequest {
            certificate_id: dev1.certificate_id.clone(),
            new_status: "INACTIVE".into(),
        })
        .expect("deactivated");
    for endpoint in [setup.api_port(), setup.mqtt_port()] {
        let error = discover(&identity(&dev1), &endpoint, "dev1")
            .await
            .unwrap_err();
        assert!(
            matches!(error, DiscoveryError::ConnectionClosed { .. }),
            "an inactive certificate gets no answer: {error}"
        );
        assert!(error.to_string().contains("ACTIVE and attached"), "{error}");
    }
}
