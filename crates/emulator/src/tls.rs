//! TLS for the MQTT listener: TLS 1.2 and 1.3, client certificates asked for
//! but optional, as AWS IoT Core's data endpoint, whose WebSocket door needs
//! none (docs/aws-iot-core-behaviour.md §1.1): MQTT over TLS without one is
//! refused once the connection shows it is MQTT ([`crate::accept`]).
//!
//! A client certificate, when presented, must chain to the emulator's CA *and*
//! be registered and allowed in the registry: the check runs inside the
//! handshake ([`RegisteredClientVerifier`]), so a refused client gets a TLS
//! alert and the emulator's log says why.
//!
//! ALPN: a client offering `x-amzn-mqtt-ca` (the AWS SDKs' MQTT-over-443 mode) has
//! it selected; a client offering `x-amzn-http-ca` gets the HTTPS API (a device's
//! HTTPS publish); a client offering no ALPN, or others, gets plain MQTT over TLS
//! on the same listener. SNI is not required; an IP address sent as SNI (AWS's Python
//! SDK does this for 127.0.0.1) is ignored by rustls.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme,
};

use crate::pki::certificate_id;

/// The ALPN protocol id AWS IoT Core accepts for MQTT with X.509 client
/// certificates on port 443.
pub const ALPN_MQTT_CA: &[u8] = b"x-amzn-mqtt-ca";

/// The ALPN protocol id AWS IoT Core accepts for MQTT with a custom
/// authorizer on port 443 (the credentials in the CONNECT's username and
/// password).
pub const ALPN_MQTT: &[u8] = b"mqtt";

/// The ALPN protocol id AWS IoT Core accepts for HTTPS with X.509 client
/// certificates on port 443 (a device's HTTPS publish).
pub const ALPN_HTTP_CA: &[u8] = b"x-amzn-http-ca";

/// Decides whether a certificate chained to the CA may connect: `Ok` or the
/// reason it may not ("certificate X is INACTIVE").
pub(crate) type Admission = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// The CA certificate is not usable as a trust anchor.
    #[error("the emulator CA certificate is not a usable trust anchor: {0}")]
    TrustAnchor(String),
    /// rustls refused the server certificate, its key or the protocol versions.
    #[error("cannot build the TLS server configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The certificate the emulator's TLS listener presents, replaceable while
/// it runs: a connection made after [`ServerCertificate::replace`] gets the
/// new one, connections already made keep theirs.
///
/// [`Emulator::start`](crate::Emulator::start) makes one from its PKI's
/// server certificate unless
/// [`EmulatorConfig::with_server_certificate`](crate::EmulatorConfig::with_server_certificate)
/// hands it one: what a local Greengrass core does, whose certificate comes
/// from its own CA and rotates.
#[derive(Clone)]
pub struct ServerCertificate {
    current: Arc<RwLock<Arc<CertifiedKey>>>,
}

impl fmt::Debug for ServerCertificate {
    /// Shows the size of the chain, never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCertificate")
            .field("chain_len", &self.get().cert.len())
            .finish_non_exhaustive()
    }
}

impl ServerCertificate {
    /// A server certificate: `chain` (the server's certificate first) and its
    /// private key. Fails if rustls cannot use the key (kind unsupported, or
    /// not the certificate's).
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<ServerCertificate, TlsSetupError> {
        Ok(ServerCertificate {
            current: Arc::new(RwLock::new(certified_key(chain, key)?)),
        })
    }

    /// Presents `chain` and `key` from the next handshake on; the same
    /// checks as [`ServerCertificate::new`], and on an error the certificate
    /// in use stays.
    pub fn replace(
        &self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<(), TlsSetupError> {
        let next = certified_key(chain, key)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = next;
        Ok(())
    }

    /// The certificate chain presented now, the server's certificate first.
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.get().cert.clone()
    }

    fn get(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }
}

impl ResolvesServerCert for ServerCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

