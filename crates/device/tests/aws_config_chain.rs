//! The cargo feature `aws-config`: `CredentialsProvider::aws_default_chain()`
//! is the AWS SDK's default chain, here resolving a profile with
//! `credential_process` (a chain element the SDK's own files reader does not
//! have), and the WebSocket door signs with what it returns, on every
//! connection. Run with `cargo test -p iotcore --features aws-config --test
//! aws_config_chain`.
//!
//! The chain reads the process environment, so the test runs itself again as
//! a child process with an environment of its own: the emulator and the
//! credential process's script live in the parent, the child connects.
#![cfg(feature = "aws-config")]

mod common;

use std::path::Path;
use std::time::Duration;

use common::emulator::EmulatorBroker;
use common::within;
use iotcore::aws_credentials::CredentialsProvider;
use iotcore::{Client, QoS};
use iotcore_emulator::control::AccessKeyOptions;

/// Set in the child: `port|CA path`.
const CHILD: &str = "IOTCORE_TEST_AWS_CONFIG_CHILD";
/// This test's name, to run only it in the child.
const NAME: &str = "the_default_chain_runs_credential_process_for_every_connection";

#[tokio::test]
async fn the_default_chain_runs_credential_process_for_every_connection() {
    match std::env::var(CHILD) {
        Ok(target) => connect_twice(&target).await,
        Err(_) => run_child().await,
    }
}

/// The parent: an emulator, an access key handed out by a `credential_process`
/// script that counts its runs, and the child in an environment naming them.
async fn run_child() {
    let e = EmulatorBroker::start().await;
    let key = e
        .control()
        .create_access_key("aws-config-chain", &AccessKeyOptions::default())
        .expect("access key issued");
    let dir = tempfile::tempdir().expect("temp dir");
    let runs = dir.path().join("runs");
    let script = dir.path().join("credentials.sh");
    std::fs::write(
        &script,
        format!(
            "echo run >> '{}'\nprintf '%s' '{{\"Version\": 1, \"AccessKeyId\": \"{}\", \
             \"SecretAccessKey\": \"{}\"}}'\n",
            runs.display(),
            key.access_key_id,
            key.secret_access_key
        ),
    )
    .expect("write script");
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        format!(
            "[profile iot-device]\nregion = us-east-1\ncredential_process = sh {}\n",
            script.display()
        ),
    )
    .expect("write config");

    let exe = std::env::current_exe().expect("the test binary");
    let child = tokio::process::Command::new(exe)
        .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD, format!("{}|{}", e.port(), e.ca().display()))
        .env("AWS_CONFIG_FILE", &config)
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.path().join("no-such-file"),
        )
        .env("AWS_PROFILE", "iot-device")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), child)
        .await
        .expect("the child ends")
        .expect("the child runs");
    assert!(
        output.status.success(),
        "the child failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        count_runs(&runs),
        2,
        "credential_process ran once per connection"
    );
}

fn count_runs(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|text| text.lines().count())
        .unwrap_or(0)
}

/// The child: two connections over WebSocket with the default chain, each
/// publishing and receiving.
async fn connect_twice(target: &str) {
    let (port, ca) = target.split_once('|').expect("port|CA");
    let port: u16 = port.parse().expect("port");
    let provider = CredentialsProvider::aws_default_chain().await;
    for round in 0..2 {
        let client = within(
            "a connection over WebSocket with the default chain",
            Client::builder("chain-device")
                .endpoint("127.0.0.1")
                .port(port)
                .amazon_root_cas(false)
                .root_ca_pem_file(ca)
                .expect("CA file")
                .websocket(provider.clone())
                .region("us-east-1")
                .connect(),
        )
        .await
        .expect("connects with the credentials credential_process gave");
        let mut messages = client
            .subscribe("dt/chain-device/#", QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        client
            .publish(
                "dt/chain-device/t",
                format!("round {round}"),
                QoS::AtLeastOnce,
            )
            .await
            .expect("publish");
        let message = common::next("the message back", &mut messages).await;
        assert_eq!(
            message.payload_str(),
            Some(format!("round {round}").as_str())
        );
        client.close().await;
    }
}
