//! Why Greengrass discovery failed, and what to check.

use crate::error::ConfigError;

/// Why [`discover`](super::discover) failed. Each variant says whose side is
/// at fault and what to check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// 403: the device's policies do not allow discovery.
    #[error(
        "discovery of thing {thing:?} was refused (HTTP 403): the device's policy must allow \
         greengrass:Discover on arn:aws:iot:<region>:<account>:thing/{thing} (thing policy \
         variables such as ${{iot:Connection.Thing.ThingName}} do not work there)"
    )]
    Forbidden {
        /// The thing discovery was asked for.
        thing: String,
    },
    /// 404: no core device the thing is associated with has connectivity
    /// information.
    #[error(
        "discovery found no core device for thing {thing:?} (HTTP 404): associate the thing with \
         a core device that has connectivity info (greengrassv2 \
         BatchAssociateClientDeviceWithCoreDevice; `iotcore greengrass associate CORE --thing \
         {thing}` on the emulator)"
    )]
    NotFound {
        /// The thing discovery was asked for.
        thing: String,
    },
    /// The service closed the connection without an HTTP answer (or refused
    /// the client certificate during the TLS handshake): what AWS does for a
    /// certificate that is not ACTIVE or not attached to the thing.
    #[error(
        "the discovery service closed the connection without answering for thing {thing:?}: \
         check that the certificate is ACTIVE and attached to the thing ({detail})"
    )]
    ConnectionClosed {
        /// The thing discovery was asked for.
        thing: String,
        /// What the connection reported.
        detail: String,
    },
    /// Another HTTP status.
    #[error("discovery answered HTTP {status}: {body}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// A 200 whose body is not a discovery response.
    #[error("discovery answered a body that is not a discovery response: {detail}")]
    InvalidResponse {
        /// What the JSON parser said.
        detail: String,
    },
    /// The TLS handshake failed on our side (the server's certificate is not
    /// trusted, or not for the server name asked for).
    #[error(
        "TLS with the discovery endpoint failed: {detail}; check the root CA and the server \
         name (SNI) the endpoint's certificate is for"
    )]
    Tls {
        /// rustls's description.
        detail: String,
    },
    /// The endpoint could not be reached, or the exchange broke off.
    #[error("cannot reach the discovery endpoint {endpoint}: {detail}")]
    Network {
        /// `host:port`.
        endpoint: String,
        /// The operating system's or HTTP client's description.
        detail: String,
    },
    /// No answer within the endpoint's timeout.
    #[error("the discovery endpoint {endpoint} did not answer within {seconds} s")]
    Timeout {
        /// `host:port`.
        endpoint: String,
        /// The timeout.
        seconds: u64,
    },
    /// The TLS configuration could not be built (a root CA, the server name).
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl DiscoveryError {
    /// True when the discovery service refused the thing (403, 404, or the
    /// connection closed for its certificate): asking again cannot help until
    /// someone changes a policy, an association or the certificate.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            DiscoveryError::Forbidden { .. }
                | DiscoveryError::NotFound { .. }
                | DiscoveryError::ConnectionClosed { .. }
        )
    }
}
