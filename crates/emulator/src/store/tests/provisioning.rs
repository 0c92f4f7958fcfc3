//! Fleet provisioning's registry: templates, pending certificates and their
//! ownership tokens, and registrations written all or nothing.

use std::collections::BTreeMap;

use crate::pki::{KeyAlgorithm, Pki};
use crate::store::{
    CertificateStatus, ExistingThing, Override, PolicyRegistration, Registration, Store,
    TemplateError, ThingRegistration,
};

const BODY: &str = r#"{
  "Parameters": {"Serial": {"Type": "String"}},
  "Resources": {
    "thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Ref": "Serial"}}},
    "certificate": {"Type": "AWS::IoT::Certificate",
                    "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}}}
  }
}"#;
const POLICY: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]}"#;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    pki: Pki,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let pki = Pki::load_or_create(dir.path()).unwrap();
    Fixture {
        _dir: dir,
        store,
        pki,
    }
}

impl Fixture {
    /// A pending certificate with token `token` expiring at `expires_at`.
    fn pending(&self, token: &str, expires_at: i64) -> String {
        let issued = self
            .pki
            .issue_device_certificate("AWS IoT Certificate", KeyAlgorithm::EcdsaP256)
            .unwrap();
        self.store
            .add_pending_certificate(
                &issued.certificate_id,
                &issued.certificate_pem,
                token,
                &"c".repeat(64),
                expires_at,
            )
            .unwrap();
        issued.certificate_id
    }
}

fn registration(token: &str, certificate_id: &str, thing: &str) -> Registration {
    Registration {
        token: token.to_owned(),
        certificate_id: certificate_id.to_owned(),
        certificate_status: CertificateStatus::Active,
        thing: ThingRegistration {
            name: thing.to_owned(),
            thing_type: None,
            attributes: Some(BTreeMap::from([("a".to_owned(), "1".to_owned())])),
            existing: ExistingThing::default(),
        },
        policies: vec![PolicyRegistration {
            name: "by-document".to_owned(),
            document: Some(POLICY.to_owned()),
        }],
    }
}

