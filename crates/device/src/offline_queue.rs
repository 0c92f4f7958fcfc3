//! The queue of requests made while the client is not connected, and the
//! bounds it shares with the offline store.
//!
//! Bounded both in entries and in bytes. When a new entry would exceed
//! either bound it is refused ([`QueueFull`]) and the queue is unchanged:
//! older entries are never evicted, so what was accepted is what gets sent.
//! [`OfflineQueueLimits::admit`] is that rule, for the queue and the
//! durable offline store alike.

use std::collections::VecDeque;

use iotcore_mqtt::packet::Publish;

/// The bounds of the offline queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OfflineQueueLimits {
    /// At most this many queued requests.
    pub max_messages: usize,
    /// At most this many payload and topic bytes in total.
    pub max_bytes: usize,
}

impl Default for OfflineQueueLimits {
    /// 1,000 requests and 8 MiB.
    fn default() -> Self {
        OfflineQueueLimits {
            max_messages: 1000,
            max_bytes: 8 * 1024 * 1024,
        }
    }
}

impl OfflineQueueLimits {
    /// Whether one more entry of `size` bytes fits beside `messages`
    /// entries of `bytes` bytes in total; when it does not, the state that
    /// refused it.
    pub(crate) fn admit(
        &self,
        messages: usize,
        bytes: usize,
        size: usize,
    ) -> Result<(), QueueFull> {
        let fits = messages < self.max_messages
            && bytes
                .checked_add(size)
                .is_some_and(|total| total <= self.max_bytes);
        if fits {
            Ok(())
        } else {
            Err(QueueFull {
                messages,
                max_messages: self.max_messages,
                bytes,
                max_bytes: self.max_bytes,
            })
        }
    }
}

/// The bytes a publish counts for against [`OfflineQueueLimits::max_bytes`]:
/// its topic and payload.
pub(crate) fn publish_size(publish: &Publish) -> usize {
    publish.topic.len() + publish.payload.len()
}

/// Why an entry was refused: the state of the queue at that moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct QueueFull {
    pub messages: usize,
    pub max_messages: usize,
    pub bytes: usize,
    pub max_bytes: usize,
}

/// A FIFO of `T` with a size in bytes per entry.
#[derive(Debug)]
pub(crate) struct OfflineQueue<T> {
    entries: VecDeque<(T, usize)>,
    bytes: usize,
    limits: OfflineQueueLimits,
}

impl<T> OfflineQueue<T> {
    pub(crate) fn new(limits: OfflineQueueLimits) -> Self {
        OfflineQueue {
            entries: VecDeque::new(),
            bytes: 0,
            limits,
        }
    }

    /// Appends `item` of `size` bytes, or refuses it when a bound would be exceeded.
    pub(crate) fn push(&mut self, item: T, size: usize) -> Result<(), (T, QueueFull)> {
        if let Err(full) = self.limits.admit(self.entries.len(), self.bytes, size) {
            return Err((item, full));
        }
        self.restore(item, size);
        Ok(())
    }

    /// Appends `item` of `size` bytes whatever the bounds: for what the
    /// offline store held at start, accepted by an earlier process (its
    /// bounds may have been lower) and never dropped. Counts toward the bounds.
    pub(crate) fn restore(&mut self, item: T, size: usize) {
        self.bytes = self.bytes.saturating_add(size);
        self.entries.push_back((item, size));
    }

    /// Removes the oldest entry.
    pub(crate) fn pop(&mut self) -> Option<T> {
        let (item, size) = self.entries.pop_front()?;
        self.bytes -= size;
        Some(item)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(max_messages: usize, max_bytes: usize) -> OfflineQueue<u32> {
        OfflineQueue::new(OfflineQueueLimits {
            max_messages,
            max_bytes,
        })
    }

    #[test]
    fn entries_come_out_in_the_order_they_went_in() {
        let mut q = queue(10, 100);
        for i in 0..5 {
            q.push(i, 1).unwrap();
        }
        let out: Vec<u32> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(out, [0, 1, 2, 3, 4]);
        assert!(q.is_empty());
    }

    #[test]
    fn full_in_messages_refuses_the_new_entry_and_keeps_the_old_ones() {
        let mut q = queue(2, 1000);
        q.push(1, 10).unwrap();
        q.push(2, 10).unwrap();
        let (item, full) = q.push(3, 10).unwrap_err();
        assert_eq!(item, 3);
        assert_eq!(
            full,
            QueueFull {
                messages: 2,
                max_messages: 2,
                bytes: 20,
                max_bytes: 1000
            }
        );
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop(), Some(1));
    }

    #[test]
    fn full_in_bytes_refuses_the_entry_that_would_cross_the_bound() {
        let mut q = queue(100, 25);
        q.push(1, 10).unwrap();
        q.push(2, 15).unwrap();
        assert!(q.push(3, 1).is_err());
        assert_eq!(q.pop(), Some(1));
        q.push(3, 10).unwrap();
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn an_entry_larger_than_the_byte_bound_is_refused_even_when_empty() {
        let mut q = queue(100, 25);
        assert!(q.push(1, 26).is_err());
        assert!(q.push(2, usize::MAX).is_err());
        assert!(q.is_empty());
    }

    #[test]
    fn popping_frees_the_bytes_of_the_popped_entry() {
        let mut q = queue(100, 20);
        q.push(1, 20).unwrap();
        assert!(q.push(2, 1).is_err());
        q.pop();
        q.push(2, 20).unwrap();
    }
}
