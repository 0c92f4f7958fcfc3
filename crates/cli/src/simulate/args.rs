//! The command line of `iotcore simulate` and `iotcore simulate merge`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::shard::Shard;
use crate::duration::parse_duration;

/// `iotcore simulate [OPTIONS]` runs a fleet (or a shard of one);
/// `iotcore simulate merge FILE…` combines the shards' JSON summaries. The
/// options and the subcommand exclude each other, so `merge` never reads as
/// an option's value.
#[derive(Args, Debug, Clone)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SimulateCommand {
    /// `merge`, or nothing to run a fleet.
    #[command(subcommand)]
    pub subcommand: Option<SimulateSubcommand>,
    /// The fleet to run.
    #[command(flatten)]
    pub run: SimulateArgs,
}

/// Subcommands of `iotcore simulate`.
#[derive(Subcommand, Debug, Clone)]
pub enum SimulateSubcommand {
    /// Combine the JSON summaries (--json) of the N shards of one fleet
    /// (--shard 1/N … N/N) into the fleet's summary: counts summed, latency
    /// histograms merged (exact fleet percentiles), errors united.
    Merge(MergeArgs),
}

/// Options of `iotcore simulate merge`.
#[derive(Args, Debug, Clone)]
pub struct MergeArgs {
    /// The shards' JSON summaries: files, or directories whose *.json files
    /// are read. Every shard of the fleet exactly once.
    #[arg(required = true, value_name = "FILE|DIR")]
    pub inputs: Vec<PathBuf>,
    /// Also write the fleet's summary as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Options of `iotcore simulate`.
#[derive(Args, Debug, Clone)]
pub struct SimulateArgs {
    /// How many virtual devices the fleet has (things sim-00001, sim-00002, …,
    /// six digits from 100,000 devices on; or the first of --certs). With
    /// --shard, the whole fleet's count: this process runs its slice.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub devices: u32,
    /// Run shard K of N of the fleet (1 ≤ K ≤ N): devices (K-1)·D/N to
    /// K·D/N of --devices D, with the names the whole fleet's run gives them,
    /// so N processes (machines, pods) run every device once. With
    /// --endpoint, only this slice's sim-* things are made (and replaced);
    /// with --certs, this slice of the directory's devices is read. Combine
    /// the shards' --json summaries with `iotcore simulate merge`.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
    /// Connections opened per second while the fleet comes up.
    #[arg(long, default_value_t = 100.0, value_parser = parse_rate)]
    pub ramp: f64,
    /// Each device publishes a QoS 1 telemetry message to dt/THING/telemetry
    /// this often (e.g. 500ms, 5s, 1m); 0 for none.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub telemetry_every: Duration,
    /// Each device updates its shadow's reported state this often; 0 for never.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub shadow_every: Duration,
    /// How long to run, counted from the first connection attempt (Ctrl-C stops earlier).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Host of a running emulator to load. Without it, an emulator is started
    /// in this process on 127.0.0.1 with a temporary data directory. With it,
    /// the devices' things and certificates are made in the emulator's data
    /// directory (--data-dir / IOTCORE_DATA_DIR), replacing earlier sim-* things,
    /// unless --certs gives them.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// MQTT over TLS port of --endpoint.
    #[arg(long, default_value_t = 8883, requires = "endpoint")]
    pub port: u16,
    /// Spread the devices over N loopback source addresses, 127.0.0.1 …
    /// 127.0.0.N in turn (1 to 254; the endpoint must be loopback): each has
    /// its own ephemeral ports (net.ipv4.ip_local_port_range, 28,232 by
    /// default), the cap on connections from one address to the emulator's
    /// one address and port. 1: the kernel picks the address.
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u8).range(1..=i64::from(super::limits::MAX_SOURCE_ADDRESSES)))]
    pub source_addresses: u8,
    /// Read the devices' certificates from DIR instead of making things: one
    /// subdirectory per device, named after its thing (also its client id),
    /// with the files `iotcore thing create NAME --out DIR/NAME` or `iotcore
    /// provision --out DIR/NAME` write. The first --devices subdirectories in
    /// name order are used (hidden ones skipped). A device trusts the
    /// root-ca.pem in its directory or, without one (provisioned devices), the
    /// emulator's CA in the data directory. Nothing is created or deleted: the
    /// certificates must be registered in the running emulator's registry, so
    /// --certs requires --endpoint.
    #[arg(long, value_name = "DIR", requires = "endpoint")]
    pub certs: Option<PathBuf>,
    /// Also write the summary as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Parses a positive rate (connections per second).
fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().trim_end_matches("/s").parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "{text:?} is not a rate: give connections per second, a number above 0"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_must_be_positive() {
        assert_eq!(parse_rate("200"), Ok(200.0));
        assert_eq!(parse_rate("50/s"), Ok(50.0));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("-3").is_err());
    }
}
