//! The control layer's error: AWS's error code, its HTTP status, and a message
//! that says what failed and what to do.

use std::fmt;

use crate::pki::PkiError;
use crate::store::{StoreError, TemplateError};

/// AWS's error codes, as the `iot` and `iot-data` service models name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The request is malformed or breaks a rule (400).
    InvalidRequest,
    /// The resource does not exist (404).
    ResourceNotFound,
    /// The resource already exists (409).
    ResourceAlreadyExists,
    /// The resource is in use and cannot be deleted (409).
    DeleteConflict,
    /// The version given is not the resource's (409).
    VersionConflict,
    /// The resource's status does not allow the change (409).
    InvalidStateTransition,
    /// A quota was reached (410 on `iot`).
    LimitExceeded,
    /// A policy has as many versions as it may (409).
    VersionsLimitExceeded,
    /// The certificate's status does not allow the operation (406).
    CertificateState,
    /// The certificate is not valid (400).
    CertificateValidation,
    /// The policy document is refused (400).
    MalformedPolicy,
    /// The caller may not do this (401).
    Unauthorized,
    /// TestInvokeAuthorizer: the authorizer's function answered an invalid response (400).
    InvalidResponse,
    /// iot-data: the shadow's version did not match (409).
    Conflict,
    /// iot-data: the body is larger than the operation accepts (413).
    RequestEntityTooLarge,
    /// iot-data: the document is not JSON (415).
    UnsupportedDocumentEncoding,
    /// No operation has this method and path (404).
    UnknownOperation,
    /// The emulator failed (500).
    InternalFailure,
}

impl ErrorCode {
    /// AWS's name: `ResourceNotFoundException`, ….
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "InvalidRequestException",
            ErrorCode::ResourceNotFound => "ResourceNotFoundException",
            ErrorCode::ResourceAlreadyExists => "ResourceAlreadyExistsException",
            ErrorCode::DeleteConflict => "DeleteConflictException",
            ErrorCode::VersionConflict => "VersionConflictException",
            ErrorCode::InvalidStateTransition => "InvalidStateTransitionException",
            ErrorCode::LimitExceeded => "LimitExceededException",
            ErrorCode::VersionsLimitExceeded => "VersionsLimitExceededException",
            ErrorCode::CertificateState => "CertificateStateException",
            ErrorCode::CertificateValidation => "CertificateValidationException",
            ErrorCode::MalformedPolicy => "MalformedPolicyException",
            ErrorCode::Unauthorized => "UnauthorizedException",
            ErrorCode::InvalidResponse => "InvalidResponseException",
            ErrorCode::Conflict => "ConflictException",
            ErrorCode::RequestEntityTooLarge => "RequestEntityTooLargeException",
            ErrorCode::UnsupportedDocumentEncoding => "UnsupportedDocumentEncodingException",
            ErrorCode::UnknownOperation => "UnknownOperationException",
            ErrorCode::InternalFailure => "InternalFailureException",
        }
    }

    /// The HTTP status AWS's service model gives the error.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidRequest
            | ErrorCode::CertificateValidation
            | ErrorCode::InvalidResponse
            | ErrorCode::MalformedPolicy => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::ResourceNotFound | ErrorCode::UnknownOperation => 404,
            ErrorCode::CertificateState => 406,
            ErrorCode::ResourceAlreadyExists
            | ErrorCode::DeleteConflict
            | ErrorCode::VersionConflict
            | ErrorCode::InvalidStateTransition
            | ErrorCode::VersionsLimitExceeded
            | ErrorCode::Conflict => 409,
            ErrorCode::LimitExceeded => 410,
            ErrorCode::RequestEntityTooLarge => 413,
            ErrorCode::UnsupportedDocumentEncoding => 415,
            ErrorCode::InternalFailure => 500,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a control operation failed: AWS's error code and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ControlError {
    code: ErrorCode,
    message: String,
    /// Boxed: most errors name no resource, and every `Result` of the
    /// control layer carries this error's size.
    resource: Option<Box<Resource>>,
}

/// The resource an error names, as AWS's error members do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Resource {
    id: Option<String>,
    arn: Option<String>,
    resource_type: Option<String>,
}

