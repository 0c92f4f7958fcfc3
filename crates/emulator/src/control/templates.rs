//! Fleet provisioning templates: CreateProvisioningTemplate,
//! DescribeProvisioningTemplate, ListProvisioningTemplates,
//! UpdateProvisioningTemplate, DeleteProvisioningTemplate.
//!
//! AWS runs a template's pre-provisioning hook as a Lambda function; the
//! emulator runs a local command instead (`iotcore template create
//! --hook-command`), so a hook given as a Lambda ARN is refused.

use serde::{Deserialize, Serialize};

use super::page::paginate;
use super::{Control, ControlError, lenient};
use crate::provisioning::{ClaimCredentials, ClaimError, ProvisioningTemplate, create_claim};
use crate::store::{TemplateError, TemplateRecord};

/// AWS's `preProvisioningHook`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningHook {
    /// The payload version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_version: Option<String>,
    /// The Lambda function's ARN.
    pub target_arn: String,
}

/// CreateProvisioningTemplate's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateProvisioningTemplateRequest {
    /// The template name (`[0-9A-Za-z_-]{1,36}`).
    pub template_name: String,
    /// A description.
    pub description: Option<String>,
    /// The template body (JSON text).
    pub template_body: String,
    /// Whether devices may provision with it (default false, as on AWS).
    #[serde(default, deserialize_with = "lenient::bool")]
    pub enabled: Option<bool>,
    /// The role AWS would provision with; kept as given.
    pub provisioning_role_arn: Option<String>,
    /// Refused: the emulator's hooks are local commands.
    pub pre_provisioning_hook: Option<ProvisioningHook>,
    /// Accepted; tags are not emulated.
    pub tags: Option<serde_json::Value>,
    /// FLEET_PROVISIONING (the default); JITP is not emulated.
    #[serde(rename = "type")]
    pub template_type: Option<String>,
}

/// CreateProvisioningTemplate's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateProvisioningTemplateResponse {
    /// Its ARN.
    pub template_arn: String,
    /// Its name.
    pub template_name: String,
    /// Always 1: the emulator keeps one version.
    pub default_version_id: i64,
}

/// A request naming one template.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateNameRequest {
    /// The template name.
    pub template_name: String,
}

/// DescribeProvisioningTemplate's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeProvisioningTemplateResponse {
    /// Its ARN.
    pub template_arn: String,
    /// Its name.
    pub template_name: String,
    /// Its description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// When it was created, epoch seconds.
    pub creation_date: i64,
    /// When it last changed, epoch seconds.
    pub last_modified_date: i64,
    /// Always 1.
    pub default_version_id: i64,
    /// The body.
    pub template_body: String,
    /// Whether devices may provision with it.
    pub enabled: bool,
    /// The role, as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisioning_role_arn: Option<String>,
    /// FLEET_PROVISIONING.
    #[serde(rename = "type")]
    pub template_type: String,
}

/// ListProvisioningTemplates' request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListProvisioningTemplatesRequest {
    /// At most this many (1 to 250).
    #[serde(default, deserialize_with = "lenient::int")]
    pub max_results: Option<i64>,
    /// The token of the page to return.
    pub next_token: Option<String>,
}

/// One template in ListProvisioningTemplates' response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningTemplateSummary {
    /// Its ARN.
    pub template_arn: String,
    /// Its name.
    pub template_name: String,
    /// Its description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// When it was created, epoch seconds.
    pub creation_date: i64,
    /// When it last changed, epoch seconds.
    pub last_modified_date: i64,
    /// Whether devices may provision with it.
    pub enabled: bool,
    /// FLEET_PROVISIONING.
    #[serde(rename = "type")]
    pub template_type: String,
}

/// ListProvisioningTemplates' response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListProvisioningTemplatesResponse {
    /// The templates of this page.
    pub templates: Vec<ProvisioningTemplateSummary>,
    /// The token of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// UpdateProvisioningTemplate's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateProvisioningTemplateRequest {
    /// The template name.
    pub template_name: String,
    /// A new description.
    pub description: Option<String>,
    /// Enable or disable it.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub enabled: Option<bool>,
    /// Must be 1 if given: the emulator keeps one version.
    #[serde(default, deserialize_with = "lenient::int")]
    pub default_version_id: Option<i64>,
    /// A new role ARN.
    pub provisioning_role_arn: Option<String>,
    /// Refused, see the module docs.
    pub pre_provisioning_hook: Option<ProvisioningHook>,
    /// Remove the pre-provisioning hook (the local command).
    #[serde(default, deserialize_with = "lenient::bool")]
    pub remove_pre_provisioning_hook: Option<bool>,
}

/// What [`Control::create_template`] made: the template's ARN and what the
/// emulator ignores in it.
#[derive(Debug, Clone)]
pub struct CreatedTemplate {
    /// Its ARN.
    pub template_arn: String,
    /// The parsed template (its parameters and warnings).
    pub template: ProvisioningTemplate,
}

const FLEET_PROVISIONING: &str = "FLEET_PROVISIONING";

fn lambda_hook_refused() -> ControlError {
    ControlError::invalid(
        "pre-provisioning hooks run as Lambda functions on AWS; the emulator runs a local command \
         instead: set it with `iotcore template create|update --hook-command CMD`",
    )
}

