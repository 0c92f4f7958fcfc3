//! Checks run on every request before anything is sent.
//!
//! MQTT's own rules always apply. With AWS limits on (the default), AWS IoT
//! Core's are added: payloads of at most 128 KB, topics and filters of at
//! most 256 bytes and 8 levels (a leading `$aws/rules/<rule>/` is exempt;
//! see [`iotcore_mqtt::topic::validate_aws_topic_name`]),
//! QoS 0 and 1 only. AWS closes the connection of a client that breaks
//! them, so refusing early keeps the connection up and names the problem.

use iotcore_mqtt::QoS;
use iotcore_mqtt::topic::{self, TopicError};

use crate::error::Error;

/// The largest publish payload AWS IoT Core accepts: 128 KB.
pub const AWS_MAX_PAYLOAD_BYTES: usize = 128 * 1024;

/// A request that breaks a limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Violation {
    Topic(TopicError),
    PayloadTooLarge { size: usize, max: usize },
    QoS2,
}

impl Violation {
    /// The error for a request on `topic`.
    pub(crate) fn into_error(self, topic: &str) -> Error {
        match self {
            Violation::Topic(e) => Error::invalid_topic(topic, e),
            Violation::PayloadTooLarge { size, max } => Error::payload_too_large(topic, size, max),
            Violation::QoS2 => Error::qos_not_supported(),
        }
    }
}

/// Which limits apply to requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) aws: bool,
}

impl Limits {
    /// Checks a publish request.
    pub(crate) fn check_publish(
        &self,
        topic: &str,
        payload_len: usize,
        qos: QoS,
    ) -> Result<(), Violation> {
        if qos == QoS::ExactlyOnce && self.aws {
            return Err(Violation::QoS2);
        }
        let validate = if self.aws {
            topic::validate_aws_topic_name
        } else {
            topic::validate_topic_name
        };
        validate(topic).map_err(Violation::Topic)?;
        if self.aws && payload_len > AWS_MAX_PAYLOAD_BYTES {
            return Err(Violation::PayloadTooLarge {
                size: payload_len,
                max: AWS_MAX_PAYLOAD_BYTES,
            });
        }
        Ok(())
    }

    /// Checks a topic filter of a subscribe or unsubscribe request.
    pub(crate) fn check_filter(&self, filter: &str, qos: QoS) -> Result<(), Violation> {
        if qos == QoS::ExactlyOnce && self.aws {
            return Err(Violation::QoS2);
        }
        let validate = if self.aws {
            topic::validate_aws_topic_filter
        } else {
            topic::validate_topic_filter
        };
        validate(filter).map_err(Violation::Topic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    const AWS: Limits = Limits { aws: true };
    const PLAIN: Limits = Limits { aws: false };

    #[test]
    fn a_payload_of_128_kib_passes_and_one_byte_more_fails_with_aws_limits() {
        assert!(
            AWS.check_publish("dt/x", AWS_MAX_PAYLOAD_BYTES, QoS::AtLeastOnce)
                .is_ok()
        );
        let e = AWS
            .check_publish("dt/x", AWS_MAX_PAYLOAD_BYTES + 1, QoS::AtLeastOnce)
            .unwrap_err()
            .into_error("dt/x");
        assert_eq!(e.kind(), ErrorKind::InvalidRequest);
        assert_eq!(e.topic(), Some("dt/x"));
        assert!(
            PLAIN
                .check_publish("dt/x", AWS_MAX_PAYLOAD_BYTES + 1, QoS::AtLeastOnce)
                .is_ok()
        );
    }

    #[test]
    fn nine_levels_fail_only_with_aws_limits() {
        let deep = "a/b/c/d/e/f/g/h/i";
        assert_eq!(
            AWS.check_publish(deep, 1, QoS::AtMostOnce),
            Err(Violation::Topic(TopicError::TooDeep { levels: 9, max: 8 }))
        );
        assert!(PLAIN.check_publish(deep, 1, QoS::AtMostOnce).is_ok());
        assert!(
            AWS.check_filter("a/b/c/d/e/f/g/h/#", QoS::AtMostOnce)
                .is_err()
        );
    }

    #[test]
    fn wildcards_in_a_publish_topic_and_qos_2_are_refused() {
        assert!(AWS.check_publish("a/+/b", 1, QoS::AtMostOnce).is_err());
        assert!(PLAIN.check_publish("a/#", 1, QoS::AtMostOnce).is_err());
        assert!(AWS.check_publish("a/b", 1, QoS::ExactlyOnce).is_err());
        assert!(AWS.check_filter("a/#", QoS::ExactlyOnce).is_err());
        assert!(AWS.check_filter("a/#/b", QoS::AtMostOnce).is_err());
        assert!(AWS.check_filter("a/+/b/#", QoS::AtLeastOnce).is_ok());
    }
}
