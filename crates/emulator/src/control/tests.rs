//! `iotcore thing create`: a thing with an attached, active certificate, and the files a
//! device needs.

use std::fs;
use std::path::Path;

use super::*;
use crate::pki::{DeviceCredentials, KeyAlgorithm};
use crate::store::{CertificateStatus, Store, StoreError};
use crate::things::{DeviceFilesError, write_device_files};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use x509_parser::prelude::{FromDer, X509Certificate};

fn setup(dir: &Path) -> (Store, Control) {
    let control = Control::open(dir, ArnScope::default()).unwrap();
    (control.store.clone(), control)
}

fn create_thing_with_certificate(
    control: &Control,
    name: &str,
    key: KeyAlgorithm,
) -> Result<DeviceCredentials, ControlError> {
    let options = ThingOptions::default().with_key(key);
    Ok(control
        .create_thing_with_certificate(name, &options)?
        .credentials)
}

#[test]
fn created_thing_has_an_active_attached_certificate_signed_by_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (store, control) = setup(dir.path());
    let creds =
        create_thing_with_certificate(&control, "sensor-1", KeyAlgorithm::EcdsaP256).unwrap();

    assert!(store.thing("sensor-1").unwrap().is_some());
    let record = store.certificate(&creds.certificate_id).unwrap().unwrap();
    assert_eq!(record.status, CertificateStatus::Active);
    assert_eq!(record.things, ["sensor-1"]);
    assert_eq!(record.pem, creds.certificate_pem);
    assert_eq!(
        store.thing_principals("sensor-1").unwrap(),
        std::slice::from_ref(&creds.certificate_id)
    );

    let der = CertificateDer::from_pem_slice(creds.certificate_pem.as_bytes()).unwrap();
    let (_, cert) = X509Certificate::from_der(der.as_ref()).unwrap();
    let (_, ca) = X509Certificate::from_der(control.pki().ca_der().as_ref()).unwrap();
    cert.verify_signature(Some(ca.public_key())).unwrap();
    let cn = cert.subject().iter_common_name().next().unwrap();
    assert_eq!(cn.as_str().unwrap(), "sensor-1");
}

#[test]
fn existing_or_invalid_names_register_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, control) = setup(dir.path());
    create_thing_with_certificate(&control, "t", KeyAlgorithm::EcdsaP256).unwrap();

    let err = create_thing_with_certificate(&control, "t", KeyAlgorithm::EcdsaP256).unwrap_err();
    assert!(err.code() == ErrorCode::ResourceAlreadyExists, "{err:?}");
    let err =
        create_thing_with_certificate(&control, "bad name", KeyAlgorithm::Rsa2048).unwrap_err();
    assert!(err.code() == ErrorCode::InvalidRequest, "{err:?}");
    assert_eq!(store.list_certificates().unwrap().len(), 1);
    assert_eq!(store.list_things().unwrap().len(), 1);
}

#[test]
fn store_registration_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let id = "ab".repeat(32);
    store
        .add_certificate(&id, "PEM", CertificateStatus::Inactive)
        .unwrap();
    let err = store
        .create_thing_with_certificate("t", &id, "PEM")
        .unwrap_err();
    assert!(matches!(err, StoreError::CertificateExists(_)), "{err:?}");
    assert_eq!(store.thing("t").unwrap(), None);
    let cert = store.certificate(&id).unwrap().unwrap();
    assert_eq!(cert.status, CertificateStatus::Inactive);
    assert!(cert.things.is_empty());
}

#[cfg(unix)]
#[test]
fn device_files_are_written_with_key_mode_0600_and_no_leftovers() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (_, control) = setup(&dir.path().join("data"));
    let creds = create_thing_with_certificate(&control, "dev-7", KeyAlgorithm::Rsa2048).unwrap();
    let out = dir.path().join("out/certs");
    let files = write_device_files("dev-7", &creds, control.pki().ca_pem(), &out).unwrap();

    assert_eq!(files.certificate, out.join("dev-7.cert.pem"));
    assert_eq!(files.private_key, out.join("dev-7.private.key"));
    assert_eq!(files.root_ca, out.join("root-ca.pem"));
    assert_eq!(
        fs::read_to_string(&files.certificate).unwrap(),
        creds.certificate_pem
    );
    assert_eq!(
        fs::read_to_string(&files.private_key).unwrap(),
        creds.private_key_pem
    );
    assert_eq!(
        fs::read_to_string(&files.root_ca).unwrap(),
        control.pki().ca_pem()
    );
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&files.private_key), 0o600);
    assert_eq!(mode(&files.certificate), 0o644);
    assert_eq!(mode(&files.root_ca), 0o644);

    let mut names: Vec<_> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["dev-7.cert.pem", "dev-7.private.key", "root-ca.pem"]
    );
}

