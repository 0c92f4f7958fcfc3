//! The emulator's local PKI: root CA, server certificate, device certificates.
//!
//! AWS IoT Core authenticates devices with X.509 client certificates and presents a
//! server certificate that chains to Amazon's roots. The emulator plays both parts
//! with its own root CA, created on first start under `<data dir>/pki/`:
//!
//! | file | content | mode |
//! |---|---|---|
//! | `ca.pem` | root CA certificate (ECDSA P-256, 10 years) | 0644 |
//! | `ca.key` | root CA private key (PKCS#8) | 0600 |
//! | `server.pem` | TLS server certificate for `localhost`, `127.0.0.1`, `::1` and extra names | 0644 |
//! | `server.key` | TLS server private key (PKCS#8) | 0600 |
//!
//! Later starts load these files. The server certificate is derived data: it is
//! issued again when it does not cover every requested name (a certificate with more
//! names is kept, so a tool that loads the PKI with the default names never undoes an
//! emulator's extra names), when it expires within
//! 30 days, when it was not signed by the current CA, or when its files are missing or
//! unreadable. The CA is never replaced silently, because every device certificate
//! chains to it: a damaged CA file is a [`PkiError`] that says what to do.
//!
//! Device certificates ([`Pki::issue_device_certificate`], [`Pki::sign_csr`]) are valid
//! for one year, carry the extended key usage "TLS client authentication" and are
//! identified, as in AWS, by [`certificate_id`]: the SHA-256 of their DER encoding.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateSigningRequestDer, DnsName, PrivateKeyDer};
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

use crate::fsutil::{MODE_PRIVATE, MODE_PUBLIC, write_atomic};

/// Common name of the emulator's root CA.
pub const CA_COMMON_NAME: &str = "iotcore emulator root CA";

/// Common name given to certificates signed from a CSR that has no common name
/// (the subject AWS IoT puts in the certificates it creates).
pub const DEFAULT_DEVICE_COMMON_NAME: &str = "AWS IoT Certificate";

/// Names the server certificate always covers.
const DEFAULT_SERVER_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

const CA_VALIDITY: Duration = Duration::days(3650);
const LEAF_VALIDITY: Duration = Duration::days(365);
/// Certificates start to be valid this long before their creation, to tolerate clocks
/// that are a little behind the emulator's.
const BACKDATE: Duration = Duration::hours(1);
/// A server certificate with less validity left than this is issued again at start.
const SERVER_RENEW_BEFORE: Duration = Duration::days(30);
/// Smallest RSA key AWS IoT accepts in a CSR.
const MIN_RSA_BITS: usize = 2048;

/// Why the PKI could not be loaded, created or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A directory or file under the data directory could not be created or written.
    #[error(
        "data directory {} is not writable: cannot write {}: {source}; \
         choose another data directory or fix its permissions",
        data_dir.display(), path.display()
    )]
    DataDirUnwritable {
        /// The data directory the emulator was started with.
        data_dir: PathBuf,
        /// The directory or file that could not be written.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A PKI file exists but could not be read.
    #[error("cannot read {}: {source}; check its permissions", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A CA file exists but its content is not what it must be.
    #[error(
        "{} is corrupt ({reason}); restore it from a backup, or delete the directory {} \
         so that a new CA is created (device certificates issued by the old CA will then be rejected)",
        path.display(), pki_dir.display()
    )]
    CorruptCa {
        /// The damaged file.
        path: PathBuf,
        /// The directory holding the PKI files.
        pki_dir: PathBuf,
        /// What is wrong with the file.
        reason: String,
    },
    /// One of the two CA files exists without the other.
    #[error(
        "{} exists but {} is missing; restore the missing file, or delete the directory {} \
         so that a new CA is created (device certificates issued by the old CA will then be rejected)",
        present.display(), missing.display(), pki_dir.display()
    )]
    IncompleteCa {
        /// The CA file that exists.
        present: PathBuf,
        /// The CA file that is missing.
        missing: PathBuf,
        /// The directory holding the PKI files.
        pki_dir: PathBuf,
    },
    /// The CA certificate is no longer valid.
    #[error(
        "the CA certificate {} expired on {not_after}; delete the directory {} so that a new CA \
         is created, then issue new device certificates",
        path.display(), pki_dir.display()
    )]
    CaExpired {
        /// The CA certificate file.
        path: PathBuf,
        /// The directory holding the PKI files.
        pki_dir: PathBuf,
        /// When the certificate expired (RFC 2822 date).
        not_after: String,
    },
    /// An extra name requested for the server certificate is neither an IP address nor
    /// a valid DNS name.
    #[error(
        "{name:?} cannot be a name of the server certificate: it is neither an IP address \
         nor a valid DNS name"
    )]
    InvalidServerName {
        /// The rejected name.
        name: String,
    },
    /// A certificate signing request could not be parsed or its signature is wrong.
    #[error(
        "the certificate signing request is not valid: {reason}; send a PEM-encoded PKCS#10 \
         request (-----BEGIN CERTIFICATE REQUEST-----) signed with the key it contains"
    )]
    InvalidCsr {
        /// What is wrong with the request.
        reason: String,
    },
    /// A certificate signing request carries a key type or size AWS IoT does not accept.
    #[error(
        "the certificate signing request's key is not accepted: {reason}; use an RSA key of at \
         least 2048 bits or an ECDSA key on P-256, P-384 or P-521"
    )]
    UnsupportedCsrKey {
        /// What is wrong with the key.
        reason: String,
    },
    /// Key or certificate generation failed inside the crypto library.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
}

