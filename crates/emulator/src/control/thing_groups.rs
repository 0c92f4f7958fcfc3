//! Static thing groups: CreateThingGroup, DescribeThingGroup, DeleteThingGroup,
//! ListThingGroups, AddThingToThingGroup, RemoveThingFromThingGroup,
//! ListThingsInThingGroup, ListThingGroupsForThing.
//!
//! Adding a thing to a group, or removing it, changes its executions of
//! CONTINUOUS jobs that target the group (see
//! [`job_executions`](super::job_executions)).

use serde::{Deserialize, Serialize};

use super::page::paginate;
use super::things::AttributePayload;
use super::{Control, ControlError, lenient};
use crate::store::{StoreError, ThingGroupRecord};

/// AWS's `thingGroupProperties`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingGroupProperties {
    /// The description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thing_group_description: Option<String>,
    /// The group's attributes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribute_payload: Option<AttributePayload>,
}

/// A group's name and ARN (AWS's `GroupNameAndArn`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupNameAndArn {
    /// The group name.
    pub group_name: String,
    /// Its ARN.
    pub group_arn: String,
}

/// AWS's `thingGroupMetadata`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingGroupMetadata {
    /// The parent group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_group_name: Option<String>,
    /// The ancestors, root first.
    pub root_to_parent_thing_groups: Vec<GroupNameAndArn>,
    /// When it was created, epoch seconds.
    pub creation_date: i64,
}

/// CreateThingGroup's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateThingGroupRequest {
    /// The group name.
    pub thing_group_name: String,
    /// The group to nest it in.
    pub parent_group_name: Option<String>,
    /// Description and attributes.
    pub thing_group_properties: Option<ThingGroupProperties>,
    /// Accepted; tags are not emulated.
    pub tags: Option<serde_json::Value>,
}

/// CreateThingGroup's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateThingGroupResponse {
    /// The group name.
    pub thing_group_name: String,
    /// Its ARN.
    pub thing_group_arn: String,
    /// Its id.
    pub thing_group_id: String,
}

/// DescribeThingGroup's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DescribeThingGroupRequest {
    /// The group name.
    pub thing_group_name: String,
}

/// DescribeThingGroup's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeThingGroupResponse {
    /// The group name.
    pub thing_group_name: String,
    /// Its id.
    pub thing_group_id: String,
    /// Its ARN.
    pub thing_group_arn: String,
    /// Its version.
    pub version: i64,
    /// Description and attributes.
    pub thing_group_properties: ThingGroupProperties,
    /// Parent, ancestors, creation.
    pub thing_group_metadata: ThingGroupMetadata,
}

/// DeleteThingGroup's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteThingGroupRequest {
    /// The group name.
    pub thing_group_name: String,
    /// Fail with VersionConflictException unless the group is at this version.
    #[serde(default, deserialize_with = "lenient::int")]
    pub expected_version: Option<i64>,
}

/// ListThingGroups' request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListThingGroupsRequest {
    /// The token of the page to return.
    pub next_token: Option<String>,
    /// At most this many (1 to 250).
    #[serde(default, deserialize_with = "lenient::int")]
    pub max_results: Option<i64>,
    /// Only children of this group (with `recursive`, descendants).
    pub parent_group: Option<String>,
    /// Only groups whose name starts with this.
    pub name_prefix_filter: Option<String>,
    /// With `parent_group`: every descendant, not only children.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub recursive: Option<bool>,
}

/// A list of groups with the next page's token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListThingGroupsResponse {
    /// The groups of this page.
    pub thing_groups: Vec<GroupNameAndArn>,
    /// The token of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// AddThingToThingGroup's and RemoveThingFromThingGroup's request: each of
/// the group and the thing by name or by ARN.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThingGroupMembershipRequest {
    /// The group name.
    pub thing_group_name: Option<String>,
    /// Or its ARN.
    pub thing_group_arn: Option<String>,
    /// The thing name.
    pub thing_name: Option<String>,
    /// Or its ARN.
    pub thing_arn: Option<String>,
    /// Accepted; dynamic groups are not emulated.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub override_dynamic_groups: Option<bool>,
}

