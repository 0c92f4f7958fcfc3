//! Full-jitter exponential backoff between connection attempts.
//!
//! The delay before retry `n` (1-based) is uniformly random in
//! `[0, min(max_delay, initial_delay × 2^(n-1))]` — the "full jitter" of
//! AWS's architecture blog, which spreads a fleet's reconnects after an
//! outage instead of having every device retry in lock step.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::ConfigError;

/// How the client waits between connection attempts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// The cap of the first delay. Default 1 s.
    pub initial_delay: Duration,
    /// The largest cap. Default 120 s.
    pub max_delay: Duration,
    /// A connection that stayed up this long resets the backoff to the
    /// first delay when it drops. Default 30 s.
    pub reset_after: Duration,
    /// Seed of the jitter's random generator; `None` seeds from the OS.
    /// Set it to make delays reproducible in tests.
    pub seed: Option<u64>,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(120),
            reset_after: Duration::from_secs(30),
            seed: None,
        }
    }
}

impl ReconnectPolicy {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.initial_delay.is_zero() {
            return Err(ConfigError::InvalidSetting {
                setting: "reconnect_policy",
                why: "initial_delay must be greater than zero",
            });
        }
        if self.max_delay < self.initial_delay {
            return Err(ConfigError::InvalidSetting {
                setting: "reconnect_policy",
                why: "max_delay must be at least initial_delay",
            });
        }
        Ok(())
    }
}

/// The backoff state: how many attempts failed in a row, and the jitter source.
#[derive(Debug)]
pub(crate) struct Backoff {
    policy: ReconnectPolicy,
    failures: u32,
    rng: StdRng,
}

impl Backoff {
    pub(crate) fn new(policy: ReconnectPolicy) -> Self {
        let rng = match policy.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        Backoff {
            policy,
            failures: 0,
            rng,
        }
    }

    /// Records a failure; returns the retry number (1-based) and the delay before it.
    pub(crate) fn next_delay(&mut self) -> (u32, Duration) {
        self.failures = self.failures.saturating_add(1);
        let cap = self.cap(self.failures);
        let nanos = self.rng.random_range(0..=cap.as_nanos());
        let delay = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        (self.failures, delay)
    }

    /// The upper bound of the delay before retry `n`.
    fn cap(&self, n: u32) -> Duration {
        let doublings = n.saturating_sub(1).min(63);
        self.policy
            .initial_delay
            .checked_mul(1u32.checked_shl(doublings).unwrap_or(u32::MAX))
            .map_or(self.policy.max_delay, |d| d.min(self.policy.max_delay))
    }

    /// Called when a connection ends after being up for `uptime`: a stable
    /// connection starts the next series of retries from the first delay.
    pub(crate) fn connection_ended(&mut self, uptime: Duration) {
        if uptime >= self.policy.reset_after {
            self.failures = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(seed: u64) -> ReconnectPolicy {
        ReconnectPolicy {
            seed: Some(seed),
            ..ReconnectPolicy::default()
        }
    }

    #[test]
    fn delays_stay_under_a_cap_that_doubles_from_one_second_to_two_minutes() {
        let mut b = Backoff::new(policy(7));
        let caps = [1, 2, 4, 8, 16, 32, 64, 120, 120, 120];
        for (i, cap) in caps.iter().enumerate() {
            let (attempt, delay) = b.next_delay();
            assert_eq!(attempt as usize, i + 1);
            assert!(
                delay <= Duration::from_secs(*cap),
                "retry {attempt}: {delay:?} > {cap}s"
            );
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_delays() {
        let mut a = Backoff::new(policy(42));
        let mut b = Backoff::new(policy(42));
        let da: Vec<_> = (0..20).map(|_| a.next_delay()).collect();
        let db: Vec<_> = (0..20).map(|_| b.next_delay()).collect();
        assert_eq!(da, db);
        let mut c = Backoff::new(policy(43));
        let dc: Vec<_> = (0..20).map(|_| c.next_delay()).collect();
        assert_ne!(da, dc);
    }

    #[test]
    fn delays_are_jittered_across_the_whole_range() {
        let mut b = Backoff::new(ReconnectPolicy {
            initial_delay: Duration::from_secs(120),
            ..policy(3)
        });
        let delays: Vec<Duration> = (0..200).map(|_| b.next_delay().1).collect();
        let low = delays
            .iter()
            .filter(|d| **d < Duration::from_secs(30))
            .count();
        let high = delays
            .iter()
            .filter(|d| **d > Duration::from_secs(90))
            .count();
        assert!(low > 20 && high > 20, "low {low}, high {high}");
    }

    #[test]
    fn a_stable_connection_resets_the_retry_count_and_a_short_one_does_not() {
        let mut b = Backoff::new(policy(1));
        for _ in 0..5 {
            b.next_delay();
        }
        b.connection_ended(Duration::from_secs(29));
        assert_eq!(b.next_delay().0, 6);
        b.connection_ended(Duration::from_secs(30));
        assert_eq!(b.next_delay().0, 1);
    }

    #[test]
    fn thousands_of_failures_neither_overflow_nor_exceed_the_maximum() {
        let mut b = Backoff::new(policy(9));
        for _ in 0..5000 {
            let (_, d) = b.next_delay();
            assert!(d <= Duration::from_secs(120));
        }
        b.connection_ended(Duration::from_secs(3600));
        assert_eq!(b.next_delay().0, 1);
    }

    #[test]
    fn zero_initial_delay_and_inverted_bounds_are_configuration_errors() {
        let zero = ReconnectPolicy {
            initial_delay: Duration::ZERO,
            ..ReconnectPolicy::default()
        };
        assert!(zero.validate().is_err());
        let inverted = ReconnectPolicy {
            initial_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(5),
            ..ReconnectPolicy::default()
        };
        assert!(inverted.validate().is_err());
        assert!(ReconnectPolicy::default().validate().is_ok());
    }
}
