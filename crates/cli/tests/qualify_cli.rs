//! `iotcore qualify` with a device we did not write: `mosquitto_sub`, started
//! by `--run` for each case, graded, reported as JSON and JUnit XML.

mod common;

use common::{iotcore, text};

/// mosquitto_sub as the device under test, from the variables qualify sets.
const MOSQUITTO_SUB: &str = "exec mosquitto_sub -h \"$IOTCORE_QUALIFY_HOST\" \
    -p \"$IOTCORE_QUALIFY_PORT\" -i \"$IOTCORE_QUALIFY_THING\" --cafile \"$IOTCORE_QUALIFY_CA\" \
    --cert \"$IOTCORE_QUALIFY_CERT\" --key \"$IOTCORE_QUALIFY_KEY\" -t 'qualify/#' -q 1";

#[test]
fn list_names_every_case_and_what_it_checks() {
    let data = tempfile::tempdir().unwrap();
    let out = iotcore(data.path(), &["qualify", "--list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    for id in [
        "TLS_Connect (qualification)",
        "MQTT_Publish_Retry_No_Puback",
        "MQTT_No_Ack_PingResp",
        "Job_Execution",
        "Security_Device_Policies",
        "MQTT_Long_Duration (opt-in: --suite long-duration)",
    ] {
        assert!(listed.contains(id), "{listed}");
    }
    // The long-duration settings are checked as they are read.
    let out = iotcore(
        data.path(),
        &[
            "qualify",
            "--suite",
            "long-duration",
            "--scenario",
            "NAP_TIME",
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("\"NAP_TIME\" is not a long-duration scenario"),
        "{}",
        text(&out.stderr)
    );
    let out = iotcore(data.path(), &["qualify", "--backoff-attempts", "11"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("5..=10"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn mosquitto_sub_is_graded_and_the_report_written() {
    let data = tempfile::tempdir().unwrap();
    let report = data.path().join("report");
    let run = |cases: &[&str], timeout: &str| {
        let mut args = vec!["qualify", "--port", "0", "--case-timeout", timeout];
        for case in cases {
            args.extend(["--case", case]);
        }
        args.extend(["--run", MOSQUITTO_SUB, "--report", report.to_str().unwrap()]);
        iotcore(data.path(), &args)
    };

    let passed = run(
        &[
            "TLS_Connect",
            "MQTT_Connect",
            "MQTT_Subscribe",
            "MQTT_Client_Puback_Qos1",
        ],
        "20s",
    );
    let stdout = text(&passed.stdout);
    assert!(
        passed.status.success(),
        "{stdout}\n{}",
        text(&passed.stderr)
    );
    assert!(
        stdout.contains("4 passed, 0 passed with warnings, 0 failed"),
        "{stdout}"
    );
    let junit = std::fs::read_to_string(report.join("junit.xml")).unwrap();
    assert!(junit.contains("tests=\"4\" failures=\"0\""), "{junit}");
    assert!(
        junit.contains("name=\"MQTT_Client_Puback_Qos1\""),
        "{junit}"
    );

    // mosquitto_sub does not subscribe again when SUBACK does not come.
    let failed = run(&["MQTT_Subscribe_Retry_No_Suback"], "2s");
    assert!(!failed.status.success());
    assert!(
        text(&failed.stderr).contains("1 case(s) failed"),
        "{}",
        text(&failed.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(json["cases"][0]["id"], "MQTT_Subscribe_Retry_No_Suback");
    assert_eq!(json["cases"][0]["verdict"], "FAIL");
}

#[test]
fn an_unknown_case_is_refused_with_the_way_to_list_them() {
    let data = tempfile::tempdir().unwrap();
    let out = iotcore(data.path(), &["qualify", "--case", "MQTT_Nothing"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("iotcore qualify --list"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_device_that_ignores_sigterm_is_killed_after_its_case() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let data = tempfile::tempdir().unwrap();
    let mut qualify = Command::new(common::IOTCORE)
        .args([
            "qualify",
            "--port",
            "0",
            "--case",
            "MQTT_Connect",
            "--case-timeout",
            "1s",
        ])
        .args(["--run", "trap '' TERM; sleep 600"])
        .env("IOTCORE_DATA_DIR", data.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // A safety net against a hung test, never a performance threshold.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = qualify.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = qualify.kill();
            panic!("qualify still waits for a device that ignores SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // The device never connected: MQTT_Connect failed, and the run ended.
    assert!(!status.success());
}

/// A shell device that runs its job with mosquitto's tools: waits for
/// notify-next, then reports the job named there SUCCEEDED.
const MOSQUITTO_JOB: &str = r#"set -e
tls="-h $IOTCORE_QUALIFY_HOST -p $IOTCORE_QUALIFY_PORT --cafile $IOTCORE_QUALIFY_CA --cert $IOTCORE_QUALIFY_CERT --key $IOTCORE_QUALIFY_KEY"
jobs="\$aws/things/$IOTCORE_QUALIFY_THING/jobs"
next=$(mosquitto_sub $tls -i "$IOTCORE_QUALIFY_THING" -t "$jobs/notify-next" -C 1)
job=$(printf '%s' "$next" | sed 's/.*"jobId":"\([^"]*\)".*/\1/')
mosquitto_pub $tls -i "$IOTCORE_QUALIFY_THING" -q 1 -t "$jobs/$job/update" -m '{"status":"SUCCEEDED"}'
sleep 5"#;

#[test]
fn a_shell_device_runs_the_job_of_job_execution() {
    let data = tempfile::tempdir().unwrap();
    let document = data.path().join("job.json");
    std::fs::write(&document, r#"{"operation":"reboot"}"#).unwrap();
    let out = iotcore(
        data.path(),
        &[
            "qualify",
            "--port",
            "0",
            "--case",
            "Job_Execution",
            "--case-timeout",
            "20s",
            "--job-document",
            document.to_str().unwrap(),
            "--run",
            MOSQUITTO_JOB,
        ],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("PASS                 Job_Execution"),
        "{stdout}"
    );
    assert!(stdout.contains("SUCCEEDED"), "{stdout}");

    // A job document that is not a JSON object is refused before anything runs.
    std::fs::write(&document, "[1, 2]").unwrap();
    let out = iotcore(
        data.path(),
        &[
            "qualify",
            "--case",
            "Job_Execution",
            "--job-document",
            document.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("is not a JSON object: it is valid JSON, but not an object"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn security_device_policies_checks_the_policies_given_or_is_skipped() {
    let data = tempfile::tempdir().unwrap();
    let qualify = |extra: &[&str]| {
        let mut args = vec![
            "qualify",
            "--port",
            "0",
            "--case",
            "Security_Device_Policies",
        ];
        args.extend(extra);
        iotcore(data.path(), &args)
    };
    // No policy: skipped, which fails nothing.
    let out = qualify(&[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("SKIPPED              Security_Device_Policies"),
        "{stdout}"
    );
    assert!(stdout.ends_with("0 failed, 1 skipped\n"), "{stdout}");

    // A policy that allows everything fails, and says where.
    let open = data.path().join("open.json");
    std::fs::write(
        &open,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}"#,
    )
    .unwrap();
    let out = qualify(&["--policy", open.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(!out.status.success());
    assert!(
        stdout.contains(r#"open: Statement[0] Action "iot:*""#),
        "{stdout}"
    );

    // An invalid policy is refused before anything runs.
    std::fs::write(&open, r#"{"Statement":[{"Effect":"Allow"}]}"#).unwrap();
    let out = qualify(&["--policy", open.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("is not a valid AWS IoT policy"),
        "{}",
        text(&out.stderr)
    );
}
