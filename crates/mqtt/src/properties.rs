//! MQTT 5 properties.
//!
//! One struct holds every property; each packet type allows a subset, and the
//! decoder rejects a property that is not allowed where it appears
//! ([`crate::DecodeError::PropertyNotAllowed`]) or that appears twice when the
//! specification allows it once ([`crate::DecodeError::DuplicateProperty`]).

use bytes::Bytes;

use crate::codec::{self, Counter, Reader, Sink};
use crate::error::{DecodeError, EncodeError};
use crate::packet::PacketType;

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

/// [`Properties`] kept out of line: nothing is allocated while none is set,
/// and only a pointer is held inline ([`Properties`] is over 300 bytes). A
/// PUBLISH holds its properties so: most have none, and it is moved through
/// queues on every delivery.
///
/// Reads go through `Deref` (an empty [`Properties`] when none is set); a
/// write through `DerefMut` allocates the box the first time.
///
/// ```
/// use iotcore_mqtt::properties::{BoxedProperties, Properties};
///
/// let mut properties = BoxedProperties::default();
/// assert!(properties.is_empty());
/// properties.content_type = Some("application/json".into());
/// assert_eq!(properties.content_type.as_deref(), Some("application/json"));
/// assert_eq!(properties.into_inner().content_type.as_deref(), Some("application/json"));
/// assert_eq!(BoxedProperties::from(Properties::default()), BoxedProperties::default());
/// ```
#[derive(Clone, Default)]
pub struct BoxedProperties(Option<Box<Properties>>);

impl BoxedProperties {
    /// The properties, unboxed.
    pub fn into_inner(self) -> Properties {
        self.0.map(|boxed| *boxed).unwrap_or_default()
    }

    /// Removes the Topic Alias property and returns it, without allocating:
    /// `properties.topic_alias.take()` would go through `DerefMut` and box
    /// empty properties. A session calls this on every PUBLISH it sends or
    /// receives, most of which have no properties at all.
    ///
    /// ```
    /// use iotcore_mqtt::properties::BoxedProperties;
    ///
    /// let mut properties = BoxedProperties::default();
    /// assert_eq!(properties.take_topic_alias(), None);
    /// properties.topic_alias = Some(3);
    /// assert_eq!(properties.take_topic_alias(), Some(3));
    /// assert_eq!(properties.topic_alias, None);
    /// ```
    pub fn take_topic_alias(&mut self) -> Option<u16> {
        self.0.as_mut()?.topic_alias.take()
    }
}

impl From<Properties> for BoxedProperties {
    fn from(properties: Properties) -> Self {
        BoxedProperties((!properties.is_empty()).then(|| Box::new(properties)))
    }
}

impl std::ops::Deref for BoxedProperties {
    type Target = Properties;

    fn deref(&self) -> &Properties {
        static NONE: std::sync::LazyLock<Properties> =
            std::sync::LazyLock::new(Properties::default);
        self.0.as_deref().unwrap_or(&NONE)
    }
}

impl std::ops::DerefMut for BoxedProperties {
    fn deref_mut(&mut self) -> &mut Properties {
        self.0.get_or_insert_with(Box::default)
    }
}

/// Equal when the properties are, boxed or not.
impl PartialEq for BoxedProperties {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for BoxedProperties {}

impl std::fmt::Debug for BoxedProperties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

/// 0x0B Subscription Identifier.
const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
/// 0x26 User Property.
const USER_PROPERTY: u8 = 0x26;
/// The largest Subscription Identifier (a variable byte integer, not 0).
const MAX_SUBSCRIPTION_IDENTIFIER: u32 = codec::MAX_VARINT as u32;

/// Readers of the property value types, named for [`single_properties!`].
mod read {
    use super::*;
    pub(super) fn byte(r: &mut Reader) -> Result<u8, DecodeError> {
        r.u8()
    }
    pub(super) fn two(r: &mut Reader) -> Result<u16, DecodeError> {
        r.u16()
    }
    pub(super) fn four(r: &mut Reader) -> Result<u32, DecodeError> {
        r.u32()
    }
    pub(super) fn string(r: &mut Reader) -> Result<String, DecodeError> {
        r.string()
    }
    pub(super) fn binary(r: &mut Reader) -> Result<Bytes, DecodeError> {
        r.binary()
    }
}

/// Writers of the property value types, named for [`single_properties!`].
mod write {
    use super::*;
    pub(super) fn byte<S: Sink>(s: &mut S, v: &u8) -> Result<(), EncodeError> {
        s.put_u8(*v);
        Ok(())
    }
    pub(super) fn two<S: Sink>(s: &mut S, v: &u16) -> Result<(), EncodeError> {
        s.put_u16(*v);
        Ok(())
    }
    pub(super) fn four<S: Sink>(s: &mut S, v: &u32) -> Result<(), EncodeError> {
        s.put_u32(*v);
        Ok(())
    }
    pub(super) fn string<S: Sink>(s: &mut S, v: &str) -> Result<(), EncodeError> {
        codec::put_str(s, v)
    }
    pub(super) fn binary<S: Sink>(s: &mut S, v: &[u8]) -> Result<(), EncodeError> {
        codec::put_binary(s, v)
    }
}

/// Generates the code for the properties that may appear at most once and
/// are stored as `Option<_>`: one line per property, `id field: value type`.
macro_rules! single_properties {
    ($($id:literal $field:ident: $kind:ident,)*) => {
        /// Bit `id` set for each property identifier the specification defines.
        const KNOWN: u64 = bits(&[$($id,)* SUBSCRIPTION_IDENTIFIER, USER_PROPERTY]);

        impl Properties {
            /// Reads the value of single-occurrence property `id` into `self`.
            /// Returns false for the repeatable properties.
            fn decode_single(&mut self, id: u8, r: &mut Reader) -> Result<bool, DecodeError> {
                match id {
                    $($id => self.$field = Some(read::$kind(r)?),)*
                    _ => return Ok(false),
                }
                Ok(true)
            }

            /// Writes every single-occurrence property that is set.
            fn encode_singles<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
                $(if let Some(v) = &self.$field {
                    s.put_u8($id);
                    write::$kind(s, v)?;
                })*
                Ok(())
            }

            /// Bit `id` set for each property present.
            fn present(&self) -> u64 {
                let mut mask = 0;
                $(if self.$field.is_some() {
                    mask |= 1 << $id;
                })*
                if !self.subscription_identifiers.is_empty() {
                    mask |= 1 << SUBSCRIPTION_IDENTIFIER;
                }
                if !self.user_properties.is_empty() {
                    mask |= 1 << USER_PROPERTY;
                }
                mask
            }
        }
    };
}

