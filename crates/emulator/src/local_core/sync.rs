//! Mirroring the cloud's view of a core's client devices into the core's
//! local registry: what the client device auth component learns from AWS
//! (`VerifyClientDeviceIdentity`, `VerifyClientDeviceIoTCertificateAssociation`)
//! and caches, so that the core keeps authenticating devices while it is cut
//! from the cloud.
//!
//! A client device's certificates are registered in the local registry
//! without a CA (they chain to the cloud's CA, which the local broker trusts),
//! with the status they have in the cloud, attached to a thing of the same
//! name and to the local authorization policy. A device no longer associated,
//! or a certificate no longer attached, is deactivated locally: the local
//! broker disconnects it at once.

use std::collections::{BTreeMap, BTreeSet};

use crate::control::{
    Control, ControlError, CreatePolicyRequest, CreatePolicyVersionRequest, CreateThingRequest,
    DescribeCertificateRequest, ErrorCode, ListAttachedPoliciesRequest, ListThingPrincipalsRequest,
    ListThingsRequest, PolicyNameRequest, PolicyTargetRequest, PolicyVersionRequest,
    RegisterCertificateRequest, ThingPrincipalRequest, UpdateCertificateRequest,
};

/// What one pass changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Synced {
    /// Things whose certificates the local broker accepts now.
    pub devices: BTreeSet<String>,
    /// Certificates registered, or whose status changed, in this pass.
    pub certificates_changed: usize,
    /// Certificates deactivated because their thing is no longer associated
    /// or they are no longer attached to it.
    pub certificates_withdrawn: usize,
}

/// The policy that lets a thing connect with its own name as client id and
/// do what `policy_document` allows.
pub(crate) struct LocalPolicy<'a> {
    pub(crate) name: &'a str,
    pub(crate) document: &'a str,
}

/// Makes `local` accept exactly the certificates that `cloud` has attached to
/// the things in `things`, each with its policies (and no other).
pub(crate) fn sync_devices(
    cloud: &Control,
    local: &Control,
    things: &BTreeMap<String, Vec<LocalPolicy<'_>>>,
) -> Result<Synced, ControlError> {
    let mut ensured = BTreeSet::new();
    let mut synced = Synced::default();
    let mut wanted = BTreeSet::new();
    for (thing, policies) in things {
        for policy in policies {
            if ensured.insert(policy.name) {
                ensure_policy(local, policy)?;
            }
        }
        let certificates = match thing_certificates(cloud, thing) {
            Ok(certificates) => certificates,
            Err(e) if e.code() == ErrorCode::ResourceNotFound => continue,
            Err(e) => return Err(e),
        };
        ignore_exists(local.create_thing(CreateThingRequest::named(thing)))?;
        for id in certificates {
            let described = cloud
                .describe_certificate(DescribeCertificateRequest {
                    certificate_id: id.clone(),
                })?
                .certificate_description;
            if mirror_certificate(local, &id, &described.certificate_pem, &described.status)? {
                synced.certificates_changed += 1;
            }
            let arn = local.arn("cert", &id);
            local.attach_thing_principal(ThingPrincipalRequest {
                thing_name: thing.clone(),
                principal: arn.clone(),
                thing_principal_type: None,
            })?;
            attach_only(local, &arn, policies)?;
            wanted.insert(id);
        }
        synced.devices.insert(thing.clone());
    }
    synced.certificates_withdrawn = withdraw_others(local, &wanted)?;
    Ok(synced)
}

