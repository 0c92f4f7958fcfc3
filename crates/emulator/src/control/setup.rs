//! A thing with its certificate and policy in one step: what `iotcore thing
//! create` does, and what AWS's console calls "create a thing with a new
//! certificate" (CreateThing + CreateKeysAndCertificate + CreatePolicy +
//! AttachPolicy + AttachThingPrincipal, all or nothing); and its undoing.

use super::{Control, ControlError};
use crate::pki::{DeviceCredentials, KeyAlgorithm};
use crate::policy::PolicyTemplate;
use crate::store::{DeletedThing, StoreError, validate_thing_name};

/// Which policy a new thing's certificate gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThingPolicy {
    /// Create the thing's own policy ([`thing_policy_name`]) from this template
    /// and attach it.
    Template(PolicyTemplate),
    /// Attach this existing policy.
    Existing(String),
    /// Attach none: as on AWS, the device cannot connect until a policy allows it.
    None,
}

impl Default for ThingPolicy {
    /// [`PolicyTemplate::Thing`].
    fn default() -> Self {
        ThingPolicy::Template(PolicyTemplate::Thing)
    }
}

/// How [`Control::create_thing_with_certificate`] sets a thing up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ThingOptions {
    /// The key type of the new certificate.
    pub key: KeyAlgorithm,
    /// The policy attached to the certificate.
    pub policy: ThingPolicy,
}

impl ThingOptions {
    /// Sets [`ThingOptions::key`].
    pub fn with_key(mut self, key: KeyAlgorithm) -> Self {
        self.key = key;
        self
    }

    /// Sets [`ThingOptions::policy`].
    pub fn with_policy(mut self, policy: ThingPolicy) -> Self {
        self.policy = policy;
        self
    }
}

/// The policy [`Control::create_thing_with_certificate`] attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThingPolicyAttached {
    /// Its name.
    pub name: String,
    /// The document, when the policy was created for the thing.
    pub created_document: Option<String>,
}

/// What [`Control::create_thing_with_certificate`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedThing {
    /// The certificate and its private key.
    pub credentials: DeviceCredentials,
    /// The policy attached to the certificate, if any.
    pub policy: Option<ThingPolicyAttached>,
}

/// The name of thing `thing`'s own policy: `<thing>-policy`, with each `:` (allowed in
/// thing names, not in policy names) written `.`.
pub fn thing_policy_name(thing: &str) -> String {
    format!("{}-policy", thing.replace(':', "."))
}

impl Control {
    /// Creates thing `name`, issues it a certificate with a new key (subject CN =
    /// `name`), registers the certificate `ACTIVE`, attaches it to the thing, and
    /// attaches the policy `options` asks for (by default a new `<name>-policy` from
    /// [`PolicyTemplate::Thing`], its resources in this control plane's region and
    /// account).
    ///
    /// Nothing is registered if any step fails; in particular an invalid or existing name,
    /// or an existing `<name>-policy`, fails before a key is generated.
    pub fn create_thing_with_certificate(
        &self,
        name: &str,
        options: &ThingOptions,
    ) -> Result<CreatedThing, ControlError> {
        validate_thing_name(name)?;
        if self.store.thing(name)?.is_some() {
            return Err(StoreError::ThingExists(name.to_owned()).into());
        }
        let policy = match &options.policy {
            ThingPolicy::Template(template) => {
                let policy = thing_policy_name(name);
                if self.store.policy(&policy)?.is_some() {
                    return Err(StoreError::PolicyExists(policy).into());
                }
                Some((policy, Some(template.render(&self.scope))))
            }
            ThingPolicy::Existing(policy) => {
                self.require_policy(policy)?;
                Some((policy.clone(), None))
            }
            ThingPolicy::None => None,
        };
        let credentials = self.pki.issue_device_certificate(name, options.key)?;
        let (id, pem) = (&credentials.certificate_id, &credentials.certificate_pem);
        match &policy {
            Some((policy, document)) => self.store.create_thing_with_certificate_and_policy(
                name,
                id,
                pem,
                policy,
                document.as_deref(),
            )?,
            None => self.store.create_thing_with_certificate(name, id, pem)?,
        };
        self.changed();
        tracing::info!(
            thing = name,
            certificate_id = %credentials.certificate_id,
            policy = policy.as_ref().map_or("none", |(p, _)| p.as_str()),
            "created thing"
        );
        Ok(CreatedThing {
            credentials,
            policy: policy.map(|(name, created_document)| ThingPolicyAttached {
                name,
                created_document,
            }),
        })
    }

    /// Deletes thing `name` and what [`Control::create_thing_with_certificate`]
    /// made for it: its certificates that no other thing uses (devices using
    /// them are disconnected) and its own policy ([`thing_policy_name`]) unless
    /// another certificate uses it.
    pub fn delete_thing_with_credentials(&self, name: &str) -> Result<DeletedThing, ControlError> {
        let deleted = self
            .store
            .delete_thing_with_credentials(name, &thing_policy_name(name))?;
        self.changed();
        tracing::info!(thing = name, ?deleted, "deleted thing");
        Ok(deleted)
    }
}
