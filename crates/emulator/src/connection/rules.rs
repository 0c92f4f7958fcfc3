//! The AWS rules a session's requests are held to, as plain functions: the
//! connection task asks them what to do and then does it (like quinn-proto's
//! `Endpoint::accept` / `refuse`). None of them touches a socket or the broker.
//!
//! Sources: docs/aws-iot-core-behaviour.md §1.5–1.8 (limits, refusals) and
//! §1.10 (will); deviations from the MQTT specification in §8.

use iotcore_mqtt::packet::{Publish, Will};
use iotcore_mqtt::topic::{validate_aws_topic_filter, validate_aws_topic_name};
use iotcore_mqtt::{ProtocolVersion, ReasonCode};

use std::time::Duration;

use crate::accept::Door;
use crate::broker::authz::Grant;
use crate::config::Limits;
use crate::lifecycle::DisconnectReason;
use crate::policy::Action;

/// A request refused: the reason code the client gets and why, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The MQTT reason code.
    pub(crate) reason: ReasonCode,
    /// What was wrong, in words.
    pub(crate) why: String,
}

impl Refusal {
    fn new(reason: ReasonCode, why: impl Into<String>) -> Refusal {
        Refusal {
            reason,
            why: why.into(),
        }
    }
}

/// What the connection does with a refused CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnectRefusal {
    /// MQTT 5: CONNACK with this reason code, then close.
    Connack(ReasonCode),
    /// MQTT 3.1.1: close without CONNACK, as AWS does for an unauthorized
    /// client (§1.3, §1.8).
    Close,
}

/// How a CONNECT refused with `reason` is answered in `protocol`.
pub(crate) fn connect_refusal(protocol: ProtocolVersion, reason: ReasonCode) -> ConnectRefusal {
    match protocol {
        ProtocolVersion::V5 => ConnectRefusal::Connack(reason),
        ProtocolVersion::V311 => ConnectRefusal::Close,
    }
}

/// The will must be a valid AWS topic the client may publish to (`grant`),
/// its payload within the limit, and not retained on a reserved topic.
pub(crate) fn check_will(limits: &Limits, grant: &mut Grant, will: &Will) -> Result<(), Refusal> {
    if let Err(e) = validate_aws_topic_name(&will.topic) {
        return Err(Refusal::new(
            ReasonCode::TOPIC_NAME_INVALID,
            format!("will topic '{}': {e}", will.topic),
        ));
    }
    if will.payload.len() > limits.max_payload {
        return Err(Refusal::new(
            ReasonCode::QUOTA_EXCEEDED,
            format!(
                "will payload of {} bytes exceeds {} bytes",
                will.payload.len(),
                limits.max_payload
            ),
        ));
    }
    if will.retain && will.topic.starts_with('$') {
        return Err(Refusal::new(
            ReasonCode::NOT_AUTHORIZED,
            format!("retained will on reserved topic '{}'", will.topic),
        ));
    }
    grant
        .check_publish(&will.topic, will.retain)
        .map_err(|denied| Refusal::new(ReasonCode::NOT_AUTHORIZED, format!("will: {denied}")))
}

/// A refused PUBLISH: the refusal, and whether it always ends the
/// connection (a malformed topic, a payload over the limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PublishRefusal {
    /// The reason code and why.
    pub(crate) refusal: Refusal,
    /// Closes the connection in MQTT 5 too.
    pub(crate) fatal: bool,
}

