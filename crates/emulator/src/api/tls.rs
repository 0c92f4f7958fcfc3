//! TLS for the API listener: the emulator's server certificate, TLS 1.2 and
//! 1.3, ALPN `h2`, `http/1.1` and `x-amzn-http-ca` (what AWS's Greengrass
//! discovery clients offer, served as HTTP/1.1), and an *optional* client
//! certificate.
//!
//! A client that presents a certificate must present one that chains to the
//! emulator CA (otherwise the handshake fails, as on AWS's data endpoint); the
//! request's caller is then that certificate. A client without one (boto3, the
//! AWS CLI) authenticates each request with SigV4 instead.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

use crate::pki::Pki;
use crate::tls::TlsSetupError;

/// ALPN protocols offered, most preferred first.
const ALPN: [&[u8]; 3] = [b"h2", b"http/1.1", crate::tls::ALPN_HTTP_CA];

/// The API's TLS configuration from the emulator's PKI.
pub(crate) fn server_config_from_pki(pki: &Pki) -> Result<Arc<ServerConfig>, TlsSetupError> {
    server_config(
        pki.ca_der(),
        pki.server_cert_chain(),
        pki.server_private_key(),
    )
}

/// The API's TLS configuration: server certificate `chain` + `key`, client
/// certificates optional and verified against `ca`, with the aws-lc-rs provider.
pub(crate) fn server_config(
    ca: &CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    roots
        .add(ca.clone())
        .map_err(|e| TlsSetupError::TrustAnchor(e.to_string()))?;
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .allow_unauthenticated()
            .build()
            .map_err(|e| TlsSetupError::TrustAnchor(e.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}
