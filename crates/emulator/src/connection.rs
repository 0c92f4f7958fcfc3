//! Serving one accepted connection's MQTT session: one tokio task driving the
//! sans-IO [`ServerSession`] and talking to the shared [`Broker`]. The byte
//! stream, the door and the principal come from [`crate::accept`]; the AWS
//! rules each request is held to are the functions of [`rules`].
//!
//! The task reads from the socket, handles events and writes, polling both
//! directions at once (so a client that does not read never stops us from
//! reading). What waits to be written is a few chunks ([`outgoing`]): while
//! they wait the connection takes nothing more from its session's queue, so a
//! slow subscriber backs up into its own queue only (see
//! [`crate::broker::session`] for what is dropped then).
//!
//! AWS behaviours implemented here cite docs/aws-iot-core-behaviour.md:
//! refusals (§1.8), limits (§1.5, §1.6, §1.7), client ids assigned for empty
//! ones (§1.3), takeover and sessions (§1.4), will and shared subscriptions
//! (§1.10); where they depart from the MQTT specification, §8.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use iotcore_mqtt::packet::{Connect, Publish, Subscribe, Unsubscribe, Will};
use iotcore_mqtt::server::{Event, ProtocolError, ServerConfig, ServerSession, ServerState};
use iotcore_mqtt::topic::validate_aws_topic_filter;
use iotcore_mqtt::{Properties, ProtocolVersion, QoS, ReasonCode};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::authorizer::AuthRequest;

use crate::accept::{Accepted, BoxedStream, Door, Doors, Identity, Principal};
use crate::activity;
use crate::broker::Broker;
use crate::broker::authz::{Authorizer, Grant};
use crate::broker::journal::{Durable, JournalError};
use crate::broker::message::Message;
use crate::broker::negotiate::{check_client_id, effective_client_id, sdk_metrics, session_expiry};
use crate::broker::records::delivery_from_publish;
use crate::broker::session::{ConnectionId, InFlight, Kick, Session};
use crate::clock::Clock;
use crate::lifecycle::{DisconnectReason, Lifecycle, Presence, SubscriptionEvent};
use crate::quotas::{ConnectRate, ConnectionQuotas};
use crate::registry_watch::changed;
use crate::services::{Requester, Services};
use outgoing::Outgoing;
use read_buffer::ReadBuffer;
use rules::{
    ConnectRefusal, PublishOutcome, SubscriptionCheck, SubscriptionVerdict, check_publish,
    check_subscription, connect_refusal, publish_outcome,
};

mod access;
mod outgoing;
mod read_buffer;
mod rules;

/// How long the last bytes (a DISCONNECT) may take to leave once the session closed.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// Deliveries moved from the session queue per step.
const FILL_BATCH: usize = 64;

/// What every connection shares.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The broker.
    pub(crate) broker: Arc<Broker>,
    /// What accepting a connection needs (TLS, the doors).
    pub(crate) doors: Doors,
    /// The server session configuration (AWS limits).
    pub(crate) server_config: ServerConfig,
    /// Becomes `true` when the emulator stops.
    pub(crate) closing: watch::Receiver<bool>,
    /// The services that take requests on reserved topics.
    pub(crate) services: Services,
    /// Decides what a client may do (its certificate's AWS IoT policies).
    pub(crate) authz: Authorizer,
    /// Publishes lifecycle events.
    pub(crate) lifecycle: Lifecycle,
    /// The CONNECT rate quota, per client id.
    pub(crate) connects: ConnectRate,
}

/// Serves the MQTT session of an accepted connection until it ends.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    accepted: Accepted,
    peer: SocketAddr,
    id: ConnectionId,
) {
    let Accepted {
        mut stream,
        door,
        identity,
    } = accepted;
    let mut out = Outgoing::default();

    let now = Instant::now().into_std();
    let config = shared.broker.config();
    let quotas = ConnectionQuotas::new(&config.quotas, config.clock.now());
    let mut connection = Connection {
        id,
        peer,
        door,
        identity,
        authorizer_request: None,
        refreshing: None,
        server: ServerSession::new(shared.server_config.clone(), now),
        quotas,
        held_back: false,
        shared,
        client: None,
        acks: VecDeque::new(),
        end: None,
    };
    connection.run(&mut stream, &mut out).await;
    connection.finish();
    // The last bytes (a DISCONNECT, acknowledgements) leave after the session
    // is finished, so a client that does not read delays nobody else.
    match tokio::time::timeout(CLOSE_GRACE, out.close(&mut stream)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(%peer, "write failed: {e}"),
        Err(_) => tracing::debug!(%peer, "the last bytes could not be sent in time"),
    }
}

/// Why a connection ended.
#[derive(Debug)]
enum End {
    /// The client sent DISCONNECT; `will` says whether it asked for its will (MQTT 5 0x04).
    ClientDisconnect { will: bool },
    /// The connection was refused or closed by the emulator for the reason given.
    Closed(DisconnectReason, String),
    /// The socket closed or failed without DISCONNECT.
    Lost(String),
}