single_properties! {
    0x01 payload_format_indicator: byte,
    0x02 message_expiry_interval: four,
    0x03 content_type: string,
    0x08 response_topic: string,
    0x09 correlation_data: binary,
    0x11 session_expiry_interval: four,
    0x12 assigned_client_identifier: string,
    0x13 server_keep_alive: two,
    0x15 authentication_method: string,
    0x16 authentication_data: binary,
    0x17 request_problem_information: byte,
    0x18 will_delay_interval: four,
    0x19 request_response_information: byte,
    0x1A response_information: string,
    0x1C server_reference: string,
    0x1F reason_string: string,
    0x21 receive_maximum: two,
    0x22 topic_alias_maximum: two,
    0x23 topic_alias: two,
    0x24 maximum_qos: byte,
    0x25 retain_available: byte,
    0x27 maximum_packet_size: four,
    0x28 wildcard_subscription_available: byte,
    0x29 subscription_identifier_available: byte,
    0x2A shared_subscription_available: byte,
}

/// A mask with bit `id` set for each identifier.
const fn bits(ids: &[u8]) -> u64 {
    let mut mask = 0;
    let mut i = 0;
    while i < ids.len() {
        mask |= 1 << ids[i];
        i += 1;
    }
    mask
}

/// Where a property section sits: in a packet's variable header, or in the
/// will of a CONNECT. Decides which properties are allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Section {
    /// The properties of a packet of this type.
    Packet(PacketType),
    /// The will properties of a CONNECT.
    Will,
}

impl Section {
    /// The packet errors are reported against.
    fn packet_type(self) -> PacketType {
        match self {
            Section::Packet(t) => t,
            Section::Will => PacketType::Connect,
        }
    }

    /// Bit `id` set for each property allowed here (MQTT 5.0, table 2.2.2.2).
    fn allowed(self) -> u64 {
        match self {
            Section::Will => bits(&[0x01, 0x02, 0x03, 0x08, 0x09, 0x18, 0x26]),
            Section::Packet(t) => match t {
                PacketType::Connect => {
                    bits(&[0x11, 0x15, 0x16, 0x17, 0x19, 0x21, 0x22, 0x26, 0x27])
                }
                PacketType::ConnAck => bits(&[
                    0x11, 0x12, 0x13, 0x15, 0x16, 0x1A, 0x1C, 0x1F, 0x21, 0x22, 0x24, 0x25, 0x26,
                    0x27, 0x28, 0x29, 0x2A,
                ]),
                PacketType::Publish => bits(&[0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x23, 0x26]),
                PacketType::PubAck
                | PacketType::PubRec
                | PacketType::PubRel
                | PacketType::PubComp
                | PacketType::SubAck
                | PacketType::UnsubAck => bits(&[0x1F, 0x26]),
                PacketType::Subscribe => bits(&[0x0B, 0x26]),
                PacketType::Unsubscribe => bits(&[0x26]),
                PacketType::Disconnect => bits(&[0x11, 0x1C, 0x1F, 0x26]),
                PacketType::Auth => bits(&[0x15, 0x16, 0x1F, 0x26]),
                PacketType::PingReq | PacketType::PingResp => 0,
            },
        }
    }

    /// Subscription Identifier repeats only in PUBLISH (one per matching
    /// subscription); SUBSCRIBE carries at most one.
    fn repeatable(self, id: u8) -> bool {
        id == USER_PROPERTY
            || (id == SUBSCRIPTION_IDENTIFIER && self == Section::Packet(PacketType::Publish))
    }
}

