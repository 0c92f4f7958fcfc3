//! Machinery shared by the client and the server session state machines:
//! packet identifier allocation, the outgoing byte buffer, the ordered queue of
//! unacknowledged QoS 1 publishes, inbound topic alias resolution, and the
//! error type for protocol violations by the peer.

use std::collections::VecDeque;

mod outbox;
mod packet_ids;
mod protocol_error;
mod publish_queue;
mod topic_aliases;

pub(crate) use outbox::{Outbox, PushError};
pub(crate) use packet_ids::PacketIds;
pub use protocol_error::ProtocolError;
pub(crate) use publish_queue::PublishQueue;
pub(crate) use topic_aliases::InboundAliases;

/// Frees `queue`'s storage once it is empty. The sessions' queues hold
/// items of about 400 bytes (events, publishes) a few at a time; kept, their
/// room (four items: 1.6 KiB) would stay with every idle connection, on both
/// ends, for its whole life.
pub(crate) fn release_if_empty<T>(queue: &mut VecDeque<T>) {
    if queue.is_empty() && queue.capacity() != 0 {
        *queue = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emptied_queue_gives_its_storage_back() {
        let mut queue = VecDeque::from([1, 2]);
        release_if_empty(&mut queue);
        assert!(queue.capacity() >= 2, "a queue with items keeps them");
        queue.clear();
        release_if_empty(&mut queue);
        assert_eq!(queue.capacity(), 0);
    }
}
