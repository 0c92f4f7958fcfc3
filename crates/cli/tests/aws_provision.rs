//! `scripts/aws-provision` end to end against the emulator's HTTPS control plane,
//! with the real AWS CLI (`.venv/bin/aws`, from `scripts/setup-peers`):
//!
//! 1. `iotcore emulator --port 0 --api-port P` and `iotcore credentials create
//!    provisioner --out FILE --profile iotcore`;
//! 2. `scripts/aws-provision --demo --out DIR --endpoint-url https://localhost:P
//!    --root-ca <data dir>/pki/ca.pem`, with `AWS_SHARED_CREDENTIALS_FILE=FILE`,
//!    `AWS_PROFILE=iotcore` and `AWS_CA_BUNDLE=<data dir>/pki/ca.pem`: both demo
//!    things, their certificates and policies are made, the files written;
//! 3. the devices connect with the written files: `iotcore demo --certs DIR
//!    --endpoint 127.0.0.1:<MQTT port>` runs every step;
//! 4. a second run of the script makes nothing (every line says "exists") and
//!    leaves every file as it was;
//! 5. `--teardown --demo` leaves no demo thing, certificate or policy in the
//!    registry, and removes the certificates and keys from DIR.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod common;

use common::{Emulator, HANG_GUARD, IOTCORE, iotcore, text};

const THINGS: [&str; 2] = ["demo-device", "demo-cloud"];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The AWS CLI beside the peers' Python (`IOTCORE_PYTHON`), else `.venv/bin/aws`.
fn aws_cli() -> PathBuf {
    let aws = std::env::var_os("IOTCORE_PYTHON")
        .map(PathBuf::from)
        .and_then(|python| python.parent().map(|bin| bin.join("aws")))
        .unwrap_or_else(|| workspace_root().join(".venv/bin/aws"));
    assert!(
        aws.is_file(),
        "no AWS CLI at {}: run scripts/setup-peers",
        aws.display()
    );
    aws
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
fn wait_for_listener(port: u16) {
    let deadline = Instant::now() + HANG_GUARD;
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {address}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The script with the AWS CLI pointed at the emulator's API and nothing of the
/// user's AWS configuration.
struct Provisioner {
    data: PathBuf,
    credentials: PathBuf,
    api_port: u16,
    out: PathBuf,
}

impl Provisioner {
    fn run(&self, args: &[&str]) -> Output {
        let ca = self.data.join("pki/ca.pem");
        let endpoint_url = format!("https://localhost:{}", self.api_port);
        let out = self.out.to_str().unwrap();
        let common = [
            "--out",
            out,
            "--region",
            "us-east-1",
            "--endpoint-url",
            &endpoint_url,
            "--root-ca",
            ca.to_str().unwrap(),
        ];
        Command::new(workspace_root().join("scripts/aws-provision"))
            .args(common)
            .args(args)
            .env("AWS_PROVISION_AWS", aws_cli())
            .env("AWS_PROVISION_IOTCORE", IOTCORE)
            .env("AWS_SHARED_CREDENTIALS_FILE", &self.credentials)
            .env("AWS_PROFILE", "iotcore")
            .env("AWS_CONFIG_FILE", self.data.join("no-aws-config"))
            .env("AWS_CA_BUNDLE", &ca)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("IOTCORE_DATA_DIR", &self.data)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_REGION")
            .output()
            .expect("run scripts/aws-provision")
    }

    fn run_ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "scripts/aws-provision {args:?} failed:\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Every file in the output directory, with its content.
    fn files(&self) -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&self.out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&p).unwrap())
            })
            .collect();
        files.sort();
        files
    }
}

