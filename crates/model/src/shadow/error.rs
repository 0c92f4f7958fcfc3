//! Why the Device Shadow service refuses a request, with AWS's codes and
//! messages (docs/aws-iot-core-behaviour.md §3.3), and the `/rejected` document.

use serde::{Deserialize, Serialize};

/// Deepest nesting AWS accepts in `desired` or `reported`: every object or
/// array is one level, the section's own object level 1, so
/// `{"state":{"reported":{"a":{"b":{"c":{"d":{"e":{"f":1}}}}}}}}` is at the
/// limit. The three figures AWS publishes are this one rule counted from three
/// places: 6 from the section ("maximum is 6" in the error), 5 objects nested
/// in the section (the old quota page's example), 8 from the document's root
/// (the current quota page). Sources in docs/aws-iot-core-behaviour.md §3.5.
pub const MAX_STATE_DEPTH: usize = 6;

/// Largest state (desired + reported as compact JSON, metadata excluded), in bytes.
pub const MAX_STATE_BYTES: usize = 8 * 1024;

/// Longest `clientToken`, in bytes.
pub const MAX_CLIENT_TOKEN_BYTES: usize = 64;

/// A section of the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Section {
    /// `desired`: what the application wants.
    Desired,
    /// `reported`: what the device reports.
    Reported,
}

impl Section {
    /// The JSON key: `desired` or `reported`.
    pub fn key(self) -> &'static str {
        match self {
            Section::Desired => "desired",
            Section::Reported => "reported",
        }
    }
}

/// A refused shadow request. `Display` is AWS's exact message; [`code`](Self::code)
/// is AWS's HTTP-style code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShadowError {
    /// 400: the payload is not JSON (or not a JSON object).
    #[error("Invalid JSON")]
    InvalidJson,
    /// 400: an update without `state`.
    #[error("Missing required node: state")]
    MissingState,
    /// 400: `state` is neither an object nor `null`.
    #[error("State node must be an object")]
    StateNotObject,
    /// 400: `desired` or `reported` is neither an object nor `null`.
    #[error("{} node must be an object", if *.0 == Section::Desired { "Desired" } else { "Reported" })]
    SectionNotObject(Section),
    /// 400: `version` is not a non-negative integer.
    #[error("Invalid version")]
    InvalidVersion,
    /// 400: `clientToken` is not a string of at most 64 bytes.
    #[error("Invalid clientToken")]
    InvalidClientToken,
    /// 400: `desired` or `reported` nests deeper than [`MAX_STATE_DEPTH`].
    #[error("JSON contains too many levels of nesting; maximum is 6")]
    TooDeep,
    /// 400: `state` holds a key other than `desired`/`reported` (such as
    /// `delta`), or an array holding `null`.
    #[error("State contains an invalid node")]
    InvalidStateNode,
    /// 404: get or delete of a shadow that does not exist; `name` is the
    /// shadow's name, or the thing's for a classic shadow.
    #[error("No shadow exists with name: '{name}'")]
    NotFound {
        /// The shadow's name (the thing's name for a classic shadow).
        name: String,
    },
    /// 409: the request's `version` is not the shadow's current version.
    #[error("Version conflict")]
    VersionConflict,
    /// 413: the state would exceed [`MAX_STATE_BYTES`].
    #[error("The payload exceeds the maximum size allowed")]
    PayloadTooLarge,
    /// 415: the payload is not UTF-8.
    #[error("Unsupported documented encoding; supported encoding is UTF-8")]
    UnsupportedEncoding,
    /// 429: more than 10 requests in flight on one connection. AWS documents
    /// the code, not the message; this text is the emulator's.
    #[error("Too Many Requests")]
    TooManyRequests,
    /// 500: the service failed (the emulator could not read or write its store).
    #[error("Internal service failure")]
    InternalFailure,
}

impl ShadowError {
    /// AWS's code: 400, 404, 409, 413, 415, 429 or 500.
    pub fn code(&self) -> u16 {
        match self {
            ShadowError::InvalidJson
            | ShadowError::MissingState
            | ShadowError::StateNotObject
            | ShadowError::SectionNotObject(_)
            | ShadowError::InvalidVersion
            | ShadowError::InvalidClientToken
            | ShadowError::TooDeep
            | ShadowError::InvalidStateNode => 400,
            ShadowError::NotFound { .. } => 404,
            ShadowError::VersionConflict => 409,
            ShadowError::PayloadTooLarge => 413,
            ShadowError::UnsupportedEncoding => 415,
            ShadowError::TooManyRequests => 429,
            ShadowError::InternalFailure => 500,
        }
    }

    /// The `/rejected` document: the request's `clientToken` (if it had a valid
    /// one) and a timestamp, which AWS leaves out of 409 replies.
    pub fn to_response(&self, client_token: Option<String>, now: u64) -> ErrorResponse {
        ErrorResponse {
            code: self.code(),
            message: self.to_string(),
            timestamp: (*self != ShadowError::VersionConflict).then_some(now),
            client_token,
        }
    }
}

/// The document on `…/rejected`: `{"code","message","timestamp","clientToken"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorResponse {
    /// AWS's code (400, 404, 409, …).
    pub code: u16,
    /// AWS's message.
    pub message: String,
    /// When the service refused, unix seconds; not in every error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    /// The request's `clientToken`, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}
