//! `iotcore simulate merge`: the JSON summaries of the N shards of one fleet
//! (`--shard 1/N` … `N/N`, `--json`) combined into the fleet's summary.
//!
//! Counts are summed, the latency histograms merged bucket by bucket (so the
//! fleet's percentiles are exactly those one process would have measured),
//! errors united by operation and kind. Summaries that do not make one fleet
//! (another --devices or N, a shard missing or twice) are refused, naming
//! the files.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::args::MergeArgs;
use super::histogram::{Buckets, Histogram};
use super::shard::Shard;
use super::stats::{ErrorCount, Errors, Latencies, Operation, Snapshot};
use super::summary::{self, Context, Part, ShardInfo};
use crate::CliResult;

/// Why the summaries could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// A file or directory could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// No summary was given.
    #[error("no summary given: name the shards' JSON files or their directory")]
    NoInput,
    /// A directory given holds no JSON file.
    #[error("{} holds no *.json summary", dir.display())]
    NoSummaries {
        /// The directory.
        dir: PathBuf,
    },
    /// A file is not JSON.
    #[error("{} is not JSON: {source}", path.display())]
    InvalidJson {
        /// The file.
        path: PathBuf,
        /// Where the JSON breaks.
        #[source]
        source: serde_json::Error,
    },
    /// A file is JSON but not the summary of a shard.
    #[error(
        "{} is not the JSON summary of a shard (`iotcore simulate --shard K/N --json FILE`): \
         {reason}",
        path.display()
    )]
    NotAShard {
        /// The file.
        path: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },
    /// Two summaries come from different fleets.
    #[error(
        "{} and {} are not shards of one fleet: {what} ({this} there, {first} in the first); \
         merge the shards of one run only",
        path.display(),
        first_path.display()
    )]
    DifferentFleet {
        /// The file that differs.
        path: PathBuf,
        /// The first file read.
        first_path: PathBuf,
        /// What differs.
        what: &'static str,
        /// Its value in `path`.
        this: String,
        /// Its value in `first_path`.
        first: String,
    },
    /// One shard's summary was given twice.
    #[error(
        "shard {shard} is given twice: {} and {}; give each shard's summary once",
        first.display(),
        second.display()
    )]
    DuplicateShard {
        /// The shard.
        shard: Shard,
        /// Its first file.
        first: PathBuf,
        /// The other.
        second: PathBuf,
    },
    /// Shards of the fleet are missing.
    #[error(
        "the fleet has {count} shards, but shard{} {} {} missing: merge every shard's summary",
        if missing.len() == 1 { "" } else { "s" },
        missing.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", "),
        if missing.len() == 1 { "is" } else { "are" }
    )]
    MissingShards {
        /// How many shards the fleet has.
        count: u32,
        /// The shards not given.
        missing: Vec<Shard>,
    },
}

/// Reads the summaries `args` names, prints the fleet's summary (and writes
/// it as JSON with `--json`); fails as a run would if the fleet's run was
/// not clean.
pub fn run(args: &MergeArgs) -> CliResult {
    let mut files = Vec::new();
    for input in &args.inputs {
        files.extend(summary_files(input)?);
    }
    let shards = files
        .iter()
        .map(|path| read(path).map(|summary| (path.clone(), summary)))
        .collect::<Result<Vec<_>, _>>()?;
    let (context, snapshot) = merge(shards)?;
    summary::report(&context, &snapshot, args.json.as_deref())
}

/// `input` itself, or the `*.json` files of directory `input` in name order.
fn summary_files(input: &Path) -> Result<Vec<PathBuf>, MergeError> {
    if !input.is_dir() {
        return Ok(vec![input.to_path_buf()]);
    }
    let read_error = |source| MergeError::Read {
        path: input.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(input).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        if path.extension().is_some_and(|e| e == "json") && path.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(MergeError::NoSummaries {
            dir: input.to_path_buf(),
        });
    }
    files.sort();
    Ok(files)
}

/// What a shard's JSON summary holds that the merge reads.
#[derive(Deserialize)]
struct ShardSummary {
    shard: ShardInfo,
    devices: usize,
    emulator: String,
    ramp_per_s: f64,
    telemetry_every_s: f64,
    shadow_every_s: f64,
    interrupted: bool,
    provisioning_s: f64,
    connect_failures: u64,
    telemetry_acked: u64,
    shadow_accepted: u64,
    errors: Vec<ErrorJson>,
    peak_rss_kib: Option<u64>,
    peak_rss_covers: String,
    started_at: String,
    ended_at: String,
    latency_histograms: HistogramsJson,
}

