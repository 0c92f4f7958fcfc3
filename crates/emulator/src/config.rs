//! Configuration of an emulator instance: where it keeps its state, where it
//! listens, and the AWS IoT Core limits it enforces.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use rustls_pki_types::CertificateDer;

use crate::quotas::Quotas;
use crate::tls::ServerCertificate;

/// The port AWS IoT Core serves MQTT over TLS on, and the emulator's default.
pub const DEFAULT_PORT: u16 = 8883;

/// How to run an [`Emulator`](crate::Emulator).
///
/// ```
/// use iotcore_emulator::EmulatorConfig;
/// let config = EmulatorConfig::new("/tmp/iotcore-data")
///     .with_bind("127.0.0.1:0".parse().unwrap());
/// assert_eq!(config.bind.port(), 0);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EmulatorConfig {
    /// Directory holding the CA, the server certificate and the SQLite registry.
    /// Created on first start.
    pub data_dir: PathBuf,
    /// Address of the MQTT/TLS listener; default `127.0.0.1:8883`. Port 0 picks a
    /// free port ([`Emulator::local_addr`](crate::Emulator::local_addr) says which).
    pub bind: SocketAddr,
    /// Host names or IP addresses, besides `localhost` and `127.0.0.1`, that the
    /// server certificate must be valid for (when it is first created).
    pub extra_server_names: Vec<String>,
    /// How long a persistent session (MQTT 3.1.1 `cleanSession=0`, or MQTT 5 without a
    /// session expiry interval of its own) outlives its connection. AWS: 1 hour by default.
    pub persistent_session_expiry: Duration,
    /// The longest MQTT 5 session expiry interval honoured; longer requests are
    /// capped. AWS: 7 days.
    pub max_session_expiry: Duration,
    /// Protocol limits (AWS IoT Core's by default).
    pub limits: Limits,
    /// Throttling quotas: AWS IoT Core's by default ([`Quotas::aws`]);
    /// [`Quotas::off`] for load tests and benchmarks.
    pub quotas: Quotas,
    /// The AWS region resource ARNs are in, as policies name them
    /// (`arn:aws:iot:<region>:…`). Default [`DEFAULT_REGION`](crate::policy::DEFAULT_REGION).
    pub region: String,
    /// The account id resource ARNs are in. Default
    /// [`DEFAULT_ACCOUNT_ID`](crate::policy::DEFAULT_ACCOUNT_ID).
    pub account_id: String,
    /// Where the HTTPS API (AWS's control plane and HTTP data plane, for the
    /// AWS CLI, boto3 and the AWS SDKs) listens; `None` (the default): no API.
    pub api_bind: Option<SocketAddr>,
    /// Where a listener serving Greengrass discovery alone listens; `None`
    /// (the default): none. Discovery is also served on the API port (AWS's
    /// discovery port is 8443, the API's default) and on the MQTT port with
    /// ALPN `x-amzn-http-ca` (AWS's port 443).
    pub discovery_bind: Option<SocketAddr>,
    /// Where to serve the console (a loopback address: it has no login), or
    /// `None` for no console. `iotcore emulator` serves it by default.
    pub console_bind: Option<SocketAddr>,
    /// The clock every timed rule reads (ownership tokens expire after one
    /// hour of it; job executions time out on it; shadow documents and their
    /// metadata are timestamped with it). The system's by default;
    /// tests move a [`Clock::manual`](crate::clock::Clock::manual) one.
    pub clock: crate::clock::Clock,
    /// Sync the store to disk on every commit, so that what the emulator
    /// acknowledged survives a power loss (SQLite `synchronous=FULL`). Off by
    /// default: commits still reach the operating system before anything is
    /// acknowledged, which survives the emulator's process being killed.
    pub fsync: bool,
    /// The certificate the MQTT listener presents, replaceable while the
    /// emulator runs; `None` (the default): the PKI's server certificate
    /// (`<data_dir>/pki/server.pem`).
    pub server_certificate: Option<ServerCertificate>,
    /// CA certificates, besides the emulator's own CA, that a client
    /// certificate may chain to (a local Greengrass core trusts the cloud's
    /// CA, which issued its client devices' certificates). A certificate must
    /// still be registered and active in the registry.
    pub client_trust: Vec<CertificateDer<'static>>,
}

