//! The request/response framework under the AWS IoT service clients
//! (Device Shadow, fleet provisioning, and next Jobs), usable for any other
//! service that answers on `…/accepted` and `…/rejected`.
//!
//! AWS IoT's MQTT services all work the same way: the device publishes a
//! JSON request to a topic, and the service answers on that topic plus
//! `/accepted` or `/rejected`. What differs is only whether a reply can be
//! told apart from another request's: Device Shadow and Jobs echo the
//! request's `clientToken`, fleet provisioning echoes nothing. This module
//! does the common part once:
//!
//! * A [`Service`] describes a service: its name (for errors and logs), its
//!   [`Correlation`], an optional bound on requests in flight per
//!   connection, and optional advice for its refusals.
//! * A [`ServiceChannel`] is one set of reply topic filters of one service
//!   on one [`Client`] (say `$aws/things/lamp/shadow/get/+`, `…/update/+`,
//!   `…/delete/+`). Every handle made for the same service and filters on
//!   the same client shares one channel: one set of subscriptions, one task
//!   reading them.
//! * A [`Request`] is an operation's name, its topic and its JSON document.
//!   [`ServiceChannel::call`] sends it and decodes the accepted reply into
//!   the caller's type; [`ServiceChannel::request`] returns the accepted
//!   message as it came.
//! * Every failure is a [`ServiceError`]: [`ServiceErrorKind`] says whether
//!   the service refused ([`Rejection`]: AWS's code, message and the whole
//!   document), the time ran out, the MQTT request failed, the connection
//!   lost the reply, the reply was malformed, or the request was invalid.
//!   The shadow and provisioning errors wrap it.
//!
//! # How a request goes
//!
//! 1. **Subscribe first.** The channel's first request (or
//!    [`ServiceChannel::subscribe`]) subscribes to its reply filters and
//!    waits for the SUBACKs before anything is published; the subscriptions
//!    stay for later requests (until [`ServiceChannel::unsubscribe`]) and
//!    are restored after a reconnect like every other subscription. If the
//!    broker refuses to restore them, requests waiting then fail with
//!    [`ServiceErrorKind::ConnectionLost`] and the next request subscribes
//!    again.
//! 2. **Take a place.** With [`Correlation::Topic`] a reply cannot be told
//!    apart from another request's, so the channel runs one request at a
//!    time; the others wait their turn in arrival order. A service with
//!    [`Service::with_max_in_flight`] waits for a place among its requests
//!    in flight (Device Shadow: AWS refuses the 11th with 429).
//! 3. **Correlate.** With [`Correlation::ClientToken`] the channel sets the
//!    request's `clientToken` to a token unique to this client (a random
//!    prefix and a counter); a message on the request's accepted or rejected
//!    topic answers it only if its `clientToken` is the same. Replies to
//!    other clients or to requests given up on are not taken for ours.
//! 4. **Publish** at QoS 1 and wait for the reply. A message on the reply
//!    filters that answers no request goes to the channel's event streams
//!    ([`ServiceChannel::events`]): shadow deltas arrive that way.
//!
//! The whole request — subscribing, waiting for a turn or a place,
//! publishing, waiting for the reply — is bounded by the channel's timeout
//! ([`ServiceChannel::with_timeout`], [`DEFAULT_TIMEOUT`] unless set).
//! Dropping the request's future cancels it: its registration, turn and
//! place are given back at once, and a reply that comes later is ignored.
//!
//! # When the connection drops
//!
//! A request whose publish is still unacknowledged, or still in the offline
//! queue, is not affected: the client sends it (again) after the reconnect,
//! and the reply follows. A request the broker has acknowledged and whose
//! reply has not come yet is **not sent again**, because the services'
//! operations are not idempotent (an update raises the shadow's version,
//! CreateKeysAndCertificate makes another certificate, a job execution
//! update moves its state). What happens to it depends on the session:
//!
//! * the client reconnects and the broker **kept the session**
//!   ([`ClientBuilder::persistent_session`](crate::ClientBuilder::persistent_session)):
//!   the request keeps waiting, since the broker delivers the QoS 1 replies
//!   it held (a reply the service sent at QoS 0 is lost, and the request
//!   ends with its timeout);
//! * the client reconnects **without the session** (the default clean
//!   session, or one that expired): anything published to the client
//!   meanwhile is gone, so the request fails at once with
//!   [`ServiceErrorKind::ConnectionLost`] instead of waiting for its
//!   timeout. [`ServiceError::is_retryable`] is true: read the state again,
//!   or send the request again if that is safe.
//!
//! Topic-only correlation has a limit no client can lift: a reply that comes
//! after its request gave up (timed out, dropped) is taken for the next
//! request on the same topics if that one is already waiting.
//!
//! # Adding a service
//!
//! A service client is a thin typed layer: a `static` [`Service`], a
//! function that builds each operation's topics, and one
//! [`call`](ServiceChannel::call) per operation with the model's request
//! and reply types. Its own error type, if it has one, wraps
//! [`ServiceError`]. This is all a Jobs client needs for
//! GetPendingJobExecutions:
//!
//! ```no_run
//! # async fn demo(client: iotcore::Client) -> Result<(), iotcore::service::ServiceError> {
//! use std::time::Duration;
//!
//! use iotcore::service::{Correlation, Request, Service, ServiceChannel};
//! use serde::Deserialize;
//! use serde_json::json;
//!
//! static JOBS: Service = Service::new("Jobs", Correlation::ClientToken);
//!
//! #[derive(Deserialize)]
//! #[serde(rename_all = "camelCase")]
//! struct PendingJobs {
//!     in_progress_jobs: Vec<serde_json::Value>,
//!     queued_jobs: Vec<serde_json::Value>,
//! }
//!
//! let prefix = format!("$aws/things/{}/jobs", client.thing_name());
//! let jobs = ServiceChannel::new(&client, &JOBS, [format!("{prefix}/get/+")])
//!     .with_timeout(Duration::from_secs(10));
//! let request = Request::new("GetPendingJobExecutions", format!("{prefix}/get"), json!({}));
//! match jobs.call::<PendingJobs>(request).await {
//!     Ok(pending) => tracing::info!(queued = pending.queued_jobs.len(), "pending jobs"),
//!     Err(e) if e.rejection().and_then(|r| r.error_code()) == Some("ResourceNotFound") => {}
//!     Err(e) => return Err(e),
//! }
//! # Ok(()) }
//! ```
//!
//! [`Client`]: crate::Client

