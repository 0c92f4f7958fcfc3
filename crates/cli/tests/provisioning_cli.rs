//! `iotcore template …` and `iotcore provision` as a user runs them, against
//! an emulator running in the test on the same data directory.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use iotcore_emulator::control::ListThingsRequest;
use iotcore_emulator::{Emulator, EmulatorConfig};

const IOTCORE: &str = env!("CARGO_BIN_EXE_iotcore");

const TEMPLATE: &str = r#"{
  "Parameters": {"SerialNumber": {"Type": "String"}},
  "Resources": {
    "thing": {"Type": "AWS::IoT::Thing",
              "Properties": {"ThingName": {"Fn::Join": ["-", ["sensor", {"Ref": "SerialNumber"}]]}}},
    "certificate": {"Type": "AWS::IoT::Certificate",
                    "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}}},
    "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument":
      "{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\", \"Action\": \"iot:Connect\", \"Resource\": \"arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}\"}]}"}}
  },
  "DeviceConfiguration": {"mode": "field"}
}"#;

/// Runs `iotcore` with `args` on `data_dir`, off the async runtime.
async fn iotcore(data_dir: &Path, args: Vec<String>) -> Output {
    let data_dir = data_dir.to_owned();
    tokio::task::spawn_blocking(move || {
        Command::new(IOTCORE)
            .args(&args)
            .env("IOTCORE_DATA_DIR", data_dir)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run iotcore")
    })
    .await
    .expect("the command ran")
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_a_claim_and_a_provisioned_device_from_the_command_line() {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let config = EmulatorConfig::new(data.path()).with_bind("127.0.0.1:0".parse().unwrap());
    let emulator = Emulator::start(config).await.expect("emulator");
    let port = emulator.local_addr().port().to_string();
    let template = files.path().join("template.json");
    std::fs::write(&template, TEMPLATE).unwrap();
    let template = template.display().to_string();

    let created = iotcore(
        data.path(),
        args(&["template", "create", "sensors", &template]),
    )
    .await;
    assert!(created.status.success(), "{}", text(&created.stderr));
    assert!(
        text(&created.stdout).contains("parameter:   SerialNumber (required)"),
        "{}",
        text(&created.stdout)
    );
    let broken = files.path().join("broken.json");
    std::fs::write(
        &broken,
        r#"{"Resources": {"x": {"Type": "AWS::IoT::Role"}}}"#,
    )
    .unwrap();
    let refused = iotcore(
        data.path(),
        args(&[
            "template",
            "create",
            "broken",
            &broken.display().to_string(),
        ]),
    )
    .await;
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("Resources.x.Type AWS::IoT::Role is not supported"),
        "{}",
        text(&refused.stderr)
    );

    let claim_dir = files.path().join("claim");
    let claim = iotcore(
        data.path(),
        args(&[
            "template",
            "claim",
            "sensors",
            "--out",
            &claim_dir.display().to_string(),
        ]),
    )
    .await;
    assert!(claim.status.success(), "{}", text(&claim.stderr));
    assert!(text(&claim.stdout).contains("sensors-claim-policy"));
    let claim_file = |name: &str| claim_dir.join(name).display().to_string();
    let out = files.path().join("device");
    let provision = |extra: &[&str]| {
        let mut list = args(&[
            "provision",
            "--endpoint",
            "localhost",
            "--port",
            &port,
            "--claim-cert",
            &claim_file("sensors-claim.cert.pem"),
            "--claim-key",
            &claim_file("sensors-claim.private.key"),
            "--ca",
            &claim_file("root-ca.pem"),
            "--template",
            "sensors",
            "--out",
            &out.display().to_string(),
            "--timeout",
            "20",
        ]);
        list.extend(args(extra));
        iotcore(data.path(), list)
    };

    let missing = provision(&[]).await;
    assert!(!missing.status.success());
    let stderr = text(&missing.stderr);
    assert!(stderr.contains("400 InvalidParameters"), "{stderr}");

    let done = provision(&["--param", "SerialNumber=9"]).await;
    let stdout = text(&done.stdout);
    assert!(done.status.success(), "{}", text(&done.stderr));
    assert!(stdout.contains("thing:       sensor-9"), "{stdout}");
    assert!(stdout.contains("config:      mode=field"), "{stdout}");
    let key = out.join("sensor-9.private.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(out.join("sensor-9.cert.pem").is_file());
    assert!(out.join("provisioned.json").is_file());
    let things = emulator
        .control()
        .list_things(ListThingsRequest::default())
        .unwrap()
        .things;
    assert_eq!(things.len(), 1);
    assert_eq!(things[0].thing_name, "sensor-9");
    emulator.shutdown().await;
}
