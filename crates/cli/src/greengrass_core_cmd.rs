//! `iotcore greengrass core run NAME`: a local Greengrass core device for
//! client devices to discover and connect to, bridged to the emulator
//! ([`iotcore_emulator::local_core`] and [`crate::bridge`]).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use iotcore_emulator::control::Control;
use iotcore_emulator::local_core::{LocalCore, LocalCoreConfig, LocalCoreError};
use iotcore_emulator::{EmulatorError, config::DEFAULT_PORT};

use crate::CliResult;
use crate::bridge::{Bridge, Direction, Mapping, Sides};
use crate::data_dir::DataDir;
use crate::duration::parse_duration;

/// Options of `iotcore greengrass core run`.
#[derive(Debug, Args)]
pub struct CoreRunArgs {
    /// The core device's thing name (`iotcore greengrass core create NAME`).
    pub name: String,
    /// Address the core's broker listens on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
    /// Port of the core's broker: 8883 (AWS's default) when free, else any
    /// free port; client devices learn it from discovery.
    #[arg(long)]
    pub port: Option<u16>,
    /// Where the core keeps its CA, certificate and broker state; default
    /// `<data dir>/greengrass/<NAME>`.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// How long the core's server certificate is valid before a new one is
    /// issued (AWS: 7 days; `kill -HUP` issues one at once).
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    pub rotate_every: Duration,
    /// How often the core reads its client devices from the cloud.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub sync_every: Duration,
    /// What client devices may do on the core (JSON file): the client device
    /// auth component's configuration (`{"deviceGroups": …}`, as deployed on
    /// AWS), or one IoT policy for all; default: connect with the thing name
    /// as client id, publish and subscribe anywhere.
    #[arg(long, value_name = "FILE")]
    pub client_policy: Option<PathBuf>,
    /// Bridge to the cloud the messages of the core's broker that match
    /// this topic filter (AWS's MQTT bridge `LocalMqtt` → `IotCore`). Repeatable.
    #[arg(long = "to-cloud", value_name = "FILTER")]
    pub to_cloud: Vec<String>,
    /// Bridge to the core's broker the cloud's messages that match this
    /// filter (`IotCore` → `LocalMqtt`). Repeatable.
    #[arg(long = "to-local", value_name = "FILTER")]
    pub to_local: Vec<String>,
    /// The cloud's MQTT endpoint the bridge connects to (`iotcore emulator`).
    #[arg(long, default_value = "localhost")]
    pub cloud_host: String,
    /// The cloud's MQTT port.
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub cloud_port: u16,
}

/// Runs the core until Ctrl-C or SIGTERM.
pub fn run(data_dir: &DataDir, cloud: Control, args: CoreRunArgs) -> CliResult {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| data_dir.path().join("greengrass").join(&args.name));
    let client_policy = match &args.client_policy {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the client policy {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let stop = crate::signals::stop_signal()?;
        let config = |port| {
            let mut config =
                LocalCoreConfig::new(&args.name, &dir, SocketAddr::new(args.bind, port))
                    .with_rotate_every(args.rotate_every)
                    .with_sync_every(args.sync_every);
            if let Some(document) = &client_policy {
                config = config.with_client_policy(document);
            }
            config
        };
        let core = match args.port {
            Some(port) => LocalCore::start(config(port), cloud.clone()).await?,
            None => match LocalCore::start(config(DEFAULT_PORT), cloud.clone()).await {
                Err(LocalCoreError::Broker(EmulatorError::AddressInUse { .. })) => {
                    tracing::warn!(
                        "port {DEFAULT_PORT} is taken: the core's broker takes a free port"
                    );
                    LocalCore::start(config(0), cloud.clone()).await?
                }
                started => started?,
            },
        };
        let mappings: Vec<Mapping> = args
            .to_cloud
            .iter()
            .map(|filter| (filter, Direction::ToCloud))
            .chain(
                args.to_local
                    .iter()
                    .map(|filter| (filter, Direction::ToLocal)),
            )
            .map(|(filter, direction)| Mapping {
                filter: filter.clone(),
                direction,
            })
            .collect();
        let identity = core.identity();
        let local_ca = core.ca_pem();
        let store = dir.join("bridge-store");
        let bridge = Bridge::start(
            &Sides {
                core: &args.name,
                cert_pem: &identity.certificate_pem,
                key_pem: &identity.private_key_pem,
                local: ("localhost", core.local_addr().port(), &local_ca),
                cloud: (&args.cloud_host, args.cloud_port, cloud.pki().ca_pem()),
                store: &store,
            },
            &mappings,
        )
        .await?;
        crate::signals::say(format_args!(
            "Greengrass core {} listening on {}\ncore CA: {}\nbridge: {} mapping(s) to {}:{}",
            args.name,
            core.local_addr(),
            dir.join("pki").join("ca.pem").display(),
            mappings.len(),
            args.cloud_host,
            args.cloud_port,
        ));
        crate::signals::say(format_args!(
            "press Ctrl-C to stop; kill -HUP issues a new server certificate"
        ));
        let mut rotate = crate::signals::hangups()?;
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = rotate.recv() => {
                    if let Err(e) = core.rotate_server_certificate().await {
                        tracing::error!("cannot issue a new server certificate: {e}");
                    }
                }
            }
        }
        crate::signals::say(format_args!("stopping"));
        bridge.close().await;
        core.shutdown().await;
        Ok(())
    })
}
