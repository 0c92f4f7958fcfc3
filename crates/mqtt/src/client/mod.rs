//! The client session state machine.
//!
//! A [`ClientSession`] is the MQTT client side of one logical session. It
//! outlives transports: unacknowledged QoS 1 publishes, pending requests and
//! the set of active subscriptions survive a lost connection and are sent again
//! on the next one. It does no IO and reads no clock: its driver (the
//! `iotcore` SDK) owns the socket and the timer and moves bytes, instants and
//! events in and out.
//!
//! # Driving a session
//!
//! Methods come in four groups: getters; `handle_*` inputs; commands; and
//! `poll_*` outputs. After every input or command, drain the outputs:
//!
//! 1. When a transport is up, call [`ClientSession::connect`]; it queues CONNECT.
//! 2. Feed every byte read from the transport to [`ClientSession::handle_input`],
//!    and call [`ClientSession::handle_timeout`] whenever the instant last
//!    returned by [`ClientSession::poll_timeout`] is reached.
//! 3. Issue commands ([`publish`](ClientSession::publish),
//!    [`subscribe`](ClientSession::subscribe), …) at any time, connected or not.
//! 4. Then drain the outputs: write every [`ClientSession::poll_transmit`]
//!    buffer to the transport, handle every [`ClientSession::poll_event`], and
//!    re-arm the timer with [`ClientSession::poll_timeout`] (it moves whenever
//!    a packet is sent or received).
//! 5. When the transport fails, call [`ClientSession::connection_lost`], then
//!    [`connect`](ClientSession::connect) again once a new one is up. Close the
//!    transport yourself after [`Event::ConnectionRefused`],
//!    [`Event::ServerDisconnect`], [`Event::KeepAliveTimeout`], an error from
//!    `handle_input` (after flushing `poll_transmit`) or
//!    [`disconnect`](ClientSession::disconnect).
//!
//! ```no_run
//! # use std::time::Instant;
//! # use iotcore_mqtt::client::{ClientConfig, ClientSession, Event};
//! # fn read() -> Vec<u8> { Vec::new() }
//! # fn write(_: &[u8]) {}
//! let mut session = ClientSession::new(ClientConfig::new("my-thing")).unwrap();
//! session.connect(Instant::now()).unwrap();
//! loop {
//!     while let Some(bytes) = session.poll_transmit() {
//!         write(&bytes);
//!     }
//!     while let Some(event) = session.poll_event() {
//!         if let Event::Message(publish) = event { /* deliver */ }
//!     }
//!     // wait for input or for session.poll_timeout(), then:
//!     let now = Instant::now();
//!     if session.handle_input(&read(), now).is_err() { /* flush, close, reconnect */ }
//!     session.handle_timeout(now);
//! }
//! ```
//!
//! # Delivery guarantees
//!
//! * A QoS 1 publish gets its packet identifier when [`publish`](ClientSession::publish)
//!   returns and is kept until its PUBACK ([`Event::PublishAcked`]), across any
//!   number of connections. After every CONNACK, all unacknowledged publishes
//!   are sent again in their original order — with DUP=1 if they had been sent
//!   before — ahead of publishes never sent, whether or not the server resumed
//!   the session (a broker that lost the session would otherwise lose them).
//! * At most `min(max_inflight, server Receive Maximum)` QoS 1 publishes are in
//!   flight; the rest wait in order.
//! * QoS 0 is sent at once when connected and refused ([`ClientError::NotConnected`])
//!   otherwise; it may overtake QoS 1 publishes waiting for the window.
//! * Subscribe and unsubscribe requests are sent at once when connected and
//!   after the next CONNACK otherwise. The session keeps the set of
//!   subscriptions the server granted; when a CONNACK says the session is not
//!   present, it subscribes to all of them again by itself
//!   ([`Event::Resubscribing`]) before anything else is sent.
//! * After CONNACK, the order on the wire is: restoring SUBSCRIBEs, pending
//!   requests, unacknowledged publishes, waiting publishes.
//! * Inbound QoS 1 messages are acknowledged by the session when received.
//!
//! # Keep-alive
//!
//! A PINGREQ is sent when nothing has been sent or nothing has been received
//! for the keep-alive (an MQTT 5 Server Keep Alive replaces the configured
//! value). If no packet at all arrives within half the keep-alive after it,
//! [`Event::KeepAliveTimeout`] is reported: a half-open link is detected after
//! at most 1.5 × keep-alive of silence. While waiting for CONNACK, the timeout
//! is one keep-alive after CONNECT.