mod channel;
mod error;
mod hub;
mod request;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use iotcore_mqtt::topic::{self, MatchMode};
use serde::de::DeserializeOwned;
use tokio::sync::oneshot::error::TryRecvError;

pub use error::{Rejection, ServiceError, ServiceErrorKind};
pub use request::Request;

pub(crate) use channel::Channel;
pub(crate) use error::{Detail, Lost};
pub(crate) use hub::Services;
pub(crate) use request::json_kind;

use self::channel::{Ended, Outcome, Reply};
use crate::QoS;
use crate::client::Client;
use crate::error::Error;
use crate::mailbox::Receiver;
use crate::message::Message;

/// How long a request waits for its reply unless
/// [`ServiceChannel::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How a service's replies are matched to requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Correlation {
    /// By the `clientToken` the service echoes (Device Shadow, Jobs): any
    /// number of requests may be in flight on one channel.
    ClientToken,
    /// By topic alone (fleet provisioning, which echoes nothing): one
    /// request at a time per channel, the others waiting their turn.
    Topic,
}

/// What the framework needs to know about a service; declare one `static`
/// per service.
#[derive(Clone, Copy, Debug)]
pub struct Service {
    name: &'static str,
    correlation: Correlation,
    max_in_flight: Option<usize>,
    advice: Option<fn(&Rejection) -> Option<&'static str>>,
}

impl Service {
    /// A service called `name` in errors and logs (`"Device Shadow"`,
    /// `"fleet provisioning"`, `"Jobs"`), whose replies are matched by
    /// `correlation`.
    pub const fn new(name: &'static str, correlation: Correlation) -> Service {
        Service {
            name,
            correlation,
            max_in_flight: None,
            advice: None,
        }
    }

    /// At most `max` requests in flight per client across all of this
    /// service's channels (services are told apart by name); more wait for
    /// a place. For a service that refuses requests past a bound.
    pub const fn with_max_in_flight(mut self, max: usize) -> Service {
        self.max_in_flight = Some(max);
        self
    }

    /// What to do about a refusal, added to the error's message (say, for
    /// 409: "read the document again and retry").
    pub const fn with_advice(mut self, advice: fn(&Rejection) -> Option<&'static str>) -> Service {
        self.advice = Some(advice);
        self
    }

    /// The service's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// How its replies are matched to requests.
    pub fn correlation(&self) -> Correlation {
        self.correlation
    }

    /// The bound on requests in flight, if any.
    pub fn max_in_flight(&self) -> Option<usize> {
        self.max_in_flight
    }

    fn advice(&self, rejection: &Rejection) -> Option<&'static str> {
        self.advice.and_then(|advice| advice(rejection))
    }
}

