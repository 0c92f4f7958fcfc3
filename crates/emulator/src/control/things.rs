//! Things: CreateThing, DescribeThing, UpdateThing, DeleteThing, ListThings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::page::paginate;
use super::{Control, ControlError, lenient};
use crate::store::{StoreError, ThingRecord};

/// AWS's `attributePayload`: attributes, and whether they merge into the
/// thing's (`true`) or replace them (`false`, the default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttributePayload {
    /// Name to value. When merging, an empty value removes the attribute.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Merge into the existing attributes rather than replace them.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub merge: Option<bool>,
}

impl AttributePayload {
    /// Applies the payload to `current` as AWS's UpdateThing does.
    pub(crate) fn apply(&self, current: &mut BTreeMap<String, String>) {
        if self.merge == Some(true) {
            for (name, value) in &self.attributes {
                if value.is_empty() {
                    current.remove(name);
                } else {
                    current.insert(name.clone(), value.clone());
                }
            }
        } else {
            *current = self.attributes.clone();
        }
    }
}

/// CreateThing's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateThingRequest {
    /// The thing name.
    pub thing_name: String,
    /// Its thing type, which must exist and not be deprecated.
    pub thing_type_name: Option<String>,
    /// Its attributes.
    pub attribute_payload: Option<AttributePayload>,
    /// Accepted for compatibility; billing groups are not emulated.
    pub billing_group_name: Option<String>,
}

impl CreateThingRequest {
    /// A request for thing `name` with no type and no attributes.
    pub fn named(name: &str) -> CreateThingRequest {
        CreateThingRequest {
            thing_name: name.to_owned(),
            ..CreateThingRequest::default()
        }
    }
}

/// CreateThing's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateThingResponse {
    /// The thing name.
    pub thing_name: String,
    /// Its ARN.
    pub thing_arn: String,
    /// Its id (a UUID).
    pub thing_id: String,
}

/// DescribeThing's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DescribeThingRequest {
    /// The thing name.
    pub thing_name: String,
}

/// DescribeThing's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeThingResponse {
    /// The client id AWS suggests: the thing name.
    pub default_client_id: String,
    /// The thing name.
    pub thing_name: String,
    /// Its id.
    pub thing_id: String,
    /// Its ARN.
    pub thing_arn: String,
    /// Its thing type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thing_type_name: Option<String>,
    /// Its attributes.
    pub attributes: BTreeMap<String, String>,
    /// Its version: 1 at creation, one more at each update.
    pub version: i64,
}

/// UpdateThing's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateThingRequest {
    /// The thing name.
    pub thing_name: String,
    /// A new thing type.
    pub thing_type_name: Option<String>,
    /// New attributes (merged or replacing, see [`AttributePayload`]).
    pub attribute_payload: Option<AttributePayload>,
    /// Fail with VersionConflictException unless the thing is at this version.
    #[serde(default, deserialize_with = "lenient::int")]
    pub expected_version: Option<i64>,
    /// Remove the thing's type.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub remove_thing_type: Option<bool>,
}

/// DeleteThing's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteThingRequest {
    /// The thing name.
    pub thing_name: String,
    /// Fail with VersionConflictException unless the thing is at this version.
    #[serde(default, deserialize_with = "lenient::int")]
    pub expected_version: Option<i64>,
}

/// ListThings' request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListThingsRequest {
    /// The token of the page to return.
    pub next_token: Option<String>,
    /// At most this many things (1 to 250).
    #[serde(default, deserialize_with = "lenient::int")]
    pub max_results: Option<i64>,
    /// Only things with this attribute…
    pub attribute_name: Option<String>,
    /// … set to this value (or starting with it, see below).
    pub attribute_value: Option<String>,
    /// Only things of this type.
    pub thing_type_name: Option<String>,
    /// Match `attribute_value` as a prefix.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub use_prefix_attribute_value: Option<bool>,
}

/// One thing in ListThings' response (AWS's `ThingAttribute`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingAttribute {
    /// The thing name.
    pub thing_name: String,
    /// Its thing type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thing_type_name: Option<String>,
    /// Its ARN.
    pub thing_arn: String,
    /// Its attributes.
    pub attributes: BTreeMap<String, String>,
    /// Its version.
    pub version: i64,
}

/// ListThings' response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListThingsResponse {
    /// The things of this page, by name.
    pub things: Vec<ThingAttribute>,
    /// The token of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

