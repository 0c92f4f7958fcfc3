//! A throw-away certificate authority for TLS tests that do not involve the emulator.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tempfile::TempDir;

use crate::error::{Error, Result};

/// A certificate and its private key, both PEM files on disk.
#[derive(Debug, Clone)]
pub struct CertFiles {
    common_name: String,
    cert: PathBuf,
    key: PathBuf,
}

impl CertFiles {
    /// The certificate's subject common name (for client certificates: what Mosquitto uses as the
    /// username).
    pub fn common_name(&self) -> &str {
        &self.common_name
    }

    /// Path of the PEM certificate.
    pub fn cert(&self) -> &Path {
        &self.cert
    }

    /// Path of the PEM private key (PKCS#8, ECDSA P-256).
    pub fn key(&self) -> &Path {
        &self.key
    }
}

/// A test PKI in a temporary directory: a CA, a server certificate for `localhost` and
/// `127.0.0.1`, and client certificates, all signed by the CA.
///
/// Keys are ECDSA P-256. The directory is deleted when the value is dropped, so keep it alive as
/// long as a broker or client uses the files.
pub struct TestPki {
    dir: TempDir,
    ca: Issuer<'static, KeyPair>,
    ca_pem: String,
    ca_path: PathBuf,
    server: CertFiles,
    client: CertFiles,
    issued: AtomicUsize,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki")
            .field("dir", &self.dir.path())
            .field("server", &self.server)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl TestPki {
    /// Common name of the client certificate made by [`TestPki::generate`].
    pub const DEFAULT_CLIENT: &'static str = "test-client";

    /// Generates the CA, the server certificate and a client certificate named
    /// [`TestPki::DEFAULT_CLIENT`], and writes them to a new temporary directory.
    pub fn generate() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("iotcore-pki-")
            .tempdir()
            .map_err(|e| Error::io("creating a temporary directory in", std::env::temp_dir(), e))?;

        let ca_key = new_key("CA key")?;
        let mut ca_params = params("CA", Vec::new(), "iotcore test CA")?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_pem = ca_params
            .self_signed(&ca_key)
            .map_err(|source| certificate_error("CA certificate", source))?
            .pem();
        let ca_path = dir.path().join("ca.pem");
        write(&ca_path, &ca_pem)?;
        let ca = Issuer::new(ca_params, ca_key);

        let server = issue(
            &ca,
            dir.path(),
            "server",
            "localhost",
            vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        let client = issue(
            &ca,
            dir.path(),
            "client-0",
            Self::DEFAULT_CLIENT,
            Vec::new(),
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        Ok(TestPki {
            dir,
            ca,
            ca_pem,
            ca_path,
            server,
            client,
            issued: AtomicUsize::new(1),
        })
    }

    /// The temporary directory holding every file of this PKI.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Path of the CA certificate (PEM): the trust anchor for both servers and clients.
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// The CA certificate, PEM-encoded.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The server certificate (subject alternative names `localhost` and `127.0.0.1`).
    pub fn server(&self) -> &CertFiles {
        &self.server
    }

    /// The client certificate with common name [`TestPki::DEFAULT_CLIENT`].
    pub fn client(&self) -> &CertFiles {
        &self.client
    }

    /// Issues another client certificate with the given subject common name.
    ///
    /// Each call writes new files, so two certificates with the same name can coexist.
    pub fn issue_client(&self, common_name: &str) -> Result<CertFiles> {
        let n = self.issued.fetch_add(1, Ordering::Relaxed);
        let stem = format!("client-{n}");
        issue(
            &self.ca,
            self.dir.path(),
            &stem,
            common_name,
            Vec::new(),
            ExtendedKeyUsagePurpose::ClientAuth,
        )
    }
}

fn issue(
    ca: &Issuer<'static, KeyPair>,
    dir: &Path,
    stem: &str,
    common_name: &str,
    subject_alt_names: Vec<String>,
    usage: ExtendedKeyUsagePurpose,
) -> Result<CertFiles> {
    let what = format!("certificate for {common_name:?}");
    let key = new_key(&what)?;
    let mut params = params(&what, subject_alt_names, common_name)?;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    let cert = params
        .signed_by(&key, ca)
        .map_err(|source| certificate_error(&what, source))?;
    let files = CertFiles {
        common_name: common_name.to_owned(),
        cert: dir.join(format!("{stem}.pem")),
        key: dir.join(format!("{stem}.key")),
    };
    write(&files.cert, &cert.pem())?;
    write(&files.key, &key.serialize_pem())?;
    Ok(files)
}

fn params(
    what: &str,
    subject_alt_names: Vec<String>,
    common_name: &str,
) -> Result<CertificateParams> {
    let mut params = CertificateParams::new(subject_alt_names)
        .map_err(|source| certificate_error(what, source))?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    Ok(params)
}

fn new_key(what: &str) -> Result<KeyPair> {
    KeyPair::generate().map_err(|source| certificate_error(&format!("key for {what}"), source))
}

fn certificate_error(what: &str, source: rcgen::Error) -> Error {
    Error::Certificate {
        what: what.to_owned(),
        source,
    }
}

fn write(path: &Path, contents: &str) -> Result<()> {
    std::fs::write(path, contents).map_err(|e| Error::io("writing", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_exist_and_are_pem() {
        let pki = TestPki::generate().unwrap();
        let extra = pki.issue_client("thing-1").unwrap();
        assert_eq!(extra.common_name(), "thing-1");
        assert_eq!(pki.client().common_name(), TestPki::DEFAULT_CLIENT);
        for (path, label) in [
            (pki.ca_path(), "CERTIFICATE"),
            (pki.server().cert(), "CERTIFICATE"),
            (pki.server().key(), "PRIVATE KEY"),
            (pki.client().cert(), "CERTIFICATE"),
            (extra.cert(), "CERTIFICATE"),
            (extra.key(), "PRIVATE KEY"),
        ] {
            let text = std::fs::read_to_string(path).unwrap();
            assert!(
                text.starts_with(&format!("-----BEGIN {label}-----")),
                "{} is not a PEM {label}",
                path.display()
            );
        }
        assert_ne!(extra.cert(), pki.client().cert());
    }
}