/// Checks a PUBLISH: a valid AWS topic name, the payload limit, no RETAIN on
/// a reserved topic, then the policies (`iot:Publish`, `iot:RetainPublish`).
pub(crate) fn check_publish(
    limits: &Limits,
    grant: &mut Grant,
    publish: &Publish,
) -> Result<(), PublishRefusal> {
    let refuse = |reason, why: String, fatal| {
        Err(PublishRefusal {
            refusal: Refusal::new(reason, why),
            fatal,
        })
    };
    if let Err(e) = validate_aws_topic_name(&publish.topic) {
        return refuse(ReasonCode::TOPIC_NAME_INVALID, e.to_string(), true);
    }
    if publish.payload.len() > limits.max_payload {
        let why = format!(
            "payload of {} bytes exceeds the {}-byte limit (PAYLOAD_LIMIT_EXCEEDED)",
            publish.payload.len(),
            limits.max_payload
        );
        return refuse(ReasonCode::PACKET_TOO_LARGE, why, true);
    }
    if publish.retain && publish.topic.starts_with('$') {
        let why = "RETAIN is not allowed on reserved topics".to_owned();
        return refuse(ReasonCode::NOT_AUTHORIZED, why, false);
    }
    if let Err(denied) = grant.check_publish(&publish.topic, publish.retain) {
        return refuse(ReasonCode::NOT_AUTHORIZED, denied.to_string(), false);
    }
    Ok(())
}

/// What the connection does with a refused PUBLISH (§1.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PublishOutcome {
    /// Close the connection: DISCONNECT (MQTT 5) with the reason code, the
    /// lifecycle event saying why.
    Disconnect(ReasonCode, DisconnectReason),
    /// MQTT 5, QoS 1: PUBACK with the reason code.
    Puback(u16, ReasonCode),
    /// MQTT 5, QoS 0: drop the message.
    Drop,
}

/// AWS's answer to a refused PUBLISH: MQTT 3.1.1 closes the connection; MQTT 5
/// answers a QoS 1 publish with PUBACK and drops a QoS 0 one, or closes when
/// the refusal is fatal.
pub(crate) fn publish_outcome(
    protocol: ProtocolVersion,
    refused: &PublishRefusal,
    packet_id: Option<u16>,
) -> PublishOutcome {
    let reason = refused.refusal.reason;
    if protocol == ProtocolVersion::V311 || refused.fatal {
        let kind = if reason == ReasonCode::NOT_AUTHORIZED {
            DisconnectReason::AuthError
        } else {
            DisconnectReason::ClientError
        };
        return PublishOutcome::Disconnect(reason, kind);
    }
    match packet_id {
        Some(packet_id) => PublishOutcome::Puback(packet_id, reason),
        None => PublishOutcome::Drop,
    }
}

/// What one topic filter of a SUBSCRIBE gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SubscriptionVerdict {
    /// Subscribe it.
    Granted,
    /// Refused with this SUBACK reason code.
    Refused(Refusal),
    /// Refused by the policies in MQTT 3.1.1: the connection is closed (§1.8).
    Disconnect(Refusal),
}

/// Where a SUBSCRIBE's filter stands before it is checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SubscriptionCheck<'a> {
    /// The filter.
    pub(crate) filter: &'a str,
    /// Its index in the SUBSCRIBE.
    pub(crate) index: usize,
    /// The session already has a subscription to this filter.
    pub(crate) already_subscribed: bool,
    /// How many subscriptions the session has.
    pub(crate) subscriptions: usize,
    /// How many it may have ([`crate::quotas::Quotas::subscriptions_per_connection`]).
    pub(crate) max_subscriptions: usize,
}

/// Checks one topic filter of a SUBSCRIBE: AWS's limits (filters per
/// SUBSCRIBE, subscriptions per connection), a valid AWS filter, and
/// `iot:Subscribe`. MQTT 3.1.1 has no reason codes: its refusals are 0x80.
pub(crate) fn check_subscription(
    limits: &Limits,
    grant: &Grant,
    protocol: ProtocolVersion,
    check: SubscriptionCheck<'_>,
) -> SubscriptionVerdict {
    let v5_or = |v5: ReasonCode| {
        if protocol == ProtocolVersion::V5 {
            v5
        } else {
            ReasonCode::UNSPECIFIED_ERROR
        }
    };
    if check.index >= limits.max_filters_per_subscribe {
        let why = format!(
            "more than {} topic filters in one SUBSCRIBE",
            limits.max_filters_per_subscribe
        );
        return SubscriptionVerdict::Refused(Refusal::new(v5_or(ReasonCode::QUOTA_EXCEEDED), why));
    }
    if let Err(e) = validate_aws_topic_filter(check.filter) {
        return SubscriptionVerdict::Refused(Refusal::new(
            v5_or(ReasonCode::TOPIC_FILTER_INVALID),
            e.to_string(),
        ));
    }
    if let Err(denied) = grant.check(Action::Subscribe, check.filter) {
        let refusal = Refusal::new(ReasonCode::NOT_AUTHORIZED, denied.to_string());
        return match protocol {
            ProtocolVersion::V311 => SubscriptionVerdict::Disconnect(refusal),
            ProtocolVersion::V5 => SubscriptionVerdict::Refused(refusal),
        };
    }
    if !check.already_subscribed && check.subscriptions >= check.max_subscriptions {
        let why = format!(
            "more than {} subscriptions on one connection",
            check.max_subscriptions
        );
        return SubscriptionVerdict::Refused(Refusal::new(v5_or(ReasonCode::QUOTA_EXCEEDED), why));
    }
    SubscriptionVerdict::Granted
}

