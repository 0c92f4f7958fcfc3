//! Fleet provisioning templates: AWS's JSON format, checked when a template is
//! created ([`ProvisioningTemplate::parse`]) and applied at each RegisterThing
//! ([`ProvisioningTemplate::render`]).
//!
//! ```json
//! {
//!   "Parameters": {"SerialNumber": {"Type": "String"}, "Site": {"Type": "String", "Default": "lab"}},
//!   "Mappings": {"Sites": {"lab": {"Url": "https://lab.example"}}},
//!   "Resources": {
//!     "thing": {"Type": "AWS::IoT::Thing",
//!               "Properties": {"ThingName": {"Fn::Join": ["", ["dev-", {"Ref": "SerialNumber"}]]},
//!                              "AttributePayload": {"serial": {"Ref": "SerialNumber"}}},
//!               "OverrideSettings": {"AttributePayload": "MERGE"}},
//!     "certificate": {"Type": "AWS::IoT::Certificate",
//!                     "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"}},
//!     "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "device-policy"}}
//!   },
//!   "DeviceConfiguration": {"Url": {"Fn::FindInMap": ["Sites", {"Ref": "Site"}, "Url"]}}
//! }
//! ```
//!
//! What the emulator takes (AWS IoT developer guide, "Provisioning templates"):
//!
//! * sections `Parameters` (type `String`, optional `Default`, optional
//!   `Description`), `Mappings`, `Resources`, `DeviceConfiguration`;
//! * exactly one `AWS::IoT::Thing` (`ThingName`, `AttributePayload` — flat, or
//!   `{"Attributes": {…}}` —, `ThingTypeName`; `ThingGroups`, `BillingGroup`
//!   and `PackageVersions` are accepted and ignored with a warning: the
//!   emulator has no groups or packages), exactly one `AWS::IoT::Certificate`
//!   (`CertificateId`, which must be the certificate of the ownership token —
//!   `{"Ref": "AWS::IoT::Certificate::Id"}` — and `Status`, `ACTIVE` by default
//!   or `INACTIVE`: "Only certificate IDs can be used with a fleet provisioning
//!   template"), and any number of `AWS::IoT::Policy` (`PolicyName` of an
//!   existing policy, or `PolicyDocument` as an object or an escaped string;
//!   such a policy is named by the SHA-256 of its document, AWS's "hash of the
//!   policy document", and created on first use);
//! * `OverrideSettings` of the thing (`AttributePayload`, `ThingTypeName`,
//!   `ThingGroups`: `DO_NOTHING`, `REPLACE`, `FAIL`, `MERGE` for attributes):
//!   what to do when the thing exists. Without one, an existing thing is left
//!   as it is (the emulator's choice: AWS does not document the default);
//! * intrinsic functions (`Ref`, `Fn::Join`, `Fn::Sub` with `${!literal}`, `Fn::Select`,
//!   `Fn::Split`, `Fn::FindInMap`) in every section but `Mappings`;
//! * pseudo parameters `AWS::IoT::Certificate::Id`, `AWS::Region` and
//!   `AWS::AccountId` (the last two are the emulator's ARN scope).
//!
//! Not taken: `Conditions` and condition functions, other sections, other
//! resource types. A template is at most 10 240 characters.

use std::collections::BTreeMap;

use iotcore_model::provisioning::ProvisioningError;
use serde_json::{Map, Value};

use super::intrinsics::{self, Names, Scope, scalar_string};
use crate::policy::ArnScope;
use crate::store::{
    CertificateStatus, ExistingThing, Override, PolicyRegistration, Registration, ThingRegistration,
};

/// Longest template body AWS accepts, in characters.
pub const MAX_TEMPLATE_CHARS: usize = 10_240;

/// The pseudo parameter holding the new certificate's id.
pub const CERTIFICATE_ID: &str = "AWS::IoT::Certificate::Id";
const REGION: &str = "AWS::Region";
const ACCOUNT_ID: &str = "AWS::AccountId";
const PSEUDO_PARAMETERS: [&str; 3] = [CERTIFICATE_ID, REGION, ACCOUNT_ID];

