//! The client builder and the validated configuration it produces.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use iotcore_mqtt::topic::TopicName;
use iotcore_mqtt::{ProtocolVersion, QoS};
use rustls::pki_types::CertificateDer;

use crate::aws_credentials::CredentialsProvider;
use crate::backoff::ReconnectPolicy;
use crate::credentials::{self, Identity};
use crate::custom_authorizer::CustomAuthorizer;
use crate::error::ConfigError;
use crate::greengrass::DiscoveryEndpoint;
use crate::limits::{Limits, Violation};
use crate::offline_queue::OfflineQueueLimits;
use crate::offline_store::{OfflineStore, PendingPublish};
use crate::transport::tls::{self, AWS_MQTT_ALPN, ServerTrust, TlsSetup};
use crate::transport::{Connector, Door, DoorSetup, GreengrassSetup, Proxy};

/// The MQTT port of AWS IoT Core with client certificates.
pub const DEFAULT_PORT: u16 = 8883;
/// The HTTPS port, where AWS IoT Core takes MQTT with client certificates
/// when the client offers ALPN `x-amzn-mqtt-ca`, and every other door.
pub const ALPN_PORT: u16 = 443;
/// The ALPN protocol of MQTT with a custom authorizer on port 443.
const CUSTOM_AUTHORIZER_ALPN: &[u8] = b"mqtt";

/// AWS IoT Core's keep-alive range, in seconds.
const AWS_KEEP_ALIVE: std::ops::RangeInclusive<u64> = 30..=1200;
/// The longest MQTT 5 session expiry AWS IoT Core allows: 7 days.
const AWS_MAX_SESSION_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);
/// AWS IoT Core's longest client id, in bytes.
const AWS_MAX_CLIENT_ID_BYTES: usize = 128;

/// The message the broker publishes for the device when its connection ends
/// without a DISCONNECT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastWill {
    topic: String,
    payload: Bytes,
    qos: QoS,
    retain: bool,
}

impl LastWill {
    /// A will to publish `payload` on `topic` at `qos`, not retained.
    pub fn new(topic: impl Into<String>, payload: impl Into<Bytes>, qos: QoS) -> LastWill {
        LastWill {
            topic: topic.into(),
            payload: payload.into(),
            qos,
            retain: false,
        }
    }

    /// Sets the retain flag of the will.
    pub fn retain(mut self, retain: bool) -> LastWill {
        self.retain = retain;
        self
    }
}

/// Whether the broker keeps the device's session between connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SessionMode {
    Clean,
    Persistent { expiry: Duration },
}

/// TLS ALPN: chosen from the port, or set explicitly.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Alpn {
    Auto,
    Explicit(Option<Vec<u8>>),
}

/// The door chosen in the builder, with what it needs.
#[derive(Debug)]
enum DoorChoice {
    MutualTls,
    WebSocketSigV4(CredentialsProvider),
    CustomAuthorizer(CustomAuthorizer),
    CustomAuthorizerWebSocket(CustomAuthorizer),
    GreengrassCore(DiscoveryEndpoint),
}

impl DoorChoice {
    fn door(&self) -> Door {
        match self {
            DoorChoice::MutualTls => Door::MutualTls,
            DoorChoice::WebSocketSigV4(_) => Door::WebSocketSigV4,
            DoorChoice::CustomAuthorizer(_) => Door::CustomAuthorizer,
            DoorChoice::CustomAuthorizerWebSocket(_) => Door::CustomAuthorizerWebSocket,
            DoorChoice::GreengrassCore(_) => Door::GreengrassCore,
        }
    }
}

/// Whether and how to go through an HTTP proxy.
#[derive(Debug)]
enum ProxyChoice {
    Direct,
    Url(Proxy),
    FromEnvironment,
}

/// How hard the first [`ClientBuilder::connect`] tries before giving up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InitialConnect {
    pub(crate) max_attempts: u32,
    pub(crate) timeout: Duration,
}

/// Builds a [`crate::Client`]. Start with [`crate::Client::builder`].
///
/// Methods that read or parse credentials return `Result` and fail right
/// away, naming the file; every other setting is checked by
/// [`connect`](ClientBuilder::connect) before anything touches the network.
#[derive(Debug)]
pub struct ClientBuilder {
    thing_name: String,
    endpoint: Option<String>,
    port: Option<u16>,
    door: DoorChoice,
    region: Option<String>,
    proxy: ProxyChoice,
    local_address: Option<IpAddr>,
    metrics: bool,
    alpn: Alpn,
    server_name: Option<String>,
    client_id: Option<String>,
    identity: Option<Identity>,
    amazon_roots: bool,
    extra_roots: Vec<CertificateDer<'static>>,
    server_trust: Option<ServerTrust>,
    protocol: ProtocolVersion,
    keep_alive: Duration,
    session: SessionMode,
    will: Option<LastWill>,
    username: Option<String>,
    reconnect: ReconnectPolicy,
    connect_timeout: Duration,
    retry_unacknowledged: Option<Duration>,
    initial_connect: InitialConnect,
    offline_queue: OfflineQueueLimits,
    offline_store: Option<PathBuf>,
    offline_store_fsync: bool,
    stream_buffer: usize,
    topic_prefix: String,
    telemetry_topic: Option<String>,
    cloud_to_device_topic: Option<String>,
    aws_limits: bool,
    close_timeout: Duration,
}

