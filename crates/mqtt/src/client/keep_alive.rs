//! When the client pings, and when it gives up on a silent server.

use std::time::{Duration, Instant};

/// What [`Pinger::on_timeout`] asks the session to do.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum PingAction {
    /// Nothing is due yet.
    Wait,
    /// Send a PINGREQ now.
    Ping,
    /// The server has been silent too long: the connection is dead.
    TimedOut,
}

/// Keep-alive timers of one connection.
///
/// A PINGREQ is due when nothing has been sent *or* nothing has been received
/// for a keep-alive interval: the first is the MQTT rule, the second makes a
/// client that only sends QoS 0 still notice a half-open link. After a
/// PINGREQ, the connection is dead if no packet at all arrives within half an
/// interval, so a dead link is noticed within 1.5 × keep-alive of silence.
#[derive(Debug)]
pub(super) struct Pinger {
    interval: Duration,
    last_sent: Instant,
    last_received: Instant,
    ping_sent: Option<Instant>,
}

impl Pinger {
    /// Timers starting at `now`; an `interval` of zero disables keep-alive.
    pub(super) fn new(interval: Duration, now: Instant) -> Pinger {
        Pinger {
            interval,
            last_sent: now,
            last_received: now,
            ping_sent: None,
        }
    }

    /// A packet was queued for sending.
    pub(super) fn sent(&mut self, now: Instant) {
        self.last_sent = now;
    }

    /// A packet arrived: the server is alive.
    pub(super) fn received(&mut self, now: Instant) {
        self.last_received = now;
        self.ping_sent = None;
    }

    /// A PINGREQ was queued.
    pub(super) fn ping_sent(&mut self, now: Instant) {
        self.last_sent = now;
        self.ping_sent = Some(now);
    }

    /// The next instant something is due, or `None` with keep-alive disabled.
    pub(super) fn deadline(&self) -> Option<Instant> {
        if self.interval.is_zero() {
            return None;
        }
        Some(match self.ping_sent {
            Some(at) => at + self.interval / 2,
            None => self.last_sent.min(self.last_received) + self.interval,
        })
    }

    /// What is due at `now`.
    pub(super) fn on_timeout(&self, now: Instant) -> PingAction {
        match self.deadline() {
            Some(deadline) if now >= deadline => {
                if self.ping_sent.is_some() {
                    PingAction::TimedOut
                } else {
                    PingAction::Ping
                }
            }
            _ => PingAction::Wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KA: Duration = Duration::from_secs(60);

    #[test]
    fn disabled_keep_alive_has_no_deadline() {
        let t0 = Instant::now();
        let pinger = Pinger::new(Duration::ZERO, t0);
        assert_eq!(pinger.deadline(), None);
        assert_eq!(pinger.on_timeout(t0 + KA * 100), PingAction::Wait);
    }

    #[test]
    fn ping_is_due_after_an_interval_without_sending() {
        let t0 = Instant::now();
        let mut pinger = Pinger::new(KA, t0);
        pinger.received(t0 + KA / 2);
        assert_eq!(pinger.deadline(), Some(t0 + KA));
        assert_eq!(
            pinger.on_timeout(t0 + KA - Duration::from_millis(1)),
            PingAction::Wait
        );
        assert_eq!(pinger.on_timeout(t0 + KA), PingAction::Ping);
    }

    #[test]
    fn ping_is_due_after_an_interval_without_receiving_even_while_sending() {
        let t0 = Instant::now();
        let mut pinger = Pinger::new(KA, t0);
        pinger.sent(t0 + KA / 2);
        assert_eq!(pinger.on_timeout(t0 + KA), PingAction::Ping);
    }

    #[test]
    fn silence_for_half_an_interval_after_a_ping_times_out() {
        let t0 = Instant::now();
        let mut pinger = Pinger::new(KA, t0);
        pinger.ping_sent(t0 + KA);
        assert_eq!(pinger.deadline(), Some(t0 + KA + KA / 2));
        assert_eq!(pinger.on_timeout(t0 + KA + KA / 2), PingAction::TimedOut);
    }

    #[test]
    fn any_packet_after_a_ping_clears_the_timeout() {
        let t0 = Instant::now();
        let mut pinger = Pinger::new(KA, t0);
        pinger.ping_sent(t0 + KA);
        pinger.received(t0 + KA + Duration::from_secs(1));
        assert_eq!(pinger.deadline(), Some(t0 + KA + KA));
    }
}
