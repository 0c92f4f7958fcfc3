//! `iotcore shadow get|update|delete|watch` against an `iotcore emulator` process.

use std::io::Write;
use std::process::{ChildStderr, Command, Output, Stdio};

use serde_json::Value;

mod common;

use common::{Emulator, IOTCORE, Lines, iotcore, text};

/// A successful run's stdout as JSON.
fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", text(&out.stdout)))
}

/// A data directory with a running emulator and a registered thing.
fn setup(thing: &str) -> (tempfile::TempDir, Emulator) {
    let data = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(data.path());
    let out = data.path().join("devices");
    let created = iotcore(
        data.path(),
        &["thing", "create", thing, "--out", out.to_str().unwrap()],
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    (data, emulator)
}

#[test]
fn get_update_and_delete_from_the_command_line() {
    let (data, emulator) = setup("cli-lamp");
    let dir = data.path();
    let base = ["--thing", "cli-lamp", "--port", &emulator.port_arg()];
    let run = |command: &str, extra: &[&str]| {
        let mut args = vec!["shadow", command];
        args.extend(base);
        args.extend(extra);
        iotcore(dir, &args)
    };

    let missing = run("get", &[]);
    assert!(!missing.status.success());
    let stderr = text(&missing.stderr);
    assert!(
        stderr.contains("404 \"No shadow exists with name: 'cli-lamp'\""),
        "{stderr}"
    );
    assert!(
        dir.join("cli/iotcore-cli.cert.pem").is_file(),
        "the CLI's identity is made on first use"
    );

    let accepted = json_of(&run(
        "update",
        &["--reported", r#"{"on":false,"fw":"1.0"}"#],
    ));
    assert_eq!(accepted["version"], 1);
    assert_eq!(accepted["state"]["reported"]["fw"], "1.0");
    assert!(accepted.get("clientToken").is_none());

    let accepted = json_of(&run(
        "update",
        &["--desired", r#"{"on":true}"#, "--version", "1"],
    ));
    assert_eq!(accepted["version"], 2);
    let conflict = run(
        "update",
        &["--desired", r#"{"on":false}"#, "--version", "1"],
    );
    assert!(!conflict.status.success());
    assert!(
        text(&conflict.stderr).contains("409 \"Version conflict\""),
        "{}",
        text(&conflict.stderr)
    );

    let document = json_of(&run("get", &[]));
    assert_eq!(document["version"], 2);
    assert_eq!(document["state"]["delta"], serde_json::json!({"on": true}));

    let file = dir.join("state.json");
    std::fs::write(&file, r#"{"state":{"reported":{"on":true}}}"#).unwrap();
    let accepted = json_of(&run("update", &["--state-file", file.to_str().unwrap()]));
    assert_eq!(accepted["version"], 3);

    let named = json_of(&run(
        "update",
        &["--name", "config", "--reported", r#"{"x":1}"#],
    ));
    assert_eq!(named["version"], 1);

    let deleted = json_of(&run("delete", &[]));
    assert_eq!(deleted["version"], 3);
    assert!(!run("get", &[]).status.success());
    assert_eq!(json_of(&run("get", &["--name", "config"]))["version"], 1);
}

#[test]
fn invalid_updates_are_refused_before_connecting() {
    let data = tempfile::tempdir().unwrap();
    let out = iotcore(
        data.path(),
        &[
            "shadow",
            "update",
            "--thing",
            "t",
            "--desired",
            "[1]",
            "--port",
            "1",
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("Desired node must be an object (code 400)"),
        "{}",
        text(&out.stderr)
    );
    let out = iotcore(
        data.path(),
        &["shadow", "update", "--thing", "t", "--port", "1"],
    );
    assert!(
        text(&out.stderr).contains("nothing to update"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn without_an_emulator_the_errors_say_what_to_do() {
    let data = tempfile::tempdir().unwrap();
    let out = iotcore(
        data.path(),
        &["shadow", "get", "--thing", "t", "--port", "1"],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no identity to connect with: pass --cert and --key"),
        "{}",
        text(&out.stderr)
    );
    // With the emulator's data but no emulator listening.
    let emulator = Emulator::start(data.path());
    let port = emulator.port_arg();
    drop(emulator);
    let out = iotcore(
        data.path(),
        &["shadow", "get", "--thing", "t", "--port", &port],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(&format!(
            "cannot connect to localhost:{port} (is `iotcore emulator` running there?)"
        )),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn watch_prints_deltas_and_documents_as_json_lines() {
    let (data, emulator) = setup("cli-watch");
    let port = &emulator.port_arg();
    let mut watch = Command::new(IOTCORE)
        .args(["shadow", "watch", "--thing", "cli-watch", "--port", port])
        .env("IOTCORE_DATA_DIR", data.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start watch");
    let stderr: ChildStderr = watch.stderr.take().expect("stderr");
    let stdout = Lines::of(watch.stdout.take().expect("stdout"));
    // Kept open while the watch runs, so that its stderr never breaks.
    let stderr = Lines::of(stderr);
    stderr.wait_for("watching", |l| l.starts_with("watching "));

    // A second CLI run at the same time: its own client id, no takeover.
    let mut update = Command::new(IOTCORE)
        .args(["shadow", "update", "--thing", "cli-watch", "--port", port])
        .args(["--state-file", "-"])
        .env("IOTCORE_DATA_DIR", data.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start update");
    update
        .stdin
        .take()
        .expect("stdin")
        .write_all(br#"{"desired":{"led":"on"}}"#)
        .unwrap();
    let updated = update.wait_with_output().unwrap();
    assert!(updated.status.success(), "{}", text(&updated.stderr));

    // The two events may come in either order.
    let mut events = std::collections::HashMap::new();
    while events.len() < 2 {
        let line = stdout.wait_for("a delta and a documents event", |l| l.starts_with('{'));
        let event: Value = serde_json::from_str(&line).unwrap();
        let kind = event["event"].as_str().unwrap_or_default().to_owned();
        events.insert(kind, event);
    }
    let delta = &events["delta"];
    assert_eq!(delta["state"], serde_json::json!({"led": "on"}));
    assert_eq!(delta["version"], 1);
    assert_eq!(events["documents"]["current"]["version"], 1);

    let interrupted = Command::new("kill")
        .args(["-INT", &watch.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = watch.wait().unwrap();
    assert!(status.success(), "watch ends cleanly on Ctrl-C: {status}");
}