impl EmulatorConfig {
    /// The default configuration with state in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        EmulatorConfig {
            data_dir: data_dir.into(),
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)),
            extra_server_names: Vec::new(),
            persistent_session_expiry: Duration::from_secs(3600),
            max_session_expiry: Duration::from_secs(7 * 24 * 3600),
            limits: Limits::default(),
            quotas: Quotas::aws(),
            region: crate::policy::DEFAULT_REGION.to_owned(),
            account_id: crate::policy::DEFAULT_ACCOUNT_ID.to_owned(),
            api_bind: None,
            discovery_bind: None,
            console_bind: None,
            clock: crate::clock::Clock::system(),
            fsync: false,
            server_certificate: None,
            client_trust: Vec::new(),
        }
    }

    /// Sets [`EmulatorConfig::bind`].
    pub fn with_bind(mut self, bind: SocketAddr) -> Self {
        self.bind = bind;
        self
    }

    /// Sets [`EmulatorConfig::extra_server_names`].
    pub fn with_extra_server_names(mut self, names: Vec<String>) -> Self {
        self.extra_server_names = names;
        self
    }

    /// Sets [`EmulatorConfig::persistent_session_expiry`].
    pub fn with_persistent_session_expiry(mut self, expiry: Duration) -> Self {
        self.persistent_session_expiry = expiry;
        self
    }

    /// Sets [`EmulatorConfig::max_session_expiry`].
    pub fn with_max_session_expiry(mut self, expiry: Duration) -> Self {
        self.max_session_expiry = expiry;
        self
    }

    /// Sets [`EmulatorConfig::limits`].
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets [`EmulatorConfig::quotas`].
    pub fn with_quotas(mut self, quotas: Quotas) -> Self {
        self.quotas = quotas;
        self
    }

    /// Sets [`EmulatorConfig::region`] and [`EmulatorConfig::account_id`].
    pub fn with_arn_scope(mut self, region: &str, account_id: &str) -> Self {
        self.region = region.to_owned();
        self.account_id = account_id.to_owned();
        self
    }

    /// Sets [`EmulatorConfig::api_bind`]: serve the HTTPS API on `addr`.
    pub fn with_api_bind(mut self, addr: SocketAddr) -> Self {
        self.api_bind = Some(addr);
        self
    }

    /// Sets [`EmulatorConfig::discovery_bind`]: serve Greengrass discovery
    /// alone on `addr` too.
    pub fn with_discovery_bind(mut self, addr: SocketAddr) -> Self {
        self.discovery_bind = Some(addr);
        self
    }

    /// Sets [`EmulatorConfig::console_bind`]: serve the console on `addr`.
    pub fn with_console_bind(mut self, addr: SocketAddr) -> Self {
        self.console_bind = Some(addr);
        self
    }

    /// Sets [`EmulatorConfig::clock`].
    pub fn with_clock(mut self, clock: crate::clock::Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Sets [`EmulatorConfig::fsync`].
    pub fn with_fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }

    /// Sets [`EmulatorConfig::server_certificate`].
    pub fn with_server_certificate(mut self, certificate: ServerCertificate) -> Self {
        self.server_certificate = Some(certificate);
        self
    }

    /// Sets [`EmulatorConfig::client_trust`].
    pub fn with_client_trust(mut self, cas: Vec<CertificateDer<'static>>) -> Self {
        self.client_trust = cas;
        self
    }

    /// The region and account resource ARNs are in.
    pub fn arn_scope(&self) -> crate::policy::ArnScope {
        crate::policy::ArnScope::new(&self.region, &self.account_id)
    }
}

/// Protocol limits. `Default` is AWS IoT Core's documented limits
/// (<https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits>).
///
/// Topic names and filters are always held to AWS's fixed limits (256 bytes,
/// 8 levels, `$aws/rules/<rule>/` exempt: see
/// [`iotcore_mqtt::topic::validate_aws_topic_name`]). AWS's rate and count
/// quotas (publishes per second, subscriptions per connection, …) are
/// [`Quotas`], which can be lifted.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest PUBLISH payload accepted, in bytes. AWS: 128 KB (131,072 bytes).
    pub max_payload: usize,
    /// Largest packet read from a client, fixed header included; a larger one is
    /// refused while its header is read, before its body is buffered. Announced
    /// as MQTT 5 Maximum Packet Size. AWS announces 149,504.
    pub max_packet_size: usize,
    /// Longest client id, in UTF-8 bytes. AWS: 128.
    pub max_client_id_bytes: usize,
    /// Most topic filters in one SUBSCRIBE. AWS: 8.
    pub max_filters_per_subscribe: usize,
    /// Longest keep-alive honoured, in seconds; longer requests are capped. AWS: 1200.
    pub max_keep_alive: u16,
    /// Shortest keep-alive honoured, in seconds; shorter requests are raised to it.
    /// AWS: 30.
    pub min_keep_alive: u16,
    /// Unacknowledged QoS 1 messages in flight to one client. AWS: 100.
    pub max_inflight_outbound: u16,
    /// Messages waiting in one connected session's outbound queue before QoS 0
    /// messages to it are dropped (QoS 1 messages are still queued, up to
    /// [`Limits::max_queued_qos1`]). A slow subscriber never slows the others.
    pub outbound_queue: usize,
    /// QoS 1 messages kept for one session (connected and slow, or
    /// disconnected and persistent), or for one shared subscription group while
    /// none of its members is connected, before the oldest are dropped.
    pub max_queued_qos1: usize,
    /// How long a connection over WebSocket may last before the broker closes
    /// it (lifecycle reason `WEBSOCKET_TTL_EXPIRATION`). AWS: 24 hours.
    pub max_websocket_connection: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_payload: 128 * 1024,
            max_packet_size: 149_504,
            max_client_id_bytes: 128,
            max_filters_per_subscribe: 8,
            max_keep_alive: 1200,
            min_keep_alive: 30,
            max_inflight_outbound: 100,
            outbound_queue: 1000,
            max_queued_qos1: 10_000,
            max_websocket_connection: Duration::from_secs(24 * 3600),
        }
    }
}