/// How a server certificate from [`Pki::issue_flawed_server_certificate`] is flawed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServerCertificateFlaw {
    /// Signed by the CA, for the right names, but expired yesterday.
    Expired,
    /// Signed by the CA, valid, for another host name only.
    IncorrectSubjectName,
    /// For the right names, valid, signed by a CA no device trusts.
    UnknownCa,
    /// Right in every way, and at least `min_bytes` long (DER), padded with
    /// names: for a device's TLS buffers.
    Large {
        /// The least size of the certificate, in bytes.
        min_bytes: usize,
    },
}

/// Key algorithm of a device key pair created by the emulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256 with SHA-256 (the default: small keys, fast handshakes).
    #[default]
    EcdsaP256,
    /// RSA with a 2048-bit modulus, signatures PKCS#1 v1.5 with SHA-256 (what AWS's
    /// `CreateKeysAndCertificate` returns).
    Rsa2048,
}

/// A [`KeyAlgorithm`] name that [`KeyAlgorithm::from_str`] does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown key type {0:?}; use \"ec\" (ECDSA P-256) or \"rsa\" (RSA 2048)")]
pub struct UnknownKeyAlgorithm(pub String);

impl FromStr for KeyAlgorithm {
    type Err = UnknownKeyAlgorithm;

    /// Parses `ec`, `ecdsa`, `ecdsa-p256`, `p256` or `rsa`, `rsa2048`, `rsa-2048`
    /// (case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "ec" | "ecdsa" | "ecdsa-p256" | "p256" | "p-256" => Ok(Self::EcdsaP256),
            "rsa" | "rsa2048" | "rsa-2048" => Ok(Self::Rsa2048),
            _ => Err(UnknownKeyAlgorithm(s.to_owned())),
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::EcdsaP256 => "ecdsa-p256",
            Self::Rsa2048 => "rsa-2048",
        })
    }
}

/// A certificate the emulator's CA signed from a certificate signing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCertificate {
    /// The certificate, PEM-encoded.
    pub certificate_pem: String,
    /// The certificate's AWS id: lowercase hex SHA-256 of its DER encoding.
    pub certificate_id: String,
}

/// A device certificate and the private key the emulator created for it.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceCredentials {
    /// The certificate, PEM-encoded.
    pub certificate_pem: String,
    /// The private key, PEM-encoded PKCS#8 (`-----BEGIN PRIVATE KEY-----`).
    pub private_key_pem: String,
    /// The certificate's AWS id: lowercase hex SHA-256 of its DER encoding.
    pub certificate_id: String,
}

impl fmt::Debug for DeviceCredentials {
    /// Shows the certificate id, never the private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCredentials")
            .field("certificate_id", &self.certificate_id)
            .field("private_key_pem", &"[elided]")
            .finish_non_exhaustive()
    }
}

