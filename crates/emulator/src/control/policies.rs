//! AWS IoT policies: CreatePolicy, GetPolicy, ListPolicies, DeletePolicy,
//! CreatePolicyVersion, GetPolicyVersion, ListPolicyVersions,
//! DeletePolicyVersion, SetDefaultPolicyVersion, AttachPolicy, DetachPolicy,
//! ListAttachedPolicies, ListTargetsForPolicy.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::page::paginate;
use super::{Control, ControlError, lenient};
use crate::policy::{ParsedDocuments, Principal};
use crate::store::{CertificateStatus, PolicyRecord, StoreError};

/// A request naming one policy (GetPolicy, DeletePolicy, ListPolicyVersions).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyNameRequest {
    /// The policy name.
    pub policy_name: String,
}

/// CreatePolicy's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreatePolicyRequest {
    /// The policy name (`[\w+=,.@-]{1,128}`).
    pub policy_name: String,
    /// The JSON policy document.
    pub policy_document: String,
    /// Accepted; tags are not emulated.
    pub tags: Option<serde_json::Value>,
}

/// CreatePolicy's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatePolicyResponse {
    /// The policy name.
    pub policy_name: String,
    /// Its ARN.
    pub policy_arn: String,
    /// The document.
    pub policy_document: String,
    /// Its first version: "1".
    pub policy_version_id: String,
}

/// GetPolicy's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetPolicyResponse {
    /// The policy name.
    pub policy_name: String,
    /// Its ARN.
    pub policy_arn: String,
    /// The default version's document.
    pub policy_document: String,
    /// The default version.
    pub default_version_id: String,
    /// When it was created, epoch seconds.
    pub creation_date: i64,
    /// When its newest version was created, epoch seconds.
    pub last_modified_date: i64,
    /// An id of this state of the policy.
    pub generation_id: String,
}

/// ListPolicies' request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListPoliciesRequest {
    /// The marker of the page to return.
    pub marker: Option<String>,
    /// At most this many (1 to 250).
    #[serde(default, deserialize_with = "lenient::int")]
    pub page_size: Option<i64>,
    /// Accepted; the order is by name.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub ascending_order: Option<bool>,
}

/// A policy's name and ARN (AWS's `Policy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicySummary {
    /// The policy name.
    pub policy_name: String,
    /// Its ARN.
    pub policy_arn: String,
}

/// ListPolicies' and ListAttachedPolicies' response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPoliciesResponse {
    /// The policies of this page.
    pub policies: Vec<PolicySummary>,
    /// The marker of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

/// CreatePolicyVersion's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreatePolicyVersionRequest {
    /// The policy name.
    pub policy_name: String,
    /// The new version's document.
    pub policy_document: String,
    /// Make it the version in force.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub set_as_default: Option<bool>,
}

/// CreatePolicyVersion's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatePolicyVersionResponse {
    /// The policy's ARN.
    pub policy_arn: String,
    /// The new version's document.
    pub policy_document: String,
    /// The new version's id.
    pub policy_version_id: String,
    /// Whether it is now the default.
    pub is_default_version: bool,
}

/// A request naming one version of a policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyVersionRequest {
    /// The policy name.
    pub policy_name: String,
    /// The version id.
    pub policy_version_id: String,
}

/// GetPolicyVersion's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetPolicyVersionResponse {
    /// The policy's ARN.
    pub policy_arn: String,
    /// The policy name.
    pub policy_name: String,
    /// The version's document.
    pub policy_document: String,
    /// The version id.
    pub policy_version_id: String,
    /// Whether it is the default.
    pub is_default_version: bool,
    /// When it was created, epoch seconds.
    pub creation_date: i64,
    /// Same as the creation: versions never change.
    pub last_modified_date: i64,
    /// An id of this version.
    pub generation_id: String,
}

/// One version in ListPolicyVersions' response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyVersionSummary {
    /// The version id.
    pub version_id: String,
    /// Whether it is the default.
    pub is_default_version: bool,
    /// When it was created, epoch seconds.
    pub create_date: i64,
}

/// ListPolicyVersions' response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPolicyVersionsResponse {
    /// The versions, newest first.
    pub policy_versions: Vec<PolicyVersionSummary>,
}

/// AttachPolicy's and DetachPolicy's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyTargetRequest {
    /// The policy name.
    pub policy_name: String,
    /// The target: a certificate ARN (`arn:aws:iot:…:cert/<id>`).
    pub target: String,
}

/// ListAttachedPolicies' request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListAttachedPoliciesRequest {
    /// The target: a certificate ARN.
    pub target: String,
    /// Accepted; certificates have no parents.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub recursive: Option<bool>,
    /// The marker of the page to return.
    pub marker: Option<String>,
    /// At most this many (1 to 250).
    #[serde(default, deserialize_with = "lenient::int")]
    pub page_size: Option<i64>,
}