impl ControlError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ControlError {
        ControlError {
            code,
            message: message.into(),
            resource: None,
        }
    }

    /// An [`ErrorCode::InvalidRequest`].
    pub fn invalid(message: impl Into<String>) -> ControlError {
        ControlError::new(ErrorCode::InvalidRequest, message)
    }

    /// An [`ErrorCode::ResourceNotFound`].
    pub fn not_found(message: impl Into<String>) -> ControlError {
        ControlError::new(ErrorCode::ResourceNotFound, message)
    }

    /// Adds the `resourceId` and `resourceArn` AWS returns with
    /// ResourceAlreadyExistsException.
    pub fn with_resource(mut self, id: impl Into<String>, arn: impl Into<String>) -> ControlError {
        let resource = self.resource.get_or_insert_default();
        resource.id = Some(id.into());
        resource.arn = Some(arn.into());
        self
    }

    /// Adds the `resourceId` and `resourceType` Greengrass returns with
    /// ResourceNotFoundException (e.g. a thing name and `coreDevice`).
    pub fn with_resource_type(
        mut self,
        id: impl Into<String>,
        resource_type: impl Into<String>,
    ) -> ControlError {
        let resource = self.resource.get_or_insert_default();
        resource.id = Some(id.into());
        resource.resource_type = Some(resource_type.into());
        self
    }

    /// AWS's error code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The existing resource's id, with ResourceAlreadyExistsException (the
    /// missing one's, with Greengrass's ResourceNotFoundException).
    pub fn resource_id(&self) -> Option<&str> {
        self.resource.as_ref()?.id.as_deref()
    }

    /// The existing resource's ARN, with ResourceAlreadyExistsException.
    pub fn resource_arn(&self) -> Option<&str> {
        self.resource.as_ref()?.arn.as_deref()
    }

    /// The missing resource's type, with Greengrass's ResourceNotFoundException.
    pub fn resource_type(&self) -> Option<&str> {
        self.resource.as_ref()?.resource_type.as_deref()
    }
}

impl From<StoreError> for ControlError {
    fn from(e: StoreError) -> Self {
        use StoreError as S;
        let code = match &e {
            S::InvalidThingName { .. }
            | S::InvalidAttribute { .. }
            | S::InvalidCertificateId(_)
            | S::InvalidPolicyName { .. }
            | S::TooManySearchableAttributes(_)
            | S::ThingGroupTooDeep(_)
            | S::ThingTypeInUse { .. } => ErrorCode::InvalidRequest,
            S::ThingExists(_)
            | S::CertificateExists(_)
            | S::PolicyExists(_)
            | S::ThingTypeExists(_)
            | S::ThingGroupExists(_)
            | S::CredentialExists(_)
            | S::AuthorizerExists(_)
            | S::JobExists(_) => ErrorCode::ResourceAlreadyExists,
            S::ThingNotFound(_)
            | S::CertificateNotFound(_)
            | S::PolicyNotFound(_)
            | S::PolicyVersionNotFound { .. }
            | S::ThingTypeNotFound(_)
            | S::AuthorizerNotFound(_)
            | S::CoreDeviceNotFound(_)
            | S::ThingGroupNotFound(_) => ErrorCode::ResourceNotFound,
            S::VersionConflict { .. } => ErrorCode::VersionConflict,
            S::ThingHasPrincipals(_) => ErrorCode::InvalidRequest,
            S::StatusChange { .. } | S::CertificateActive(_) => ErrorCode::CertificateState,
            S::CertificateAttached { .. }
            | S::CertificateHasPolicies { .. }
            | S::PolicyAttached { .. }
            | S::PolicyHasVersions { .. }
            | S::DefaultPolicyVersion { .. }
            | S::ThingGroupHasChildren(_) => ErrorCode::DeleteConflict,
            S::MalformedPolicy { .. } => ErrorCode::MalformedPolicy,
            S::PolicyVersionLimit { .. } => ErrorCode::VersionsLimitExceeded,
            S::PolicyLimit { .. } | S::TooManyGroups(_) => ErrorCode::LimitExceeded,
            _ => ErrorCode::InternalFailure,
        };
        if code == ErrorCode::InternalFailure {
            tracing::error!("control operation failed in the store: {e}");
        }
        ControlError::new(code, e.to_string())
    }
}

impl From<crate::policy::LoadError> for ControlError {
    /// A missing certificate or policy is a `ResourceNotFoundException`.
    fn from(e: crate::policy::LoadError) -> Self {
        use crate::policy::LoadError as L;
        match e {
            L::UnknownCertificate(id) => StoreError::CertificateNotFound(id).into(),
            L::UnknownPolicy(name) => StoreError::PolicyNotFound(name).into(),
            L::Store(e) => e.into(),
        }
    }
}

impl From<PkiError> for ControlError {
    fn from(e: PkiError) -> Self {
        ControlError::new(ErrorCode::CertificateValidation, e.to_string())
    }
}

impl From<TemplateError> for ControlError {
    fn from(e: TemplateError) -> Self {
        let code = match &e {
            TemplateError::Store(_) => {
                let TemplateError::Store(store) = e else {
                    unreachable!("matched above")
                };
                return store.into();
            }
            TemplateError::Exists(_) => ErrorCode::ResourceAlreadyExists,
            TemplateError::NotFound(_) => ErrorCode::ResourceNotFound,
            _ => ErrorCode::InvalidRequest,
        };
        ControlError::new(code, e.to_string())
    }
}