/// Options for [`Pki::load_or_create_with`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PkiOptions {
    /// Names the server certificate covers besides `localhost`, `127.0.0.1` and `::1`:
    /// DNS names (e.g. the endpoint name devices are configured with) or IP addresses.
    pub extra_server_names: Vec<String>,
    /// The root CA's common name when one is created; `None`:
    /// [`CA_COMMON_NAME`].
    pub ca_common_name: Option<String>,
}

impl PkiOptions {
    /// Options with the given extra server certificate names.
    pub fn with_extra_server_names<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            extra_server_names: names.into_iter().map(Into::into).collect(),
            ca_common_name: None,
        }
    }

    /// Sets [`PkiOptions::ca_common_name`].
    pub fn with_ca_common_name(mut self, name: impl Into<String>) -> Self {
        self.ca_common_name = Some(name.into());
        self
    }
}

/// The emulator's certificate authority and TLS server identity.
///
/// Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    server_der: CertificateDer<'static>,
    server_key: PrivateKeyDer<'static>,
    server_names: Vec<String>,
}

impl fmt::Debug for Pki {
    /// Shows the names the server certificate covers, never a key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pki")
            .field("server_names", &self.server_names)
            .finish_non_exhaustive()
    }
}

/// The four files under `<data dir>/pki/`.
struct PkiPaths {
    data_dir: PathBuf,
    dir: PathBuf,
    ca_cert: PathBuf,
    ca_key: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    lock: PathBuf,
}

impl PkiPaths {
    fn new(data_dir: &Path) -> Self {
        let dir = data_dir.join("pki");
        Self {
            data_dir: data_dir.to_path_buf(),
            ca_cert: Pki::ca_cert_path(data_dir),
            ca_key: dir.join("ca.key"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            lock: dir.join(".lock"),
            dir,
        }
    }

    /// Locks the PKI directory (an exclusive lock on its `.lock` file, released
    /// when the returned file is dropped), so that processes starting together on
    /// a new data directory, `iotcore emulator` and `iotcore thing create` for
    /// instance, do not each create a CA: the second waits and loads the first's.
    fn lock(&self) -> Result<fs::File, PkiError> {
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)
            .map_err(|source| self.unwritable(&self.lock, source))?;
        fs4::FileExt::lock(&file).map_err(|source| self.unwritable(&self.lock, source))?;
        Ok(file)
    }

    fn write(&self, path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
        write_atomic(path, bytes, mode).map_err(|source| self.unwritable(path, source))
    }

    fn unwritable(&self, path: &Path, source: io::Error) -> PkiError {
        PkiError::DataDirUnwritable {
            data_dir: self.data_dir.clone(),
            path: path.to_path_buf(),
            source,
        }
    }

    fn corrupt_ca(&self, path: &Path, reason: impl Into<String>) -> PkiError {
        PkiError::CorruptCa {
            path: path.to_path_buf(),
            pki_dir: self.dir.clone(),
            reason: reason.into(),
        }
    }
}