/// The client once its CONNECT is accepted.
#[derive(Debug)]
struct Client {
    client_id: String,
    protocol: ProtocolVersion,
    session: Arc<Session>,
    kick: Option<oneshot::Receiver<Kick>>,
    /// Boxed: most clients have none.
    will: Option<Box<Will>>,
    /// Expiry set by an MQTT 5 DISCONNECT.
    expiry_override: Option<Duration>,
    /// QoS 1 deliveries handed to the server session that came through a
    /// shared subscription or are stored for the persistent session, by
    /// packet id.
    in_flight: HashMap<u16, Tracked>,
    /// Its principal's policies.
    grant: Grant,
    /// What its lifecycle events share.
    presence: Presence,
    /// When it must end and why: a custom authorizer's
    /// `disconnectAfterInSeconds`, AWS's limit on WebSocket connections.
    ends_at: Option<(Instant, DisconnectReason)>,
    /// When a custom authorizer's `refreshAfterInSeconds` runs it again.
    refresh_at: Option<Instant>,
}

/// What the connection remembers of a QoS 1 delivery until its PUBACK.
#[derive(Debug)]
struct Tracked {
    /// The shared subscription it came through: unacknowledged when the
    /// connection ends, it goes to another member of the group.
    group: Option<Arc<str>>,
    /// Its `seq` in the store: removed from there once acknowledged.
    seq: Option<u64>,
}

/// A PUBACK owed for a QoS 1 PUBLISH, in the order the PUBLISHes came.
#[derive(Debug)]
struct OwedAck {
    packet_id: u16,
    /// Set when the message changed stored state: the PUBACK waits for it.
    stored: Option<Durable>,
    /// The PUBACK's reason code: success, or (MQTT 5) why the PUBLISH was
    /// refused or throttled.
    reason: ReasonCode,
}

struct Connection {
    id: ConnectionId,
    peer: SocketAddr,
    /// The way the connection came in.
    door: Door,
    /// Who it authenticated as (or that a custom authorizer decides at CONNECT).
    identity: Identity,
    /// What a custom authorizer was asked at CONNECT, asked again at its
    /// `refreshAfterInSeconds`.
    authorizer_request: Option<Box<AuthRequest>>,
    /// A custom authorizer's refresh running ([`Connection::start_refresh`]).
    refreshing: Option<JoinHandle<access::Refreshed>>,
    server: ServerSession,
    /// Its rate quotas.
    quotas: ConnectionQuotas,
    /// Deliveries wait in the session queue for the publish or replay quota.
    held_back: bool,
    shared: Arc<Shared>,
    client: Option<Client>,
    /// PUBACKs not sent yet, oldest first: each goes once its message and
    /// every one before it is stored (MQTT: PUBACKs in the order of the PUBLISHes).
    acks: VecDeque<OwedAck>,
    end: Option<End>,
}

impl Connection {
    fn broker(&self) -> &Arc<Broker> {
        &self.shared.broker
    }

    fn clock(&self) -> &Clock {
        &self.shared.broker.config().clock
    }

    fn protocol(&self) -> ProtocolVersion {
        self.server
            .protocol_version()
            .unwrap_or(ProtocolVersion::V311)
    }

    fn end_with(&mut self, end: End) {
        self.end.get_or_insert(end);
    }

