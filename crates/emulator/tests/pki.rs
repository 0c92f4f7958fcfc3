//! The emulator's PKI: files on disk, restarts, damaged files, and certificates that
//! real TLS verifiers (rustls/webpki) accept.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use iotcore_emulator::pki::{KeyAlgorithm, Pki, PkiError, PkiOptions, certificate_id};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};
use x509_parser::prelude::{FromDer, X509Certificate};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn roots(pki: &Pki) -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca_der().clone()).unwrap();
    Arc::new(roots)
}

fn pem_cert(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

fn server_name_accepted(pki: &Pki, name: &str) -> bool {
    let verifier = WebPkiServerVerifier::builder_with_provider(roots(pki), provider())
        .build()
        .unwrap();
    let chain = pki.server_cert_chain();
    verifier
        .verify_server_cert(
            &chain[0],
            &chain[1..],
            &ServerName::try_from(name.to_owned()).unwrap(),
            &[],
            UnixTime::now(),
        )
        .is_ok()
}

fn client_cert_accepted(pki: &Pki, cert_pem: &str) -> Result<(), rustls::Error> {
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(pki), provider())
        .build()
        .unwrap();
    verifier
        .verify_client_cert(&pem_cert(cert_pem), &[], UnixTime::now())
        .map(|_| ())
}

fn common_name(cert_pem: &str) -> String {
    let der = pem_cert(cert_pem);
    let (_, cert) = X509Certificate::from_der(der.as_ref()).unwrap();
    cert.subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[test]
fn first_start_writes_ca_and_server_files_with_private_keys_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    Pki::load_or_create(dir.path()).unwrap();
    let pki_dir = dir.path().join("pki");
    assert_eq!(mode(&pki_dir.join("ca.key")), 0o600);
    assert_eq!(mode(&pki_dir.join("server.key")), 0o600);
    assert_eq!(mode(&pki_dir.join("ca.pem")), 0o644);
    assert_eq!(mode(&pki_dir.join("server.pem")), 0o644);
    let mut names: Vec<_> = fs::read_dir(&pki_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [".lock", "ca.key", "ca.pem", "server.key", "server.pem"]
    );
}

#[test]
fn ca_is_a_p256_root_named_for_the_emulator() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path()).unwrap();
    assert_eq!(common_name(pki.ca_pem()), "iotcore emulator root CA");
    let (_, ca) = X509Certificate::from_der(pki.ca_der().as_ref()).unwrap();
    assert!(ca.is_ca());
    assert!(ca.key_usage().unwrap().unwrap().value.key_cert_sign());
    let years = (ca.validity().not_after.timestamp() - ca.validity().not_before.timestamp())
        / (365 * 24 * 3600);
    assert_eq!(years, 10);
}

#[test]
fn restart_loads_the_same_ca_and_server_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let first = Pki::load_or_create(dir.path()).unwrap();
    let second = Pki::load_or_create(dir.path()).unwrap();
    assert_eq!(first.ca_pem(), second.ca_pem());
    assert_eq!(first.server_cert_chain(), second.server_cert_chain());
    assert_eq!(
        first.server_private_key().secret_der(),
        second.server_private_key().secret_der()
    );
}

#[test]
fn device_certificate_issued_before_a_restart_still_verifies_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let creds = Pki::load_or_create(dir.path())
        .unwrap()
        .issue_device_certificate("sensor-1", KeyAlgorithm::EcdsaP256)
        .unwrap();
    let reloaded = Pki::load_or_create(dir.path()).unwrap();
    client_cert_accepted(&reloaded, &creds.certificate_pem).unwrap();
}

#[test]
fn server_certificate_covers_localhost_and_loopback_addresses_only_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path()).unwrap();
    for name in ["localhost", "127.0.0.1", "::1"] {
        assert!(server_name_accepted(&pki, name), "{name} rejected");
    }
    assert!(!server_name_accepted(&pki, "iot.example.com"));
    assert_eq!(pki.server_names(), ["127.0.0.1", "::1", "localhost"]);
}

#[test]
fn changed_extra_names_reissue_the_server_certificate_under_the_same_ca() {
    let dir = tempfile::tempdir().unwrap();
    let before = Pki::load_or_create(dir.path()).unwrap();
    let options = PkiOptions::with_extra_server_names(["iot.example.com", "10.1.2.3"]);
    let after = Pki::load_or_create_with(dir.path(), &options).unwrap();
    assert_eq!(before.ca_pem(), after.ca_pem());
    assert_ne!(before.server_cert_chain(), after.server_cert_chain());
    assert!(server_name_accepted(&after, "iot.example.com"));
    assert!(server_name_accepted(&after, "10.1.2.3"));
    assert!(server_name_accepted(&after, "localhost"));

    // Same names again (different order and case): the certificate is kept.
    let options = PkiOptions::with_extra_server_names(["10.1.2.3", "IOT.example.com"]);
    let again = Pki::load_or_create_with(dir.path(), &options).unwrap();
    assert_eq!(after.server_cert_chain(), again.server_cert_chain());
}

