//! What the [`crate::Client`] handle asks of the driver.

use iotcore_mqtt::QoS;
use iotcore_mqtt::packet::Publish;
use tokio::sync::oneshot;

use crate::error::Error;
use crate::streams::Subscription;

/// Where the driver sends the outcome of a request.
pub(crate) type Responder<T> = oneshot::Sender<Result<T, Error>>;

/// A message from a [`crate::Client`] handle to its driver.
///
/// Two pointers and a tag: a command channel keeps room for its first 32
/// commands from the start (tokio's first block), in every client for its
/// whole life, so a command stays as small as that (24 bytes; a [`Request`]
/// inline took 40, 512 bytes more per client).
pub(crate) enum Command {
    /// A publish (boxed, as in [`Request::Publish`]).
    Publish {
        publish: Box<Publish>,
        respond: Responder<()>,
    },
    /// A subscribe or unsubscribe: rarer than publishes, boxed whole.
    Subscription(Box<Request>),
    /// Close the client; the sender is told when it is done.
    Close(oneshot::Sender<()>),
}

impl Command {
    /// The request the command carries, or the close's sender.
    pub(crate) fn into_request(self) -> Result<Request, oneshot::Sender<()>> {
        match self {
            Command::Publish { publish, respond } => Ok(Request::Publish {
                publish,
                respond,
                stored: None,
            }),
            Command::Subscription(request) => Ok(*request),
            Command::Close(done) => Err(done),
        }
    }
}

/// A request that goes to the broker.
pub(crate) enum Request {
    Publish {
        /// Boxed: a publish with its MQTT 5 properties is large.
        publish: Box<Publish>,
        respond: Responder<()>,
        /// Its sequence number in the offline store, once written there.
        stored: Option<u64>,
    },
    Subscribe {
        filter: String,
        qos: QoS,
        respond: Responder<Subscription>,
    },
    Unsubscribe {
        filter: String,
        respond: Responder<()>,
    },
}

impl Request {
    /// The topic or topic filter.
    pub(crate) fn topic(&self) -> &str {
        match self {
            Request::Publish { publish, .. } => &publish.topic,
            Request::Subscribe { filter, .. } | Request::Unsubscribe { filter, .. } => filter,
        }
    }

    /// The bytes it occupies in the offline queue.
    pub(crate) fn size(&self) -> usize {
        match self {
            Request::Publish { publish, .. } => crate::offline_queue::publish_size(publish),
            Request::Subscribe { filter, .. } | Request::Unsubscribe { filter, .. } => filter.len(),
        }
    }

    /// Answers the request with `error`.
    pub(crate) fn fail(self, error: Error) {
        // A dropped receiver means the caller stopped waiting; nothing to do.
        match self {
            Request::Publish { respond, .. } | Request::Unsubscribe { respond, .. } => {
                let _ = respond.send(Err(error));
            }
            Request::Subscribe { respond, .. } => {
                let _ = respond.send(Err(error));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_is_two_pointers_and_a_tag() {
        assert_eq!(std::mem::size_of::<Command>(), 24);
    }
}
