//! Fleet provisioning by claim against the in-process emulator: the whole flow
//! (claim → key and CSR on the device → RegisterThing → credentials saved →
//! connect as the new thing → its shadow works under the template's policy),
//! what the claim may not do, and every failure as a typed error with AWS's
//! code and message.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use iotcore::provisioning::{
    FleetProvisioner, IdentityClient, KeyType, Provisioned, ProvisioningError,
};
use iotcore::service::{ServiceError, ServiceErrorKind};
use iotcore::{Client, ClientBuilder, ErrorKind, ProtocolVersion, QoS};
use iotcore_emulator::clock::{Clock, ManualClock};
use iotcore_emulator::control::{
    CertificateDescription, DescribeCertificateRequest, ErrorCode, ListPrincipalThingsRequest,
    TemplateNameRequest, UpdateCertificateRequest,
};
use iotcore_emulator::pki::DeviceCredentials;
use iotcore_emulator::provisioning::TOKEN_LIFETIME;
use iotcore_emulator::{Emulator, EmulatorConfig, Quotas};
use iotcore_test_support::init_tracing;
use serde_json::json;
use tempfile::TempDir;

/// Longest wait for something that must happen promptly: a guard against a
/// hung test, not a performance threshold.
const HANG_GUARD: Duration = Duration::from_secs(30);

const TEMPLATE: &str = "sensors";

/// Thing `sensor-<SerialNumber>`; its policy lets it connect as itself and
/// use its own shadows, nothing else.
const TEMPLATE_BODY: &str = r#"{
  "Parameters": {"SerialNumber": {"Type": "String"}, "Site": {"Type": "String", "Default": "lab"}},
  "Resources": {
    "thing": {"Type": "AWS::IoT::Thing",
              "Properties": {"ThingName": {"Fn::Sub": "sensor-${SerialNumber}"},
                             "AttributePayload": {"serial": {"Ref": "SerialNumber"}}}},
    "certificate": {"Type": "AWS::IoT::Certificate",
                    "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"}},
    "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": {
      "Version": "2012-10-17",
      "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect",
         "Resource": {"Fn::Sub": "arn:aws:iot:${AWS::Region}:${AWS::AccountId}:client/${!iot:Connection.Thing.ThingName}"}},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
         "Resource": {"Fn::Sub": "arn:aws:iot:${AWS::Region}:${AWS::AccountId}:topic/$aws/things/${!iot:Connection.Thing.ThingName}/shadow/*"}},
        {"Effect": "Allow", "Action": "iot:Subscribe",
         "Resource": {"Fn::Sub": "arn:aws:iot:${AWS::Region}:${AWS::AccountId}:topicfilter/$aws/things/${!iot:Connection.Thing.ThingName}/shadow/*"}}
      ]}}}
  },
  "DeviceConfiguration": {"site": {"Ref": "Site"}}
}"#;

struct Harness {
    emulator: Emulator,
    _data: TempDir,
    time: ManualClock,
}

impl Harness {
    /// An emulator with the test template (and `hook`) on a clock the test moves.
    async fn start(hook: Option<&str>) -> Harness {
        init_tracing();
        let data = tempfile::tempdir().expect("data dir");
        let (clock, time) = Clock::manual(SystemTime::now());
        let config = EmulatorConfig::new(data.path())
            .with_bind("127.0.0.1:0".parse().expect("address"))
            .with_clock(clock)
            // The manual clock stands still: a CONNECT rate would refuse every
            // reconnection of a client id.
            .with_quotas(Quotas::aws().without_rates());
        let emulator = Emulator::start(config).await.expect("start emulator");
        emulator
            .control()
            .create_template(TEMPLATE, TEMPLATE_BODY, None, hook)
            .expect("template");
        Harness {
            emulator,
            _data: data,
            time,
        }
    }

    /// A claim certificate of `template`.
    fn claim(&self, template: &str) -> DeviceCredentials {
        self.emulator
            .control()
            .create_claim(template)
            .expect("claim")
            .credentials
    }

    /// DescribeCertificate of `id`, or `None` when it is not registered.
    fn certificate(&self, id: &str) -> Option<CertificateDescription> {
        let described = self
            .emulator
            .control()
            .describe_certificate(DescribeCertificateRequest {
                certificate_id: id.into(),
            });
        match described {
            Ok(d) => Some(d.certificate_description),
            Err(e) if e.code() == ErrorCode::ResourceNotFound => None,
            Err(e) => panic!("registry: {e}"),
        }
    }