impl ClientBuilder {
    pub(crate) fn new(thing_name: String) -> ClientBuilder {
        ClientBuilder {
            thing_name,
            endpoint: None,
            port: None,
            door: DoorChoice::MutualTls,
            region: None,
            proxy: ProxyChoice::Direct,
            local_address: None,
            metrics: true,
            alpn: Alpn::Auto,
            server_name: None,
            client_id: None,
            identity: None,
            amazon_roots: true,
            extra_roots: Vec::new(),
            server_trust: None,
            protocol: ProtocolVersion::V311,
            keep_alive: Duration::from_secs(60),
            session: SessionMode::Clean,
            will: None,
            username: None,
            reconnect: ReconnectPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            retry_unacknowledged: None,
            initial_connect: InitialConnect {
                max_attempts: 5,
                timeout: Duration::from_secs(60),
            },
            offline_queue: OfflineQueueLimits::default(),
            offline_store: None,
            offline_store_fsync: false,
            stream_buffer: 1024,
            topic_prefix: "device".into(),
            telemetry_topic: None,
            cloud_to_device_topic: None,
            aws_limits: true,
            close_timeout: Duration::from_secs(5),
        }
    }

    /// The broker's host name: your account's `…-ats.iot.<region>.amazonaws.com`
    /// endpoint, or the emulator's address. Required.
    pub fn endpoint(mut self, host: impl Into<String>) -> Self {
        self.endpoint = Some(host.into());
        self
    }

    /// The TCP port: by default 8883 for mutual TLS and 443 for the other
    /// doors ([`Door::default_port`]). With mutual TLS on 443 the client
    /// offers ALPN `x-amzn-mqtt-ca`, as AWS IoT Core requires there (see
    /// [`alpn`](Self::alpn)).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Connects over WebSocket (`wss://<endpoint>/mqtt`, subprotocol
    /// `mqtt`) instead of mutual TLS, the upgrade signed with SigV4
    /// (service `iotdevicegateway`) with credentials from `credentials`,
    /// asked again on every connection attempt. No client certificate is
    /// needed; the region comes from [`region`](Self::region) or the endpoint.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), iotcore::Error> {
    /// use iotcore::Client;
    /// use iotcore::aws_credentials::CredentialsProvider;
    ///
    /// let client = Client::builder("my-thing")
    ///     .endpoint("xxxx-ats.iot.eu-west-1.amazonaws.com")
    ///     .websocket(CredentialsProvider::environment())
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn websocket(mut self, credentials: CredentialsProvider) -> Self {
        self.door = DoorChoice::WebSocketSigV4(credentials);
        self
    }

    /// The AWS region SigV4 signs for. Read from endpoints of the form
    /// `…iot.<region>.amazonaws.com` when not set.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Connects with a custom authorizer over MQTT: port 443, ALPN `mqtt`,
    /// the authorizer's name, the token and its signature in the query of
    /// the CONNECT user name, the password passed through. No client
    /// certificate is needed.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), iotcore::Error> {
    /// use iotcore::{Client, CustomAuthorizer};
    ///
    /// let client = Client::builder("my-thing")
    ///     .endpoint("xxxx-ats.iot.eu-west-1.amazonaws.com")
    ///     .custom_authorizer(CustomAuthorizer::new("my-authorizer").token("token", "abc"))
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn custom_authorizer(mut self, authorizer: CustomAuthorizer) -> Self {
        self.door = DoorChoice::CustomAuthorizer(authorizer);
        self
    }

    /// Connects with a custom authorizer over WebSocket (`wss://…/mqtt`):
    /// the authorizer's name, the token and its signature travel as headers
    /// of the upgrade; the user name and password in CONNECT.
    pub fn custom_authorizer_over_websocket(mut self, authorizer: CustomAuthorizer) -> Self {
        self.door = DoorChoice::CustomAuthorizerWebSocket(authorizer);
        self
    }

    /// Connects to a Greengrass core device's local broker, the core and its
    /// address found by Greengrass discovery at `discovery`, instead of to
    /// AWS IoT Core: what AWS's `basic_discovery` sample does, kept up.
    ///
    /// Needs the device's certificate ([`client_cert_pem_files`](Self::client_cert_pem_files));
    /// the client id stays the thing name, as the core requires. Every
    /// connection attempt tries the discovered addresses in order (the one
    /// that answered last first), each trusting only its core's CAs; when
    /// they all fail, it discovers again (a rotated CA, new addresses) and
    /// tries once more. No [`endpoint`](Self::endpoint) is needed, and no
    /// proxy is used: a core is on the device's network.
    /// [`crate::Client::greengrass_core`] says which address answered.
    ///
    /// A core's broker is not AWS IoT Core: Greengrass's Moquette speaks MQTT
    /// 3.1.1 only (the default here) and has no 8-level topic limit; turn
    /// [`enforce_aws_limits`](Self::enforce_aws_limits) off for such topics.
    pub fn greengrass_core(mut self, discovery: DiscoveryEndpoint) -> Self {
        self.door = DoorChoice::GreengrassCore(discovery);
        self
    }

