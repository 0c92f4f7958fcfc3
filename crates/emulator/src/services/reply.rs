//! How a service's reply reaches clients: every reply is a message the
//! broker delivers like any other (the connection checks `iot:Receive` when
//! it delivers); what differs between services is who gets it.
//!
//! * [`Audience::Subscribers`]: every client subscribed to the reply topic,
//!   `+` wildcards included (the Device Shadow service, §3).
//! * [`Audience::SubscribedRequester`]: the requesting client alone, if one of
//!   its subscriptions matches the topic (fleet provisioning answers "through
//!   the same MQTT connection used to publish the API request", and "if you do
//!   not subscribe to the response topics before you publish a request, you
//!   might not receive the results", §4).
//! * [`Audience::Requester`]: the requesting client alone, whether or not it
//!   subscribed (AWS IoT Jobs: replies reach the requesting client without a
//!   subscription, and other clients cannot subscribe to them, §5.1).

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use iotcore_mqtt::topic::{MatchMode, matches};
use iotcore_mqtt::{Properties, QoS};

use crate::broker::Broker;
use crate::broker::message::Message;
use crate::broker::session::{Delivery, Pushed, Session};

/// Who receives a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audience {
    /// Every subscriber of the topic.
    Subscribers,
    /// The requester only, and only if it subscribed to the topic.
    SubscribedRequester,
    /// The requester only, whether or not it subscribed.
    Requester,
}

/// Sends `payload` on `topic` to `audience`, from the service itself (QoS 1,
/// no publishing session). `requester` is the requesting client's session
/// (`None` for a message no client asked for, such as a notification).
/// Returns whether anyone was meant to get it (queued for at least one session).
pub(crate) fn send(
    broker: &Broker,
    requester: Option<&Arc<Session>>,
    audience: Audience,
    topic: String,
    payload: Bytes,
) -> bool {
    let message = Message::new(
        topic.into(),
        payload,
        QoS::AtLeastOnce,
        false,
        &Properties::default(),
        SystemTime::now(),
    );
    match (audience, requester) {
        (Audience::Subscribers, _) => broker.publish(message, None) > 0,
        (Audience::SubscribedRequester | Audience::Requester, None) => false,
        (Audience::SubscribedRequester, Some(session)) => {
            match subscribed_qos(session, &message.topic) {
                Some(qos) => push(broker, session, message, qos),
                None => {
                    tracing::info!(
                        client_id = session.client_id(),
                        topic = message.topic.as_str(),
                        "reply not sent: the client is not subscribed to its topic \
                         (subscribe to the accepted and rejected topics before publishing)"
                    );
                    false
                }
            }
        }
        (Audience::Requester, Some(session)) => {
            let qos = subscribed_qos(session, &message.topic).unwrap_or(QoS::AtLeastOnce);
            push(broker, session, message, qos)
        }
    }
}

/// The highest QoS (at most 1) among `session`'s subscriptions matching
/// `topic`, or `None` when none does; `None` too once the session ended.
fn subscribed_qos(session: &Session, topic: &str) -> Option<QoS> {
    let state = session.lock();
    if state.ended {
        return None;
    }
    state
        .subscriptions
        .iter()
        .filter(|(filter, _)| matches(filter, topic, MatchMode::Aws))
        .map(|(_, options)| options.qos.min(QoS::AtLeastOnce))
        .max()
}

/// Queues `message` for `session` alone at `qos`; returns whether it was queued.
fn push(broker: &Broker, session: &Arc<Session>, message: Message, qos: QoS) -> bool {
    if session.lock().ended {
        return false;
    }
    let delivery = Delivery {
        message: Arc::new(message),
        qos,
        retain: false,
        group: None,
        seq: None,
    };
    match session.push(delivery, &broker.config().limits) {
        Pushed::Queued | Pushed::Stored => true,
        Pushed::QueuedDroppingOldest => {
            tracing::warn!(
                client_id = session.client_id(),
                "session queue full: dropped its oldest QoS 1 message for a service reply"
            );
            true
        }
        Pushed::Dropped => {
            tracing::info!(
                client_id = session.client_id(),
                "service reply dropped: the client's queue is full or it is offline"
            );
            false
        }
    }
}

/// [`send`] with `body` encoded as JSON; a body that cannot be encoded is
/// logged and not sent.
pub(crate) fn send_json(
    broker: &Broker,
    requester: Option<&Arc<Session>>,
    audience: Audience,
    topic: String,
    body: &impl serde::Serialize,
) -> bool {
    match serde_json::to_vec(body) {
        Ok(payload) => send(broker, requester, audience, topic, Bytes::from(payload)),
        Err(e) => {
            tracing::error!(topic, "cannot encode a service reply: {e}");
            false
        }
    }
}

/// Publishes `body` as JSON on `topic` to every subscriber, from the service
/// itself: how notifications and events go out.
pub(crate) fn publish_json(broker: &Broker, topic: String, body: &impl serde::Serialize) {
    send_json(broker, None, Audience::Subscribers, topic, body);
}