#[test]
fn unwritable_output_directory_is_a_typed_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_, control) = setup(dir.path());
    let creds = create_thing_with_certificate(&control, "d", KeyAlgorithm::EcdsaP256).unwrap();
    let file = tempfile::NamedTempFile::new().unwrap();
    let err = write_device_files(
        "d",
        &creds,
        control.pki().ca_pem(),
        &file.path().join("out"),
    )
    .unwrap_err();
    match &err {
        DeviceFilesError::WriteFile { path, .. } => assert!(path.starts_with(file.path())),
        other => panic!("unexpected error {other:?}"),
    }
    assert!(err.to_string().starts_with("cannot write "), "{err}");
}

#[test]
fn file_names_must_be_thing_names() {
    let dir = tempfile::tempdir().unwrap();
    let (_, control) = setup(dir.path());
    let creds = create_thing_with_certificate(&control, "d", KeyAlgorithm::EcdsaP256).unwrap();
    let err =
        write_device_files("../escape", &creds, control.pki().ca_pem(), dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            DeviceFilesError::Name(StoreError::InvalidThingName { .. })
        ),
        "{err:?}"
    );
}

fn attributes(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn payload(pairs: &[(&str, &str)], merge: bool) -> Option<AttributePayload> {
    Some(AttributePayload {
        attributes: attributes(pairs),
        merge: Some(merge),
    })
}

fn describe(control: &Control, name: &str) -> DescribeThingResponse {
    control
        .describe_thing(DescribeThingRequest {
            thing_name: name.into(),
        })
        .unwrap()
}

#[test]
fn things_count_versions_and_merge_or_replace_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let (_, control) = setup(dir.path());
    let created = control
        .create_thing(CreateThingRequest {
            thing_name: "t".into(),
            attribute_payload: payload(&[("a", "1"), ("b", "2")], false),
            ..CreateThingRequest::default()
        })
        .unwrap();
    assert_eq!(
        created.thing_arn,
        "arn:aws:iot:us-east-1:123456789012:thing/t"
    );
    assert_eq!(created.thing_id.len(), 36);
    assert_eq!(describe(&control, "t").version, 1);

    let update = |attrs: &[(&str, &str)], merge: bool, expected: Option<i64>| {
        control.update_thing(UpdateThingRequest {
            thing_name: "t".into(),
            attribute_payload: payload(attrs, merge),
            expected_version: expected,
            ..UpdateThingRequest::default()
        })
    };
    update(&[("b", ""), ("c", "3")], true, Some(1)).unwrap();
    let thing = describe(&control, "t");
    assert_eq!(thing.attributes, attributes(&[("a", "1"), ("c", "3")]));
    assert_eq!(thing.version, 2);

    let err = update(&[("z", "9")], false, Some(1)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::VersionConflict);
    assert_eq!(
        describe(&control, "t").version,
        2,
        "a refused update changes nothing"
    );
    update(&[("z", "9")], false, None).unwrap();
    assert_eq!(
        describe(&control, "t").attributes,
        attributes(&[("z", "9")])
    );

    let err = control
        .delete_thing(DeleteThingRequest {
            thing_name: "t".into(),
            expected_version: Some(1),
        })
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::VersionConflict);
    for _ in 0..2 {
        control
            .delete_thing(DeleteThingRequest {
                thing_name: "t".into(),
                expected_version: None,
            })
            .expect("deleting a thing that is gone succeeds, as on AWS");
    }
}