impl Pki {
    /// Loads the PKI from `<data_dir>/pki/`, creating the CA and the server certificate
    /// on first start. The server certificate covers `localhost`, `127.0.0.1` and `::1`.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, PkiError> {
        Self::load_or_create_with(data_dir, &PkiOptions::default())
    }

    /// Like [`Pki::load_or_create`], with options (extra server certificate names).
    pub fn load_or_create_with(data_dir: &Path, options: &PkiOptions) -> Result<Self, PkiError> {
        let paths = PkiPaths::new(data_dir);
        fs::create_dir_all(&paths.dir).map_err(|source| paths.unwritable(&paths.dir, source))?;
        let _lock = paths.lock()?;

        let server_names = requested_server_names(&options.extra_server_names)?;
        let ca_name = options.ca_common_name.as_deref().unwrap_or(CA_COMMON_NAME);
        let (ca_pem, ca_der, ca_key) = load_or_create_ca(&paths, ca_name)?;
        let issuer = Issuer::from_ca_cert_der(&ca_der, ca_key)
            .map_err(|e| paths.corrupt_ca(&paths.ca_cert, format!("unusable as an issuer: {e}")))?;

        let (server_der, server_key) = match load_server(&paths, &ca_der, &server_names) {
            Ok(loaded) => loaded,
            Err(reason) => {
                tracing::info!(
                    path = %paths.server_cert.display(),
                    "issuing a new server certificate: {reason}"
                );
                let (cert, key) = server_certificate(&issuer, &server_names, LEAF_VALIDITY)?;
                paths.write(
                    &paths.server_key,
                    key.serialize_pem().as_bytes(),
                    MODE_PRIVATE,
                )?;
                paths.write(&paths.server_cert, cert.pem().as_bytes(), MODE_PUBLIC)?;
                (cert.der().clone(), PrivateKeyDer::from(key))
            }
        };

        Ok(Self {
            ca_pem,
            ca_der,
            issuer,
            server_der,
            server_key,
            server_names: server_names.into_iter().collect(),
        })
    }

    /// Where [`Pki::load_or_create`] keeps the root CA certificate (PEM) of the
    /// emulator whose data directory is `data_dir`: `<data_dir>/pki/ca.pem`.
    pub fn ca_cert_path(data_dir: &Path) -> PathBuf {
        data_dir.join("pki").join("ca.pem")
    }

    /// The root CA certificate, PEM-encoded: what devices put in their trust store.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The root CA certificate, DER-encoded: the trust anchor for client certificates.
    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.ca_der
    }

    /// The server certificate chain for a rustls `ServerConfig`: the server certificate
    /// alone (the CA is the trust anchor, devices already have it).
    pub fn server_cert_chain(&self) -> Vec<CertificateDer<'static>> {
        vec![self.server_der.clone()]
    }

    /// The server certificate's private key for a rustls `ServerConfig`.
    pub fn server_private_key(&self) -> PrivateKeyDer<'static> {
        self.server_key.clone_key()
    }

    /// The names the server certificate covers (DNS names lowercased, IP addresses in
    /// canonical form), sorted.
    pub fn server_names(&self) -> &[String] {
        &self.server_names
    }

    /// Issues a TLS server certificate for `localhost`, `127.0.0.1`, `::1`
    /// and `extra_names`, valid for `validity` (from an hour ago, for clocks a
    /// little behind), signed by the CA: the chain to present (the certificate
    /// alone) and its key. Nothing is written to the data directory: what a
    /// Greengrass core's rotating certificate is.
    pub fn issue_server_certificate(
        &self,
        extra_names: &[String],
        validity: std::time::Duration,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), PkiError> {
        let names = requested_server_names(extra_names)?;
        let validity = Duration::try_from(validity).unwrap_or(CA_VALIDITY);
        let (cert, key) = server_certificate(&self.issuer, &names, validity)?;
        Ok((vec![cert.der().clone()], PrivateKeyDer::from(key)))
    }

    /// A server certificate a device must refuse, or must cope with, as AWS
    /// IoT Device Advisor's TLS cases present it (for `iotcore qualify`):
    /// the chain to present and its key. Nothing is written to the data
    /// directory.
    pub fn issue_flawed_server_certificate(
        &self,
        flaw: ServerCertificateFlaw,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), PkiError> {
        let names = requested_server_names(&[])?;
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let cert = match flaw {
            ServerCertificateFlaw::Expired => {
                let mut params = server_params(&names)?;
                let now = OffsetDateTime::now_utc();
                params.not_before = now - Duration::days(30);
                params.not_after = now - Duration::days(1);
                params.signed_by(&key, &self.issuer)?
            }
            ServerCertificateFlaw::IncorrectSubjectName => {
                let other = BTreeSet::from(["not-this-endpoint.example.com".to_owned()]);
                let mut params = server_params(&other)?;
                set_validity(&mut params, LEAF_VALIDITY);
                params.signed_by(&key, &self.issuer)?
            }
            ServerCertificateFlaw::UnknownCa => {
                let stranger_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
                let mut ca = CertificateParams::default();
                ca.distinguished_name = common_name_dn("a CA no device trusts");
                ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
                ca.key_usages = vec![
                    KeyUsagePurpose::KeyCertSign,
                    KeyUsagePurpose::DigitalSignature,
                ];
                set_validity(&mut ca, LEAF_VALIDITY);
                let stranger = Issuer::new(ca, stranger_key);
                let mut params = server_params(&names)?;
                set_validity(&mut params, LEAF_VALIDITY);
                params.signed_by(&key, &stranger)?
            }
            ServerCertificateFlaw::Large { min_bytes } => {
                let mut padded = names.clone();
                let mut params = server_params(&padded)?;
                let mut n = 0;
                loop {
                    set_validity(&mut params, LEAF_VALIDITY);
                    let cert = params.signed_by(&key, &self.issuer)?;
                    if cert.der().len() >= min_bytes {
                        break cert;
                    }
                    // About 40 bytes a name: add enough for the rest at once.
                    let missing = (min_bytes - cert.der().len()) / 40 + 1;
                    for _ in 0..missing {
                        n += 1;
                        padded.insert(format!("padding-{n:05}.large-certificate.invalid"));
                    }
                    params = server_params(&padded)?;
                }
            }
        };
        Ok((vec![cert.der().clone()], PrivateKeyDer::from(key)))
    }

    /// Replaces the CA under `<data_dir>/pki/` with a new one (and issues a
    /// new server certificate under it), as [`Pki::load_or_create_with`] does
    /// on a first start. Every certificate the old CA signed stops being
    /// trusted by whoever trusts only the new one.
    pub fn replace_ca(data_dir: &Path, options: &PkiOptions) -> Result<Self, PkiError> {
        let paths = PkiPaths::new(data_dir);
        for path in [
            &paths.ca_key,
            &paths.ca_cert,
            &paths.server_cert,
            &paths.server_key,
        ] {
            match fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(paths.unwritable(path, e));
                }
                _ => {}
            }
        }
        Self::load_or_create_with(data_dir, options)
    }

    /// Creates a key pair and a device certificate for it: subject CN `common_name`
    /// (the thing name), extended key usage TLS client authentication, valid for one year.
    pub fn issue_device_certificate(
        &self,
        common_name: &str,
        alg: KeyAlgorithm,
    ) -> Result<DeviceCredentials, PkiError> {
        let key = match alg {
            KeyAlgorithm::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?,
            KeyAlgorithm::Rsa2048 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)?
            }
        };
        let params = device_params(common_name, alg == KeyAlgorithm::Rsa2048);
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(DeviceCredentials {
            certificate_pem: cert.pem(),
            private_key_pem: key.serialize_pem(),
            certificate_id: certificate_id(cert.der()),
        })
    }

    /// Signs a PEM-encoded PKCS#10 certificate signing request, as AWS IoT's
    /// `CreateCertificateFromCsr` and fleet provisioning do.
    ///
    /// The request's signature must verify with the key it contains, and that key must be
    /// RSA (2048 bits or more) or ECDSA on P-256, P-384 or P-521. The certificate keeps the
    /// request's common name ([`DEFAULT_DEVICE_COMMON_NAME`] if it has none), ignores any
    /// requested extensions, and is valid for one year for TLS client authentication.
    /// Signing the same request twice gives two distinct certificates.
    pub fn sign_csr(&self, csr_pem: &str) -> Result<IssuedCertificate, PkiError> {
        let invalid = |reason: String| PkiError::InvalidCsr { reason };
        let der = CertificateSigningRequestDer::from_pem_slice(csr_pem.as_bytes())
            .map_err(|e| invalid(format!("no PEM certificate request found: {e}")))?;
        let (_, csr) = X509CertificationRequest::from_der(der.as_ref())
            .map_err(|e| invalid(format!("malformed PKCS#10 request: {e}")))?;
        csr.verify_signature()
            .map_err(|e| invalid(format!("its signature does not verify: {e}")))?;

        let info = &csr.certification_request_info;
        let is_rsa = match info.subject_pki.parsed() {
            Ok(PublicKey::RSA(rsa)) if rsa.key_size() < MIN_RSA_BITS => {
                return Err(PkiError::UnsupportedCsrKey {
                    reason: format!("RSA key of {} bits", rsa.key_size()),
                });
            }
            Ok(PublicKey::RSA(_)) => true,
            Ok(PublicKey::EC(_)) => false,
            Ok(_) => {
                return Err(PkiError::UnsupportedCsrKey {
                    reason: format!("key algorithm {}", info.subject_pki.algorithm.algorithm),
                });
            }
            Err(e) => return Err(invalid(format!("unreadable public key: {e}"))),
        };
        let public_key =
            rcgen::SubjectPublicKeyInfo::from_der(info.subject_pki.raw).map_err(|e| {
                PkiError::UnsupportedCsrKey {
                    reason: format!("{e}: only the curves P-256, P-384 and P-521 are accepted"),
                }
            })?;

        let common_name = info
            .subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or(DEFAULT_DEVICE_COMMON_NAME);
        let cert = device_params(common_name, is_rsa).signed_by(&public_key, &self.issuer)?;
        Ok(IssuedCertificate {
            certificate_pem: cert.pem(),
            certificate_id: certificate_id(cert.der()),
        })
    }
}

