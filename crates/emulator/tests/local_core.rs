//! A local Greengrass core beside the cloud emulator: its CA uploaded and its
//! address reported for discovery, client devices admitted by the cloud's
//! view (associated, certificate active, client id = thing name), the
//! certificate rotated, the CA replaced.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use iotcore_emulator::control::{
    BatchClientDevicesRequest, Control, CreateThingRequest, Discovery, GetConnectivityInfoRequest,
    ThingPolicy, UpdateConnectivityInfoRequest,
};
use iotcore_emulator::local_core::{LocalCore, LocalCoreConfig};
use iotcore_model::greengrass::ConnectivityInfo;
use iotcore_mqtt::{Packet, ProtocolVersion, QoS, ReasonCode};
use rustls::pki_types::ServerName;
use support::{Device, RawClient, Setup, connect_packet, create_policy, tls_config};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const CORE: &str = "my-core";

/// A cloud with core device [`CORE`], client devices allowed to discover.
struct Cloud {
    setup: Setup,
    core_dir: TempDir,
}

impl Cloud {
    async fn start() -> Cloud {
        let setup = Setup::start().await;
        create_policy(
            setup.emulator.control(),
            "client-device",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iot:*","greengrass:Discover"],"Resource":"*"}]}"#,
        );
        let control = setup.emulator.control();
        control
            .create_thing(CreateThingRequest::named(CORE))
            .expect("core thing");
        control.register_core_device(CORE).expect("core device");
        Cloud {
            setup,
            core_dir: tempfile::tempdir().expect("core directory"),
        }
    }

    fn control(&self) -> &Control {
        self.setup.emulator.control()
    }

    /// Thing `name` with a certificate, associated with the core if `associate`.
    fn device(&self, name: &str, associate: bool) -> Device {
        let device = self
            .setup
            .device_with(name, ThingPolicy::Existing("client-device".into()));
        if associate {
            let answer = self
                .control()
                .batch_associate_client_device_with_core_device(BatchClientDevicesRequest::new(
                    CORE,
                    [name],
                ))
                .expect("associated");
            assert!(answer.error_entries.is_empty(), "{answer:?}");
        }
        device
    }

    async fn core(&self) -> LocalCore {
        let config = LocalCoreConfig::new(
            CORE,
            self.core_dir.path(),
            SocketAddr::from(([127, 0, 0, 1], 0)),
        );
        LocalCore::start(config, self.control().clone())
            .await
            .expect("core starts")
    }

    /// The CAs discovery hands `device`.
    fn discovered_cas(&self, device: &Device) -> Vec<String> {
        match self
            .control()
            .discover(&device.credentials.certificate_id, &device.name, None)
            .expect("discovery")
        {
            Discovery::Found(found) => found.groups.into_iter().flat_map(|g| g.cas).collect(),
            other => panic!("discovery answered {other:?}"),
        }
    }
}

/// Connects `device` to the core trusting `ca`, with `client_id`, under
/// server name `server_name`: the CONNACK's reason, or `None` if the core
/// closed the connection (TLS refusal, or no CONNACK).
async fn connect(
    core: &LocalCore,
    device: &Device,
    ca: &str,
    client_id: &str,
    server_name: &str,
) -> Option<(RawClient, ReasonCode)> {
    let config = tls_config(
        ca,
        &device.credentials.certificate_pem,
        &device.credentials.private_key_pem,
        None,
    );
    let tcp = TcpStream::connect(core.local_addr()).await.ok()?;
    let name = ServerName::try_from(server_name.to_owned()).expect("server name");
    let stream = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .ok()?;
    let mut client = RawClient::from_stream(stream);
    client
        .send(&Packet::Connect(Box::new(connect_packet(
            client_id,
            ProtocolVersion::V311,
        ))))
        .await;
    match client.recv().await {
        Some(Packet::ConnAck(connack)) => Some((client, connack.reason)),
        _ => None,
    }
}

#[tokio::test]
async fn a_client_device_connects_to_the_core_with_its_cloud_certificate_as_its_thing_name() {
    let cloud = Cloud::start().await;
    let sensor = cloud.device("sensor", true);
    let core = cloud.core().await;

    // The core reported its broker's address and uploaded its CA.
    let info = cloud
        .control()
        .get_connectivity_info(GetConnectivityInfoRequest {
            thing_name: CORE.into(),
        })
        .expect("connectivity");
    assert_eq!(info.connectivity_info.len(), 1, "{info:?}");
    assert_eq!(info.connectivity_info[0].host_address, "127.0.0.1");
    assert_eq!(info.connectivity_info[0].port, core.local_addr().port());
    assert_eq!(cloud.discovered_cas(&sensor), vec![core.ca_pem()]);

    let ca = core.ca_pem();
    let (mut client, reason) = connect(&core, &sensor, &ca, "sensor", "localhost")
        .await
        .expect("connected");
    assert_eq!(reason, ReasonCode::SUCCESS);
    client.subscribe(1, &["local/#"], QoS::AtLeastOnce).await;
    client
        .publish_qos1(2, "local/hello", b"on the core".as_slice())
        .await;
    let message = client.recv_publish().await;
    assert_eq!(message.topic, "local/hello");
    assert_eq!(&message.payload[..], b"on the core");

    // Another client id than its thing name: not allowed by the core's policy.
    let refused = connect(&core, &sensor, &ca, "not-its-name", "localhost").await;
    assert!(
        refused.is_none_or(|(_, reason)| reason != ReasonCode::SUCCESS),
        "a client id other than the thing name must be refused"
    );
    core.shutdown().await;
}

