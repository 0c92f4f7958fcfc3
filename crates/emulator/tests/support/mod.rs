//! Shared by the broker_* integration tests: an emulator on a free loopback port
//! in a temporary data directory, devices registered in it, and a raw MQTT
//! client (TLS + the iotcore-mqtt codec) that sends exactly the packets a test
//! asks for and reports exactly what the emulator sends back.
#![allow(dead_code)] // each test file uses a different part

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use iotcore_emulator::control::{
    Control, CreatePolicyRequest, DescribeCertificateRequest, ErrorCode,
    ListPrincipalThingsRequest, PolicyNameRequest, PolicyTargetRequest, ThingOptions, ThingPolicy,
    UpdateCertificateRequest,
};
use iotcore_emulator::pki::{DeviceCredentials, KeyAlgorithm};
use iotcore_emulator::things::{DeviceFiles, write_device_files};
use iotcore_emulator::{Emulator, EmulatorConfig, Quotas};
use iotcore_mqtt::packet::{
    self, ConnAck, Connect, Disconnect, Publish, Subscribe, Subscription, SubscriptionOptions, Will,
};
use iotcore_mqtt::{Packet, ProtocolVersion, QoS, ReasonCode};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Longest wait for something the emulator must do; only a safety net against
/// a hung test, never a performance threshold.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// An emulator in its own temporary data directory.
pub struct Setup {
    pub dir: TempDir,
    pub emulator: Emulator,
}

impl Setup {
    /// Starts an emulator on 127.0.0.1 with a free port and default settings.
    pub async fn start() -> Setup {
        Setup::start_with(|config| config).await
    }

    /// Starts an emulator after `configure` adjusted its configuration.
    pub async fn start_with(configure: impl FnOnce(EmulatorConfig) -> EmulatorConfig) -> Setup {
        iotcore_test_support::init_tracing();
        let dir = tempfile::tempdir().expect("temporary directory");
        let config = configure(config_for(dir.path()));
        let emulator = Emulator::start(config).await.expect("emulator starts");
        Setup { dir, emulator }
    }

    /// Stops the emulator gracefully and starts a new one on the same data directory.
    pub async fn restart(self) -> Setup {
        let Setup { dir, emulator } = self;
        emulator.shutdown().await;
        let emulator = Emulator::start(config_for(dir.path()))
            .await
            .expect("emulator restarts");
        Setup { dir, emulator }
    }

    pub fn addr(&self) -> SocketAddr {
        self.emulator.local_addr()
    }

    /// Registers thing `name` with a new ACTIVE certificate attached, allowed
    /// everything by policy [`ALLOW_ALL`] (broker behaviour, not policies, is
    /// under test), and writes its files under the data directory's `devices/`.
    pub fn device(&self, name: &str) -> Device {
        let control = self.emulator.control();
        let exists = control.get_policy(PolicyNameRequest {
            policy_name: ALLOW_ALL.into(),
        });
        match exists {
            Ok(_) => {}
            Err(e) if e.code() == ErrorCode::ResourceNotFound => {
                create_policy(control, ALLOW_ALL, ALLOW_ALL_DOCUMENT);
            }
            Err(e) => panic!("registry: {e}"),
        }
        self.device_with(name, ThingPolicy::Existing(ALLOW_ALL.into()))
    }

    /// Registers thing `name` with a new ACTIVE certificate attached and
    /// `policy` attached to it, and writes its files under `devices/`.
    pub fn device_with(&self, name: &str, policy: ThingPolicy) -> Device {
        let options = ThingOptions::default()
            .with_key(KeyAlgorithm::EcdsaP256)
            .with_policy(policy);
        let credentials = self
            .emulator
            .control()
            .create_thing_with_certificate(name, &options)
            .expect("thing created")
            .credentials;
        let files = write_device_files(
            name,
            &credentials,
            self.emulator.ca_pem(),
            &self.dir.path().join("devices"),
        )
        .expect("device files written");
        Device {
            name: name.to_owned(),
            credentials,
            files,
            ca_pem: self.emulator.ca_pem().to_owned(),
        }
    }
}

/// The policy [`Setup::device`] attaches.
pub const ALLOW_ALL: &str = "test-allow-all";
/// Its document: every action on every resource.
pub const ALLOW_ALL_DOCUMENT: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}"#;

// ----- The registry, through the control plane -----