#[test]
fn loading_with_default_names_keeps_a_certificate_with_extra_names() {
    let dir = tempfile::tempdir().unwrap();
    let options = PkiOptions::with_extra_server_names(["iot.example.com"]);
    let emulator = Pki::load_or_create_with(dir.path(), &options).unwrap();
    // What `iotcore thing create` does while the emulator runs.
    let tool = Pki::load_or_create(dir.path()).unwrap();
    assert_eq!(emulator.server_cert_chain(), tool.server_cert_chain());
    assert!(server_name_accepted(&tool, "iot.example.com"));
}

#[test]
fn damaged_server_certificate_is_issued_again() {
    let dir = tempfile::tempdir().unwrap();
    let before = Pki::load_or_create(dir.path()).unwrap();
    fs::write(dir.path().join("pki/server.pem"), b"garbage").unwrap();
    let after = Pki::load_or_create(dir.path()).unwrap();
    assert_ne!(before.server_cert_chain(), after.server_cert_chain());
    assert!(server_name_accepted(&after, "localhost"));
}

#[test]
fn invalid_extra_server_name_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let options = PkiOptions::with_extra_server_names(["bad name"]);
    let err = Pki::load_or_create_with(dir.path(), &options).unwrap_err();
    assert!(matches!(err, PkiError::InvalidServerName { ref name } if name == "bad name"));
}

#[test]
fn corrupt_ca_certificate_is_a_typed_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    Pki::load_or_create(dir.path()).unwrap();
    let ca = dir.path().join("pki/ca.pem");
    fs::write(
        &ca,
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let err = Pki::load_or_create(dir.path()).unwrap_err();
    match &err {
        PkiError::CorruptCa { path, .. } => assert_eq!(path, &ca),
        other => panic!("unexpected error {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains(&ca.display().to_string()), "{message}");
    assert!(message.contains("delete the directory"), "{message}");
}

#[test]
fn corrupt_ca_key_is_a_typed_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    Pki::load_or_create(dir.path()).unwrap();
    let key = dir.path().join("pki/ca.key");
    fs::write(&key, b"not a key").unwrap();
    let err = Pki::load_or_create(dir.path()).unwrap_err();
    assert!(
        matches!(err, PkiError::CorruptCa { ref path, .. } if path == &key),
        "{err:?}"
    );
}

#[test]
fn ca_key_from_another_ca_is_rejected() {
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    Pki::load_or_create(one.path()).unwrap();
    Pki::load_or_create(two.path()).unwrap();
    fs::copy(two.path().join("pki/ca.key"), one.path().join("pki/ca.key")).unwrap();
    let err = Pki::load_or_create(one.path()).unwrap_err();
    assert!(err.to_string().contains("does not belong"), "{err}");
}

#[test]
fn missing_ca_key_is_reported_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let original = Pki::load_or_create(dir.path()).unwrap();
    fs::remove_file(dir.path().join("pki/ca.key")).unwrap();
    let err = Pki::load_or_create(dir.path()).unwrap_err();
    assert!(
        matches!(err, PkiError::IncompleteCa { ref missing, .. } if missing.ends_with("ca.key")),
        "{err:?}"
    );
    let on_disk = fs::read_to_string(dir.path().join("pki/ca.pem")).unwrap();
    assert_eq!(on_disk, original.ca_pem());
}

#[test]
fn data_dir_below_a_regular_file_is_reported_as_not_writable() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let data_dir = file.path().join("sub");
    let err = Pki::load_or_create(&data_dir).unwrap_err();
    assert!(matches!(err, PkiError::DataDirUnwritable { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "data directory {} is not writable: ",
            data_dir.display()
        )),
        "{message}"
    );
}

#[test]
fn ecdsa_device_certificate_chains_to_the_ca_for_client_auth() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path()).unwrap();
    let creds = pki
        .issue_device_certificate("sensor-1", KeyAlgorithm::EcdsaP256)
        .unwrap();
    client_cert_accepted(&pki, &creds.certificate_pem).unwrap();
    assert_eq!(common_name(&creds.certificate_pem), "sensor-1");
    assert_eq!(
        creds.certificate_id,
        certificate_id(&pem_cert(&creds.certificate_pem))
    );
    assert_eq!(creds.certificate_id.len(), 64);
    let key = PrivateKeyDer::from_pem_slice(creds.private_key_pem.as_bytes()).unwrap();
    provider().key_provider.load_private_key(key).unwrap();
    assert!(!format!("{creds:?}").contains("PRIVATE KEY"));
}