#[test]
fn creating_an_existing_thing_is_idempotent_only_with_the_same_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let (_, control) = setup(dir.path());
    let first = control
        .create_thing(CreateThingRequest::named("t"))
        .unwrap();
    let again = control
        .create_thing(CreateThingRequest::named("t"))
        .unwrap();
    assert_eq!(first, again);
    let err = control
        .create_thing(CreateThingRequest {
            thing_name: "t".into(),
            attribute_payload: payload(&[("a", "1")], false),
            ..CreateThingRequest::default()
        })
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ResourceAlreadyExists);
    assert_eq!(err.resource_id(), Some(first.thing_id.as_str()));
}

#[test]
fn thing_types_gate_things_until_deprecated_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (_, control) = setup(dir.path());
    let typed = |name: &str| {
        control.create_thing(CreateThingRequest {
            thing_name: name.into(),
            thing_type_name: Some("sensor".into()),
            ..CreateThingRequest::default()
        })
    };
    assert_eq!(typed("t1").unwrap_err().code(), ErrorCode::ResourceNotFound);
    control
        .create_thing_type(CreateThingTypeRequest {
            thing_type_name: "sensor".into(),
            ..CreateThingTypeRequest::default()
        })
        .unwrap();
    typed("t1").unwrap();
    let by_type = control
        .list_things(ListThingsRequest {
            thing_type_name: Some("sensor".into()),
            ..ListThingsRequest::default()
        })
        .unwrap();
    assert_eq!(by_type.things.len(), 1);

    let name = || ThingTypeNameRequest {
        thing_type_name: "sensor".into(),
    };
    assert_eq!(
        control.delete_thing_type(name()).unwrap_err().code(),
        ErrorCode::InvalidRequest,
        "not deprecated"
    );
    control
        .deprecate_thing_type(DeprecateThingTypeRequest {
            thing_type_name: "sensor".into(),
            undo_deprecate: None,
        })
        .unwrap();
    assert!(
        control
            .describe_thing_type(name())
            .unwrap()
            .thing_type_metadata
            .deprecated
    );
    assert_eq!(typed("t2").unwrap_err().code(), ErrorCode::InvalidRequest);
    assert_eq!(
        control.delete_thing_type(name()).unwrap_err().code(),
        ErrorCode::InvalidRequest,
        "t1 is still of the type"
    );
    control
        .update_thing(UpdateThingRequest {
            thing_name: "t1".into(),
            remove_thing_type: Some(true),
            ..UpdateThingRequest::default()
        })
        .unwrap();
    control.delete_thing_type(name()).unwrap();
    assert_eq!(
        control.describe_thing_type(name()).unwrap_err().code(),
        ErrorCode::ResourceNotFound
    );
}

#[test]
fn thing_groups_nest_and_list_their_things_recursively() {
    let dir = tempfile::tempdir().unwrap();
    let (_, control) = setup(dir.path());
    let group = |name: &str, parent: Option<&str>| {
        control
            .create_thing_group(CreateThingGroupRequest {
                thing_group_name: name.into(),
                parent_group_name: parent.map(str::to_owned),
                ..CreateThingGroupRequest::default()
            })
            .unwrap();
    };
    group("site", None);
    group("floor-1", Some("site"));
    for thing in ["a", "b"] {
        control
            .create_thing(CreateThingRequest::named(thing))
            .unwrap();
    }
    let add = |group: &str, thing: &str| ThingGroupMembershipRequest {
        thing_group_name: Some(group.into()),
        thing_name: Some(thing.into()),
        ..ThingGroupMembershipRequest::default()
    };
    control.add_thing_to_thing_group(add("site", "a")).unwrap();
    control
        .add_thing_to_thing_group(ThingGroupMembershipRequest {
            thing_group_arn: Some(control.arn("thinggroup", "floor-1")),
            thing_arn: Some(control.arn("thing", "b")),
            ..ThingGroupMembershipRequest::default()
        })
        .unwrap();
    let things = |recursive| {
        control
            .list_things_in_thing_group(ListThingsInThingGroupRequest {
                thing_group_name: "site".into(),
                recursive: Some(recursive),
                ..ListThingsInThingGroupRequest::default()
            })
            .unwrap()
            .things
    };
    assert_eq!(things(false), ["a"]);
    assert_eq!(things(true), ["a", "b"]);
    let floor = control
        .describe_thing_group(DescribeThingGroupRequest {
            thing_group_name: "floor-1".into(),
        })
        .unwrap();
    assert_eq!(
        floor.thing_group_metadata.parent_group_name.as_deref(),
        Some("site")
    );
    assert_eq!(
        floor.thing_group_metadata.root_to_parent_thing_groups[0].group_name,
        "site"
    );
    let delete = |name: &str| {
        control.delete_thing_group(DeleteThingGroupRequest {
            thing_group_name: name.into(),
            expected_version: None,
        })
    };
    assert_eq!(
        delete("site").unwrap_err().code(),
        ErrorCode::DeleteConflict
    );
    control
        .remove_thing_from_thing_group(add("site", "a"))
        .unwrap();
    assert!(things(false).is_empty());
    delete("floor-1").unwrap();
    delete("site").unwrap();
}

