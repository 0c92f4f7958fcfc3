//! Shadows whose state is the application's own serde type.

use std::marker::PhantomData;

use iotcore_model::shadow::{GetAccepted, Section, UpdateAccepted, UpdateRequest, UpdateState};
use iotcore_model::topics::ShadowOperation;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ShadowError;
use super::{Object, ShadowClient, state_patch};

/// A shadow whose desired and reported states are a `T`.
///
/// Created by [`ShadowClient::typed`]. Reports and desires serialize a `T`
/// and *merge* it into the section, as every shadow update does: a field
/// serialized as `null` deletes its key, a field left out (say an `Option`
/// with `#[serde(skip_serializing_if = "Option::is_none")]`) leaves the key
/// as it is. Reading decodes each section into a `T`; since a section may
/// hold only some fields (the cloud often sets one desired value), give `T`
/// `#[serde(default)]` so that missing fields take their defaults.
///
/// ```no_run
/// # async fn demo(client: iotcore::Client) -> Result<(), iotcore::shadow::ShadowError> {
/// #[derive(serde::Serialize, serde::Deserialize, Default)]
/// #[serde(default)]
/// struct Lamp { on: bool, brightness: u8 }
///
/// let lamp = client.shadow().typed::<Lamp>();
/// lamp.report(&Lamp { on: true, brightness: 80 }).await?;
/// let document = lamp.get().await?;
/// if let Some(wanted) = document.desired {
///     tracing::info!(on = wanted.on, "the application wants the lamp");
/// }
/// # Ok(()) }
/// ```
pub struct TypedShadow<T> {
    shadow: ShadowClient,
    state: PhantomData<fn() -> T>,
}

impl<T> Clone for TypedShadow<T> {
    fn clone(&self) -> Self {
        TypedShadow {
            shadow: self.shadow.clone(),
            state: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for TypedShadow<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedShadow")
            .field("shadow", &self.shadow)
            .field("state", &std::any::type_name::<T>())
            .finish()
    }
}

/// A shadow document with typed sections.
#[derive(Clone, Debug, PartialEq)]
pub struct TypedDocument<T> {
    /// The desired state, if the shadow has one.
    pub desired: Option<T>,
    /// The reported state, if the shadow has one.
    pub reported: Option<T>,
    /// The desired values reported does not match yet, as JSON (a delta is
    /// partial, so it rarely fits `T`; see [`TypedDocument::delta_as`]).
    pub delta: Option<Object>,
    /// The document's version.
    pub version: u64,
    /// When the service read it, unix seconds.
    pub timestamp: u64,
}

impl<T: DeserializeOwned> TypedDocument<T> {
    /// Decodes the sections of a get reply.
    pub fn from_get(document: GetAccepted) -> Result<Self, ShadowError> {
        Ok(TypedDocument {
            desired: decode_section(document.state.desired, "desired state")?,
            reported: decode_section(document.state.reported, "reported state")?,
            delta: document.state.delta,
            version: document.version,
            timestamp: document.timestamp,
        })
    }

    /// The delta decoded as `D` (a type whose fields are all optional or
    /// defaulted fits any delta).
    pub fn delta_as<D: DeserializeOwned>(&self) -> Result<Option<D>, ShadowError> {
        decode_section(self.delta.clone(), "delta")
    }
}

/// Decodes an optional section into `T`.
pub(crate) fn decode_section<T: DeserializeOwned>(
    section: Option<Object>,
    what: &'static str,
) -> Result<Option<T>, ShadowError> {
    section.map(|object| decode(object, what)).transpose()
}

/// Decodes a JSON object into `T`.
pub(crate) fn decode<T: DeserializeOwned>(
    object: Object,
    what: &'static str,
) -> Result<T, ShadowError> {
    serde_json::from_value(Value::Object(object))
        .map_err(|e| ShadowError::decode(what, std::any::type_name::<T>(), e))
}

impl<T: Serialize + DeserializeOwned> TypedShadow<T> {
    pub(crate) fn new(shadow: ShadowClient) -> Self {
        TypedShadow {
            shadow,
            state: PhantomData,
        }
    }