impl Properties {
    /// Reads a property length and that many bytes of properties.
    pub(crate) fn decode(r: &mut Reader, section: Section) -> Result<Properties, DecodeError> {
        let len = r.varint()?;
        let mut r = r.sub_reader(len)?;
        let mut props = Properties::default();
        let mut seen = 0u64;
        while r.remaining() > 0 {
            let id = r.u8()?;
            let bit = 1u64.checked_shl(u32::from(id)).unwrap_or(0);
            if KNOWN & bit == 0 {
                return Err(DecodeError::UnknownProperty(id));
            }
            if section.allowed() & bit == 0 {
                return Err(DecodeError::PropertyNotAllowed {
                    packet_type: section.packet_type(),
                    property: id,
                });
            }
            if seen & bit != 0 && !section.repeatable(id) {
                return Err(DecodeError::DuplicateProperty(id));
            }
            seen |= bit;
            if props.decode_single(id, &mut r)? {
                continue;
            }
            if id == SUBSCRIPTION_IDENTIFIER {
                let v = r.varint()?;
                // A varint holds at most 268,435,455, which fits in u32.
                let v = u32::try_from(v).map_err(|_| DecodeError::InvalidPropertyValue(id))?;
                props.subscription_identifiers.push(v);
            } else {
                let key = r.string()?;
                let value = r.string()?;
                props.user_properties.push((key, value));
            }
        }
        props
            .check_values()
            .map_err(DecodeError::InvalidPropertyValue)?;
        Ok(props)
    }

    /// Writes the property length and the properties, after checking that
    /// each one is allowed in `section` and has a valid value.
    pub(crate) fn encode<S: Sink>(&self, section: Section, s: &mut S) -> Result<(), EncodeError> {
        let not_allowed = self.present() & !section.allowed();
        if not_allowed != 0 {
            return Err(EncodeError::PropertyNotAllowed {
                packet_type: section.packet_type(),
                property: not_allowed.trailing_zeros() as u8,
            });
        }
        if self.subscription_identifiers.len() > 1 && !section.repeatable(SUBSCRIPTION_IDENTIFIER) {
            return Err(EncodeError::Invalid(
                "only PUBLISH may carry more than one subscription identifier",
            ));
        }
        self.check_values()
            .map_err(EncodeError::InvalidPropertyValue)?;
        let mut len = Counter::default();
        self.encode_items(&mut len)?;
        codec::put_varint(s, len.0);
        self.encode_items(s)
    }

    fn encode_items<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        self.encode_singles(s)?;
        for &id in &self.subscription_identifiers {
            s.put_u8(SUBSCRIPTION_IDENTIFIER);
            codec::put_varint(s, id as usize);
        }
        for (key, value) in &self.user_properties {
            s.put_u8(USER_PROPERTY);
            codec::put_str(s, key)?;
            codec::put_str(s, value)?;
        }
        Ok(())
    }

    /// Checks value ranges; on failure returns the offending property id.
    fn check_values(&self) -> Result<(), u8> {
        let flag = |v: Option<u8>| v.is_none_or(|v| v <= 1);
        let non_zero_u16 = |v: Option<u16>| v != Some(0);
        let checks = [
            (0x01, flag(self.payload_format_indicator)),
            (
                0x08,
                self.response_topic
                    .as_deref()
                    .is_none_or(|t| crate::topic::validate_topic_name(t).is_ok()),
            ),
            (
                SUBSCRIPTION_IDENTIFIER,
                self.subscription_identifiers
                    .iter()
                    .all(|&id| (1..=MAX_SUBSCRIPTION_IDENTIFIER).contains(&id)),
            ),
            (
                0x16,
                self.authentication_data.is_none() || self.authentication_method.is_some(),
            ),
            (0x17, flag(self.request_problem_information)),
            (0x19, flag(self.request_response_information)),
            (0x21, non_zero_u16(self.receive_maximum)),
            (0x23, non_zero_u16(self.topic_alias)),
            (0x24, flag(self.maximum_qos)),
            (0x25, flag(self.retain_available)),
            (0x27, self.maximum_packet_size != Some(0)),
            (0x28, flag(self.wildcard_subscription_available)),
            (0x29, flag(self.subscription_identifier_available)),
            (0x2A, flag(self.shared_subscription_available)),
        ];
        match checks.iter().find(|(_, ok)| !ok) {
            Some(&(id, _)) => Err(id),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taking_the_topic_alias_of_empty_properties_allocates_no_box() {
        let mut properties = BoxedProperties::default();
        assert_eq!(properties.take_topic_alias(), None);
        assert!(
            properties.0.is_none(),
            "a box was allocated: {properties:?}"
        );
    }

    #[test]
    fn taking_the_topic_alias_keeps_the_other_properties() {
        let mut properties = BoxedProperties::from(Properties {
            topic_alias: Some(7),
            content_type: Some("text/plain".into()),
            ..Properties::default()
        });
        assert_eq!(properties.take_topic_alias(), Some(7));
        assert_eq!(properties.take_topic_alias(), None);
        assert_eq!(properties.content_type.as_deref(), Some("text/plain"));
    }
}
