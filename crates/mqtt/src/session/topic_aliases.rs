//! MQTT 5 topic aliases on received PUBLISH packets.

use std::collections::HashMap;

use super::ProtocolError;
use crate::DecodeError;
use crate::packet::Publish;
use crate::topic::{TopicError, TopicName};

/// The topic aliases the peer has set on this connection (they never outlive it).
#[derive(Debug, Default)]
pub(crate) struct InboundAliases {
    maximum: u16,
    topics: HashMap<u16, TopicName>,
}

impl InboundAliases {
    /// No alias set yet; the peer may use aliases 1..=`maximum` (0: none).
    pub(crate) fn new(maximum: u16) -> InboundAliases {
        InboundAliases {
            maximum,
            topics: HashMap::new(),
        }
    }

    /// Records or applies the Topic Alias of `publish`, leaving it with its full
    /// topic and no Topic Alias property.
    pub(crate) fn resolve(&mut self, publish: &mut Publish) -> Result<(), ProtocolError> {
        let Some(alias) = publish.properties.take_topic_alias() else {
            if publish.topic.is_empty() {
                return Err(DecodeError::InvalidTopicName(TopicError::Empty).into());
            }
            return Ok(());
        };
        if alias == 0 || alias > self.maximum {
            return Err(ProtocolError::TopicAliasInvalid(alias));
        }
        if publish.topic.is_empty() {
            let topic = self
                .topics
                .get(&alias)
                .ok_or(ProtocolError::TopicAliasInvalid(alias))?;
            publish.topic.clone_from(topic);
        } else {
            self.topics.insert(alias, publish.topic.clone());
        }
        Ok(())
    }
}