/// ListTargetsForPolicy's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListTargetsForPolicyRequest {
    /// The policy name.
    pub policy_name: String,
    /// The marker of the page to return.
    pub marker: Option<String>,
    /// At most this many (1 to 250).
    #[serde(default, deserialize_with = "lenient::int")]
    pub page_size: Option<i64>,
}

/// ListTargetsForPolicy's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTargetsForPolicyResponse {
    /// The targets' ARNs.
    pub targets: Vec<String>,
    /// The marker of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

impl Control {
    /// CreatePolicy.
    pub fn create_policy(
        &self,
        request: CreatePolicyRequest,
    ) -> Result<CreatePolicyResponse, ControlError> {
        let record = self
            .store
            .create_policy(&request.policy_name, &request.policy_document)
            .map_err(|e| match e {
                StoreError::PolicyExists(_) => ControlError::from(e).with_resource(
                    &request.policy_name,
                    self.arn("policy", &request.policy_name),
                ),
                e => e.into(),
            })?;
        Ok(CreatePolicyResponse {
            policy_arn: self.arn("policy", &record.name),
            policy_document: record.default_document().to_owned(),
            policy_version_id: record.default_version.to_string(),
            policy_name: record.name,
        })
    }

    /// GetPolicy: the default version's document.
    pub fn get_policy(
        &self,
        request: PolicyNameRequest,
    ) -> Result<GetPolicyResponse, ControlError> {
        let record = self.require_policy(&request.policy_name)?;
        let last_modified = record
            .versions
            .iter()
            .map(|v| v.created_at)
            .max()
            .unwrap_or(record.created_at);
        Ok(GetPolicyResponse {
            policy_arn: self.arn("policy", &record.name),
            policy_document: record.default_document().to_owned(),
            default_version_id: record.default_version.to_string(),
            creation_date: record.created_at,
            last_modified_date: last_modified,
            generation_id: generation_id(&record),
            policy_name: record.name,
        })
    }

    /// ListPolicies, by name.
    pub fn list_policies(
        &self,
        request: ListPoliciesRequest,
    ) -> Result<ListPoliciesResponse, ControlError> {
        let names = self
            .store
            .list_policies()?
            .into_iter()
            .map(|p| p.name)
            .collect();
        self.policy_page(names, request.marker.as_deref(), request.page_size)
    }

    /// DeletePolicy: it must be detached and down to its default version.
    pub fn delete_policy(&self, request: PolicyNameRequest) -> Result<(), ControlError> {
        if !self.store.delete_policy(&request.policy_name)? {
            return Err(StoreError::PolicyNotFound(request.policy_name).into());
        }
        self.changed();
        Ok(())
    }

    /// CreatePolicyVersion (at most five versions).
    pub fn create_policy_version(
        &self,
        request: CreatePolicyVersionRequest,
    ) -> Result<CreatePolicyVersionResponse, ControlError> {
        let set_as_default = request.set_as_default == Some(true);
        let version = self.store.create_policy_version(
            &request.policy_name,
            &request.policy_document,
            set_as_default,
        )?;
        if set_as_default {
            self.changed();
        }
        Ok(CreatePolicyVersionResponse {
            policy_arn: self.arn("policy", &request.policy_name),
            policy_document: request.policy_document,
            policy_version_id: version.to_string(),
            is_default_version: set_as_default,
        })
    }

    /// GetPolicyVersion.
    pub fn get_policy_version(
        &self,
        request: PolicyVersionRequest,
    ) -> Result<GetPolicyVersionResponse, ControlError> {
        let record = self.require_policy(&request.policy_name)?;
        let id = parse_version(&request)?;
        let version = record
            .versions
            .iter()
            .find(|v| v.version == id)
            .ok_or_else(|| StoreError::PolicyVersionNotFound {
                name: record.name.clone(),
                version: id,
            })?;
        Ok(GetPolicyVersionResponse {
            policy_arn: self.arn("policy", &record.name),
            policy_document: version.document.clone(),
            policy_version_id: id.to_string(),
            is_default_version: id == record.default_version,
            creation_date: version.created_at,
            last_modified_date: version.created_at,
            generation_id: format!("{}-{id}", generation_id(&record)),
            policy_name: record.name,
        })
    }

    /// ListPolicyVersions, newest first.
    pub fn list_policy_versions(
        &self,
        request: PolicyNameRequest,
    ) -> Result<ListPolicyVersionsResponse, ControlError> {
        let record = self.require_policy(&request.policy_name)?;
        Ok(ListPolicyVersionsResponse {
            policy_versions: record
                .versions
                .iter()
                .rev()
                .map(|v| PolicyVersionSummary {
                    version_id: v.version.to_string(),
                    is_default_version: v.version == record.default_version,
                    create_date: v.created_at,
                })
                .collect(),
        })
    }

    /// DeletePolicyVersion: not the default one.
    pub fn delete_policy_version(&self, request: PolicyVersionRequest) -> Result<(), ControlError> {
        let id = parse_version(&request)?;
        self.store.delete_policy_version(&request.policy_name, id)?;
        Ok(())
    }