mod config;
mod error;
mod event;
mod keep_alive;
mod subscriptions;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::BytesMut;

pub use crate::session::ProtocolError;
pub use config::{AWS_KEEP_ALIVE_SECS, ClientConfig};
pub use error::ClientError;
pub use event::Event;

use crate::packet::{
    self, Ack, ConnAck, Connect, Disconnect, MAX_PACKET_SIZE, PacketType, Publish, SubAck,
    Subscribe, Subscription, SubscriptionOptions, UnsubAck, Unsubscribe,
};
use crate::session::{InboundAliases, Outbox, PacketIds, PublishQueue, PushError};
use crate::{Packet, Properties, ProtocolVersion, QoS, ReasonCode, topic};
use keep_alive::{PingAction, Pinger};
use subscriptions::Subscriptions;

/// Where the session stands with its current transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// No usable connection: never connected, connection lost, refused,
    /// closed by either side, or timed out. Commands still queue QoS 1
    /// publishes and requests for the next connection.
    Disconnected,
    /// CONNECT queued, waiting for CONNACK.
    Connecting,
    /// CONNACK accepted the connection.
    Connected,
}

/// A subscribe or unsubscribe waiting for its acknowledgement.
#[derive(Debug)]
enum Request {
    /// A SUBSCRIBE; `restore` when the session issued it to restore subscriptions.
    Subscribe { packet: Subscribe, restore: bool },
    /// An UNSUBSCRIBE.
    Unsubscribe(Unsubscribe),
}

impl Request {
    fn packet_id(&self) -> u16 {
        match self {
            Request::Subscribe { packet, .. } => packet.packet_id,
            Request::Unsubscribe(packet) => packet.packet_id,
        }
    }
}

/// The limits a server announced in its CONNACK.
#[derive(Debug)]
struct ServerLimits {
    receive_maximum: u16,
    maximum_packet_size: usize,
}

impl Default for ServerLimits {
    fn default() -> ServerLimits {
        ServerLimits {
            receive_maximum: u16::MAX,
            maximum_packet_size: MAX_PACKET_SIZE,
        }
    }
}

/// The client side of an MQTT session (see the [module documentation](self)).
#[derive(Debug)]
pub struct ClientSession {
    config: ClientConfig,
    state: ConnectionState,
    /// Client identifier assigned by an MQTT 5 server.
    assigned_client_id: Option<String>,
    ids: PacketIds,
    publishes: PublishQueue,
    requests: VecDeque<Request>,
    subscriptions: Subscriptions,
    // Per-connection state, reset by `connect` and `connection_lost`.
    server: ServerLimits,
    server_keep_alive: Option<u16>,
    aliases: InboundAliases,
    pinger: Option<Pinger>,
    connect_deadline: Option<Instant>,
    /// When unacknowledged requests are sent again (MQTT 3.1.1 with
    /// [`ClientConfig::retry_unacknowledged`]).
    retry_at: Option<Instant>,
    inbound: BytesMut,
    outbox: Outbox,
    events: VecDeque<Event>,
}

impl ClientSession {
    /// A disconnected session. Fails if the will uses QoS 2 or has an invalid topic.
    pub fn new(config: ClientConfig) -> Result<ClientSession, ClientError> {
        if let Some(will) = &config.will {
            if will.qos == QoS::ExactlyOnce {
                return Err(ClientError::QoS2NotSupported);
            }
            topic::validate_topic_name(&will.topic).map_err(ClientError::InvalidTopic)?;
        }
        Ok(ClientSession {
            config,
            state: ConnectionState::Disconnected,
            assigned_client_id: None,
            ids: PacketIds::default(),
            publishes: PublishQueue::default(),
            requests: VecDeque::new(),
            subscriptions: Subscriptions::default(),
            server: ServerLimits::default(),
            server_keep_alive: None,
            aliases: InboundAliases::default(),
            pinger: None,
            connect_deadline: None,
            retry_at: None,
            inbound: BytesMut::new(),
            outbox: Outbox::default(),
            events: VecDeque::new(),
        })
    }

    // ----- Getters -----

    /// The configuration the session was created with.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Where the session stands with its current transport.
    pub fn state(&self) -> ConnectionState {
        self.state
    }

    /// True between an accepting CONNACK and the end of that connection.
    pub fn is_connected(&self) -> bool {
        self.state == ConnectionState::Connected
    }