/// The AWS IoT id of a certificate: lowercase hex SHA-256 of its DER encoding.
pub fn certificate_id(der: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der))
}

/// Loads `ca.pem` + `ca.key`, or creates both when neither exists.
fn load_or_create_ca(
    paths: &PkiPaths,
    common_name: &str,
) -> Result<(String, CertificateDer<'static>, KeyPair), PkiError> {
    let cert_pem = read_optional(&paths.ca_cert)?;
    let key_pem = read_optional(&paths.ca_key)?;
    let (cert_pem, key_pem) = match (cert_pem, key_pem) {
        (None, None) => return create_ca(paths, common_name),
        (Some(cert), Some(key)) => (cert, key),
        (Some(_), None) => return Err(incomplete_ca(paths, &paths.ca_cert, &paths.ca_key)),
        (None, Some(_)) => return Err(incomplete_ca(paths, &paths.ca_key, &paths.ca_cert)),
    };

    let cert_pem = String::from_utf8(cert_pem)
        .map_err(|_| paths.corrupt_ca(&paths.ca_cert, "not a text file"))?;
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .map_err(|e| paths.corrupt_ca(&paths.ca_cert, format!("no PEM certificate: {e}")))?;
    let key = parse_key(&key_pem).map_err(|reason| paths.corrupt_ca(&paths.ca_key, reason))?;
    {
        let (_, cert) = X509Certificate::from_der(der.as_ref())
            .map_err(|e| paths.corrupt_ca(&paths.ca_cert, format!("malformed certificate: {e}")))?;
        if !cert.is_ca() {
            return Err(paths.corrupt_ca(&paths.ca_cert, "not a CA certificate"));
        }
        if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(paths.corrupt_ca(
                &paths.ca_key,
                format!(
                    "the key does not belong to the certificate {}",
                    paths.ca_cert.display()
                ),
            ));
        }
        let not_after = cert.validity().not_after.to_datetime();
        if not_after <= OffsetDateTime::now_utc() {
            return Err(PkiError::CaExpired {
                path: paths.ca_cert.clone(),
                pki_dir: paths.dir.clone(),
                not_after: not_after.to_string(),
            });
        }
    }
    Ok((cert_pem, der, key))
}

