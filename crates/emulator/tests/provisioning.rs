//! Fleet provisioning by claim through the broker, with a raw MQTT client:
//! CreateCertificateFromCsr and CreateKeysAndCertificate, RegisterThing with a
//! template, what the claim and the new identity may do, replies to the
//! requesting connection only, the ownership token's rules, the
//! pre-provisioning hook, and bad requests answered with AWS's codes.
//! AWS behaviours: docs/aws-iot-core-behaviour.md §4.

mod provisioning_support;
mod support;

use std::time::{Duration, SystemTime};

use iotcore_emulator::clock::Clock;
use iotcore_emulator::control::{
    DescribeThingRequest, ListAttachedPoliciesRequest, ListThingPrincipalsRequest,
    TemplateNameRequest,
};
use iotcore_emulator::provisioning::TOKEN_LIFETIME;
use iotcore_mqtt::{Packet, ProtocolVersion, QoS, ReasonCode};
use provisioning_support::*;
use serde_json::{Value, json};
use support::*;

const V5: ProtocolVersion = ProtocolVersion::V5;
const CREATE_FROM_CSR: &str = "$aws/certificates/create-from-csr/json";
const CREATE_KEYS: &str = "$aws/certificates/create/json";

fn register_request(token: &str, serial: &str) -> Vec<u8> {
    json!({"certificateOwnershipToken": token, "parameters": {"SerialNumber": serial}})
        .to_string()
        .into_bytes()
}

fn text(value: &Value, key: &str) -> String {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {value}"))
        .to_owned()
}

/// Connects as `claim` and subscribes to the replies of both certificate APIs
/// and of the template's RegisterThing.
async fn provisioner(setup: &Setup, claim: &Device, client_id: &str) -> Provisioner {
    let mut p = Provisioner::connect(setup, claim, client_id, V5).await;
    for request in [CREATE_FROM_CSR, CREATE_KEYS, &register_topic()] {
        p.subscribe_replies(request).await;
    }
    p
}