#[tokio::test]
async fn a_device_not_associated_with_the_core_is_refused() {
    let cloud = Cloud::start().await;
    let stranger = cloud.device("stranger", false);
    let core = cloud.core().await;
    let ca = core.ca_pem();
    assert!(
        connect(&core, &stranger, &ca, "stranger", "localhost")
            .await
            .is_none()
    );
    core.shutdown().await;
}

#[tokio::test]
async fn a_device_disassociated_or_deactivated_in_the_cloud_is_cut_off_at_the_next_sync() {
    let cloud = Cloud::start().await;
    let sensor = cloud.device("sensor", true);
    let actuator = cloud.device("actuator", true);
    let core = cloud.core().await;
    let ca = core.ca_pem();
    let (mut sensor_client, _) = connect(&core, &sensor, &ca, "sensor", "localhost")
        .await
        .expect("sensor connected");
    let (mut actuator_client, _) = connect(&core, &actuator, &ca, "actuator", "localhost")
        .await
        .expect("actuator connected");

    cloud
        .control()
        .batch_disassociate_client_device_from_core_device(BatchClientDevicesRequest::new(
            CORE,
            ["sensor"],
        ))
        .expect("disassociated");
    support::set_certificate_status(
        cloud.control(),
        &actuator.credentials.certificate_id,
        "INACTIVE",
    );
    let synced = core.sync().await.expect("synced");
    // The sensor's certificate is withdrawn, the actuator's mirrors INACTIVE.
    assert_eq!(synced.certificates_withdrawn, 1, "{synced:?}");
    assert_eq!(synced.certificates_changed, 1, "{synced:?}");
    assert!(!synced.devices.contains("sensor"), "{synced:?}");

    sensor_client.until_closed().await;
    actuator_client.until_closed().await;
    assert!(
        connect(&core, &sensor, &ca, "sensor", "localhost")
            .await
            .is_none()
    );
    assert!(
        connect(&core, &actuator, &ca, "actuator", "localhost")
            .await
            .is_none()
    );
    core.shutdown().await;
}

#[tokio::test]
async fn the_server_certificate_covers_the_connectivity_hosts_and_follows_their_changes() {
    let cloud = Cloud::start().await;
    let sensor = cloud.device("sensor", true);
    let core = cloud.core().await;
    let ca = core.ca_pem();
    assert!(
        connect(&core, &sensor, &ca, "sensor", "gateway.local")
            .await
            .is_none(),
        "the certificate does not cover a host that is not in the connectivity information"
    );

    let port = core.local_addr().port();
    cloud
        .control()
        .update_connectivity_info(UpdateConnectivityInfoRequest {
            thing_name: CORE.into(),
            connectivity_info: vec![ConnectivityInfo {
                id: "lan".into(),
                host_address: "gateway.local".into(),
                port,
                metadata: String::new(),
            }],
        })
        .expect("connectivity updated");
    core.sync().await.expect("synced");
    let (_, reason) = connect(&core, &sensor, &ca, "sensor", "gateway.local")
        .await
        .expect("the new certificate covers gateway.local");
    assert_eq!(reason, ReasonCode::SUCCESS);
    core.shutdown().await;
}

#[tokio::test]
async fn a_new_core_ca_is_uploaded_and_the_old_one_no_longer_verifies_the_core() {
    let cloud = Cloud::start().await;
    let sensor = cloud.device("sensor", true);
    let core = cloud.core().await;
    let old = core.ca_pem();
    let (mut connected, _) = connect(&core, &sensor, &old, "sensor", "localhost")
        .await
        .expect("connected");

    core.rotate_ca().await.expect("new CA");
    let new = core.ca_pem();
    assert_ne!(old, new);
    assert_eq!(cloud.discovered_cas(&sensor), vec![new.clone()]);
    assert!(
        connect(&core, &sensor, &old, "sensor", "localhost")
            .await
            .is_none(),
        "the old CA does not verify the new server certificate"
    );
    // A connection made before goes on.
    connected.send(&Packet::PingReq).await;
    assert!(matches!(connected.recv().await, Some(Packet::PingResp)));
    let (_, reason) = connect(&core, &sensor, &new, "sensor", "localhost")
        .await
        .expect("the new CA verifies it");
    assert_eq!(reason, ReasonCode::SUCCESS);
    core.shutdown().await;
}