#[test]
fn rsa_2048_device_certificate_chains_to_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path()).unwrap();
    let creds = pki
        .issue_device_certificate("rsa-thing", KeyAlgorithm::Rsa2048)
        .unwrap();
    client_cert_accepted(&pki, &creds.certificate_pem).unwrap();
    let der = pem_cert(&creds.certificate_pem);
    let (_, cert) = X509Certificate::from_der(der.as_ref()).unwrap();
    match cert.public_key().parsed().unwrap() {
        x509_parser::public_key::PublicKey::RSA(rsa) => assert_eq!(rsa.key_size(), 2048),
        other => panic!("expected an RSA key, got {other:?}"),
    }
    let key = PrivateKeyDer::from_pem_slice(creds.private_key_pem.as_bytes()).unwrap();
    provider().key_provider.load_private_key(key).unwrap();
}

#[test]
fn device_certificate_is_valid_one_year_for_client_auth_only() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path()).unwrap();
    let creds = pki
        .issue_device_certificate("t", KeyAlgorithm::EcdsaP256)
        .unwrap();
    let der = pem_cert(&creds.certificate_pem);
    let (_, cert) = X509Certificate::from_der(der.as_ref()).unwrap();
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
    let days = (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp())
        / (24 * 3600);
    assert_eq!(days, 365);
    // A device certificate cannot impersonate the server.
    let verifier = WebPkiServerVerifier::builder_with_provider(roots(&pki), provider())
        .build()
        .unwrap();
    let name = ServerName::try_from("t").unwrap();
    assert!(
        verifier
            .verify_server_cert(&der, &[], &name, &[], UnixTime::now())
            .is_err()
    );
}

#[test]
fn two_device_certificates_for_one_thing_differ() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path()).unwrap();
    let a = pki
        .issue_device_certificate("t", KeyAlgorithm::EcdsaP256)
        .unwrap();
    let b = pki
        .issue_device_certificate("t", KeyAlgorithm::EcdsaP256)
        .unwrap();
    assert_ne!(a.certificate_id, b.certificate_id);
}

fn csr_pem(key: &rcgen::KeyPair, cn: Option<&str>) -> String {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    if let Some(cn) = cn {
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
    }
    params.serialize_request(key).unwrap().pem().unwrap()
}

#[test]
fn signed_csr_chains_to_the_ca_and_keeps_the_requested_key_and_name() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path()).unwrap();
    for key in [
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap(),
        rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
            .unwrap(),
    ] {
        let issued = pki.sign_csr(&csr_pem(&key, Some("fleet-device"))).unwrap();
        client_cert_accepted(&pki, &issued.certificate_pem).unwrap();
        assert_eq!(common_name(&issued.certificate_pem), "fleet-device");
        let der = pem_cert(&issued.certificate_pem);
        assert_eq!(issued.certificate_id, certificate_id(&der));
        let (_, cert) = X509Certificate::from_der(der.as_ref()).unwrap();
        assert_eq!(
            cert.public_key().subject_public_key.data.as_ref(),
            key.public_key_raw()
        );
    }
}

#[test]
fn csr_without_common_name_gets_the_aws_default_subject() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path()).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let issued = pki.sign_csr(&csr_pem(&key, None)).unwrap();
    assert_eq!(common_name(&issued.certificate_pem), "AWS IoT Certificate");
}

#[test]
fn signing_the_same_csr_twice_gives_distinct_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path()).unwrap();
    let csr = csr_pem(&rcgen::KeyPair::generate().unwrap(), Some("d"));
    let a = pki.sign_csr(&csr).unwrap();
    let b = pki.sign_csr(&csr).unwrap();
    assert_ne!(a.certificate_id, b.certificate_id);
}

#[test]
fn csr_with_a_bad_signature_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path()).unwrap();
    let csr = csr_pem(&rcgen::KeyPair::generate().unwrap(), Some("d"));
    // Change one base64 character inside the last complete group: those bits belong to
    // the signature value at the end of the DER encoding.
    let mut chars: Vec<char> = csr.chars().collect();
    let end = csr.find("-----END").unwrap();
    let body_end = csr[..end].trim_end().trim_end_matches('=').len();
    let at = body_end - 5;
    chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    let err = pki.sign_csr(&tampered).unwrap_err();
    assert!(
        matches!(err, PkiError::InvalidCsr { ref reason } if reason.contains("signature")),
        "{err:?}"
    );
}

