//! The quotas one connection is held to while it is served: publishes per
//! second (received and sent together), bytes per second (read and written
//! together), and the replay rate of a resumed session's stored messages.
//! The connection asks before it acts and reports what it did; this module
//! only counts.

use std::time::SystemTime;

use super::{Quotas, TokenBucket};

/// One connection's rate quotas.
#[derive(Debug)]
pub(crate) struct ConnectionQuotas {
    publishes: Option<TokenBucket>,
    bytes: Option<TokenBucket>,
    replay: Option<TokenBucket>,
    /// Stored messages of a resumed session not yet handed to the client.
    backlog: usize,
}

impl ConnectionQuotas {
    /// Full buckets for the quotas `quotas` sets.
    pub(crate) fn new(quotas: &Quotas, now: SystemTime) -> ConnectionQuotas {
        let bucket = |rate: Option<u64>| rate.map(|rate| TokenBucket::new(rate, now));
        ConnectionQuotas {
            publishes: bucket(quotas.publishes_per_second),
            bytes: bucket(quotas.bytes_per_second),
            replay: bucket(quotas.replay_per_second),
            backlog: 0,
        }
    }

    /// A PUBLISH received: counts it and says whether it is within the quota
    /// (one over it is discarded, and not counted).
    pub(crate) fn inbound_publish(&mut self, now: SystemTime) -> bool {
        self.publishes
            .as_mut()
            .is_none_or(|bucket| bucket.try_take(1, now))
    }

    /// The session was resumed with `backlog` stored messages: they are
    /// handed over at the replay rate.
    pub(crate) fn resumed(&mut self, backlog: usize) {
        self.backlog = backlog;
    }

    /// How many PUBLISH packets may be sent now.
    pub(crate) fn outbound_budget(&mut self, now: SystemTime) -> usize {
        let available = |bucket: &mut Option<TokenBucket>| {
            bucket.as_mut().map_or(usize::MAX, |b| {
                usize::try_from(b.available(now)).unwrap_or(usize::MAX)
            })
        };
        let publishes = available(&mut self.publishes);
        if self.backlog == 0 {
            return publishes;
        }
        // Stored messages come first in the queue: at most the backlog is
        // held to the replay rate, what follows it only to the publish rate.
        let replay = available(&mut self.replay);
        publishes.min(if replay >= self.backlog {
            usize::MAX
        } else {
            replay
        })
    }

    /// `n` PUBLISH packets were sent (or taken from the queue to be).
    pub(crate) fn sent(&mut self, n: usize, now: SystemTime) {
        let n64 = u64::try_from(n).unwrap_or(u64::MAX);
        if let Some(bucket) = &mut self.publishes {
            bucket.charge(n64, now);
        }
        let replayed = n.min(self.backlog);
        if replayed > 0 {
            self.backlog -= replayed;
            if let Some(bucket) = &mut self.replay {
                bucket.charge(u64::try_from(replayed).unwrap_or(u64::MAX), now);
            }
        }
    }

    /// When one more PUBLISH may be sent, if not now.
    pub(crate) fn outbound_ready_at(&mut self, now: SystemTime) -> Option<SystemTime> {
        if self.outbound_budget(now) > 0 {
            return None;
        }
        let mut at = now;
        if let Some(bucket) = &mut self.publishes {
            at = at.max(bucket.ready_at(1, now));
        }
        if self.backlog > 0 {
            if let Some(bucket) = &mut self.replay {
                at = at.max(bucket.ready_at(1, now));
            }
        }
        Some(at)
    }

    /// `n` bytes were read or written.
    pub(crate) fn bytes(&mut self, n: usize, now: SystemTime) {
        if let Some(bucket) = &mut self.bytes {
            bucket.charge(u64::try_from(n).unwrap_or(u64::MAX), now);
        }
    }

    /// While the connection is over its bytes-per-second quota: when it may
    /// read and write again.
    pub(crate) fn bytes_ready_at(&mut self, now: SystemTime) -> Option<SystemTime> {
        let bucket = self.bytes.as_mut()?;
        (bucket.available(now) == 0).then(|| bucket.ready_at(1, now))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::quotas::Quota;

    fn at(millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_000) + Duration::from_millis(millis)
    }

    fn quotas(changes: &[(Quota, Option<u64>)]) -> Quotas {
        let mut quotas = Quotas::aws();
        for (quota, value) in changes {
            quotas.set(*quota, *value).unwrap();
        }
        quotas
    }

    #[test]
    fn inbound_publishes_over_the_rate_are_refused_until_it_refills() {
        let mut q = ConnectionQuotas::new(&quotas(&[(Quota::PublishesPerSecond, Some(3))]), at(0));
        assert!((0..3).all(|_| q.inbound_publish(at(0))));
        assert!(!q.inbound_publish(at(100)));
        assert!(q.inbound_publish(at(334)), "a third of a second: one more");
        let mut off = ConnectionQuotas::new(&Quotas::off(), at(0));
        assert!((0..10_000).all(|_| off.inbound_publish(at(0))));
    }

    #[test]
    fn received_and_sent_publishes_share_the_rate() {
        let mut q = ConnectionQuotas::new(&quotas(&[(Quota::PublishesPerSecond, Some(10))]), at(0));
        assert!((0..4).all(|_| q.inbound_publish(at(0))));
        assert_eq!(q.outbound_budget(at(0)), 6);
        q.sent(6, at(0));
        assert_eq!(q.outbound_budget(at(0)), 0);
        assert!(!q.inbound_publish(at(0)));
        assert_eq!(q.outbound_ready_at(at(0)), Some(at(100)));
        assert_eq!(q.outbound_ready_at(at(100)), None);
    }

    #[test]
    fn a_resumed_sessions_backlog_goes_at_the_replay_rate_then_the_rest_at_the_publish_rate() {
        let mut q = ConnectionQuotas::new(&quotas(&[(Quota::ReplayPerSecond, Some(2))]), at(0));
        q.resumed(5);
        assert_eq!(q.outbound_budget(at(0)), 2);
        q.sent(2, at(0));
        assert_eq!(q.outbound_budget(at(0)), 0);
        assert_eq!(q.outbound_ready_at(at(0)), Some(at(500)));
        assert_eq!(q.outbound_budget(at(500)), 1);
        q.sent(1, at(500));
        // The last two stored messages fit in the replay rate: only the
        // publish rate holds them and what follows.
        assert_eq!(q.outbound_budget(at(1_500)), 100);
        q.sent(2, at(1_500));
        assert_eq!(q.outbound_budget(at(1_500)), 98);
        // With the replay quota lifted, the backlog goes at the publish rate.
        let mut lifted = ConnectionQuotas::new(&quotas(&[(Quota::ReplayPerSecond, None)]), at(0));
        lifted.resumed(1_000);
        assert_eq!(lifted.outbound_budget(at(0)), 100);
    }

    #[test]
    fn bytes_over_the_rate_hold_the_connection_until_the_debt_is_repaid() {
        let mut q = ConnectionQuotas::new(&quotas(&[(Quota::BytesPerSecond, Some(1_000))]), at(0));
        q.bytes(999, at(0));
        assert_eq!(q.bytes_ready_at(at(0)), None);
        q.bytes(1_001, at(0));
        assert_eq!(q.bytes_ready_at(at(0)), Some(at(1_001)));
        assert_eq!(q.bytes_ready_at(at(1_001)), None);
        let mut off = ConnectionQuotas::new(&Quotas::off(), at(0));
        off.bytes(usize::MAX, at(0));
        assert_eq!(off.bytes_ready_at(at(0)), None);
    }
}