    /// Goes through an HTTP proxy with `CONNECT`, on every door:
    /// `http://[user:password@]host[:port]` (the port defaults to 80; a
    /// user name and password, percent-encoded if need be, are sent as
    /// basic authentication). Fails on a URL that cannot be used.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), iotcore::Error> {
    /// let client = iotcore::Client::builder("my-thing")
    ///     .endpoint("xxxx-ats.iot.eu-west-1.amazonaws.com")
    ///     .client_cert_pem_files("cert.pem", "key.pem")?
    ///     .proxy("http://user:password@proxy.corp.example:3128")?
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn proxy(mut self, url: &str) -> Result<Self, ConfigError> {
        self.proxy = ProxyChoice::Url(Proxy::parse(url)?);
        Ok(self)
    }

    /// Takes the proxy from the environment when connecting: `HTTPS_PROXY`
    /// (or `https_proxy`), unless `NO_PROXY` (or `no_proxy`) lists the
    /// endpoint (a host, a domain, or `*`). The environment is never read
    /// unless this is called.
    pub fn proxy_from_env(mut self) -> Self {
        self.proxy = ProxyChoice::FromEnvironment;
        self
    }

    /// Connects from this local address: the TCP socket is bound to it (the
    /// port left to the kernel) before connecting, to the broker or to the
    /// proxy. For a multi-homed host that must leave through one interface,
    /// and for load tests: each source address has its own range of
    /// ephemeral ports (`net.ipv4.ip_local_port_range`, about 28,000 by
    /// default), so many connections to one broker address and port spread
    /// over several source addresses (on Linux all of `127.0.0.0/8` is
    /// loopback). The endpoint must resolve to an address of the same
    /// family. Not used for a Greengrass core (its addresses come from
    /// discovery). By default the kernel chooses.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), iotcore::Error> {
    /// let client = iotcore::Client::builder("sim-00001")
    ///     .endpoint("127.0.0.1")
    ///     .local_address([127, 0, 0, 2].into())
    ///     .client_cert_pem_files("cert.pem", "key.pem")?
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn local_address(mut self, address: IpAddr) -> Self {
        self.local_address = Some(address);
        self
    }

    /// Whether to add `?SDK=IoTCoreRust&Version=<version>` to the CONNECT
    /// user name, as AWS's SDKs add theirs (default true). The pairs join
    /// a query already there (a custom authorizer's) with `&`.
    pub fn metrics(mut self, enabled: bool) -> Self {
        self.metrics = enabled;
        self
    }

    /// Overrides the TLS ALPN protocol (`None`: offer no ALPN). By default
    /// mutual TLS offers `x-amzn-mqtt-ca` on port 443 and nothing on other
    /// ports, a custom authorizer over MQTT offers `mqtt`, and the WebSocket
    /// doors offer nothing.
    pub fn alpn(mut self, protocol: Option<&[u8]>) -> Self {
        self.alpn = Alpn::Explicit(protocol.map(<[u8]>::to_vec));
        self
    }