/// When a connection that came in by `door` must end, counted from its
/// CONNACK, and the lifecycle reason it ends with: a custom authorizer's
/// `disconnectAfterInSeconds` (`authorizer_lifetime`), and for WebSocket
/// AWS's limit on a connection's duration; the earlier of the two (§1.12,
/// §1.13).
pub(crate) fn connection_deadline(
    door: Door,
    authorizer_lifetime: Option<Duration>,
    limits: &Limits,
) -> Option<(Duration, DisconnectReason)> {
    let websocket = matches!(door, Door::WebSocketSigV4 | Door::WebSocketCustomAuth).then_some((
        limits.max_websocket_connection,
        DisconnectReason::WebSocketTtlExpiration,
    ));
    let authorizer =
        authorizer_lifetime.map(|lifetime| (lifetime, DisconnectReason::CustomAuthTtlExpiration));
    match (websocket, authorizer) {
        (Some(w), Some(a)) => Some(if a.0 <= w.0 { a } else { w }),
        (w, a) => w.or(a),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use iotcore_mqtt::QoS;

    use super::*;
    use crate::quotas::Quotas;

    /// Allows everything on `dt/*`, nothing else.
    fn grant() -> Grant {
        Grant::for_documents(
            "dev-1",
            &[
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":["arn:aws:iot:us-east-1:123456789012:topic/dt/*","arn:aws:iot:us-east-1:123456789012:topicfilter/dt/*"]}]}"#,
            ],
        )
    }

    fn publish(topic: &str, payload: usize, retain: bool, packet_id: Option<u16>) -> Publish {
        Publish {
            dup: false,
            qos: if packet_id.is_some() {
                QoS::AtLeastOnce
            } else {
                QoS::AtMostOnce
            },
            retain,
            topic: topic.into(),
            packet_id,
            payload: Bytes::from(vec![b'x'; payload]),
            properties: Default::default(),
        }
    }

    fn will(topic: &str, payload: usize, retain: bool) -> Will {
        Will {
            topic: topic.to_owned(),
            payload: Bytes::from(vec![b'x'; payload]),
            qos: QoS::AtLeastOnce,
            retain,
            properties: Default::default(),
        }
    }

    #[test]
    fn a_refused_connect_gets_a_connack_in_mqtt5_and_a_close_in_mqtt311() {
        assert_eq!(
            connect_refusal(ProtocolVersion::V5, ReasonCode::NOT_AUTHORIZED),
            ConnectRefusal::Connack(ReasonCode::NOT_AUTHORIZED)
        );
        assert_eq!(
            connect_refusal(ProtocolVersion::V311, ReasonCode::NOT_AUTHORIZED),
            ConnectRefusal::Close
        );
    }

    #[test]
    fn a_will_is_checked_for_topic_size_retain_and_policy() {
        let limits = Limits::default();
        let mut grant = grant();
        assert_eq!(
            check_will(&limits, &mut grant, &will("dt/a", 10, false)),
            Ok(())
        );
        let invalid = check_will(&limits, &mut grant, &will("dt/+", 1, false)).unwrap_err();
        assert_eq!(invalid.reason, ReasonCode::TOPIC_NAME_INVALID);
        let big = check_will(
            &limits,
            &mut grant,
            &will("dt/a", limits.max_payload + 1, false),
        );
        assert_eq!(big.unwrap_err().reason, ReasonCode::QUOTA_EXCEEDED);
        let reserved = check_will(&limits, &mut grant, &will("$aws/x", 1, true)).unwrap_err();
        assert_eq!(reserved.reason, ReasonCode::NOT_AUTHORIZED);
        assert!(reserved.why.contains("reserved"), "{}", reserved.why);
        let denied = check_will(&limits, &mut grant, &will("other", 1, false)).unwrap_err();
        assert_eq!(denied.reason, ReasonCode::NOT_AUTHORIZED);
        assert!(denied.why.starts_with("will: "), "{}", denied.why);
        assert!(denied.why.contains("iot:Publish"), "{}", denied.why);
    }

    #[test]
    fn a_publish_is_checked_in_aws_order() {
        let limits = Limits::default();
        let mut grant = grant();
        assert_eq!(
            check_publish(&limits, &mut grant, &publish("dt/a", 3, true, Some(1))),
            Ok(())
        );
        let invalid =
            check_publish(&limits, &mut grant, &publish("a/#", 1, false, None)).unwrap_err();
        assert_eq!(invalid.refusal.reason, ReasonCode::TOPIC_NAME_INVALID);
        assert!(invalid.fatal);
        let big = publish("dt/a", limits.max_payload + 1, false, None);
        let big = check_publish(&limits, &mut grant, &big).unwrap_err();
        assert_eq!(big.refusal.reason, ReasonCode::PACKET_TOO_LARGE);
        assert!(big.refusal.why.contains("PAYLOAD_LIMIT_EXCEEDED"));
        assert!(big.fatal);
        let retained = publish("$aws/things/t/shadow/get", 0, true, None);
        let retained = check_publish(&limits, &mut grant, &retained).unwrap_err();
        assert_eq!(retained.refusal.reason, ReasonCode::NOT_AUTHORIZED);
        assert!(!retained.fatal);
        let denied = check_publish(&limits, &mut grant, &publish("x/y", 1, false, Some(2)));
        let denied = denied.unwrap_err();
        assert_eq!(denied.refusal.reason, ReasonCode::NOT_AUTHORIZED);
        assert!(
            denied.refusal.why.contains("topic/x/y"),
            "the denial names the resource: {}",
            denied.refusal.why
        );
        assert!(!denied.fatal);
    }

    #[test]
    fn a_refused_publish_closes_mqtt311_and_is_acknowledged_or_dropped_in_mqtt5() {
        let denied = PublishRefusal {
            refusal: Refusal::new(ReasonCode::NOT_AUTHORIZED, "no"),
            fatal: false,
        };
        assert_eq!(
            publish_outcome(ProtocolVersion::V311, &denied, Some(7)),
            PublishOutcome::Disconnect(ReasonCode::NOT_AUTHORIZED, DisconnectReason::AuthError)
        );
        assert_eq!(
            publish_outcome(ProtocolVersion::V5, &denied, Some(7)),
            PublishOutcome::Puback(7, ReasonCode::NOT_AUTHORIZED)
        );
        assert_eq!(
            publish_outcome(ProtocolVersion::V5, &denied, None),
            PublishOutcome::Drop
        );
        let fatal = PublishRefusal {
            refusal: Refusal::new(ReasonCode::PACKET_TOO_LARGE, "big"),
            fatal: true,
        };
        assert_eq!(
            publish_outcome(ProtocolVersion::V5, &fatal, Some(7)),
            PublishOutcome::Disconnect(ReasonCode::PACKET_TOO_LARGE, DisconnectReason::ClientError)
        );
    }

    fn subscription(filter: &str, index: usize, subscriptions: usize) -> SubscriptionCheck<'_> {
        SubscriptionCheck {
            filter,
            index,
            already_subscribed: false,
            subscriptions,
            max_subscriptions: Quotas::aws().max_subscriptions(),
        }
    }

    #[test]
    fn a_subscription_is_checked_against_limits_syntax_and_policy() {
        let limits = Limits::default();
        let grant = grant();
        let v5 = ProtocolVersion::V5;
        let v311 = ProtocolVersion::V311;
        assert_eq!(
            check_subscription(&limits, &grant, v5, subscription("dt/a", 0, 0)),
            SubscriptionVerdict::Granted
        );
        let nine = limits.max_filters_per_subscribe;
        let verdict = check_subscription(&limits, &grant, v5, subscription("dt/a", nine, 0));
        assert!(
            matches!(&verdict, SubscriptionVerdict::Refused(r) if r.reason == ReasonCode::QUOTA_EXCEEDED),
            "{verdict:?}"
        );
        let verdict = check_subscription(&limits, &grant, v311, subscription("dt/a", nine, 0));
        assert!(
            matches!(&verdict, SubscriptionVerdict::Refused(r) if r.reason == ReasonCode::UNSPECIFIED_ERROR),
            "MQTT 3.1.1 has 0x80 only: {verdict:?}"
        );
        let verdict = check_subscription(&limits, &grant, v5, subscription("a/#/b", 0, 0));
        assert!(
            matches!(&verdict, SubscriptionVerdict::Refused(r) if r.reason == ReasonCode::TOPIC_FILTER_INVALID),
            "{verdict:?}"
        );
        let verdict = check_subscription(&limits, &grant, v5, subscription("other", 0, 0));
        assert!(
            matches!(&verdict, SubscriptionVerdict::Refused(r) if r.reason == ReasonCode::NOT_AUTHORIZED),
            "{verdict:?}"
        );
        let verdict = check_subscription(&limits, &grant, v311, subscription("other", 0, 0));
        assert!(
            matches!(&verdict, SubscriptionVerdict::Disconnect(r) if r.why.contains("iot:Subscribe")),
            "{verdict:?}"
        );
        let full = Quotas::aws().max_subscriptions();
        let verdict = check_subscription(&limits, &grant, v5, subscription("dt/a", 0, full));
        assert!(
            matches!(&verdict, SubscriptionVerdict::Refused(r) if r.reason == ReasonCode::QUOTA_EXCEEDED),
            "{verdict:?}"
        );
        let mut lifted = subscription("dt/a", 0, full);
        lifted.max_subscriptions = Quotas::off().max_subscriptions();
        assert_eq!(
            check_subscription(&limits, &grant, v5, lifted),
            SubscriptionVerdict::Granted,
            "with the quota lifted"
        );
        let mut again = subscription("dt/a", 0, full);
        again.already_subscribed = true;
        assert_eq!(
            check_subscription(&limits, &grant, v5, again),
            SubscriptionVerdict::Granted,
            "replacing a subscription does not count against the limit"
        );
    }

    #[test]
    fn a_websocket_connection_ends_at_the_earlier_of_its_limit_and_its_authorizers() {
        let limits = Limits {
            max_websocket_connection: Duration::from_secs(100),
            ..Limits::default()
        };
        let ttl = |s| Some(Duration::from_secs(s));
        assert_eq!(
            connection_deadline(Door::MqttCertificate, None, &limits),
            None
        );
        assert_eq!(
            connection_deadline(Door::WebSocketSigV4, None, &limits),
            Some((
                Duration::from_secs(100),
                DisconnectReason::WebSocketTtlExpiration
            ))
        );
        assert_eq!(
            connection_deadline(Door::MqttCustomAuth, ttl(500), &limits),
            Some((
                Duration::from_secs(500),
                DisconnectReason::CustomAuthTtlExpiration
            ))
        );
        assert_eq!(
            connection_deadline(Door::WebSocketCustomAuth, ttl(50), &limits),
            Some((
                Duration::from_secs(50),
                DisconnectReason::CustomAuthTtlExpiration
            ))
        );
        assert_eq!(
            connection_deadline(Door::WebSocketCustomAuth, ttl(500), &limits),
            Some((
                Duration::from_secs(100),
                DisconnectReason::WebSocketTtlExpiration
            ))
        );
    }
}