    async fn run(&mut self, stream: &mut BoxedStream, out: &mut Outgoing) {
        let mut buf = ReadBuffer::new();
        let mut closing = self.shared.closing.clone();
        let mut registry = self.shared.authz.changes();
        let mut stopping = false;
        loop {
            self.process_events().await;
            // Take what is ready to send, as long as there is room for it and
            // the bytes-per-second quota allows.
            while out.has_room() && self.quotas.bytes_ready_at(self.clock().now()).is_none() {
                self.fill_from_session();
                let Some(chunk) = self.server.poll_transmit() else {
                    break;
                };
                self.quotas.bytes(chunk.len(), self.clock().now());
                out.push(chunk);
            }
            if self.server.is_closed() {
                // The last bytes are written once the session is finished (`serve`).
                while let Some(chunk) = self.server.poll_transmit() {
                    out.push(chunk);
                }
                return;
            }
            let clock = self.clock().clone();
            let now = clock.now();
            let bytes_wait = self.quotas.bytes_ready_at(now);
            let reading = bytes_wait.is_none();
            let publish_wait = if self.held_back {
                self.quotas.outbound_ready_at(now)
            } else {
                None
            };
            let quota_wake = bytes_wait.into_iter().chain(publish_wait).min();
            let timer = self.server.poll_timeout().map(Instant::from_std);
            let connected = self.client.is_some();
            let ends_at = self.client.as_ref().and_then(|c| c.ends_at);
            let end_reason = ends_at.map(|(_, reason)| reason);
            let ends_at = ends_at.map(|(at, _)| at);
            let refresh_at = self.client.as_ref().and_then(|c| c.refresh_at);
            let session = self.client.as_ref().map(|c| Arc::clone(&c.session));
            let kick = self.client.as_mut().and_then(|c| c.kick.as_mut());
            let stored = self.acks.front_mut().and_then(|a| a.stored.as_mut());
            let refreshing = self.refreshing.as_mut();
            let room = out.has_room();
            let writing = !out.is_idle();
            let io = std::future::poll_fn(|cx| {
                out.poll_io(stream, reading.then(|| buf.bytes_mut()), cx)
            });
            tokio::select! {
                polled = io, if reading || writing => {
                    if let Some(Err(e)) = polled.wrote {
                        self.end_with(End::Lost(format!("write failed: {e}")));
                        return;
                    }
                    match polled.read {
                        None => {}
                        Some(Ok(0)) => {
                            self.end_with(End::Lost("the client closed the connection without DISCONNECT".into()));
                            return;
                        }
                        Some(Ok(n)) => {
                            self.quotas.bytes(n, clock.now());
                            if let Err(e) = self.server.handle_input(buf.filled(), Instant::now().into_std()) {
                                self.protocol_error(&e);
                            }
                            buf.consumed();
                        }
                        Some(Err(e)) => {
                            self.end_with(End::Lost(format!("read failed: {e}")));
                            return;
                        }
                    }
                },
                () = sleep_until(timer) => self.server.handle_timeout(Instant::now().into_std()),
                () = sleep_on(&clock, quota_wake) => {}
                why = kicked(kick) => match why {
                    Some(why) => self.kicked(why),
                    // The broker dropped the link without a word: nobody will kick us.
                    None => {
                        if let Some(client) = &mut self.client {
                            client.kick = None;
                        }
                    }
                },
                () = stopped(&mut closing), if !stopping => {
                    stopping = true;
                    self.end_with(End::Closed(
                        DisconnectReason::ServerInitiatedDisconnect,
                        "the emulator is shutting down".into(),
                    ));
                    self.server.disconnect(ReasonCode::SERVER_SHUTTING_DOWN);
                }
                () = woken(session.as_deref()), if room => {}
                result = durable(stored) => self.stored(result),
                () = changed(&mut registry), if connected => self.on_registry_change().await,
                () = sleep_until(refresh_at) => self.start_refresh(),
                answer = finished(refreshing) => self.refreshed(answer),
                () = sleep_until(ends_at) => {
                    self.lifetime_over(end_reason.unwrap_or(DisconnectReason::CustomAuthTtlExpiration));
                }
            }
        }
    }

    /// Moves deliveries from the session queue into the server session, keeping
    /// at most the in-flight window of QoS 1 deliveries inside it.
    /// The publish and replay quotas limit what is moved; when they hold
    /// deliveries back, `held_back` says so (the loop wakes when they allow).
    fn fill_from_session(&mut self) {
        self.held_back = false;
        let Some(client) = &self.client else { return };
        if self.server.state() != ServerState::Connected {
            return;
        }
        let window = usize::from(self.server.config().max_inflight);
        let budget = window.saturating_sub(self.server.pending_publishes().len());
        let now = SystemTime::now();
        let quota_now = self.shared.broker.config().clock.now();
        let allowed = self.quotas.outbound_budget(quota_now);
        let session = Arc::clone(&client.session);
        let deliveries = session.take(budget.min(allowed), FILL_BATCH.min(allowed), now);
        self.held_back = deliveries.len() == allowed && session.lock().queue_len() > 0;
        self.quotas.sent(deliveries.len(), quota_now);
        for delivery in deliveries {
            let sent = if self.receivable(&delivery.message.topic) {
                delivery
                    .message
                    .to_publish(delivery.qos, delivery.retain, now)
                    .and_then(|publish| self.server.send_publish(publish))
            } else {
                None
            };
            let Some(packet_id) = sent else {
                // Not for this client (refused, expired, too large, or QoS 0).
                if let Some(seq) = delivery.seq {
                    session.forget(seq);
                }
                continue;
            };
            if let Some(seq) = delivery.seq {
                session.sent(seq, packet_id);
            }
            if delivery.group.is_none() && delivery.seq.is_none() {
                continue;
            }
            if let Some(client) = &mut self.client {
                let tracked = Tracked {
                    group: delivery.group,
                    seq: delivery.seq,
                };
                client.in_flight.insert(packet_id, tracked);
            }
        }
    }

    fn kicked(&mut self, why: Kick) {
        if let Some(client) = &mut self.client {
            client.kick = None;
        }
        match why {
            Kick::TakenOver => {
                tracing::info!(
                    client_id = self.client_id(),
                    peer = %self.peer,
                    "disconnected: another connection with the same client id took over"
                );
                self.end_with(End::Closed(
                    DisconnectReason::DuplicateClientId,
                    "session taken over".into(),
                ));
                self.server.disconnect(ReasonCode::SESSION_TAKEN_OVER);
            }
        }
    }

    fn client_id(&self) -> &str {
        self.client.as_ref().map_or("", |c| c.client_id.as_str())
    }

