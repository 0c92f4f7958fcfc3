//! Request payloads: `…/update` ([`UpdateRequest`]) and `…/get`, `…/delete`
//! ([`TokenRequest`]). Building one is plain construction plus serde;
//! [`UpdateRequest::parse`] is the service's validating parser.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use super::error::{
    MAX_CLIENT_TOKEN_BYTES, MAX_STATE_BYTES, MAX_STATE_DEPTH, Section, ShadowError,
};
use super::json::{Object, compact_len, depth, has_null_in_array};

/// What an update does to one section (`desired` or `reported`).
#[derive(Clone, Debug, Default, PartialEq)]
pub enum StatePatch {
    /// The request leaves the section alone (the key is absent).
    #[default]
    Absent,
    /// `"section": null`: removes the whole section.
    Clear,
    /// `"section": {…}`: merged into the section (`null` values delete keys).
    Merge(Object),
}

impl StatePatch {
    /// The patch a JSON value stands for: `null` clears, an object merges;
    /// anything else is refused for `section`.
    pub fn from_value(value: Value, section: Section) -> Result<Self, ShadowError> {
        match value {
            Value::Null => Ok(StatePatch::Clear),
            Value::Object(object) => Ok(StatePatch::Merge(object)),
            _ => Err(ShadowError::SectionNotObject(section)),
        }
    }

    /// Whether the request leaves the section alone.
    pub fn is_absent(&self) -> bool {
        matches!(self, StatePatch::Absent)
    }

    /// The JSON the request carries for this section (`None` when absent).
    pub fn to_value(&self) -> Option<Value> {
        match self {
            StatePatch::Absent => None,
            StatePatch::Clear => Some(Value::Null),
            StatePatch::Merge(object) => Some(Value::Object(object.clone())),
        }
    }
}

impl Serialize for StatePatch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            StatePatch::Merge(object) => object.serialize(serializer),
            StatePatch::Absent | StatePatch::Clear => serializer.serialize_unit(),
        }
    }
}

/// The `state` node of an update.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct UpdateState {
    /// The change to `desired`.
    #[serde(skip_serializing_if = "StatePatch::is_absent")]
    pub desired: StatePatch,
    /// The change to `reported`.
    #[serde(skip_serializing_if = "StatePatch::is_absent")]
    pub reported: StatePatch,
}

impl UpdateState {
    /// The patch of `section`.
    pub fn section(&self, section: Section) -> &StatePatch {
        match section {
            Section::Desired => &self.desired,
            Section::Reported => &self.reported,
        }
    }
}

/// An update request: `{"state":{"desired":…,"reported":…},"version":N,"clientToken":"…"}`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UpdateRequest {
    /// What to change.
    pub state: UpdateState,
    /// Apply only if this is the shadow's current version (optimistic lock).
    pub version: Option<u64>,
    /// Echoed in every reply, to match replies to requests.
    pub client_token: Option<String>,
}

impl Serialize for UpdateRequest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len =
            1 + usize::from(self.version.is_some()) + usize::from(self.client_token.is_some());
        let mut map = serializer.serialize_map(Some(len))?;
        map.serialize_entry("state", &self.state)?;
        if let Some(version) = self.version {
            map.serialize_entry("version", &version)?;
        }
        if let Some(token) = &self.client_token {
            map.serialize_entry("clientToken", token)?;
        }
        map.end()
    }
}

impl UpdateRequest {
    /// An update of `desired` only.
    pub fn desired(patch: Object) -> Self {
        UpdateRequest {
            state: UpdateState {
                desired: StatePatch::Merge(patch),
                reported: StatePatch::Absent,
            },
            ..UpdateRequest::default()
        }
    }

    /// An update of `reported` only.
    pub fn reported(patch: Object) -> Self {
        UpdateRequest {
            state: UpdateState {
                desired: StatePatch::Absent,
                reported: StatePatch::Merge(patch),
            },
            ..UpdateRequest::default()
        }
    }

    /// The same request, applied only at `version`.
    pub fn with_version(mut self, version: u64) -> Self {
        self.version = Some(version);
        self
    }

    /// The same request with a `clientToken`.
    pub fn with_client_token(mut self, token: impl Into<String>) -> Self {
        self.client_token = Some(token.into());
        self
    }

