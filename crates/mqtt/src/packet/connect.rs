//! CONNECT: the first packet a client sends.

use bytes::Bytes;

use super::PacketType;
use crate::codec::{self, Reader, Sink};
use crate::error::{DecodeError, EncodeError};
use crate::properties::BoxedProperties;
use crate::properties::Section;
use crate::topic::validate_topic_name;
use crate::{Properties, ProtocolVersion, QoS};

/// The protocol name of MQTT 3.1.1 and 5.0.
const PROTOCOL_NAME: &str = "MQTT";
/// The protocol name of MQTT 3.1 (level 3), recognised only to report the
/// unsupported level rather than a bad name.
const MQTT_31_PROTOCOL_NAME: &str = "MQIsdp";

/// CONNECT flag bits.
mod flag {
    pub(super) const RESERVED: u8 = 0x01;
    pub(super) const CLEAN_START: u8 = 0x02;
    pub(super) const WILL: u8 = 0x04;
    pub(super) const WILL_QOS_SHIFT: u8 = 3;
    pub(super) const WILL_RETAIN: u8 = 0x20;
    pub(super) const PASSWORD: u8 = 0x40;
    pub(super) const USERNAME: u8 = 0x80;
}

/// A CONNECT packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connect {
    /// The protocol level the client speaks.
    pub protocol: ProtocolVersion,
    /// Clean session (3.1.1) / clean start (5.0).
    pub clean_start: bool,
    /// Keep-alive interval in seconds; 0 disables it.
    pub keep_alive: u16,
    /// Client identifier (may be empty in MQTT 5 to ask the server for one).
    pub client_id: String,
    /// User name; AWS SDKs put `?SDK=…&Version=…` metrics here.
    pub username: Option<String>,
    /// Password (binary data).
    pub password: Option<Bytes>,
    /// Last will, published by the server if the connection ends abnormally.
    pub will: Option<Will>,
    /// MQTT 5 CONNECT properties (empty for 3.1.1).
    pub properties: BoxedProperties,
}

/// The last-will message of a CONNECT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Will {
    /// Topic the will is published to.
    pub topic: String,
    /// Will payload.
    pub payload: Bytes,
    /// QoS of the will publish.
    pub qos: QoS,
    /// Whether the will is retained.
    pub retain: bool,
    /// MQTT 5 will properties (empty for 3.1.1).
    pub properties: BoxedProperties,
}

impl Connect {
    /// A clean-start CONNECT with no credentials, will or properties.
    pub fn new(
        protocol: ProtocolVersion,
        client_id: impl Into<String>,
        keep_alive: u16,
    ) -> Connect {
        Connect {
            protocol,
            clean_start: true,
            keep_alive,
            client_id: client_id.into(),
            username: None,
            password: None,
            will: None,
            properties: Default::default(),
        }
    }

    pub(crate) fn decode_body(mut r: Reader) -> Result<Connect, DecodeError> {
        let name = r.string()?;
        let level = r.u8()?;
        if name != PROTOCOL_NAME {
            return Err(if name == MQTT_31_PROTOCOL_NAME {
                DecodeError::UnsupportedProtocolVersion(level)
            } else {
                DecodeError::InvalidProtocolName
            });
        }
        let protocol = match level {
            4 => ProtocolVersion::V311,
            5 => ProtocolVersion::V5,
            other => return Err(DecodeError::UnsupportedProtocolVersion(other)),
        };
        let v5 = protocol == ProtocolVersion::V5;
        let flags = r.u8()?;
        let has_will = flags & flag::WILL != 0;
        let will_qos = (flags >> flag::WILL_QOS_SHIFT) & 0b11;
        let will_retain = flags & flag::WILL_RETAIN != 0;
        let has_username = flags & flag::USERNAME != 0;
        let has_password = flags & flag::PASSWORD != 0;
        if flags & flag::RESERVED != 0
            || (!has_will && (will_qos != 0 || will_retain))
            || (!v5 && has_password && !has_username)
        {
            return Err(DecodeError::InvalidConnectFlags(flags));
        }
        let will_qos = QoS::from_u8(will_qos).ok_or(DecodeError::InvalidQoS(will_qos))?;
        let keep_alive = r.u16()?;
        let properties = if v5 {
            Properties::decode(&mut r, Section::Packet(PacketType::Connect))?
        } else {
            Properties::default()
        };
        let client_id = r.string()?;
        let will = if has_will {
            let properties = if v5 {
                Properties::decode(&mut r, Section::Will)?
            } else {
                Properties::default()
            };
            let topic = r.string()?;
            validate_topic_name(&topic).map_err(DecodeError::InvalidTopicName)?;
            let payload = r.binary()?;
            Some(Will {
                topic,
                payload,
                qos: will_qos,
                retain: will_retain,
                properties: properties.into(),
            })
        } else {
            None
        };
        let username = has_username.then(|| r.string()).transpose()?;
        let password = has_password.then(|| r.binary()).transpose()?;
        r.finish()?;
        Ok(Connect {
            protocol,
            clean_start: flags & flag::CLEAN_START != 0,
            keep_alive,
            client_id,
            username,
            password,
            will,
            properties: properties.into(),
        })
    }

    /// Encodes the body for [`Connect::protocol`], whatever the connection's
    /// version.
    pub(crate) fn encode_body<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        let v5 = self.protocol == ProtocolVersion::V5;
        if !v5 && self.password.is_some() && self.username.is_none() {
            return Err(EncodeError::Invalid(
                "MQTT 3.1.1 allows a password only together with a user name",
            ));
        }
        let mut flags = 0;
        if self.clean_start {
            flags |= flag::CLEAN_START;
        }
        if let Some(will) = &self.will {
            flags |= flag::WILL | ((will.qos as u8) << flag::WILL_QOS_SHIFT);
            if will.retain {
                flags |= flag::WILL_RETAIN;
            }
        }
        if self.username.is_some() {
            flags |= flag::USERNAME;
        }
        if self.password.is_some() {
            flags |= flag::PASSWORD;
        }
        codec::put_str(s, PROTOCOL_NAME)?;
        s.put_u8(self.protocol.level());
        s.put_u8(flags);
        s.put_u16(self.keep_alive);
        if v5 {
            self.properties
                .encode(Section::Packet(PacketType::Connect), s)?;
        }
        codec::put_str(s, &self.client_id)?;
        if let Some(will) = &self.will {
            if v5 {
                will.properties.encode(Section::Will, s)?;
            }
            validate_topic_name(&will.topic).map_err(EncodeError::InvalidTopicName)?;
            codec::put_str(s, &will.topic)?;
            codec::put_binary(s, &will.payload)?;
        }
        if let Some(username) = &self.username {
            codec::put_str(s, username)?;
        }
        if let Some(password) = &self.password {
            codec::put_binary(s, password)?;
        }
        Ok(())
    }
}

impl Will {
    /// A will without properties.
    pub fn new(
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Will {
        Will {
            topic: topic.into(),
            payload: payload.into(),
            qos,
            retain,
            properties: Default::default(),
        }
    }
}
