//! `iotcore pub` and `iotcore sub` against an `iotcore emulator` process, with
//! Mosquitto's own clients as the peers on the other side.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

mod common;

use common::{Emulator, IOTCORE, Lines, iotcore, text, tls_args};

/// A data directory with a running emulator and things made with `thing create`.
struct Setup {
    data: tempfile::TempDir,
    emulator: Emulator,
}

impl Setup {
    /// `things`: (name, template). AWS's 1 CONNECT/s per client id is lifted:
    /// the refusal tests connect as one thing again and again.
    fn new(things: &[(&str, &str)]) -> Setup {
        let data = tempfile::tempdir().unwrap();
        let emulator = Emulator::start_with(
            data.path(),
            &["--quota", "connect-per-second=off", "--no-api"],
        );
        for (thing, template) in things {
            let created = iotcore(
                data.path(),
                &[
                    "thing",
                    "create",
                    thing,
                    "--template",
                    template,
                    "--out",
                    files(data.path()).to_str().unwrap(),
                ],
            );
            assert!(created.status.success(), "{}", text(&created.stderr));
        }
        Setup { data, emulator }
    }

    fn dir(&self) -> &Path {
        self.data.path()
    }

    /// `iotcore ARGS --port PORT` to completion.
    fn run(&self, args: &[&str]) -> Output {
        let mut all = args.to_vec();
        let port = self.emulator.port_arg();
        all.extend(["--port", &port]);
        iotcore(self.dir(), &all)
    }

    /// `iotcore ARGS --port PORT` in the background, stdout piped; its stderr
    /// lines (with the `subscribed` log line) returned beside it.
    fn spawn(&self, args: &[&str]) -> (Child, Lines) {
        let mut child = Command::new(IOTCORE)
            .args(args)
            .args(["--port", &self.emulator.port_arg()])
            .env("IOTCORE_DATA_DIR", self.dir())
            .env("RUST_LOG", "iotcore::pubsub=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start iotcore");
        let stderr = Lines::of(child.stderr.take().expect("stderr"));
        (child, stderr)
    }

    /// mosquitto_pub or mosquitto_sub as thing `name`.
    fn mosquitto(&self, program: &str, name: &str) -> Command {
        let mut command = Command::new(program);
        command.args(tls_args(&files(self.dir()), name, self.emulator.port));
        command
    }
}

/// `-W` for a `sub` that should end by its count: a hung test fails instead
/// of waiting forever.
const HANG_GUARD: &str = "30";

fn files(data: &Path) -> PathBuf {
    data.join("files")
}

/// `iotcore sub … -v -C N` waited for: its stdout.
fn sub_output(child: Child) -> String {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "sub exited with {}", out.status);
    text(&out.stdout)
}