    /// The request as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing maps of JSON values cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses and validates an update payload as the service does, in AWS's
    /// order: encoding (415), JSON (400), `clientToken`, `version`, `state`
    /// (missing, not an object, too deep, invalid node, non-object section,
    /// null in an array), then size (413).
    pub fn parse(payload: &[u8]) -> Result<UpdateRequest, ShadowError> {
        let mut object = parse_object(payload)?;
        let client_token = take_client_token(&mut object)?;
        let version = match object.remove("version") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().ok_or(ShadowError::InvalidVersion)?),
        };
        let state = match object.remove("state") {
            None => return Err(ShadowError::MissingState),
            Some(Value::Null) => UpdateState {
                desired: StatePatch::Clear,
                reported: StatePatch::Clear,
            },
            Some(state @ Value::Object(_)) => parse_state(state)?,
            Some(_) => return Err(ShadowError::StateNotObject),
        };
        Ok(UpdateRequest {
            state,
            version,
            client_token,
        })
    }
}

fn parse_state(state: Value) -> Result<UpdateState, ShadowError> {
    // The state node is one level above its sections.
    if depth(&state) > MAX_STATE_DEPTH + 1 {
        return Err(ShadowError::TooDeep);
    }
    let Value::Object(mut state) = state else {
        return Err(ShadowError::StateNotObject);
    };
    let mut section = |section: Section| match state.remove(section.key()) {
        None => Ok(StatePatch::Absent),
        Some(value) => {
            if has_null_in_array(&value) {
                return Err(ShadowError::InvalidStateNode);
            }
            StatePatch::from_value(value, section)
        }
    };
    let desired = section(Section::Desired)?;
    let reported = section(Section::Reported)?;
    if !state.is_empty() {
        return Err(ShadowError::InvalidStateNode);
    }
    let size: usize = [&desired, &reported]
        .into_iter()
        .map(|patch| match patch {
            StatePatch::Merge(object) => compact_len(object),
            _ => 0,
        })
        .sum();
    if size > MAX_STATE_BYTES {
        return Err(ShadowError::PayloadTooLarge);
    }
    Ok(UpdateState { desired, reported })
}

fn parse_object(payload: &[u8]) -> Result<Object, ShadowError> {
    let text = std::str::from_utf8(payload).map_err(|_| ShadowError::UnsupportedEncoding)?;
    match serde_json::from_str(text) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(ShadowError::InvalidJson),
    }
}

fn take_client_token(object: &mut Object) -> Result<Option<String>, ShadowError> {
    match object.remove("clientToken") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(token)) if token.len() <= MAX_CLIENT_TOKEN_BYTES => Ok(Some(token)),
        Some(_) => Err(ShadowError::InvalidClientToken),
    }
}

/// The valid `clientToken` of a request payload, if it has one: what a
/// `/rejected` reply echoes even when the rest of the request is invalid.
pub fn client_token_of(payload: &[u8]) -> Option<String> {
    let mut object = parse_object(payload).ok()?;
    take_client_token(&mut object).ok().flatten()
}

/// A get or delete request: an empty payload or `{"clientToken":"…"}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRequest {
    /// Echoed in the reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

impl TokenRequest {
    /// A request with this `clientToken`.
    pub fn with_client_token(token: impl Into<String>) -> Self {
        TokenRequest {
            client_token: Some(token.into()),
        }
    }

    /// The request as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses a get payload: empty, or a JSON object whose `clientToken` (if
    /// any) is valid; other keys are ignored.
    pub fn parse_get(payload: &[u8]) -> Result<TokenRequest, ShadowError> {
        if payload.is_empty() {
            return Ok(TokenRequest::default());
        }
        let mut object = parse_object(payload)?;
        Ok(TokenRequest {
            client_token: take_client_token(&mut object)?,
        })
    }

    /// Parses a delete payload. AWS ignores its content, except that the
    /// `clientToken` of a JSON object is echoed (and refused if invalid).
    pub fn parse_delete(payload: &[u8]) -> Result<TokenRequest, ShadowError> {
        let Ok(mut object) = parse_object(payload) else {
            return Ok(TokenRequest::default());
        };
        Ok(TokenRequest {
            client_token: take_client_token(&mut object)?,
        })
    }
}
