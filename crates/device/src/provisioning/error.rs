//! Why provisioning failed.

use std::io;
use std::path::PathBuf;

use crate::error::{ConfigError, Error};
use crate::service::{Rejection, ServiceError};

/// A failed provisioning step. Every variant says what failed and what to
/// do; a refused request ([`ProvisioningError::Service`]) carries AWS's
/// `statusCode`, `errorCode` and `errorMessage` ([`error_code`](Self::error_code),
/// [`status_code`](Self::status_code), [`rejection`](Self::rejection)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProvisioningError {
    /// The request is invalid and nothing was sent (template name, parameters).
    #[error("{0}; nothing was sent")]
    InvalidRequest(String),
    /// The claim identity could not be loaded or used for a connection.
    #[error("the claim credentials cannot be used: {0}")]
    Config(#[from] ConfigError),
    /// Connecting with the claim certificate failed.
    #[error(
        "cannot connect with the claim certificate: {0}; check the endpoint, the CA and that the \
         claim certificate is active with its claim policy attached"
    )]
    Connect(#[source] Error),
    /// A provisioning request failed: the service refused it
    /// ([`ServiceErrorKind::Rejected`](crate::service::ServiceErrorKind::Rejected), with AWS's `statusCode`, `errorCode`
    /// and `errorMessage`), no reply came in time, the MQTT request under it
    /// failed (client closed, subscription or publish refused), the
    /// connection lost its reply, or the reply was malformed. See
    /// [`ServiceError::kind`].
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The device key or its certificate signing request could not be made.
    #[error("cannot generate the device key and CSR: {0}")]
    Key(String),
    /// The new credentials could not be written.
    #[error(
        "cannot write {}: {source}; the thing is registered, but its credentials are lost \
         unless another directory is writable: fix the permissions and provision again",
        path.display()
    )]
    Persist {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Saved credentials could not be read back.
    #[error("cannot load the provisioned credentials from {}: {detail}", path.display())]
    Load {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

impl ProvisioningError {
    /// The framework's error, for [`ProvisioningError::Service`].
    pub fn service_error(&self) -> Option<&ServiceError> {
        match self {
            ProvisioningError::Service(e) => Some(e),
            _ => None,
        }
    }

    /// The service's refusal, for a rejection: AWS's `statusCode`,
    /// `errorCode`, `errorMessage`, and the whole document
    /// ([`Rejection::decode`] into [`ErrorResponse`](super::ErrorResponse)).
    pub fn rejection(&self) -> Option<&Rejection> {
        self.service_error().and_then(ServiceError::rejection)
    }

    /// AWS's `errorCode` (`InvalidCertificateOwnershipToken`, …), for a rejection.
    pub fn error_code(&self) -> Option<&str> {
        self.rejection().and_then(Rejection::error_code)
    }

    /// AWS's `statusCode` (400, 403, 404, …), for a rejection.
    pub fn status_code(&self) -> Option<u16> {
        self.rejection().and_then(Rejection::status_code)
    }

    /// AWS's `errorMessage`, for a rejection.
    pub fn error_message(&self) -> Option<&str> {
        self.rejection().map(Rejection::message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejection_shows_aws_fields() {
        use crate::service::{Detail, Rejection};
        let payload = bytes::Bytes::from_static(
            br#"{"statusCode":400,"errorCode":"InvalidCertificateOwnershipToken","errorMessage":"Certificate ownership token cannot be empty."}"#,
        );
        let error = ProvisioningError::from(ServiceError::new(
            "fleet provisioning",
            "RegisterThing",
            "$aws/provisioning-templates/t/provision/json",
            Detail::Rejected {
                service: "fleet provisioning",
                rejection: Rejection::parse(&payload).unwrap(),
                advice: None,
            },
        ));
        let text = error.to_string();
        assert_eq!(
            text,
            "RegisterThing on $aws/provisioning-templates/t/provision/json: the fleet \
             provisioning service rejected it with 400 InvalidCertificateOwnershipToken \
             \"Certificate ownership token cannot be empty.\""
        );
        assert_eq!(error.status_code(), Some(400));
        assert_eq!(error.error_code(), Some("InvalidCertificateOwnershipToken"));
        assert_eq!(
            error.error_message(),
            Some("Certificate ownership token cannot be empty.")
        );
        let invalid = ProvisioningError::InvalidRequest("x".into());
        assert_eq!(invalid.error_code(), None);
        assert!(invalid.service_error().is_none());
    }
}