    /// The session closed the connection for `error`. More unacknowledged
    /// QoS 1 publishes than the Receive Maximum is over the inbound in-flight
    /// quota: its lifecycle event says `THROTTLED`.
    fn protocol_error(&mut self, error: &ProtocolError) {
        tracing::info!(
            client_id = self.client_id(),
            peer = %self.peer,
            "disconnected: protocol error: {error}"
        );
        let reason = match error {
            ProtocolError::ReceiveMaximumExceeded { .. } => DisconnectReason::Throttled,
            _ => DisconnectReason::ClientError,
        };
        self.end_with(End::Closed(reason, format!("protocol error: {error}")));
    }

    async fn process_events(&mut self) {
        while let Some(event) = self.server.poll_event() {
            match event {
                // Boxed, as it runs once: its state does not size the task.
                Event::Connect(connect) => Box::pin(self.on_connect(*connect)).await,
                Event::Publish(publish) => self.on_publish(publish),
                // Boxed, as they wait for the store: the wait does not size the task.
                Event::Subscribe(subscribe) => Box::pin(self.on_subscribe(subscribe)).await,
                Event::Unsubscribe(unsubscribe) => {
                    Box::pin(self.on_unsubscribe(unsubscribe)).await;
                }
                Event::Delivered { packet_id, reason } => {
                    // Acknowledged, even refused (MQTT 5: a refusal discards the
                    // message, it does not go to another member [MQTT-4.8.2-6]).
                    if let Some(client) = &mut self.client {
                        let seq = client.in_flight.remove(&packet_id).and_then(|t| t.seq);
                        if let Some(seq) = seq {
                            client.session.forget(seq);
                        }
                    }
                    if reason.is_error() {
                        tracing::debug!(client_id = self.client_id(), packet_id, %reason, "the client refused a message");
                    }
                }
                Event::PublishDropped { topic, reason } => {
                    tracing::warn!(
                        client_id = self.client_id(),
                        topic = topic.as_str(),
                        ?reason,
                        "message not delivered to the client"
                    );
                }
                Event::SubscribeIgnored(subscribe) => {
                    let filters: Vec<&str> = subscribe
                        .subscriptions
                        .iter()
                        .map(|s| s.filter.as_str())
                        .collect();
                    tracing::warn!(
                        client_id = self.client_id(),
                        ?filters,
                        "SUBSCRIBE with QoS 2 ignored without SUBACK, as AWS IoT Core does"
                    );
                }
                Event::Disconnected {
                    reason,
                    publish_will,
                    properties,
                } => self.on_disconnect(reason, publish_will, &properties),
                Event::KeepAliveTimeout => {
                    tracing::info!(
                        client_id = self.client_id(),
                        peer = %self.peer,
                        keep_alive = self.server.keep_alive(),
                        "disconnected: nothing received for 1.5 × the keep-alive"
                    );
                    self.end_with(End::Closed(
                        DisconnectReason::MqttKeepAliveTimeout,
                        "keep-alive timeout".into(),
                    ));
                }
                Event::ConnectTimeout => {
                    tracing::info!(peer = %self.peer, "closed: no CONNECT received in time");
                    self.end_with(End::Closed(
                        DisconnectReason::ClientError,
                        "no CONNECT".into(),
                    ));
                }
                other => tracing::debug!(client_id = self.client_id(), ?other, "event ignored"),
            }
        }
    }

    /// Refuses the CONNECT: MQTT 5 CONNACK with `reason`; MQTT 3.1.1 closes the
    /// connection without CONNACK, as AWS does for an unauthorized 3.1.1 client
    /// (§1.3, §1.8).
    fn refuse(&mut self, client_id: &str, reason: ReasonCode, why: String) {
        tracing::warn!(client_id, peer = %self.peer, door = %self.door, principal = %self.identity, "connection refused: {why}");
        self.broker()
            .activity()
            .refused(client_id, "connect", None, why.as_str());
        self.end_with(End::Closed(DisconnectReason::ClientError, why));
        match connect_refusal(self.protocol(), reason) {
            ConnectRefusal::Connack(reason) => {
                if self.server.reject(reason, Properties::default()).is_err() {
                    self.server.disconnect(reason);
                }
            }
            ConnectRefusal::Close => self.server.disconnect(reason),
        }
    }

