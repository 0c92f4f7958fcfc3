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
        let dropped = self.entries.remove(self.in_flight);
        super::release_if_empty(&mut self.entries);
        dropped
    }

    /// Removes the in-flight publish with `packet_id`, if there is one.
    pub(crate) fn acknowledge(&mut self, packet_id: u16) -> Option<Publish> {
        let position = self
            .entries
            .iter()
            .take(self.in_flight)
            .position(|p| p.packet_id == Some(packet_id))?;
        self.in_flight -= 1;
        let acknowledged = self.entries.remove(position);
        super::release_if_empty(&mut self.entries);
        acknowledged
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
        std::mem::take(&mut self.entries).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::QoS;

    fn publish(packet_id: u16) -> Publish {
        let mut publish = Publish::new("t", "x", QoS::AtLeastOnce);
        publish.packet_id = Some(packet_id);
        publish
    }

    #[test]
    fn the_last_acknowledgement_frees_the_queue() {
        let mut queue = PublishQueue::default();
        queue.push_back(publish(1));
        queue.push_back(publish(2));
        queue.mark_sent();
        queue.mark_sent();
        assert_eq!(queue.acknowledge(2).and_then(|p| p.packet_id), Some(2));
        assert!(queue.entries.capacity() > 0);
        assert_eq!(queue.acknowledge(1).and_then(|p| p.packet_id), Some(1));
        assert_eq!(queue.entries.capacity(), 0);
        assert_eq!(queue.in_flight(), 0);
    }
}