#[tokio::test]
async fn a_claim_turns_into_a_thing_whose_key_never_left_the_device() {
    let setup = Setup::start().await;
    create_template(&setup, None);
    let claim = claim_device(&setup, "claim");
    let mut p = provisioner(&setup, &claim, "factory-serial-42").await;

    let (key_pem, csr) = key_and_csr();
    let (outcome, created) = p.request(CREATE_FROM_CSR, csr_request(&csr)).await;
    assert_eq!(outcome, "accepted", "{created}");
    let certificate_id = text(&created, "certificateId");
    let token = text(&created, "certificateOwnershipToken");
    assert_eq!(certificate_id.len(), 64);
    assert!(text(&created, "certificatePem").starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(
        created.get("privateKey").is_none(),
        "the key stays on the device"
    );
    let control = setup.emulator.control();
    assert_eq!(
        certificate_status(control, &certificate_id).as_deref(),
        Some("PENDING_ACTIVATION")
    );
    let before = device(
        &setup,
        "pending",
        &text(&created, "certificatePem"),
        &key_pem,
    );
    assert!(
        tls_refused(&setup, &before).await,
        "a PENDING_ACTIVATION certificate cannot connect"
    );

    let (outcome, registered) = p
        .request(&register_topic(), register_request(&token, "42"))
        .await;
    assert_eq!(outcome, "accepted", "{registered}");
    assert_eq!(
        registered,
        json!({"deviceConfiguration": {"site": "lab", "telemetry": "off"}, "thingName": "sensor-42"})
    );
    assert_eq!(
        certificate_status(control, &certificate_id).as_deref(),
        Some("ACTIVE")
    );
    assert_eq!(certificate_things(control, &certificate_id), ["sensor-42"]);
    let thing = control
        .describe_thing(DescribeThingRequest {
            thing_name: "sensor-42".into(),
        })
        .expect("thing created");
    assert_eq!(thing.attributes["serial"], "42");
    p.client.disconnect().await;

    // The new identity: its own shadow, nothing else.
    let sensor = device(
        &setup,
        "sensor-42",
        &text(&created, "certificatePem"),
        &key_pem,
    );
    let mut client = RawClient::connected(setup.addr(), &sensor, V5).await;
    let shadow = "$aws/things/sensor-42/shadow/update";
    let reasons = client
        .subscribe(1, &[&format!("{shadow}/accepted")], QoS::AtLeastOnce)
        .await;
    assert_eq!(reasons, [ReasonCode::GRANTED_QOS_1]);
    let update = json!({"state": {"reported": {"on": true}}}).to_string();
    client
        .send(&publish(shadow, QoS::AtLeastOnce, Some(2), update))
        .await;
    let mut accepted = None;
    let mut acked = false;
    while accepted.is_none() || !acked {
        match client.recv_skipping_pings().await {
            Some(Packet::PubAck(ack)) => {
                assert_eq!(ack.reason, ReasonCode::SUCCESS);
                acked = true;
            }
            Some(Packet::Publish(reply)) => {
                if let Some(id) = reply.packet_id {
                    client.send(&puback(id)).await;
                }
                accepted = Some(serde_json::from_slice::<Value>(&reply.payload).unwrap());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(accepted.unwrap()["version"], 1);
    assert_eq!(
        client
            .publish_qos1(3, "$aws/things/sensor-7/shadow/update", "{}")
            .await,
        ReasonCode::NOT_AUTHORIZED,
        "another thing's shadow"
    );
    assert_eq!(
        client.publish_qos1(4, "dt/sensor-42", "{}").await,
        ReasonCode::NOT_AUTHORIZED
    );
    client.disconnect().await;

    // The same template's policy, created once, serves every device.
    let policies = control
        .list_attached_policies(ListAttachedPoliciesRequest {
            target: certificate_id.clone(),
            ..Default::default()
        })
        .expect("registry")
        .policies;
    assert_eq!(policies.len(), 1);
    assert_eq!(
        policies[0].policy_name.len(),
        64,
        "named by the document's hash"
    );
}

#[tokio::test]
async fn create_keys_and_certificate_hands_over_a_working_key() {
    let setup = Setup::start().await;
    create_template(&setup, None);
    let claim = claim_device(&setup, "claim");
    let mut p = provisioner(&setup, &claim, "serial-7").await;
    // AWS documents an empty payload; its SDKs send {}.
    for payload in ["", "{}"] {
        let (outcome, created) = p.request(CREATE_KEYS, payload).await;
        assert_eq!(outcome, "accepted", "{created}");
        assert!(text(&created, "privateKey").contains("PRIVATE KEY"));
    }
    let (_, created) = p.request(CREATE_KEYS, "{}").await;
    let (outcome, registered) = p
        .request(
            &register_topic(),
            register_request(&text(&created, "certificateOwnershipToken"), "7"),
        )
        .await;
    assert_eq!(outcome, "accepted", "{registered}");
    let sensor = device(
        &setup,
        "sensor-7",
        &text(&created, "certificatePem"),
        &text(&created, "privateKey"),
    );
    RawClient::connected(setup.addr(), &sensor, V5)
        .await
        .disconnect()
        .await;
}

#[tokio::test]
async fn the_claim_may_do_nothing_but_provision_with_its_template() {
    let setup = Setup::start().await;
    create_template(&setup, None);
    setup
        .emulator
        .control()
        .create_template("other", TEMPLATE_BODY, None, None)
        .unwrap();
    let claim = claim_device(&setup, "claim");
    let mut p = Provisioner::connect(&setup, &claim, "anything", V5).await;
    for topic in [
        "$aws/things/anything/shadow/get",
        "$aws/provisioning-templates/other/provision/json",
        "dt/anything",
        "$aws/events/presence/connected/anything",
    ] {
        assert_eq!(
            p.publish_expecting_puback(topic).await,
            ReasonCode::NOT_AUTHORIZED,
            "{topic}"
        );
    }
    let reasons = p
        .client
        .subscribe(
            50,
            &[
                "#",
                "$aws/things/anything/shadow/get/accepted",
                "$aws/provisioning-templates/other/provision/json/accepted",
            ],
            QoS::AtLeastOnce,
        )
        .await;
    assert_eq!(reasons, [ReasonCode::NOT_AUTHORIZED; 3]);
}

#[tokio::test]
async fn replies_go_to_the_requesting_connection_only() {
    let setup = Setup::start().await;
    create_template(&setup, None);
    let claim = claim_device(&setup, "claim");
    let mut first = provisioner(&setup, &claim, "serial-1").await;
    let mut second = provisioner(&setup, &claim, "serial-2").await;
    let (_, mine) = first.request(CREATE_KEYS, "{}").await;
    // The second connection, subscribed to the same reply topic, saw nothing:
    // the first reply it gets is the one to its own request.
    let (_, theirs) = second.request(CREATE_KEYS, "{}").await;
    assert_ne!(text(&mine, "certificateId"), text(&theirs, "certificateId"));
    // A client that did not subscribe gets no reply, and no one else gets it:
    // the first connection's next reply is to its own next request.
    let mut silent = Provisioner::connect(&setup, &claim, "serial-3", V5).await;
    assert_eq!(
        silent.publish_expecting_puback(CREATE_KEYS).await,
        ReasonCode::SUCCESS
    );
    let (_, again) = first.request(CREATE_KEYS, "{}").await;
    assert!(again.get("certificateId").is_some());
}

#[tokio::test]
async fn bad_requests_are_rejected_with_aws_codes() {
    let setup = Setup::start().await;
    create_template(&setup, None);
    let claim = claim_device(&setup, "claim");
    let mut p = provisioner(&setup, &claim, "serial-9").await;
    let rejected = |status: u16, code: &str| (status, code.to_owned());
    let shape = |reply: &Value| {
        (
            u16::try_from(reply["statusCode"].as_u64().unwrap_or(0)).unwrap_or(0),
            text(reply, "errorCode"),
        )
    };

    // Malformed CSRs.
    for payload in [
        json!({"certificateSigningRequest": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"}).to_string(),
        json!({"certificateSigningRequest": ""}).to_string(),
        "not json".to_owned(),
    ] {
        let (outcome, reply) = p.request(CREATE_FROM_CSR, payload.clone()).await;
        assert_eq!(outcome, "rejected", "{payload}");
        let expected = if payload == "not json" { "InvalidPayload" } else { "InvalidCsr" };
        assert_eq!(shape(&reply), rejected(400, expected), "{reply}");
    }

    // Unknown template: its own topics, which the claim policy does not cover,
    // so a claim for that name is made first.
    let control = setup.emulator.control();
    control
        .create_template("gone", TEMPLATE_BODY, None, None)
        .unwrap();
    let gone_claim = control.create_claim("gone").unwrap();
    control
        .delete_provisioning_template(TemplateNameRequest {
            template_name: "gone".into(),
        })
        .expect("template deleted");
    let gone_device = device(
        &setup,
        "gone-claim",
        &gone_claim.credentials.certificate_pem,
        &gone_claim.credentials.private_key_pem,
    );
    let mut g = Provisioner::connect(&setup, &gone_device, "serial-gone", V5).await;
    let gone_topic = "$aws/provisioning-templates/gone/provision/json";
    g.subscribe_replies(gone_topic).await;
    let (outcome, reply) = g.request(gone_topic, register_request("t", "1")).await;
    assert_eq!(outcome, "rejected");
    assert_eq!(shape(&reply), rejected(404, "ResourceNotFound"), "{reply}");

    // Token problems: empty, unknown.
    let (_, reply) = p
        .request(&register_topic(), json!({"parameters": {}}).to_string())
        .await;
    assert_eq!(
        reply,
        json!({"statusCode": 400, "errorCode": "InvalidCertificateOwnershipToken",
               "errorMessage": "Certificate ownership token cannot be empty."})
    );
    let (_, reply) = p
        .request(&register_topic(), register_request("no-such-token", "1"))
        .await;
    assert_eq!(
        shape(&reply),
        rejected(400, "InvalidCertificateOwnershipToken")
    );

    // A missing parameter leaves the certificate pending and the token usable.
    let (_, created) = p.request(CREATE_KEYS, "{}").await;
    let token = text(&created, "certificateOwnershipToken");
    let (outcome, reply) = p
        .request(
            &register_topic(),
            json!({"certificateOwnershipToken": token}).to_string(),
        )
        .await;
    assert_eq!(outcome, "rejected");
    assert_eq!(shape(&reply), rejected(400, "InvalidParameters"), "{reply}");
    assert!(text(&reply, "errorMessage").contains("SerialNumber"));
    let (outcome, _) = p
        .request(&register_topic(), register_request(&token, "9"))
        .await;
    assert_eq!(outcome, "accepted");

    // A token works once.
    let (outcome, reply) = p
        .request(&register_topic(), register_request(&token, "9"))
        .await;
    assert_eq!(outcome, "rejected");
    assert_eq!(
        shape(&reply),
        rejected(400, "InvalidCertificateOwnershipToken")
    );

    // An invalid thing name from the parameters.
    let (_, created) = p.request(CREATE_KEYS, "{}").await;
    let (_, reply) = p
        .request(
            &register_topic(),
            register_request(&text(&created, "certificateOwnershipToken"), "a b"),
        )
        .await;
    assert_eq!(shape(&reply), rejected(400, "InvalidTemplate"), "{reply}");

    // CBOR is not served: no reply, while JSON goes on working.
    assert_eq!(
        p.publish_expecting_puback("$aws/certificates/create/cbor")
            .await,
        ReasonCode::SUCCESS
    );
    let (outcome, _) = p.request(CREATE_KEYS, "{}").await;
    assert_eq!(outcome, "accepted");
}

#[tokio::test]
async fn an_ownership_token_expires_after_an_hour_with_its_certificate() {
    let (clock, time) = Clock::manual(SystemTime::now());
    let setup = Setup::start_with(|config| config.with_clock(clock)).await;
    create_template(&setup, None);
    let claim = claim_device(&setup, "claim");
    let mut p = provisioner(&setup, &claim, "serial-5").await;
    let (_, created) = p.request(CREATE_KEYS, "{}").await;
    let certificate_id = text(&created, "certificateId");
    time.advance(TOKEN_LIFETIME - Duration::from_secs(1));
    let (_, fresh) = p.request(CREATE_KEYS, "{}").await;
    time.advance(Duration::from_secs(1));
    let (outcome, reply) = p
        .request(
            &register_topic(),
            register_request(&text(&created, "certificateOwnershipToken"), "5"),
        )
        .await;
    assert_eq!(outcome, "rejected");
    assert_eq!(reply["errorCode"], "InvalidCertificateOwnershipToken");
    assert!(text(&reply, "errorMessage").contains("expired"), "{reply}");
    assert_eq!(
        certificate_status(setup.emulator.control(), &certificate_id),
        None,
        "an expired, unregistered certificate is deleted"
    );
    // The one made a second later still has its second.
    let (outcome, _) = p
        .request(
            &register_topic(),
            register_request(&text(&fresh, "certificateOwnershipToken"), "5"),
        )
        .await;
    assert_eq!(outcome, "accepted");
}

#[tokio::test]
async fn a_pre_provisioning_hook_allows_denies_and_overrides() {
    let setup = Setup::start().await;
    // Denies serial 13; otherwise allows and moves every device to site "hq".
    let hook = r#"input=$(cat); case "$input" in *'"SerialNumber":"13"'*) echo '{"allowProvisioning": false}';; *) echo '{"allowProvisioning": true, "parameterOverrides": {"Site": "hq"}}';; esac"#;
    create_template(&setup, Some(hook));
    let claim = claim_device(&setup, "claim");
    let mut p = provisioner(&setup, &claim, "serial-13").await;
    let (_, created) = p.request(CREATE_KEYS, "{}").await;
    let token = text(&created, "certificateOwnershipToken");
    let (outcome, reply) = p
        .request(&register_topic(), register_request(&token, "13"))
        .await;
    assert_eq!(outcome, "rejected");
    assert_eq!(reply["statusCode"], 403);
    assert_eq!(reply["errorCode"], "AccessDenied");
    let (outcome, reply) = p
        .request(&register_topic(), register_request(&token, "14"))
        .await;
    assert_eq!(outcome, "accepted", "{reply}");
    assert_eq!(reply["deviceConfiguration"]["site"], "hq");
}

#[tokio::test]
async fn provisioning_the_same_thing_again_keeps_it_and_adds_the_new_certificate() {
    let setup = Setup::start().await;
    create_template(&setup, None);
    let claim = claim_device(&setup, "claim");
    let mut p = provisioner(&setup, &claim, "serial-3").await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (_, created) = p.request(CREATE_KEYS, "{}").await;
        let (outcome, _) = p
            .request(
                &register_topic(),
                register_request(&text(&created, "certificateOwnershipToken"), "3"),
            )
            .await;
        assert_eq!(outcome, "accepted");
        ids.push(text(&created, "certificateId"));
    }
    let scope = setup.emulator.arn_scope();
    let mut arns: Vec<String> = ids
        .iter()
        .map(|id| format!("{}cert/{id}", scope.prefix()))
        .collect();
    arns.sort();
    let principals = setup
        .emulator
        .control()
        .list_thing_principals(ListThingPrincipalsRequest {
            thing_name: "sensor-3".into(),
            ..Default::default()
        })
        .expect("registry")
        .principals;
    assert_eq!(principals, arns);
}

#[tokio::test]
async fn templates_and_tokens_survive_a_restart() {
    let setup = Setup::start().await;
    create_template(&setup, None);
    let claim = claim_device(&setup, "claim");
    let mut p = provisioner(&setup, &claim, "serial-8").await;
    let (_, created) = p.request(CREATE_KEYS, "{}").await;
    p.client.disconnect().await;
    let setup = setup.restart().await;
    let mut p = provisioner(&setup, &claim, "serial-8").await;
    let (outcome, reply) = p
        .request(
            &register_topic(),
            register_request(&text(&created, "certificateOwnershipToken"), "8"),
        )
        .await;
    assert_eq!(outcome, "accepted", "{reply}");
}
