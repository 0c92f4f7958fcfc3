//! The fleet's things and certificates, made in the emulator's registry.
//!
//! Things are named `sim-00001`, `sim-00002`, … (six digits and more from
//! 100,000 devices on, [`thing_name`]); each gets a fresh ECDSA P-256
//! key and a certificate from the emulator's CA. They share one policy,
//! [`FLEET_POLICY`], rendered from the default "thing" template: its policy
//! variables confine each device to its own client id, shadow and topics
//! (`dt/<thing>/…` among them), exactly as a per-thing `<thing>-policy` would,
//! without 10,000 copies of one document in the registry.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use iotcore_emulator::control::{
    Control, ControlError, CreatePolicyRequest, ErrorCode, PolicyNameRequest, ThingOptions,
    ThingPolicy,
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

/// The name of device `index` (0-based) of a fleet of `devices`: `sim-00001`
/// for 0, numbered from one and zero-padded to five digits, or to as many as
/// `devices` has (`sim-000001` in a fleet of 100,000), so names sort in order
/// and a fleet below 100,000 keeps the names it always had.
pub fn thing_name(index: usize, devices: usize) -> String {
    let width = devices.to_string().len().max(5);
    format!("{THING_PREFIX}{:0width$}", index + 1)
}

/// Which earlier `sim-*` things [`provision`] deletes before making its own.
pub enum Replace {
    /// Every one: the whole fleet runs in this process.
    All,
    /// Only those named like the devices made now: other shards of the fleet
    /// may be running against the same registry.
    Mine,
}

/// Deletes `sim-*` things of earlier runs from `control`'s registry (which
/// ones: `replace`), then creates the things of devices `range` of a fleet of
/// `devices`, with certificates, issuing them on every core.
pub fn provision(
    control: &Control,
    range: Range<usize>,
    devices: usize,
    replace: Replace,
) -> Result<Provisioned, ProvisionError> {
    let started = Instant::now();
    let mut replaced = 0;
    let mine: HashSet<String> = match replace {
        Replace::All => HashSet::new(),
        Replace::Mine => range.clone().map(|i| thing_name(i, devices)).collect(),
    };
    for thing in registry::things(control).map_err(ProvisionError::Registry)? {
        let thing = thing.thing_name;
        let ours = match replace {
            Replace::All => is_simulated(&thing),
            Replace::Mine => mine.contains(&thing),
        };
        if ours {
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
        let created = control.create_policy(CreatePolicyRequest {
            policy_name: FLEET_POLICY.to_owned(),
            policy_document: PolicyTemplate::Thing.render(control.arn_scope()),
            tags: None,
        });
        match created {
            // Another shard made it meanwhile: the same document.
            Err(e) if e.code() == ErrorCode::ResourceAlreadyExists => {}
            other => {
                other.map_err(ProvisionError::Registry)?;
            }
        }
    }

    // The emulator's CA also signed its server certificate.
    let root_ca_pem: Arc<str> = Arc::from(control.pki().ca_pem());
    let options = ThingOptions::default()
        .with_key(KeyAlgorithm::EcdsaP256)
        .with_policy(ThingPolicy::Existing(FLEET_POLICY.to_owned()));
    // Key generation and signing dominate; the registry serializes the inserts.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = AtomicUsize::new(range.start);
    let made: Vec<Result<Vec<(usize, Identity)>, ProvisionError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= range.end {
                            return Ok(mine);
                        }
                        let thing = thing_name(index, devices);
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
    let mut identities = Vec::with_capacity(range.len());
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
        assert_eq!(thing_name(0, 3), "sim-00001");
        assert_eq!(thing_name(9_999, 10_000), "sim-10000");
        assert_eq!(thing_name(41, 99_999), "sim-00042");
        assert_eq!(thing_name(41, 100_000), "sim-000042");
        assert_eq!(thing_name(99_999, 100_000), "sim-100000");
        assert!(is_simulated(&thing_name(0, 1_000_000)));
        assert!(is_simulated("sim-00042"));
        assert!(!is_simulated("sim-"));
        assert!(!is_simulated("sim-fleet"));
        assert!(!is_simulated("demo-device"));
    }

    #[test]
    fn provisioning_twice_replaces_the_first_fleet() {
        let dir = tempfile::tempdir().unwrap();
        let control = Control::open(dir.path(), Default::default()).unwrap();
        let first = provision(&control, 0..3, 3, Replace::All).unwrap();
        assert_eq!(first.replaced, 0);
        let names: Vec<_> = first.identities.iter().map(|i| i.thing.as_str()).collect();
        assert_eq!(names, ["sim-00001", "sim-00002", "sim-00003"]);
        let second = provision(&control, 0..2, 2, Replace::All).unwrap();
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

    #[test]
    fn a_shard_makes_and_replaces_its_own_things_only() {
        let dir = tempfile::tempdir().unwrap();
        let control = Control::open(dir.path(), Default::default()).unwrap();
        let names = |p: &Provisioned| -> Vec<String> {
            p.identities.iter().map(|i| i.thing.clone()).collect()
        };
        let second = provision(&control, 2..4, 5, Replace::Mine).unwrap();
        assert_eq!(names(&second), ["sim-00003", "sim-00004"]);
        let first = provision(&control, 0..2, 5, Replace::Mine).unwrap();
        assert_eq!(names(&first), ["sim-00001", "sim-00002"]);
        assert_eq!(first.replaced, 0);
        let again = provision(&control, 2..4, 5, Replace::Mine).unwrap();
        assert_eq!(again.replaced, 2);
        let left: Vec<_> = registry::things(&control)
            .unwrap()
            .into_iter()
            .map(|t| t.thing_name)
            .collect();
        assert_eq!(left, ["sim-00001", "sim-00002", "sim-00003", "sim-00004"]);
    }
}
