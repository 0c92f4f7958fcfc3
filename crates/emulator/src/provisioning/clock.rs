//! The clock fleet provisioning reads: the system's, or one a test moves.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The time as fleet provisioning sees it (ownership tokens expire one hour
/// after they are made). [`Clock::system`] by default; [`Clock::manual`] gives
/// a clock that only moves when a test says so. Cheap to clone.
#[derive(Clone, Default)]
pub struct Clock {
    manual: Option<ManualClock>,
}

/// The handle that moves a [`Clock::manual`] clock.
#[derive(Clone)]
pub struct ManualClock {
    now: Arc<Mutex<SystemTime>>,
}

impl Clock {
    /// The system's clock.
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// A clock that reads `start` until its handle moves it.
    pub fn manual(start: SystemTime) -> (Clock, ManualClock) {
        let handle = ManualClock {
            now: Arc::new(Mutex::new(start)),
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
        self.now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }
}

impl ManualClock {
    /// The time the clock reads.
    pub fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
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
}