    /// SetDefaultPolicyVersion: the version in force from the next request of
    /// every connected device using it.
    pub fn set_default_policy_version(
        &self,
        request: PolicyVersionRequest,
    ) -> Result<(), ControlError> {
        let id = parse_version(&request)?;
        self.store
            .set_default_policy_version(&request.policy_name, id)?;
        self.changed();
        Ok(())
    }

    /// AttachPolicy to a certificate (at most 10 policies per certificate).
    pub fn attach_policy(&self, request: PolicyTargetRequest) -> Result<(), ControlError> {
        let certificate = self.certificate_target(&request.target)?;
        self.require_policy(&request.policy_name)?;
        self.store
            .attach_policy(&request.policy_name, &certificate)?;
        self.changed();
        Ok(())
    }

    /// DetachPolicy from a certificate.
    pub fn detach_policy(&self, request: PolicyTargetRequest) -> Result<(), ControlError> {
        let certificate = self.certificate_target(&request.target)?;
        self.require_policy(&request.policy_name)?;
        if self
            .store
            .detach_policy(&request.policy_name, &certificate)?
        {
            self.changed();
        }
        Ok(())
    }

    /// ListAttachedPolicies of a certificate.
    pub fn list_attached_policies(
        &self,
        request: ListAttachedPoliciesRequest,
    ) -> Result<ListPoliciesResponse, ControlError> {
        let certificate = self.certificate_target(&request.target)?;
        let names = self
            .store
            .certificate_policies(&certificate)?
            .into_iter()
            .map(|p| p.name)
            .collect();
        self.policy_page(names, request.marker.as_deref(), request.page_size)
    }

    /// ListTargetsForPolicy: the ARNs of the certificates it is attached to.
    pub fn list_targets_for_policy(
        &self,
        request: ListTargetsForPolicyRequest,
    ) -> Result<ListTargetsForPolicyResponse, ControlError> {
        let record = self.require_policy(&request.policy_name)?;
        let page = paginate(
            record.certificates,
            |c| c.as_str(),
            request.marker.as_deref(),
            request.page_size,
            25,
            250,
        )?;
        Ok(ListTargetsForPolicyResponse {
            targets: page.items.iter().map(|id| self.arn("cert", id)).collect(),
            next_marker: page.next,
        })
    }

    /// The policies in force for a connection of certificate `certificate_id`
    /// as client id `client_id` from `source_ip` (thing policy variables
    /// resolve when the certificate is attached to the thing named
    /// `client_id`), and the certificate's status: what the broker evaluates
    /// a connection's requests with, and `iotcore policy explain` offline.
    pub fn principal(
        &self,
        certificate_id: &str,
        client_id: &str,
        source_ip: Option<IpAddr>,
    ) -> Result<(Principal, CertificateStatus), ControlError> {
        Principal::load(
            &self.store,
            &self.scope,
            &ParsedDocuments::default(),
            certificate_id,
            client_id,
            source_ip,
        )
        .map_err(ControlError::from)
    }

    fn policy_page(
        &self,
        names: Vec<String>,
        marker: Option<&str>,
        size: Option<i64>,
    ) -> Result<ListPoliciesResponse, ControlError> {
        let page = paginate(names, |n| n.as_str(), marker, size, 25, 250)?;
        Ok(ListPoliciesResponse {
            policies: page
                .items
                .into_iter()
                .map(|name| PolicySummary {
                    policy_arn: self.arn("policy", &name),
                    policy_name: name,
                })
                .collect(),
            next_marker: page.next,
        })
    }

    /// The policy `name`, or ResourceNotFoundException.
    pub(crate) fn require_policy(&self, name: &str) -> Result<PolicyRecord, ControlError> {
        self.store
            .policy(name)?
            .ok_or_else(|| StoreError::PolicyNotFound(name.to_owned()).into())
    }

    /// The id of the registered certificate a policy target names: a
    /// certificate ARN (or, for convenience, a bare certificate id).
    pub(crate) fn certificate_target(&self, target: &str) -> Result<String, ControlError> {
        let id = match target.rsplit_once(':') {
            Some((_, resource)) => resource.strip_prefix("cert/").ok_or_else(|| {
                ControlError::invalid(format!(
                    "target {target:?} is not a certificate ARN (arn:aws:iot:REGION:ACCOUNT:cert/ID); \
                     the emulator attaches policies to certificates only"
                ))
            })?,
            None => target,
        };
        Ok(self.require_certificate(id)?.id)
    }
}

/// AWS's generation id changes with every change to a policy; the default
/// version and the newest version id identify one here.
fn generation_id(record: &PolicyRecord) -> String {
    let newest = record.versions.iter().map(|v| v.version).max().unwrap_or(0);
    format!("{}-{newest}", record.default_version)
}

fn parse_version(request: &PolicyVersionRequest) -> Result<u32, ControlError> {
    request.policy_version_id.parse().map_err(|_| {
        ControlError::invalid(format!(
            "policyVersionId {:?} is not a version number",
            request.policy_version_id
        ))
    })
}