#[test]
fn malformed_csr_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path()).unwrap();
    for input in [
        "",
        "hello",
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
        pki.ca_pem(),
    ] {
        let err = pki.sign_csr(input).unwrap_err();
        assert!(
            matches!(err, PkiError::InvalidCsr { .. }),
            "{input:?}: {err:?}"
        );
    }
}

#[test]
fn csr_with_an_ed25519_key_is_refused_like_aws_does() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path()).unwrap();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let err = pki.sign_csr(&csr_pem(&key, Some("d"))).unwrap_err();
    assert!(matches!(err, PkiError::UnsupportedCsrKey { .. }), "{err:?}");
}

/// Drives a rustls client and server against each other in memory until both finish
/// the handshake or one fails.
fn handshake(
    client: &mut ClientConnection,
    server: &mut ServerConnection,
) -> Result<(), rustls::Error> {
    for _ in 0..20 {
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok(());
        }
        let mut buf = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut buf).unwrap();
        }
        let mut slice = &buf[..];
        while !slice.is_empty() {
            server.read_tls(&mut slice).unwrap();
        }
        server.process_new_packets()?;
        let mut buf = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut buf).unwrap();
        }
        let mut slice = &buf[..];
        while !slice.is_empty() {
            client.read_tls(&mut slice).unwrap();
        }
        client.process_new_packets()?;
    }
    Err(rustls::Error::General("handshake did not finish".into()))
}

#[test]
fn mutual_tls_handshake_succeeds_with_the_server_identity_and_a_device_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path()).unwrap();
    for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa2048] {
        let creds = pki.issue_device_certificate("thing-1", alg).unwrap();
        let client_verifier = WebPkiClientVerifier::builder_with_provider(roots(&pki), provider())
            .build()
            .unwrap();
        let server_config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(pki.server_cert_chain(), pki.server_private_key())
            .unwrap();
        let client_config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots(&pki))
            .with_client_auth_cert(
                vec![pem_cert(&creds.certificate_pem)],
                PrivateKeyDer::from_pem_slice(creds.private_key_pem.as_bytes()).unwrap(),
            )
            .unwrap();
        let mut client = ClientConnection::new(
            Arc::new(client_config),
            ServerName::try_from("localhost").unwrap(),
        )
        .unwrap();
        let mut server = ServerConnection::new(Arc::new(server_config)).unwrap();
        handshake(&mut client, &mut server).unwrap();
        let presented = server.peer_certificates().unwrap();
        assert_eq!(certificate_id(&presented[0]), creds.certificate_id);
    }
}

#[test]
fn expired_ca_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(2010, 1, 1);
    let cert = params.self_signed(&key).unwrap();
    fs::create_dir_all(dir.path().join("pki")).unwrap();
    fs::write(dir.path().join("pki/ca.pem"), cert.pem()).unwrap();
    fs::write(dir.path().join("pki/ca.key"), key.serialize_pem()).unwrap();
    let err = Pki::load_or_create(dir.path()).unwrap_err();
    assert!(matches!(err, PkiError::CaExpired { .. }), "{err:?}");
    assert!(err.to_string().contains("2010"), "{err}");
}

#[test]
fn server_certificate_close_to_expiry_is_issued_again() {
    let dir = tempfile::tempdir().unwrap();
    let before = Pki::load_or_create(dir.path()).unwrap();
    // Replace the server certificate with one for the same key and names that expires
    // in ten days, signed by the real CA.
    let pki_dir = dir.path().join("pki");
    let ca_key =
        rcgen::KeyPair::from_pem(&fs::read_to_string(pki_dir.join("ca.key")).unwrap()).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(before.ca_pem(), ca_key).unwrap();
    let server_key =
        rcgen::KeyPair::from_pem(&fs::read_to_string(pki_dir.join("server.key")).unwrap()).unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into(), "::1".into()])
            .unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(10);
    let short = params.signed_by(&server_key, &issuer).unwrap();
    fs::write(pki_dir.join("server.pem"), short.pem()).unwrap();

    let after = Pki::load_or_create(dir.path()).unwrap();
    assert_ne!(after.server_cert_chain()[0], *short.der());
    let chain = after.server_cert_chain();
    let (_, cert) = X509Certificate::from_der(chain[0].as_ref()).unwrap();
    assert!(cert.validity().not_after.to_datetime() > now + time::Duration::days(300));
}