const SECTIONS: [&str; 4] = ["Parameters", "Mappings", "Resources", "DeviceConfiguration"];
const THING: &str = "AWS::IoT::Thing";
const CERTIFICATE: &str = "AWS::IoT::Certificate";
const POLICY: &str = "AWS::IoT::Policy";

/// Why a template body is refused: a sentence naming the element at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateProblem(String);

/// A declared parameter.
#[derive(Debug, Clone, PartialEq)]
struct Parameter {
    default: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
struct ThingResource {
    name: Value,
    attributes: Option<Value>,
    thing_type: Option<Value>,
    existing: ExistingThing,
}

#[derive(Debug, Clone, PartialEq)]
struct CertificateResource {
    id: Value,
    status: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
enum PolicyResource {
    Name(Value),
    Document(Value),
}

/// A checked provisioning template.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvisioningTemplate {
    parameters: BTreeMap<String, Parameter>,
    mappings: Map<String, Value>,
    thing: ThingResource,
    certificate: CertificateResource,
    policies: Vec<(String, PolicyResource)>,
    device_configuration: Map<String, Value>,
    warnings: Vec<String>,
}

/// What applying a template to one RegisterThing gives.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// What to write to the registry.
    pub registration: Registration,
    /// The `deviceConfiguration` of the reply.
    pub device_configuration: BTreeMap<String, String>,
}

fn problem(text: impl Into<String>) -> TemplateProblem {
    TemplateProblem(text.into())
}

fn object<'v>(value: &'v Value, path: &str) -> Result<&'v Map<String, Value>, TemplateProblem> {
    value
        .as_object()
        .ok_or_else(|| problem(format!("{path} must be a JSON object")))
}