/// Loads `key` with the crypto provider the listener uses and checks that it
/// is the key of `chain`'s first certificate.
fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<CertifiedKey>, TlsSetupError> {
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let certified = CertifiedKey::from_der(chain, key, &provider)?;
    Ok(Arc::new(certified))
}

/// The two server configurations of the listener, chosen per ClientHello.
#[derive(Clone, Debug)]
pub(crate) struct TlsConfigs {
    plain: Arc<ServerConfig>,
    alpn: Arc<ServerConfig>,
    http: Arc<ServerConfig>,
    custom_auth: Arc<ServerConfig>,
}

impl TlsConfigs {
    /// Builds the configurations: the server presents `certificate`; client
    /// certificates are verified against the CAs in `client_roots` then
    /// `admission`.
    pub(crate) fn new(
        client_roots: &[CertificateDer<'static>],
        certificate: &ServerCertificate,
        admission: Admission,
    ) -> Result<TlsConfigs, TlsSetupError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = RootCertStore::empty();
        for ca in client_roots {
            roots
                .add(ca.clone())
                .map_err(|e| TlsSetupError::TrustAnchor(e.to_string()))?;
        }
        let webpki =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .build()
                .map_err(|e| TlsSetupError::TrustAnchor(e.to_string()))?;
        let verifier = Arc::new(RegisteredClientVerifier {
            inner: webpki,
            admission,
        });
        let config = |alpn: &[u8]| {
            server_config(&provider, Arc::clone(&verifier) as _, certificate).map(|mut config| {
                if !alpn.is_empty() {
                    config.alpn_protocols = vec![alpn.to_vec()];
                }
                config
            })
        };
        let plain = config(b"")?;
        let alpn = config(ALPN_MQTT_CA)?;
        let http = config(ALPN_HTTP_CA)?;
        let custom_auth = config(ALPN_MQTT)?;
        Ok(TlsConfigs {
            plain: Arc::new(plain),
            alpn: Arc::new(alpn),
            http: Arc::new(http),
            custom_auth: Arc::new(custom_auth),
        })
    }

    /// The configuration for a client: with ALPN `x-amzn-mqtt-ca` selected if
    /// the client offers it, else `x-amzn-http-ca` if it offers that (HTTPS
    /// on the MQTT port), else `mqtt` (a custom authorizer), without ALPN
    /// otherwise.
    pub(crate) fn for_client(&self, hello: &ClientHello<'_>) -> Arc<ServerConfig> {
        let offers = |id: &[u8]| {
            hello
                .alpn()
                .is_some_and(|mut protocols| protocols.any(|p| p == id))
        };
        if offers(ALPN_MQTT_CA) {
            Arc::clone(&self.alpn)
        } else if offers(ALPN_HTTP_CA) {
            Arc::clone(&self.http)
        } else if offers(ALPN_MQTT) {
            Arc::clone(&self.custom_auth)
        } else {
            Arc::clone(&self.plain)
        }
    }
}

fn server_config(
    provider: &Arc<CryptoProvider>,
    verifier: Arc<dyn ClientCertVerifier>,
    certificate: &ServerCertificate,
) -> Result<ServerConfig, TlsSetupError> {
    let config = ServerConfig::builder_with_provider(Arc::clone(provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(certificate.clone()));
    Ok(config)
}

/// Verifies a client certificate against the emulator CA (webpki), then asks
/// the registry whether it may connect.
struct RegisteredClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    admission: Admission,
}

impl fmt::Debug for RegisteredClientVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisteredClientVerifier")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl ClientCertVerifier for RegisteredClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        // A WebSocket client authenticates with SigV4 or a custom authorizer.
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let id = certificate_id(end_entity);
        if let Err(e) = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)
        {
            tracing::warn!(
                certificate_id = %id,
                "TLS client refused: its certificate is not valid for this emulator's CA ({e}); \
                 use a certificate issued by `iotcore thing create`"
            );
            return Err(e);
        }
        if let Err(why) = (self.admission)(&id) {
            tracing::warn!("TLS client refused: {why}");
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ));
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
