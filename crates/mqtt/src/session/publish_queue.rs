//! The ordered queue of QoS 1 publishes waiting for their PUBACK.

use std::collections::VecDeque;

use crate::packet::Publish;

/// QoS 1 publishes in the order they were issued, each holding its packet
/// identifier until acknowledged.
///
/// The first [`PublishQueue::in_flight`] entries have been sent on the current
/// connection; the rest wait for room in the in-flight window or for a
/// connection. Sending is always in order, so the sent entries are a prefix
/// even when acknowledgements arrive out of order. An entry's `dup` flag is
/// true once it has been sent on any connection, so that a resend carries DUP=1.
#[derive(Debug, Default)]
pub(crate) struct PublishQueue {
    entries: VecDeque<Publish>,
    in_flight: usize,
}

impl PublishQueue {
    /// Appends a publish that has not been sent yet.
    pub(crate) fn push_back(&mut self, publish: Publish) {
        self.entries.push_back(publish);
    }

    /// Inserts publishes right after the ones in flight, ahead of every
    /// publish still waiting, keeping their order.
    pub(crate) fn insert_before_waiting(&mut self, publishes: impl IntoIterator<Item = Publish>) {
        for (offset, publish) in publishes.into_iter().enumerate() {
            self.entries.insert(self.in_flight + offset, publish);
        }
    }

    /// Number of publishes sent on this connection and not yet acknowledged.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// The publishes sent and not acknowledged, in order (DUP set).
    pub(crate) fn sent(&self) -> impl Iterator<Item = &Publish> {
        self.entries.iter().take(self.in_flight)
    }

    /// The next publish to send, if any waits and fewer than `window` are in flight.
    pub(crate) fn next_to_send(&self, window: usize) -> Option<&Publish> {
        if self.in_flight >= window {
            return None;
        }
        self.entries.get(self.in_flight)
    }

    /// Records that the publish returned by [`PublishQueue::next_to_send`] was sent.
    pub(crate) fn mark_sent(&mut self) {
        if let Some(publish) = self.entries.get_mut(self.in_flight) {
            publish.dup = true;
            self.in_flight += 1;
        }
    }

    /// Drops the publish returned by [`PublishQueue::next_to_send`] (it can never be sent).
    pub(crate) fn drop_next(&mut self) -> Option<Publish> {
        self.entries.remove(self.in_flight)
    }

    /// Removes the in-flight publish with `packet_id`, if there is one.
    pub(crate) fn acknowledge(&mut self, packet_id: u16) -> Option<Publish> {
        let position = self
            .entries
            .iter()
            .take(self.in_flight)
            .position(|p| p.packet_id == Some(packet_id))?;
        self.in_flight -= 1;
        self.entries.remove(position)
    }

    /// The connection is gone: everything waits again, in the original order.
    pub(crate) fn connection_reset(&mut self) {
        self.in_flight = 0;
    }

    /// All publishes held, in order.
    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = &Publish> {
        self.entries.iter()
    }

    /// Removes and returns all publishes held, in order.
    pub(crate) fn take_all(&mut self) -> Vec<Publish> {
        self.in_flight = 0;
        self.entries.drain(..).collect()
    }
}
