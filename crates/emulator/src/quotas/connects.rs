//! CONNECTs per second per client id (AWS: 1), shared by every connection.
//! A client id's bucket is kept only while it is refilling, so client ids
//! that come and go leave nothing behind.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use super::TokenBucket;

/// Buckets kept before the full ones are swept out.
const SWEEP_AT: usize = 1024;

/// The CONNECT rate quota.
#[derive(Debug)]
pub(crate) struct ConnectRate {
    /// CONNECTs per second per client id; `None`: no quota.
    rate: Option<u64>,
    buckets: Mutex<HashMap<String, TokenBucket>>,
}

impl ConnectRate {
    /// At most `rate` CONNECTs per second per client id (`None`: any number).
    pub(crate) fn new(rate: Option<u64>) -> ConnectRate {
        ConnectRate {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn buckets(&self) -> MutexGuard<'_, HashMap<String, TokenBucket>> {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a CONNECT of `client_id` at `now`; `false` when it is one too many.
    pub(crate) fn admit(&self, client_id: &str, now: SystemTime) -> bool {
        let Some(rate) = self.rate else { return true };
        let mut buckets = self.buckets();
        if buckets.len() >= SWEEP_AT {
            buckets.retain(|_, bucket| !bucket.is_full(now));
        }
        buckets
            .entry(client_id.to_owned())
            .or_insert_with(|| TokenBucket::new(rate, now))
            .try_take(1, now)
    }

    #[cfg(test)]
    fn kept(&self) -> usize {
        self.buckets().len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn at(millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_000) + Duration::from_millis(millis)
    }

    #[test]
    fn one_connect_per_second_per_client_id() {
        let rate = ConnectRate::new(Some(1));
        assert!(rate.admit("a", at(0)));
        assert!(
            !rate.admit("a", at(500)),
            "a second CONNECT within the second"
        );
        assert!(
            rate.admit("b", at(500)),
            "another client id is not affected"
        );
        assert!(!rate.admit("a", at(999)));
        assert!(rate.admit("a", at(1_000)));
    }

    #[test]
    fn no_quota_admits_everything_and_keeps_nothing() {
        let rate = ConnectRate::new(None);
        for _ in 0..10 {
            assert!(rate.admit("a", at(0)));
        }
        assert_eq!(rate.kept(), 0);
    }

    #[test]
    fn buckets_of_quiet_client_ids_are_swept() {
        let rate = ConnectRate::new(Some(1));
        for i in 0..SWEEP_AT {
            assert!(rate.admit(&format!("c{i}"), at(0)));
        }
        assert_eq!(rate.kept(), SWEEP_AT);
        assert!(rate.admit("late", at(1_000)));
        assert_eq!(rate.kept(), 1, "the full buckets went, the new one stays");
    }
}