    /// The untyped handle.
    pub fn untyped(&self) -> &ShadowClient {
        &self.shadow
    }

    /// Reads the document and decodes its sections. Fails with 404 when the
    /// shadow does not exist, and with [`super::ShadowErrorKind::Decode`] when a
    /// section does not fit `T`.
    pub async fn get(&self) -> Result<TypedDocument<T>, ShadowError> {
        let document = self.shadow.get().await?;
        TypedDocument::from_get(document)
            .map_err(|e| e.about(ShadowOperation::Get, self.shadow.id()))
    }

    /// Merges `state` into the reported state.
    pub async fn report(&self, state: &T) -> Result<UpdateAccepted, ShadowError> {
        self.update(state, Section::Reported, None).await
    }

    /// Merges `state` into the desired state.
    pub async fn desire(&self, state: &T) -> Result<UpdateAccepted, ShadowError> {
        self.update(state, Section::Desired, None).await
    }

    /// Merges `state` into the reported state only if the shadow is at
    /// `version` (else 409, [`ShadowError::is_version_conflict`]).
    pub async fn report_at(&self, state: &T, version: u64) -> Result<UpdateAccepted, ShadowError> {
        self.update(state, Section::Reported, Some(version)).await
    }

    async fn update(
        &self,
        state: &T,
        section: Section,
        version: Option<u64>,
    ) -> Result<UpdateAccepted, ShadowError> {
        let patch = state_patch(state, section)
            .map_err(|e| e.about(ShadowOperation::Update, self.shadow.id()))?;
        let state = match section {
            Section::Desired => UpdateState {
                desired: patch,
                ..UpdateState::default()
            },
            Section::Reported => UpdateState {
                reported: patch,
                ..UpdateState::default()
            },
        };
        self.shadow
            .update(UpdateRequest {
                state,
                version,
                client_token: None,
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iotcore_model::shadow::{SectionMetadata, StateWithDelta};
    use serde_json::json;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize, Default)]
    #[serde(default)]
    struct Lamp {
        on: bool,
        brightness: u8,
    }

    fn object(value: Value) -> Object {
        value.as_object().cloned().unwrap_or_default()
    }

    fn get(desired: Value, reported: Value, delta: Option<Value>) -> GetAccepted {
        GetAccepted {
            state: StateWithDelta {
                desired: Some(object(desired)),
                reported: Some(object(reported)),
                delta: delta.map(object),
            },
            metadata: SectionMetadata::default(),
            version: 4,
            timestamp: 99,
            client_token: None,
        }
    }

    #[test]
    fn partial_sections_decode_with_defaults() {
        let document = get(
            json!({"on": true}),
            json!({"on": false, "brightness": 30}),
            Some(json!({"on": true})),
        );
        let typed = TypedDocument::<Lamp>::from_get(document).unwrap();
        assert_eq!(
            typed.desired,
            Some(Lamp {
                on: true,
                brightness: 0
            })
        );
        assert_eq!(
            typed.reported,
            Some(Lamp {
                on: false,
                brightness: 30
            })
        );
        assert_eq!(typed.version, 4);
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct LampChange {
            on: Option<bool>,
            brightness: Option<u8>,
        }
        assert_eq!(
            typed.delta_as::<LampChange>().unwrap(),
            Some(LampChange {
                on: Some(true),
                brightness: None
            })
        );
    }

    #[test]
    fn a_section_of_the_wrong_shape_is_a_decode_error() {
        let document = get(json!({"on": "yes"}), json!({}), None);
        let e = TypedDocument::<Lamp>::from_get(document).unwrap_err();
        assert_eq!(e.kind(), super::super::ShadowErrorKind::Decode);
        let text = e.to_string();
        assert!(text.contains("desired state does not fit"), "{text}");
        assert!(text.contains("Lamp"), "{text}");
    }
}
