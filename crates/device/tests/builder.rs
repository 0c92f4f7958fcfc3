//! Configuration mistakes are reported by the builder, naming what is wrong,
//! before anything touches the network.

use std::path::PathBuf;
use std::time::Duration;

use iotcore::{Client, ConfigError, ErrorKind};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn config_error(result: Result<iotcore::Client, iotcore::Error>) -> String {
    let err = result.expect_err("configuration must be refused");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.config_error().is_some());
    err.to_string()
}

#[test]
fn a_missing_key_file_is_named_in_the_error() {
    let err = Client::builder("t")
        .client_cert_pem_files(fixture("ec.cert.pem"), fixture("missing.key.pem"))
        .expect_err("missing key file");
    assert!(matches!(err, ConfigError::ReadFile { .. }));
    assert!(err.to_string().contains("missing.key.pem"), "{err}");
}

#[test]
fn an_encrypted_key_is_refused_with_a_way_out() {
    let err = Client::builder("t")
        .client_cert_pem_files(
            fixture("ec.cert.pem"),
            fixture("ec-pkcs8-encrypted.key.pem"),
        )
        .expect_err("encrypted key");
    assert!(matches!(err, ConfigError::EncryptedPrivateKey { .. }));
    assert!(err.to_string().contains("openssl pkey"), "{err}");
}

#[test]
fn a_key_from_another_certificate_is_refused() {
    let err = Client::builder("t")
        .client_cert_pem_files(fixture("rsa.cert.pem"), fixture("ec-sec1.key.pem"))
        .expect_err("mismatched key");
    assert!(matches!(
        err,
        ConfigError::KeyDoesNotMatchCertificate { .. }
    ));
}

#[test]
fn pem_in_memory_works_like_files() {
    let cert = std::fs::read(fixture("rsa.cert.pem")).unwrap();
    let key = std::fs::read(fixture("rsa-pkcs1.key.pem")).unwrap();
    Client::builder("t")
        .client_cert_pem(cert, key)
        .expect("PKCS#1 RSA key in memory");
    let err = Client::builder("t")
        .root_ca_pem("not pem at all")
        .expect_err("no certificate in the CA text");
    assert!(matches!(err, ConfigError::NoCertificate { .. }));
}

fn valid() -> iotcore::ClientBuilder {
    Client::builder("my-thing")
        .endpoint("127.0.0.1")
        .port(1) // never reached: every case fails before connecting
        .client_cert_pem_files(fixture("ec.cert.pem"), fixture("ec-pkcs8.key.pem"))
        .unwrap()
}

#[tokio::test]
async fn settings_outside_aws_limits_are_refused_before_connecting() {
    let text = config_error(valid().keep_alive(Duration::from_secs(10)).connect().await);
    assert!(text.contains("30 s to 1200 s"), "{text}");
    config_error(
        valid()
            .keep_alive(Duration::from_secs(1201))
            .connect()
            .await,
    );
    config_error(valid().client_id("x".repeat(129)).connect().await);
    config_error(valid().client_id("$reserved").connect().await);
    config_error(
        valid()
            .persistent_session(Duration::from_secs(8 * 24 * 3600))
            .connect()
            .await,
    );
    config_error(valid().telemetry_topic("a/b/c/d/e/f/g/h/i").connect().await);
    config_error(
        valid()
            .last_will(iotcore::LastWill::new(
                "lwt/#",
                "gone",
                iotcore::QoS::AtLeastOnce,
            ))
            .connect()
            .await,
    );
}

#[tokio::test]
async fn missing_endpoint_and_certificate_are_reported() {
    let text = config_error(
        Client::builder("t")
            .client_cert_pem_files(fixture("ec.cert.pem"), fixture("ec-pkcs8.key.pem"))
            .unwrap()
            .connect()
            .await,
    );
    assert!(text.contains("describe-endpoint"), "{text}");
    let text = config_error(Client::builder("t").endpoint("127.0.0.1").connect().await);
    assert!(text.contains("client_cert_pem_files"), "{text}");
    config_error(valid().tls_server_name("not a name!").connect().await);
}

#[tokio::test]
async fn an_offline_store_that_cannot_be_used_is_refused_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let text = config_error(valid().offline_store(file.join("store")).connect().await);
    assert!(text.contains("offline store's directory"), "{text}");
    assert!(text.contains("a-file"), "{text}");

    let foreign = dir.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join(iotcore::offline_store::LOG_FILE), b"{}").unwrap();
    let result = valid().offline_store(&foreign).connect().await;
    let err = result.expect_err("a file that is not a store");
    assert!(
        matches!(
            err.config_error(),
            Some(ConfigError::OfflineStore(
                iotcore::offline_store::StoreError::NotAStore { .. }
            ))
        ),
        "{err}"
    );
    assert_eq!(
        std::fs::read(foreign.join(iotcore::offline_store::LOG_FILE)).unwrap(),
        b"{}",
        "left as it was"
    );
}

#[tokio::test]
async fn the_in_connection_retry_is_an_mqtt_311_option_only() {
    let text = config_error(
        valid()
            .protocol(iotcore::ProtocolVersion::V5)
            .retry_unacknowledged(Duration::from_secs(5))
            .connect()
            .await,
    );
    assert!(text.contains("MQTT 3.1.1 option"), "{text}");
    let text = config_error(valid().retry_unacknowledged(Duration::ZERO).connect().await);
    assert!(text.contains("greater than zero"), "{text}");
}
