//! PUBLISH: an application message.

use bytes::{Bytes, BytesMut};

use super::PacketType;
use crate::codec::{self, Reader, Sink};
use crate::error::{DecodeError, EncodeError};
use crate::properties::{BoxedProperties, Section};
use crate::topic::{TopicError, TopicName, validate_topic_name};
use crate::{Properties, ProtocolVersion, QoS};

/// PUBLISH fixed header flag bits.
const DUP: u8 = 0x08;
const RETAIN: u8 = 0x01;
const QOS_SHIFT: u8 = 1;

/// A PUBLISH packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    /// Set on a redelivery of a QoS 1 or 2 message.
    pub dup: bool,
    /// Delivery QoS.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
    /// Topic name (may be empty in MQTT 5 when a topic alias is used), shared
    /// by its clones: cloning a `Publish` does not copy it.
    pub topic: TopicName,
    /// Packet identifier: `Some` (non-zero) exactly when `qos` > 0.
    pub packet_id: Option<u16>,
    /// The payload, a zero-copy slice of the received buffer.
    pub payload: Bytes,
    /// MQTT 5 PUBLISH properties (empty for 3.1.1), boxed only when set.
    pub properties: BoxedProperties,
}

impl Publish {
    /// A PUBLISH of `payload` to `topic` at `qos`, not retained, without
    /// properties and without a packet identifier: a QoS 1 or 2 publish needs
    /// one (non-zero) in `packet_id` before it is encoded, which the session
    /// assigns.
    pub fn new(topic: impl Into<TopicName>, payload: impl Into<Bytes>, qos: QoS) -> Publish {
        Publish {
            dup: false,
            qos,
            retain: false,
            topic: topic.into(),
            packet_id: None,
            payload: payload.into(),
            properties: BoxedProperties::default(),
        }
    }

    /// The number of bytes this PUBLISH takes on the wire, fixed header
    /// included; fails as [`crate::Packet::encode`] would. Same as
    /// `Packet::Publish(p).encoded_len(version)`, without the move or a clone.
    pub fn encoded_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        self.check(version)?;
        let body = super::measure_body(|count| self.write_body(version, count))?;
        Ok(super::packet_len(body))
    }

    /// Appends this PUBLISH's wire form to `out`; fails, leaving `out`
    /// unchanged, as [`crate::Packet::encode`] would. Same as
    /// `Packet::Publish(p).encode(version, out)`, without the move or a clone.
    pub fn encode(&self, version: ProtocolVersion, out: &mut BytesMut) -> Result<(), EncodeError> {
        self.check(version)?;
        let remaining = super::measure_body(|count| self.write_body(version, count))?;
        let first_byte = ((PacketType::Publish as u8) << 4) | self.flags();
        super::write_packet(out, first_byte, remaining, |out| {
            self.write_body(version, out)
        })
    }

    /// The low nibble of the fixed header.
    pub(crate) fn flags(&self) -> u8 {
        let mut flags = (self.qos as u8) << QOS_SHIFT;
        if self.dup {
            flags |= DUP;
        }
        if self.retain {
            flags |= RETAIN;
        }
        flags
    }

    /// Checks the fixed header flags before the body arrives.
    pub(crate) fn check_flags(flags: u8) -> Result<(), DecodeError> {
        let qos = (flags >> QOS_SHIFT) & 0b11;
        if qos == 3 {
            return Err(DecodeError::InvalidQoS(qos));
        }
        if qos == 0 && flags & DUP != 0 {
            return Err(DecodeError::InvalidFlags {
                packet_type: PacketType::Publish,
                flags,
            });
        }
        Ok(())
    }

    /// True when an empty topic is allowed: MQTT 5 with a Topic Alias.
    fn topic_from_alias(&self, version: ProtocolVersion) -> bool {
        version == ProtocolVersion::V5
            && self.topic.is_empty()
            && self.properties.topic_alias.is_some()
    }

    fn check_topic(&self, version: ProtocolVersion) -> Result<(), TopicError> {
        if self.topic_from_alias(version) {
            return Ok(());
        }
        validate_topic_name(&self.topic)
    }

    /// Decodes the body; `flags` were checked by [`Publish::check_flags`].
    pub(crate) fn decode_body(
        mut r: Reader,
        flags: u8,
        version: ProtocolVersion,
    ) -> Result<Publish, DecodeError> {
        let qos_bits = (flags >> QOS_SHIFT) & 0b11;
        let qos = QoS::from_u8(qos_bits).ok_or(DecodeError::InvalidQoS(qos_bits))?;
        let topic = r.topic_name()?;
        let packet_id = match qos {
            QoS::AtMostOnce => None,
            QoS::AtLeastOnce | QoS::ExactlyOnce => Some(r.packet_id()?),
        };
        let properties = match version {
            ProtocolVersion::V311 => BoxedProperties::default(),
            ProtocolVersion::V5 => {
                Properties::decode(&mut r, Section::Packet(PacketType::Publish))?.into()
            }
        };
        let publish = Publish {
            dup: flags & DUP != 0,
            qos,
            retain: flags & RETAIN != 0,
            topic,
            packet_id,
            payload: r.rest(),
            properties,
        };
        publish
            .check_topic(version)
            .map_err(DecodeError::InvalidTopicName)?;
        Ok(publish)
    }

    pub(crate) fn encode_body<S: Sink>(
        &self,
        version: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        self.check(version)?;
        self.write_body(version, s)
    }

    /// Whether the fields can be encoded: QoS, packet identifier and DUP
    /// agree, and the topic is a valid topic name (or empty, sent as a Topic
    /// Alias).
    fn check(&self, version: ProtocolVersion) -> Result<(), EncodeError> {
        match (self.qos, self.packet_id) {
            (QoS::AtMostOnce, None) | (QoS::AtLeastOnce | QoS::ExactlyOnce, Some(1..)) => {}
            (QoS::AtMostOnce, Some(_)) => {
                return Err(EncodeError::Invalid(
                    "a QoS 0 PUBLISH carries no packet identifier",
                ));
            }
            (_, None) => {
                return Err(EncodeError::Invalid(
                    "a QoS 1 or 2 PUBLISH needs a packet identifier",
                ));
            }
            (_, Some(0)) => return Err(EncodeError::ZeroPacketId),
        }
        if self.dup && self.qos == QoS::AtMostOnce {
            return Err(EncodeError::Invalid("a QoS 0 PUBLISH cannot have DUP set"));
        }
        self.check_topic(version)
            .map_err(EncodeError::InvalidTopicName)
    }

    /// Writes the body of a PUBLISH that passed [`Publish::check`]: the
    /// topic is written without looking for NUL again.
    fn write_body<S: Sink>(&self, version: ProtocolVersion, s: &mut S) -> Result<(), EncodeError> {
        codec::put_binary(s, self.topic.as_bytes())?;
        if let Some(id) = self.packet_id {
            s.put_u16(id);
        }
        if version == ProtocolVersion::V5 {
            self.properties
                .encode(Section::Packet(PacketType::Publish), s)?;
        }
        s.put_slice(&self.payload);
        Ok(())
    }
}