impl Control {
    /// CreateProvisioningTemplate.
    pub fn create_provisioning_template(
        &self,
        request: CreateProvisioningTemplateRequest,
    ) -> Result<CreateProvisioningTemplateResponse, ControlError> {
        if request.pre_provisioning_hook.is_some() {
            return Err(lambda_hook_refused());
        }
        match request.template_type.as_deref() {
            None | Some(FLEET_PROVISIONING) => {}
            Some(other) => {
                return Err(ControlError::invalid(format!(
                    "template type {other:?} is not emulated; use FLEET_PROVISIONING"
                )));
            }
        }
        if request.provisioning_role_arn.is_none() {
            return Err(ControlError::invalid("provisioningRoleArn is required"));
        }
        let name = request.template_name.clone();
        self.create_template(
            &name,
            &request.template_body,
            request.description.as_deref(),
            None,
        )?;
        self.store.update_template_settings(
            &name,
            None,
            Some(request.enabled == Some(true)),
            request.provisioning_role_arn.as_deref(),
            None,
        )?;
        Ok(CreateProvisioningTemplateResponse {
            template_arn: self.arn("provisioningtemplate", &name),
            template_name: name,
            default_version_id: 1,
        })
    }

    /// Creates an enabled template with a local pre-provisioning hook command
    /// (what `iotcore template create` does).
    pub fn create_template(
        &self,
        name: &str,
        body: &str,
        description: Option<&str>,
        hook_command: Option<&str>,
    ) -> Result<CreatedTemplate, ControlError> {
        let template = self
            .store
            .create_template(name, body, description, hook_command)
            .map_err(|e| match e {
                TemplateError::Exists(_) => ControlError::from(e)
                    .with_resource(name, self.arn("provisioningtemplate", name)),
                e => e.into(),
            })?;
        Ok(CreatedTemplate {
            template_arn: self.arn("provisioningtemplate", name),
            template,
        })
    }

    /// Replaces a template's body and hook command (what `iotcore template
    /// update` does; AWS adds a template version instead).
    pub fn replace_template(
        &self,
        name: &str,
        body: &str,
        hook_command: Option<&str>,
    ) -> Result<ProvisioningTemplate, ControlError> {
        Ok(self.store.update_template(name, body, hook_command)?)
    }

    /// DescribeProvisioningTemplate.
    pub fn describe_provisioning_template(
        &self,
        request: TemplateNameRequest,
    ) -> Result<DescribeProvisioningTemplateResponse, ControlError> {
        let t = self.require_template(&request.template_name)?;
        Ok(DescribeProvisioningTemplateResponse {
            template_arn: self.arn("provisioningtemplate", &t.name),
            template_name: t.name,
            description: t.description,
            creation_date: t.created_at,
            last_modified_date: t.updated_at,
            default_version_id: 1,
            template_body: t.body,
            enabled: t.enabled,
            provisioning_role_arn: t.role_arn,
            template_type: FLEET_PROVISIONING.to_owned(),
        })
    }

    /// The template `name` as stored, with its hook command.
    pub fn template(&self, name: &str) -> Result<TemplateRecord, ControlError> {
        self.require_template(name)
    }

    /// ListProvisioningTemplates.
    pub fn list_provisioning_templates(
        &self,
        request: ListProvisioningTemplatesRequest,
    ) -> Result<ListProvisioningTemplatesResponse, ControlError> {
        let page = paginate(
            self.store.list_templates()?,
            |t| t.name.as_str(),
            request.next_token.as_deref(),
            request.max_results,
            25,
            250,
        )?;
        Ok(ListProvisioningTemplatesResponse {
            templates: page
                .items
                .into_iter()
                .map(|t| ProvisioningTemplateSummary {
                    template_arn: self.arn("provisioningtemplate", &t.name),
                    template_name: t.name,
                    description: t.description,
                    creation_date: t.created_at,
                    last_modified_date: t.updated_at,
                    enabled: t.enabled,
                    template_type: FLEET_PROVISIONING.to_owned(),
                })
                .collect(),
            next_token: page.next,
        })
    }

    /// UpdateProvisioningTemplate.
    pub fn update_provisioning_template(
        &self,
        request: UpdateProvisioningTemplateRequest,
    ) -> Result<(), ControlError> {
        if request.pre_provisioning_hook.is_some() {
            return Err(lambda_hook_refused());
        }
        if let Some(version) = request.default_version_id.filter(|v| *v != 1) {
            return Err(ControlError::not_found(format!(
                "template {} has no version {version}: the emulator keeps one version, 1",
                request.template_name
            )));
        }
        let remove_hook = (request.remove_pre_provisioning_hook == Some(true)).then_some(None);
        self.store.update_template_settings(
            &request.template_name,
            request.description.as_deref().map(Some),
            request.enabled,
            request.provisioning_role_arn.as_deref(),
            remove_hook,
        )?;
        Ok(())
    }

    /// DeleteProvisioningTemplate; the things it provisioned stay.
    pub fn delete_provisioning_template(
        &self,
        request: TemplateNameRequest,
    ) -> Result<(), ControlError> {
        if !self.store.delete_template(&request.template_name)? {
            return Err(TemplateError::NotFound(request.template_name).into());
        }
        Ok(())
    }

    /// Issues a claim certificate for template `template` (subject CN
    /// `<template>-claim`, ECDSA P-256), registers it `ACTIVE` and attaches
    /// the template's claim policy, creating it if it does not exist (what
    /// `iotcore template claim` does).
    pub fn create_claim(&self, template: &str) -> Result<ClaimCredentials, ControlError> {
        let claim =
            create_claim(&self.store, &self.pki, &self.scope, template).map_err(|e| match e {
                ClaimError::NoTemplate(_) => ControlError::not_found(e.to_string()),
                ClaimError::Store(e) => e.into(),
                ClaimError::Pki(e) => e.into(),
                e => ControlError::invalid(e.to_string()),
            })?;
        self.changed();
        Ok(claim)
    }

    fn require_template(&self, name: &str) -> Result<TemplateRecord, ControlError> {
        self.store
            .template(name)?
            .ok_or_else(|| TemplateError::NotFound(name.to_owned()).into())
    }
}
