//! `iotcore simulate`: a fleet of virtual devices for load-testing the
//! emulator (or any AWS IoT Core endpoint whose registry is the emulator's).
//!
//! The run: make the things and certificates ([`identities()`]), or read them
//! from a directory ([`cert_dir`], `--certs`), connect the devices at the ramp rate and run their telemetry and shadow traffic
//! ([`fleet`], [`device`]) while [`progress`] prints a line a second, then
//! stop at the end of `--duration` or on Ctrl-C and print the [`summary`].
//!
//! A fleet too large for one machine runs as N processes, each with
//! `--shard K/N` ([`shard`]) and `--json`; `iotcore simulate merge`
//! ([`merge`]) combines their summaries into the fleet's.

mod args;
mod cert_dir;
mod device;
mod fleet;
mod histogram;
mod identities;
mod limits;
mod merge;
mod progress;
mod shard;
mod stats;
mod summary;

use std::net::{Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use iotcore_emulator::control::{Control, ControlError};
use iotcore_emulator::{Emulator, EmulatorConfig};
use time::OffsetDateTime;
use tokio::sync::watch;

pub use args::SimulateCommand;

use crate::CliResult;
use crate::data_dir::DataDir;
use args::{SimulateArgs, SimulateSubcommand};
use device::{Plan, Trust};
use identities::Identity;
use limits::LimitError;
use shard::Shard;
use stats::Stats;
use summary::{Part, ShardInfo};

/// Why a simulation could not run, or did not run cleanly.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// The machine's limits (file descriptors, ephemeral ports) cannot hold the fleet.
    #[error(transparent)]
    Limits(#[from] LimitError),
    /// `--source-addresses` with an endpoint that is not an IPv4 loopback address.
    #[error(
        "--source-addresses {count} spreads the devices over 127.0.0.1 … 127.0.0.{count}, which \
         reach only a loopback endpoint; {endpoint} is not one (use 127.0.0.1 or localhost)"
    )]
    SourceAddressesNeedLoopback {
        /// The count asked for.
        count: u8,
        /// The endpoint given.
        endpoint: String,
    },
    /// More shards than devices: some would have none.
    #[error(
        "shard {shard}: {} shards of {devices} devices leave some without any; use at most \
         {devices} shards (N ≤ --devices)",
        shard.count
    )]
    TooManyShards {
        /// The shard.
        shard: Shard,
        /// The fleet's devices.
        devices: u32,
    },
    /// The embedded emulator did not start.
    #[error("cannot start the embedded emulator: {0}")]
    Emulator(#[from] iotcore_emulator::EmulatorError),
    /// Some devices failed to connect or some operations failed.
    #[error(
        "the simulation was not clean: {connect_failures} devices failed to connect, \
         {not_connected} more had not connected when the run ended{ramp_hint}, {errors} errors in \
         all (see the summary)"
    )]
    NotClean {
        /// Devices whose connection failed.
        connect_failures: u64,
        /// Devices neither connected nor failed when the run ended.
        not_connected: u64,
        /// Advice when the ramp was too slow for the duration.
        ramp_hint: &'static str,
        /// Every error counted.
        errors: u64,
    },
}

/// Runs `iotcore simulate`: `merge`, or a simulation. Without `--endpoint`,
/// against an emulator started here in a temporary directory; with it,
/// against that endpoint, whose registry is in `data_dir`.
pub fn run(data_dir: &DataDir, command: SimulateCommand) -> CliResult {
    let args = match command.subcommand {
        Some(SimulateSubcommand::Merge(merge)) => return merge::run(&merge),
        None => command.run,
    };
    let shard = args.shard.unwrap_or(Shard::WHOLE);
    if shard.count > args.devices {
        return Err(SimulateError::TooManyShards {
            shard,
            devices: args.devices,
        }
        .into());
    }
    let slice = shard.range(args.devices as usize);
    check_limits(&args, slice.len())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(simulate(data_dir, args, shard, slice))
}

