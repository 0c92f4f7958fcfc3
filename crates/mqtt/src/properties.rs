//! MQTT 5 properties.
//!
//! One struct holds every property; each packet type allows a subset, and the
//! decoder rejects a property that is not allowed where it appears
//! ([`crate::DecodeError::PropertyNotAllowed`]) or that appears twice when the
//! specification allows it once ([`crate::DecodeError::DuplicateProperty`]).

use bytes::Bytes;

/// The properties of an MQTT 5 packet. `Default` is "no properties".
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Properties {
    /// 0x01 Payload Format Indicator (0 = bytes, 1 = UTF-8).
    pub payload_format_indicator: Option<u8>,
    /// 0x02 Message Expiry Interval, seconds.
    pub message_expiry_interval: Option<u32>,
    /// 0x03 Content Type.
    pub content_type: Option<String>,
    /// 0x08 Response Topic.
    pub response_topic: Option<String>,
    /// 0x09 Correlation Data.
    pub correlation_data: Option<Bytes>,
    /// 0x0B Subscription Identifier (may repeat in PUBLISH).
    pub subscription_identifiers: Vec<u32>,
    /// 0x11 Session Expiry Interval, seconds.
    pub session_expiry_interval: Option<u32>,
    /// 0x12 Assigned Client Identifier.
    pub assigned_client_identifier: Option<String>,
    /// 0x13 Server Keep Alive, seconds.
    pub server_keep_alive: Option<u16>,
    /// 0x15 Authentication Method.
    pub authentication_method: Option<String>,
    /// 0x16 Authentication Data.
    pub authentication_data: Option<Bytes>,
    /// 0x17 Request Problem Information.
    pub request_problem_information: Option<u8>,
    /// 0x18 Will Delay Interval, seconds.
    pub will_delay_interval: Option<u32>,
    /// 0x19 Request Response Information.
    pub request_response_information: Option<u8>,
    /// 0x1A Response Information.
    pub response_information: Option<String>,
    /// 0x1C Server Reference.
    pub server_reference: Option<String>,
    /// 0x1F Reason String.
    pub reason_string: Option<String>,
    /// 0x21 Receive Maximum.
    pub receive_maximum: Option<u16>,
    /// 0x22 Topic Alias Maximum.
    pub topic_alias_maximum: Option<u16>,
    /// 0x23 Topic Alias.
    pub topic_alias: Option<u16>,
    /// 0x24 Maximum QoS.
    pub maximum_qos: Option<u8>,
    /// 0x25 Retain Available.
    pub retain_available: Option<u8>,
    /// 0x26 User Property (may repeat; order kept).
    pub user_properties: Vec<(String, String)>,
    /// 0x27 Maximum Packet Size.
    pub maximum_packet_size: Option<u32>,
    /// 0x28 Wildcard Subscription Available.
    pub wildcard_subscription_available: Option<u8>,
    /// 0x29 Subscription Identifier Available.
    pub subscription_identifier_available: Option<u8>,
    /// 0x2A Shared Subscription Available.
    pub shared_subscription_available: Option<u8>,
}

impl Properties {
    /// True when no property is set.
    pub fn is_empty(&self) -> bool {
        *self == Properties::default()
    }
}
