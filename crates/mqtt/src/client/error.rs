//! Requests the client session refuses.

use crate::EncodeError;
use crate::topic::TopicError;

/// Why a [`ClientSession`](super::ClientSession) refused a request from its
/// caller. Nothing was queued or sent; the session is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A QoS 0 publish while not connected: QoS 0 messages are not queued.
    /// Wait for [`Event::Connected`](super::Event::Connected), or publish at QoS 1.
    #[error(
        "not connected: QoS 0 publishes are not queued while offline; publish at QoS 1 or wait for Connected"
    )]
    NotConnected,
    /// QoS 2 (publish, subscription or will): AWS IoT Core does not support it
    /// and this session never sends it. Use QoS 1.
    #[error("QoS 2 is not supported (AWS IoT Core supports QoS 0 and 1); use QoS 1")]
    QoS2NotSupported,
    /// All 65,535 packet identifiers are held by unacknowledged publishes and
    /// requests. Wait for acknowledgements before issuing more.
    #[error("all 65,535 packet identifiers are in use; wait for acknowledgements")]
    PacketIdsExhausted,
    /// The topic name of a publish or will is invalid.
    #[error("invalid topic name: {0}")]
    InvalidTopic(TopicError),
    /// A topic filter of a subscribe or unsubscribe request is invalid.
    #[error("invalid topic filter {filter:?}: {error}")]
    InvalidTopicFilter {
        /// The filter.
        filter: String,
        /// What is wrong with it.
        error: TopicError,
    },
    /// A subscribe or unsubscribe request without any topic filter.
    #[error("a subscribe or unsubscribe request needs at least one topic filter")]
    NoTopicFilters,
    /// A publish carrying a Topic Alias property: the session does not use
    /// outbound topic aliases. Remove the property.
    #[error("outbound topic aliases are not supported; remove the Topic Alias property")]
    TopicAliasNotSupported,
    /// The packet cannot be encoded (a field longer than 65,535 bytes…).
    #[error("cannot encode the packet: {0}")]
    Encode(#[from] EncodeError),
    /// The publish is larger than the server's MQTT 5 Maximum Packet Size.
    #[error("packet of {size} bytes exceeds the server's maximum packet size of {max} bytes")]
    PacketTooLarge {
        /// Encoded size in bytes.
        size: usize,
        /// The server's limit.
        max: usize,
    },
}