/// Fails on a key of `map` (at `path`) outside `allowed`.
fn only_keys(
    map: &Map<String, Value>,
    allowed: &[&str],
    path: &str,
) -> Result<(), TemplateProblem> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err(problem(format!(
            "{path}.{key} is not supported; expected {}",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

impl ProvisioningTemplate {
    /// Parses and checks a template body: sections, parameters, resources and
    /// their properties, override settings, and every intrinsic function's
    /// shape and names. Parameter values are not needed.
    pub fn parse(body: &str) -> Result<ProvisioningTemplate, TemplateProblem> {
        let chars = body.chars().count();
        if chars > MAX_TEMPLATE_CHARS {
            return Err(problem(format!(
                "the template has {chars} characters; AWS allows at most {MAX_TEMPLATE_CHARS}"
            )));
        }
        let root: Value = serde_json::from_str(body)
            .map_err(|e| problem(format!("the template is not JSON: {e}")))?;
        let root = object(&root, "the template")?;
        if let Some(key) = root.keys().find(|k| !SECTIONS.contains(&k.as_str())) {
            return Err(problem(format!(
                "section {key} is not supported by the emulator; a fleet provisioning template has {}",
                SECTIONS.join(", ")
            )));
        }
        let empty = Value::Object(Map::new());
        let section = |name: &str| object(root.get(name).unwrap_or(&empty), name);
        let parameters = parse_parameters(section("Parameters")?)?;
        let mappings = section("Mappings")?.clone();
        let mut template = ProvisioningTemplate {
            parameters,
            mappings,
            thing: ThingResource {
                name: Value::Null,
                attributes: None,
                thing_type: None,
                existing: ExistingThing::default(),
            },
            certificate: CertificateResource {
                id: Value::Null,
                status: None,
            },
            policies: Vec::new(),
            device_configuration: section("DeviceConfiguration")?.clone(),
            warnings: Vec::new(),
        };
        template.parse_resources(section("Resources")?)?;
        template.check_functions(root)?;
        Ok(template)
    }

    /// Things the template declares that the emulator ignores (thing groups,
    /// billing groups, packages).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The declared parameters a device passes, with their defaults (pseudo
    /// parameters such as `AWS::IoT::Certificate::Id` left out).
    pub fn parameters(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.parameters
            .iter()
            .filter(|(name, _)| !PSEUDO_PARAMETERS.contains(&name.as_str()))
            .map(|(name, p)| (name.as_str(), p.default.as_deref()))
    }

    fn parse_resources(&mut self, resources: &Map<String, Value>) -> Result<(), TemplateProblem> {
        let (mut things, mut certificates) = (0, 0);
        for (logical, resource) in resources {
            let path = format!("Resources.{logical}");
            let resource = object(resource, &path)?;
            only_keys(resource, &["Type", "Properties", "OverrideSettings"], &path)?;
            let empty = Value::Object(Map::new());
            let properties = object(
                resource.get("Properties").unwrap_or(&empty),
                &format!("{path}.Properties"),
            )?;
            let overrides = object(
                resource.get("OverrideSettings").unwrap_or(&empty),
                &format!("{path}.OverrideSettings"),
            )?;
            match resource.get("Type").and_then(Value::as_str) {
                Some(THING) => {
                    things += 1;
                    self.thing = self.parse_thing(properties, overrides, &path)?;
                }
                Some(CERTIFICATE) => {
                    certificates += 1;
                    self.certificate = parse_certificate(properties, overrides, &path)?;
                }
                Some(POLICY) => {
                    if !overrides.is_empty() {
                        return Err(problem(format!(
                            "{path}.OverrideSettings: policies take no override settings"
                        )));
                    }
                    let policy = parse_policy(properties, &path)?;
                    self.policies.push((logical.clone(), policy));
                }
                Some(other) => {
                    return Err(problem(format!(
                        "{path}.Type {other} is not supported; expected {THING}, {CERTIFICATE} or {POLICY}"
                    )));
                }
                None => return Err(problem(format!("{path}.Type is missing"))),
            }
        }
        if things != 1 || certificates != 1 {
            return Err(problem(format!(
                "Resources must declare exactly one {THING} and one {CERTIFICATE} \
                 (found {things} and {certificates})"
            )));
        }
        Ok(())
    }

    fn parse_thing(
        &mut self,
        properties: &Map<String, Value>,
        overrides: &Map<String, Value>,
        path: &str,
    ) -> Result<ThingResource, TemplateProblem> {
        let properties_path = format!("{path}.Properties");
        only_keys(
            properties,
            &[
                "ThingName",
                "AttributePayload",
                "ThingTypeName",
                "ThingGroups",
                "BillingGroup",
                "PackageVersions",
            ],
            &properties_path,
        )?;
        for ignored in ["ThingGroups", "BillingGroup", "PackageVersions"] {
            if properties.contains_key(ignored) {
                self.warnings.push(format!(
                    "{properties_path}.{ignored} is ignored: the emulator has no thing groups, \
                     billing groups or packages"
                ));
            }
        }
        let name = properties
            .get("ThingName")
            .cloned()
            .ok_or_else(|| problem(format!("{properties_path}.ThingName is missing")))?;
        let mut existing = ExistingThing::default();
        for (key, value) in overrides {
            let setting = value.as_str().and_then(Override::parse).ok_or_else(|| {
                problem(format!(
                    "{path}.OverrideSettings.{key} must be DO_NOTHING, REPLACE, FAIL or MERGE"
                ))
            })?;
            match key.as_str() {
                "AttributePayload" | "ATTRIBUTE_PAYLOAD" => existing.attributes = setting,
                "ThingTypeName" | "THING_TYPE_NAME" if setting == Override::Merge => {
                    return Err(problem(format!(
                        "{path}.OverrideSettings.{key}: MERGE is only for attributes and groups"
                    )));
                }
                "ThingTypeName" | "THING_TYPE_NAME" => existing.thing_type = setting,
                "ThingGroups" | "THING_GROUPS" => {}
                other => {
                    return Err(problem(format!(
                        "{path}.OverrideSettings.{other} is not supported; expected \
                         AttributePayload, ThingTypeName or ThingGroups"
                    )));
                }
            }
        }
        Ok(ThingResource {
            name,
            attributes: properties.get("AttributePayload").cloned(),
            thing_type: properties.get("ThingTypeName").cloned(),
            existing,
        })
    }

    fn check_functions(&self, root: &Map<String, Value>) -> Result<(), TemplateProblem> {
        let is_parameter =
            |name: &str| self.parameters.contains_key(name) || PSEUDO_PARAMETERS.contains(&name);
        let names = Names {
            is_parameter: &is_parameter,
            mappings: &self.mappings,
        };
        for section in ["Resources", "DeviceConfiguration"] {
            if let Some(value) = root.get(section) {
                intrinsics::check(value, &names, section).map_err(problem)?;
            }
        }
        Ok(())
    }

    /// Applies the template for one RegisterThing: `parameters` are the
    /// device's (with the hook's overrides), `certificate_id` the token's
    /// certificate. Fails with `InvalidParameters` when a parameter without a
    /// default is missing, `TemplateFailure` when a function or a property
    /// value is wrong.
    pub fn render(
        &self,
        parameters: &BTreeMap<String, String>,
        certificate_id: &str,
        token: &str,
        scope: &ArnScope,
    ) -> Result<Rendered, ProvisioningError> {
        let mut values = BTreeMap::new();
        for (name, declared) in &self.parameters {
            if PSEUDO_PARAMETERS.contains(&name.as_str()) {
                continue;
            }
            match parameters.get(name).or(declared.default.as_ref()) {
                Some(value) => values.insert(name.clone(), value.clone()),
                None => {
                    return Err(ProvisioningError::InvalidParameters(format!(
                        "the template needs parameter {name}, which has no default"
                    )));
                }
            };
        }
        values.insert(CERTIFICATE_ID.to_owned(), certificate_id.to_owned());
        values.insert(REGION.to_owned(), scope.region().to_owned());
        values.insert(ACCOUNT_ID.to_owned(), scope.account_id().to_owned());
        let scope = Scope {
            parameters: &values,
            mappings: &self.mappings,
        };
        let failure = ProvisioningError::TemplateFailure;
        let eval = |value: &Value, path: &str| intrinsics::evaluate(value, &scope, path);
        let string = |value: &Value, path: &str| -> Result<String, ProvisioningError> {
            let value = eval(value, path).map_err(failure)?;
            scalar_string(&value)
                .ok_or_else(|| failure(format!("{path} must be a string, not {value}")))
        };

        let thing_name = string(&self.thing.name, "ThingName")?;
        let attributes = match &self.thing.attributes {
            None => None,
            Some(payload) => Some(attributes(
                eval(payload, "AttributePayload").map_err(failure)?,
            )?),
        };
        let thing_type = match &self.thing.thing_type {
            None => None,
            Some(value) => Some(string(value, "ThingTypeName")?),
        };
        let id = string(&self.certificate.id, "CertificateId")?;
        if id != certificate_id {
            return Err(failure(format!(
                "CertificateId {id} is not the certificate of the ownership token; write \
                 {{\"Ref\": \"{CERTIFICATE_ID}\"}}"
            )));
        }
        let certificate_status = match &self.certificate.status {
            None => CertificateStatus::Active,
            Some(value) => {
                let status = string(value, "Status")?;
                match status.to_ascii_uppercase().as_str() {
                    "ACTIVE" => CertificateStatus::Active,
                    "INACTIVE" => CertificateStatus::Inactive,
                    _ => {
                        return Err(failure(format!(
                            "Status {status:?} must be ACTIVE or INACTIVE"
                        )));
                    }
                }
            }
        };
        let mut policies = Vec::new();
        for (logical, policy) in &self.policies {
            let path = format!("Resources.{logical}");
            policies.push(match policy {
                PolicyResource::Name(name) => PolicyRegistration {
                    name: string(name, &format!("{path}.PolicyName"))?,
                    document: None,
                },
                PolicyResource::Document(document) => {
                    let path = format!("{path}.PolicyDocument");
                    let document = match eval(document, &path).map_err(failure)? {
                        Value::String(text) => text,
                        object @ Value::Object(_) => object.to_string(),
                        other => {
                            return Err(failure(format!(
                                "{path} must be an object or a string, not {other}"
                            )));
                        }
                    };
                    PolicyRegistration {
                        name: document_policy_name(&document),
                        document: Some(document),
                    }
                }
            });
        }
        let mut device_configuration = BTreeMap::new();
        for (key, value) in &self.device_configuration {
            let value = eval(value, &format!("DeviceConfiguration.{key}")).map_err(failure)?;
            let text = scalar_string(&value).unwrap_or_else(|| value.to_string());
            device_configuration.insert(key.clone(), text);
        }
        Ok(Rendered {
            registration: Registration {
                token: token.to_owned(),
                certificate_id: certificate_id.to_owned(),
                certificate_status,
                thing: ThingRegistration {
                    name: thing_name,
                    thing_type,
                    attributes,
                    existing: self.thing.existing,
                },
                policies,
            },
            device_configuration,
        })
    }
}

fn parse_parameters(
    section: &Map<String, Value>,
) -> Result<BTreeMap<String, Parameter>, TemplateProblem> {
    let mut parameters = BTreeMap::new();
    for (name, spec) in section {
        let path = format!("Parameters.{name}");
        let spec = object(spec, &path)?;
        only_keys(spec, &["Type", "Default", "Description"], &path)?;
        match spec.get("Type").and_then(Value::as_str) {
            Some("String") => {}
            _ => {
                return Err(problem(format!(
                    "{path}.Type must be \"String\" (the only parameter type of provisioning templates)"
                )));
            }
        }
        let default = match spec.get("Default") {
            None => None,
            Some(value) => Some(
                scalar_string(value)
                    .ok_or_else(|| problem(format!("{path}.Default must be a string")))?,
            ),
        };
        parameters.insert(name.clone(), Parameter { default });
    }
    Ok(parameters)
}

fn parse_certificate(
    properties: &Map<String, Value>,
    overrides: &Map<String, Value>,
    path: &str,
) -> Result<CertificateResource, TemplateProblem> {
    let properties_path = format!("{path}.Properties");
    for other in [
        "CertificateSigningRequest",
        "CertificatePem",
        "CACertificatePem",
    ] {
        if properties.contains_key(other) {
            return Err(problem(format!(
                "{properties_path}.{other}: only certificate ids can be used with a fleet \
                 provisioning template; write \"CertificateId\": {{\"Ref\": \"{CERTIFICATE_ID}\"}}"
            )));
        }
    }
    only_keys(properties, &["CertificateId", "Status"], &properties_path)?;
    only_keys(overrides, &["Status"], &format!("{path}.OverrideSettings"))?;
    let id = properties.get("CertificateId").cloned().ok_or_else(|| {
        problem(format!(
            "{properties_path}.CertificateId is missing; write {{\"Ref\": \"{CERTIFICATE_ID}\"}}"
        ))
    })?;
    Ok(CertificateResource {
        id,
        status: properties.get("Status").cloned(),
    })
}

fn parse_policy(
    properties: &Map<String, Value>,
    path: &str,
) -> Result<PolicyResource, TemplateProblem> {
    let properties_path = format!("{path}.Properties");
    only_keys(
        properties,
        &["PolicyName", "PolicyDocument"],
        &properties_path,
    )?;
    match (
        properties.get("PolicyName"),
        properties.get("PolicyDocument"),
    ) {
        (Some(name), None) => Ok(PolicyResource::Name(name.clone())),
        (None, Some(document)) => {
            if let Value::String(text) = document {
                serde_json::from_str::<Value>(text).map_err(|e| {
                    problem(format!(
                        "{properties_path}.PolicyDocument is a string but not JSON: {e}"
                    ))
                })?;
            }
            Ok(PolicyResource::Document(document.clone()))
        }
        _ => Err(problem(format!(
            "{properties_path}: give PolicyName (an existing policy) or PolicyDocument, not both"
        ))),
    }
}

/// An evaluated `AttributePayload` (flat, or `{"Attributes": {…}}`) as strings.
fn attributes(payload: Value) -> Result<BTreeMap<String, String>, ProvisioningError> {
    let payload = match payload {
        Value::Object(mut map)
            if map.len() == 1 && map.get("Attributes").is_some_and(Value::is_object) =>
        {
            map.remove("Attributes").unwrap_or_default()
        }
        other => other,
    };
    let Value::Object(map) = payload else {
        return Err(ProvisioningError::TemplateFailure(
            "AttributePayload must be an object of attribute names to values".into(),
        ));
    };
    map.into_iter()
        .map(|(key, value)| match scalar_string(&value) {
            Some(text) => Ok((key, text)),
            None => Err(ProvisioningError::TemplateFailure(format!(
                "AttributePayload.{key} must be a string, not {value}"
            ))),
        })
        .collect()
}

/// The name of a policy created from `document`: its SHA-256, hex (AWS: "a
/// hash of the policy document").
pub fn document_policy_name(document: &str) -> String {
    hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        document.as_bytes(),
    ))
}

#[cfg(test)]
mod tests;
