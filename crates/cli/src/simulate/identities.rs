//! The fleet's things and certificates, made in the emulator's registry.
//!
//! Things are named `sim-00001`, `sim-00002`, …; each gets a fresh ECDSA P-256
//! key and a certificate from the emulator's CA. They share one policy,
//! [`FLEET_POLICY`], rendered from the default "thing" template: its policy
//! variables confine each device to its own client id, shadow and topics
//! (`dt/<thing>/…` among them), exactly as a per-thing `<thing>-policy` would,
//! without 10,000 copies of one document in the registry.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use iotcore_emulator::control::{
    Control, ControlError, CreatePolicyRequest, PolicyNameRequest, ThingOptions, ThingPolicy,
};
use iotcore_emulator::pki::KeyAlgorithm;
use iotcore_emulator::policy::PolicyTemplate;

use crate::registry;

/// Prefix of the simulated things' names.
const THING_PREFIX: &str = "sim-";
/// The policy every simulated device's certificate gets.
pub const FLEET_POLICY: &str = "sim-fleet-policy";

/// One simulated device's identity, made here or read by [`super::cert_dir`].
pub struct Identity {
    /// Its thing name, also its MQTT client id.
    pub thing: String,
    /// Its certificate (PEM).
    pub certificate_pem: String,
    /// Its private key (PEM).
    pub private_key_pem: String,
    /// The CA it trusts to have signed the server's certificate (PEM), shared
    /// by the devices that trust the same one.
    pub root_ca_pem: Arc<str>,
}

/// The fleet's identities and what making them cost.
pub struct Provisioned {
    /// One per device, in order.
    pub identities: Vec<Identity>,
    /// Earlier `sim-*` things deleted first.
    pub replaced: usize,
    /// How long deleting, issuing and registering took.
    pub elapsed: Duration,
}

/// Why the fleet's identities could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The registry could not be opened, read or changed.
    #[error("cannot use the emulator's registry: {0}")]
    Registry(#[source] ControlError),
    /// A thing could not be made or deleted.
    #[error("cannot set up thing {thing}: {source}")]
    Thing {
        /// The thing.
        thing: String,
        /// What failed.
        #[source]
        source: ControlError,
    },
}

/// `sim-00001` for `index` 0.
pub fn thing_name(index: usize) -> String {
    format!("{THING_PREFIX}{:05}", index + 1)
}

/// Deletes the `sim-*` things of earlier runs from `control`'s registry, then
/// creates `count` things with certificates, issuing them on every core.
pub fn provision(control: &Control, count: usize) -> Result<Provisioned, ProvisionError> {
    let started = Instant::now();
    let mut replaced = 0;
    for thing in registry::things(control).map_err(ProvisionError::Registry)? {
        let thing = thing.thing_name;
        if is_simulated(&thing) {
            control
                .delete_thing_with_credentials(&thing)
                .map_err(|source| ProvisionError::Thing {
                    thing: thing.clone(),
                    source,
                })?;
            replaced += 1;
        }
    }
    let policy = control.get_policy(PolicyNameRequest {
        policy_name: FLEET_POLICY.to_owned(),
    });
    if registry::found(policy)
        .map_err(ProvisionError::Registry)?
        .is_none()
    {
        control
            .create_policy(CreatePolicyRequest {
                policy_name: FLEET_POLICY.to_owned(),
                policy_document: PolicyTemplate::Thing.render(control.arn_scope()),
                tags: None,
            })
            .map_err(ProvisionError::Registry)?;
    }

    // The emulator's CA also signed its server certificate.
    let root_ca_pem: Arc<str> = Arc::from(control.pki().ca_pem());
    let options = ThingOptions::default()
        .with_key(KeyAlgorithm::EcdsaP256)
        .with_policy(ThingPolicy::Existing(FLEET_POLICY.to_owned()));
    // Key generation and signing dominate; the registry serializes the inserts.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = AtomicUsize::new(0);
    let made: Vec<Result<Vec<(usize, Identity)>, ProvisionError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= count {
                            return Ok(mine);
                        }
                        let thing = thing_name(index);
                        let created = control
                            .create_thing_with_certificate(&thing, &options)
                            .map_err(|source| ProvisionError::Thing {
                                thing: thing.clone(),
                                source,
                            })?;
                        mine.push((
                            index,
                            Identity {
                                thing,
                                certificate_pem: created.credentials.certificate_pem,
                                private_key_pem: created.credentials.private_key_pem,
                                root_ca_pem: root_ca_pem.clone(),
                            },
                        ));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut identities = Vec::with_capacity(count);
    for batch in made {
        identities.extend(batch?);
    }
    identities.sort_by_key(|(index, _)| *index);
    Ok(Provisioned {
        identities: identities
            .into_iter()
            .map(|(_, identity)| identity)
            .collect(),
        replaced,
        elapsed: started.elapsed(),
    })
}

/// Whether `thing` is one of ours: `sim-` and digits only.
fn is_simulated(thing: &str) -> bool {
    thing
        .strip_prefix(THING_PREFIX)
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_numbered_from_one_and_recognised() {
        assert_eq!(thing_name(0), "sim-00001");
        assert_eq!(thing_name(9_999), "sim-10000");
        assert!(is_simulated("sim-00042"));
        assert!(!is_simulated("sim-"));
        assert!(!is_simulated("sim-fleet"));
        assert!(!is_simulated("demo-device"));
    }

    #[test]
    fn provisioning_twice_replaces_the_first_fleet() {
        let dir = tempfile::tempdir().unwrap();
        let control = Control::open(dir.path(), Default::default()).unwrap();
        let first = provision(&control, 3).unwrap();
        assert_eq!(first.replaced, 0);
        let names: Vec<_> = first.identities.iter().map(|i| i.thing.as_str()).collect();
        assert_eq!(names, ["sim-00001", "sim-00002", "sim-00003"]);
        let second = provision(&control, 2).unwrap();
        assert_eq!(second.replaced, 3);
        let left: Vec<_> = registry::things(&control)
            .unwrap()
            .into_iter()
            .map(|t| t.thing_name)
            .collect();
        assert_eq!(left, ["sim-00001", "sim-00002"]);
        assert_ne!(
            first.identities[0].certificate_pem,
            second.identities[0].certificate_pem
        );
    }
}
