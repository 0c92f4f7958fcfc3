//! `iotcore thing create`: a thing with an attached, active certificate, and the files a
//! device needs.

use std::fs;
use std::path::Path;

use iotcore_emulator::pki::{KeyAlgorithm, Pki};
use iotcore_emulator::store::{CertificateStatus, Store, StoreError};
use iotcore_emulator::things::{
    ThingSetupError, create_thing_with_certificate, write_device_files,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use x509_parser::prelude::{FromDer, X509Certificate};

fn setup(dir: &Path) -> (Store, Pki) {
    (Store::open(dir).unwrap(), Pki::load_or_create(dir).unwrap())
}

#[test]
fn created_thing_has_an_active_attached_certificate_signed_by_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (store, pki) = setup(dir.path());
    let creds =
        create_thing_with_certificate(&store, &pki, "sensor-1", KeyAlgorithm::EcdsaP256).unwrap();

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
    let (_, ca) = X509Certificate::from_der(pki.ca_der().as_ref()).unwrap();
    cert.verify_signature(Some(ca.public_key())).unwrap();
    let cn = cert.subject().iter_common_name().next().unwrap();
    assert_eq!(cn.as_str().unwrap(), "sensor-1");
}

#[test]
fn existing_or_invalid_names_register_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, pki) = setup(dir.path());
    create_thing_with_certificate(&store, &pki, "t", KeyAlgorithm::EcdsaP256).unwrap();

    let err =
        create_thing_with_certificate(&store, &pki, "t", KeyAlgorithm::EcdsaP256).unwrap_err();
    assert!(
        matches!(err, ThingSetupError::Store(StoreError::ThingExists(_))),
        "{err:?}"
    );
    let err =
        create_thing_with_certificate(&store, &pki, "bad name", KeyAlgorithm::Rsa2048).unwrap_err();
    assert!(
        matches!(
            err,
            ThingSetupError::Store(StoreError::InvalidThingName { .. })
        ),
        "{err:?}"
    );
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
    let (store, pki) = setup(&dir.path().join("data"));
    let creds =
        create_thing_with_certificate(&store, &pki, "dev-7", KeyAlgorithm::Rsa2048).unwrap();
    let out = dir.path().join("out/certs");
    let files = write_device_files("dev-7", &creds, pki.ca_pem(), &out).unwrap();

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
    assert_eq!(fs::read_to_string(&files.root_ca).unwrap(), pki.ca_pem());
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
    let (store, pki) = setup(dir.path());
    let creds = create_thing_with_certificate(&store, &pki, "d", KeyAlgorithm::EcdsaP256).unwrap();
    let file = tempfile::NamedTempFile::new().unwrap();
    let err = write_device_files("d", &creds, pki.ca_pem(), &file.path().join("out")).unwrap_err();
    match &err {
        ThingSetupError::WriteFile { path, .. } => assert!(path.starts_with(file.path())),
        other => panic!("unexpected error {other:?}"),
    }
    assert!(err.to_string().starts_with("cannot write "), "{err}");
}

#[test]
fn file_names_must_be_thing_names() {
    let dir = tempfile::tempdir().unwrap();
    let (store, pki) = setup(dir.path());
    let creds = create_thing_with_certificate(&store, &pki, "d", KeyAlgorithm::EcdsaP256).unwrap();
    let err = write_device_files("../escape", &creds, pki.ca_pem(), dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            ThingSetupError::Store(StoreError::InvalidThingName { .. })
        ),
        "{err:?}"
    );
}
