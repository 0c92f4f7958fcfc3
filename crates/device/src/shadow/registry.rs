//! A client's shadows: one [`Channel`] per shadow, the `clientToken`s of its
//! requests, and the bound on requests in flight.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use iotcore_model::names::{NameError, validate_shadow_name, validate_thing_name};
use iotcore_model::shadow::MAX_CLIENT_TOKEN_BYTES;
use rand::Rng;
use tokio::sync::Semaphore;

use super::channel::Channel;
use super::error::ShadowId;

/// Shadow requests one connection keeps in flight at most. AWS IoT Core
/// refuses the 11th with 429 (docs/aws-iot-core-behaviour.md §3.5); further
/// requests wait for a reply to free a place.
pub const MAX_IN_FLIGHT_REQUESTS: usize = 10;

/// Makes `clientToken`s unique to this client: a random 64-bit prefix drawn
/// once, and a counter. At most 33 bytes, well within AWS's 64.
#[derive(Debug)]
struct Tokens {
    prefix: String,
    next: AtomicU64,
}

impl Tokens {
    fn new() -> Self {
        Tokens {
            prefix: format!("{:016x}", rand::rng().random::<u64>()),
            next: AtomicU64::new(1),
        }
    }

    fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n:x}", self.prefix)
    }
}

/// The shadow state of one client (shared by all its handles).
pub(crate) struct Registry {
    channels: Mutex<HashMap<ShadowId, Arc<Channel>>>,
    in_flight: Arc<Semaphore>,
    tokens: Tokens,
    capacity: usize,
}

impl Registry {
    /// A registry whose event streams buffer `capacity` items.
    pub(crate) fn new(capacity: usize) -> Self {
        Registry {
            channels: Mutex::new(HashMap::new()),
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT_REQUESTS)),
            tokens: Tokens::new(),
            capacity,
        }
    }

    /// The channel of shadow `id`, created on first use; fails on a name AWS
    /// does not accept.
    pub(crate) fn channel(&self, id: &ShadowId) -> Result<Arc<Channel>, NameError> {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(channel) = channels.get(id) {
            return Ok(Arc::clone(channel));
        }
        validate_thing_name(id.thing())?;
        let mut prefix = format!("$aws/things/{}/shadow", id.thing());
        if let Some(name) = id.name() {
            validate_shadow_name(name)?;
            prefix.push_str("/name/");
            prefix.push_str(name);
        }
        let channel = Arc::new(Channel::new(id.clone(), prefix, self.capacity));
        channels.insert(id.clone(), Arc::clone(&channel));
        Ok(channel)
    }

    /// A `clientToken` no other request of this client has used.
    pub(crate) fn next_token(&self) -> String {
        let token = self.tokens.next();
        debug_assert!(token.len() <= MAX_CLIENT_TOKEN_BYTES);
        token
    }

    /// Places for requests in flight.
    pub(crate) fn in_flight(&self) -> &Arc<Semaphore> {
        &self.in_flight
    }

    /// How many items an event stream buffers.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_short_and_differ_between_clients() {
        let a = Registry::new(4);
        let b = Registry::new(4);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let token = a.next_token();
            assert!(token.len() <= MAX_CLIENT_TOKEN_BYTES, "{token}");
            assert!(seen.insert(token));
        }
        assert_ne!(a.tokens.prefix, b.tokens.prefix);
        let max = Tokens {
            prefix: "f".repeat(16),
            next: AtomicU64::new(u64::MAX),
        };
        assert!(max.next().len() <= MAX_CLIENT_TOKEN_BYTES);
    }

    #[test]
    fn one_channel_per_shadow_and_names_are_checked() {
        let r = Registry::new(4);
        let classic = ShadowId::new("dev1".into(), None);
        let named = ShadowId::new("dev1".into(), Some("config".into()));
        let c1 = r.channel(&classic).unwrap();
        assert!(Arc::ptr_eq(&c1, &r.channel(&classic).unwrap()));
        let c2 = r.channel(&named).unwrap();
        assert!(!Arc::ptr_eq(&c1, &c2));
        assert_eq!(
            c2.request_topic(iotcore_model::topics::ShadowOperation::Get),
            "$aws/things/dev1/shadow/name/config/get"
        );
        assert!(r.channel(&ShadowId::new("dev/1".into(), None)).is_err());
        assert!(
            r.channel(&ShadowId::new("dev1".into(), Some("+".into())))
                .is_err()
        );
    }
}