fn incomplete_ca(paths: &PkiPaths, present: &Path, missing: &Path) -> PkiError {
    PkiError::IncompleteCa {
        present: present.to_path_buf(),
        missing: missing.to_path_buf(),
        pki_dir: paths.dir.clone(),
    }
}

fn create_ca(
    paths: &PkiPaths,
    common_name: &str,
) -> Result<(String, CertificateDer<'static>, KeyPair), PkiError> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name_dn(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, CA_VALIDITY);
    let cert = params.self_signed(&key)?;

    // Key first: a crash in between leaves a key without certificate, which the next
    // start reports instead of silently making a second CA.
    paths.write(&paths.ca_key, key.serialize_pem().as_bytes(), MODE_PRIVATE)?;
    paths.write(&paths.ca_cert, cert.pem().as_bytes(), MODE_PUBLIC)?;
    tracing::info!(path = %paths.ca_cert.display(), "created the emulator's root CA");
    Ok((cert.pem(), cert.der().clone(), key))
}

/// Loads the server certificate if it is still right for `names` under the CA `ca_der`;
/// otherwise says why it must be issued again.
fn load_server(
    paths: &PkiPaths,
    ca_der: &CertificateDer<'_>,
    names: &BTreeSet<String>,
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), String> {
    let cert_pem = fs::read(&paths.server_cert).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => "none exists yet".to_owned(),
        _ => format!("cannot read it: {e}"),
    })?;
    let key_pem = fs::read(&paths.server_key)
        .map_err(|e| format!("cannot read {}: {e}", paths.server_key.display()))?;
    let der = CertificateDer::from_pem_slice(&cert_pem)
        .map_err(|e| format!("no PEM certificate in it: {e}"))?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| format!("no PEM private key in {}: {e}", paths.server_key.display()))?;
    let key = KeyPair::try_from(&key_der).map_err(|e| format!("unusable private key: {e}"))?;

    let (_, cert) =
        X509Certificate::from_der(der.as_ref()).map_err(|e| format!("malformed: {e}"))?;
    let (_, ca) = X509Certificate::from_der(ca_der.as_ref())
        .map_err(|e| format!("malformed CA certificate: {e}"))?;
    cert.verify_signature(Some(ca.public_key()))
        .map_err(|_| "it was not signed by the current CA".to_owned())?;
    if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Err("its private key does not match".to_owned());
    }
    let renew_at = cert.validity().not_after.to_datetime() - SERVER_RENEW_BEFORE;
    if renew_at <= OffsetDateTime::now_utc() {
        return Err("it expires within 30 days".to_owned());
    }
    let present = certificate_names(&cert)?;
    if !names.is_subset(&present) {
        let missing: Vec<_> = names.difference(&present).collect();
        return Err(format!("it does not cover {missing:?}"));
    }
    Ok((der.into_owned(), key_der))
}

