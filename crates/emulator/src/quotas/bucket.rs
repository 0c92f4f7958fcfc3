//! A token bucket on the emulator's clock: the one rule behind every rate
//! quota. It holds at most one second's worth of tokens, refills at its rate,
//! and counts in billionths of a token so that no rounding ever lets one more
//! through or holds one back.

use std::time::{Duration, SystemTime};

/// Billionths of a token in a token.
const NANO: i128 = 1_000_000_000;

/// Tokens refilled at `rate` per second, at most `rate` held.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    /// Tokens per second, also the most held.
    rate: u64,
    /// Billionths of a token held; below zero after [`TokenBucket::charge`]
    /// took more than there was (a debt repaid by the refill).
    level: i128,
    /// When `level` was last brought up to date.
    at: SystemTime,
}

impl TokenBucket {
    /// A full bucket of `rate` tokens per second (at least 1).
    pub(crate) fn new(rate: u64, now: SystemTime) -> TokenBucket {
        let rate = rate.max(1);
        TokenBucket {
            rate,
            level: i128::from(rate) * NANO,
            at: now,
        }
    }

    fn refill(&mut self, now: SystemTime) {
        // A clock set back refills nothing and restarts from `now`.
        let elapsed = now.duration_since(self.at).unwrap_or_default();
        let capacity = i128::from(self.rate) * NANO;
        let added = i128::try_from(elapsed.as_nanos())
            .unwrap_or(i128::MAX)
            .saturating_mul(i128::from(self.rate));
        self.level = self.level.saturating_add(added).min(capacity);
        self.at = now;
    }

    /// Takes `n` tokens if the bucket holds them; says whether it did.
    pub(crate) fn try_take(&mut self, n: u64, now: SystemTime) -> bool {
        self.refill(now);
        let need = i128::from(n) * NANO;
        if self.level < need {
            return false;
        }
        self.level -= need;
        true
    }

    /// Takes `n` tokens, into debt if the bucket holds fewer.
    pub(crate) fn charge(&mut self, n: u64, now: SystemTime) {
        self.refill(now);
        self.level = self.level.saturating_sub(i128::from(n) * NANO);
    }

    /// Whole tokens held now (0 while in debt).
    pub(crate) fn available(&mut self, now: SystemTime) -> u64 {
        self.refill(now);
        u64::try_from(self.level.max(0) / NANO).unwrap_or(u64::MAX)
    }

    /// Whether the bucket is full (nothing taken for a second).
    pub(crate) fn is_full(&mut self, now: SystemTime) -> bool {
        self.refill(now);
        self.level >= i128::from(self.rate) * NANO
    }

    /// When the bucket will hold `n` tokens (`now` if it does); `n` above the
    /// rate is read as the rate.
    pub(crate) fn ready_at(&mut self, n: u64, now: SystemTime) -> SystemTime {
        self.refill(now);
        let need = i128::from(n.min(self.rate)) * NANO;
        if self.level >= need {
            return now;
        }
        let rate = i128::from(self.rate);
        let wait = (need - self.level + rate - 1) / rate;
        now + Duration::from_nanos(u64::try_from(wait).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    fn at(millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_000) + Duration::from_millis(millis)
    }

    #[test]
    fn a_full_bucket_gives_one_seconds_worth_then_refills_at_its_rate() {
        let mut bucket = TokenBucket::new(100, at(0));
        for _ in 0..100 {
            assert!(bucket.try_take(1, at(0)));
        }
        assert!(!bucket.try_take(1, at(0)), "the 101st in the same instant");
        assert!(!bucket.try_take(1, at(9)), "9 ms refill 0.9 of a token");
        assert!(bucket.try_take(1, at(10)), "10 ms refill one token");
        assert!(!bucket.try_take(1, at(10)));
        // Never more than a second's worth, however long it rested.
        assert_eq!(bucket.available(at(60_000)), 100);
    }

    #[test]
    fn a_charge_runs_into_debt_and_ready_at_says_when_it_is_repaid() {
        let mut bucket = TokenBucket::new(1_000, at(0));
        bucket.charge(1_500, at(0));
        assert_eq!(bucket.available(at(0)), 0);
        assert_eq!(bucket.ready_at(1, at(0)), at(501));
        assert_eq!(bucket.available(at(500)), 0);
        assert_eq!(bucket.available(at(501)), 1);
        assert_eq!(bucket.ready_at(1, at(501)), at(501));
    }

    #[test]
    fn one_per_second_allows_one_then_the_next_a_second_later() {
        let mut bucket = TokenBucket::new(1, at(0));
        assert!(bucket.try_take(1, at(0)));
        assert!(!bucket.try_take(1, at(999)));
        assert!(!bucket.is_full(at(999)));
        assert!(bucket.is_full(at(1_000)));
        assert!(bucket.try_take(1, at(1_000)));
    }

    #[test]
    fn a_clock_set_back_refills_nothing() {
        let mut bucket = TokenBucket::new(10, at(5_000));
        assert!(bucket.try_take(10, at(5_000)));
        assert_eq!(bucket.available(at(0)), 0);
        assert_eq!(bucket.available(at(100)), 1);
    }
}
