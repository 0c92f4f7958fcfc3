//! What the service framework keeps per client, for every service alike:
//! the channels, the `clientToken`s, and the bounds on requests in flight.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rand::Rng;
use tokio::sync::Semaphore;

use super::channel::Channel;
use super::{Correlation, Service};

/// The longest `clientToken` AWS accepts (Device Shadow and Jobs: 64 bytes).
pub(crate) const MAX_CLIENT_TOKEN_BYTES: usize = 64;

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

/// A channel is one service's set of reply filters.
type ChannelKey = (&'static str, Correlation, Vec<String>);

/// The framework's state within one client (shared by all its handles). It
/// knows no service by name: services bring their own [`Service`].
pub(crate) struct Services {
    channels: Mutex<HashMap<ChannelKey, Arc<Channel>>>,
    limits: Mutex<HashMap<&'static str, Arc<Semaphore>>>,
    tokens: Tokens,
    capacity: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Services {
    /// The state of a client whose event streams buffer `capacity` items.
    pub(crate) fn new(capacity: usize) -> Self {
        Services {
            channels: Mutex::new(HashMap::new()),
            limits: Mutex::new(HashMap::new()),
            tokens: Tokens::new(),
            capacity,
        }
    }

    /// The channel of `service` on `filters`, created on first use.
    pub(crate) fn channel(&self, service: &'static Service, filters: Vec<String>) -> Arc<Channel> {
        let key = (service.name(), service.correlation(), filters);
        let mut channels = lock(&self.channels);
        if let Some(channel) = channels.get(&key) {
            return Arc::clone(channel);
        }
        let channel = Arc::new(Channel::new(service, key.2.clone(), self.capacity));
        channels.insert(key, Arc::clone(&channel));
        channel
    }

    /// The places for `service`'s requests in flight, if it has a bound;
    /// shared by every channel of services of that name.
    pub(crate) fn limit(&self, service: &'static Service) -> Option<Arc<Semaphore>> {
        let max = service.max_in_flight()?;
        Some(Arc::clone(
            lock(&self.limits)
                .entry(service.name())
                .or_insert_with(|| Arc::new(Semaphore::new(max))),
        ))
    }

    /// A `clientToken` no other request of this client has used.
    pub(crate) fn next_token(&self) -> String {
        let token = self.tokens.next();
        debug_assert!(token.len() <= MAX_CLIENT_TOKEN_BYTES);
        token
    }

    /// How many items an event stream buffers.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static SHADOWY: Service =
        Service::new("shadowy", Correlation::ClientToken).with_max_in_flight(2);
    static SHADOWY_TOO: Service =
        Service::new("shadowy", Correlation::ClientToken).with_max_in_flight(2);
    static OTHER: Service = Service::new("other", Correlation::Topic);

    #[test]
    fn tokens_are_unique_short_and_differ_between_clients() {
        let a = Services::new(4);
        let b = Services::new(4);
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
    fn one_channel_per_service_and_filter_set() {
        let s = Services::new(4);
        let a = s.channel(&SHADOWY, vec!["a/+".into()]);
        assert!(Arc::ptr_eq(&a, &s.channel(&SHADOWY, vec!["a/+".into()])));
        assert!(Arc::ptr_eq(
            &a,
            &s.channel(&SHADOWY_TOO, vec!["a/+".into()])
        ));
        assert!(!Arc::ptr_eq(&a, &s.channel(&SHADOWY, vec!["b/+".into()])));
        assert!(!Arc::ptr_eq(&a, &s.channel(&OTHER, vec!["a/+".into()])));
    }

    #[test]
    fn the_bound_on_requests_in_flight_is_per_service() {
        let s = Services::new(4);
        let limit = s.limit(&SHADOWY).expect("bounded");
        assert_eq!(limit.available_permits(), 2);
        assert!(Arc::ptr_eq(&limit, &s.limit(&SHADOWY_TOO).unwrap()));
        assert!(s.limit(&OTHER).is_none());
    }
}
