//! `iotcore simulate --shard K/N` and `iotcore simulate merge`: three shard
//! processes against one `iotcore emulator` run the whole fleet once, and
//! their merged summary is the fleet's; summaries that do not make one fleet
//! are refused.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

mod common;

use common::{Emulator, IOTCORE, fails, iotcore, ok, text};

const DEVICES: u64 = 10;
const SHARDS: u64 = 3;

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).expect("JSON")
}

/// The device number of a `sim-NNNNN` name.
fn number(thing: &Value) -> u64 {
    thing
        .as_str()
        .and_then(|t| t.strip_prefix("sim-"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a simulated thing: {thing}"))
}

/// Runs the three shards at once, as three machines would; their summaries.
fn run_shards(data: &Path, port: &str, out: &Path) -> Vec<PathBuf> {
    let children: Vec<_> = (1..=SHARDS)
        .map(|k| {
            let json = out.join(format!("shard-{k}.json"));
            let child = Command::new(IOTCORE)
                .args(["simulate", "--devices", &DEVICES.to_string()])
                .args(["--shard", &format!("{k}/{SHARDS}")])
                .args(["--endpoint", "127.0.0.1", "--port", port])
                .args(["--ramp", "100", "--duration", "3s"])
                .args(["--telemetry-every", "200ms", "--shadow-every", "500ms"])
                .arg("--json")
                .arg(&json)
                .env("IOTCORE_DATA_DIR", data)
                .env_remove("RUST_LOG")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run iotcore simulate");
            (json, child)
        })
        .collect();
    children
        .into_iter()
        .map(|(json, child)| {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}\n{}",
                text(&out.stdout),
                text(&out.stderr)
            );
            json
        })
        .collect()
}