impl Control {
    /// CreateThing. Creating a thing that exists with the same type and
    /// attributes succeeds (AWS's idempotency); with others it fails with
    /// ResourceAlreadyExistsException.
    pub fn create_thing(
        &self,
        request: CreateThingRequest,
    ) -> Result<CreateThingResponse, ControlError> {
        let attributes = request
            .attribute_payload
            .map(|p| p.attributes)
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .collect::<BTreeMap<_, _>>();
        if let Some(thing_type) = &request.thing_type_name {
            self.require_usable_thing_type(thing_type)?;
        }
        let name = &request.thing_name;
        let thing =
            match self
                .store
                .create_thing(name, request.thing_type_name.as_deref(), &attributes)
            {
                Ok(thing) => thing,
                Err(StoreError::ThingExists(_)) => {
                    let existing = self.require_thing(name)?;
                    if existing.thing_type != request.thing_type_name
                        || existing.attributes != attributes
                    {
                        return Err(ControlError::from(StoreError::ThingExists(name.clone()))
                            .with_resource(&existing.thing_id, self.arn("thing", name)));
                    }
                    existing
                }
                Err(e) => return Err(e.into()),
            };
        self.changed();
        Ok(CreateThingResponse {
            thing_arn: self.arn("thing", &thing.name),
            thing_name: thing.name,
            thing_id: thing.thing_id,
        })
    }

    /// DescribeThing.
    pub fn describe_thing(
        &self,
        request: DescribeThingRequest,
    ) -> Result<DescribeThingResponse, ControlError> {
        let thing = self.require_thing(&request.thing_name)?;
        Ok(DescribeThingResponse {
            default_client_id: thing.name.clone(),
            thing_arn: self.arn("thing", &thing.name),
            thing_name: thing.name,
            thing_id: thing.thing_id,
            thing_type_name: thing.thing_type,
            attributes: thing.attributes,
            version: thing.version,
        })
    }

    /// UpdateThing.
    pub fn update_thing(&self, request: UpdateThingRequest) -> Result<(), ControlError> {
        let remove_type = request.remove_thing_type == Some(true);
        if remove_type && request.thing_type_name.is_some() {
            return Err(ControlError::invalid(
                "give either thingTypeName or removeThingType, not both",
            ));
        }
        if let Some(thing_type) = &request.thing_type_name {
            self.require_usable_thing_type(thing_type)?;
        }
        self.store
            .update_thing(&request.thing_name, request.expected_version, |thing| {
                if remove_type {
                    thing.thing_type = None;
                } else if let Some(thing_type) = request.thing_type_name {
                    thing.thing_type = Some(thing_type);
                }
                if let Some(payload) = &request.attribute_payload {
                    payload.apply(&mut thing.attributes);
                }
                Ok(())
            })?;
        self.changed();
        Ok(())
    }

    /// DeleteThing. Succeeds when the thing does not exist, as AWS does; fails
    /// while certificates are attached to it.
    pub fn delete_thing(&self, request: DeleteThingRequest) -> Result<(), ControlError> {
        if self
            .store
            .delete_thing(&request.thing_name, request.expected_version)?
        {
            self.changed();
        }
        Ok(())
    }

    /// ListThings, filtered by attribute and thing type.
    pub fn list_things(
        &self,
        request: ListThingsRequest,
    ) -> Result<ListThingsResponse, ControlError> {
        if request.attribute_value.is_some() && request.attribute_name.is_none() {
            return Err(ControlError::invalid(
                "attributeValue is given without attributeName",
            ));
        }
        let prefix = request.use_prefix_attribute_value == Some(true);
        let matches = |thing: &ThingRecord| {
            let type_ok = request
                .thing_type_name
                .as_ref()
                .is_none_or(|t| thing.thing_type.as_ref() == Some(t));
            let attribute_ok = match (&request.attribute_name, &request.attribute_value) {
                (None, _) => true,
                (Some(name), None) => thing.attributes.contains_key(name),
                (Some(name), Some(value)) => thing.attributes.get(name).is_some_and(|v| {
                    if prefix {
                        v.starts_with(value.as_str())
                    } else {
                        v == value
                    }
                }),
            };
            type_ok && attribute_ok
        };
        let things: Vec<ThingRecord> = self
            .store
            .list_things()?
            .into_iter()
            .filter(matches)
            .collect();
        let page = paginate(
            things,
            |t| t.name.as_str(),
            request.next_token.as_deref(),
            request.max_results,
            50,
            250,
        )?;
        Ok(ListThingsResponse {
            things: page
                .items
                .into_iter()
                .map(|t| ThingAttribute {
                    thing_arn: self.arn("thing", &t.name),
                    thing_name: t.name,
                    thing_type_name: t.thing_type,
                    attributes: t.attributes,
                    version: t.version,
                })
                .collect(),
            next_token: page.next,
        })
    }

    /// The thing `name`, or ResourceNotFoundException.
    pub(crate) fn require_thing(&self, name: &str) -> Result<ThingRecord, ControlError> {
        self.store
            .thing(name)?
            .ok_or_else(|| StoreError::ThingNotFound(name.to_owned()).into())
    }
}