/// ListThingsInThingGroup's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListThingsInThingGroupRequest {
    /// The group name.
    pub thing_group_name: String,
    /// Include the things of descendant groups.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub recursive: Option<bool>,
    /// The token of the page to return.
    pub next_token: Option<String>,
    /// At most this many (1 to 250).
    #[serde(default, deserialize_with = "lenient::int")]
    pub max_results: Option<i64>,
}

/// A list of thing names with the next page's token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListThingNamesResponse {
    /// The thing names of this page.
    pub things: Vec<String>,
    /// The token of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// ListThingGroupsForThing's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListThingGroupsForThingRequest {
    /// The thing name.
    pub thing_name: String,
    /// The token of the page to return.
    pub next_token: Option<String>,
    /// At most this many (1 to 250).
    #[serde(default, deserialize_with = "lenient::int")]
    pub max_results: Option<i64>,
}

impl Control {
    /// CreateThingGroup (static groups).
    pub fn create_thing_group(
        &self,
        request: CreateThingGroupRequest,
    ) -> Result<CreateThingGroupResponse, ControlError> {
        let properties = request.thing_group_properties.unwrap_or_default();
        let attributes = properties
            .attribute_payload
            .map(|p| p.attributes)
            .unwrap_or_default();
        let name = &request.thing_group_name;
        let record = self
            .store
            .create_thing_group(
                name,
                request.parent_group_name.as_deref(),
                properties.thing_group_description.as_deref(),
                &attributes,
            )
            .map_err(|e| match e {
                StoreError::ThingGroupExists(_) => {
                    let id = self
                        .store
                        .thing_group(name)
                        .ok()
                        .flatten()
                        .map(|g| g.group_id)
                        .unwrap_or_default();
                    ControlError::from(e).with_resource(id, self.arn("thinggroup", name))
                }
                e => e.into(),
            })?;
        self.changed();
        Ok(CreateThingGroupResponse {
            thing_group_arn: self.arn("thinggroup", &record.name),
            thing_group_name: record.name,
            thing_group_id: record.group_id,
        })
    }

    /// DescribeThingGroup.
    pub fn describe_thing_group(
        &self,
        request: DescribeThingGroupRequest,
    ) -> Result<DescribeThingGroupResponse, ControlError> {
        let group = self.require_group(&request.thing_group_name)?;
        let mut ancestors = self.store.thing_group_ancestors(&group.name)?;
        ancestors.remove(0);
        ancestors.reverse();
        Ok(DescribeThingGroupResponse {
            thing_group_arn: self.arn("thinggroup", &group.name),
            thing_group_name: group.name,
            thing_group_id: group.group_id,
            version: group.version,
            thing_group_properties: ThingGroupProperties {
                thing_group_description: group.description,
                attribute_payload: Some(AttributePayload {
                    attributes: group.attributes,
                    merge: None,
                }),
            },
            thing_group_metadata: ThingGroupMetadata {
                parent_group_name: group.parent,
                root_to_parent_thing_groups: ancestors
                    .into_iter()
                    .map(|name| self.group_name_and_arn(name))
                    .collect(),
                creation_date: group.created_at,
            },
        })
    }

    /// DeleteThingGroup; succeeds when it does not exist.
    pub fn delete_thing_group(&self, request: DeleteThingGroupRequest) -> Result<(), ControlError> {
        if self
            .store
            .delete_thing_group(&request.thing_group_name, request.expected_version)?
        {
            self.changed();
        }
        Ok(())
    }

    /// ListThingGroups.
    pub fn list_thing_groups(
        &self,
        request: ListThingGroupsRequest,
    ) -> Result<ListThingGroupsResponse, ControlError> {
        if let Some(parent) = &request.parent_group {
            self.require_group(parent)?;
        }
        let recursive = request.recursive == Some(true);
        let mut groups = Vec::new();
        for group in self.store.list_thing_groups()? {
            let under_parent = match &request.parent_group {
                None => true,
                Some(parent) if recursive => self
                    .store
                    .thing_group_ancestors(&group.name)?
                    .iter()
                    .skip(1)
                    .any(|a| a == parent),
                Some(parent) => group.parent.as_ref() == Some(parent),
            };
            let prefix_ok = request
                .name_prefix_filter
                .as_ref()
                .is_none_or(|p| group.name.starts_with(p.as_str()));
            if under_parent && prefix_ok {
                groups.push(group.name);
            }
        }
        self.group_page(groups, request.next_token.as_deref(), request.max_results)
    }