    async fn on_connect(&mut self, connect: Connect) {
        let config = self.broker().config().clone();
        if let Err(e) = check_client_id(&connect.client_id, &config.limits) {
            return self.refuse(
                &connect.client_id,
                ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
                e.to_string(),
            );
        }
        // Policies, sessions and lifecycle events all see the assigned id.
        let (client_id, assigned) = effective_client_id(&connect.client_id);
        let grant = match self.authorize_connect(&connect, &client_id).await {
            Ok(grant) => grant,
            Err((reason, why)) => return self.refuse(&client_id, reason, why),
        };
        if !self.shared.connects.admit(&client_id, self.clock().now()) {
            return self.refuse(
                &client_id,
                ReasonCode::QUOTA_EXCEEDED,
                "throttled: over the CONNECTs-per-second quota of the client id".into(),
            );
        }
        let expiry = session_expiry(
            connect.protocol,
            connect.clean_start,
            connect.properties.session_expiry_interval,
            &config,
        );
        let attached = self.broker().attach(
            &client_id,
            connect.protocol,
            connect.clean_start,
            expiry.expiry,
            self.id,
        );
        let mut in_flight = HashMap::new();
        let resume: Vec<Publish> = attached
            .resume
            .into_iter()
            .map(|InFlight { publish, seq }| {
                if let (Some(packet_id), Some(seq)) = (publish.packet_id, seq) {
                    in_flight.insert(
                        packet_id,
                        Tracked {
                            group: None,
                            seq: Some(seq),
                        },
                    );
                }
                publish
            })
            .collect();
        self.server.resume(resume);
        if attached.session_present {
            let backlog = attached.session.lock().queue_len();
            self.quotas.resumed(backlog);
        }
        let properties = Properties {
            assigned_client_identifier: assigned.then(|| client_id.clone()),
            session_expiry_interval: expiry.adjusted,
            retain_available: Some(1),
            wildcard_subscription_available: Some(1),
            subscription_identifier_available: Some(0),
            // Shared Subscription Available is left out: absent means
            // available, and AWS's list of CONNACK properties does not have it.
            ..Properties::default()
        };
        let session_present = attached.session_present;
        if let Err(e) = self
            .server
            .accept(session_present, properties, Instant::now().into_std())
        {
            tracing::error!(client_id, "cannot accept the connection: {e}");
        }
        tracing::info!(
            client_id,
            peer = %self.peer,
            door = %self.door,
            principal = %self.identity,
            protocol = ?connect.protocol,
            clean_start = connect.clean_start,
            assigned,
            session_present,
            session_expiry_secs = expiry.expiry.as_secs(),
            keep_alive = self.server.keep_alive(),
            sdk_metrics = sdk_metrics(connect.username.as_deref()),
            "client connected"
        );
        self.broker().activity().connected(
            self.id,
            activity::Connection {
                client_id: client_id.clone(),
                principal: self.identity.to_string(),
                door: self.door.to_string(),
                protocol: connect.protocol,
                peer: self.peer,
                since: SystemTime::now(),
            },
        );
        let presence = self.shared.lifecycle.connected(
            self.broker(),
            &client_id,
            self.identity.identifier(),
            attached.session.key(),
            self.peer.ip(),
        );
        self.client = Some(Client {
            client_id,
            protocol: connect.protocol,
            session: attached.session,
            kick: Some(attached.kick),
            will: connect.will.map(Box::new),
            expiry_override: None,
            in_flight,
            grant,
            presence,
            ends_at: rules::connection_deadline(
                self.door,
                self.identity.principal().and_then(Principal::lifetime),
                &self.broker().config().limits,
            )
            .map(|(lifetime, reason)| (Instant::now() + lifetime, reason)),
            refresh_at: self
                .identity
                .principal()
                .and_then(Principal::refresh_after)
                .map(|after| Instant::now() + after),
        });
    }

    /// A custom authorizer's `disconnectAfterInSeconds`, or AWS's limit on a
    /// WebSocket connection, is over: the connection ends (MQTT 5: DISCONNECT
    /// 0xA0 Maximum connect time), its lifecycle event saying `reason`
    /// (`CUSTOMAUTH_TTL_EXPIRATION`, `WEBSOCKET_TTL_EXPIRATION`).
    fn lifetime_over(&mut self, reason: DisconnectReason) {
        let why = match reason {
            DisconnectReason::WebSocketTtlExpiration => "the WebSocket connection's time is over",
            _ => "the custom authorizer's disconnectAfterInSeconds is over",
        };
        tracing::info!(
            client_id = self.client_id(),
            peer = %self.peer,
            principal = %self.identity,
            door = %self.door,
            "disconnected: {why}"
        );
        if let Some(client) = &mut self.client {
            client.ends_at = None;
        }
        self.end_with(End::Closed(reason, why.into()));
        self.server.disconnect(ReasonCode::MAXIMUM_CONNECT_TIME);
    }

    /// Refuses a PUBLISH the AWS way ([`publish_outcome`], §1.8).
    fn refuse_publish(&mut self, publish: &Publish, refused: &rules::PublishRefusal) {
        let why = &refused.refusal.why;
        tracing::warn!(
            client_id = self.client_id(),
            action = "publish",
            topic = %publish.topic,
            "refused: {why}"
        );
        self.broker().activity().refused(
            self.client_id(),
            "publish",
            Some(&publish.topic),
            why.as_str(),
        );
        match publish_outcome(self.protocol(), refused, publish.packet_id) {
            PublishOutcome::Disconnect(reason, kind) => {
                self.end_with(End::Closed(kind, format!("publish refused: {why}")));
                self.server.disconnect(reason);
            }
            PublishOutcome::Puback(packet_id, reason) => self.owe_ack(packet_id, None, reason),
            PublishOutcome::Drop => {}
        }
    }

