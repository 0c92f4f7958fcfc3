//! Why provisioning failed.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use iotcore_model::provisioning::ErrorResponse;

use crate::error::{ConfigError, Error};

/// A failed provisioning step. Every variant says what failed and what to
/// do; [`ProvisioningError::Rejected`] carries AWS's `statusCode`,
/// `errorCode` and `errorMessage` ([`error_code`](Self::error_code),
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
    /// The service refused the request (`…/rejected`).
    #[error(
        "{operation} was rejected with {} {} \"{}\"{}",
        .response.status_code,
        .response.error_code,
        .response.error_message,
        advice(&.response.error_code)
    )]
    Rejected {
        /// `CreateCertificateFromCsr`, `CreateKeysAndCertificate` or `RegisterThing`.
        operation: &'static str,
        /// The service's error document.
        response: ErrorResponse,
    },
    /// No reply in time.
    #[error(
        "{operation}: no reply within {after:?}; check the connection, and that the claim policy \
         allows iot:Publish on the request topic and iot:Subscribe/iot:Receive on its \
         accepted/rejected topics"
    )]
    Timeout {
        /// The operation.
        operation: &'static str,
        /// The time waited.
        after: Duration,
    },
    /// The MQTT request under the operation failed (client closed,
    /// subscription refused, publish refused).
    #[error("{operation}: the MQTT request failed: {source}")]
    Mqtt {
        /// The operation.
        operation: &'static str,
        /// The client's error.
        #[source]
        source: Error,
    },
    /// The service's reply is not the JSON AWS sends.
    #[error("{operation}: the service's reply is not valid ({detail}); the service is at fault")]
    InvalidReply {
        /// The operation.
        operation: &'static str,
        /// What is wrong with it.
        detail: String,
    },
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

/// What to do about a rejection, by AWS's code.
fn advice(code: &str) -> &'static str {
    match code {
        "InvalidCertificateOwnershipToken" => {
            ": the token is empty, unknown, used or older than one hour; create a new certificate \
             and register again"
        }
        "ResourceNotFound" => ": no provisioning template has that name",
        "InvalidParameters" => ": pass every parameter the template needs",
        "InvalidCsr" => {
            ": send a PEM PKCS#10 request signed by an RSA ≥ 2048 or ECDSA P-256/384/521 key"
        }
        "AccessDenied" => ": the template's pre-provisioning hook refused this device",
        "InvalidTemplate" => ": the template cannot be applied with these parameters",
        _ => "",
    }
}

impl ProvisioningError {
    /// The service's error document, for [`ProvisioningError::Rejected`].
    pub fn rejection(&self) -> Option<&ErrorResponse> {
        match self {
            ProvisioningError::Rejected { response, .. } => Some(response),
            _ => None,
        }
    }

    /// AWS's `errorCode` (`InvalidCertificateOwnershipToken`, …), for a rejection.
    pub fn error_code(&self) -> Option<&str> {
        self.rejection().map(|r| r.error_code.as_str())
    }

    /// AWS's `statusCode` (400, 403, 404, …), for a rejection.
    pub fn status_code(&self) -> Option<u16> {
        self.rejection().map(|r| r.status_code)
    }

    /// AWS's `errorMessage`, for a rejection.
    pub fn error_message(&self) -> Option<&str> {
        self.rejection().map(|r| r.error_message.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejection_shows_aws_fields_and_advice() {
        let error = ProvisioningError::Rejected {
            operation: "RegisterThing",
            response: ErrorResponse {
                status_code: 400,
                error_code: "InvalidCertificateOwnershipToken".into(),
                error_message: "Certificate ownership token cannot be empty.".into(),
            },
        };
        let text = error.to_string();
        assert!(text.starts_with(
            "RegisterThing was rejected with 400 InvalidCertificateOwnershipToken \"Certificate ownership token cannot be empty.\""
        ), "{text}");
        assert!(text.contains("create a new certificate"), "{text}");
        assert_eq!(error.status_code(), Some(400));
        assert_eq!(error.error_code(), Some("InvalidCertificateOwnershipToken"));
        let timeout = ProvisioningError::Timeout {
            operation: "RegisterThing",
            after: Duration::from_secs(1),
        };
        assert_eq!(timeout.error_code(), None);
    }
}
