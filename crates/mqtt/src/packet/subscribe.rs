//! SUBSCRIBE: a client asks for messages matching topic filters.

use crate::{Properties, QoS};

/// A SUBSCRIBE packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscribe {
    /// Packet identifier (non-zero).
    pub packet_id: u16,
    /// At least one topic filter with its options.
    pub subscriptions: Vec<Subscription>,
    /// MQTT 5 properties (subscription identifier, user properties).
    pub properties: Properties,
}

/// One topic filter of a SUBSCRIBE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// The topic filter, validated on decode.
    pub filter: String,
    /// Requested QoS and the MQTT 5 options.
    pub options: SubscriptionOptions,
}

/// Subscription options; only `qos` exists in MQTT 3.1.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SubscriptionOptions {
    /// Maximum QoS the client wants to receive.
    pub qos: QoS,
    /// MQTT 5: do not receive own publishes.
    pub no_local: bool,
    /// MQTT 5: keep the retain flag as published.
    pub retain_as_published: bool,
    /// MQTT 5: when to send retained messages.
    pub retain_handling: RetainHandling,
}

/// MQTT 5 retain handling option.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RetainHandling {
    /// Send retained messages at subscribe time.
    #[default]
    OnSubscribe = 0,
    /// Send retained messages only if the subscription is new.
    OnNewSubscribe = 1,
    /// Never send retained messages for this subscription.
    Never = 2,
}
