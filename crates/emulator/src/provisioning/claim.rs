//! Claim certificates: the shared identity devices leave the factory with,
//! good for one thing only — asking fleet provisioning for their own.

use std::path::Path;

use crate::pki::{DeviceCredentials, KeyAlgorithm, Pki, PkiError};
use crate::policy::ArnScope;
use crate::store::{Store, StoreError};
use crate::things::{DeviceFiles, DeviceFilesError, write_device_files};

/// Why a claim could not be made or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimError {
    /// No template has this name.
    #[error("template {0:?} does not exist; create it first with `iotcore template create`")]
    NoTemplate(String),
    /// The registry refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The certificate could not be issued.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// A file could not be written.
    #[error(transparent)]
    Files(#[from] DeviceFilesError),
}

/// A claim certificate made by
/// [`Control::create_claim`](crate::control::Control::create_claim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimCredentials {
    /// The template it may provision with.
    pub template: String,
    /// The certificate (`ACTIVE`, attached to no thing) and its private key.
    pub credentials: DeviceCredentials,
    /// The policy attached to it ([`claim_policy_name`]).
    pub policy: String,
}

/// The name of template `template`'s claim policy: `<template>-claim-policy`.
pub fn claim_policy_name(template: &str) -> String {
    format!("{template}-claim-policy")
}

/// The claim policy of `template`: connect with any client id, publish and
/// receive on the three provisioning APIs of this template only
/// (`$aws/certificates/create/*`, `$aws/certificates/create-from-csr/*`,
/// `$aws/provisioning-templates/<template>/provision/*`), and subscribe to
/// the same (AWS's claim policy example). Nothing else: not a shadow, not
/// another template, not any other topic.
pub fn claim_policy_document(template: &str, scope: &ArnScope) -> String {
    let topics = [
        "$aws/certificates/create/*".to_owned(),
        "$aws/certificates/create-from-csr/*".to_owned(),
        format!("$aws/provisioning-templates/{template}/provision/*"),
    ];
    let list = |kind: &str| {
        topics
            .iter()
            .map(|t| format!("        \"{}{kind}/{t}\"", scope.prefix()))
            .collect::<Vec<_>>()
            .join(",\n")
    };
    format!(
        r#"{{
  "Version": "2012-10-17",
  "Statement": [
    {{
      "Sid": "ConnectToProvision",
      "Effect": "Allow",
      "Action": "iot:Connect",
      "Resource": "{prefix}client/*"
    }},
    {{
      "Sid": "ProvisioningRequestsAndReplies",
      "Effect": "Allow",
      "Action": ["iot:Publish", "iot:Receive"],
      "Resource": [
{topics}
      ]
    }},
    {{
      "Sid": "SubscribeToProvisioningReplies",
      "Effect": "Allow",
      "Action": "iot:Subscribe",
      "Resource": [
{filters}
      ]
    }}
  ]
}}
"#,
        prefix = scope.prefix(),
        topics = list("topic"),
        filters = list("topicfilter"),
    )
}

/// Issues a claim certificate for template `template` (subject CN
/// `<template>-claim`, ECDSA P-256), registers it `ACTIVE` and attaches
/// [`claim_policy_name`], creating that policy from [`claim_policy_document`]
/// if it does not exist (an existing one is used as it is). Call it again for
/// another claim certificate with the same policy.
pub(crate) fn create_claim(
    store: &Store,
    pki: &Pki,
    scope: &ArnScope,
    template: &str,
) -> Result<ClaimCredentials, ClaimError> {
    if store.template(template)?.is_none() {
        return Err(ClaimError::NoTemplate(template.to_owned()));
    }
    let credentials =
        pki.issue_device_certificate(&format!("{template}-claim"), KeyAlgorithm::EcdsaP256)?;
    let policy = claim_policy_name(template);
    store.add_claim_certificate(
        &credentials.certificate_id,
        &credentials.certificate_pem,
        &policy,
        &claim_policy_document(template, scope),
    )?;
    tracing::info!(
        template,
        certificate_id = %credentials.certificate_id,
        policy,
        "claim certificate created"
    );
    Ok(ClaimCredentials {
        template: template.to_owned(),
        credentials,
        policy,
    })
}

/// Writes `<template>-claim.cert.pem`, `<template>-claim.private.key` (mode
/// 0600) and `root-ca.pem` into `out_dir`, each atomically.
pub fn write_claim_files(
    claim: &ClaimCredentials,
    ca_pem: &str,
    out_dir: &Path,
) -> Result<DeviceFiles, ClaimError> {
    let name = format!("{}-claim", claim.template);
    Ok(write_device_files(
        &name,
        &claim.credentials,
        ca_pem,
        out_dir,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{
        Action, AttachedPolicy, CertificateAttributes, PolicyDocument, Principal, RequestContext,
    };

    #[test]
    fn the_claim_policy_allows_exactly_its_templates_provisioning_topics() {
        let scope = ArnScope::new("eu-west-1", "000000000000");
        let text = claim_policy_document("fleet", &scope);
        let document = PolicyDocument::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert!(document.warnings().is_empty(), "{:?}", document.warnings());
        let context = RequestContext {
            client_id: "serial-1".into(),
            source_ip: None,
            certificate_id: "c".repeat(64),
            certificate: CertificateAttributes::default(),
            thing: None,
        };
        let policy = AttachedPolicy {
            name: claim_policy_name("fleet"),
            version: 1,
            document,
        };
        let principal = Principal::new(context, &[policy], scope);
        let allowed = |action, name: &str| principal.evaluate_name(action, name).is_allowed();
        assert!(allowed(Action::Connect, "any-client-id"));
        for topic in [
            "$aws/certificates/create/json",
            "$aws/certificates/create-from-csr/json",
            "$aws/provisioning-templates/fleet/provision/json",
        ] {
            assert!(allowed(Action::Publish, topic), "{topic}");
            for reply in ["accepted", "rejected"] {
                let reply = format!("{topic}/{reply}");
                assert!(allowed(Action::Subscribe, &reply), "{reply}");
                assert!(allowed(Action::Receive, &reply), "{reply}");
            }
        }
        for (action, name) in [
            (
                Action::Publish,
                "$aws/provisioning-templates/other/provision/json",
            ),
            (
                Action::Subscribe,
                "$aws/provisioning-templates/other/provision/json/accepted",
            ),
            (Action::Publish, "$aws/things/serial-1/shadow/get"),
            (
                Action::Subscribe,
                "$aws/things/serial-1/shadow/get/accepted",
            ),
            (Action::Publish, "dt/serial-1"),
            (Action::Subscribe, "#"),
            (Action::RetainPublish, "$aws/certificates/create/json"),
        ] {
            assert!(!allowed(action, name), "{action} {name}");
        }
    }
}