    /// The name the server's certificate must carry, sent as SNI. Defaults to
    /// the endpoint; set it when connecting through a proxy or by IP address.
    pub fn tls_server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// The MQTT client id; defaults to the thing name, which AWS IoT
    /// policies usually expect (`iot:Connect` on `client/${iot:Connection.Thing.ThingName}`).
    ///
    /// An empty id asks the broker for one: MQTT 5 only (its CONNACK tells
    /// the client the id it was given, [`crate::Client::client_id`] reports
    /// it) and with a clean session only. AWS IoT Core assigns `$GEN/<uuid>`
    /// ids, which its policies must allow (`iot:Connect` on `client/$GEN/*`)
    /// and which a client may not send back: every connection asks again and
    /// gets a new id.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// Loads the client certificate (chain) and its private key from PEM
    /// files. Keys may be PKCS#8, SEC1 (EC) or PKCS#1 (RSA), unencrypted.
    ///
    /// Fails, naming the file, when one cannot be read, holds no certificate
    /// or key, holds an encrypted key, or when the key does not belong to the
    /// certificate.
    pub fn client_cert_pem_files(
        mut self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, ConfigError> {
        self.identity = Some(Identity::from_files(cert.as_ref(), key.as_ref())?);
        Ok(self)
    }

    /// Like [`client_cert_pem_files`](Self::client_cert_pem_files), from PEM
    /// text in memory.
    pub fn client_cert_pem(
        mut self,
        cert: impl AsRef<[u8]>,
        key: impl AsRef<[u8]>,
    ) -> Result<Self, ConfigError> {
        self.identity = Some(Identity::from_pem(cert.as_ref(), key.as_ref())?);
        Ok(self)
    }

    /// Trusts the CA certificate(s) in a PEM file, in addition to the built-in
    /// Amazon Root CA 1 and 3 (the emulator's CA, a private CA…).
    pub fn root_ca_pem_file(mut self, path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        self.extra_roots
            .extend(credentials::roots_from_file(path.as_ref())?);
        Ok(self)
    }

    /// Like [`root_ca_pem_file`](Self::root_ca_pem_file), from PEM text in memory.
    pub fn root_ca_pem(mut self, pem: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        self.extra_roots
            .extend(credentials::roots_from_pem(pem.as_ref())?);
        Ok(self)
    }

    /// Whether to trust the built-in Amazon Root CA 1 and 3 (default true).
    /// Turn off to trust only the CAs added with `root_ca_pem*`.
    pub fn amazon_root_cas(mut self, trust: bool) -> Self {
        self.amazon_roots = trust;
        self
    }

    /// Trusts the CAs of `trust`, parsed once and shared with every other
    /// client given a clone of it, instead of those of
    /// [`root_ca_pem_file`](Self::root_ca_pem_file), [`root_ca_pem`](Self::root_ca_pem)
    /// and [`amazon_root_cas`](Self::amazon_root_cas): many clients in one
    /// process keep one copy of their roots (see [`ServerTrust`]).
    pub fn server_trust(mut self, trust: ServerTrust) -> Self {
        self.server_trust = Some(trust);
        self
    }

    /// MQTT 3.1.1 (the default) or 5.
    pub fn protocol(mut self, protocol: ProtocolVersion) -> Self {
        self.protocol = protocol;
        self
    }

    /// The keep-alive interval, in whole seconds: 60 s by default; AWS IoT
    /// Core accepts 30 s to 1200 s. A half-open link is detected within
    /// 1.5 × keep-alive.
    pub fn keep_alive(mut self, keep_alive: Duration) -> Self {
        self.keep_alive = keep_alive;
        self
    }

    /// Asks the broker to keep the session (subscriptions, QoS 1 messages
    /// for the device) for `expiry` after a disconnect. MQTT 5 sends the
    /// expiry (AWS: at most 7 days); MQTT 3.1.1 sends clean session = 0 and
    /// the broker applies its own expiry (AWS: 1 hour by default). The IoT
    /// policy must allow the `PersistentConnect` connect attribute.
    pub fn persistent_session(mut self, expiry: Duration) -> Self {
        self.session = SessionMode::Persistent { expiry };
        self
    }

    /// Starts every connection with a fresh session (the default).
    pub fn clean_session(mut self) -> Self {
        self.session = SessionMode::Clean;
        self
    }

    /// The last will the broker publishes if the connection ends abnormally.
    pub fn last_will(mut self, will: LastWill) -> Self {
        self.will = Some(will);
        self
    }

    /// The MQTT user name (none by default).
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// Backoff between connection attempts (default 1 s doubling to 120 s,
    /// full jitter, reset after 30 s connected).
    pub fn reconnect_policy(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = policy;
        self
    }

    /// The longest one connection attempt (TCP, TLS, CONNECT → CONNACK) may
    /// take; 10 s by default.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// MQTT 3.1.1: when nothing has been acknowledged for `interval`, sends
    /// every QoS 1 publish (DUP set), subscribe and unsubscribe waiting for
    /// its acknowledgement again on the same connection, with its packet id.
    /// Off by default: the client sends them again after reconnecting, which
    /// is all MQTT 5 allows [MQTT-4.4.0-1]. AWS IoT Device Advisor's
    /// `MQTT_Publish_Retry_No_Puback` and `MQTT_Subscribe_Retry_No_Suback`
    /// expect the in-connection retry: turn it on to pass them (see the guide's
    /// "Qualify your device offline"). Refused with MQTT 5.
    pub fn retry_unacknowledged(mut self, interval: Duration) -> Self {
        self.retry_unacknowledged = Some(interval);
        self
    }

    /// Bounds [`connect`](Self::connect): it returns an error after
    /// `max_attempts` failed attempts or after `timeout`, whichever comes
    /// first (default 5 attempts, 60 s). After the first success the client
    /// reconnects forever.
    pub fn initial_connect(mut self, max_attempts: u32, timeout: Duration) -> Self {
        self.initial_connect = InitialConnect {
            max_attempts,
            timeout,
        };
        self
    }

    /// Bounds of the queue that holds QoS 1 publishes and subscription
    /// requests made while disconnected (default 1,000 requests, 8 MiB).
    /// When full, new requests fail with [`crate::ErrorKind::OfflineQueueFull`].
    pub fn offline_queue_limits(mut self, limits: OfflineQueueLimits) -> Self {
        self.offline_queue = limits;
        self
    }

    /// Keeps QoS 1 publishes in a durable offline queue in `dir` (created
    /// if need be): those queued while offline or not yet acknowledged when
    /// the process dies are sent, in order, by the next client opened on
    /// `dir` — see [`crate::offline_store`] for what that client sees, the
    /// file format and its recovery from damage. Bounded by
    /// [`offline_queue_limits`](Self::offline_queue_limits), which then
    /// count every QoS 1 publish not yet acknowledged. One client per
    /// directory.
    ///
    /// [`connect`](Self::connect) opens the store first and fails with
    /// [`crate::ErrorKind::Config`] ([`ConfigError::OfflineStore`]) when the
    /// directory cannot be written, is in use by another client, or holds a
    /// file that is not a store.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), iotcore::Error> {
    /// let client = iotcore::Client::builder("my-thing")
    ///     .endpoint("xxxx-ats.iot.eu-west-1.amazonaws.com")
    ///     .client_cert_pem_files("cert.pem", "key.pem")?
    ///     .offline_store("/var/lib/my-device/outbox")
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn offline_store(mut self, dir: impl Into<PathBuf>) -> Self {
        self.offline_store = Some(dir.into());
        self
    }

    /// Whether the offline store syncs each batch of records to the disk
    /// (`fdatasync`) before the batch's packets are sent (default false).
    /// Without it the records survive the process being killed, not a
    /// power loss or a kernel crash; with it they survive both, at the cost
    /// of a disk sync per batch.
    pub fn offline_store_fsync(mut self, fsync: bool) -> Self {
        self.offline_store_fsync = fsync;
        self
    }

    /// How many items each stream (subscription, catch-all, status events)
    /// buffers for a slow consumer before discarding the oldest (default 1024).
    pub fn stream_buffer(mut self, items: usize) -> Self {
        self.stream_buffer = items;
        self
    }

    /// The first level of the default topics: with prefix `p`, telemetry goes
    /// to `p/{thing}/messages/events` and cloud-to-device messages come from
    /// `p/{thing}/messages/devicebound/#`. Default `device` (the layout of
    /// nanoFramework's `Aws.IoTCore.Devices`).
    pub fn topic_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.topic_prefix = prefix.into();
        self
    }

