//! `iotcore bench` as a user runs it: a quick run of every part writes the
//! JSON, Markdown and SVG files with every contender measured, a missing Python
//! peer is reported as not measured, and a bad part name is refused.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{IOTCORE, text};
use serde_json::Value;

fn bench(out: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(IOTCORE);
    command
        .args(["bench", "--quick", "--no-update", "--out"])
        .arg(out)
        .args(args)
        .env_remove("RUST_LOG");
    command
}

fn run(mut command: Command) -> Output {
    command.output().expect("run iotcore bench")
}

/// The one JSON file a run wrote into `dir`.
fn results(dir: &Path, out: &Output) -> Value {
    let json = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap_or_else(|| {
            panic!(
                "no JSON in {}\nstdout: {}\nstderr: {}",
                dir.display(),
                text(&out.stdout),
                text(&out.stderr)
            )
        });
    serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap()
}

fn runs(measurement: &Value) -> usize {
    measurement["runs"].as_array().map_or(0, Vec::len)
}

#[test]
fn a_quick_run_measures_every_part_against_its_peers_and_writes_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(bench(dir.path(), &[]));
    let report = results(dir.path(), &out);
    assert!(
        out.status.success(),
        "exit {:?}\n{}\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(report["quick"], true);
    assert!(report.get("failures").is_none(), "{report:#}");
    let figures = report["figures"].as_array().unwrap();
    for group in [
        "client-throughput",
        "broker-throughput",
        "latency",
        "connect-cost",
        "footprint",
    ] {
        assert!(
            figures.iter().any(|f| f["group"] == group),
            "no {group} figure in {report:#}"
        );
    }
    for figure in figures {
        assert_eq!(runs(&figure["subject"]), 1, "{figure:#}");
        for peer in figure["peers"].as_array().unwrap() {
            // rumqttd is installed only for benchmarks (scripts/setup-peers --bench): when it
            // is absent its figures say so and how to install it; when present, it is measured.
            let absent_rumqttd = peer["who"]
                .as_str()
                .is_some_and(|who| who.contains("rumqttd"))
                && peer["skipped"].as_str().is_some_and(|why| {
                    why.contains("rumqttd is not installed")
                        && why.contains("scripts/setup-peers --bench")
                });
            assert!(
                absent_rumqttd || (peer.get("skipped").is_none() && runs(peer) == 1),
                "a peer was not measured: {figure:#}"
            );
        }
    }
    let peers = figures
        .iter()
        .flat_map(|f| f["peers"].as_array().unwrap())
        .map(|p| p["who"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("; ");
    for peer in ["rumqttc", "awsiotsdk", "paho-mqtt", "Mosquitto"] {
        assert!(peers.contains(peer), "{peer} missing from {peers}");
    }
    let stem = report["environment"]["date"]
        .as_str()
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned()
        + "-quick";
    let markdown = std::fs::read_to_string(dir.path().join(format!("{stem}.md"))).unwrap();
    assert!(markdown.contains("### Broker throughput"), "{markdown}");
    let svg = std::fs::read_to_string(dir.path().join(format!("{stem}.svg"))).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("Mosquitto"),
        "{svg}"
    );
}

#[test]
fn missing_python_peers_are_reported_as_not_measured() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = bench(dir.path(), &["--only", "client-throughput"]);
    command.env("IOTCORE_PYTHON", dir.path().join("no-such-python"));
    let out = run(command);
    let report = results(dir.path(), &out);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let figure = &report["figures"][0];
    assert!(runs(&figure["subject"]) == 1, "{figure:#}");
    let skipped: Vec<&Value> = figure["peers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p.get("skipped").is_some())
        .collect();
    assert_eq!(skipped.len(), 2, "{figure:#}");
    for peer in skipped {
        assert!(
            peer["skipped"]
                .as_str()
                .unwrap()
                .contains("scripts/setup-peers"),
            "{peer:#}"
        );
    }
}

#[test]
fn an_unknown_part_is_refused_with_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(bench(dir.path(), &["--only", "speed"]));
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("unknown part \"speed\"") && stderr.contains("connect-cost"),
        "{stderr}"
    );
}