/// CreatePolicy `name` with `document`.
pub fn create_policy(control: &Control, name: &str, document: &str) {
    control
        .create_policy(CreatePolicyRequest {
            policy_name: name.into(),
            policy_document: document.into(),
            tags: None,
        })
        .unwrap_or_else(|e| panic!("policy {name} not created: {e}"));
}

/// AttachPolicy `name` to certificate `certificate_id`.
pub fn attach_policy(control: &Control, name: &str, certificate_id: &str) {
    control
        .attach_policy(PolicyTargetRequest {
            policy_name: name.into(),
            target: certificate_id.into(),
        })
        .unwrap_or_else(|e| panic!("policy {name} not attached: {e}"));
}

/// UpdateCertificate: certificate `certificate_id` becomes `status` (ACTIVE,
/// INACTIVE or REVOKED).
pub fn set_certificate_status(control: &Control, certificate_id: &str, status: &str) {
    control
        .update_certificate(UpdateCertificateRequest {
            certificate_id: certificate_id.into(),
            new_status: status.into(),
        })
        .unwrap_or_else(|e| panic!("certificate not made {status}: {e}"));
}

/// DescribeCertificate's status of `certificate_id` (`PENDING_ACTIVATION`,
/// `ACTIVE`, …), or `None` when it is not registered.
pub fn certificate_status(control: &Control, certificate_id: &str) -> Option<String> {
    let described = control.describe_certificate(DescribeCertificateRequest {
        certificate_id: certificate_id.into(),
    });
    match described {
        Ok(d) => Some(d.certificate_description.status),
        Err(e) if e.code() == ErrorCode::ResourceNotFound => None,
        Err(e) => panic!("registry: {e}"),
    }
}

/// ListPrincipalThings: the things certificate `certificate_id` is attached to.
pub fn certificate_things(control: &Control, certificate_id: &str) -> Vec<String> {
    control
        .list_principal_things(ListPrincipalThingsRequest {
            principal: certificate_id.into(),
            ..Default::default()
        })
        .expect("registry")
        .things
}

/// AWS's quotas without the rates: tests connect and publish faster than AWS
/// allows; the quotas' own tests set theirs.
fn config_for(dir: &Path) -> EmulatorConfig {
    EmulatorConfig::new(dir)
        .with_bind("127.0.0.1:0".parse().expect("address"))
        .with_quotas(Quotas::aws().without_rates())
}

/// A registered thing with its credentials.
#[derive(Clone)]
pub struct Device {
    pub name: String,
    pub credentials: DeviceCredentials,
    pub files: DeviceFiles,
    pub ca_pem: String,
}

/// A CONNECT for `client_id` speaking `protocol`, clean, keep-alive 60 s.
pub fn connect_packet(client_id: &str, protocol: ProtocolVersion) -> Connect {
    Connect {
        protocol,
        clean_start: true,
        keep_alive: 60,
        client_id: client_id.to_owned(),
        username: None,
        password: None,
        will: None,
        properties: Default::default(),
    }
}

/// A will at QoS 1.
pub fn will(topic: &str, payload: &'static [u8]) -> Will {
    Will {
        topic: topic.to_owned(),
        payload: Bytes::from_static(payload),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    }
}

/// A PUBLISH; `packet_id` is required for QoS 1.
pub fn publish(topic: &str, qos: QoS, packet_id: Option<u16>, payload: impl Into<Bytes>) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id,
        payload: payload.into(),
        properties: Default::default(),
    })
}

/// A SUBSCRIBE of `filters`, each at `qos`.
pub fn subscribe(packet_id: u16, filters: &[&str], qos: QoS) -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id,
        subscriptions: filters
            .iter()
            .map(|f| Subscription {
                filter: (*f).to_owned(),
                options: SubscriptionOptions {
                    qos,
                    ..SubscriptionOptions::default()
                },
            })
            .collect(),
        properties: Default::default(),
    })
}

/// Client TLS configuration trusting the emulator CA and presenting `device`'s certificate.
pub fn tls_config(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
    alpn: Option<&[u8]>,
) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("CA PEM"))
        .expect("CA trusted");
    let chain = vec![CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("certificate PEM")];
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key PEM");
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .expect("client certificate");
    if let Some(alpn) = alpn {
        config.alpn_protocols = vec![alpn.to_vec()];
    }
    config
}