    /// The topic [`crate::Client::send_message`] publishes to, replacing the
    /// one derived from the prefix.
    pub fn telemetry_topic(mut self, topic: impl Into<String>) -> Self {
        self.telemetry_topic = Some(topic.into());
        self
    }

    /// The topic under which cloud-to-device messages arrive, replacing the
    /// one derived from the prefix: [`crate::Client::cloud_to_device`]
    /// subscribes to `{topic}/#` and reports what follows `{topic}/`.
    pub fn cloud_to_device_topic(mut self, topic: impl Into<String>) -> Self {
        self.cloud_to_device_topic = Some(topic.into());
        self
    }

    /// Whether to enforce AWS IoT Core's limits (default true): keep-alive
    /// range, client id length, 128 KB payloads, 256-byte and 8-level topics,
    /// no QoS 2. Turn off for another broker.
    pub fn enforce_aws_limits(mut self, enforce: bool) -> Self {
        self.aws_limits = enforce;
        self
    }

    /// How long [`crate::Client::close`] waits for unacknowledged QoS 1
    /// publishes before sending DISCONNECT (default 5 s).
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Checks the settings, then connects, retrying with backoff within the
    /// bounds of [`initial_connect`](Self::initial_connect). Must run inside
    /// a Tokio runtime.
    ///
    /// Fails at once with [`crate::ErrorKind::Config`] for a bad setting and
    /// with [`crate::ErrorKind::ConnectRefused`] when retrying cannot help
    /// (the server's certificate is not trusted, the server refused the
    /// client certificate or answered "not authorized"); fails with
    /// [`crate::ErrorKind::ConnectFailed`] when the attempts or the time run
    /// out, carrying the last failure.
    pub async fn connect(self) -> Result<crate::Client, crate::Error> {
        let config = self.into_config()?;
        crate::Client::start(config).await
    }

