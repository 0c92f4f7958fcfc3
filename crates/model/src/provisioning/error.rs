//! Why fleet provisioning refuses a request, and the `/rejected` document.
//!
//! AWS documents the document's fields (`statusCode`, `errorCode`,
//! `errorMessage`) but few of its values: the empty-token error (400
//! `InvalidCertificateOwnershipToken` "Certificate ownership token cannot be
//! empty.") is observed in aws/aws-iot-device-sdk-js-v2#69 and a 403 for
//! RegisterThing in aws-samples/aws-iot-fleet-provisioning#25. The other codes
//! and messages are the emulator's choice (docs/aws-iot-core-behaviour.md §4
//! marks them UNCONFIRMED); they follow AWS's control-plane exception names.

use serde::{Deserialize, Serialize};

/// A refused provisioning request. `Display` is the `errorMessage`;
/// [`status_code`](Self::status_code) and [`error_code`](Self::error_code)
/// are the other two fields of the `/rejected` document.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProvisioningError {
    /// 400 `InvalidPayload`: the request is not the JSON object the API takes.
    #[error("Invalid request payload: {0}")]
    InvalidPayload(String),
    /// 400 `InvalidCsr`: the certificate signing request is missing, malformed,
    /// not signed by its key, or its key is not accepted.
    #[error("Invalid certificate signing request: {0}")]
    InvalidCsr(String),
    /// 400 `InvalidCertificateOwnershipToken`: the request has no token.
    #[error("Certificate ownership token cannot be empty.")]
    EmptyToken,
    /// 400 `InvalidCertificateOwnershipToken`: the token is unknown, or was
    /// already used by a RegisterThing that succeeded.
    #[error("Certificate ownership token is invalid or was already used.")]
    InvalidToken,
    /// 400 `InvalidCertificateOwnershipToken`: the token is more than an hour
    /// old; its certificate is deleted.
    #[error(
        "Certificate ownership token has expired: call CreateKeysAndCertificate or CreateCertificateFromCsr again."
    )]
    ExpiredToken,
    /// 404 `ResourceNotFound`: no provisioning template has this name.
    #[error("Provisioning template {name} does not exist.")]
    TemplateNotFound {
        /// The template asked for.
        name: String,
    },
    /// 400 `InvalidParameters`: a parameter the template needs is missing,
    /// or a parameter is too long.
    #[error("Invalid parameters: {0}")]
    InvalidParameters(String),
    /// 400 `InvalidTemplate`: the template cannot be applied with these
    /// parameters (an intrinsic function failed, a resource property is invalid).
    #[error("The provisioning template could not be applied: {0}")]
    TemplateFailure(String),
    /// 409 `ResourceConflict`: a resource the template declares exists and
    /// its `OverrideSettings` say `FAIL`, or differs in a way that cannot be changed.
    #[error("Resource conflict: {0}")]
    ResourceConflict(String),
    /// 403 `AccessDenied`: the template's pre-provisioning hook refused the
    /// registration, failed, or did not answer in time.
    #[error("Access denied: {0}")]
    AccessDenied(String),
    /// 500 `InternalFailure`: the service failed (the emulator could not read
    /// or write its store, or issue a certificate).
    #[error("Internal service failure.")]
    InternalFailure,
}

impl ProvisioningError {
    /// The HTTP-style `statusCode`: 400, 403, 404, 409 or 500.
    pub fn status_code(&self) -> u16 {
        match self {
            ProvisioningError::InvalidPayload(_)
            | ProvisioningError::InvalidCsr(_)
            | ProvisioningError::EmptyToken
            | ProvisioningError::InvalidToken
            | ProvisioningError::ExpiredToken
            | ProvisioningError::InvalidParameters(_)
            | ProvisioningError::TemplateFailure(_) => 400,
            ProvisioningError::AccessDenied(_) => 403,
            ProvisioningError::TemplateNotFound { .. } => 404,
            ProvisioningError::ResourceConflict(_) => 409,
            ProvisioningError::InternalFailure => 500,
        }
    }

    /// The `errorCode`.
    pub fn error_code(&self) -> &'static str {
        match self {
            ProvisioningError::InvalidPayload(_) => "InvalidPayload",
            ProvisioningError::InvalidCsr(_) => "InvalidCsr",
            ProvisioningError::EmptyToken
            | ProvisioningError::InvalidToken
            | ProvisioningError::ExpiredToken => "InvalidCertificateOwnershipToken",
            ProvisioningError::TemplateNotFound { .. } => "ResourceNotFound",
            ProvisioningError::InvalidParameters(_) => "InvalidParameters",
            ProvisioningError::TemplateFailure(_) => "InvalidTemplate",
            ProvisioningError::ResourceConflict(_) => "ResourceConflict",
            ProvisioningError::AccessDenied(_) => "AccessDenied",
            ProvisioningError::InternalFailure => "InternalFailure",
        }
    }

    /// The `/rejected` document.
    pub fn to_response(&self) -> ErrorResponse {
        ErrorResponse {
            status_code: self.status_code(),
            error_code: self.error_code().to_owned(),
            error_message: self.to_string(),
        }
    }
}

/// The document on `…/rejected`: `{"statusCode","errorCode","errorMessage"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorResponse {
    /// The HTTP-style status (400, 403, 404, …).
    pub status_code: u16,
    /// The error's code (`InvalidCertificateOwnershipToken`, …).
    pub error_code: String,
    /// What went wrong.
    pub error_message: String,
}

impl ErrorResponse {
    /// The document as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings and a number always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }
}