/// One service's reply topics on one client, and the requests that wait on
/// them; see the [module documentation](self).
///
/// Cheap to clone; every handle made with the same service and filters on
/// the same client shares one channel (one set of subscriptions).
#[derive(Clone)]
pub struct ServiceChannel {
    client: Client,
    channel: Arc<Channel>,
    timeout: Duration,
}

impl ServiceChannel {
    /// The channel of `service` on `client` whose replies (and events) arrive
    /// on the topic filters `filters`; nothing is subscribed until the first
    /// request or [`subscribe`](Self::subscribe).
    pub fn new<F: Into<String>>(
        client: &Client,
        service: &'static Service,
        filters: impl IntoIterator<Item = F>,
    ) -> ServiceChannel {
        let filters = filters.into_iter().map(Into::into).collect();
        ServiceChannel {
            client: client.clone(),
            channel: client.services().channel(service, filters),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same handle with another per-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The service.
    pub fn service(&self) -> &'static Service {
        self.channel.service()
    }

    /// The reply topic filters.
    pub fn filters(&self) -> &[String] {
        self.channel.filters()
    }

    /// The client the requests go through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Sends `request` and decodes its accepted reply as `T`. A reply that
    /// does not decode is [`ServiceErrorKind::InvalidReply`].
    pub async fn call<T: DeserializeOwned>(&self, request: Request) -> Result<T, ServiceError> {
        let (operation, topic) = (request.operation(), request.topic().to_owned());
        let message = self.request(request).await?;
        serde_json::from_slice(message.payload()).map_err(|e| {
            self.error(
                operation,
                &topic,
                Detail::InvalidReply {
                    topic: message.topic().to_owned(),
                    detail: e.to_string(),
                },
            )
        })
    }

    /// Sends `request` and returns its accepted reply as it came; a rejected
    /// reply is [`ServiceErrorKind::Rejected`] (or
    /// [`ServiceErrorKind::InvalidReply`] when it is not an error document).
    pub async fn request(&self, request: Request) -> Result<Message, ServiceError> {
        let error = |detail| self.error(request.operation(), request.topic(), detail);
        for reply_topic in [request.accepted_topic(), request.rejected_topic()] {
            if !self.covers(reply_topic) {
                return Err(error(Detail::InvalidRequest(format!(
                    "its reply topic {reply_topic} matches none of the channel's filters {:?}",
                    self.filters()
                ))));
            }
        }
        let with_token = self.service().correlation() == Correlation::ClientToken;
        if let Err(detail) = request.check(with_token) {
            return Err(error(Detail::InvalidRequest(detail)));
        }
        let reply = tokio::time::timeout(self.timeout, self.exchange(&request))
            .await
            .map_err(|_| error(Detail::Timeout(self.timeout)))??;
        if reply.accepted {
            return Ok(reply.message);
        }
        let service = self.service();
        match Rejection::parse(reply.message.payload()) {
            Ok(rejection) => Err(error(Detail::Rejected {
                service: service.name(),
                advice: service.advice(&rejection),
                rejection,
            })),
            Err(detail) => Err(error(Detail::InvalidReply {
                topic: reply.message.topic().to_owned(),
                detail,
            })),
        }
    }

    /// Subscribes to the reply filters now (the first request does it
    /// otherwise), within the timeout: from then on no reply or event on them
    /// is missed.
    pub async fn subscribe(&self) -> Result<(), ServiceError> {
        self.within_timeout("subscribe", self.channel.ensure_subscribed(&self.client))
            .await
    }

    /// Unsubscribes from the reply filters, for an application done with
    /// them (AWS IoT Core allows 50 subscriptions per connection). The next
    /// request or [`subscribe`](Self::subscribe) subscribes again; event
    /// streams stay open but receive nothing meanwhile, and a request still
    /// waiting for its reply may time out.
    pub async fn unsubscribe(&self) -> Result<(), ServiceError> {
        self.within_timeout("unsubscribe", self.channel.unsubscribe(&self.client))
            .await
    }

    /// `work` on the reply filters (`operation`: subscribe, unsubscribe)
    /// within the timeout.
    async fn within_timeout(
        &self,
        operation: &'static str,
        work: impl Future<Output = Result<(), Error>>,
    ) -> Result<(), ServiceError> {
        let error = |detail| self.error(operation, &self.filters().join(", "), detail);
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| error(Detail::Timeout(self.timeout)))?
            .map_err(|e| error(Detail::Client(e)))
    }

    /// A stream of the messages on the reply filters that answer none of
    /// this client's requests (a service's events, replies to other
    /// clients), from now on. Call [`subscribe`](Self::subscribe) (or make a
    /// request) for them to flow.
    pub fn events(&self) -> ServiceEvents {
        ServiceEvents {
            rx: self.channel.listen(|message| Some(message.clone())),
        }
    }