    /// Checks every setting and builds the configuration the driver runs on.
    pub(crate) fn into_config(self) -> Result<Config, ConfigError> {
        let host = match (&self.door, self.endpoint) {
            (_, Some(host)) => host,
            // Named in logs only: the addresses come from discovery.
            (DoorChoice::GreengrassCore(discovery), None) => discovery.host().to_owned(),
            (_, None) => return Err(ConfigError::MissingEndpoint),
        };
        let door = self.door.door();
        let identity = match door {
            Door::MutualTls | Door::GreengrassCore => {
                Some(self.identity.ok_or(ConfigError::MissingClientCertificate)?)
            }
            _ => None,
        };
        if door == Door::GreengrassCore && !matches!(self.proxy, ProxyChoice::Direct) {
            return Err(ConfigError::InvalidSetting {
                setting: "proxy",
                why: "a Greengrass core is reached directly, on the device's network",
            });
        }
        let port = self.port.unwrap_or(door.default_port());
        let server_name = tls::server_name(self.server_name.as_deref().unwrap_or(&host))?;
        let client_id = self.client_id.unwrap_or_else(|| self.thing_name.clone());
        check_client_id(&client_id, self.aws_limits)?;
        if client_id.is_empty() {
            check_assigned_client_id(self.protocol, self.session)?;
        }
        let keep_alive = check_keep_alive(self.keep_alive, self.aws_limits)?;
        match self.retry_unacknowledged {
            Some(_) if self.protocol == ProtocolVersion::V5 => {
                return Err(ConfigError::InvalidSetting {
                    setting: "retry_unacknowledged",
                    why: "MQTT 5 allows a resend only after reconnecting: the in-connection \
                          retry is an MQTT 3.1.1 option",
                });
            }
            Some(interval) if interval.is_zero() => {
                return Err(ConfigError::InvalidSetting {
                    setting: "retry_unacknowledged",
                    why: "the interval must be greater than zero",
                });
            }
            _ => {}
        }
        if let SessionMode::Persistent { expiry } = self.session
            && self.aws_limits
            && expiry > AWS_MAX_SESSION_EXPIRY
        {
            return Err(ConfigError::SessionExpiryTooLong { requested: expiry });
        }
        self.reconnect.validate()?;
        if self.offline_queue.max_messages == 0 || self.offline_queue.max_bytes == 0 {
            return Err(ConfigError::InvalidSetting {
                setting: "offline_queue_limits",
                why: "both bounds must be at least 1",
            });
        }
        if self.initial_connect.max_attempts == 0 {
            return Err(ConfigError::InvalidSetting {
                setting: "initial_connect",
                why: "max_attempts must be at least 1",
            });
        }
        if self.connect_timeout.is_zero() {
            return Err(ConfigError::InvalidSetting {
                setting: "connect_timeout",
                why: "must be greater than zero",
            });
        }
        let limits = Limits {
            aws: self.aws_limits,
        };
        if let Some(will) = &self.will {
            limits
                .check_publish(&will.topic, will.payload.len(), will.qos)
                .map_err(|e| invalid_topic("last will topic", &will.topic, e))?;
        }
        let telemetry_topic = self.telemetry_topic.unwrap_or_else(|| {
            format!("{}/{}/messages/events", self.topic_prefix, self.thing_name)
        });
        limits
            .check_publish(&telemetry_topic, 0, QoS::AtMostOnce)
            .map_err(|e| invalid_topic("telemetry topic", &telemetry_topic, e))?;
        let c2d_base = self.cloud_to_device_topic.unwrap_or_else(|| {
            format!(
                "{}/{}/messages/devicebound",
                self.topic_prefix, self.thing_name
            )
        });
        let cloud_to_device_filter = format!("{c2d_base}/#");
        limits
            .check_filter(&cloud_to_device_filter, QoS::AtMostOnce)
            .map_err(|e| invalid_topic("cloud-to-device topic", &c2d_base, e))?;

        let trust = match self.server_trust {
            Some(trust) => trust,
            None => {
                let mut roots = if self.amazon_roots {
                    credentials::amazon_roots()?
                } else {
                    Vec::new()
                };
                roots.extend(self.extra_roots);
                ServerTrust::new(&roots)?
            }
        };
        let alpn = match self.alpn {
            Alpn::Auto => match door {
                Door::MutualTls => (port == ALPN_PORT).then(|| AWS_MQTT_ALPN.to_vec()),
                Door::CustomAuthorizer => Some(CUSTOM_AUTHORIZER_ALPN.to_vec()),
                _ => None,
            },
            Alpn::Explicit(choice) => choice,
        };
        let tls = TlsSetup {
            config: tls::client_config_trusting(identity.as_ref(), &trust, alpn.as_deref())?,
            server_name,
        };
        let setup = match self.door {
            DoorChoice::MutualTls => DoorSetup::MutualTls(tls),
            DoorChoice::WebSocketSigV4(credentials) => DoorSetup::WebSocketSigV4 {
                tls,
                region: match self.region {
                    Some(region) => region,
                    None => region_of(&host).ok_or(ConfigError::MissingRegion)?,
                },
                credentials,
            },
            DoorChoice::CustomAuthorizer(authorizer) => {
                DoorSetup::CustomAuthorizer { tls, authorizer }
            }
            DoorChoice::CustomAuthorizerWebSocket(authorizer) => {
                DoorSetup::CustomAuthorizerWebSocket { tls, authorizer }
            }
            DoorChoice::GreengrassCore(discovery) => {
                DoorSetup::GreengrassCore(Box::new(GreengrassSetup::new(
                    identity.ok_or(ConfigError::MissingClientCertificate)?,
                    discovery,
                    self.thing_name.clone(),
                )))
            }
        };
        let proxy = match self.proxy {
            ProxyChoice::Direct => None,
            ProxyChoice::Url(proxy) => Some(proxy),
            ProxyChoice::FromEnvironment => Proxy::from_env(&host)?,
        };
        let connector = Connector {
            host,
            port,
            proxy,
            local_address: self.local_address,
            setup,
            username: self.username,
            password: None,
            metrics: self.metrics,
        };

        let offline_store = match &self.offline_store {
            Some(dir) => Some(OfflineStore::open(
                dir,
                self.offline_queue,
                self.offline_store_fsync,
            )?),
            None => None,
        };

        Ok(Config {
            thing_name: self.thing_name,
            client_id,
            connector: Arc::new(connector),
            protocol: self.protocol,
            keep_alive,
            session: self.session,
            will: self.will,
            reconnect: self.reconnect,
            connect_timeout: self.connect_timeout,
            retry_unacknowledged: self.retry_unacknowledged,
            initial_connect: self.initial_connect,
            offline_queue: self.offline_queue,
            offline_store,
            stream_buffer: self.stream_buffer.max(1),
            limits,
            telemetry_topic: telemetry_topic.into(),
            cloud_to_device_filter,
            close_timeout: self.close_timeout,
        })
    }
}

