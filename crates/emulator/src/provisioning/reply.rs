//! Replies that go to one session only.
//!
//! Fleet provisioning answers "through the same MQTT connection used to
//! publish the API request": the reply is queued for the requesting client's
//! session alone, if one of its subscriptions matches the reply topic (at the
//! highest QoS among them, at most 1), like a routed message would be. Other
//! clients subscribed to the same topic never see it, and a client that did
//! not subscribe gets nothing (AWS: "If you do not subscribe to the response
//! topics before you publish a request, you might not receive the results").
//! The connection checks `iot:Receive` when it delivers, as for any message.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use iotcore_mqtt::topic::{MatchMode, matches};
use iotcore_mqtt::{Properties, QoS};

use crate::broker::Broker;
use crate::broker::message::Message;
use crate::broker::session::{Delivery, Pushed, Session};

/// Queues `payload` on `topic` for `session` only; returns whether it was queued.
pub(crate) fn reply_to_session(
    broker: &Broker,
    session: &Arc<Session>,
    topic: String,
    payload: Vec<u8>,
) -> bool {
    let qos = {
        let state = session.lock();
        if state.ended {
            return false;
        }
        state
            .subscriptions
            .iter()
            .filter(|(filter, _)| matches(filter, &topic, MatchMode::Aws))
            .map(|(_, options)| options.qos)
            .max()
    };
    let Some(qos) = qos else {
        tracing::info!(
            client_id = session.client_id(),
            topic,
            "provisioning reply not sent: the client is not subscribed to its topic \
             (subscribe to the accepted and rejected topics before publishing)"
        );
        return false;
    };
    let message = Message::new(
        topic,
        Bytes::from(payload),
        QoS::AtLeastOnce,
        false,
        &Properties::default(),
        SystemTime::now(),
    );
    let delivery = Delivery {
        message: Arc::new(message),
        qos: qos.min(QoS::AtLeastOnce),
        retain: false,
        group: None,
    };
    match session.push(delivery, &broker.config().limits) {
        Pushed::Queued => true,
        Pushed::Stored => {
            broker.persist().save_session(session);
            true
        }
        Pushed::QueuedDroppingOldest => {
            tracing::warn!(
                client_id = session.client_id(),
                "session queue full: dropped its oldest QoS 1 message for a provisioning reply"
            );
            true
        }
        Pushed::Dropped => {
            tracing::info!(
                client_id = session.client_id(),
                "provisioning reply dropped: the client's queue is full or it is offline"
            );
            false
        }
    }
}