#[test]
fn list_pages_cover_every_thing_once() {
    let dir = tempfile::tempdir().unwrap();
    let (_, control) = setup(dir.path());
    for i in 0..7 {
        control
            .create_thing(CreateThingRequest::named(&format!("t{i}")))
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = control
            .list_things(ListThingsRequest {
                next_token: token,
                max_results: Some(3),
                ..ListThingsRequest::default()
            })
            .unwrap();
        seen.extend(page.things.into_iter().map(|t| t.thing_name));
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, ["t0", "t1", "t2", "t3", "t4", "t5", "t6"]);
}

#[test]
fn certificates_created_by_the_control_plane_are_described_attached_and_deleted_by_aws_rules() {
    let dir = tempfile::tempdir().unwrap();
    let (_, control) = setup(dir.path());
    let created = control
        .create_keys_and_certificate(CreateKeysAndCertificateRequest {
            set_as_active: Some(true),
        })
        .unwrap();
    assert!(created.key_pair.private_key.contains("PRIVATE KEY"));
    assert!(created.key_pair.public_key.contains("PUBLIC KEY"));
    let described = control
        .describe_certificate(DescribeCertificateRequest {
            certificate_id: created.certificate_id.clone(),
        })
        .unwrap()
        .certificate_description;
    assert_eq!(described.status, "ACTIVE");
    assert_eq!(described.certificate_mode, "DEFAULT");
    assert!(described.validity.not_after > described.validity.not_before);

    control
        .create_thing(CreateThingRequest::named("t"))
        .unwrap();
    control
        .create_policy(CreatePolicyRequest {
            policy_name: "p".into(),
            policy_document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}"#.into(),
            tags: None,
        })
        .unwrap();
    let target = || PolicyTargetRequest {
        policy_name: "p".into(),
        target: created.certificate_arn.clone(),
    };
    control.attach_policy(target()).unwrap();
    control
        .attach_thing_principal(ThingPrincipalRequest {
            thing_name: "t".into(),
            principal: created.certificate_arn.clone(),
            thing_principal_type: None,
        })
        .unwrap();
    let attached = control
        .list_attached_policies(ListAttachedPoliciesRequest {
            target: created.certificate_arn.clone(),
            ..ListAttachedPoliciesRequest::default()
        })
        .unwrap();
    assert_eq!(attached.policies[0].policy_name, "p");
    assert_eq!(
        control
            .list_principal_things(ListPrincipalThingsRequest {
                principal: created.certificate_arn.clone(),
                ..ListPrincipalThingsRequest::default()
            })
            .unwrap()
            .things,
        ["t"]
    );

    let delete = |force| {
        control.delete_certificate(DeleteCertificateRequest {
            certificate_id: created.certificate_id.clone(),
            force_delete: Some(force),
        })
    };
    assert_eq!(
        delete(false).unwrap_err().code(),
        ErrorCode::CertificateState
    );
    control
        .update_certificate(UpdateCertificateRequest {
            certificate_id: created.certificate_id.clone(),
            new_status: "INACTIVE".into(),
        })
        .unwrap();
    assert_eq!(
        delete(true).unwrap_err().code(),
        ErrorCode::DeleteConflict,
        "thing attached"
    );
    control
        .detach_thing_principal(ThingPrincipalRequest {
            thing_name: "t".into(),
            principal: created.certificate_arn.clone(),
            thing_principal_type: None,
        })
        .unwrap();
    delete(true).expect("forceDelete detaches the policy");
    assert_eq!(
        control
            .describe_certificate(DescribeCertificateRequest {
                certificate_id: created.certificate_id.clone(),
            })
            .unwrap_err()
            .code(),
        ErrorCode::ResourceNotFound
    );
}