/// The region of an AWS IoT endpoint, `…iot.<region>.amazonaws.com[.cn]`.
fn region_of(host: &str) -> Option<String> {
    let labels: Vec<&str> = host.split('.').collect();
    labels
        .windows(3)
        .find(|w| w[0] == "iot" && w[2] == "amazonaws")
        .map(|w| w[1].to_owned())
}

/// An empty client id (the broker assigns one) needs MQTT 5, whose CONNACK
/// tells the client its id, and a clean session: no client can resume a
/// session under an id AWS IoT Core assigned (`$GEN/…`), since it refuses
/// client ids starting with `$`.
fn check_assigned_client_id(
    protocol: ProtocolVersion,
    session: SessionMode,
) -> Result<(), ConfigError> {
    let invalid = |why| ConfigError::InvalidClientId {
        client_id: String::new(),
        why,
    };
    if protocol != ProtocolVersion::V5 {
        return Err(invalid(
            "an empty client id needs MQTT 5 (.protocol(ProtocolVersion::V5)), whose CONNACK \
             says which id the broker assigned; or pass a thing name or set .client_id()",
        ));
    }
    if let SessionMode::Persistent { .. } = session {
        return Err(invalid(
            "a persistent session needs a client id: one assigned by AWS IoT Core ($GEN/…) \
             cannot be sent back to resume it",
        ));
    }
    Ok(())
}

/// A checked configuration.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) thing_name: String,
    pub(crate) client_id: String,
    /// Opens the byte stream of every connection attempt.
    pub(crate) connector: Arc<Connector>,
    pub(crate) protocol: ProtocolVersion,
    /// Whole seconds, within MQTT's u16 range.
    pub(crate) keep_alive: u16,
    pub(crate) session: SessionMode,
    pub(crate) will: Option<LastWill>,
    pub(crate) reconnect: ReconnectPolicy,
    pub(crate) connect_timeout: Duration,
    /// MQTT 3.1.1: resend what waits for an acknowledgement after this long.
    pub(crate) retry_unacknowledged: Option<Duration>,
    pub(crate) initial_connect: InitialConnect,
    pub(crate) offline_queue: OfflineQueueLimits,
    /// The open offline store, with the publishes it held at start.
    pub(crate) offline_store: Option<(OfflineStore, Vec<PendingPublish>)>,
    pub(crate) stream_buffer: usize,
    pub(crate) limits: Limits,
    pub(crate) telemetry_topic: TopicName,
    /// `{cloud-to-device topic}/#`.
    pub(crate) cloud_to_device_filter: String,
    pub(crate) close_timeout: Duration,
}

impl Config {
    /// The will as MQTT packet data.
    pub(crate) fn mqtt_will(&self) -> Option<Box<iotcore_mqtt::packet::Will>> {
        self.will.as_ref().map(|w| {
            Box::new(iotcore_mqtt::packet::Will {
                topic: w.topic.clone(),
                payload: w.payload.clone(),
                qos: w.qos,
                retain: w.retain,
                properties: Default::default(),
            })
        })
    }
}

fn invalid_topic(what: &'static str, topic: &str, violation: Violation) -> ConfigError {
    match violation {
        Violation::Topic(source) => ConfigError::InvalidTopic {
            what,
            topic: topic.to_owned(),
            source,
        },
        Violation::PayloadTooLarge { .. } => ConfigError::InvalidSetting {
            setting: what,
            why: "the payload is larger than AWS IoT Core's 128 KB",
        },
        Violation::QoS2 => ConfigError::InvalidSetting {
            setting: what,
            why: "AWS IoT Core does not support QoS 2",
        },
    }
}

fn check_client_id(client_id: &str, aws: bool) -> Result<(), ConfigError> {
    let invalid = |why| ConfigError::InvalidClientId {
        client_id: client_id.to_owned(),
        why,
    };
    if client_id.len() > usize::from(u16::MAX) {
        return Err(invalid("it is longer than MQTT's 65,535 bytes"));
    }
    if aws && client_id.len() > AWS_MAX_CLIENT_ID_BYTES {
        return Err(invalid("AWS IoT Core accepts at most 128 bytes"));
    }
    if aws && client_id.starts_with('$') {
        return Err(invalid(
            "AWS IoT Core reserves client ids starting with '$'",
        ));
    }
    Ok(())
}

