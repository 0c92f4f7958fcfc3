//! AWS's own identity clients against the emulator's fleet provisioning:
//! `tests/peers/awsiot_provision.py` drives `awsiot.iotidentity.IotIdentityClient`
//! (exact subscriptions made once) or `IotIdentityClientV2` (request-response)
//! over MQTT 3.1.1 or 5, with a claim certificate: CreateCertificateFromCsr (a
//! CSR made here, the key kept here) or CreateKeysAndCertificate, RegisterThing
//! with a parameter, and RegisterThing again with the used token (rejected).
//! The test then connects as the new thing.
//!
//! Needs `scripts/setup-peers` to have run.

mod provisioning_support;
mod support;

use std::ffi::OsString;

use iotcore_mqtt::ProtocolVersion;
use iotcore_test_support::run_peer;
use provisioning_support::*;
use serde_json::json;
use support::*;

async fn aws_identity_client_provisions(client: &str, protocol: &str, csr: bool) {
    let setup = Setup::start().await;
    create_template(&setup, None);
    let claim = claim_device(&setup, &format!("claim-{client}-{protocol}"));
    let serial = format!("{client}{protocol}{}", if csr { "csr" } else { "keys" });
    let out = setup.dir.path().join("new");
    std::fs::create_dir_all(&out).unwrap();
    let (out_cert, out_key) = (out.join("cert.pem"), out.join("key.pem"));
    let files = &claim.files;
    let mut args: Vec<OsString> = vec![
        "--port".into(),
        setup.addr().port().to_string().into(),
        "--ca".into(),
        files.root_ca.clone().into(),
        "--cert".into(),
        files.certificate.clone().into(),
        "--key".into(),
        files.private_key.clone().into(),
        "--client-id".into(),
        format!("factory-{serial}").into(),
        "--template".into(),
        TEMPLATE.into(),
        "--param".into(),
        format!("SerialNumber={serial}").into(),
        "--out-cert".into(),
        out_cert.clone().into(),
        "--out-key".into(),
        out_key.clone().into(),
        "--client".into(),
        client.into(),
        "--protocol".into(),
        protocol.into(),
    ];
    let device_key = if csr {
        let (key, csr) = key_and_csr();
        let csr_file = out.join("request.csr");
        std::fs::write(&csr_file, csr).unwrap();
        args.extend(["--csr".into(), csr_file.into()]);
        Some(key)
    } else {
        None
    };
    let output = run_peer("awsiot_provision.py", &args).await;
    output.assert_success();

    let thing = format!("sensor-{serial}");
    let created = &output.events_named("created")[0];
    assert_eq!(created["has_private_key"], !csr, "{output}");
    assert_eq!(
        output.events_named("registered"),
        [json!({"event": "registered", "thing_name": thing,
                "device_configuration": {"site": "lab", "telemetry": "off"}})],
        "{output}"
    );
    let rejected = &output.events_named("rejected")[0];
    assert_eq!(rejected["status_code"], 400, "{output}");
    assert_eq!(
        rejected["error_code"], "InvalidCertificateOwnershipToken",
        "{output}"
    );

    // The new identity works.
    let certificate = std::fs::read_to_string(&out_cert).unwrap();
    let key = device_key.unwrap_or_else(|| std::fs::read_to_string(&out_key).unwrap());
    let device = device(&setup, &thing, &certificate, &key);
    let id = created["certificate_id"].as_str().unwrap();
    assert_eq!(
        certificate_things(setup.emulator.control(), id),
        [thing.as_str()]
    );
    RawClient::connected(setup.addr(), &device, ProtocolVersion::V5)
        .await
        .disconnect()
        .await;
}

#[tokio::test]
async fn identity_client_v1_mqtt3_with_a_csr() {
    aws_identity_client_provisions("v1", "3", true).await;
}

#[tokio::test]
async fn identity_client_v1_mqtt5_create_keys() {
    aws_identity_client_provisions("v1", "5", false).await;
}

#[tokio::test]
async fn identity_client_v2_mqtt5_with_a_csr() {
    aws_identity_client_provisions("v2", "5", true).await;
}

#[tokio::test]
async fn identity_client_v2_mqtt3_create_keys() {
    aws_identity_client_provisions("v2", "3", false).await;
}