#[test]
fn templates_are_checked_stored_updated_and_deleted() {
    let f = fixture();
    f.store
        .create_template("fleet", BODY, Some("sensors"), Some("true"))
        .unwrap();
    assert!(matches!(
        f.store.create_template("fleet", BODY, None, None),
        Err(TemplateError::Exists(_))
    ));
    assert!(matches!(
        f.store.create_template("bad name", BODY, None, None),
        Err(TemplateError::InvalidName(_))
    ));
    let err = f
        .store
        .create_template("broken", r#"{"Resources": {}}"#, None, None)
        .unwrap_err();
    assert!(
        err.to_string().contains("exactly one AWS::IoT::Thing"),
        "{err}"
    );
    let record = f.store.template("fleet").unwrap().unwrap();
    assert_eq!(record.description.as_deref(), Some("sensors"));
    assert_eq!(record.hook_command.as_deref(), Some("true"));
    f.store.update_template("fleet", BODY, None).unwrap();
    assert_eq!(
        f.store.template("fleet").unwrap().unwrap().hook_command,
        None
    );
    assert!(matches!(
        f.store.update_template("nope", BODY, None),
        Err(TemplateError::NotFound(_))
    ));
    assert_eq!(f.store.list_templates().unwrap().len(), 1);
    assert!(f.store.delete_template("fleet").unwrap());
    assert!(!f.store.delete_template("fleet").unwrap());
}

#[test]
fn a_registration_uses_its_token_once_and_writes_everything() {
    let f = fixture();
    let id = f.pending("tok", i64::MAX);
    assert_eq!(
        f.store
            .ownership_token("tok")
            .unwrap()
            .unwrap()
            .certificate_id,
        id
    );
    f.store
        .register_thing(&registration("tok", &id, "dev-1"))
        .unwrap();
    let certificate = f.store.certificate(&id).unwrap().unwrap();
    assert_eq!(certificate.status, CertificateStatus::Active);
    assert_eq!(certificate.things, ["dev-1"]);
    assert_eq!(
        f.store.certificate_policies(&id).unwrap()[0].name,
        "by-document"
    );
    assert_eq!(f.store.ownership_token("tok").unwrap(), None);
    assert!(matches!(
        f.store.register_thing(&registration("tok", &id, "dev-1")),
        Err(TemplateError::TokenUsed)
    ));
}

#[test]
fn a_failed_registration_changes_nothing() {
    let f = fixture();
    let id = f.pending("tok", i64::MAX);
    let mut bad = registration("tok", &id, "dev-1");
    bad.policies.push(PolicyRegistration {
        name: "missing".to_owned(),
        document: None,
    });
    assert!(f.store.register_thing(&bad).is_err());
    assert_eq!(f.store.thing("dev-1").unwrap(), None);
    assert_eq!(
        f.store.certificate(&id).unwrap().unwrap().status,
        CertificateStatus::PendingActivation
    );
    assert!(
        f.store.ownership_token("tok").unwrap().is_some(),
        "still usable"
    );
    assert!(f.store.policy("by-document").unwrap().is_none());
}

#[test]
fn override_settings_decide_what_happens_to_an_existing_thing() {
    let attributes = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let cases = [
        (
            Override::DoNothing,
            Override::DoNothing,
            Ok((&[("a", "0"), ("b", "2")][..], "old-type")),
        ),
        (
            Override::Merge,
            Override::DoNothing,
            Ok((&[("a", "1"), ("b", "2")][..], "old-type")),
        ),
        (
            Override::Replace,
            Override::Replace,
            Ok((&[("a", "1")][..], "new-type")),
        ),
        (Override::Fail, Override::DoNothing, Err("AttributePayload")),
        (Override::DoNothing, Override::Fail, Err("ThingTypeName")),
    ];
    for (i, (attributes_override, type_override, expected)) in cases.into_iter().enumerate() {
        let f = fixture();
        f.store
            .create_thing(
                "dev-1",
                Some("old-type"),
                &attributes(&[("a", "0"), ("b", "2")]),
            )
            .unwrap();
        let token = format!("tok-{i}");
        let id = f.pending(&token, i64::MAX);
        let mut r = registration(&token, &id, "dev-1");
        r.thing.thing_type = Some("new-type".to_owned());
        r.thing.existing = ExistingThing {
            attributes: attributes_override,
            thing_type: type_override,
        };
        match (f.store.register_thing(&r), expected) {
            (Ok(()), Ok((attrs, thing_type))) => {
                let thing = f.store.thing("dev-1").unwrap().unwrap();
                assert_eq!(thing.attributes, attributes(attrs), "case {i}");
                assert_eq!(thing.thing_type.as_deref(), Some(thing_type), "case {i}");
            }
            (Err(TemplateError::Conflict(why)), Err(needle)) => {
                assert!(why.contains(needle), "case {i}: {why}");
            }
            (result, expected) => panic!("case {i}: {result:?} vs {expected:?}"),
        }
    }
}

#[test]
fn expired_tokens_go_and_take_unused_certificates_with_them() {
    let f = fixture();
    let unused = f.pending("old", 100);
    let attached = f.pending("old-but-attached", 100);
    f.store
        .create_thing("dev-1", None, &BTreeMap::new())
        .unwrap();
    f.store.attach_thing_principal("dev-1", &attached).unwrap();
    let fresh = f.pending("fresh", 200);
    assert_eq!(
        f.store.remove_expired_tokens(99).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        f.store.remove_expired_tokens(100).unwrap(),
        [unused.as_str()]
    );
    assert_eq!(f.store.certificate(&unused).unwrap(), None);
    assert!(f.store.certificate(&attached).unwrap().is_some());
    assert_eq!(f.store.ownership_token("old-but-attached").unwrap(), None);
    assert!(f.store.ownership_token("fresh").unwrap().is_some());
    assert!(f.store.certificate(&fresh).unwrap().is_some());
}