#[derive(Deserialize)]
struct ErrorJson {
    operation: String,
    kind: String,
    count: u64,
    example: String,
}

#[derive(Deserialize)]
struct HistogramsJson {
    connect: Buckets,
    telemetry: Buckets,
    shadow: Buckets,
}

/// A shard's summary, read and checked.
struct Read {
    info: ShardInfo,
    devices: usize,
    emulator: String,
    ramp: f64,
    telemetry_every: Duration,
    shadow_every: Duration,
    interrupted: bool,
    provisioning: Duration,
    peak_rss_kib: Option<u64>,
    peak_rss_covers: String,
    started_at: OffsetDateTime,
    ended_at: OffsetDateTime,
    snapshot: Snapshot,
}

/// Reads and checks one shard's summary.
fn read(path: &Path) -> Result<Read, MergeError> {
    let bytes = std::fs::read(path).map_err(|source| MergeError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let value: Value =
        serde_json::from_slice(&bytes).map_err(|source| MergeError::InvalidJson {
            path: path.to_path_buf(),
            source,
        })?;
    let not_a_shard = |reason: String| MergeError::NotAShard {
        path: path.to_path_buf(),
        reason,
    };
    match value.get("shard") {
        None => return Err(not_a_shard("it has no \"shard\" field".to_owned())),
        Some(Value::Null) => {
            return Err(not_a_shard(
                "it is a merged summary (\"shard\": null); merge the shards' own summaries"
                    .to_owned(),
            ));
        }
        Some(_) => {}
    }
    let json: ShardSummary =
        serde_json::from_value(value).map_err(|e| not_a_shard(e.to_string()))?;
    let shard = json.shard.shard;
    if shard.index == 0 || shard.index > shard.count {
        return Err(not_a_shard(format!(
            "shard {shard} is not one of 1/N … N/N"
        )));
    }
    let slice = shard.range(json.shard.fleet_devices).len();
    if json.devices != slice {
        return Err(not_a_shard(format!(
            "shard {shard} of {} devices runs {slice}, but \"devices\" says {}",
            json.shard.fleet_devices, json.devices
        )));
    }
    let histogram = |name: &str, buckets: &Buckets| {
        Histogram::from_buckets(buckets)
            .map_err(|reason| not_a_shard(format!("latency_histograms.{name}: {reason}")))
    };
    let latencies = Latencies {
        connect: histogram("connect", &json.latency_histograms.connect)?,
        telemetry: histogram("telemetry", &json.latency_histograms.telemetry)?,
        shadow: histogram("shadow", &json.latency_histograms.shadow)?,
    };
    let mut errors = Errors::new();
    for e in json.errors {
        let operation = Operation::from_name(&e.operation)
            .ok_or_else(|| not_a_shard(format!("unknown operation {:?}", e.operation)))?;
        add_error(&mut errors, operation, e.kind, e.count, e.example);
    }
    let time = |field: &str, text: &str| {
        OffsetDateTime::parse(text, &Rfc3339)
            .map_err(|e| not_a_shard(format!("{field} {text:?} is not an RFC 3339 time: {e}")))
    };
    let seconds = |field: &str, s: f64| {
        Duration::try_from_secs_f64(s)
            .map_err(|_| not_a_shard(format!("{field} {s} is not a duration in seconds")))
    };
    Ok(Read {
        devices: json.devices,
        emulator: json.emulator,
        ramp: json.ramp_per_s,
        telemetry_every: seconds("telemetry_every_s", json.telemetry_every_s)?,
        shadow_every: seconds("shadow_every_s", json.shadow_every_s)?,
        interrupted: json.interrupted,
        provisioning: seconds("provisioning_s", json.provisioning_s)?,
        peak_rss_kib: json.peak_rss_kib,
        peak_rss_covers: json.peak_rss_covers,
        started_at: time("started_at", &json.started_at)?,
        ended_at: time("ended_at", &json.ended_at)?,
        snapshot: Snapshot {
            connected: latencies.connect.count(),
            connect_failures: json.connect_failures,
            telemetry_acked: json.telemetry_acked,
            shadow_accepted: json.shadow_accepted,
            latencies,
            errors,
        },
        info: json.shard,
    })
}

fn add_error(errors: &mut Errors, operation: Operation, kind: String, count: u64, example: String) {
    errors
        .entry((operation, kind))
        .or_insert(ErrorCount { count: 0, example })
        .count += count;
}

/// The fleet's summary from every shard's, once each.
fn merge(shards: Vec<(PathBuf, Read)>) -> Result<(Context, Snapshot), MergeError> {
    let Some((first_path, first)) = shards.first() else {
        return Err(MergeError::NoInput);
    };
    let count = first.info.shard.count;
    let mut seen: Vec<Option<&Path>> = vec![None; count as usize];
    for (path, shard) in &shards {
        let differs = |what, this: String, first: String| {
            (this != first).then(|| MergeError::DifferentFleet {
                path: path.clone(),
                first_path: first_path.clone(),
                what,
                this,
                first,
            })
        };
        let checks = [
            differs(
                "the number of shards",
                shard.info.shard.count.to_string(),
                count.to_string(),
            ),
            differs(
                "--devices",
                shard.info.fleet_devices.to_string(),
                first.info.fleet_devices.to_string(),
            ),
            differs(
                "--telemetry-every",
                format!("{:?}", shard.telemetry_every),
                format!("{:?}", first.telemetry_every),
            ),
            differs(
                "--shadow-every",
                format!("{:?}", shard.shadow_every),
                format!("{:?}", first.shadow_every),
            ),
        ];
        if let Some(error) = checks.into_iter().flatten().next() {
            return Err(error);
        }
        let slot = &mut seen[shard.info.shard.index as usize - 1];
        if let Some(earlier) = slot {
            return Err(MergeError::DuplicateShard {
                shard: shard.info.shard,
                first: earlier.to_path_buf(),
                second: path.clone(),
            });
        }
        *slot = Some(path);
    }
    let missing: Vec<Shard> = (1..=count)
        .filter(|k| seen[*k as usize - 1].is_none())
        .map(|index| Shard { index, count })
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::MissingShards { count, missing });
    }

    let mut snapshot = Snapshot {
        connected: 0,
        connect_failures: 0,
        telemetry_acked: 0,
        shadow_accepted: 0,
        latencies: Latencies::default(),
        errors: Errors::new(),
    };
    let mut emulators: Vec<&str> = Vec::new();
    for (_, shard) in &shards {
        let part = &shard.snapshot;
        snapshot.connected += part.connected;
        snapshot.connect_failures += part.connect_failures;
        snapshot.telemetry_acked += part.telemetry_acked;
        snapshot.shadow_accepted += part.shadow_accepted;
        snapshot.latencies.connect.merge(&part.latencies.connect);
        snapshot
            .latencies
            .telemetry
            .merge(&part.latencies.telemetry);
        snapshot.latencies.shadow.merge(&part.latencies.shadow);
        for ((operation, kind), e) in &part.errors {
            add_error(
                &mut snapshot.errors,
                *operation,
                kind.clone(),
                e.count,
                e.example.clone(),
            );
        }
        if !emulators.contains(&shard.emulator.as_str()) {
            emulators.push(&shard.emulator);
        }
    }
    let reads = || shards.iter().map(|(_, shard)| shard);
    let started_at = reads()
        .map(|s| s.started_at)
        .min()
        .unwrap_or(first.started_at);
    let ended_at = reads().map(|s| s.ended_at).max().unwrap_or(first.ended_at);
    let peaks: Option<Vec<u64>> = reads().map(|s| s.peak_rss_kib).collect();
    let largest = peaks.as_ref().and_then(|p| p.iter().max().copied());
    let context = Context {
        devices: reads().map(|s| s.devices).sum(),
        part: Part::Merged { shards: count },
        emulator: emulators.join(", "),
        ramp: reads().map(|s| s.ramp).sum(),
        telemetry_every: first.telemetry_every,
        shadow_every: first.shadow_every,
        // From the first shard's start to the last one's end.
        elapsed: (ended_at - started_at).try_into().unwrap_or_default(),
        started_at,
        ended_at,
        interrupted: reads().any(|s| s.interrupted),
        provisioning: reads().map(|s| s.provisioning).max().unwrap_or_default(),
        peak_rss_kib: peaks.map(|p| p.iter().sum()),
        peak_rss_covers: format!(
            "the {count} shards' processes summed, the largest {:.1} MiB; each shard's: {}",
            largest.unwrap_or_default() as f64 / 1024.0,
            first.peak_rss_covers
        ),
    };
    Ok((context, snapshot))
}
