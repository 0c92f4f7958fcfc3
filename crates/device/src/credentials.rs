//! Client certificates, private keys and root CAs from PEM.
//!
//! Everything is checked when it is loaded, so that a wrong file fails the
//! builder call that names it rather than a TLS handshake later: the key
//! must be unencrypted, loadable (PKCS#8, SEC1 or PKCS#1) and the one the
//! certificate was issued for.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use crate::error::ConfigError;
use crate::transport::tls::crypto_provider;

/// Amazon Root CA 1 (RSA 2048), SHA-256 fingerprint
/// 8E:CD:E6:88:4F:3D:87:B1:12:5B:A3:1A:C3:FC:B1:3D:70:16:DE:7F:57:CC:90:4F:E1:CB:97:C6:AE:98:19:6E.
const AMAZON_ROOT_CA_1: &str = include_str!("roots/AmazonRootCA1.pem");
/// Amazon Root CA 3 (ECC P-256), SHA-256 fingerprint
/// 18:CE:6C:FE:7B:F1:4E:60:B2:E3:47:B8:DF:E8:68:CB:31:D0:2E:BB:3A:DA:27:15:69:F5:03:43:B4:6D:B3:A4.
const AMAZON_ROOT_CA_3: &str = include_str!("roots/AmazonRootCA3.pem");

/// Where a PEM text came from, for error messages.
#[derive(Clone, Debug)]
pub(crate) enum Origin {
    File(PathBuf),
    Memory(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "file {}", path.display()),
            Origin::Memory(what) => write!(f, "the in-memory {what}"),
        }
    }
}

/// A device's identity for mutual TLS: a client certificate chain and its
/// private key, known to match, the key loaded once (TLS configurations share
/// it rather than parse it again: an RSA 2048 key takes ~0.2 ms to load).
///
/// [`ClientBuilder::client_cert_pem_files`](crate::ClientBuilder::client_cert_pem_files)
/// loads one for MQTT; [`greengrass::discover`](crate::greengrass::discover)
/// takes one.
///
/// ```no_run
/// let identity = iotcore::Identity::from_files("dev1.cert.pem".as_ref(), "dev1.private.key".as_ref())?;
/// # Ok::<(), iotcore::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Identity {
    pub(crate) certified: Arc<CertifiedKey>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("certificates", &self.certified.cert.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Identity {
    /// Loads a certificate (chain) and a private key from two PEM files.
    /// Fails if a file cannot be read, holds no certificate or no unencrypted
    /// key (PKCS#8, SEC1 or PKCS#1), or the key is not the certificate's.
    pub fn from_files(cert: &Path, key: &Path) -> Result<Identity, ConfigError> {
        let cert_pem = read_file("client certificate", cert)?;
        let key_pem = read_file("private key", key)?;
        Identity::parse(
            &cert_pem,
            Origin::File(cert.to_owned()),
            &key_pem,
            Origin::File(key.to_owned()),
        )
    }

    /// Loads a certificate (chain) and a private key from PEM text; fails as
    /// [`Identity::from_files`] does.
    pub fn from_pem(cert: &[u8], key: &[u8]) -> Result<Identity, ConfigError> {
        Identity::parse(
            cert,
            Origin::Memory("client certificate"),
            key,
            Origin::Memory("private key"),
        )
    }

    fn parse(
        cert_pem: &[u8],
        cert_origin: Origin,
        key_pem: &[u8],
        key_origin: Origin,
    ) -> Result<Identity, ConfigError> {
        let chain = parse_certificates(cert_pem, &cert_origin)?;
        let key = parse_private_key(key_pem, &key_origin)?;
        let signing_key = crypto_provider()
            .key_provider
            .load_private_key(key)
            .map_err(|e| ConfigError::UnsupportedPrivateKey {
                origin: key_origin.to_string(),
                detail: e.to_string(),
            })?;
        let certified = CertifiedKey::new(chain, signing_key);
        match certified.keys_match() {
            Ok(()) => {}
            // The provider cannot derive this key type's public key: the TLS
            // handshake will tell.
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(rustls::Error::InconsistentKeys(_)) => {
                return Err(ConfigError::KeyDoesNotMatchCertificate {
                    certificate: cert_origin.to_string(),
                    key: key_origin.to_string(),
                });
            }
            Err(e) => {
                return Err(ConfigError::InvalidCertificate {
                    origin: cert_origin.to_string(),
                    detail: e.to_string(),
                });
            }
        }
        Ok(Identity {
            certified: Arc::new(certified),
        })
    }
}

/// Reads root CA certificates from a PEM file (one or more certificates).
pub(crate) fn roots_from_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let pem = read_file("root CA", path)?;
    parse_certificates(&pem, &Origin::File(path.to_owned()))
}

/// Reads root CA certificates from PEM text.
pub(crate) fn roots_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    parse_certificates(pem, &Origin::Memory("root CA"))
}

/// Amazon Root CA 1 and Amazon Root CA 3, which sign the certificates of
/// AWS IoT Core's ATS endpoints.
pub(crate) fn amazon_roots() -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let mut roots = parse_certificates(
        AMAZON_ROOT_CA_1.as_bytes(),
        &Origin::Memory("Amazon Root CA 1"),
    )?;
    roots.extend(parse_certificates(
        AMAZON_ROOT_CA_3.as_bytes(),
        &Origin::Memory("Amazon Root CA 3"),
    )?);
    Ok(roots)
}

fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::ReadFile {
        what,
        path: path.to_owned(),
        source,
    })
}

fn parse_certificates(
    pem: &[u8],
    origin: &Origin,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid_pem(origin, e))?;
    if certs.is_empty() {
        return Err(ConfigError::NoCertificate {
            origin: origin.to_string(),
        });
    }
    Ok(certs)
}

fn parse_private_key(pem: &[u8], origin: &Origin) -> Result<PrivateKeyDer<'static>, ConfigError> {
    if is_encrypted_key(pem) {
        return Err(ConfigError::EncryptedPrivateKey {
            origin: origin.to_string(),
        });
    }
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        pem::Error::NoItemsFound => ConfigError::NoPrivateKey {
            origin: origin.to_string(),
        },
        other => invalid_pem(origin, other),
    })
}

/// PKCS#8 `ENCRYPTED PRIVATE KEY` blocks, and OpenSSL's legacy encrypted
/// PKCS#1/SEC1 blocks (`Proc-Type: 4,ENCRYPTED` header).
fn is_encrypted_key(pem: &[u8]) -> bool {
    let contains = |needle: &[u8]| pem.windows(needle.len()).any(|w| w == needle);
    contains(b"-----BEGIN ENCRYPTED PRIVATE KEY-----") || contains(b"Proc-Type: 4,ENCRYPTED")
}

fn invalid_pem(origin: &Origin, e: pem::Error) -> ConfigError {
    ConfigError::InvalidPem {
        origin: origin.to_string(),
        detail: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha256_hex(data: &[u8]) -> String {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
        digest
            .as_ref()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }

    #[test]
    fn built_in_roots_are_amazon_root_ca_1_and_3_by_fingerprint() {
        let roots = amazon_roots().unwrap();
        let fingerprints: Vec<String> = roots.iter().map(|c| sha256_hex(c.as_ref())).collect();
        assert_eq!(
            fingerprints,
            [
                "8E:CD:E6:88:4F:3D:87:B1:12:5B:A3:1A:C3:FC:B1:3D:70:16:DE:7F:57:CC:90:4F:E1:CB:97:C6:AE:98:19:6E",
                "18:CE:6C:FE:7B:F1:4E:60:B2:E3:47:B8:DF:E8:68:CB:31:D0:2E:BB:3A:DA:27:15:69:F5:03:43:B4:6D:B3:A4",
            ]
        );
    }

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    fn load(cert: &str, key: &str) -> Result<Identity, ConfigError> {
        Identity::from_files(&fixture(cert), &fixture(key))
    }

    #[test]
    fn pkcs1_sec1_and_pkcs8_keys_load_with_their_certificates() {
        load("rsa.cert.pem", "rsa-pkcs1.key.pem").unwrap();
        load("ec.cert.pem", "ec-sec1.key.pem").unwrap();
        load("ec.cert.pem", "ec-pkcs8.key.pem").unwrap();
    }

    #[test]
    fn a_key_that_belongs_to_another_certificate_is_refused_naming_both_files() {
        let err = load("ec.cert.pem", "rsa-pkcs1.key.pem").unwrap_err();
        assert!(
            matches!(err, ConfigError::KeyDoesNotMatchCertificate { .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("ec.cert.pem") && text.contains("rsa-pkcs1.key.pem"),
            "{text}"
        );
    }

    #[test]
    fn encrypted_keys_are_refused_naming_the_file() {
        for key in ["ec-pkcs8-encrypted.key.pem", "rsa-pkcs1-encrypted.key.pem"] {
            let err = load("ec.cert.pem", key).unwrap_err();
            assert!(
                matches!(err, ConfigError::EncryptedPrivateKey { .. }),
                "{err:?}"
            );
            assert!(err.to_string().contains(key), "{err}");
        }
    }

    #[test]
    fn an_unreadable_file_is_reported_with_its_path_and_role() {
        let err = load("ec.cert.pem", "no-such.key.pem").unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::ReadFile {
                    what: "private key",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("no-such.key.pem"), "{err}");
    }

    #[test]
    fn swapped_certificate_and_key_files_are_named_for_what_they_lack() {
        let err = load("ec-sec1.key.pem", "ec-sec1.key.pem").unwrap_err();
        assert!(matches!(err, ConfigError::NoCertificate { .. }), "{err:?}");
        let err = load("ec.cert.pem", "ec.cert.pem").unwrap_err();
        assert!(matches!(err, ConfigError::NoPrivateKey { .. }), "{err:?}");
    }

    #[test]
    fn garbage_pem_is_an_error_not_a_panic() {
        let err = Identity::from_pem(
            b"-----BEGIN CERTIFICATE-----\n%%%%\n-----END CERTIFICATE-----\n",
            b"",
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::InvalidPem { .. }), "{err:?}");
        let cert = std::fs::read(fixture("ec.cert.pem")).unwrap();
        let err = Identity::from_pem(
            &cert,
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap_err();
        assert!(
            matches!(err, ConfigError::UnsupportedPrivateKey { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn encrypted_key_markers_are_recognised() {
        assert!(is_encrypted_key(
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n"
        ));
        assert!(is_encrypted_key(
            b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n"
        ));
        assert!(!is_encrypted_key(b"-----BEGIN PRIVATE KEY-----\nMIIB\n"));
    }
}