#[test]
fn three_shards_run_the_fleet_once_and_merge_into_its_summary() {
    let data = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(data.path());
    let shards_dir = data.path().join("shards");
    std::fs::create_dir(&shards_dir).unwrap();
    let files = run_shards(data.path(), &emulator.port_arg(), &shards_dir);

    // Each ran its slice, with the unsharded run's names: disjoint, in order,
    // covering sim-00001 … sim-00010.
    let summaries: Vec<Value> = files.iter().map(|f| read_json(f)).collect();
    let mut next = 1;
    let mut sums = [0, 0, 0];
    for (k, summary) in (1..).zip(&summaries) {
        let shard = &summary["shard"];
        assert_eq!(
            (shard["index"].as_u64(), shard["count"].as_u64()),
            (Some(k), Some(SHARDS))
        );
        assert_eq!(shard["fleet_devices"], DEVICES);
        let (first, last) = (number(&shard["first_thing"]), number(&shard["last_thing"]));
        assert_eq!(first, next, "{summary:#}");
        assert_eq!(summary["devices"].as_u64(), Some(last - first + 1));
        assert_eq!(summary["connected"], summary["devices"], "{summary:#}");
        assert_eq!(summary["error_count"], 0, "{summary:#}");
        assert!(summary["started_at"].as_str().unwrap().ends_with('Z'));
        next = last + 1;
        for (sum, field) in sums
            .iter_mut()
            .zip(["connected", "telemetry_acked", "shadow_accepted"])
        {
            *sum += summary[field].as_u64().unwrap();
        }
    }
    assert_eq!(next, DEVICES + 1);
    // The registry holds the fleet's things once each: no shard replaced another's.
    let things = ok(data.path(), &["thing", "list"]);
    let names: Vec<&str> = things
        .lines()
        .filter_map(|l| l.split('\t').next())
        .filter(|name| name.starts_with("sim-"))
        .collect();
    let expected: Vec<String> = (1..=DEVICES).map(|n| format!("sim-{n:05}")).collect();
    assert_eq!(names, expected, "{things}");

    // The merge of the three is the fleet's summary.
    let merged_json = data.path().join("fleet.json");
    let out = iotcore(
        data.path(),
        &[
            "simulate",
            "merge",
            shards_dir.to_str().unwrap(),
            "--json",
            merged_json.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let merged = read_json(&merged_json);
    assert_eq!(merged["devices"], DEVICES);
    assert_eq!(merged["shard"], Value::Null);
    assert_eq!(merged["shards"], SHARDS);
    assert_eq!(merged["connected"], sums[0]);
    assert_eq!(merged["connected"], DEVICES);
    assert_eq!(merged["telemetry_acked"], sums[1]);
    assert_eq!(merged["shadow_accepted"], sums[2]);
    assert_eq!(merged["not_connected"], 0);
    assert_eq!(merged["error_count"], 0);
    assert_eq!(merged["latency_ms"]["connect"]["count"], DEVICES);
    let telemetry = |s: &Value, field: &str| s["latency_ms"]["telemetry"][field].as_f64().unwrap();
    let max = summaries
        .iter()
        .map(|s| telemetry(s, "max"))
        .fold(0.0, f64::max);
    assert_eq!(telemetry(&merged, "max"), max);
    // The merged histogram holds every shard's samples.
    let samples = |s: &Value| -> u64 {
        s["latency_histograms"]["telemetry"]["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b[1].as_u64().unwrap())
            .sum()
    };
    assert_eq!(samples(&merged), sums[1]);
    let table = text(&out.stdout);
    assert!(
        table.contains("connected             10/10 (0 failed)"),
        "{table}"
    );
    assert!(table.contains("shards                3, merged"), "{table}");
    assert!(table.contains("errors                none"), "{table}");

    refusals(data.path(), &files, &merged_json);
}

/// What `simulate merge` refuses, with the shards' real summaries.
fn refusals(data: &Path, files: &[PathBuf], merged: &Path) {
    let merge = |inputs: &[&Path]| {
        let mut args = vec!["simulate", "merge"];
        args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
        fails(data, &args)
    };
    let [one, two, three] = [&files[0], &files[1], &files[2]].map(PathBuf::as_path);

    let stderr = merge(&[one, two]);
    assert!(stderr.contains("shard 3/3 is missing"), "{stderr}");
    let stderr = merge(&[one, two, three, one]);
    assert!(stderr.contains("shard 1/3 is given twice"), "{stderr}");

    // Shard 1 of another fleet, 11 devices (its slice is 0..3 too).
    let mut other: Value = read_json(one);
    other["shard"]["fleet_devices"] = 11.into();
    let other_path = data.join("other-fleet.json");
    std::fs::write(&other_path, other.to_string()).unwrap();
    let stderr = merge(&[two, &other_path, three]);
    assert!(
        stderr.contains("are not shards of one fleet: --devices (11 there, 10 in the first)"),
        "{stderr}"
    );

    let not_json = data.join("notes.json");
    std::fs::write(&not_json, "shard 1 ran fine\n").unwrap();
    let stderr = merge(&[one, two, three, &not_json]);
    assert!(stderr.contains("notes.json is not JSON"), "{stderr}");

    let stderr = merge(&[one, two, merged]);
    assert!(stderr.contains("it is a merged summary"), "{stderr}");
    let unrelated = data.join("package.json");
    std::fs::write(&unrelated, r#"{"name": "x", "shard": 1}"#).unwrap();
    let stderr = merge(&[&unrelated]);
    assert!(
        stderr.contains("is not the JSON summary of a shard"),
        "{stderr}"
    );
}

#[test]
fn shards_must_be_k_of_n_and_not_outnumber_the_devices() {
    let data = tempfile::tempdir().unwrap();
    let stderr = fails(data.path(), &["simulate", "--shard", "4/3"]);
    assert!(stderr.contains("K is above N"), "{stderr}");
    let stderr = fails(data.path(), &["simulate", "--shard", "two"]);
    assert!(stderr.contains("is not a shard: give K/N"), "{stderr}");
    let stderr = fails(
        data.path(),
        &["simulate", "--devices", "2", "--shard", "2/3"],
    );
    assert!(
        stderr.contains("3 shards of 2 devices leave some without any"),
        "{stderr}"
    );
    let stderr = fails(
        data.path(),
        &["simulate", "--devices", "3", "merge", "x.json"],
    );
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}

#[test]
fn a_shard_of_a_certificate_directory_runs_its_slice_of_the_devices() {
    let data = tempfile::tempdir().unwrap();
    let certs = data.path().join("certs");
    let json = data.path().join("shard-2.json");
    let emulator = Emulator::start(data.path());
    for thing in ["meter-c", "meter-a", "meter-b"] {
        let out = certs.join(thing);
        ok(
            data.path(),
            &["thing", "create", thing, "--out", out.to_str().unwrap()],
        );
    }
    // Shard 2 of 2 of the three devices in name order: meter-b and meter-c.
    let out = iotcore(
        data.path(),
        &[
            "simulate",
            "--certs",
            certs.to_str().unwrap(),
            "--devices",
            "3",
            "--shard",
            "2/2",
            "--endpoint",
            "127.0.0.1",
            "--port",
            &emulator.port_arg(),
            "--telemetry-every",
            "200ms",
            "--duration",
            "1s",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = read_json(&json);
    assert_eq!(summary["shard"]["first_thing"], "meter-b");
    assert_eq!(summary["shard"]["last_thing"], "meter-c");
    assert_eq!(summary["devices"], 2);
    assert_eq!(summary["connected"], 2, "{summary:#}");
}
