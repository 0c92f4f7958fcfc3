//! The device's own key and its certificate signing request, made on the
//! device: the private key never leaves it.

use std::fmt;

use rcgen::{CertificateParams, DnType, KeyPair, RsaKeySize};

use super::error::ProvisioningError;

/// The type of key the device makes for its new identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum KeyType {
    /// ECDSA on P-256 with SHA-256 (the default: small, fast handshakes).
    #[default]
    EcdsaP256,
    /// ECDSA on P-384 with SHA-384.
    EcdsaP384,
    /// RSA 2048 with SHA-256.
    Rsa2048,
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyType::EcdsaP256 => "ecdsa-p256",
            KeyType::EcdsaP384 => "ecdsa-p384",
            KeyType::Rsa2048 => "rsa-2048",
        })
    }
}

/// A key the device made and a CSR signed with it. `Debug` never shows the key.
pub(crate) struct DeviceKey {
    /// The private key, PEM PKCS#8.
    pub(crate) private_key_pem: String,
    /// The PKCS#10 request, PEM.
    pub(crate) csr_pem: String,
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceKey").finish_non_exhaustive()
    }
}

/// Makes a key of `key_type` and a CSR for it with subject CN `common_name`.
pub(crate) fn generate(
    key_type: KeyType,
    common_name: &str,
) -> Result<DeviceKey, ProvisioningError> {
    let failed = |e: rcgen::Error| ProvisioningError::Key(e.to_string());
    let key = match key_type {
        KeyType::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        KeyType::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        KeyType::Rsa2048 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048),
    }
    .map_err(failed)?;
    let mut params = CertificateParams::new(Vec::new()).map_err(failed)?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    let csr_pem = params
        .serialize_request(&key)
        .and_then(|csr| csr.pem())
        .map_err(failed)?;
    Ok(DeviceKey {
        private_key_pem: key.serialize_pem(),
        csr_pem,
    })
}

#[cfg(test)]
mod tests {
    use rcgen::PublicKeyData;

    use super::*;

    #[test]
    fn every_key_type_gives_a_key_and_a_csr_of_its_own() {
        for key_type in [KeyType::EcdsaP256, KeyType::EcdsaP384, KeyType::Rsa2048] {
            let key = generate(key_type, "dev").unwrap();
            assert!(
                key.private_key_pem
                    .starts_with("-----BEGIN PRIVATE KEY-----"),
                "{key_type}"
            );
            assert!(
                key.csr_pem
                    .starts_with("-----BEGIN CERTIFICATE REQUEST-----"),
                "{key_type}"
            );
            let parsed = rcgen::CertificateSigningRequestParams::from_pem(&key.csr_pem).unwrap();
            let own = KeyPair::from_pem(&key.private_key_pem).unwrap();
            assert_eq!(parsed.public_key.der_bytes(), own.der_bytes(), "{key_type}");
            assert!(!format!("{key:?}").contains("PRIVATE"));
        }
        let other = generate(KeyType::EcdsaP256, "dev").unwrap();
        assert_ne!(
            other.private_key_pem,
            generate(KeyType::EcdsaP256, "dev").unwrap().private_key_pem
        );
    }
}