    /// A stream of the messages that answer no request, as `pick` turns them
    /// into items (`None`: not for this stream).
    pub(crate) fn listen<T: Send + 'static>(
        &self,
        pick: impl Fn(&Message) -> Option<T> + Send + Sync + 'static,
    ) -> Receiver<T> {
        self.channel.listen(pick)
    }

    fn error(&self, operation: &'static str, topic: &str, detail: Detail) -> ServiceError {
        ServiceError::new(self.service().name(), operation, topic, detail)
    }

    fn covers(&self, reply_topic: &str) -> bool {
        self.filters()
            .iter()
            .any(|filter| topic::matches(filter, reply_topic, MatchMode::Aws))
    }

    /// The request, from subscribing to its reply (without the timeout).
    async fn exchange(&self, request: &Request) -> Result<Reply, ServiceError> {
        let error = |detail| self.error(request.operation(), request.topic(), detail);
        let failed = |e: Error| error(Detail::Client(e));
        let channel = &self.channel;
        let services = self.client.services();
        let service = self.service();
        channel
            .ensure_subscribed(&self.client)
            .await
            .map_err(failed)?;
        let _turn = match service.correlation() {
            Correlation::Topic => Some(channel.turn().await),
            Correlation::ClientToken => None,
        };
        let _place = match services.limit(service) {
            Some(limit) => Some(
                limit
                    .acquire_owned()
                    .await
                    .map_err(|_| failed(Error::closed()))?,
            ),
            None => None,
        };
        let token = match service.correlation() {
            Correlation::ClientToken => Some(services.next_token()),
            Correlation::Topic => None,
        };
        let payload = request
            .payload(token.as_deref())
            .map_err(|detail| error(Detail::InvalidRequest(detail)))?;
        let (mut reply, _expected) = channel.expect(
            request.accepted_topic(),
            request.rejected_topic(),
            token.clone(),
        );
        tracing::debug!(
            service = service.name(),
            operation = request.operation(),
            topic = request.topic(),
            token,
            "service request"
        );
        self.client
            .publish(request.topic(), payload, QoS::AtLeastOnce)
            .await
            .map_err(failed)?;
        // The broker has the request: from here on, a reconnect without the
        // session loses the reply. (Read after the PUBACK, so at worst a
        // later number: the request then waits for its timeout instead.)
        let sent_on = self.client.sessions().current();
        let mut status = self.client.status();
        status.borrow_and_update();
        let outcome = |outcome: Outcome| match outcome {
            Ok(reply) => Ok(reply),
            Err(Ended::Closed) => Err(failed(Error::closed())),
            Err(Ended::SubscriptionsLost) => {
                Err(error(Detail::ConnectionLost(Lost::Subscriptions)))
            }
        };
        loop {
            if self.client.sessions().fresh_since(sent_on) {
                // A reply that came before the drop still counts.
                return match reply.try_recv() {
                    Ok(result) => outcome(result),
                    Err(TryRecvError::Empty) => {
                        tracing::debug!(
                            service = service.name(),
                            operation = request.operation(),
                            "reconnected without the session: the reply is lost"
                        );
                        Err(error(Detail::ConnectionLost(Lost::FreshSession)))
                    }
                    Err(TryRecvError::Closed) => Err(failed(Error::closed())),
                };
            }
            tokio::select! {
                biased;
                result = &mut reply => {
                    return result.map_or_else(|_| Err(failed(Error::closed())), outcome);
                }
                changed = status.changed() => {
                    if changed.is_err() {
                        // The connection task is gone; the reply channel ends with it.
                        return (&mut reply).await.map_or_else(|_| Err(failed(Error::closed())), outcome);
                    }
                }
            }
        }
    }
}

impl std::fmt::Debug for ServiceChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceChannel")
            .field("service", &self.service().name())
            .field("filters", &self.filters())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The messages on a channel's reply filters that answer none of the
/// client's requests, created by [`ServiceChannel::events`].
///
/// Follows the crate's overflow rule (a full buffer discards its oldest
/// message, counted by [`dropped_messages`](Self::dropped_messages)); ends
/// when the client is closed.
pub struct ServiceEvents {
    rx: Receiver<Message>,
}

impl ServiceEvents {
    /// How many messages were discarded because the buffer was full.
    pub fn dropped_messages(&self) -> u64 {
        self.rx.dropped()
    }
}

impl Stream for ServiceEvents {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        Pin::new(&mut self.rx).poll_next(cx)
    }
}

impl std::fmt::Debug for ServiceEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceEvents").finish_non_exhaustive()
    }
}
