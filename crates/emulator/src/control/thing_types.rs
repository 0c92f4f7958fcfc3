//! Thing types: CreateThingType, DescribeThingType, ListThingTypes,
//! DeprecateThingType, DeleteThingType.

use serde::{Deserialize, Serialize};

use super::page::paginate;
use super::{Control, ControlError, lenient};
use crate::store::{StoreError, ThingTypeRecord};

/// AWS's `thingTypeProperties`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingTypeProperties {
    /// The description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thing_type_description: Option<String>,
    /// Attribute names things of this type can be searched by (at most 3).
    #[serde(default)]
    pub searchable_attributes: Vec<String>,
    /// MQTT 5 propagating attributes: accepted, not applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mqtt5_configuration: Option<serde_json::Value>,
}

/// AWS's `thingTypeMetadata`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingTypeMetadata {
    /// Whether it is deprecated.
    pub deprecated: bool,
    /// When it was deprecated, epoch seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deprecation_date: Option<i64>,
    /// When it was created, epoch seconds.
    pub creation_date: i64,
}

/// CreateThingType's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateThingTypeRequest {
    /// The thing type name.
    pub thing_type_name: String,
    /// Its properties.
    pub thing_type_properties: Option<ThingTypeProperties>,
    /// Accepted; tags are not emulated.
    pub tags: Option<serde_json::Value>,
}

/// CreateThingType's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateThingTypeResponse {
    /// The name.
    pub thing_type_name: String,
    /// Its ARN.
    pub thing_type_arn: String,
    /// Its id.
    pub thing_type_id: String,
}

/// A request naming one thing type (DescribeThingType, DeleteThingType).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThingTypeNameRequest {
    /// The thing type name.
    pub thing_type_name: String,
}

/// DescribeThingType's response (also the items of ListThingTypes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeThingTypeResponse {
    /// The name.
    pub thing_type_name: String,
    /// Its id.
    pub thing_type_id: String,
    /// Its ARN.
    pub thing_type_arn: String,
    /// Its properties.
    pub thing_type_properties: ThingTypeProperties,
    /// Creation and deprecation.
    pub thing_type_metadata: ThingTypeMetadata,
}

/// DeprecateThingType's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeprecateThingTypeRequest {
    /// The thing type name.
    pub thing_type_name: String,
    /// Undo a deprecation.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub undo_deprecate: Option<bool>,
}

/// ListThingTypes' request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListThingTypesRequest {
    /// The token of the page to return.
    pub next_token: Option<String>,
    /// At most this many (1 to 250).
    #[serde(default, deserialize_with = "lenient::int")]
    pub max_results: Option<i64>,
    /// Only this thing type.
    pub thing_type_name: Option<String>,
}

/// ListThingTypes' response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListThingTypesResponse {
    /// The thing types of this page.
    pub thing_types: Vec<DescribeThingTypeResponse>,
    /// The token of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

impl Control {
    /// CreateThingType.
    pub fn create_thing_type(
        &self,
        request: CreateThingTypeRequest,
    ) -> Result<CreateThingTypeResponse, ControlError> {
        let properties = request.thing_type_properties.unwrap_or_default();
        let name = &request.thing_type_name;
        let record = self
            .store
            .create_thing_type(
                name,
                properties.thing_type_description.as_deref(),
                &properties.searchable_attributes,
            )
            .map_err(|e| match e {
                StoreError::ThingTypeExists(_) => {
                    let id = self
                        .store
                        .thing_type(name)
                        .ok()
                        .flatten()
                        .map(|t| t.thing_type_id)
                        .unwrap_or_default();
                    ControlError::from(e).with_resource(id, self.arn("thingtype", name))
                }
                e => e.into(),
            })?;
        Ok(CreateThingTypeResponse {
            thing_type_arn: self.arn("thingtype", &record.name),
            thing_type_name: record.name,
            thing_type_id: record.thing_type_id,
        })
    }

    /// DescribeThingType.
    pub fn describe_thing_type(
        &self,
        request: ThingTypeNameRequest,
    ) -> Result<DescribeThingTypeResponse, ControlError> {
        let record = self
            .store
            .thing_type(&request.thing_type_name)?
            .ok_or_else(|| StoreError::ThingTypeNotFound(request.thing_type_name.clone()))?;
        Ok(self.thing_type_description(record))
    }

    /// ListThingTypes.
    pub fn list_thing_types(
        &self,
        request: ListThingTypesRequest,
    ) -> Result<ListThingTypesResponse, ControlError> {
        let types: Vec<ThingTypeRecord> = self
            .store
            .list_thing_types()?
            .into_iter()
            .filter(|t| {
                request
                    .thing_type_name
                    .as_ref()
                    .is_none_or(|name| &t.name == name)
            })
            .collect();
        let page = paginate(
            types,
            |t| t.name.as_str(),
            request.next_token.as_deref(),
            request.max_results,
            50,
            250,
        )?;
        Ok(ListThingTypesResponse {
            thing_types: page
                .items
                .into_iter()
                .map(|t| self.thing_type_description(t))
                .collect(),
            next_token: page.next,
        })
    }

    /// DeprecateThingType.
    pub fn deprecate_thing_type(
        &self,
        request: DeprecateThingTypeRequest,
    ) -> Result<(), ControlError> {
        self.store.deprecate_thing_type(
            &request.thing_type_name,
            request.undo_deprecate == Some(true),
        )?;
        Ok(())
    }

    /// DeleteThingType: it must be deprecated and no thing may be of it.
    pub fn delete_thing_type(&self, request: ThingTypeNameRequest) -> Result<(), ControlError> {
        self.store.delete_thing_type(&request.thing_type_name)?;
        Ok(())
    }

    /// Fails unless thing type `name` exists and is not deprecated.
    pub(crate) fn require_usable_thing_type(&self, name: &str) -> Result<(), ControlError> {
        match self.store.thing_type(name)? {
            None => Err(StoreError::ThingTypeNotFound(name.to_owned()).into()),
            Some(t) if t.deprecated_at.is_some() => Err(ControlError::invalid(format!(
                "thing type {name:?} is deprecated: new things cannot be of it"
            ))),
            Some(_) => Ok(()),
        }
    }

    fn thing_type_description(&self, t: ThingTypeRecord) -> DescribeThingTypeResponse {
        DescribeThingTypeResponse {
            thing_type_arn: self.arn("thingtype", &t.name),
            thing_type_name: t.name,
            thing_type_id: t.thing_type_id,
            thing_type_properties: ThingTypeProperties {
                thing_type_description: t.description,
                searchable_attributes: t.searchable_attributes,
                mqtt5_configuration: None,
            },
            thing_type_metadata: ThingTypeMetadata {
                deprecated: t.deprecated_at.is_some(),
                deprecation_date: t.deprecated_at,
                creation_date: t.created_at,
            },
        }
    }
}
