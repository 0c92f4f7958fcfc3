//! The token signature of a custom authorizer with signing on: RSA SHA-256
//! (PKCS#1 v1.5) over the token's bytes, base64, checked against each of the
//! authorizer's public keys (AWS: `echo -n TOKEN | openssl dgst -sha256 -sign
//! key.pem | openssl base64`; keys of at least 2048 bits).

use std::collections::BTreeMap;

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rustls_pki_types::SubjectPublicKeyInfoDer;
use rustls_pki_types::pem::PemObject;

/// Reads a PEM `PUBLIC KEY` (an RSA key of 2048 to 8192 bits), or says why
/// it cannot be used.
pub(crate) fn parse_public_key(pem: &str) -> Result<Vec<u8>, String> {
    let der = SubjectPublicKeyInfoDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| format!("not a PEM public key (-----BEGIN PUBLIC KEY-----): {e}"))?;
    let bits = aws_lc_rs::rsa::PublicEncryptingKey::from_der(der.as_ref())
        .map_err(|e| format!("not an RSA public key: {e}"))?
        .key_size_bits();
    if !(2048..=8192).contains(&bits) {
        return Err(format!(
            "an RSA key of {bits} bits; AWS IoT requires at least 2048"
        ));
    }
    Ok(der.as_ref().to_vec())
}

/// Checks `signature` (base64) of `token` against every key in `keys`
/// (name → PEM); `Err` says why none verified it.
pub(crate) fn verify(
    keys: &BTreeMap<String, String>,
    token: &str,
    signature: &str,
) -> Result<(), String> {
    let signature = BASE64
        .decode(signature.trim())
        .map_err(|e| format!("x-amz-customauthorizer-signature is not base64: {e}"))?;
    if keys.is_empty() {
        return Err("the authorizer has no token signing public key".into());
    }
    for (name, pem) in keys {
        let der = match parse_public_key(pem) {
            Ok(der) => der,
            Err(e) => {
                tracing::warn!(key = name, "token signing key skipped: {e}");
                continue;
            }
        };
        let key = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &der);
        if key.verify(token.as_bytes(), &signature).is_ok() {
            return Ok(());
        }
    }
    Err(format!(
        "it does not verify with any of the authorizer's keys ({})",
        keys.keys().cloned().collect::<Vec<_>>().join(", ")
    ))
}
