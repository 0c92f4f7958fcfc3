//! Machinery shared by the client and the server session state machines:
//! packet identifier allocation, the outgoing byte buffer, the ordered queue of
//! unacknowledged QoS 1 publishes, inbound topic alias resolution, and the
//! error type for protocol violations by the peer.

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
