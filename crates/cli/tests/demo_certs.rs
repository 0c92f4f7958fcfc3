//! `iotcore demo --certs DIR [--endpoint HOST[:PORT]]`: the demo's steps against a
//! separately started `iotcore emulator`, as the two things whose files DIR holds,
//! and the errors for a directory that lacks one.

use std::path::Path;
use std::process::Output;

mod common;

use common::{Emulator, iotcore, text};

/// `iotcore thing create` for the demo's device and its cloud side, into `certs`.
fn create_demo_things(data: &Path, certs: &Path) {
    let certs = certs.to_str().unwrap();
    for args in [
        &["thing", "create", "demo-device", "--out", certs][..],
        &[
            "thing",
            "create",
            "demo-cloud",
            "--template",
            "application",
            "--out",
            certs,
        ],
    ] {
        let out = iotcore(data, args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }
}

/// Asserts the demo exited 0 with every step `[ ok ]`, and returns its output.
fn every_step_ok(out: &Output) -> String {
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(!stdout.contains("[FAIL]"), "{stdout}");
    for step in [
        "connect thing \"demo-device\" over mTLS",
        "connect the cloud side (\"demo-cloud\")",
        "cloud receives the telemetry",
        "device receives the desired change",
        "device receives the command",
        "close both clients",
    ] {
        assert!(
            stdout.contains(&format!("[ ok ] {step}")),
            "missing {step:?}:\n{stdout}"
        );
    }
    assert!(stdout.contains("demo finished: every step succeeded"));
    assert!(
        !stdout.contains("embedded emulator"),
        "no emulator of its own:\n{stdout}"
    );
    stdout
}

#[test]
fn demo_with_certs_runs_every_step_against_a_running_emulator_and_again_from_endpoint_txt() {
    let data = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(data.path());
    create_demo_things(data.path(), certs.path());
    let certs_arg = certs.path().to_str().unwrap();

    let endpoint = format!("127.0.0.1:{}", emulator.port);
    let first = every_step_ok(&iotcore(
        data.path(),
        &["demo", "--certs", certs_arg, "--endpoint", &endpoint],
    ));
    assert!(first.contains(&format!("on {endpoint}")), "{first}");
    assert!(
        first.contains(
            "[ ok ] cloud deletes the device's shadow left by an earlier run — there was none (404)"
        ),
        "{first}"
    );

    // What scripts/aws-provision writes: the endpoint as describe-endpoint gives it.
    std::fs::write(
        certs.path().join("endpoint.txt"),
        format!("localhost:{}\n", emulator.port),
    )
    .unwrap();
    let second = every_step_ok(&iotcore(data.path(), &["demo", "--certs", certs_arg]));
    assert!(
        second.contains(&format!("on localhost:{}", emulator.port)),
        "{second}"
    );
    // The first run's shadow is cleared, so the device starts from nothing again.
    assert!(
        second.contains(
            "[ ok ] cloud deletes the device's shadow left by an earlier run — deleted version"
        ),
        "{second}"
    );
    assert!(
        second.contains("[ ok ] device reads its shadow — no shadow yet (404)"),
        "{second}"
    );
}

#[test]
fn demo_with_certs_names_a_missing_file_and_the_command_that_writes_it() {
    let data = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    create_demo_things(data.path(), certs.path());
    let certs_arg = certs.path().to_str().unwrap();

    // No endpoint.txt and no --endpoint.
    let out = iotcore(data.path(), &["demo", "--certs", certs_arg]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{} is missing",
            certs.path().join("endpoint.txt").display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("scripts/aws-provision"), "{stderr}");
    assert!(text(&out.stdout).is_empty(), "no step ran");

    // The cloud side's key is gone.
    let key = certs.path().join("demo-cloud.private.key");
    std::fs::remove_file(&key).unwrap();
    let out = iotcore(
        data.path(),
        &["demo", "--certs", certs_arg, "--endpoint", "127.0.0.1:1"],
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{} is missing", key.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains("iotcore thing create demo-cloud --template application --out"),
        "{stderr}"
    );

    // --endpoint alone is refused: it needs the things' files.
    let out = iotcore(data.path(), &["demo", "--endpoint", "127.0.0.1:1"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--certs"),
        "{}",
        text(&out.stderr)
    );
}