    /// Routes an authorized PUBLISH and owes its PUBACK (QoS 1): sent once
    /// the store holds what the message changed there (it was queued for a
    /// persistent session, or retained), so that nothing acknowledged is lost
    /// if the emulator's process dies.
    fn on_publish(&mut self, publish: Publish) {
        let Some(client) = self.client.as_mut() else {
            return;
        };
        let key = client.session.key();
        let limits = &self.shared.broker.config().limits;
        if let Err(refused) = check_publish(limits, &mut client.grant, &publish) {
            self.refuse_publish(&publish, &refused);
            return;
        }
        let now = self.clock().now();
        if !self.quotas.inbound_publish(now) {
            self.throttle_publish(&publish);
            return;
        }
        let message = Message::from_publish(&publish, SystemTime::now());
        let stored = if self.service_request(&message) {
            None
        } else {
            self.broker().publish_durably(message, Some(key))
        };
        if let Some(packet_id) = publish.packet_id {
            self.owe_ack(packet_id, stored, ReasonCode::SUCCESS);
        }
    }

    /// Discards a PUBLISH over the publishes-per-second quota, as AWS does:
    /// no PUBACK (MQTT 5: PUBACK 0x97 Quota exceeded), logged.
    fn throttle_publish(&mut self, publish: &Publish) {
        tracing::warn!(
            client_id = self.client_id(),
            action = "publish",
            topic = %publish.topic,
            qos = publish.qos as u8,
            "throttled: over the publishes-per-second quota of the connection; discarded"
        );
        self.broker().activity().refused(
            self.client_id(),
            "publish",
            Some(&publish.topic),
            "throttled: over the publishes-per-second quota of the connection",
        );
        if let (ProtocolVersion::V5, Some(packet_id)) = (self.protocol(), publish.packet_id) {
            self.owe_ack(packet_id, None, ReasonCode::QUOTA_EXCEEDED);
        }
    }

    /// Owes the PUBACK of `packet_id`, answered with `reason` once `stored`
    /// (if any) and every PUBACK owed before it are done.
    fn owe_ack(&mut self, packet_id: u16, stored: Option<Durable>, reason: ReasonCode) {
        self.acks.push_back(OwedAck {
            packet_id,
            stored,
            reason,
        });
        self.release_acks();
    }

    /// Sends the owed PUBACKs at the front that wait for nothing any more.
    fn release_acks(&mut self) {
        while let Some(front) = self.acks.front_mut() {
            let result = match &mut front.stored {
                None => Ok(()),
                Some(stored) => match stored.try_result() {
                    Some(result) => result,
                    None => return,
                },
            };
            let (packet_id, reason) = (front.packet_id, front.reason);
            self.acks.pop_front();
            self.answer(packet_id, reason, result);
        }
    }

    /// The message of the oldest owed PUBACK is stored (or could not be).
    fn stored(&mut self, result: Result<(), JournalError>) {
        if let Some(owed) = self.acks.pop_front() {
            self.answer(owed.packet_id, owed.reason, result);
        }
        self.release_acks();
    }

    /// PUBACK with `reason` for a message whose changes are stored; one that
    /// could not be stored is not acknowledged: MQTT 5 answers 0x80 unspecified
    /// error, and an MQTT 3.1.1 connection (whose PUBACK cannot refuse) is
    /// closed, for the client to publish it again.
    fn answer(&mut self, packet_id: u16, reason: ReasonCode, result: Result<(), JournalError>) {
        let reason = match result {
            Ok(()) => reason,
            Err(e) => {
                tracing::error!(
                    client_id = self.client_id(),
                    packet_id,
                    "not acknowledged: {e}"
                );
                if self.protocol() == ProtocolVersion::V311 {
                    self.end_with(End::Closed(
                        DisconnectReason::ServerInitiatedDisconnect,
                        format!("a message could not be stored: {e}"),
                    ));
                    self.server.disconnect(ReasonCode::UNSPECIFIED_ERROR);
                    return;
                }
                ReasonCode::UNSPECIFIED_ERROR
            }
        };
        if let Err(e) = self.server.puback(packet_id, reason) {
            tracing::debug!("cannot acknowledge PUBLISH {packet_id}: {e}");
        }
    }