/// A raw MQTT client over TLS.
pub struct RawClient {
    pub stream: TlsStream<TcpStream>,
    pub protocol: ProtocolVersion,
    buf: BytesMut,
}

impl RawClient {
    /// Opens a TLS connection as `device` (SNI `localhost`), without sending anything.
    pub async fn open(addr: SocketAddr, device: &Device) -> io::Result<RawClient> {
        let config = tls_config(
            &device.ca_pem,
            &device.credentials.certificate_pem,
            &device.credentials.private_key_pem,
            None,
        );
        RawClient::open_with(addr, config).await
    }

    /// Opens a TLS connection with `config`.
    pub async fn open_with(
        addr: SocketAddr,
        config: rustls::ClientConfig,
    ) -> io::Result<RawClient> {
        let tcp = TcpStream::connect(addr).await?;
        let name = ServerName::try_from("localhost").expect("server name");
        let stream = TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await?;
        Ok(RawClient::from_stream(stream))
    }

    /// A client on an established TLS stream, nothing sent yet.
    pub fn from_stream(stream: TlsStream<TcpStream>) -> RawClient {
        RawClient {
            stream,
            protocol: ProtocolVersion::V311,
            buf: BytesMut::new(),
        }
    }

    /// Connects as `device` with `connect` and returns the CONNACK (panics if
    /// anything else comes back).
    pub async fn connect(
        addr: SocketAddr,
        device: &Device,
        connect: Connect,
    ) -> (RawClient, ConnAck) {
        let mut client = RawClient::open(addr, device).await.expect("TLS connection");
        let connack = client.handshake(connect).await;
        (client, connack)
    }

    /// Connects as `device`, client id = thing name, clean, and expects success.
    pub async fn connected(
        addr: SocketAddr,
        device: &Device,
        protocol: ProtocolVersion,
    ) -> RawClient {
        let (client, connack) =
            RawClient::connect(addr, device, connect_packet(&device.name, protocol)).await;
        assert_eq!(connack.reason, ReasonCode::SUCCESS, "{connack:?}");
        client
    }