fn iotcore_ok(data: &Path, args: &[&str]) -> String {
    let out = iotcore(data, args);
    assert!(
        out.status.success(),
        "iotcore {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn aws_provision_makes_the_demo_things_once_they_connect_and_teardown_leaves_nothing() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let api_port = free_port();
    let emulator = Emulator::start_with(data.path(), &["--api-port", &api_port.to_string()]);
    wait_for_listener(api_port);
    let credentials = work.path().join("aws-credentials");
    iotcore_ok(
        data.path(),
        &[
            "credentials",
            "create",
            "provisioner",
            "--out",
            credentials.to_str().unwrap(),
            "--profile",
            "iotcore",
        ],
    );
    let provisioner = Provisioner {
        data: data.path().to_path_buf(),
        credentials,
        api_port,
        out: work.path().join("certs"),
    };

    // 1. Provision both demo things.
    let first = provisioner.run_ok(&["--demo"]);
    for thing in THINGS {
        assert!(first.contains(&format!("{thing}: created")), "{first}");
        assert!(
            first.contains(&format!("{thing}-policy: created from template")),
            "{first}"
        );
        let key = provisioner.out.join(format!("{thing}.private.key"));
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", key.display());
        assert!(provisioner.out.join(format!("{thing}.cert.pem")).is_file());
    }
    assert_eq!(
        std::fs::read(provisioner.out.join("root-ca.pem")).unwrap(),
        std::fs::read(data.path().join("pki/ca.pem")).unwrap(),
        "root-ca.pem is the emulator's CA"
    );
    // "certificate  <64 hex digits>: created, ACTIVE (…)"
    let certificate_ids: Vec<String> = first
        .lines()
        .filter_map(|l| l.strip_prefix("certificate"))
        .filter_map(|l| l.trim_start().split_once(": created"))
        .map(|(id, _)| id.to_owned())
        .collect();
    assert_eq!(certificate_ids.len(), 2, "{first}");
    let endpoint = std::fs::read_to_string(provisioner.out.join("endpoint.txt")).unwrap();
    assert!(!endpoint.trim().is_empty(), "endpoint.txt is empty");
    let registry = iotcore_ok(data.path(), &["cert", "list"]);
    for thing in THINGS {
        assert!(
            registry.contains(&format!("ACTIVE\t{thing}\t{thing}-policy")),
            "{registry}"
        );
    }

    // 2. The devices connect with the files the script wrote.
    let demo = iotcore(
        data.path(),
        &[
            "demo",
            "--certs",
            provisioner.out.to_str().unwrap(),
            "--endpoint",
            &format!("127.0.0.1:{}", emulator.port),
        ],
    );
    let demo_output = text(&demo.stdout);
    assert!(
        demo.status.success() && demo_output.contains("demo finished: every step succeeded"),
        "{demo_output}\n{}",
        text(&demo.stderr)
    );

    // 3. A second run makes nothing and changes no file.
    let files = provisioner.files();
    let second = provisioner.run_ok(&["--demo"]);
    for word in ["created", ": done", "written", "updated", "version"] {
        assert!(
            !second.contains(word),
            "second run says {word:?}:\n{second}"
        );
    }
    assert_eq!(
        second.matches("exists").count(),
        2 * 5 + 2,
        "thing, certificate, policy and two attachments per thing, endpoint and root CA:\n{second}"
    );
    assert_eq!(provisioner.files(), files, "a second run changed a file");

    // 4. Teardown leaves no thing, certificate or policy of the demo.
    let teardown = provisioner.run_ok(&["--demo", "--teardown"]);
    for thing in THINGS {
        assert!(
            teardown.contains(&format!("{thing}: deleted")),
            "{teardown}"
        );
        assert!(
            teardown.contains(&format!("{thing}-policy: deleted")),
            "{teardown}"
        );
        assert!(!provisioner.out.join(format!("{thing}.cert.pem")).exists());
        assert!(
            !provisioner
                .out
                .join(format!("{thing}.private.key"))
                .exists()
        );
    }
    let things = iotcore_ok(data.path(), &["thing", "list"]);
    let policies = iotcore_ok(data.path(), &["policy", "list"]);
    let certificates = iotcore_ok(data.path(), &["cert", "list"]);
    for thing in THINGS {
        assert!(!things.contains(thing), "{things}");
        assert!(!policies.contains(thing), "{policies}");
        assert!(!certificates.contains(thing), "{certificates}");
    }
    for id in &certificate_ids {
        assert!(!certificates.contains(id.as_str()), "{certificates}");
    }

    // 5. A second teardown finds everything gone and succeeds.
    let again = provisioner.run_ok(&["--demo", "--teardown"]);
    assert!(again.contains("demo-device: already gone"), "{again}");
}
