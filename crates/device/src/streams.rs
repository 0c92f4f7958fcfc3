//! The streams the client hands out: one per subscription, a catch-all, the
//! cloud-to-device convenience, and status events.
//!
//! Every stream has its own bounded buffer (see
//! [`crate::ClientBuilder::stream_buffer`]). **Overflow rule:** when a
//! buffer is full, the oldest buffered item is discarded to make room for
//! the new one and the stream's `dropped` counter goes up. A slow consumer
//! therefore never stalls the connection nor any other stream; it sees the
//! freshest messages and can tell how many it missed. QoS 1 messages are
//! acknowledged to the broker when the client receives them, not when the
//! stream yields them.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;

use crate::mailbox::Receiver;
use crate::message::{CloudToDeviceMessage, Message};
use crate::status::ConnectionState;

/// The messages matching one subscription's topic filter.
///
/// Matching follows AWS IoT Core's rules while AWS limits are enforced (the
/// default): `a/#` matches `a/b` and `a/b/c` but not `a`. With
/// [`crate::ClientBuilder::enforce_aws_limits`]`(false)` it follows the MQTT
/// specification. A message that matches no subscription stream still
/// reaches the catch-all [`Messages`] streams.
///
/// Created by [`crate::Client::subscribe`]. Ends when the filter is
/// unsubscribed or the client is closed. Dropping it stops delivery to it but
/// does not unsubscribe: call [`crate::Client::unsubscribe`] for that.
pub struct Subscription {
    filter: String,
    rx: Receiver<Message>,
}

impl Subscription {
    pub(crate) fn new(filter: String, rx: Receiver<Message>) -> Self {
        Subscription { filter, rx }
    }

    /// The topic filter this stream receives for.
    pub fn topic_filter(&self) -> &str {
        &self.filter
    }

    /// How many messages were discarded because this stream's buffer was full.
    pub fn dropped_messages(&self) -> u64 {
        self.rx.dropped()
    }

    #[cfg(test)]
    pub(crate) fn try_next_for_test(&self) -> Option<Message> {
        self.rx.try_next()
    }
}

impl Stream for Subscription {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        Pin::new(&mut self.rx).poll_next(cx)
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("filter", &self.filter)
            .finish_non_exhaustive()
    }
}

/// Every message the client receives, whatever subscription it matched.
///
/// Created by [`crate::Client::messages`]; receives from its creation on.
pub struct Messages {
    rx: Receiver<Message>,
}

impl Messages {
    pub(crate) fn new(rx: Receiver<Message>) -> Self {
        Messages { rx }
    }

    /// How many messages were discarded because this stream's buffer was full.
    pub fn dropped_messages(&self) -> u64 {
        self.rx.dropped()
    }
}

impl std::fmt::Debug for Messages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messages").finish_non_exhaustive()
    }
}

impl Stream for Messages {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        Pin::new(&mut self.rx).poll_next(cx)
    }
}

/// Cloud-to-device messages, created by [`crate::Client::cloud_to_device`].
pub struct CloudToDevice {
    prefix: String,
    inner: Subscription,
}

impl CloudToDevice {
    /// `prefix` is the filter without its trailing `#`, ending in `/`.
    pub(crate) fn new(prefix: String, inner: Subscription) -> Self {
        CloudToDevice { prefix, inner }
    }

    /// The topic filter subscribed to.
    pub fn topic_filter(&self) -> &str {
        self.inner.topic_filter()
    }

    /// How many messages were discarded because this stream's buffer was full.
    pub fn dropped_messages(&self) -> u64 {
        self.inner.dropped_messages()
    }
}

impl std::fmt::Debug for CloudToDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudToDevice")
            .field("filter", &self.inner.topic_filter())
            .finish_non_exhaustive()
    }
}

impl Stream for CloudToDevice {
    type Item = CloudToDeviceMessage;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<CloudToDeviceMessage>> {
        let this = &mut *self;
        Pin::new(&mut this.inner).poll_next(cx).map(|next| {
            next.map(|message| {
                let sub_topic = message
                    .topic()
                    .strip_prefix(this.prefix.as_str())
                    .unwrap_or(message.topic())
                    .to_owned();
                CloudToDeviceMessage::new(sub_topic, message)
            })
        })
    }
}

/// Every connection state change, in order, from the stream's creation on.
///
/// Created by [`crate::Client::status_events`]. Unlike the
/// [`crate::Client::status`] watch, which only holds the latest state, this
/// yields each transition (subject to the buffer's overflow rule).
pub struct StatusEvents {
    rx: Receiver<ConnectionState>,
}

impl StatusEvents {
    pub(crate) fn new(rx: Receiver<ConnectionState>) -> Self {
        StatusEvents { rx }
    }

    /// How many state changes were discarded because the buffer was full.
    pub fn dropped_events(&self) -> u64 {
        self.rx.dropped()
    }
}

impl std::fmt::Debug for StatusEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusEvents").finish_non_exhaustive()
    }
}

impl Stream for StatusEvents {
    type Item = ConnectionState;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ConnectionState>> {
        Pin::new(&mut self.rx).poll_next(cx)
    }
}
