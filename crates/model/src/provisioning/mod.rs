//! Fleet provisioning's device MQTT API: CreateKeysAndCertificate,
//! CreateCertificateFromCsr and RegisterThing.
//!
//! ```text
//! $aws/certificates/create/{json|cbor}[/accepted|/rejected]
//! $aws/certificates/create-from-csr/{json|cbor}[/accepted|/rejected]
//! $aws/provisioning-templates/{template}/provision/{json|cbor}[/accepted|/rejected]
//! ```
//!
//! * [`topics`]: building and parsing those topics ([`ProvisioningTopic`]).
//! * [`messages`]: the request and reply documents, with the service's
//!   validating parsers ([`RegisterThingRequest::parse`], …).
//! * [`ProvisioningError`]: why the service refuses a request, with the
//!   `statusCode`, `errorCode` and `errorMessage` of the `/rejected` document
//!   ([`ErrorResponse`]).
//!
//! There is no `clientToken`: a client has at most one request of each API
//! outstanding and matches replies by topic. Replies go only to the connection
//! that sent the request. Facts and sources: docs/aws-iot-core-behaviour.md §4.

mod error;
pub mod messages;
pub mod topics;

pub use error::{ErrorResponse, ProvisioningError};
pub use messages::{
    CreateCertificateFromCsrAccepted, CreateCertificateFromCsrRequest,
    CreateKeysAndCertificateAccepted, MAX_PARAMETER_KEY_CHARS, MAX_PARAMETER_VALUE_CHARS,
    RegisterThingAccepted, RegisterThingRequest, parse_create_keys_request,
};
pub use topics::{
    MAX_TEMPLATE_NAME_LEN, PayloadFormat, ProvisioningApi, ProvisioningTopic,
    ProvisioningTopicError, ProvisioningTopicKind, TemplateNameError, validate_template_name,
};

#[cfg(test)]
mod tests;
