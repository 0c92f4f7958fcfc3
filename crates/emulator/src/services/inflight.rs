//! Counts each connection's requests to a service in flight (received, not
//! yet answered), up to a maximum. A connection's entry exists only while its
//! count is above zero, so nothing is left behind by connections that come
//! and go.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::broker::session::ConnectionId;

/// Requests in flight, per connection.
#[derive(Debug)]
pub(crate) struct InFlight {
    max: usize,
    counts: Mutex<HashMap<ConnectionId, usize>>,
}

impl InFlight {
    /// At most `max` requests in flight per connection.
    pub(crate) fn new(max: usize) -> InFlight {
        InFlight {
            max,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// The most requests one connection may have in flight.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    fn counts(&self) -> MutexGuard<'_, HashMap<ConnectionId, usize>> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one more request of `connection`, unless it already has the
    /// maximum in flight; returns whether it was counted.
    pub(crate) fn try_acquire(&self, connection: ConnectionId) -> bool {
        let mut counts = self.counts();
        let count = counts.entry(connection).or_insert(0);
        if *count >= self.max {
            return false;
        }
        *count += 1;
        true
    }

    /// One request of `connection` has been answered.
    pub(crate) fn release(&self, connection: ConnectionId) {
        let mut counts = self.counts();
        if let Some(count) = counts.get_mut(&connection) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&connection);
            }
        }
    }

    /// Connections with requests in flight.
    #[cfg(test)]
    fn connections(&self) -> usize {
        self.counts().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_the_maximum_per_connection_and_no_entry_left_behind() {
        const MAX: usize = 10;
        let in_flight = InFlight::new(MAX);
        for _ in 0..MAX {
            assert!(in_flight.try_acquire(1));
        }
        assert!(!in_flight.try_acquire(1));
        assert!(
            in_flight.try_acquire(2),
            "other connections are not affected"
        );
        in_flight.release(1);
        assert!(in_flight.try_acquire(1));
        for _ in 0..MAX {
            in_flight.release(1);
        }
        in_flight.release(2);
        assert_eq!(in_flight.connections(), 0);
        // A stray release changes nothing.
        in_flight.release(3);
        assert_eq!(in_flight.connections(), 0);
    }
}
