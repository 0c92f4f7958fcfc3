//! TLS: what every door runs over TCP (or a proxy's tunnel).
//!
//! rustls with the aws-lc-rs provider (always passed explicitly, never the
//! process default), TLS 1.2 and 1.3, SNI on, the server's name verified
//! against the configured roots, and a client certificate for mutual TLS.

use std::io;
use std::sync::{Arc, OnceLock};

use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::sign::SingleCertAndKey;
use rustls::{AlertDescription, ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::credentials::Identity;
use crate::error::ConfigError;
use crate::status::DisconnectReason;
use crate::transport::ByteStream;

/// The ALPN protocol AWS IoT Core expects for MQTT with client certificates on port 443.
pub const AWS_MQTT_ALPN: &[u8] = b"x-amzn-mqtt-ca";

/// TLS sessions kept for resumption: the one server a client connects to.
const SESSION_CACHE_ENTRIES: usize = 1;

/// The aws-lc-rs crypto provider, built once.
pub(crate) fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}

/// Builds the TLS client configuration.
pub(crate) fn client_config(
    identity: Option<&Identity>,
    roots: &[CertificateDer<'static>],
    alpn: Option<&[u8]>,
) -> Result<Arc<ClientConfig>, ConfigError> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store
            .add(root.clone())
            .map_err(|e| ConfigError::InvalidCertificate {
                origin: "a root CA".into(),
                detail: e.to_string(),
            })?;
    }
    let builder = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::InvalidSetting {
            setting: "tls",
            why: tls_versions_unsupported(e),
        })?
        .with_root_certificates(store);
    // The key was loaded and checked against the certificate when the
    // identity was read: hand it over as is rather than load it again.
    let mut config = match identity {
        Some(identity) => builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(
            identity.certified.clone(),
        ))),
        None => builder.with_no_client_auth(),
    };
    // One client talks to one server name, so its session cache needs one
    // entry, not rustls's default 256 (a ~14 KiB table in every client).
    config.resumption = Resumption::in_memory_sessions(SESSION_CACHE_ENTRIES);
    if let Some(protocol) = alpn {
        config.alpn_protocols = vec![protocol.to_vec()];
    }
    Ok(Arc::new(config))
}

fn tls_versions_unsupported(_: rustls::Error) -> &'static str {
    "the crypto provider supports neither TLS 1.2 nor TLS 1.3"
}

/// Parses the name the server's certificate must carry.
pub(crate) fn server_name(name: &str) -> Result<ServerName<'static>, ConfigError> {
    ServerName::try_from(name.to_owned()).map_err(|_| ConfigError::InvalidEndpoint {
        endpoint: name.to_owned(),
    })
}

/// A TLS client configuration and the server name to verify.
#[derive(Debug)]
pub(crate) struct TlsSetup {
    pub(crate) config: Arc<ClientConfig>,
    pub(crate) server_name: ServerName<'static>,
}

impl TlsSetup {
    /// Runs the TLS handshake over `io`.
    pub(crate) async fn handshake<IO>(&self, io: IO) -> Result<TlsStream<IO>, DisconnectReason>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        TlsConnector::from(self.config.clone())
            .connect(self.server_name.clone(), io)
            .await
            .map_err(|e| classify_io_error(&e))
    }
}

impl<IO: AsyncRead + AsyncWrite + Send + Unpin> ByteStream for TlsStream<IO> {
    /// Encrypts into rustls's send buffer: the close_notify then leaves in
    /// the same write.
    fn buffer_final(&mut self, bytes: &[u8]) -> usize {
        let (_, tls) = self.get_mut();
        io::Write::write(&mut tls.writer(), bytes).unwrap_or(0)
    }
}

/// Turns an I/O error from the TLS stream into a reason, telling apart
/// "we do not trust the server" from "the server refused our certificate".
pub(crate) fn classify_io_error(e: &io::Error) -> DisconnectReason {
    let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return DisconnectReason::Network {
            detail: e.to_string(),
        };
    };
    match tls {
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
            DisconnectReason::ServerCertificateUntrusted {
                detail: tls.to_string(),
            }
        }
        rustls::Error::AlertReceived(alert) if is_client_certificate_alert(*alert) => {
            DisconnectReason::ClientCertificateRejected {
                detail: tls.to_string(),
            }
        }
        other => DisconnectReason::Tls {
            detail: other.to_string(),
        },
    }
}

fn is_client_certificate_alert(alert: AlertDescription) -> bool {
    matches!(
        alert,
        AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::AccessDenied
            | AlertDescription::CertificateRequired
            | AlertDescription::DecryptError
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_certificate_alert_means_the_server_refused_our_certificate() {
        let e = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
        );
        assert!(matches!(
            classify_io_error(&e),
            DisconnectReason::ClientCertificateRejected { .. }
        ));
    }

    #[test]
    fn an_unknown_issuer_means_we_do_not_trust_the_server() {
        let e = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let reason = classify_io_error(&e);
        assert!(matches!(
            reason,
            DisconnectReason::ServerCertificateUntrusted { .. }
        ));
        assert!(reason.needs_configuration_change());
    }

    #[test]
    fn a_plain_reset_is_a_network_error() {
        let e = io::Error::from(io::ErrorKind::ConnectionReset);
        assert!(matches!(
            classify_io_error(&e),
            DisconnectReason::Network { .. }
        ));
    }
}
