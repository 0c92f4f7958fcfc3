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
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, WebPkiClientVerifier};
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

/// The two server configurations of the listener, chosen per ClientHello.
#[derive(Clone, Debug)]
pub(crate) struct TlsConfigs {
    plain: Arc<ServerConfig>,
    alpn: Arc<ServerConfig>,
    http: Arc<ServerConfig>,
    custom_auth: Arc<ServerConfig>,
}

impl TlsConfigs {
    /// Builds the configurations: server certificate `chain` + `key`, client
    /// certificates verified against `ca` then `admission`.
    pub(crate) fn new(
        ca: &CertificateDer<'static>,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        admission: Admission,
    ) -> Result<TlsConfigs, TlsSetupError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = RootCertStore::empty();
        roots
            .add(ca.clone())
            .map_err(|e| TlsSetupError::TrustAnchor(e.to_string()))?;
        let webpki =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .build()
                .map_err(|e| TlsSetupError::TrustAnchor(e.to_string()))?;
        let verifier = Arc::new(RegisteredClientVerifier {
            inner: webpki,
            admission,
        });
        let plain = server_config(
            &provider,
            Arc::clone(&verifier) as _,
            chain.clone(),
            key.clone_key(),
        )?;
        let mut alpn = server_config(
            &provider,
            Arc::clone(&verifier) as _,
            chain.clone(),
            key.clone_key(),
        )?;
        alpn.alpn_protocols = vec![ALPN_MQTT_CA.to_vec()];
        let mut http = server_config(
            &provider,
            Arc::clone(&verifier) as _,
            chain.clone(),
            key.clone_key(),
        )?;
        http.alpn_protocols = vec![ALPN_HTTP_CA.to_vec()];
        let mut custom_auth = server_config(&provider, verifier, chain, key)?;
        custom_auth.alpn_protocols = vec![ALPN_MQTT.to_vec()];
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
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, TlsSetupError> {
    let config = ServerConfig::builder_with_provider(Arc::clone(provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
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
