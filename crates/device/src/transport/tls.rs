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

use crate::credentials::{self, Identity};
use crate::error::ConfigError;
use crate::status::DisconnectReason;
use crate::transport::ByteStream;
use crate::transport::session_store::LastServerSession;

/// The ALPN protocol AWS IoT Core expects for MQTT with client certificates on port 443.
pub const AWS_MQTT_ALPN: &[u8] = b"x-amzn-mqtt-ca";

/// The aws-lc-rs crypto provider, built once.
pub(crate) fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}

/// The CAs a client trusts to have signed the server's certificate, parsed
/// once and shared by every client given a clone of it
/// ([`ClientBuilder::server_trust`](crate::ClientBuilder::server_trust)).
///
/// Each client otherwise keeps its own parsed copy of its roots. A process
/// that runs many clients against one endpoint (a fleet simulator, a gateway
/// for many devices) keeps one copy for all of them; only each device's own
/// certificate and key stay per client.
///
/// ```no_run
/// # async fn demo(root_ca_pem: &str, devices: Vec<(String, String, String)>) -> Result<(), iotcore::Error> {
/// use iotcore::{Client, ServerTrust};
///
/// let trust = ServerTrust::from_pem(root_ca_pem)?;
/// for (thing, cert_pem, key_pem) in devices {
///     let client = Client::builder(thing)
///         .endpoint("127.0.0.1")
///         .client_cert_pem(cert_pem, key_pem)?
///         .server_trust(trust.clone())
///         .connect()
///         .await?;
/// #   drop(client);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ServerTrust {
    roots: Arc<RootCertStore>,
}

impl ServerTrust {
    /// Trusts the CA certificate(s) in PEM text. Fails when it holds none or
    /// one cannot be parsed.
    pub fn from_pem(pem: impl AsRef<[u8]>) -> Result<ServerTrust, ConfigError> {
        ServerTrust::new(&credentials::roots_from_pem(pem.as_ref())?)
    }

    /// Trusts `roots`.
    pub(crate) fn new(roots: &[CertificateDer<'static>]) -> Result<ServerTrust, ConfigError> {
        let mut store = RootCertStore::empty();
        for root in roots {
            store
                .add(root.clone())
                .map_err(|e| ConfigError::InvalidCertificate {
                    origin: "a root CA".into(),
                    detail: e.to_string(),
                })?;
        }
        Ok(ServerTrust {
            roots: Arc::new(store),
        })
    }
}

/// Builds the TLS client configuration trusting `roots`.
pub(crate) fn client_config(
    identity: Option<&Identity>,
    roots: &[CertificateDer<'static>],
    alpn: Option<&[u8]>,
) -> Result<Arc<ClientConfig>, ConfigError> {
    client_config_trusting(identity, &ServerTrust::new(roots)?, alpn)
}

/// Builds the TLS client configuration trusting `trust`.
pub(crate) fn client_config_trusting(
    identity: Option<&Identity>,
    trust: &ServerTrust,
    alpn: Option<&[u8]>,
) -> Result<Arc<ClientConfig>, ConfigError> {
    let builder = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::InvalidSetting {
            setting: "tls",
            why: tls_versions_unsupported(e),
        })?
        .with_root_certificates(Arc::clone(&trust.roots));
    // The key was loaded and checked against the certificate when the
    // identity was read: hand it over as is rather than load it again.
    let mut config = match identity {
        Some(identity) => builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(
            identity.certified.clone(),
        ))),
        None => builder.with_no_client_auth(),
    };
    // One client talks to one server name: it remembers that server's
    // session only, not rustls's default 256 (a ~14 KiB table in every client).
    config.resumption = Resumption::store(Arc::new(LastServerSession::default()));
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
pub(crate) mod tests {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use rustls::{ClientConnection, ServerConfig, ServerConnection};

    use super::*;

    /// Moves TLS bytes between the two ends until neither has any to send.
    pub(crate) fn exchange(client: &mut ClientConnection, server: &mut ServerConnection) {
        loop {
            let mut to_server = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut to_server).unwrap();
            }
            let mut to_client = Vec::new();
            let mut bytes = &to_server[..];
            while !bytes.is_empty() {
                server.read_tls(&mut bytes).unwrap();
                server.process_new_packets().unwrap();
            }
            while server.wants_write() {
                server.write_tls(&mut to_client).unwrap();
            }
            let mut bytes = &to_client[..];
            while !bytes.is_empty() {
                client.read_tls(&mut bytes).unwrap();
                client.process_new_packets().unwrap();
            }
            if to_server.is_empty() && to_client.is_empty() {
                return;
            }
        }
    }

    pub(crate) fn server_config(name: &str) -> (Arc<ServerConfig>, CertificateDer<'static>) {
        let made = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        let cert = made.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
        let config = ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        (Arc::new(config), cert)
    }

    #[test]
    fn a_shared_trust_verifies_the_server_it_names_and_refuses_others() {
        let (server, cert) = server_config("broker.example");
        let (_, other) = server_config("other.example");
        let pem = |der: &CertificateDer<'_>| {
            use base64::Engine as _;
            let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
            format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n")
        };
        let handshake = |trust: &ServerTrust| {
            let config = client_config_trusting(None, trust, None).unwrap();
            let name = server_name("broker.example").unwrap();
            let mut client = ClientConnection::new(config, name).unwrap();
            let mut server = ServerConnection::new(server.clone()).unwrap();
            let mut to_server = Vec::new();
            client.write_tls(&mut to_server).unwrap();
            server.read_tls(&mut &to_server[..]).unwrap();
            server.process_new_packets().unwrap();
            let mut to_client = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut to_client).unwrap();
            }
            let mut bytes = &to_client[..];
            let mut outcome = Ok(());
            while !bytes.is_empty() && outcome.is_ok() {
                client.read_tls(&mut bytes).unwrap();
                outcome = client.process_new_packets().map(|_| ());
            }
            outcome
        };
        let trusted = ServerTrust::from_pem(pem(&cert)).unwrap();
        handshake(&trusted).unwrap();
        handshake(&trusted.clone()).unwrap();
        let untrusted = ServerTrust::from_pem(pem(&other)).unwrap();
        assert!(matches!(
            handshake(&untrusted),
            Err(rustls::Error::InvalidCertificate(_))
        ));
        assert!(matches!(
            ServerTrust::from_pem("no certificate here"),
            Err(ConfigError::NoCertificate { .. })
        ));
    }

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