/// Attaches `policies` to the certificate `arn` and detaches any other (the
/// core was configured otherwise before, or the thing left a device group).
fn attach_only(
    local: &Control,
    arn: &str,
    policies: &[LocalPolicy<'_>],
) -> Result<(), ControlError> {
    let attached = local
        .list_attached_policies(ListAttachedPoliciesRequest {
            target: arn.to_owned(),
            ..ListAttachedPoliciesRequest::default()
        })?
        .policies;
    for stale in attached
        .iter()
        .filter(|a| !policies.iter().any(|p| p.name == a.policy_name))
    {
        local.detach_policy(PolicyTargetRequest {
            policy_name: stale.policy_name.clone(),
            target: arn.to_owned(),
        })?;
    }
    for policy in policies {
        if !attached.iter().any(|a| a.policy_name == policy.name) {
            local.attach_policy(PolicyTargetRequest {
                policy_name: policy.name.to_owned(),
                target: arn.to_owned(),
            })?;
        }
    }
    Ok(())
}

/// The ids of the certificates attached to `thing` in `cloud`.
fn thing_certificates(cloud: &Control, thing: &str) -> Result<Vec<String>, ControlError> {
    let mut ids = Vec::new();
    let mut next_token = None;
    loop {
        let page = cloud.list_thing_principals(ListThingPrincipalsRequest {
            thing_name: thing.to_owned(),
            next_token,
            max_results: None,
        })?;
        ids.extend(
            page.principals
                .iter()
                .filter_map(|arn| arn.split_once(":cert/").map(|(_, id)| id.to_owned())),
        );
        match page.next_token {
            Some(token) => next_token = Some(token),
            None => return Ok(ids),
        }
    }
}

/// Registers the certificate locally with `status`, or sets its status;
/// true if anything changed.
fn mirror_certificate(
    local: &Control,
    id: &str,
    pem: &str,
    status: &str,
) -> Result<bool, ControlError> {
    // Only ACTIVE and INACTIVE can be registered; a REVOKED or
    // PENDING_ACTIVATION certificate of the cloud is INACTIVE on the core.
    let status = if status == "ACTIVE" {
        "ACTIVE"
    } else {
        "INACTIVE"
    };
    match local.describe_certificate(DescribeCertificateRequest {
        certificate_id: id.to_owned(),
    }) {
        Ok(described) if described.certificate_description.status == status => Ok(false),
        Ok(_) => set_status(local, id, status).map(|()| true),
        Err(e) if e.code() == ErrorCode::ResourceNotFound => {
            local.register_certificate_without_ca(RegisterCertificateRequest {
                certificate_pem: pem.to_owned(),
                status: Some(status.to_owned()),
                ..RegisterCertificateRequest::default()
            })?;
            Ok(true)
        }
        Err(e) => Err(e),
    }
}

/// Deactivates every active local certificate not in `wanted`; how many.
fn withdraw_others(local: &Control, wanted: &BTreeSet<String>) -> Result<usize, ControlError> {
    let mut withdrawn = 0;
    let mut next_token = None;
    loop {
        let page = local.list_things(ListThingsRequest {
            next_token,
            ..ListThingsRequest::default()
        })?;
        for thing in &page.things {
            for id in thing_certificates(local, &thing.thing_name)? {
                if wanted.contains(&id) {
                    continue;
                }
                let status = local
                    .describe_certificate(DescribeCertificateRequest {
                        certificate_id: id.clone(),
                    })?
                    .certificate_description
                    .status;
                if status == "ACTIVE" {
                    set_status(local, &id, "INACTIVE")?;
                    withdrawn += 1;
                }
            }
        }
        match page.next_token {
            Some(token) => next_token = Some(token),
            None => return Ok(withdrawn),
        }
    }
}

fn set_status(local: &Control, id: &str, status: &str) -> Result<(), ControlError> {
    local.update_certificate(UpdateCertificateRequest {
        certificate_id: id.to_owned(),
        new_status: status.to_owned(),
    })
}

/// Creates the local policy, or makes `policy.document` its default version
/// when it has another one (the core was started with another policy).
fn ensure_policy(local: &Control, policy: &LocalPolicy<'_>) -> Result<(), ControlError> {
    let name = policy.name.to_owned();
    match local.get_policy(PolicyNameRequest {
        policy_name: name.clone(),
    }) {
        Ok(current) if current.policy_document == policy.document => Ok(()),
        Ok(_) => {
            prune_versions(local, &name)?;
            local
                .create_policy_version(CreatePolicyVersionRequest {
                    policy_name: name,
                    policy_document: policy.document.to_owned(),
                    set_as_default: Some(true),
                })
                .map(drop)
        }
        Err(e) if e.code() == ErrorCode::ResourceNotFound => local
            .create_policy(CreatePolicyRequest {
                policy_name: name,
                policy_document: policy.document.to_owned(),
                tags: None,
            })
            .map(drop),
        Err(e) => Err(e),
    }
}

/// Deletes the versions of policy `name` that are not its default, so that
/// a new one fits under AWS's limit of five.
fn prune_versions(local: &Control, name: &str) -> Result<(), ControlError> {
    let versions = local.list_policy_versions(PolicyNameRequest {
        policy_name: name.to_owned(),
    })?;
    for version in versions.policy_versions {
        if !version.is_default_version {
            local.delete_policy_version(PolicyVersionRequest {
                policy_name: name.to_owned(),
                policy_version_id: version.version_id,
            })?;
        }
    }
    Ok(())
}

/// `Ok` when `result` failed only because the resource exists already.
pub(super) fn ignore_exists<T>(result: Result<T, ControlError>) -> Result<(), ControlError> {
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.code() == ErrorCode::ResourceAlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}
