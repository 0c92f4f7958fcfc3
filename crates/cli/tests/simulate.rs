//! `iotcore simulate`: a small fleet against the embedded emulator, a fleet
//! that cannot connect, and a fleet read from a directory of certificates
//! against an `iotcore emulator` process.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

mod common;

use common::{Emulator, IOTCORE, Lines, iotcore, text};

fn simulate(data_dir: &Path, args: &[&str]) -> Output {
    iotcore(data_dir, &[&["simulate"], args].concat())
}

fn read_json(path: &Path, out: &Output) -> Value {
    let json = std::fs::read(path).unwrap_or_else(|e| {
        panic!(
            "no JSON summary ({e})\nstdout: {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    serde_json::from_slice(&json).expect("the summary is JSON")
}

/// The JSON summary of a run that exited 0 with all `devices` connected, no
/// error, and telemetry and shadow updates acknowledged.
fn clean_run(json: &Path, out: &Output, devices: u64) -> Value {
    let summary = read_json(json, out);
    assert!(
        out.status.success(),
        "exit {:?}\n{}\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(summary["devices"], devices);
    assert_eq!(summary["connected"], devices, "{summary:#}");
    assert_eq!(summary["connect_failures"], 0);
    assert_eq!(summary["not_connected"], 0);
    assert_eq!(summary["error_count"], 0, "{summary:#}");
    assert_eq!(summary["errors"], Value::Array(vec![]));
    assert!(summary["telemetry_acked"].as_u64().unwrap() > 0);
    assert!(summary["shadow_accepted"].as_u64().unwrap() > 0);
    summary
}

fn latency(summary: &Value, operation: &str, field: &str) -> f64 {
    summary["latency_ms"][operation][field]
        .as_f64()
        .unwrap_or_else(|| panic!("no {operation} {field} in {summary:#}"))
}

#[test]
fn a_small_fleet_connects_sends_telemetry_and_shadow_updates_without_errors() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let out = simulate(
        dir.path(),
        &[
            "--devices",
            "20",
            "--ramp",
            "100",
            "--telemetry-every",
            "200ms",
            "--shadow-every",
            "500ms",
            "--duration",
            "3s",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    let summary = clean_run(&json, &out, 20);
    assert_eq!(
        summary["messages"].as_u64().unwrap(),
        summary["telemetry_acked"].as_u64().unwrap() + summary["shadow_accepted"].as_u64().unwrap()
    );
    assert!(summary["msgs_per_s"].as_f64().unwrap() > 0.0);
    for operation in ["connect", "telemetry", "shadow"] {
        let (p50, p99, max) = (
            latency(&summary, operation, "p50"),
            latency(&summary, operation, "p99"),
            latency(&summary, operation, "max"),
        );
        assert!(
            p50 > 0.0 && p50 <= p99 && p99 <= max,
            "{operation}: {summary:#}"
        );
    }
    assert_eq!(summary["latency_ms"]["connect"]["count"], 20);
    assert!(summary["peak_rss_kib"].as_u64().unwrap() > 0);
    assert!(
        summary["peak_rss_covers"]
            .as_str()
            .unwrap()
            .contains("embedded emulator")
    );
    // The table on stdout says the same.
    let table = text(&out.stdout);
    assert!(
        table.contains("connected             20/20 (0 failed)"),
        "{table}"
    );
    assert!(table.contains("errors                none"), "{table}");
}

#[test]
fn devices_that_cannot_connect_are_counted_and_make_the_run_fail() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    // A port nothing listens on: bind one, note it, close it.
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port().to_string()
    };
    let out = simulate(
        dir.path(),
        &[
            "--devices",
            "3",
            "--ramp",
            "100",
            "--duration",
            "2s",
            "--endpoint",
            "127.0.0.1",
            "--port",
            &port,
            "--json",
            json.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success(), "{}", text(&out.stdout));
    let summary = read_json(&json, &out);
    assert_eq!(summary["connected"], 0);
    assert_eq!(summary["connect_failures"], 3, "{summary:#}");
    assert_eq!(summary["not_connected"], 0);
    assert_eq!(summary["errors"][0]["operation"], "connect");
    assert_eq!(summary["errors"][0]["count"], 3);
    assert!(
        text(&out.stderr).contains("3 devices failed to connect"),
        "{}",
        text(&out.stderr)
    );
    // The things were made in the given data directory's registry.
    let list = Command::new(IOTCORE)
        .args(["thing", "list"])
        .env("IOTCORE_DATA_DIR", dir.path())
        .output()
        .unwrap();
    let things = text(&list.stdout);
    assert!(
        things.contains("sim-00001") && things.contains("sim-00003"),
        "{things}"
    );
}

#[test]
fn a_ramp_too_slow_for_the_duration_is_reported_and_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    // 2 connections per second for 1 s: at most 3 of the 10 devices start.
    let out = simulate(
        dir.path(),
        &[
            "--devices",
            "10",
            "--ramp",
            "2",
            "--duration",
            "1s",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success(), "{}", text(&out.stdout));
    let summary = read_json(&json, &out);
    let connected = summary["connected"].as_u64().unwrap();
    let not_connected = summary["not_connected"].as_u64().unwrap();
    assert!(not_connected >= 7, "{summary:#}");
    assert_eq!(connected + not_connected, 10, "{summary:#}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("warning: connecting 10 devices at 2/s takes 5.0 s"),
        "{stderr}"
    );
    assert!(stderr.contains("(raise --ramp or --duration)"), "{stderr}");
    assert!(
        text(&out.stdout).contains("not connected when the run ended"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn a_fleet_read_from_a_certificate_directory_runs_against_a_separate_emulator() {
    let data = tempfile::tempdir().unwrap();
    let certs = data.path().join("certs");
    let json = data.path().join("out.json");
    let emulator = Emulator::start(data.path());
    for thing in ["meter-c", "meter-a", "meter-b", "meter-d"] {
        let out = certs.join(thing);
        let created = iotcore(
            data.path(),
            &["thing", "create", thing, "--out", out.to_str().unwrap()],
        );
        assert!(created.status.success(), "{}", text(&created.stderr));
    }
    let out = simulate(
        data.path(),
        &[
            "--certs",
            certs.to_str().unwrap(),
            "--devices",
            "3",
            "--endpoint",
            "127.0.0.1",
            "--port",
            &emulator.port_arg(),
            "--telemetry-every",
            "200ms",
            "--shadow-every",
            "500ms",
            "--duration",
            "2s",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    clean_run(&json, &out, 3);
    // Nothing was made or deleted in the registry.
    let list = iotcore(data.path(), &["thing", "list"]);
    let things = text(&list.stdout);
    assert_eq!(things.lines().count(), 4, "{things}");
    assert!(!things.contains("sim-"), "{things}");
    // The first three in name order connected; meter-d was not used.
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("reading 3 devices' certificates from"),
        "{stderr}"
    );
    for (thing, used) in [
        ("meter-a", true),
        ("meter-b", true),
        ("meter-c", true),
        ("meter-d", false),
    ] {
        let shadow = iotcore(
            data.path(),
            &[
                "shadow",
                "get",
                "--thing",
                thing,
                "--port",
                &emulator.port_arg(),
            ],
        );
        let stderr = text(&shadow.stderr);
        assert_eq!(shadow.status.success(), used, "{thing}: {stderr}");
        assert!(used || stderr.contains("404"), "{thing}: {stderr}");
    }
}

#[test]
fn devices_spread_over_source_addresses_reach_the_emulator_from_each() {
    let data = tempfile::tempdir().unwrap();
    let json = data.path().join("out.json");
    let emulator = Emulator::start(data.path());
    // AWS's presence events carry the client's address: the emulator's say
    // where each device came from.
    let mut sub = Command::new(IOTCORE)
        .args(["sub", "-t", "$aws/events/presence/connected/+", "-C", "4"])
        .args(["-W", "30", "--port", &emulator.port_arg()])
        .env("IOTCORE_DATA_DIR", data.path())
        .env("RUST_LOG", "iotcore::pubsub=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start iotcore sub");
    let stderr = Lines::of(sub.stderr.take().expect("stderr"));
    stderr.wait_for("the subscription", |l| l.contains("subscribed"));
    let out = simulate(
        data.path(),
        &[
            "--devices",
            "4",
            "--source-addresses",
            "2",
            "--endpoint",
            "127.0.0.1",
            "--port",
            &emulator.port_arg(),
            "--telemetry-every",
            "200ms",
            "--shadow-every",
            "500ms",
            "--duration",
            "2s",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    clean_run(&json, &out, 4);
    let events = sub.wait_with_output().unwrap();
    assert!(events.status.success(), "{}", text(&events.stderr));
    let stdout = text(&events.stdout);
    let from: BTreeMap<String, String> = serde_json::Deserializer::from_str(&stdout)
        .into_iter::<Value>()
        .map(|event| {
            let event = event.expect("JSON events");
            (
                event["clientId"].as_str().unwrap().to_owned(),
                event["ipAddress"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("sim-00001", "127.0.0.1"),
        ("sim-00002", "127.0.0.2"),
        ("sim-00003", "127.0.0.1"),
        ("sim-00004", "127.0.0.2"),
    ]
    .map(|(thing, ip)| (thing.to_owned(), ip.to_owned()));
    assert_eq!(from, BTreeMap::from(expected), "{stdout}");
}

#[test]
fn source_addresses_need_a_loopback_endpoint() {
    let data = tempfile::tempdir().unwrap();
    let out = simulate(
        data.path(),
        &[
            "--devices",
            "2",
            "--source-addresses",
            "2",
            "--endpoint",
            "192.0.2.1",
        ],
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("192.0.2.1 is not one (use 127.0.0.1 or localhost)"),
        "{stderr}"
    );
}

#[test]
fn certs_needs_a_running_emulator_and_enough_devices() {
    let data = tempfile::tempdir().unwrap();
    let certs = data.path().join("certs");
    let out = simulate(
        data.path(),
        &["--certs", certs.to_str().unwrap(), "--devices", "2"],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--endpoint"),
        "{}",
        text(&out.stderr)
    );

    std::fs::create_dir_all(certs.join("lamp-1")).unwrap();
    let out = simulate(
        data.path(),
        &[
            "--certs",
            certs.to_str().unwrap(),
            "--devices",
            "2",
            "--endpoint",
            "127.0.0.1",
        ],
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("holds 1 device directories, but --devices asks for 2"),
        "{stderr}"
    );
}