/// A TLS server certificate signed by `issuer` for `names` (IP addresses
/// as iPAddress names, the others as dNSName), valid for `validity`.
fn server_certificate(
    issuer: &Issuer<'_, KeyPair>,
    names: &BTreeSet<String>,
    validity: Duration,
) -> Result<(rcgen::Certificate, KeyPair), PkiError> {
    let mut params = server_params(names)?;
    set_validity(&mut params, validity);
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert, key))
}

/// The parameters of a server certificate for `names`, validity left to the caller.
fn server_params(names: &BTreeSet<String>) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name_dn("iotcore emulator");
    params.subject_alt_names = names
        .iter()
        .map(|name| match name.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => Ok(SanType::DnsName(name.clone().try_into()?)),
        })
        .collect::<Result<_, rcgen::Error>>()?;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial());
    Ok(params)
}

/// The canonical, deduplicated set of names the server certificate must cover.
fn requested_server_names(extra: &[String]) -> Result<BTreeSet<String>, PkiError> {
    DEFAULT_SERVER_NAMES
        .iter()
        .map(|name| (*name).to_owned())
        .chain(extra.iter().cloned())
        .map(|name| canonical_server_name(&name).ok_or(PkiError::InvalidServerName { name }))
        .collect()
}

/// An IP address in canonical form, or a valid DNS name lowercased; `None` otherwise.
fn canonical_server_name(name: &str) -> Option<String> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Some(ip.to_string());
    }
    DnsName::try_from(name)
        .ok()
        .map(|dns| dns.as_ref().to_ascii_lowercase())
}

/// The subject alternative names of `cert`, canonicalized like the requested ones.
fn certificate_names(cert: &X509Certificate<'_>) -> Result<BTreeSet<String>, String> {
    let Some(san) = cert
        .subject_alternative_name()
        .map_err(|e| format!("unreadable subject alternative names: {e}"))?
    else {
        return Ok(BTreeSet::new());
    };
    san.value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::DNSName(dns) => Ok(dns.to_ascii_lowercase()),
            GeneralName::IPAddress(bytes) => ip_from_octets(bytes)
                .map(|ip| ip.to_string())
                .ok_or_else(|| format!("an IP address of {} bytes", bytes.len())),
            other => Err(format!("an unexpected name {other}")),
        })
        .collect()
}

/// An IPv4 or IPv6 address from the octets of an `iPAddress` general name.
fn ip_from_octets(octets: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(octets) {
        Some(IpAddr::from(v4))
    } else {
        <[u8; 16]>::try_from(octets).ok().map(IpAddr::from)
    }
}

/// Parameters of a device (client) certificate.
fn device_params(common_name: &str, rsa: bool) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name_dn(common_name);
    params.key_usages = if rsa {
        vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ]
    } else {
        vec![KeyUsagePurpose::DigitalSignature]
    };
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial());
    set_validity(&mut params, LEAF_VALIDITY);
    params
}

fn common_name_dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn set_validity(params: &mut CertificateParams, validity: Duration) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + validity;
}

