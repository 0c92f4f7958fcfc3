//! The emulator's one clock: what every timed rule reads (ownership tokens
//! that expire, job timeouts, rollout rates), and what its timers sleep on.
//!
//! [`Clock::system`] by default; [`Clock::manual`] gives a clock that only
//! moves when a test says so, and whose timers fire when it is moved past
//! their deadline, so that a test of a one-hour timeout takes no time and
//! gives the same result on every run.
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use iotcore_emulator::clock::Clock;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let (clock, hand) = Clock::manual(UNIX_EPOCH + Duration::from_secs(1_000));
//! let deadline = clock.now() + Duration::from_secs(3_600);
//! let timer = tokio::spawn({
//!     let clock = clock.clone();
//!     async move { clock.sleep_until(deadline).await }
//! });
//! hand.advance(Duration::from_secs(3_600));
//! timer.await.unwrap();
//! assert_eq!(clock.unix_now(), 4_600);
//! # }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

/// The longest a timer on the system clock sleeps before it looks at the
/// clock again (the wall clock may be set forward or back meanwhile).
const RECHECK: Duration = Duration::from_secs(60);

/// The time as the emulator sees it. Cheap to clone; clones read the same time.
#[derive(Clone, Default)]
pub struct Clock {
    manual: Option<ManualClock>,
}

/// The handle that moves a [`Clock::manual`] clock.
#[derive(Clone)]
pub struct ManualClock {
    now: Arc<watch::Sender<SystemTime>>,
}

impl Clock {
    /// The system's clock.
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// A clock that reads `start` until its handle moves it.
    pub fn manual(start: SystemTime) -> (Clock, ManualClock) {
        let handle = ManualClock {
            now: Arc::new(watch::Sender::new(start)),
        };
        (
            Clock {
                manual: Some(handle.clone()),
            },
            handle,
        )
    }

    /// The current time.
    pub fn now(&self) -> SystemTime {
        match &self.manual {
            None => SystemTime::now(),
            Some(manual) => manual.now(),
        }
    }

    /// The current time in unix seconds.
    pub fn unix_now(&self) -> i64 {
        unix_seconds(self.now())
    }

    /// Resolves once the clock reads `deadline` or later.
    pub async fn sleep_until(&self, deadline: SystemTime) {
        match &self.manual {
            None => loop {
                let Ok(left) = deadline.duration_since(SystemTime::now()) else {
                    return;
                };
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(left.min(RECHECK)).await;
            },
            Some(manual) => {
                let mut moved = manual.now.subscribe();
                // An error means the sender is gone, which it is not while
                // `manual` holds it; stop waiting anyway.
                let _ = moved.wait_for(|now| *now >= deadline).await;
            }
        }
    }
}

/// `time` in unix seconds (0 before the epoch).
pub(crate) fn unix_seconds(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl ManualClock {
    /// The time the clock reads.
    pub fn now(&self) -> SystemTime {
        *self.now.borrow()
    }

    /// Moves the clock forward by `by`; timers whose deadline it passes fire.
    pub fn advance(&self, by: Duration) {
        self.now.send_modify(|now| *now += by);
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.manual {
            None => f.write_str("Clock::system"),
            Some(manual) => write!(f, "Clock::manual({:?})", manual.now()),
        }
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ManualClock").field(&self.now()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let start = UNIX_EPOCH + Duration::from_secs(1_000);
        let (clock, handle) = Clock::manual(start);
        assert_eq!(clock.unix_now(), 1_000);
        let copy = clock.clone();
        handle.advance(Duration::from_secs(3_600));
        assert_eq!(copy.unix_now(), 4_600);
        assert!(Clock::system().unix_now() > 1_600_000_000);
    }

    #[tokio::test(start_paused = true)]
    async fn a_manual_timer_fires_when_the_clock_passes_its_deadline_and_not_before() {
        let start = UNIX_EPOCH + Duration::from_secs(1_000);
        let (clock, handle) = Clock::manual(start);
        let deadline = start + Duration::from_secs(60);
        let timer = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until(deadline).await }
        });
        // Tokio's own (paused) time passing does not move a manual clock.
        tokio::time::sleep(Duration::from_secs(3_600)).await;
        assert!(!timer.is_finished());
        handle.advance(Duration::from_secs(59));
        tokio::task::yield_now().await;
        assert!(!timer.is_finished());
        handle.advance(Duration::from_secs(1));
        timer.await.unwrap();
        // A deadline already passed resolves at once.
        clock.sleep_until(start).await;
    }
}