    /// AddThingToThingGroup.
    pub fn add_thing_to_thing_group(
        &self,
        request: ThingGroupMembershipRequest,
    ) -> Result<(), ControlError> {
        let (group, thing) = membership(&request)?;
        let _guard = self.lock_jobs();
        let before = self.continuous_jobs_of(&thing)?;
        self.store.add_thing_to_group(&group, &thing)?;
        self.apply_membership_to_jobs(&thing, &before)?;
        self.changed();
        Ok(())
    }

    /// RemoveThingFromThingGroup.
    pub fn remove_thing_from_thing_group(
        &self,
        request: ThingGroupMembershipRequest,
    ) -> Result<(), ControlError> {
        let (group, thing) = membership(&request)?;
        self.require_group(&group)?;
        self.require_thing(&thing)?;
        let _guard = self.lock_jobs();
        let before = self.continuous_jobs_of(&thing)?;
        if self.store.remove_thing_from_group(&group, &thing)? {
            self.apply_membership_to_jobs(&thing, &before)?;
            self.changed();
        }
        Ok(())
    }

    /// ListThingsInThingGroup.
    pub fn list_things_in_thing_group(
        &self,
        request: ListThingsInThingGroupRequest,
    ) -> Result<ListThingNamesResponse, ControlError> {
        self.require_group(&request.thing_group_name)?;
        let things = self
            .store
            .things_in_group(&request.thing_group_name, request.recursive == Some(true))?;
        let page = paginate(
            things,
            |t| t.as_str(),
            request.next_token.as_deref(),
            request.max_results,
            50,
            250,
        )?;
        Ok(ListThingNamesResponse {
            things: page.items,
            next_token: page.next,
        })
    }

    /// ListThingGroupsForThing.
    pub fn list_thing_groups_for_thing(
        &self,
        request: ListThingGroupsForThingRequest,
    ) -> Result<ListThingGroupsResponse, ControlError> {
        self.require_thing(&request.thing_name)?;
        let groups = self.store.groups_of_thing(&request.thing_name)?;
        self.group_page(groups, request.next_token.as_deref(), request.max_results)
    }

    /// The page of group `names` (sorted) that `token` and `size` ask for.
    fn group_page(
        &self,
        names: Vec<String>,
        token: Option<&str>,
        size: Option<i64>,
    ) -> Result<ListThingGroupsResponse, ControlError> {
        let page = paginate(names, |g| g.as_str(), token, size, 50, 250)?;
        Ok(ListThingGroupsResponse {
            thing_groups: page
                .items
                .into_iter()
                .map(|name| self.group_name_and_arn(name))
                .collect(),
            next_token: page.next,
        })
    }

    fn require_group(&self, name: &str) -> Result<ThingGroupRecord, ControlError> {
        self.store
            .thing_group(name)?
            .ok_or_else(|| StoreError::ThingGroupNotFound(name.to_owned()).into())
    }

    fn group_name_and_arn(&self, name: String) -> GroupNameAndArn {
        GroupNameAndArn {
            group_arn: self.arn("thinggroup", &name),
            group_name: name,
        }
    }
}

/// The group and thing names a membership request gives, by name or ARN.
fn membership(request: &ThingGroupMembershipRequest) -> Result<(String, String), ControlError> {
    let group = name_or_arn(
        &request.thing_group_name,
        &request.thing_group_arn,
        "thinggroup/",
        "thingGroupName or thingGroupArn",
    )?;
    let thing = name_or_arn(
        &request.thing_name,
        &request.thing_arn,
        "thing/",
        "thingName or thingArn",
    )?;
    Ok((group, thing))
}

/// `name`, or the name at the end of `arn` after `kind`.
pub(crate) fn name_or_arn(
    name: &Option<String>,
    arn: &Option<String>,
    kind: &str,
    what: &str,
) -> Result<String, ControlError> {
    match (name, arn) {
        (Some(name), _) => Ok(name.clone()),
        (None, Some(arn)) => arn
            .rsplit_once(':')
            .and_then(|(_, resource)| resource.strip_prefix(kind))
            .map(str::to_owned)
            .ok_or_else(|| ControlError::invalid(format!("{arn:?} is not an ARN of a {kind}…"))),
        (None, None) => Err(ControlError::invalid(format!("give {what}"))),
    }
}