    /// Trusts the emulator's CA and reaches it over MQTT 5.
    fn to_emulator(&self, builder: ClientBuilder) -> ClientBuilder {
        builder
            .endpoint("127.0.0.1")
            .port(self.emulator.local_addr().port())
            .amazon_root_cas(false)
            .root_ca_pem(self.emulator.ca_pem())
            .expect("CA")
            .protocol(ProtocolVersion::V5)
            .initial_connect(1, HANG_GUARD)
    }

    /// The claim connection of a device, as a builder.
    fn claim_builder(&self, client_id: &str, claim: &DeviceCredentials) -> ClientBuilder {
        let builder = Client::builder(client_id)
            .client_cert_pem(&claim.certificate_pem, &claim.private_key_pem)
            .expect("claim certificate");
        self.to_emulator(builder)
    }

    async fn claim_client(&self, client_id: &str, claim: &DeviceCredentials) -> Client {
        within(self.claim_builder(client_id, claim).connect())
            .await
            .expect("the claim connects")
    }
}

async fn within<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(HANG_GUARD, fut)
        .await
        .expect("did not hang")
}

fn parameters(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn a_device_turns_its_claim_into_its_own_thing_and_uses_its_shadow() {
    let h = Harness::start(None).await;
    let claim = h.claim(TEMPLATE);
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("identity");

    let provisioned = within(
        FleetProvisioner::new(TEMPLATE)
            .parameter("SerialNumber", "42")
            .save_to(&saved)
            .provision(h.claim_builder("factory-0042", &claim)),
    )
    .await
    .expect("provisioned");
    assert_eq!(provisioned.thing_name(), "sensor-42");
    assert_eq!(
        provisioned.device_configuration(),
        &parameters(&[("site", "lab")])
    );
    let certificate = h
        .certificate(provisioned.certificate_id())
        .expect("registered");
    assert_eq!(certificate.status, "ACTIVE");
    assert_eq!(certificate.certificate_pem, provisioned.certificate_pem());
    let things = h
        .emulator
        .control()
        .list_principal_things(ListPrincipalThingsRequest {
            principal: certificate.certificate_arn,
            ..Default::default()
        })
        .expect("registry")
        .things;
    assert_eq!(things, ["sensor-42"]);

    // Saved: key private, and loaded back whole on the next boot.
    let files = provisioned.files().expect("saved").clone();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files.private_key)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let loaded = Provisioned::load(&saved).unwrap().expect("saved identity");
    assert_eq!(loaded, provisioned);

    // The new identity: its shadow works, another thing's does not.
    let client = within(h.to_emulator(loaded.client_builder().unwrap()).connect())
        .await
        .expect("the new thing connects");
    assert_eq!(client.client_id(), "sensor-42");
    let shadow = client.shadow();
    let accepted = within(shadow.update_reported(json!({"firmware": "1.0"})))
        .await
        .expect("update accepted");
    assert_eq!(accepted.version, 1);
    let document = within(shadow.get()).await.expect("get accepted");
    assert_eq!(document.state.reported.unwrap()["firmware"], "1.0");
    let other = within(client.thing_shadow("sensor-7", None).get()).await;
    assert!(other.is_err(), "another thing's shadow: {other:?}");
    let err = within(client.publish("dt/sensor-42", "x", QoS::AtLeastOnce))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected, "{err}");
    client.close().await;
}

#[tokio::test]
async fn the_claim_can_do_nothing_but_provision() {
    let h = Harness::start(None).await;
    let claim = h.claim(TEMPLATE);
    let client = h.claim_client("serial-1", &claim).await;
    for topic in ["dt/serial-1", "$aws/things/serial-1/shadow/update"] {
        let err = within(client.publish(topic, "{}", QoS::AtLeastOnce))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Rejected, "{topic}: {err}");
    }
    let err =
        within(client.subscribe("$aws/things/serial-1/shadow/get/accepted", QoS::AtLeastOnce))
            .await
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rejected, "{err}");
    // Another template's topics are not the claim's either.
    let err = within(
        FleetProvisioner::new("other")
            .parameter("SerialNumber", "1")
            .provision_with(&client),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.service_error().map(ServiceError::kind),
        Some(ServiceErrorKind::Client),
        "{err}"
    );
    client.close().await;
}

