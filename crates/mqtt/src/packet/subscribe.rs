//! SUBSCRIBE: a client asks for messages matching topic filters.

use super::{PacketType, filter_list};
use crate::codec::{Reader, Sink};
use crate::error::{DecodeError, EncodeError};
use crate::properties::BoxedProperties;
use crate::{ProtocolVersion, QoS};

/// Subscription option bits (MQTT 5; 3.1.1 has only the QoS bits).
const QOS_MASK: u8 = 0b0000_0011;
const NO_LOCAL: u8 = 0b0000_0100;
const RETAIN_AS_PUBLISHED: u8 = 0b0000_1000;
const RETAIN_HANDLING_SHIFT: u8 = 4;
const V311_RESERVED: u8 = 0b1111_1100;
const V5_RESERVED: u8 = 0b1100_0000;

/// A SUBSCRIBE packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscribe {
    /// Packet identifier (non-zero).
    pub packet_id: u16,
    /// At least one topic filter with its options.
    pub subscriptions: Vec<Subscription>,
    /// MQTT 5 properties (subscription identifier, user properties).
    pub properties: BoxedProperties,
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

impl Subscribe {
    /// A SUBSCRIBE without properties.
    pub fn new(packet_id: u16, subscriptions: Vec<Subscription>) -> Subscribe {
        Subscribe {
            packet_id,
            subscriptions,
            properties: Default::default(),
        }
    }

    pub(crate) fn decode_body(
        r: Reader,
        version: ProtocolVersion,
    ) -> Result<Subscribe, DecodeError> {
        let body = filter_list::decode(r, version, |filter, r| {
            let options = SubscriptionOptions::decode(r.u8()?, version)?;
            Ok(Subscription { filter, options })
        })?;
        Ok(Subscribe {
            packet_id: body.packet_id,
            subscriptions: body.items,
            properties: body.properties,
        })
    }

    pub(crate) fn encode_body<S: Sink>(
        &self,
        version: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        filter_list::encode(
            PacketType::Subscribe,
            self.packet_id,
            &self.properties,
            &self.subscriptions,
            version,
            s,
        )
    }
}

impl filter_list::Entry for Subscription {
    fn filter(&self) -> &str {
        &self.filter
    }

    fn options_byte(&self, version: ProtocolVersion) -> Option<u8> {
        Some(self.options.to_byte(version))
    }
}

impl Subscription {
    /// A subscription to `filter` at `qos` with default MQTT 5 options.
    pub fn new(filter: impl Into<String>, qos: QoS) -> Subscription {
        Subscription {
            filter: filter.into(),
            options: SubscriptionOptions {
                qos,
                ..SubscriptionOptions::default()
            },
        }
    }
}

impl SubscriptionOptions {
    /// Parses the options byte; reserved bits must be 0.
    fn decode(byte: u8, version: ProtocolVersion) -> Result<SubscriptionOptions, DecodeError> {
        let reserved = match version {
            ProtocolVersion::V311 => V311_RESERVED,
            ProtocolVersion::V5 => V5_RESERVED,
        };
        if byte & reserved != 0 {
            return Err(DecodeError::InvalidSubscriptionOptions(byte));
        }
        let qos = QoS::from_u8(byte & QOS_MASK).ok_or(DecodeError::InvalidQoS(byte & QOS_MASK))?;
        let retain_handling = match byte >> RETAIN_HANDLING_SHIFT {
            0 => RetainHandling::OnSubscribe,
            1 => RetainHandling::OnNewSubscribe,
            2 => RetainHandling::Never,
            _ => return Err(DecodeError::InvalidSubscriptionOptions(byte)),
        };
        Ok(SubscriptionOptions {
            qos,
            no_local: byte & NO_LOCAL != 0,
            retain_as_published: byte & RETAIN_AS_PUBLISHED != 0,
            retain_handling,
        })
    }

    /// The options byte; MQTT 3.1.1 carries only the QoS.
    fn to_byte(self, version: ProtocolVersion) -> u8 {
        let qos = self.qos as u8;
        match version {
            ProtocolVersion::V311 => qos,
            ProtocolVersion::V5 => {
                let mut byte = qos | ((self.retain_handling as u8) << RETAIN_HANDLING_SHIFT);
                if self.no_local {
                    byte |= NO_LOCAL;
                }
                if self.retain_as_published {
                    byte |= RETAIN_AS_PUBLISHED;
                }
                byte
            }
        }
    }
}