    /// Waits until what was sent to the journal so far is stored, when the
    /// session is persistent; `false` (logged) if it could not be.
    async fn session_stored(&self, session: &Session) -> bool {
        let Some(log) = session.log() else {
            return true;
        };
        match log.journal().sync().await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(
                    client_id = self.client_id(),
                    "session change not stored: {e}"
                );
                false
            }
        }
    }

    /// Hands `message` to the service that claims its topic, if one does.
    fn service_request(&self, message: &Message) -> bool {
        let Some(client) = &self.client else {
            return false;
        };
        self.shared.services.dispatch(message, || Requester {
            connection: self.id,
            client_id: client.client_id.clone(),
            session: Arc::clone(&client.session),
            principal: self.identity.identifier().to_owned(),
            protocol: client.protocol,
        })
    }

    async fn on_subscribe(&mut self, subscribe: Subscribe) {
        let Some(client) = &self.client else { return };
        let (client_id, session, protocol, grant) = (
            client.client_id.clone(),
            Arc::clone(&client.session),
            client.protocol,
            client.grant.clone(),
        );
        if !subscribe.properties.subscription_identifiers.is_empty() {
            tracing::warn!(
                client_id,
                "disconnected: subscription identifiers are not supported by AWS IoT Core"
            );
            self.end_with(End::Closed(
                DisconnectReason::ClientError,
                "subscription identifier used".into(),
            ));
            return self
                .server
                .disconnect(ReasonCode::SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED);
        }
        let limits = self.broker().config().limits.clone();
        let mut reasons = Vec::with_capacity(subscribe.subscriptions.len());
        let mut retained = Vec::new();
        for (index, subscription) in subscribe.subscriptions.iter().enumerate() {
            let filter = subscription.filter.as_str();
            let check = SubscriptionCheck {
                filter,
                index,
                already_subscribed: self.broker().is_subscribed(&session, filter),
                subscriptions: self.broker().subscription_count(&session),
                max_subscriptions: self.broker().config().quotas.max_subscriptions(),
            };
            let reason = match check_subscription(&limits, &grant, protocol, check) {
                SubscriptionVerdict::Granted => {
                    let mut options = subscription.options;
                    options.qos = options.qos.min(QoS::AtLeastOnce);
                    retained.extend(self.broker().subscribe(&session, filter, options).retained);
                    tracing::debug!(client_id, filter, qos = options.qos as u8, "subscribed");
                    ReasonCode(options.qos as u8)
                }
                SubscriptionVerdict::Refused(refusal) => {
                    tracing::warn!(
                        client_id,
                        action = "subscribe",
                        topic = filter,
                        "refused: {}",
                        refusal.why
                    );
                    self.broker().activity().refused(
                        &client_id,
                        "subscribe",
                        Some(filter),
                        refusal.why.as_str(),
                    );
                    refusal.reason
                }
                SubscriptionVerdict::Disconnect(refusal) => {
                    tracing::warn!(
                        client_id,
                        action = "subscribe",
                        topic = filter,
                        "refused: {}; disconnecting (MQTT 3.1.1)",
                        refusal.why
                    );
                    self.broker().activity().refused(
                        &client_id,
                        "subscribe",
                        Some(filter),
                        refusal.why.as_str(),
                    );
                    self.end_with(End::Closed(
                        DisconnectReason::AuthError,
                        format!("subscribe refused: {}", refusal.why),
                    ));
                    return self.server.disconnect(refusal.reason);
                }
            };
            reasons.push(reason);
        }
        // A persistent session's subscriptions are stored before SUBACK.
        if reasons.iter().any(|r| !r.is_error()) && !self.session_stored(&session).await {
            for reason in reasons.iter_mut().filter(|r| !r.is_error()) {
                *reason = ReasonCode::UNSPECIFIED_ERROR;
            }
        }
        let granted: Vec<String> = subscribe
            .subscriptions
            .iter()
            .zip(&reasons)
            .filter(|(_, reason)| !reason.is_error())
            .map(|(s, _)| s.filter.clone())
            .collect();
        if let Err(e) = self.server.suback(subscribe.packet_id, reasons) {
            tracing::debug!("cannot answer SUBSCRIBE {}: {e}", subscribe.packet_id);
        }
        self.subscription_event(SubscriptionEvent::Subscribed, &granted);
        let now = SystemTime::now();
        for delivery in retained {
            if !self.receivable(&delivery.message.topic) {
                continue;
            }
            if let Some(publish) = delivery.message.to_publish(delivery.qos, true, now) {
                self.server.send_publish(publish);
                self.quotas.sent(1, self.shared.broker.config().clock.now());
            }
        }
    }

    async fn on_unsubscribe(&mut self, unsubscribe: Unsubscribe) {
        let Some(client) = &self.client else { return };
        let (client_id, session, protocol) = (
            client.client_id.clone(),
            Arc::clone(&client.session),
            client.protocol,
        );
        let mut reasons = Vec::new();
        let mut removed = Vec::new();
        for filter in &unsubscribe.filters {
            let reason = match validate_aws_topic_filter(filter) {
                Err(e) => {
                    tracing::warn!(client_id, action = "unsubscribe", topic = %filter, "refused: {e}");
                    ReasonCode::TOPIC_FILTER_INVALID
                }
                Ok(()) => {
                    self.broker().unsubscribe(&session, filter);
                    removed.push(filter.clone());
                    // AWS answers success whether or not the subscription existed.
                    ReasonCode::SUCCESS
                }
            };
            reasons.push(reason);
        }
        if !removed.is_empty() && !self.session_stored(&session).await {
            for reason in reasons.iter_mut().filter(|r| !r.is_error()) {
                *reason = ReasonCode::UNSPECIFIED_ERROR;
            }
        }
        if protocol == ProtocolVersion::V311 {
            reasons.clear();
        }
        if let Err(e) = self.server.unsuback(unsubscribe.packet_id, reasons) {
            tracing::debug!("cannot answer UNSUBSCRIBE {}: {e}", unsubscribe.packet_id);
        }
        self.subscription_event(SubscriptionEvent::Unsubscribed, &removed);
    }

    fn on_disconnect(&mut self, reason: ReasonCode, publish_will: bool, properties: &Properties) {
        let max = self.broker().config().max_session_expiry;
        if let Some(client) = &mut self.client {
            if let Some(secs) = properties.session_expiry_interval {
                // A session that ends with its connection cannot be made to outlive
                // it at DISCONNECT (MQTT 5 §3.14.2.2.2): that request is ignored.
                if client.session.lock().expiry.is_zero() {
                    tracing::debug!(
                        client_id = client.client_id,
                        "DISCONNECT session expiry ignored: the session was not persistent"
                    );
                } else {
                    client.expiry_override = Some(Duration::from_secs(secs.into()).min(max));
                }
            }
        }
        tracing::info!(client_id = self.client_id(), peer = %self.peer, %reason, "client disconnected");
        self.end_with(End::ClientDisconnect { will: publish_will });
    }

    /// After the connection ended: publishes the will unless the client
    /// disconnected normally (AWS publishes it on every other end, takeover and
    /// shutdown included, §1.10; a Will Delay Interval is ignored, as AWS does
    /// not support it), publishes the `disconnected` lifecycle event, detaches
    /// from the session, and hands the unacknowledged deliveries of shared
    /// subscriptions to other members of their groups.
    fn finish(&mut self) {
        let end = self
            .end
            .take()
            .unwrap_or(End::Lost("connection ended".into()));
        let Some(client) = self.client.take() else {
            return;
        };
        let (publish_will, reason, why) = match end {
            End::ClientDisconnect { will } => (
                will,
                DisconnectReason::ClientInitiatedDisconnect,
                "the client sent DISCONNECT".to_owned(),
            ),
            End::Closed(reason, why) => {
                tracing::debug!(client_id = client.client_id, peer = %self.peer, "connection closed: {why}");
                (true, reason, why)
            }
            End::Lost(why) => {
                tracing::info!(client_id = client.client_id, peer = %self.peer, "connection lost: {why}");
                (true, DisconnectReason::ConnectionLost, why)
            }
        };
        self.broker()
            .activity()
            .disconnected(self.id, &client.client_id, reason.as_str(), why);
        let now = SystemTime::now();
        if let Some(will) = client.will.filter(|_| publish_will) {
            tracing::info!(
                client_id = client.client_id,
                topic = will.topic,
                "publishing the last will"
            );
            let message = Message::new(
                will.topic.into(),
                will.payload,
                will.qos,
                will.retain,
                &will.properties,
                now,
            );
            self.broker().publish(message, None);
        }
        self.shared
            .lifecycle
            .disconnected(self.broker(), &client.presence, reason);
        let mut in_flight = client.in_flight;
        let mut shared = Vec::new();
        let mut unacked = Vec::new();
        for publish in self.server.take_pending_publishes() {
            let tracked = publish.packet_id.and_then(|id| in_flight.remove(&id));
            match tracked {
                Some(Tracked {
                    group: Some(group),
                    seq,
                }) => shared.push(delivery_from_publish(&publish, Some(group), seq, now)),
                tracked => unacked.push(InFlight {
                    publish,
                    seq: tracked.and_then(|t| t.seq),
                }),
            }
        }
        self.broker().detach(
            &client.session,
            self.id,
            unacked,
            client.expiry_override,
            now,
        );
        self.broker().redistribute(shared);
    }
}

/// Resolves once `flag` is `true` (or its sender is gone).
pub(crate) async fn stopped(flag: &mut watch::Receiver<bool>) {
    // An error means the sender is gone: the emulator is being dropped.
    let _ = flag.wait_for(|stop| *stop).await;
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

async fn sleep_on(clock: &Clock, deadline: Option<SystemTime>) {
    match deadline {
        Some(deadline) => clock.sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

async fn kicked(kick: Option<&mut oneshot::Receiver<Kick>>) -> Option<Kick> {
    match kick {
        Some(kick) => kick.await.ok(),
        None => std::future::pending().await,
    }
}

async fn durable(stored: Option<&mut Durable>) -> Result<(), JournalError> {
    match stored {
        Some(stored) => stored.await,
        None => std::future::pending().await,
    }
}

/// The answer of a custom authorizer's refresh, once it has one.
async fn finished(
    refreshing: Option<&mut JoinHandle<access::Refreshed>>,
) -> Result<access::Refreshed, tokio::task::JoinError> {
    match refreshing {
        Some(refreshing) => refreshing.await,
        None => std::future::pending().await,
    }
}

async fn woken(session: Option<&Session>) {
    match session {
        Some(session) => session.woken().await,
        None => std::future::pending().await,
    }
}