async fn simulate(
    data_dir: &DataDir,
    args: SimulateArgs,
    shard: Shard,
    slice: Range<usize>,
) -> CliResult {
    let scope = data_dir.scope();
    let temporary = tempfile::tempdir()?;
    let (emulator, data_path, endpoint, port) = match &args.endpoint {
        Some(host) => (None, data_dir.path().to_path_buf(), host.clone(), args.port),
        None => {
            let config = EmulatorConfig::new(temporary.path())
                .with_bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
                .with_arn_scope(scope.region(), scope.account_id());
            let emulator = Emulator::start(config)
                .await
                .map_err(SimulateError::Emulator)?;
            let port = emulator.local_addr().port();
            let dir = temporary.path().to_path_buf();
            (Some(emulator), dir, "127.0.0.1".to_owned(), port)
        }
    };
    let emulator_name = match &emulator {
        Some(_) => format!("embedded, 127.0.0.1:{port}"),
        None => format!("{endpoint}:{port}"),
    };

    let devices = slice.len();
    let ramp_time = devices as f64 / args.ramp;
    if ramp_time >= args.duration.as_secs_f64() {
        eprintln!(
            "warning: connecting {devices} devices at {}/s takes {ramp_time:.1} s, not less than \
             --duration {:?}: some will not connect",
            args.ramp, args.duration
        );
    }
    // Things are made through the embedded emulator's control plane, or in
    // the registry of the data directory of the emulator at --endpoint.
    let open_registry = || match &emulator {
        Some(emulator) => Ok(emulator.control().clone()),
        None => data_dir.control(),
    };
    let (identities, setup_time) =
        identities(&args, shard, slice, &data_path, open_registry).await?;
    let shard_info = ShardInfo {
        shard,
        fleet_devices: args.devices as usize,
        first_thing: identities
            .first()
            .map(|i| i.thing.clone())
            .unwrap_or_default(),
        last_thing: identities
            .last()
            .map(|i| i.thing.clone())
            .unwrap_or_default(),
    };
    if shard != Shard::WHOLE {
        eprintln!(
            "shard {shard} of a fleet of {}: {} devices, {} … {}",
            args.devices, devices, shard_info.first_thing, shard_info.last_thing
        );
    }
    eprintln!("connecting {}/s to {emulator_name}", args.ramp);
    let plan = Arc::new(Plan {
        endpoint,
        port,
        source_addresses: args.source_addresses,
        telemetry_every: args.telemetry_every,
        shadow_every: args.shadow_every,
        trust: Trust::default(),
    });

    let stats = Arc::new(Stats::default());
    let (stop_tx, stop) = watch::channel(false);
    let started = Instant::now();
    let started_at = OffsetDateTime::now_utc();
    let progress = tokio::spawn(progress::run(stats.clone(), devices, started, stop.clone()));
    let fleet = tokio::spawn(fleet::run(
        identities,
        args.ramp,
        plan,
        stats.clone(),
        stop.clone(),
    ));
    let interrupted = tokio::select! {
        _ = tokio::time::sleep(args.duration) => false,
        signal = tokio::signal::ctrl_c() => signal.is_ok(),
    };
    let elapsed = started.elapsed();
    let ended_at = OffsetDateTime::now_utc();
    let _ = stop_tx.send(true);
    eprintln!(
        "{}: closing {} connections",
        if interrupted { "interrupted" } else { "done" },
        stats.snapshot().connected
    );
    fleet.await?;
    progress.await?;
    if let Some(emulator) = emulator {
        emulator.shutdown().await;
    }

    let snapshot = stats.snapshot();
    let context = summary::Context {
        devices,
        part: Part::Shard(shard_info),
        emulator: emulator_name,
        ramp: args.ramp,
        telemetry_every: args.telemetry_every,
        shadow_every: args.shadow_every,
        elapsed,
        started_at,
        ended_at,
        interrupted,
        provisioning: setup_time,
        peak_rss_kib: summary::peak_rss_kib(),
        peak_rss_covers: summary::rss_scope(args.endpoint.is_none()).to_owned(),
    };
    summary::report(&context, &snapshot, args.json.as_deref())
}

/// The identities of the devices of the fleet's `slice` (this shard's), read
/// from `--certs` or made in the registry of `data_dir` that `open_registry`
/// opens, and how long that took.
async fn identities(
    args: &SimulateArgs,
    shard: Shard,
    slice: Range<usize>,
    data_dir: &Path,
    open_registry: impl FnOnce() -> Result<Control, ControlError>,
) -> Result<(Vec<Identity>, Duration), Box<dyn std::error::Error + Send + Sync>> {
    let fleet = args.devices as usize;
    let devices = slice.len();
    let data_dir = data_dir.to_path_buf();
    if let Some(dir) = args.certs.clone() {
        eprintln!(
            "reading {devices} devices' certificates from {}",
            dir.display()
        );
        let started = Instant::now();
        let identities =
            tokio::task::spawn_blocking(move || cert_dir::read(&dir, slice, fleet, &data_dir))
                .await??;
        let elapsed = started.elapsed();
        eprintln!("read them in {:.1} s", elapsed.as_secs_f64());
        return Ok((identities, elapsed));
    }
    eprintln!(
        "making {devices} things with ECDSA P-256 certificates in {}",
        data_dir.display()
    );
    let control = open_registry().map_err(identities::ProvisionError::Registry)?;
    // Shards sharing a registry leave each other's things alone.
    let replace = match shard {
        Shard::WHOLE => identities::Replace::All,
        _ => identities::Replace::Mine,
    };
    let provisioned =
        tokio::task::spawn_blocking(move || identities::provision(&control, slice, fleet, replace))
            .await??;
    eprintln!(
        "made {devices} things in {:.1} s{}",
        provisioned.elapsed.as_secs_f64(),
        match provisioned.replaced {
            0 => String::new(),
            n => format!(" (replaced {n} from an earlier run)"),
        },
    );
    Ok((provisioned.identities, provisioned.elapsed))
}

/// Fails early, with what to do, when the machine cannot hold the fleet's
/// `devices` connections, or when `--source-addresses` cannot reach the
/// endpoint.
fn check_limits(args: &SimulateArgs, devices: usize) -> Result<(), SimulateError> {
    if args.source_addresses > 1
        && let Some(endpoint) = &args.endpoint
        && !is_ipv4_loopback(endpoint)
    {
        return Err(SimulateError::SourceAddressesNeedLoopback {
            count: args.source_addresses,
            endpoint: endpoint.clone(),
        });
    }
    let need = limits::Need {
        devices: devices as u64,
        embedded: args.endpoint.is_none(),
        source_addresses: u64::from(args.source_addresses),
    };
    Ok(limits::check(need, limits::Machine::current())?)
}

/// Whether `host` is `localhost` or an address in 127.0.0.0/8.
fn is_ipv4_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}
