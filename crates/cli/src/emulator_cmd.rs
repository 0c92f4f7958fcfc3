//! `iotcore emulator`: run the local AWS IoT Core until Ctrl-C.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::{Args, ValueEnum};
use iotcore_emulator::pki::Pki;
use iotcore_emulator::quotas::QuotaOverride;
use iotcore_emulator::{Emulator, EmulatorConfig, EmulatorError, Quotas};

use crate::CliResult;
use crate::data_dir::DataDir;

/// Options of `iotcore emulator`.
#[derive(Args)]
pub struct EmulatorArgs {
    /// TCP port of the MQTT over TLS listener (0 picks a free one).
    #[arg(long, default_value_t = 8883)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Extra host names or IP addresses the server certificate must cover
    /// (besides localhost, 127.0.0.1 and ::1). Repeat or separate with commas.
    #[arg(long = "server-name", value_delimiter = ',')]
    server_names: Vec<String>,
    /// How long a persistent session outlives its connection, in seconds (AWS: 3600).
    #[arg(long, default_value_t = 3600)]
    persistent_session_expiry: u64,
    /// TCP port of the HTTPS API: AWS's control plane and HTTP data plane, for
    /// the AWS CLI, boto3 and the AWS SDKs (--endpoint-url), and devices'
    /// HTTPS publish. Default: 8443, or a free port when 8443 is taken; 0 picks
    /// a free one.
    #[arg(long, conflicts_with = "no_api")]
    api_port: Option<u16>,
    /// Serve no HTTPS API.
    #[arg(long)]
    no_api: bool,
    /// TCP port of the console, the emulator's web pages (MQTT test client,
    /// shadows, registry, connections and refusals), on loopback only: it has
    /// no login. Default: 8880, or a free port when 8880 is taken; 0 picks a
    /// free one.
    #[arg(long, conflicts_with = "no_console")]
    console_port: Option<u16>,
    /// Serve no console.
    #[arg(long)]
    no_console: bool,
    /// AWS IoT Core's throttling quotas (100 publishes/s and 512 KiB/s per
    /// connection, 1 CONNECT/s per client id, 100 unacknowledged inbound
    /// QoS 1, 50 subscriptions per connection, 10 stored messages/s replayed,
    /// 10 shadow requests in flight), or none (`off`: load tests, benchmarks).
    #[arg(long, value_enum, default_value_t = QuotaSet::Aws)]
    quotas: QuotaSet,
    /// Changes one quota: NAME=VALUE, VALUE a number or `off`. Names:
    /// publish-per-second, bytes-per-second, connect-per-second,
    /// inbound-in-flight, subscriptions-per-connection, replay-per-second,
    /// shadow-in-flight. Repeatable; applied after --quotas.
    #[arg(long = "quota", value_name = "NAME=VALUE")]
    quota: Vec<QuotaOverride>,
    /// TCP port of a listener serving Greengrass discovery alone (0 picks a
    /// free one). Discovery is served anyway on the API port (8443 by default,
    /// AWS's discovery port) and on the MQTT port with ALPN x-amzn-http-ca
    /// (AWS's port 443).
    #[arg(long)]
    discovery_port: Option<u16>,
    /// Sync the data directory's database to disk before acknowledging, so
    /// that acknowledged messages, subscriptions and sessions survive a power
    /// loss (SQLite synchronous=FULL; slower). Without it they survive the
    /// emulator's process being killed: each is written to the operating
    /// system before its PUBACK, SUBACK or reply.
    #[arg(long)]
    fsync: bool,
}

/// The quotas `--quotas` starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum QuotaSet {
    /// AWS IoT Core's figures.
    Aws,
    /// No quota.
    Off,
}

impl EmulatorArgs {
    /// The quotas `--quotas` and `--quota` ask for.
    fn quotas(&self) -> Result<Quotas, iotcore_emulator::quotas::QuotaError> {
        let mut quotas = match self.quotas {
            QuotaSet::Aws => Quotas::aws(),
            QuotaSet::Off => Quotas::off(),
        };
        for change in &self.quota {
            quotas.apply(*change)?;
        }
        Ok(quotas)
    }
}

/// The API port used when `--api-port` is not given and it is free.
const DEFAULT_API_PORT: u16 = 8443;
/// The console port used when `--console-port` is not given and it is free.
const DEFAULT_CONSOLE_PORT: u16 = 8880;