#[tokio::test]
async fn keys_from_the_service_and_rsa_device_keys_work_too() {
    let h = Harness::start(None).await;
    let claim = h.claim(TEMPLATE);
    for (serial, provisioner) in [
        ("7", FleetProvisioner::new(TEMPLATE).keys_from_service()),
        (
            "8",
            FleetProvisioner::new(TEMPLATE).device_key(KeyType::Rsa2048),
        ),
    ] {
        let provisioned = within(
            provisioner
                .parameter("SerialNumber", serial)
                .provision(h.claim_builder(&format!("serial-{serial}"), &claim)),
        )
        .await
        .expect("provisioned");
        assert_eq!(provisioned.thing_name(), format!("sensor-{serial}"));
        assert!(provisioned.files().is_none(), "not asked to save");
        let client = within(
            h.to_emulator(provisioned.client_builder().unwrap())
                .connect(),
        )
        .await
        .expect("connects");
        client.close().await;
    }
}

#[tokio::test]
async fn every_refusal_is_a_typed_error_with_aws_code_and_message() {
    let hook = r#"case "$(cat)" in *'"SerialNumber":"13"'*) echo '{"allowProvisioning": false}';; *) echo '{"allowProvisioning": true}';; esac"#;
    let h = Harness::start(Some(hook)).await;
    let claim = h.claim(TEMPLATE);
    let client = h.claim_client("serial-x", &claim).await;
    let code = |e: &ProvisioningError| (e.status_code(), e.error_code().map(str::to_owned));

    // A parameter the template needs is missing.
    let err = within(FleetProvisioner::new(TEMPLATE).provision_with(&client))
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        (Some(400), Some("InvalidParameters".into())),
        "{err}"
    );
    assert!(err.error_message().unwrap().contains("SerialNumber"));

    // The hook refuses serial 13.
    let err = within(
        FleetProvisioner::new(TEMPLATE)
            .parameter("SerialNumber", "13")
            .provision_with(&client),
    )
    .await
    .unwrap_err();
    assert_eq!(
        code(&err),
        (Some(403), Some("AccessDenied".into())),
        "{err}"
    );
    assert!(err.to_string().contains("pre-provisioning hook"), "{err}");

    let identity = IdentityClient::new(&client);
    // A malformed CSR.
    let err = within(identity.create_certificate_from_csr("not a CSR"))
        .await
        .unwrap_err();
    assert_eq!(code(&err), (Some(400), Some("InvalidCsr".into())), "{err}");

    // A token works once.
    let created = within(identity.create_keys_and_certificate())
        .await
        .unwrap();
    let token = &created.certificate_ownership_token;
    let serial = parameters(&[("SerialNumber", "20")]);
    within(identity.register_thing(TEMPLATE, token, &serial))
        .await
        .expect("first use");
    let err = within(identity.register_thing(TEMPLATE, token, &serial))
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        (Some(400), Some("InvalidCertificateOwnershipToken".into())),
        "{err}"
    );

    // A token expires after an hour.
    let created = within(identity.create_keys_and_certificate())
        .await
        .unwrap();
    h.time.advance(TOKEN_LIFETIME);
    let err = within(identity.register_thing(
        TEMPLATE,
        &created.certificate_ownership_token,
        &parameters(&[("SerialNumber", "21")]),
    ))
    .await
    .unwrap_err();
    assert_eq!(err.error_code(), Some("InvalidCertificateOwnershipToken"));
    assert!(err.error_message().unwrap().contains("expired"), "{err}");
    assert_eq!(h.certificate(&created.certificate_id), None);
    client.close().await;

    // A template that no longer exists.
    let control = h.emulator.control();
    control
        .create_template("retired", TEMPLATE_BODY, None, None)
        .unwrap();
    let retired_claim = h.claim("retired");
    control
        .delete_provisioning_template(TemplateNameRequest {
            template_name: "retired".into(),
        })
        .expect("template deleted");
    let err = within(
        FleetProvisioner::new("retired")
            .parameter("SerialNumber", "1")
            .provision(h.claim_builder("serial-r", &retired_claim)),
    )
    .await
    .unwrap_err();
    assert_eq!(
        code(&err),
        (Some(404), Some("ResourceNotFound".into())),
        "{err}"
    );
}

#[tokio::test]
async fn a_claim_that_cannot_connect_is_a_connect_error() {
    let h = Harness::start(None).await;
    let claim = h.claim(TEMPLATE);
    h.emulator
        .control()
        .update_certificate(UpdateCertificateRequest {
            certificate_id: claim.certificate_id.clone(),
            new_status: "INACTIVE".into(),
        })
        .unwrap();
    let err = within(
        FleetProvisioner::new(TEMPLATE)
            .parameter("SerialNumber", "1")
            .provision(h.claim_builder("serial-1", &claim)),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ProvisioningError::Connect(_)), "{err}");
}