/// A random positive 128-bit serial number, so that no two certificates share one.
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    // Positive (top bit clear) and without a leading zero octet, so DER keeps 16 octets.
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&bytes)
}

/// Parses a PEM private key (PKCS#8, SEC1 or PKCS#1) into a signing key pair.
fn parse_key(pem: &[u8]) -> Result<KeyPair, String> {
    let der = PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("no PEM private key: {e}"))?;
    KeyPair::try_from(&der).map_err(|e| format!("unusable private key: {e}"))
}

/// Reads a file, `None` if it does not exist.
fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, PkiError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PkiError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flawed_server_certificates_have_their_flaw_and_only_it() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path()).unwrap();
        let parsed = |flaw| {
            let (chain, _) = pki.issue_flawed_server_certificate(flaw).unwrap();
            let der = chain[0].clone();
            let (_, cert) = X509Certificate::from_der(der.as_ref()).unwrap();
            let signed_by_ca = {
                let (_, ca) = X509Certificate::from_der(pki.ca_der().as_ref()).unwrap();
                cert.verify_signature(Some(ca.public_key())).is_ok()
            };
            let expired = cert.validity().not_after.to_datetime() < OffsetDateTime::now_utc();
            (
                der.len(),
                certificate_names(&cert).unwrap(),
                signed_by_ca,
                expired,
            )
        };
        let (_, names, signed, expired) = parsed(ServerCertificateFlaw::Expired);
        assert!(names.contains("localhost") && signed && expired);
        let (_, names, signed, expired) = parsed(ServerCertificateFlaw::IncorrectSubjectName);
        assert!(
            !names.contains("localhost") && signed && !expired,
            "{names:?}"
        );
        let (_, names, signed, expired) = parsed(ServerCertificateFlaw::UnknownCa);
        assert!(names.contains("localhost") && !signed && !expired);
        let (size, names, signed, expired) =
            parsed(ServerCertificateFlaw::Large { min_bytes: 6_000 });
        assert!((6_000..7_000).contains(&size), "{size}");
        assert!(names.contains("localhost") && signed && !expired);
    }

    #[test]
    fn processes_starting_together_on_a_new_data_directory_make_one_ca() {
        // Each thread opens the lock file itself, as another process would (flock
        // locks belong to the open file, not the process).
        let dir = tempfile::tempdir().unwrap();
        let start = std::sync::Barrier::new(8);
        let cas: Vec<String> = std::thread::scope(|scope| {
            let starts: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        start.wait();
                        Pki::load_or_create(dir.path()).unwrap().ca_pem().to_owned()
                    })
                })
                .collect();
            starts.into_iter().map(|s| s.join().unwrap()).collect()
        });
        let on_disk = fs::read_to_string(Pki::ca_cert_path(dir.path())).unwrap();
        assert!(cas.iter().all(|ca| *ca == on_disk), "several CAs were made");
    }

    #[test]
    fn pki_can_be_shared_between_tasks() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Pki>();
    }

    #[test]
    fn key_algorithm_parses_cli_names() {
        assert_eq!("rsa".parse::<KeyAlgorithm>(), Ok(KeyAlgorithm::Rsa2048));
        assert_eq!("EC".parse::<KeyAlgorithm>(), Ok(KeyAlgorithm::EcdsaP256));
        assert_eq!(
            "dsa".parse::<KeyAlgorithm>(),
            Err(UnknownKeyAlgorithm("dsa".into()))
        );
        assert_eq!(KeyAlgorithm::default(), KeyAlgorithm::EcdsaP256);
    }

    #[test]
    fn server_names_are_canonical_and_deduplicated() {
        let names =
            requested_server_names(&["LOCALHOST".into(), "0:0::1".into(), "Iot.Example".into()])
                .unwrap();
        let expected: BTreeSet<String> = ["localhost", "127.0.0.1", "::1", "iot.example"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(names, expected);
    }

    #[test]
    fn invalid_server_name_is_rejected() {
        let err = requested_server_names(&["not a name!".into()]).unwrap_err();
        assert!(matches!(err, PkiError::InvalidServerName { ref name } if name == "not a name!"));
    }

    #[test]
    fn certificate_id_is_lowercase_hex_sha256() {
        assert_eq!(
            certificate_id(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
