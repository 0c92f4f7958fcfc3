//! One timer for the driver's loop, re-armed only when its deadline changes.
//!
//! The loop wakes several times per request (command, write, flush, reply);
//! registering fresh timers with tokio on every wake-up would cost more than
//! the request's own work.

use std::pin::Pin;

use tokio::time::{Instant, Sleep, sleep_until};

/// A persistent `Sleep` armed at an optional deadline.
pub(crate) struct Alarm {
    sleep: Pin<Box<Sleep>>,
    deadline: Option<Instant>,
}

impl Alarm {
    /// An alarm that is not armed.
    pub(crate) fn new() -> Alarm {
        Alarm {
            sleep: Box::pin(sleep_until(Instant::now())),
            deadline: None,
        }
    }

    /// Arms the alarm at `deadline`, or disarms it with `None`.
    pub(crate) fn set(&mut self, deadline: Option<Instant>) {
        if deadline != self.deadline {
            if let Some(at) = deadline {
                self.sleep.as_mut().reset(at);
            }
            self.deadline = deadline;
        }
    }

    /// True when armed: only then may [`Alarm::ring`] be awaited.
    pub(crate) fn is_armed(&self) -> bool {
        self.deadline.is_some()
    }

    /// Resolves at the deadline, and disarms the alarm (the next
    /// [`Alarm::set`] arms it again, even at the same deadline).
    pub(crate) async fn ring(&mut self) {
        self.sleep.as_mut().await;
        self.deadline = None;
    }
}
