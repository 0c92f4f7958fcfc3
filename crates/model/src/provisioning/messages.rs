//! Request and reply documents of the provisioning API (JSON format), as AWS
//! sends and takes them (field names camelCase). Building one is plain
//! construction plus [`serde`]; the `parse` functions are the service's
//! validating parsers.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::ProvisioningError;

/// Longest parameter name, in characters (control-plane RegisterThing reference).
pub const MAX_PARAMETER_KEY_CHARS: usize = 2048;
/// Longest parameter value, in characters.
pub const MAX_PARAMETER_VALUE_CHARS: usize = 4096;

/// A request payload as a JSON object; an empty payload is an empty object.
fn parse_object(payload: &[u8]) -> Result<Map<String, Value>, ProvisioningError> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(ProvisioningError::InvalidPayload(
            "the payload must be a JSON object".into(),
        )),
        Err(e) => Err(ProvisioningError::InvalidPayload(format!(
            "the payload is not JSON: {e}"
        ))),
    }
}

/// Checks a CreateKeysAndCertificate request: AWS documents an empty payload,
/// AWS's SDKs send `{}`; both (and any JSON object) are accepted.
pub fn parse_create_keys_request(payload: &[u8]) -> Result<(), ProvisioningError> {
    parse_object(payload).map(drop)
}

/// CreateCertificateFromCsr's request: `{"certificateSigningRequest":"<PEM>"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateCertificateFromCsrRequest {
    /// The PKCS#10 certificate signing request, PEM-encoded.
    pub certificate_signing_request: String,
}

impl CreateCertificateFromCsrRequest {
    /// The request as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses a request as the service does: a JSON object with a non-empty
    /// string `certificateSigningRequest` (its content is checked by the CA).
    pub fn parse(payload: &[u8]) -> Result<Self, ProvisioningError> {
        let mut object = parse_object(payload)?;
        match object.remove("certificateSigningRequest") {
            Some(Value::String(csr)) if !csr.trim().is_empty() => {
                Ok(CreateCertificateFromCsrRequest {
                    certificate_signing_request: csr,
                })
            }
            Some(Value::String(_)) | None | Some(Value::Null) => {
                Err(ProvisioningError::InvalidCsr(
                    "certificateSigningRequest is missing or empty".into(),
                ))
            }
            Some(_) => Err(ProvisioningError::InvalidCsr(
                "certificateSigningRequest must be a string holding a PEM CSR".into(),
            )),
        }
    }
}

/// CreateCertificateFromCsr's `/accepted` document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateCertificateFromCsrAccepted {
    /// Proves ownership of the certificate to RegisterThing, for one hour.
    pub certificate_ownership_token: String,
    /// The certificate's id (64 hex characters).
    pub certificate_id: String,
    /// The certificate, PEM-encoded.
    pub certificate_pem: String,
}

/// CreateKeysAndCertificate's `/accepted` document. `Debug` never shows the
/// private key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateKeysAndCertificateAccepted {
    /// The certificate's id (64 hex characters).
    pub certificate_id: String,
    /// The certificate, PEM-encoded.
    pub certificate_pem: String,
    /// The private key the service made, PEM-encoded.
    pub private_key: String,
    /// Proves ownership of the certificate to RegisterThing, for one hour.
    pub certificate_ownership_token: String,
}

impl fmt::Debug for CreateKeysAndCertificateAccepted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateKeysAndCertificateAccepted")
            .field("certificate_id", &self.certificate_id)
            .field("private_key", &"[elided]")
            .finish_non_exhaustive()
    }
}

/// RegisterThing's request: the ownership token and the template's parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterThingRequest {
    /// The token CreateKeysAndCertificate or CreateCertificateFromCsr returned.
    pub certificate_ownership_token: String,
    /// Parameter values for the template (and its pre-provisioning hook).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
}

impl RegisterThingRequest {
    /// The request as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses a request as the service does: a JSON object; the token must be
    /// a non-empty string; `parameters`, if present, an object of strings with
    /// names of at most [`MAX_PARAMETER_KEY_CHARS`] and values of at most
    /// [`MAX_PARAMETER_VALUE_CHARS`] characters.
    pub fn parse(payload: &[u8]) -> Result<Self, ProvisioningError> {
        let mut object = parse_object(payload)?;
        let token = match object.remove("certificateOwnershipToken") {
            None | Some(Value::Null) => return Err(ProvisioningError::EmptyToken),
            Some(Value::String(token)) if token.is_empty() => {
                return Err(ProvisioningError::EmptyToken);
            }
            Some(Value::String(token)) => token,
            Some(_) => {
                return Err(ProvisioningError::InvalidPayload(
                    "certificateOwnershipToken must be a string".into(),
                ));
            }
        };
        let parameters = match object.remove("parameters") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(parameters)) => parameters
                .into_iter()
                .map(|(key, value)| parameter(key, value))
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(ProvisioningError::InvalidPayload(
                    "parameters must be an object of strings".into(),
                ));
            }
        };
        Ok(RegisterThingRequest {
            certificate_ownership_token: token,
            parameters,
        })
    }
}

fn parameter(key: String, value: Value) -> Result<(String, String), ProvisioningError> {
    let Value::String(value) = value else {
        return Err(ProvisioningError::InvalidPayload(format!(
            "parameter {key} must be a string"
        )));
    };
    if key.is_empty() || key.chars().count() > MAX_PARAMETER_KEY_CHARS {
        return Err(ProvisioningError::InvalidParameters(format!(
            "parameter names must have 1 to {MAX_PARAMETER_KEY_CHARS} characters"
        )));
    }
    if value.chars().count() > MAX_PARAMETER_VALUE_CHARS {
        return Err(ProvisioningError::InvalidParameters(format!(
            "the value of parameter {key} is longer than {MAX_PARAMETER_VALUE_CHARS} characters"
        )));
    }
    Ok((key, value))
}

/// RegisterThing's `/accepted` document.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterThingAccepted {
    /// The template's `DeviceConfiguration`, evaluated.
    #[serde(default)]
    pub device_configuration: BTreeMap<String, String>,
    /// The thing registered.
    pub thing_name: String,
}