    /// The client identifier an MQTT 5 server assigned on the latest
    /// connection that had one assigned (sent on later connections unless
    /// [`ClientConfig::reuse_assigned_client_id`] is false).
    pub fn assigned_client_id(&self) -> Option<&str> {
        self.assigned_client_id.as_deref()
    }

    /// The subscriptions the server granted, by filter, with the options they
    /// were requested with. They are restored when a server forgets the session.
    pub fn subscriptions(&self) -> impl Iterator<Item = (&str, &SubscriptionOptions)> {
        self.subscriptions.iter()
    }

    /// The QoS 1 publishes not yet acknowledged, in order: those in flight
    /// first, then those waiting. `dup` is true for those sent at least once.
    pub fn pending_publishes(&self) -> impl ExactSizeIterator<Item = &Publish> {
        self.publishes.iter()
    }

    /// Number of QoS 1 publishes sent on this connection and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.publishes.in_flight()
    }

    /// Number of subscribe and unsubscribe requests waiting for their acknowledgement.
    pub fn pending_requests(&self) -> usize {
        self.requests.len()
    }

    /// The keep-alive in force: the MQTT 5 Server Keep Alive of the current
    /// connection if the server sent one, else the configured one.
    pub fn keep_alive(&self) -> Duration {
        Duration::from_secs(u64::from(self.effective_keep_alive()))
    }

    // ----- Inputs -----

    /// Processes bytes read from the transport.
    ///
    /// Ignored unless connecting or connected. On a protocol violation by the
    /// server the session queues an MQTT 5 DISCONNECT with the matching reason
    /// code, becomes [`ConnectionState::Disconnected`] (keeping publishes and
    /// subscriptions) and returns the error: flush
    /// [`poll_transmit`](Self::poll_transmit), then close the transport.
    /// Events for packets before the bad one are kept.
    pub fn handle_input(&mut self, data: &[u8], now: Instant) -> Result<(), ProtocolError> {
        if self.state == ConnectionState::Disconnected {
            return Ok(());
        }
        self.inbound.extend_from_slice(data);
        while self.state != ConnectionState::Disconnected {
            let decoded = packet::decode(
                &mut self.inbound,
                self.config.protocol,
                self.config.max_incoming_packet_size,
            );
            let result = match decoded {
                Ok(None) => break,
                Ok(Some(packet)) => {
                    if let Some(pinger) = &mut self.pinger {
                        pinger.received(now);
                    }
                    self.handle_packet(packet, now)
                }
                Err(error) => Err(ProtocolError::Decode(error)),
            };
            if let Err(error) = result {
                self.fail(&error);
                return Err(error);
            }
        }
        Ok(())
    }

    /// Acts on the timer: sends a PINGREQ when one is due, or reports
    /// [`Event::KeepAliveTimeout`] (and becomes disconnected) when the server
    /// has been silent too long. Call it when [`poll_timeout`](Self::poll_timeout)'s
    /// instant is reached; calling it early does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            ConnectionState::Disconnected => {}
            ConnectionState::Connecting => {
                if self
                    .connect_deadline
                    .is_some_and(|deadline| now >= deadline)
                {
                    self.time_out();
                }
            }
            ConnectionState::Connected => {
                if self.retry_at.is_some_and(|at| now >= at) {
                    self.resend_unacknowledged(now);
                }
                let Some(pinger) = &mut self.pinger else {
                    return;
                };
                match pinger.on_timeout(now) {
                    PingAction::Wait => {}
                    PingAction::TimedOut => self.time_out(),
                    PingAction::Ping => {
                        pinger.ping_sent(now);
                        self.push_internal(&Packet::PingReq);
                    }
                }
            }
        }
    }

    // ----- Commands -----

    /// Sets the user name and password the next CONNECT carries, replacing
    /// the configured ones: a transport may compute them for each connection
    /// (a custom authorizer's fresh token, an SDK's metrics in the user name).
    pub fn set_login(&mut self, username: Option<String>, password: Option<bytes::Bytes>) {
        self.config.username = username;
        self.config.password = password;
    }

    /// Starts a connection on a fresh transport: forgets everything about the
    /// previous one (unsent bytes, buffered input, server limits, topic
    /// aliases) and queues CONNECT. Publishes, requests and subscriptions are
    /// sent again after the CONNACK. Fails only when CONNECT cannot be encoded.
    pub fn connect(&mut self, now: Instant) -> Result<(), ClientError> {
        self.reset_connection();
        let connect = self.connect_packet();
        match self.outbox.push(
            &Packet::Connect(Box::new(connect)),
            self.config.protocol,
            MAX_PACKET_SIZE,
        ) {
            Ok(()) => {}
            Err(PushError::Encode(error)) => return Err(ClientError::Encode(error)),
            Err(PushError::TooLarge { size, max }) => {
                return Err(ClientError::PacketTooLarge { size, max });
            }
        }
        self.state = ConnectionState::Connecting;
        let interval = self.keep_alive();
        self.connect_deadline = (!interval.is_zero()).then(|| now + interval);
        Ok(())
    }

    /// The transport is gone (read or write failed, or it was closed). Keeps
    /// publishes, requests and subscriptions for the next
    /// [`connect`](Self::connect); drops unsent bytes.
    ///
    /// `now` is taken for symmetry with the other inputs; no timer depends on it.
    pub fn connection_lost(&mut self, now: Instant) {
        let _ = now;
        self.reset_connection();
    }

    /// Publishes a message. Returns the packet identifier of a QoS 1 publish
    /// (the one [`Event::PublishAcked`] will carry), `None` for QoS 0.
    ///
    /// QoS 1 is accepted connected or not and kept until acknowledged; QoS 0
    /// is sent only when connected ([`ClientError::NotConnected`] otherwise).
    /// The `dup` and `packet_id` fields of `publish` are set by the session.
    pub fn publish(
        &mut self,
        mut publish: Publish,
        now: Instant,
    ) -> Result<Option<u16>, ClientError> {
        if publish.qos == QoS::ExactlyOnce {
            return Err(ClientError::QoS2NotSupported);
        }
        if publish.properties.topic_alias.is_some() {
            return Err(ClientError::TopicAliasNotSupported);
        }
        topic::validate_topic_name(&publish.topic).map_err(ClientError::InvalidTopic)?;
        publish.dup = false;
        if publish.qos == QoS::AtMostOnce {
            if !self.is_connected() {
                return Err(ClientError::NotConnected);
            }
            publish.packet_id = None;
            let max = self.server.maximum_packet_size;
            return match self
                .outbox
                .push(&Packet::Publish(publish), self.config.protocol, max)
            {
                Ok(()) => {
                    self.note_sent(now);
                    Ok(None)
                }
                Err(PushError::Encode(error)) => Err(ClientError::Encode(error)),
                Err(PushError::TooLarge { size, max }) => {
                    Err(ClientError::PacketTooLarge { size, max })
                }
            };
        }
        // Stand-in identifier for measuring: the encoded size does not depend on it.
        publish.packet_id = Some(1);
        let size = publish.encoded_len(self.config.protocol)?;
        if self.is_connected() && size > self.server.maximum_packet_size {
            return Err(ClientError::PacketTooLarge {
                size,
                max: self.server.maximum_packet_size,
            });
        }
        let packet_id = self.ids.allocate().ok_or(ClientError::PacketIdsExhausted)?;
        publish.packet_id = Some(packet_id);
        self.publishes.push_back(publish);
        if self.is_connected() {
            self.send_publishes(now);
        }
        Ok(Some(packet_id))
    }

    /// Subscribes to topic filters; returns the packet identifier that
    /// [`Event::Subscribed`] will carry. Sent now if connected, else after the
    /// next CONNACK. Filters the server grants join the active set.
    pub fn subscribe(
        &mut self,
        subscriptions: Vec<Subscription>,
        properties: Properties,
        now: Instant,
    ) -> Result<u16, ClientError> {
        if subscriptions.is_empty() {
            return Err(ClientError::NoTopicFilters);
        }
        for subscription in &subscriptions {
            if subscription.options.qos == QoS::ExactlyOnce {
                return Err(ClientError::QoS2NotSupported);
            }
            validate_filter(&subscription.filter)?;
        }
        let mut packet = Subscribe {
            packet_id: 1,
            subscriptions,
            properties: properties.into(),
        };
        Packet::Subscribe(packet.clone()).encoded_len(self.config.protocol)?;
        packet.packet_id = self.ids.allocate().ok_or(ClientError::PacketIdsExhausted)?;
        Ok(self.issue(
            Request::Subscribe {
                packet,
                restore: false,
            },
            now,
        ))
    }

    /// Unsubscribes from topic filters; returns the packet identifier that
    /// [`Event::Unsubscribed`] will carry. Sent now if connected, else after
    /// the next CONNACK. Filters the server acknowledges leave the active set.
    pub fn unsubscribe(
        &mut self,
        filters: Vec<String>,
        properties: Properties,
        now: Instant,
    ) -> Result<u16, ClientError> {
        if filters.is_empty() {
            return Err(ClientError::NoTopicFilters);
        }
        for filter in &filters {
            validate_filter(filter)?;
        }
        let mut packet = Unsubscribe {
            packet_id: 1,
            filters,
            properties: properties.into(),
        };
        Packet::Unsubscribe(packet.clone()).encoded_len(self.config.protocol)?;
        packet.packet_id = self.ids.allocate().ok_or(ClientError::PacketIdsExhausted)?;
        Ok(self.issue(Request::Unsubscribe(packet), now))
    }

    /// Ends the connection in an orderly way: queues DISCONNECT (MQTT 5: with
    /// `reason`; 0x04 asks the server to publish the will) if connected or
    /// connecting, then becomes [`ConnectionState::Disconnected`]. Nothing else
    /// is sent on this transport: flush [`poll_transmit`](Self::poll_transmit)
    /// and close it. Publishes and subscriptions are kept for a later
    /// [`connect`](Self::connect).
    pub fn disconnect(&mut self, reason: ReasonCode) {
        if self.state == ConnectionState::Disconnected {
            return;
        }
        self.push_internal(&Packet::Disconnect(Disconnect {
            reason,
            properties: Default::default(),
        }));
        self.end_connection();
    }

    // ----- Outputs -----

    /// Bytes to write to the transport, all packets queued so far coalesced
    /// into one buffer, or `None` when there is nothing to send.
    pub fn poll_transmit(&mut self) -> Option<bytes::Bytes> {
        self.outbox.take()
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front();
        crate::session::release_if_empty(&mut self.events);
        event
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called, or
    /// `None` when no timer is running (disconnected, or keep-alive 0).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            ConnectionState::Disconnected => None,
            ConnectionState::Connecting => self.connect_deadline,
            ConnectionState::Connected => {
                let ping = self.pinger.as_ref().and_then(Pinger::deadline);
                match (ping, self.retry_at) {
                    (Some(ping), Some(retry)) => Some(ping.min(retry)),
                    (ping, retry) => ping.or(retry),
                }
            }
        }
    }

    // ----- Internals -----

    fn effective_keep_alive(&self) -> u16 {
        self.server_keep_alive.unwrap_or(self.config.keep_alive)
    }

    fn connect_packet(&self) -> Connect {
        let mut properties = Properties::default();
        if self.config.protocol == ProtocolVersion::V5 {
            properties = self
                .config
                .connect_properties
                .as_deref()
                .cloned()
                .unwrap_or_default();
            if let Some(expiry) = self.config.session_expiry_interval {
                properties.session_expiry_interval = Some(expiry);
            }
            if self.config.max_incoming_packet_size < MAX_PACKET_SIZE {
                properties.maximum_packet_size =
                    u32::try_from(self.config.max_incoming_packet_size).ok();
            }
        }
        let client_id = match &self.assigned_client_id {
            Some(assigned)
                if self.config.client_id.is_empty() && self.config.reuse_assigned_client_id =>
            {
                assigned.clone()
            }
            _ => self.config.client_id.clone(),
        };
        Connect {
            protocol: self.config.protocol,
            clean_start: self.config.clean_start,
            keep_alive: self.config.keep_alive,
            client_id,
            username: self.config.username.clone(),
            password: self.config.password.clone(),
            will: self.config.will.as_deref().cloned(),
            properties: properties.into(),
        }
    }

    fn reset_connection(&mut self) {
        self.end_connection();
        self.outbox.clear();
    }

    /// Leaves the current connection, keeping queued bytes (a DISCONNECT) for the driver to flush.
    fn end_connection(&mut self) {
        self.state = ConnectionState::Disconnected;
        self.inbound.clear();
        self.server = ServerLimits::default();
        self.server_keep_alive = None;
        self.aliases = InboundAliases::default();
        self.pinger = None;
        self.connect_deadline = None;
        self.retry_at = None;
        self.publishes.connection_reset();
        let ids = &mut self.ids;
        self.requests.retain(|request| match request {
            Request::Subscribe {
                packet,
                restore: true,
            } => {
                ids.release(packet.packet_id);
                false
            }
            _ => true,
        });
    }

    fn fail(&mut self, error: &ProtocolError) {
        if self.config.protocol == ProtocolVersion::V5 {
            self.push_internal(&Packet::Disconnect(Disconnect {
                reason: error.reason_code(),
                properties: Default::default(),
            }));
        }
        self.end_connection();
    }

    fn time_out(&mut self) {
        self.events.push_back(Event::KeepAliveTimeout);
        self.end_connection();
    }

    fn note_sent(&mut self, now: Instant) {
        if let Some(pinger) = &mut self.pinger {
            pinger.sent(now);
        }
    }

    /// Queues a packet the session builds itself (acks, pings, DISCONNECT):
    /// these always encode and are far below any Maximum Packet Size.
    fn push_internal(&mut self, packet: &Packet) {
        // Ignoring the error is sound: only packets whose fields the session
        // controls come here, and they are a handful of bytes long.
        let _ = self
            .outbox
            .push(packet, self.config.protocol, MAX_PACKET_SIZE);
    }

    fn issue(&mut self, request: Request, now: Instant) -> u16 {
        let packet_id = request.packet_id();
        if self.is_connected() {
            self.send_request(&request, now);
        }
        self.requests.push_back(request);
        self.arm_retry(now);
        packet_id
    }

    fn send_request(&mut self, request: &Request, now: Instant) {
        let packet = match request {
            Request::Subscribe { packet, .. } => Packet::Subscribe(packet.clone()),
            Request::Unsubscribe(packet) => Packet::Unsubscribe(packet.clone()),
        };
        // Requests were measured when issued; a server limit below a few
        // hundred bytes is not realistic, so send regardless of it.
        let _ = self
            .outbox
            .push(&packet, self.config.protocol, MAX_PACKET_SIZE);
        self.note_sent(now);
        self.arm_retry(now);
    }

    /// Starts the retry timer when retries are on and something waits for
    /// its acknowledgement ([`ClientConfig::retry_unacknowledged`]).
    fn arm_retry(&mut self, now: Instant) {
        let Some(interval) = self.config.retry_unacknowledged else {
            return;
        };
        let waiting = self.publishes.in_flight() > 0 || !self.requests.is_empty();
        if self.config.protocol == ProtocolVersion::V311
            && self.is_connected()
            && waiting
            && self.retry_at.is_none()
        {
            self.retry_at = Some(now + interval);
        }
    }

    /// An acknowledgement came: the retry timer starts over.
    fn acknowledged(&mut self, now: Instant) {
        self.retry_at = None;
        self.arm_retry(now);
    }

    /// Sends every unacknowledged PUBLISH (DUP set), SUBSCRIBE and
    /// UNSUBSCRIBE again, with its packet identifier.
    fn resend_unacknowledged(&mut self, now: Instant) {
        self.retry_at = None;
        for publish in self.publishes.sent() {
            let _ = self.outbox.push(
                publish,
                self.config.protocol,
                self.server.maximum_packet_size,
            );
        }
        let requests = std::mem::take(&mut self.requests);
        for request in &requests {
            self.send_request(request, now);
        }
        self.requests = requests;
        self.note_sent(now);
        self.arm_retry(now);
    }

    /// Sends waiting QoS 1 publishes, in order, while the window has room.
    fn send_publishes(&mut self, now: Instant) {
        let window = usize::from(
            self.config
                .max_inflight
                .min(self.server.receive_maximum)
                .max(1),
        );
        while let Some(publish) = self.publishes.next_to_send(window) {
            match self.outbox.push(
                publish,
                self.config.protocol,
                self.server.maximum_packet_size,
            ) {
                Ok(()) => {
                    self.publishes.mark_sent();
                    self.note_sent(now);
                    self.arm_retry(now);
                }
                Err(error) => {
                    let (size, max) = match error {
                        PushError::TooLarge { size, max } => (size, max),
                        // Measured when accepted; report an encoding failure as oversize.
                        PushError::Encode(_) => (usize::MAX, self.server.maximum_packet_size),
                    };
                    if let Some(Publish {
                        packet_id: Some(packet_id),
                        ..
                    }) = self.publishes.drop_next()
                    {
                        self.ids.release(packet_id);
                        self.events.push_back(Event::PublishDropped {
                            packet_id,
                            size,
                            max,
                        });
                    }
                }
            }
        }
    }

    fn handle_packet(&mut self, packet: Packet, now: Instant) -> Result<(), ProtocolError> {
        match (self.state, packet) {
            (ConnectionState::Connecting, Packet::ConnAck(connack)) => {
                self.handle_connack(connack, now);
                Ok(())
            }
            (ConnectionState::Connecting, other) => Err(ProtocolError::UnexpectedPacket {
                packet_type: other.packet_type(),
                context: "before CONNACK",
            }),
            (_, Packet::Publish(publish)) => self.handle_publish(publish, now),
            (_, Packet::PubAck(ack)) => self.handle_puback(ack, now),
            (_, Packet::SubAck(suback)) => {
                self.handle_suback(suback)?;
                self.acknowledged(now);
                Ok(())
            }
            (_, Packet::UnsubAck(unsuback)) => {
                self.handle_unsuback(unsuback)?;
                self.acknowledged(now);
                Ok(())
            }
            (_, Packet::PingResp) => Ok(()),
            (_, Packet::Disconnect(disconnect)) => {
                self.events.push_back(Event::ServerDisconnect {
                    reason: disconnect.reason,
                    properties: disconnect.properties,
                });
                self.end_connection();
                Ok(())
            }
            (_, other) => Err(ProtocolError::UnexpectedPacket {
                packet_type: other.packet_type(),
                context: "on an established connection",
            }),
        }
    }

    fn handle_connack(&mut self, connack: ConnAck, now: Instant) {
        if connack.reason.is_error() {
            self.events.push_back(Event::ConnectionRefused {
                reason: connack.reason,
                properties: connack.properties,
            });
            self.end_connection();
            return;
        }
        let properties = &connack.properties;
        self.state = ConnectionState::Connected;
        self.connect_deadline = None;
        self.server = ServerLimits {
            receive_maximum: properties.receive_maximum.unwrap_or(u16::MAX),
            maximum_packet_size: properties
                .maximum_packet_size
                .and_then(|max| usize::try_from(max).ok())
                .unwrap_or(MAX_PACKET_SIZE),
        };
        self.server_keep_alive = properties.server_keep_alive;
        if let Some(assigned) = &properties.assigned_client_identifier {
            self.assigned_client_id = Some(assigned.clone());
        }
        if self.config.protocol == ProtocolVersion::V5 {
            self.aliases = InboundAliases::new(
                self.config
                    .connect_properties
                    .as_ref()
                    .and_then(|p| p.topic_alias_maximum)
                    .unwrap_or(0),
            );
        }
        self.pinger = Some(Pinger::new(self.keep_alive(), now));
        self.events.push_back(Event::Connected {
            session_present: connack.session_present,
            properties: connack.properties,
        });
        if !connack.session_present {
            self.queue_restoring_subscribes();
        }
        let requests = std::mem::take(&mut self.requests);
        for request in &requests {
            self.send_request(request, now);
        }
        self.requests = requests;
        self.send_publishes(now);
        self.arm_retry(now);
    }

    /// Puts SUBSCRIBEs for every active subscription at the front of the requests.
    fn queue_restoring_subscribes(&mut self) {
        let mut restoring = Vec::new();
        for (subscriptions, properties) in self.subscriptions.restore_batches() {
            // Identifiers can only run out with 65,535 requests outstanding; the
            // subscriptions not restored now are restored on the next connection.
            let Some(packet_id) = self.ids.allocate() else {
                break;
            };
            self.events.push_back(Event::Resubscribing {
                packet_id,
                filters: subscriptions.iter().map(|s| s.filter.clone()).collect(),
            });
            restoring.push(Request::Subscribe {
                packet: Subscribe {
                    packet_id,
                    subscriptions,
                    properties: properties.into(),
                },
                restore: true,
            });
        }
        for request in restoring.into_iter().rev() {
            self.requests.push_front(request);
        }
    }

    fn handle_publish(&mut self, mut publish: Publish, now: Instant) -> Result<(), ProtocolError> {
        self.aliases.resolve(&mut publish)?;
        match (publish.qos, publish.packet_id) {
            (QoS::ExactlyOnce, _) => return Err(ProtocolError::QoSNotSupported(QoS::ExactlyOnce)),
            (QoS::AtLeastOnce, Some(packet_id)) => {
                self.push_internal(&Packet::PubAck(Ack {
                    packet_id,
                    reason: ReasonCode::SUCCESS,
                    properties: Default::default(),
                }));
                self.note_sent(now);
            }
            _ => {}
        }
        self.events.push_back(Event::Message(publish));
        Ok(())
    }

    fn handle_puback(&mut self, ack: Ack, now: Instant) -> Result<(), ProtocolError> {
        if self.publishes.acknowledge(ack.packet_id).is_none() {
            return Err(ProtocolError::UnknownPacketId {
                packet_type: PacketType::PubAck,
                packet_id: ack.packet_id,
            });
        }
        self.ids.release(ack.packet_id);
        self.events.push_back(Event::PublishAcked {
            packet_id: ack.packet_id,
            reason: ack.reason,
            properties: ack.properties,
        });
        self.acknowledged(now);
        self.send_publishes(now);
        Ok(())
    }

    /// Position of the outstanding request with `packet_id`, if it is of the acknowledged kind.
    fn find_request(
        &self,
        packet_type: PacketType,
        packet_id: u16,
    ) -> Result<usize, ProtocolError> {
        self.requests
            .iter()
            .position(|request| {
                request.packet_id() == packet_id
                    && matches!(
                        (packet_type, request),
                        (PacketType::SubAck, Request::Subscribe { .. })
                            | (PacketType::UnsubAck, Request::Unsubscribe(_))
                    )
            })
            .ok_or(ProtocolError::UnknownPacketId {
                packet_type,
                packet_id,
            })
    }

    fn handle_suback(&mut self, suback: SubAck) -> Result<(), ProtocolError> {
        let position = self.find_request(PacketType::SubAck, suback.packet_id)?;
        if let Some(Request::Subscribe { packet, .. }) = self.requests.get(position) {
            check_reason_count(
                PacketType::SubAck,
                suback.packet_id,
                packet.subscriptions.len(),
                suback.reasons.len(),
            )?;
        }
        let removed = self.requests.remove(position);
        crate::session::release_if_empty(&mut self.requests);
        let Some(Request::Subscribe { packet, restore }) = removed else {
            return Ok(());
        };
        self.ids.release(suback.packet_id);
        for (subscription, reason) in packet.subscriptions.iter().zip(&suback.reasons) {
            if reason.is_error() {
                self.subscriptions.remove(&subscription.filter);
            } else {
                self.subscriptions.insert(subscription, &packet.properties);
            }
        }
        self.events.push_back(if restore {
            Event::Resubscribed {
                packet_id: suback.packet_id,
                filters: packet.subscriptions.into_iter().map(|s| s.filter).collect(),
                reasons: suback.reasons,
            }
        } else {
            Event::Subscribed {
                packet_id: suback.packet_id,
                reasons: suback.reasons,
                properties: suback.properties,
            }
        });
        Ok(())
    }

    fn handle_unsuback(&mut self, unsuback: UnsubAck) -> Result<(), ProtocolError> {
        let position = self.find_request(PacketType::UnsubAck, unsuback.packet_id)?;
        if let (ProtocolVersion::V5, Some(Request::Unsubscribe(packet))) =
            (self.config.protocol, self.requests.get(position))
        {
            check_reason_count(
                PacketType::UnsubAck,
                unsuback.packet_id,
                packet.filters.len(),
                unsuback.reasons.len(),
            )?;
        }
        let removed = self.requests.remove(position);
        crate::session::release_if_empty(&mut self.requests);
        let Some(Request::Unsubscribe(packet)) = removed else {
            return Ok(());
        };
        self.ids.release(unsuback.packet_id);
        for (index, filter) in packet.filters.iter().enumerate() {
            let failed = unsuback
                .reasons
                .get(index)
                .is_some_and(|reason| reason.is_error());
            if !failed {
                self.subscriptions.remove(filter);
            }
        }
        self.events.push_back(Event::Unsubscribed {
            packet_id: unsuback.packet_id,
            reasons: unsuback.reasons,
            properties: unsuback.properties,
        });
        Ok(())
    }
}

fn check_reason_count(
    packet_type: PacketType,
    packet_id: u16,
    expected: usize,
    got: usize,
) -> Result<(), ProtocolError> {
    if expected == got {
        Ok(())
    } else {
        Err(ProtocolError::ReasonCountMismatch {
            packet_type,
            packet_id,
            expected,
            got,
        })
    }
}

fn validate_filter(filter: &str) -> Result<(), ClientError> {
    topic::validate_topic_filter(filter).map_err(|error| ClientError::InvalidTopicFilter {
        filter: filter.to_owned(),
        error,
    })
}