#[test]
fn registering_a_foreign_certificate_needs_register_without_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (_, control) = setup(dir.path());
    let key = rcgen::KeyPair::generate().unwrap();
    let foreign = rcgen::CertificateParams::new(vec!["x".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap()
        .pem();
    let request = || RegisterCertificateRequest {
        certificate_pem: foreign.clone(),
        status: Some("ACTIVE".into()),
        ..RegisterCertificateRequest::default()
    };
    let err = control.register_certificate(request()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::CertificateValidation);
    let registered = control.register_certificate_without_ca(request()).unwrap();
    let err = control
        .register_certificate_without_ca(request())
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ResourceAlreadyExists);
    let described = control
        .describe_certificate(DescribeCertificateRequest {
            certificate_id: registered.certificate_id,
        })
        .unwrap()
        .certificate_description;
    assert_eq!(described.certificate_mode, "SNI_ONLY");
    let err = control
        .register_certificate_without_ca(RegisterCertificateRequest {
            certificate_pem: "not a certificate".into(),
            ..RegisterCertificateRequest::default()
        })
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::CertificateValidation);
}

#[test]
fn policy_versions_follow_aws_rules() {
    let dir = tempfile::tempdir().unwrap();
    let (_, control) = setup(dir.path());
    let document = |action: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"{action}","Resource":"*"}}]}}"#
        )
    };
    control
        .create_policy(CreatePolicyRequest {
            policy_name: "p".into(),
            policy_document: document("iot:Connect"),
            tags: None,
        })
        .unwrap();
    let version = control
        .create_policy_version(CreatePolicyVersionRequest {
            policy_name: "p".into(),
            policy_document: document("iot:Publish"),
            set_as_default: Some(true),
        })
        .unwrap();
    assert_eq!(version.policy_version_id, "2");
    let policy = control
        .get_policy(PolicyNameRequest {
            policy_name: "p".into(),
        })
        .unwrap();
    assert_eq!(policy.default_version_id, "2");
    assert!(policy.policy_document.contains("iot:Publish"));
    let versions = control
        .list_policy_versions(PolicyNameRequest {
            policy_name: "p".into(),
        })
        .unwrap();
    assert_eq!(versions.policy_versions.len(), 2);
    let err = control
        .delete_policy(PolicyNameRequest {
            policy_name: "p".into(),
        })
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::DeleteConflict);
    let err = control
        .create_policy_version(CreatePolicyVersionRequest {
            policy_name: "p".into(),
            policy_document: "{".into(),
            set_as_default: None,
        })
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::MalformedPolicy);
}

#[test]
fn changes_are_announced_and_reads_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let changes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&changes);
    let base = Control::open(dir.path(), ArnScope::default()).unwrap();
    let control = Control::new(
        base.store.clone(),
        std::sync::Arc::clone(&base.pki),
        ArnScope::default(),
        "localhost".into(),
        Some(std::sync::Arc::new(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        })),
    );
    let count = || changes.load(std::sync::atomic::Ordering::SeqCst);
    control
        .create_thing(CreateThingRequest::named("t"))
        .unwrap();
    assert_eq!(count(), 1);
    describe(&control, "t");
    control.list_things(ListThingsRequest::default()).unwrap();
    assert_eq!(count(), 1);
    let created = control
        .create_keys_and_certificate(CreateKeysAndCertificateRequest::default())
        .unwrap();
    control
        .update_certificate(UpdateCertificateRequest {
            certificate_id: created.certificate_id,
            new_status: "ACTIVE".into(),
        })
        .unwrap();
    assert_eq!(count(), 3);
}