#[test]
fn sub_prints_what_pub_and_mosquitto_pub_publish_json_pretty_printed() {
    let setup = Setup::new(&[("app", "application")]);
    let (sub, stderr) = setup.spawn(&[
        "sub", "-t", "dt/#", "-v", "-q", "1", "-C", "3", "-W", HANG_GUARD,
    ]);
    stderr.wait_for("the subscription", |l| l.contains("subscribed"));

    let out = setup.run(&[
        "pub",
        "-t",
        "dt/a",
        "-m",
        r#"{"z":1,"a":[true]}"#,
        "-q",
        "1",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut lines = Command::new(IOTCORE)
        .args(["pub", "-t", "dt/b", "-l", "-q", "1"])
        .args(["--port", &setup.emulator.port_arg()])
        .env("IOTCORE_DATA_DIR", setup.dir())
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    lines
        .stdin
        .take()
        .unwrap()
        .write_all(b"line one\n")
        .unwrap();
    let out = lines.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = setup
        .mosquitto("mosquitto_pub", "app")
        .args(["-t", "dt/c", "-m", "from mosquitto", "-q", "1"])
        .output()
        .expect("mosquitto_pub (run scripts/setup-peers)");
    assert!(out.status.success(), "{}", text(&out.stderr));

    assert_eq!(
        sub_output(sub),
        "dt/a {\n  \"z\": 1,\n  \"a\": [\n    true\n  ]\n}\ndt/b line one\ndt/c from mosquitto\n"
    );
}

#[test]
fn pub_reaches_mosquitto_sub_and_a_retained_message_a_later_sub() {
    let setup = Setup::new(&[("app", "application")]);
    // mosquitto_sub says nothing when it has subscribed (its -d output is
    // buffered in a pipe): the emulator's lifecycle event does.
    let (subscribed, stderr) = setup.spawn(&[
        "sub",
        "-t",
        "$aws/events/subscriptions/subscribed/app",
        "-C",
        "1",
        "-W",
        HANG_GUARD,
    ]);
    stderr.wait_for("the subscription", |l| l.contains("subscribed"));
    let mosquitto = setup
        .mosquitto("mosquitto_sub", "app")
        .args(["-t", "cmd/#", "-q", "1", "-C", "1", "-v", "-W", HANG_GUARD])
        .stdout(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub (run scripts/setup-peers)");
    let event = sub_output(subscribed);
    assert!(event.contains("\"cmd/#\""), "{event}");
    let out = setup.run(&["pub", "-t", "cmd/dev1/reboot", "-m", "now", "-q", "1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let received = mosquitto.wait_with_output().unwrap();
    assert!(received.status.success());
    assert_eq!(text(&received.stdout), "cmd/dev1/reboot now\n");

    let out = setup.run(&[
        "pub",
        "-t",
        "cfg/dev1",
        "-m",
        r#"{"v":42}"#,
        "-r",
        "-q",
        "1",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // AWS IoT Core hands retained messages to exact filters only, not to `cfg/#`.
    let out = setup.run(&["sub", "-t", "cfg/dev1", "-C", "1", "-W", HANG_GUARD]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "{\n  \"v\": 42\n}\n");

    // An empty retained message clears it: nothing comes, and -W ends the
    // wait with mosquitto_sub's timeout status.
    let out = setup.run(&["pub", "-t", "cfg/dev1", "-n", "-r", "-q", "1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = setup.run(&["sub", "-t", "cfg/dev1", "-W", "1"]);
    assert_eq!(out.status.code(), Some(27), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    assert!(text(&out.stderr).contains("timed out after 1 s (-W)"));
}

#[test]
fn a_refusal_by_policy_says_what_the_policy_must_allow() {
    let setup = Setup::new(&[("dev1", "thing")]);
    let dir = files(setup.dir());
    let cert = dir.join("dev1.cert.pem");
    let key = dir.join("dev1.private.key");
    let identity = [
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "-i",
        "dev1",
    ];
    // MQTT 3.1.1: AWS closes the connection; MQTT 5: PUBACK/SUBACK 0x87.
    for version in ["311", "5"] {
        let run = |args: &[&str]| {
            let mut all = args.to_vec();
            all.extend(identity);
            all.extend(["-V", version]);
            setup.run(&all)
        };
        let out = run(&["pub", "-t", "dt/dev1/temp", "-m", "21", "-q", "1"]);
        assert!(out.status.success(), "{}", text(&out.stderr));

        let out = run(&["pub", "-t", "dt/dev2/temp", "-m", "21", "-q", "1"]);
        assert!(!out.status.success(), "MQTT {version}");
        assert!(
            text(&out.stderr).starts_with(
                "error: not allowed to publish to dt/dev2/temp: the policy must allow \
                 iot:Publish on topic/dt/dev2/temp\n"
            ),
            "MQTT {version}: {}",
            text(&out.stderr)
        );

        let out = run(&["sub", "-t", "dt/#", "-C", "1", "-W", HANG_GUARD]);
        assert!(!out.status.success(), "MQTT {version}");
        assert!(
            text(&out.stderr).starts_with(
                "error: not allowed to subscribe to dt/#: the policy must allow iot:Subscribe \
                 on topicfilter/dt/#\n"
            ),
            "MQTT {version}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn bad_input_is_refused_with_a_clear_error() {
    let data = tempfile::tempdir().unwrap();
    let refused = |args: &[&str], expected: &str| {
        let out = iotcore(data.path(), args);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    };
    refused(
        &["pub", "-t", "a", "-m", "x", "-q", "2"],
        "AWS IoT Core does not support QoS 2",
    );
    refused(&["sub", "-t", "a", "-q", "2"], "does not support QoS 2");
    refused(&["pub", "-m", "x"], "--topic <TOPIC>");
    refused(&["sub", "-v"], "--topic <FILTER>");
    refused(&["pub", "-t", "a"], "<--message <MESSAGE>|--file <FILE>|");
    refused(&["pub", "-t", "a", "-m", "x", "-n"], "cannot be used with");
    refused(
        &["pub", "-t", "a", "-m", "x", "-V", "31"],
        "possible values: 311, 5",
    );
    let missing = data.path().join("missing.json");
    refused(
        &["pub", "-t", "a", "-f", missing.to_str().unwrap(), "-p", "1"],
        &format!("cannot read the message file {}", missing.display()),
    );
}
