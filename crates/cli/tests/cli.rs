//! The `iotcore` binary as a user runs it: the demo, `thing create`, and the emulator
//! process (its start-up errors, Ctrl-C, and a `kill -9` that loses nothing).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

mod common;

use common::{Emulator, iotcore, tls_args};

#[test]
fn demo_runs_every_step_and_exits_zero() {
    let home = tempfile::tempdir().unwrap();
    let out = iotcore(home.path(), &["demo"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains("[FAIL]"), "{stdout}");
    for step in [
        "device receives the command",
        "cloud receives the telemetry",
        "device's job runner takes the job and installs it",
        "the job execution is SUCCEEDED",
    ] {
        assert!(
            stdout.contains(&format!("[ ok ] {step}")),
            "missing {step:?}:\n{stdout}"
        );
    }
}

#[test]
fn thing_create_writes_device_files_with_an_owner_only_private_key() {
    let data = tempfile::tempdir().unwrap();
    let out_dir = data.path().join("dev1");
    let out = iotcore(
        data.path(),
        &[
            "thing",
            "create",
            "dev1",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = |f: &str| {
        std::fs::metadata(out_dir.join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("dev1.private.key"), 0o600);
    assert_eq!(mode("dev1.cert.pem"), 0o644);
    assert_eq!(mode("root-ca.pem"), 0o644);

    let list = iotcore(data.path(), &["thing", "list"]);
    assert!(String::from_utf8_lossy(&list.stdout).starts_with("dev1\t"));

    let again = iotcore(
        data.path(),
        &[
            "thing",
            "create",
            "dev1",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    assert!(
        !again.status.success(),
        "a second thing with the same name was created"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("dev1"));
}

#[test]
fn thing_create_refuses_an_invalid_name_and_an_unknown_key_type() {
    let data = tempfile::tempdir().unwrap();
    let bad_name = iotcore(data.path(), &["thing", "create", "no spaces"]);
    assert!(!bad_name.status.success());
    let bad_key = iotcore(
        data.path(),
        &["thing", "create", "dev1", "--key-type", "dsa"],
    );
    assert!(!bad_key.status.success());
    assert!(String::from_utf8_lossy(&bad_key.stderr).contains("unknown key type"));
}

#[test]
fn emulator_reports_a_port_that_is_in_use() {
    let data = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = iotcore(data.path(), &["emulator", "--port", &port]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already in use"), "{stderr}");
}

#[test]
fn emulator_takes_quota_overrides_and_refuses_bad_ones_saying_why() {
    let data = tempfile::tempdir().unwrap();
    for (arg, says) in [
        ("publishes=1", "no quota is named 'publishes'"),
        ("publish-per-second=0", "use publish-per-second=off"),
        (
            "inbound-in-flight=70000",
            "inbound-in-flight is at most 65535",
        ),
        ("publish-per-second", "is not NAME=VALUE"),
    ] {
        let out = iotcore(data.path(), &["emulator", "--port", "0", "--quota", arg]);
        assert!(!out.status.success(), "{arg}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{arg}: {stderr}");
    }
    let mut emulator = Emulator::start_with(
        data.path(),
        &[
            "--quotas",
            "off",
            "--quota",
            "connect-per-second=2",
            "--quota",
            "bytes-per-second=off",
        ],
    );
    emulator.signal("-INT");
    assert!(emulator.wait().success());
}

#[test]
fn emulator_reports_an_unusable_data_directory() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let out = iotcore(&file.path().join("data"), &["emulator", "--port", "0"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not writable"), "{stderr}");
}

#[test]
fn emulator_stops_cleanly_on_ctrl_c_and_sigterm() {
    let data = tempfile::tempdir().unwrap();
    for signal in ["-INT", "-TERM"] {
        let mut emulator = Emulator::start(data.path());
        emulator.signal(signal);
        let status = emulator.wait();
        assert!(status.success(), "{signal}: {status}");
    }
}

#[test]
fn things_and_acknowledged_retained_messages_survive_kill_9() {
    let data = tempfile::tempdir().unwrap();
    let files = data.path().join("files");
    for (thing, template) in [("dev1", "thing"), ("app", "application")] {
        let out = iotcore(
            data.path(),
            &[
                "thing",
                "create",
                thing,
                "--template",
                template,
                "--out",
                files.to_str().unwrap(),
            ],
        );
        assert!(out.status.success());
    }
    let emulator = Emulator::start(data.path());
    let published = Command::new("mosquitto_pub")
        .args(tls_args(&files, "app", emulator.port))
        .args(["-t", "cmd/dev1/config", "-m", "v42", "-q", "1", "-r"])
        .output()
        .expect("mosquitto_pub (run scripts/setup-peers)");
    assert!(
        published.status.success(),
        "{}",
        String::from_utf8_lossy(&published.stderr)
    );
    emulator.signal("-KILL");
    drop(emulator);

    let emulator = Emulator::start(data.path());
    let received = Command::new("mosquitto_sub")
        .args(tls_args(&files, "dev1", emulator.port))
        .args(["-t", "cmd/dev1/config", "-q", "1", "-C", "1", "-W", "10"])
        .output()
        .expect("mosquitto_sub");
    assert!(
        received.status.success(),
        "{}",
        String::from_utf8_lossy(&received.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&received.stdout).trim(), "v42");
}

/// Runs `iotcore` with `args` and returns its stdout, failing the test on a non-zero exit.
fn iotcore_ok(data_dir: &Path, args: &[&str]) -> String {
    let out = iotcore(data_dir, args);
    assert!(
        out.status.success(),
        "iotcore {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The certificate id `thing create` printed.
fn certificate_id(create_output: &str) -> String {
    create_output
        .lines()
        .find_map(|l| l.strip_prefix("certificate: "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("certificate line")
        .to_owned()
}

#[test]
fn thing_create_prints_the_things_own_policy_confined_to_its_topics() {
    let data = tempfile::tempdir().unwrap();
    let out_dir = data.path().join("files");
    let out = out_dir.to_str().unwrap();
    let created = iotcore_ok(data.path(), &["thing", "create", "dev1", "--out", out]);
    assert!(
        created.contains("policy:      dev1-policy (new, from template \"thing\""),
        "{created}"
    );
    assert!(
        created.contains("topic/dt/${iot:Connection.Thing.ThingName}/*"),
        "{created}"
    );
    assert!(
        !created.contains("\"Resource\": \"*\""),
        "not allow-all:\n{created}"
    );
    let shown = iotcore_ok(data.path(), &["policy", "show", "dev1-policy"]);
    assert!(shown.contains("default version: 1"), "{shown}");
    assert!(shown.contains(&certificate_id(&created)), "{shown}");

    let app = iotcore_ok(
        data.path(),
        &[
            "thing",
            "create",
            "app",
            "--template",
            "application",
            "--out",
            out,
        ],
    );
    assert!(app.contains("from template \"application\""), "{app}");
    let listed = iotcore_ok(data.path(), &["cert", "list"]);
    assert!(listed.contains("\tACTIVE\tdev1\tdev1-policy"), "{listed}");

    let deleted = iotcore_ok(data.path(), &["thing", "delete", "dev1"]);
    assert!(deleted.contains("deleted policy dev1-policy"), "{deleted}");
    let listed = iotcore_ok(data.path(), &["thing", "list"]);
    assert!(!listed.contains("dev1"), "{listed}");
}

#[test]
fn a_malformed_policy_is_refused_with_the_element_at_fault() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("bad.json");
    std::fs::write(
        &file,
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Publish",
            "Resource": "topic/dt/x"}]}"#,
    )
    .unwrap();
    let out = iotcore(
        data.path(),
        &["policy", "create", "bad", file.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Statement[0].Resource[0]: \"topic/dt/x\" is not a resource"),
        "{stderr}"
    );
    let listed = iotcore_ok(data.path(), &["policy", "list"]);
    assert!(listed.is_empty(), "{listed}");
}

/// `iotcore policy explain ARGS…`: its exit status and what it printed.
fn explain(data_dir: &Path, args: &[&str]) -> (i32, String) {
    let mut all = vec!["policy", "explain"];
    all.extend(args);
    let out = iotcore(data_dir, &all);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let status = out
        .status
        .code()
        .unwrap_or_else(|| panic!("killed: {out:?}"));
    (status, stdout)
}

/// `policy explain`'s exit status for DENY (ALLOW 0, an error 1).
const DENIED: i32 = 3;

/// Creates the thing `name` with its certificate (files under `files/` of
/// `data_dir`); its certificate id.
fn thing_with_certificate(data_dir: &Path, name: &str) -> String {
    let out = data_dir.join("files");
    let created = iotcore_ok(
        data_dir,
        &["thing", "create", name, "--out", out.to_str().unwrap()],
    );
    certificate_id(&created)
}

/// Writes `document` to `NAME.json` in `data_dir` and creates the policy
/// `name` from it with `policy create`.
fn create_policy(data_dir: &Path, name: &str, document: &str) {
    let file = data_dir.join(format!("{name}.json"));
    std::fs::write(&file, document).unwrap();
    iotcore_ok(
        data_dir,
        &["policy", "create", name, file.to_str().unwrap()],
    );
}

#[test]
fn policy_explain_names_the_deciding_statement_offline() {
    let data = tempfile::tempdir().unwrap();
    let id = thing_with_certificate(data.path(), "dev1");
    let ask = |action: &str, resource: &str| {
        explain(
            data.path(),
            &[
                "--cert",
                &id[..10],
                "--action",
                action,
                "--resource",
                resource,
            ],
        )
    };
    let (status, allowed) = ask("iot:Publish", "dt/dev1/temp");
    assert_eq!(status, 0, "{allowed}");
    assert!(allowed.starts_with("ALLOW\n"), "{allowed}");
    assert!(
        allowed.contains("allowed by policy \"dev1-policy\" version 1, Statement[1] (Sid \"PublishAndReceiveOnItsTopics\")"),
        "{allowed}"
    );
    let (status, denied) = ask("iot:Subscribe", "$aws/things/dev2/shadow/#");
    assert_eq!(status, DENIED, "{denied}");
    assert!(denied.starts_with("DENY\n"), "{denied}");
    assert!(denied.contains("no statement allowed it"), "{denied}");

    create_policy(
        data.path(),
        "no-temp",
        r#"{"Version": "2012-10-17", "Statement": [{"Sid": "NoTemp", "Effect": "Deny",
            "Action": "iot:Publish", "Resource": "arn:aws:iot:*:*:topic/dt/*/temp"}]}"#,
    );
    iotcore_ok(data.path(), &["policy", "attach", "no-temp", "--cert", &id]);
    let (status, denied) = ask("iot:Publish", "dt/dev1/temp");
    assert_eq!(status, DENIED, "{denied}");
    assert!(
        denied.contains("denied by policy \"no-temp\" version 1, Statement[0] (Sid \"NoTemp\")"),
        "{denied}"
    );
    let (status, stranger) = explain(
        data.path(),
        &[
            "--cert",
            &id,
            "--action",
            "iot:Connect",
            "--resource",
            "stranger",
            "--client-id",
            "stranger",
        ],
    );
    assert_eq!(status, DENIED, "{stranger}");
    assert!(stranger.starts_with("DENY\n"), "{stranger}");
    assert!(
        stranger.contains(
            "${iot:Connection.Thing.ThingName} (client id \"stranger\" is not the name of a thing"
        ),
        "{stranger}"
    );
    let (status, _) = explain(
        data.path(),
        &[
            "--cert",
            "0000000000",
            "--action",
            "iot:Connect",
            "--resource",
            "x",
        ],
    );
    assert_eq!(status, 1, "an unknown certificate is an error, not a DENY");
}

#[test]
fn policy_explain_answers_for_a_connect_with_its_connect_attributes() {
    let data = tempfile::tempdir().unwrap();
    let id = thing_with_certificate(data.path(), "dev1");
    create_policy(
        data.path(),
        "no-persistent",
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Connect",
            "Resource": "*", "Condition": {"ForAllValues:StringNotEquals":
            {"iot:ConnectAttributes": ["PersistentConnect"]}}}]}"#,
    );
    iotcore_ok(
        data.path(),
        &["policy", "detach", "dev1-policy", "--cert", &id],
    );
    iotcore_ok(
        data.path(),
        &["policy", "attach", "no-persistent", "--cert", &id],
    );
    let ask = |flags: &[&str]| {
        let mut args = vec!["--cert", id.as_str(), "--resource", "dev1"];
        args.extend(flags);
        explain(data.path(), &args)
    };

    let (status, clean) = ask(&["--action", "iot:Connect"]);
    assert_eq!(status, 0, "{clean}");
    assert!(clean.starts_with("ALLOW\n"), "{clean}");
    assert!(
        clean.contains("with no iot:ConnectAttributes allowed by"),
        "{clean}"
    );
    let (_, with_will) = ask(&["--action", "iot:Connect", "--will"]);
    assert!(with_will.starts_with("ALLOW\n"), "{with_will}");
    assert!(
        with_will.contains("iot:ConnectAttributes: [LastWill]"),
        "{with_will}"
    );
    let (status, persistent) = ask(&["--action", "iot:Connect", "--persistent", "--will"]);
    assert_eq!(status, DENIED, "{persistent}");
    assert!(persistent.starts_with("DENY\n"), "{persistent}");
    assert!(
        persistent.contains(
            "with iot:ConnectAttributes [PersistentConnect, LastWill] denied: no statement \
             allowed it"
        ),
        "{persistent}"
    );
    assert!(
        persistent.contains(
            "policy \"no-persistent\" version 1, Statement[0]: its condition on \
             iot:ConnectAttributes does not hold for [PersistentConnect, LastWill]"
        ),
        "{persistent}"
    );

    let misused = iotcore(
        data.path(),
        &[
            "policy",
            "explain",
            "--cert",
            &id,
            "--resource",
            "dev1",
            "--action",
            "iot:Publish",
            "--persistent",
        ],
    );
    assert_eq!(misused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&misused.stderr);
    assert!(
        stderr.contains("use them with --action iot:Connect"),
        "{stderr}"
    );
}

#[tokio::test]
async fn cert_revoke_from_the_cli_disconnects_a_device_of_a_running_emulator_for_good() {
    use std::time::Duration;

    use iotcore::{Client, ConnectionState, DisconnectReason, ReconnectPolicy};
    use tokio_stream::StreamExt;

    let data = tempfile::tempdir().unwrap();
    let files = data.path().join("files");
    let created = iotcore_ok(
        data.path(),
        &["thing", "create", "dev1", "--out", files.to_str().unwrap()],
    );
    let emulator = Emulator::start(data.path());
    let device = Client::builder("dev1")
        .endpoint("127.0.0.1")
        .port(emulator.port)
        .amazon_root_cas(false)
        .root_ca_pem_file(files.join("root-ca.pem"))
        .unwrap()
        .client_cert_pem_files(files.join("dev1.cert.pem"), files.join("dev1.private.key"))
        .unwrap()
        .reconnect_policy(ReconnectPolicy {
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
            reset_after: Duration::from_secs(30),
            seed: Some(1),
        })
        .connect()
        .await
        .expect("the device connects");
    let mut events = device.status_events();

    let id = certificate_id(&created);
    let revoked = iotcore_ok(data.path(), &["cert", "revoke", &id[..8]]);
    assert!(revoked.contains("is REVOKED"), "{revoked}");

    // Disconnected, then each reconnect attempt is refused during the handshake.
    let patience = Duration::from_secs(30);
    let mut reasons = Vec::new();
    while reasons.len() < 4 {
        let event = tokio::time::timeout(patience, events.next())
            .await
            .expect("a status event")
            .expect("status stream");
        match event {
            ConnectionState::Connected { .. } => {
                panic!("a revoked certificate connected again after {reasons:?}")
            }
            ConnectionState::Disconnected { reason } => reasons.push(reason),
            _ => {}
        }
    }
    // Over TLS 1.3 the refusal alert comes after the client's handshake is done:
    // the SDK sees the connection closed before CONNACK.
    assert!(
        reasons[1..].iter().all(|r| matches!(
            r,
            DisconnectReason::ClientCertificateRejected { .. }
                | DisconnectReason::ClosedBeforeConnAck { .. }
        )),
        "{reasons:?}"
    );
    device.close().await;
}