#[tokio::test]
async fn the_core_restarts_with_its_ca_and_its_own_certificate() {
    let cloud = Cloud::start().await;
    let first = cloud.core().await;
    let (ca, identity) = (first.ca_pem(), first.identity().clone());
    first.shutdown().await;
    let second = cloud.core().await;
    assert_eq!(second.ca_pem(), ca);
    assert_eq!(second.identity().certificate_id, identity.certificate_id);
    second.shutdown().await;
}

#[tokio::test]
async fn the_client_policy_the_core_is_started_with_replaces_the_one_it_had() {
    let cloud = Cloud::start().await;
    let sensor = cloud.device("sensor", true);
    let core = cloud.core().await;
    let ca = core.ca_pem();
    let (_, reason) = connect(&core, &sensor, &ca, "sensor", "localhost")
        .await
        .expect("connected under the default policy");
    assert_eq!(reason, ReasonCode::SUCCESS);
    core.shutdown().await;

    let only_the_gateway = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:*:*:client/gateway"}]}"#;
    let config = LocalCoreConfig::new(
        CORE,
        cloud.core_dir.path(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .with_client_policy(only_the_gateway);
    let core = LocalCore::start(config, cloud.control().clone())
        .await
        .expect("core restarts");
    let refused = connect(&core, &sensor, &ca, "sensor", "localhost").await;
    assert!(
        refused.is_none_or(|(_, reason)| reason != ReasonCode::SUCCESS),
        "the new policy does not let the sensor connect"
    );
    core.shutdown().await;
}

/// AWS's restrictive example of the client device auth configuration, for
/// things whose names start with `sensor`.
const DEVICE_GROUPS: &str = r#"{
  "deviceGroups": {
    "formatVersion": "2021-03-05",
    "definitions": {
      "Sensors": {"selectionRule": "thingName: sensor*", "policyName": "SensorPolicy"}
    },
    "policies": {
      "SensorPolicy": {
        "AllowConnect": {"operations": ["mqtt:connect"], "resources": ["*"]},
        "AllowPublish": {"operations": ["mqtt:publish"], "resources": ["mqtt:topic:test/topic"]},
        "AllowSubscribe": {"operations": ["mqtt:subscribe"], "resources": ["mqtt:topicfilter:test/topic/#"]}
      }
    }
  }
}"#;

#[tokio::test]
async fn aws_device_groups_decide_who_may_connect_publish_and_subscribe() {
    let cloud = Cloud::start().await;
    let sensor = cloud.device("sensor-1", true);
    let actuator = cloud.device("actuator", true);
    let config = LocalCoreConfig::new(
        CORE,
        cloud.core_dir.path(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .with_client_policy(DEVICE_GROUPS);
    let core = LocalCore::start(config, cloud.control().clone())
        .await
        .expect("core starts");
    let ca = core.ca_pem();

    // In the group: its allowed filter and topic work.
    let (mut client, reason) = connect(&core, &sensor, &ca, "sensor-1", "localhost")
        .await
        .expect("the sensor connects");
    assert_eq!(reason, ReasonCode::SUCCESS);
    assert_eq!(
        client
            .subscribe(1, &["test/topic/#"], QoS::AtLeastOnce)
            .await,
        vec![ReasonCode::GRANTED_QOS_1]
    );
    assert_eq!(
        client
            .publish_qos1(2, "test/topic", b"allowed".as_slice())
            .await,
        ReasonCode::SUCCESS
    );
    // A topic the group's policy does not name: AWS's MQTT 3.1.1 answer, the connection closed.
    client
        .send(&support::publish(
            "other/topic",
            QoS::AtLeastOnce,
            Some(3),
            &b"denied"[..],
        ))
        .await;
    client.until_closed().await;

    // `mqtt:clientId` is `*`, but the client id must still be the thing name.
    let refused = connect(&core, &sensor, &ca, "someone-else", "localhost").await;
    assert!(refused.is_none_or(|(_, reason)| reason != ReasonCode::SUCCESS));
    // Associated but in no device group: it may do nothing.
    let refused = connect(&core, &actuator, &ca, "actuator", "localhost").await;
    assert!(refused.is_none_or(|(_, reason)| reason != ReasonCode::SUCCESS));
    core.shutdown().await;
}

#[tokio::test]
async fn a_device_groups_configuration_with_a_mistake_stops_the_core_with_what_is_wrong() {
    let cloud = Cloud::start().await;
    let config = LocalCoreConfig::new(
        CORE,
        cloud.core_dir.path(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .with_client_policy(DEVICE_GROUPS.replace("mqtt:topic:test/topic", "mqtt:topic:test/*"));
    let error = LocalCore::start(config, cloud.control().clone())
        .await
        .expect_err("a partial wildcard is refused");
    assert!(error.to_string().contains("never inside"), "{error}");
}
