//! The services that answer requests on reserved topics (the Device Shadow
//! service, fleet provisioning, AWS IoT Jobs), behind one interface.
//!
//! A connection that receives a PUBLISH checks it like any other (topic,
//! size, `iot:Publish`), then offers it to [`Services::dispatch`]. The first
//! [`Service`] that claims the topic takes the request, with who sent it
//! (a [`Requester`]); the connection acknowledges the PUBLISH as usual and
//! does not route it. A topic no service claims is routed like any message.
//! The connection knows no service by name.
//!
//! A service answers through the broker ([`reply`]): the reply is a message
//! like any other, delivered to the [`reply::Audience`] the service's AWS
//! rules name, and each connection checks `iot:Receive` when it delivers it.

pub(crate) mod inflight;
pub(crate) mod reply;

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use iotcore_mqtt::ProtocolVersion;

use crate::broker::message::Message;
use crate::broker::session::{ConnectionId, Session};

/// The client a request came from.
#[derive(Debug, Clone)]
pub(crate) struct Requester {
    /// The connection it came on.
    pub(crate) connection: ConnectionId,
    /// The client's id.
    pub(crate) client_id: String,
    /// Its session: where replies to the requester alone go.
    pub(crate) session: Arc<Session>,
    /// Its principal's identifier: the id of the certificate it connected
    /// with, or what another door authenticated.
    pub(crate) principal: String,
    /// The MQTT version it speaks.
    pub(crate) protocol: ProtocolVersion,
}

/// A request a service claimed.
#[derive(Debug)]
pub(crate) struct Request {
    /// The topic it was published to.
    pub(crate) topic: String,
    /// Its payload.
    pub(crate) payload: Bytes,
    /// Who sent it.
    pub(crate) requester: Requester,
}

/// A service on reserved topics.
pub(crate) trait Service: fmt::Debug + Send + Sync {
    /// Whether `topic` is one of the request topics this service serves.
    /// Called for every authorized PUBLISH: answer from the topic alone,
    /// cheaply.
    fn claims(&self, topic: &str) -> bool;

    /// Serves a request whose topic it claimed. It must not block: work that
    /// waits is done in a task; the reply goes through [`reply`].
    fn serve(&self, request: Request);
}

/// The services of a running emulator, in the order they are asked.
#[derive(Clone, Debug, Default)]
pub(crate) struct Services {
    services: Vec<Arc<dyn Service>>,
}

impl Services {
    /// No services: every message is routed.
    pub(crate) fn new() -> Services {
        Services::default()
    }

    /// Adds `service`, asked after those added before it.
    pub(crate) fn with(mut self, service: Arc<dyn Service>) -> Services {
        self.services.push(service);
        self
    }

    /// Hands `message` to the first service that claims its topic, with the
    /// requester `requester()` describes; returns `false` when none does (the
    /// caller routes the message). The caller has checked that the client may
    /// publish to the topic.
    pub(crate) fn dispatch(
        &self,
        message: &Message,
        requester: impl FnOnce() -> Requester,
    ) -> bool {
        if !message.topic.starts_with('$') {
            return false;
        }
        let Some(service) = self.services.iter().find(|s| s.claims(&message.topic)) else {
            return false;
        };
        let requester = requester();
        tracing::debug!(
            client_id = requester.client_id,
            protocol = ?requester.protocol,
            topic = message.topic.as_str(),
            "request taken by a service"
        );
        service.serve(Request {
            topic: message.topic.to_string(),
            payload: message.payload.clone(),
            requester,
        });
        true
    }
}