    /// Sends `connect` and returns the CONNACK.
    pub async fn handshake(&mut self, connect: Connect) -> ConnAck {
        self.protocol = connect.protocol;
        self.send(&Packet::Connect(Box::new(connect))).await;
        match self.recv().await {
            Some(Packet::ConnAck(connack)) => connack,
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Sends one packet.
    pub async fn send(&mut self, packet: &Packet) {
        let mut out = BytesMut::new();
        packet
            .encode(self.protocol, &mut out)
            .expect("packet encodes");
        self.send_raw(&out).await.expect("write");
    }

    /// Sends raw bytes.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// The next packet, or `None` once the emulator closed the connection (or
    /// the TLS session failed). Panics after [`PATIENCE`].
    pub async fn recv(&mut self) -> Option<Packet> {
        tokio::time::timeout(PATIENCE, self.next_packet())
            .await
            .expect("the emulator answers in time")
    }

    async fn next_packet(&mut self) -> Option<Packet> {
        loop {
            match packet::decode(&mut self.buf, self.protocol, packet::MAX_PACKET_SIZE) {
                Ok(Some(packet)) => return Some(packet),
                Ok(None) => {}
                Err(e) => panic!("the emulator sent a malformed packet: {e}"),
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// The next packet that is not a PINGRESP.
    pub async fn recv_skipping_pings(&mut self) -> Option<Packet> {
        loop {
            match self.recv().await {
                Some(Packet::PingResp) => continue,
                other => return other,
            }
        }
    }

    /// The next PUBLISH, acknowledged if QoS 1; panics on anything else.
    pub async fn recv_publish(&mut self) -> Publish {
        match self.recv_skipping_pings().await {
            Some(Packet::Publish(p)) => {
                if let Some(packet_id) = p.packet_id {
                    self.send(&puback(packet_id)).await;
                }
                p
            }
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    /// Reads until the emulator closes the connection; returns what came before.
    pub async fn until_closed(&mut self) -> Vec<Packet> {
        let mut packets = Vec::new();
        while let Some(packet) = self.recv().await {
            packets.push(packet);
        }
        packets
    }

    /// Subscribes to `filters` at `qos` and returns the SUBACK reason codes.
    pub async fn subscribe(
        &mut self,
        packet_id: u16,
        filters: &[&str],
        qos: QoS,
    ) -> Vec<ReasonCode> {
        self.send(&subscribe(packet_id, filters, qos)).await;
        match self.recv_skipping_pings().await {
            Some(Packet::SubAck(suback)) if suback.packet_id == packet_id => suback.reasons,
            other => panic!("expected SUBACK {packet_id}, got {other:?}"),
        }
    }

    /// Publishes at QoS 1 and returns the PUBACK reason.
    pub async fn publish_qos1(
        &mut self,
        packet_id: u16,
        topic: &str,
        payload: impl Into<Bytes>,
    ) -> ReasonCode {
        self.send(&publish(topic, QoS::AtLeastOnce, Some(packet_id), payload))
            .await;
        match self.recv_skipping_pings().await {
            Some(Packet::PubAck(ack)) if ack.packet_id == packet_id => ack.reason,
            other => panic!("expected PUBACK {packet_id}, got {other:?}"),
        }
    }

    /// Sends DISCONNECT (success) and waits for the emulator to close.
    pub async fn disconnect(mut self) {
        self.send(&Packet::Disconnect(Disconnect::default())).await;
        self.until_closed().await;
    }
}

/// The arguments a Python peer of `tests/peers/` takes to reach the emulator
/// over mutual TLS as `device`, followed by `more` (flag, value) pairs.
pub fn peer_args(setup: &Setup, device: &Device, more: &[(&str, &str)]) -> Vec<std::ffi::OsString> {
    let files = &device.files;
    let port = setup.addr().port().to_string();
    [
        ("--port", port.as_str().as_ref()),
        ("--ca", files.root_ca.as_os_str()),
        ("--cert", files.certificate.as_os_str()),
        ("--key", files.private_key.as_os_str()),
    ]
    .into_iter()
    .chain(more.iter().map(|(flag, value)| (*flag, value.as_ref())))
    .flat_map(|(flag, value): (&str, &std::ffi::OsStr)| [flag.into(), value.to_owned()])
    .collect()
}

/// The emulator's root CA in a file under the data directory (what the
/// Python peers trust when they connect without a device certificate).
pub fn ca_file(setup: &Setup) -> std::path::PathBuf {
    let path = setup.dir.path().join("root-ca.pem");
    std::fs::write(&path, setup.emulator.ca_pem()).expect("CA written");
    path
}

/// `awsiot_pubsub.py` through `door` as `client_id` with MQTT `protocol`:
/// subscribes to `topic`, publishes three messages and waits for them;
/// `auth` are the door's own arguments (keys, authorizer, token…).
pub async fn awsiot_loop(
    setup: &Setup,
    door: &str,
    client_id: &str,
    protocol: &str,
    topic: &str,
    auth: &[std::ffi::OsString],
) -> iotcore_test_support::PeerOutput {
    let port = setup.addr().port().to_string();
    let mut args: Vec<std::ffi::OsString> = [
        "--door",
        door,
        "--port",
        &port,
        "--client-id",
        client_id,
        "--protocol",
        protocol,
        "--topic",
        topic,
        "--subscribe-first",
        "--publish-count",
        "3",
        "--expect",
        "3",
        "--timeout",
        "20",
    ]
    .iter()
    .map(std::ffi::OsString::from)
    .collect();
    args.extend(["--ca".into(), ca_file(setup).into()]);
    args.extend(auth.iter().cloned());
    iotcore_test_support::run_peer("awsiot_pubsub.py", &args).await
}

/// True when the emulator refuses `device`'s TLS handshake.
pub async fn tls_refused(setup: &Setup, device: &Device) -> bool {
    match RawClient::open(setup.addr(), device).await {
        Err(_) => true,
        // TLS 1.3: the client may finish first and learn of the refusal on read.
        Ok(mut client) => {
            let _ = client.send_raw(b"\x10").await;
            client.until_closed().await.is_empty()
        }
    }
}

/// The reason code of the first DISCONNECT among `packets`.
pub fn disconnect_reason(packets: &[Packet]) -> Option<ReasonCode> {
    packets.iter().find_map(|p| match p {
        Packet::Disconnect(d) => Some(d.reason),
        _ => None,
    })
}

/// A PUBACK with success.
pub fn puback(packet_id: u16) -> Packet {
    Packet::PubAck(packet::Ack {
        packet_id,
        reason: ReasonCode::SUCCESS,
        properties: Default::default(),
    })
}