/// Where an optional listener (the API, the console) binds.
struct Port {
    addr: SocketAddr,
    /// The port is the default, not asked for: another is taken when it is in use.
    default: bool,
}

impl Port {
    /// `None` when `off`; the port asked for, or `default`.
    fn chosen(off: bool, asked: Option<u16>, default: u16, ip: IpAddr) -> Option<Port> {
        (!off).then(|| Port {
            addr: SocketAddr::new(ip, asked.unwrap_or(default)),
            default: asked.is_none(),
        })
    }

    /// When `taken` is `port`'s default address, moves it to a free port and says so.
    fn moved(port: &mut Option<Port>, taken: SocketAddr) -> bool {
        match port {
            Some(Port { addr, default }) if *default && *addr == taken => {
                *addr = SocketAddr::new(addr.ip(), 0);
                *default = false;
                true
            }
            _ => false,
        }
    }
}

/// Starts the emulator with state in `data_dir`, resources named in its
/// scope, and serves until Ctrl-C or SIGTERM.
pub fn run(data_dir: &DataDir, args: EmulatorArgs) -> CliResult {
    let (scope, data_dir) = (data_dir.scope(), data_dir.path());
    let quotas = args.quotas()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // Registered before the first line is printed: whoever reads that line may
        // signal at once.
        let stop = crate::signals::stop_signal()?;
        let config = EmulatorConfig::new(data_dir)
            .with_bind(SocketAddr::new(args.bind, args.port))
            .with_extra_server_names(args.server_names)
            .with_persistent_session_expiry(Duration::from_secs(args.persistent_session_expiry))
            .with_arn_scope(scope.region(), scope.account_id())
            .with_quotas(quotas)
            .with_fsync(args.fsync);
        let config = match args.discovery_port {
            Some(port) => config.with_discovery_bind(SocketAddr::new(args.bind, port)),
            None => config,
        };
        let loopback = if args.bind.is_loopback() {
            args.bind
        } else {
            IpAddr::from([127, 0, 0, 1])
        };
        let mut api = Port::chosen(args.no_api, args.api_port, DEFAULT_API_PORT, args.bind);
        let mut console =
            Port::chosen(args.no_console, args.console_port, DEFAULT_CONSOLE_PORT, loopback);
        let emulator = loop {
            let mut config = config.clone();
            if let Some(port) = &api {
                config = config.with_api_bind(port.addr);
            }
            if let Some(port) = &console {
                config = config.with_console_bind(port.addr);
            }
            match Emulator::start(config).await {
                Err(EmulatorError::AddressInUse { addr }) if Port::moved(&mut api, addr) => {
                    tracing::warn!("port {} is taken: the HTTPS API takes a free port", addr.port());
                }
                Err(EmulatorError::AddressInUse { addr }) if Port::moved(&mut console, addr) => {
                    tracing::warn!("port {} is taken: the console takes a free port", addr.port());
                }
                started => break started?,
            }
        };
        let ca = Pki::ca_cert_path(data_dir);
        crate::signals::say(format_args!(
            "iotcore emulator listening on {}\ndata directory: {}\nroot CA: {}",
            emulator.local_addr(),
            data_dir.display(),
            ca.display()
        ));
        if let Some(api) = emulator.api_addr() {
            crate::signals::say(format_args!(
                "HTTPS API: https://localhost:{} (aws --endpoint-url https://localhost:{} \
                 --region {} with AWS_CA_BUNDLE={} and credentials from `iotcore credentials create`)",
                api.port(),
                api.port(),
                scope.region(),
                ca.display()
            ));
        }
        let discovery_ports: Vec<String> = [emulator.api_addr(), emulator.discovery_addr()]
            .into_iter()
            .flatten()
            .map(|addr| addr.port().to_string())
            .collect();
        crate::signals::say(format_args!(
            "Greengrass discovery: GET /greengrass/discover/thing/NAME with a device certificate \
             on port {} (ALPN x-amzn-http-ca){}",
            emulator.local_addr().port(),
            match discovery_ports.as_slice() {
                [] => String::new(),
                ports => format!(" and {}", ports.join(", ")),
            }
        ));
        if let Some(console) = emulator.console_addr() {
            crate::signals::say(format_args!("console: http://{console}/"));
        }
        crate::signals::say(format_args!("press Ctrl-C to stop"));
        stop.await;
        crate::signals::say(format_args!("stopping"));
        emulator.shutdown().await;
        Ok(())
    })
}