fn check_keep_alive(keep_alive: Duration, aws: bool) -> Result<u16, ConfigError> {
    let secs = keep_alive.as_secs();
    let out_of_range = ConfigError::KeepAliveOutOfRange {
        requested: keep_alive,
    };
    if aws && !AWS_KEEP_ALIVE.contains(&secs) {
        return Err(out_of_range);
    }
    u16::try_from(secs).map_err(|_| out_of_range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_keep_alive_range_is_30_to_1200_seconds() {
        assert!(check_keep_alive(Duration::from_secs(29), true).is_err());
        assert_eq!(check_keep_alive(Duration::from_secs(30), true).unwrap(), 30);
        assert_eq!(
            check_keep_alive(Duration::from_secs(1200), true).unwrap(),
            1200
        );
        assert!(check_keep_alive(Duration::from_secs(1201), true).is_err());
        assert_eq!(check_keep_alive(Duration::from_secs(2), false).unwrap(), 2);
        assert!(check_keep_alive(Duration::from_secs(70_000), false).is_err());
    }

    fn with_identity(port: u16) -> ClientBuilder {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        ClientBuilder::new("thing".into())
            .endpoint("example.com")
            .port(port)
            .client_cert_pem_files(
                fixtures.join("ec.cert.pem"),
                fixtures.join("ec-sec1.key.pem"),
            )
            .unwrap()
    }

    fn tls_of(config: &Config) -> &rustls::ClientConfig {
        &config
            .connector
            .setup()
            .tls()
            .expect("a door with TLS settings")
            .config
    }

    #[test]
    fn the_region_is_read_from_aws_endpoints() {
        assert_eq!(
            region_of("abc-ats.iot.eu-west-1.amazonaws.com").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            region_of("abc-ats.iot.cn-north-1.amazonaws.com.cn").as_deref(),
            Some("cn-north-1")
        );
        assert_eq!(region_of("127.0.0.1"), None);
        assert_eq!(region_of("localhost"), None);
    }

    #[test]
    fn the_other_doors_need_no_certificate_and_default_to_443() {
        let base = || ClientBuilder::new("thing".into()).endpoint("127.0.0.1");
        let credentials = CredentialsProvider::fixed(crate::aws_credentials::AwsCredentials::new(
            "AKID", "secret", None,
        ));
        let ws = base().websocket(credentials.clone()).region("us-east-1");
        let ws = ws.into_config().unwrap();
        assert_eq!(ws.connector.door(), Door::WebSocketSigV4);
        assert_eq!(ws.connector.port, 443);
        assert!(tls_of(&ws).alpn_protocols.is_empty());
        assert!(matches!(
            base().websocket(credentials).into_config(),
            Err(ConfigError::MissingRegion)
        ));
        let authorizer = base()
            .custom_authorizer(CustomAuthorizer::new("auth"))
            .into_config()
            .unwrap();
        assert_eq!(authorizer.connector.port, 443);
        assert_eq!(tls_of(&authorizer).alpn_protocols, [b"mqtt".to_vec()]);
        assert!(matches!(
            base().into_config(),
            Err(ConfigError::MissingClientCertificate)
        ));
    }

    #[test]
    fn port_443_offers_the_aws_alpn_and_8883_offers_none() {
        let on_443 = with_identity(ALPN_PORT).into_config().unwrap();
        assert_eq!(tls_of(&on_443).alpn_protocols, [AWS_MQTT_ALPN.to_vec()]);
        let on_8883 = with_identity(DEFAULT_PORT).into_config().unwrap();
        assert!(tls_of(&on_8883).alpn_protocols.is_empty());
        let explicit = with_identity(DEFAULT_PORT)
            .alpn(Some(b"mqtt"))
            .into_config()
            .unwrap();
        assert_eq!(tls_of(&explicit).alpn_protocols, [b"mqtt".to_vec()]);
    }

    #[test]
    fn defaults_follow_the_seed_library_and_aws() {
        let config = with_identity(DEFAULT_PORT).into_config().unwrap();
        assert_eq!(config.client_id, "thing");
        assert_eq!(config.keep_alive, 60);
        assert_eq!(config.telemetry_topic, "device/thing/messages/events");
        assert_eq!(
            config.cloud_to_device_filter,
            "device/thing/messages/devicebound/#"
        );
        assert!(tls_of(&config).enable_sni);
        let custom = with_identity(DEFAULT_PORT)
            .topic_prefix("fleet")
            .into_config()
            .unwrap();
        assert_eq!(custom.telemetry_topic, "fleet/thing/messages/events");
    }

    #[test]
    fn an_empty_client_id_needs_mqtt5_and_a_clean_session() {
        let assigned = |builder: ClientBuilder| builder.client_id("").into_config();
        let v5 = with_identity(DEFAULT_PORT).protocol(ProtocolVersion::V5);
        assert_eq!(assigned(v5).unwrap().client_id, "");
        let v311 = with_identity(DEFAULT_PORT).protocol(ProtocolVersion::V311);
        assert!(matches!(
            assigned(v311),
            Err(ConfigError::InvalidClientId { why, .. }) if why.contains("MQTT 5")
        ));
        let persistent = with_identity(DEFAULT_PORT)
            .protocol(ProtocolVersion::V5)
            .persistent_session(Duration::from_secs(60));
        assert!(matches!(
            assigned(persistent),
            Err(ConfigError::InvalidClientId { why, .. }) if why.contains("persistent")
        ));
    }

    #[test]
    fn client_ids_follow_aws_rules() {
        assert!(check_client_id("my-thing", true).is_ok());
        assert!(check_client_id(&"x".repeat(129), true).is_err());
        assert!(check_client_id(&"x".repeat(129), false).is_ok());
        assert!(check_client_id("$GEN/abc", true).is_err());
    }
}
