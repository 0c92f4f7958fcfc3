//! The server session state machine.
//!
//! A [`ServerSession`] is the broker side of one client connection. It decodes
//! what the client sends, answers what needs no decision (PINGREQ), enforces
//! the protocol and the limits of [`ServerConfig`], and hands the rest to the
//! broker as [`Event`]s; the broker answers with commands. It does no IO and
//! reads no clock.
//!
//! # Driving a session
//!
//! Methods come in four groups: getters; `handle_*` inputs; commands; and
//! `poll_*` outputs.
//!
//! 1. Create the session with [`ServerSession::new`] when a transport is accepted.
//! 2. Feed every byte read to [`ServerSession::handle_input`]; call
//!    [`ServerSession::handle_timeout`] when [`ServerSession::poll_timeout`]'s
//!    instant is reached.
//! 3. Handle every [`ServerSession::poll_event`]: [`Event::Connect`] →
//!    [`accept`](ServerSession::accept) (after [`resume`](ServerSession::resume)
//!    for a resumed persistent session) or [`reject`](ServerSession::reject);
//!    [`Event::Publish`] at QoS 1 → [`puback`](ServerSession::puback);
//!    [`Event::Subscribe`] → [`suback`](ServerSession::suback);
//!    [`Event::Unsubscribe`] → [`unsuback`](ServerSession::unsuback).
//! 4. Deliver messages with [`send_publish`](ServerSession::send_publish).
//! 5. After every input or command, write every [`ServerSession::poll_transmit`]
//!    buffer and re-arm the timer. Once [`ServerSession::is_closed`], flush and
//!    close the transport, and persist [`take_pending_publishes`](ServerSession::take_pending_publishes)
//!    if the session outlives the connection.
//!
//! # AWS IoT Core behaviour
//!
//! Sources: the AWS IoT developer guide, "MQTT" page, section "AWS IoT
//! differences from MQTT specifications"
//! (<https://docs.aws.amazon.com/iot/latest/developerguide/mqtt.html>), the
//! message broker quotas
//! (<https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits>),
//! and `docs/aws-iot-core-behaviour.md` §1.2–1.3 in this repository.
//!
//! * QoS 2 PUBLISH: "AWS IoT Core doesn't support publishing or subscribing with
//!   QoS level 2. When QoS level 2 is requested, the message broker doesn't
//!   send a PUBACK or SUBACK." Users report that AWS closes the connection on a
//!   QoS 2 PUBLISH (shamblett/mqtt_client#232) and on a QoS 2 will
//!   (bertmelis/espMqttClient#116). This session closes the connection without
//!   PUBACK: MQTT 5 after DISCONNECT 0x9B (QoS not supported, in AWS's list of
//!   DISCONNECT codes); for a QoS 2 will, MQTT 5 gets CONNACK 0x9B and MQTT
//!   3.1.1 no CONNACK. Both are [`ProtocolError::QoSNotSupported`].
//! * QoS 2 SUBSCRIBE: no SUBACK, as documented ([`Qos2Subscribe::Refuse`]);
//!   that AWS grants QoS 1 instead is not confirmed by any source found.
//!   MQTT 3.1.1: the SUBSCRIBE is ignored; MQTT 5: DISCONNECT 0x9B.
//!   [`Qos2Subscribe::GrantQoS1`] gives the specification's behaviour.
//! * Keep-alive: "a client can request a keep-alive interval between 30—1200
//!   seconds"; 0 and values above 1200 get 1200, values below 30 get 30
//!   (clamped, not refused: AWS logs "The connection will be handled with the
//!   supported value closest to the request value"). The timer starts at
//!   CONNACK and the client is disconnected after 1.5 × keep-alive without a
//!   packet (MQTT 5: DISCONNECT 0x8D). MQTT 5 clients are told the value in
//!   the CONNACK Server Keep Alive whenever it differs from their request.
//! * Enhanced authentication: AWS lists the MQTT 5 AUTH packet as not
//!   supported (`docs/aws-iot-core-behaviour.md` §1.2). A CONNECT with an Authentication Method gets CONNACK 0x8C (bad
//!   authentication method) and is closed, as the specification allows for a
//!   method the server does not support [MQTT-4.12.0-1]; an AUTH packet later
//!   is a protocol error (DISCONNECT 0x82).
//!
//! # What the specification refuses before the broker decides
//!
//! * MQTT 3.1.1: an empty client id with CleanSession=0 gets CONNACK 0x02
//!   (identifier rejected) [MQTT-3.1.3-8]. An empty client id otherwise, in
//!   both versions, reaches the broker, which must assign one (MQTT 5: and
//!   return it in the CONNACK, see [`ServerSession::accept`]).
//! * A client PUBLISH with a Subscription Identifier [MQTT-3.3.4-6] and a
//!   SUBSCRIBE setting No Local on a shared subscription [MQTT-3.8.3-4] are
//!   protocol errors ([`ProtocolError::Forbidden`], DISCONNECT 0x82).

mod config;
mod error;
mod event;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

pub use crate::session::ProtocolError;
pub use config::{Qos2Subscribe, ServerConfig};
pub use error::ServerError;
pub use event::{DropReason, Event};

use crate::packet::{
    self, Ack, ConnAck, Connect, Disconnect, MAX_PACKET_SIZE, PacketType, Publish, SubAck,
    Subscribe, UnsubAck,
};
use crate::session::{InboundAliases, Outbox, PacketIds, PublishQueue, PushError};
use crate::topic::{SHARED_PREFIX, TopicName};
use crate::{DecodeError, Packet, Properties, ProtocolVersion, QoS, ReasonCode};

/// Where a server session stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerState {
    /// Waiting for the client's CONNECT.
    AwaitingConnect,
    /// CONNECT received ([`Event::Connect`]); waiting for `accept` or `reject`.
    AwaitingAccept,
    /// Accepted: packets flow.
    Connected,
    /// Over: the connection must be closed once the output is flushed.
    Closed,
}

impl ServerState {
    fn name(self) -> &'static str {
        match self {
            ServerState::AwaitingConnect => "awaiting CONNECT",
            ServerState::AwaitingAccept => "awaiting accept or reject",
            ServerState::Connected => "connected",
            ServerState::Closed => "closed",
        }
    }
}

/// What the session learned from the client's CONNECT.
#[derive(Debug)]
struct ClientInfo {
    /// MQTT 5: the broker must assign an id in CONNACK [MQTT-3.1.3-7].
    empty_client_id: bool,
    protocol: ProtocolVersion,
    requested_keep_alive: u16,
    keep_alive: u16,
    receive_maximum: u16,
    maximum_packet_size: usize,
    session_expiry_interval: u32,
}

/// The broker side of one client connection (see the [module documentation](self)).
#[derive(Debug)]
pub struct ServerSession {
    config: ServerConfig,
    state: ServerState,
    client: Option<ClientInfo>,
    created: Instant,
    last_received: Instant,
    inbound: BytesMut,
    outbox: Outbox,
    events: VecDeque<Event>,
    aliases: InboundAliases,
    /// Inbound QoS 1 publishes awaiting the broker's `puback`: identifier → count.
    unacked_inbound: HashMap<u16, usize>,
    unacked_inbound_total: usize,
    /// Subscribe requests awaiting `suback`: identifier → number of filters.
    pending_subacks: HashMap<u16, usize>,
    /// Unsubscribe requests awaiting `unsuback`: identifier → number of filters.
    pending_unsubacks: HashMap<u16, usize>,
    ids: PacketIds,
    deliveries: PublishQueue,
    protocol_error: Option<ProtocolError>,
}

impl ServerSession {
    /// A session for a transport accepted at `now`, waiting for CONNECT.
    pub fn new(config: ServerConfig, now: Instant) -> ServerSession {
        ServerSession {
            config,
            state: ServerState::AwaitingConnect,
            client: None,
            created: now,
            last_received: now,
            inbound: BytesMut::new(),
            outbox: Outbox::default(),
            events: VecDeque::new(),
            aliases: InboundAliases::default(),
            unacked_inbound: HashMap::new(),
            unacked_inbound_total: 0,
            pending_subacks: HashMap::new(),
            pending_unsubacks: HashMap::new(),
            ids: PacketIds::default(),
            deliveries: PublishQueue::default(),
            protocol_error: None,
        }
    }

    // ----- Getters -----

    /// The configuration the session was created with.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Where the session stands.
    pub fn state(&self) -> ServerState {
        self.state
    }

    /// True once the connection is over: flush [`poll_transmit`](Self::poll_transmit), then close it.
    pub fn is_closed(&self) -> bool {
        self.state == ServerState::Closed
    }

    /// The protocol version of the client's CONNECT, once received.
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.client.as_ref().map(|c| c.protocol)
    }

    /// The keep-alive in force in seconds (after clamping, see
    /// [`ServerConfig::effective_keep_alive`]), once CONNECT is received.
    pub fn keep_alive(&self) -> Option<u16> {
        self.client.as_ref().map(|c| c.keep_alive)
    }

    /// QoS 1 deliveries not yet acknowledged, in order: in flight first, then
    /// waiting. `dup` is true for those sent at least once.
    pub fn pending_publishes(&self) -> impl ExactSizeIterator<Item = &Publish> {
        self.deliveries.iter()
    }

    /// Number of QoS 1 deliveries sent and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.deliveries.in_flight()
    }

    /// The protocol violation by the client that closed the session, if one did.
    pub fn protocol_error(&self) -> Option<&ProtocolError> {
        self.protocol_error.as_ref()
    }

    // ----- Inputs -----

    /// Processes bytes read from the transport.
    ///
    /// On a protocol violation the session queues what the protocol asks for
    /// (MQTT 5: DISCONNECT with [`ProtocolError::reason_code`]; a CONNECT with
    /// an unsupported protocol level: CONNACK 0x01; a CONNECT the protocol
    /// refuses, see the [module documentation](self): CONNACK with the
    /// refusal), closes, and returns the error. Input after the session closed is ignored; input after CONNECT
    /// is held until [`accept`](Self::accept).
    pub fn handle_input(&mut self, data: &[u8], now: Instant) -> Result<(), ProtocolError> {
        if self.state == ServerState::Closed {
            return Ok(());
        }
        self.inbound.extend_from_slice(data);
        self.process_input(now)
    }

    /// Acts on the timer: closes the session when CONNECT did not arrive in
    /// time ([`Event::ConnectTimeout`]) or nothing was received for 1.5 × the
    /// keep-alive ([`Event::KeepAliveTimeout`]). Calling it early does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_none_or(|deadline| now < deadline) {
            return;
        }
        match self.state {
            ServerState::AwaitingConnect => {
                self.events.push_back(Event::ConnectTimeout);
                self.close();
            }
            ServerState::Connected => {
                self.events.push_back(Event::KeepAliveTimeout);
                self.close_with(ReasonCode::KEEP_ALIVE_TIMEOUT);
            }
            ServerState::AwaitingAccept | ServerState::Closed => {}
        }
    }

    // ----- Commands -----

    /// Accepts the connection: queues CONNACK, starts the keep-alive timer at
    /// `now`, sends the deliveries queued by [`resume`](Self::resume) and
    /// [`send_publish`](Self::send_publish), then processes the packets the
    /// client sent meanwhile (their events follow; a protocol violation among
    /// them closes the session, see [`protocol_error`](Self::protocol_error)).
    ///
    /// An MQTT 5 CONNACK carries `properties` plus, unless set there, Receive
    /// Maximum, Maximum Packet Size, Topic Alias Maximum and Maximum QoS (1)
    /// from the configuration, and Server Keep Alive when the keep-alive in
    /// force differs from the client's request. A Server Keep Alive set by the
    /// broker becomes the keep-alive in force. An MQTT 5 client that sent an
    /// empty client id must be told the one the broker assigned it:
    /// `properties` carries it as Assigned Client Identifier, or the call fails
    /// with [`ServerError::AssignedClientIdRequired`].
    pub fn accept(
        &mut self,
        session_present: bool,
        mut properties: Properties,
        now: Instant,
    ) -> Result<(), ServerError> {
        let client = self.expect_state(ServerState::AwaitingAccept, "accept")?;
        let (protocol, requested, mut keep_alive) = (
            client.protocol,
            client.requested_keep_alive,
            client.keep_alive,
        );
        if protocol == ProtocolVersion::V5
            && client.empty_client_id
            && properties.assigned_client_identifier.is_none()
        {
            return Err(ServerError::AssignedClientIdRequired);
        }
        if protocol == ProtocolVersion::V5 {
            let config = &self.config;
            properties
                .receive_maximum
                .get_or_insert(config.receive_maximum);
            if properties.maximum_packet_size.is_none()
                && config.max_incoming_packet_size < MAX_PACKET_SIZE
            {
                properties.maximum_packet_size =
                    u32::try_from(config.max_incoming_packet_size).ok();
            }
            properties
                .topic_alias_maximum
                .get_or_insert(config.topic_alias_maximum);
            properties.maximum_qos.get_or_insert(1);
            if keep_alive != requested {
                properties.server_keep_alive.get_or_insert(keep_alive);
            }
            keep_alive = properties.server_keep_alive.unwrap_or(keep_alive);
        }
        let alias_maximum = properties.topic_alias_maximum.unwrap_or(0);
        let connack = Packet::ConnAck(ConnAck {
            session_present,
            reason: ReasonCode::SUCCESS,
            properties: properties.into(),
        });
        self.outbox
            .push(&connack, protocol, MAX_PACKET_SIZE)
            .map_err(push_error)?;
        if let Some(client) = &mut self.client {
            client.keep_alive = keep_alive;
        }
        self.aliases = InboundAliases::new(alias_maximum);
        self.state = ServerState::Connected;
        self.last_received = now;
        self.send_deliveries();
        // A violation in the held input closes the session and is kept for `protocol_error`.
        let _ = self.process_input(now);
        Ok(())
    }

    /// Refuses the connection: queues CONNACK with `reason` (mapped to a 3.1.1
    /// return code for 3.1.1 clients) and closes.
    pub fn reject(
        &mut self,
        reason: ReasonCode,
        properties: Properties,
    ) -> Result<(), ServerError> {
        let protocol = self
            .expect_state(ServerState::AwaitingAccept, "reject")?
            .protocol;
        let reason = if reason.is_error() {
            reason
        } else {
            ReasonCode::UNSPECIFIED_ERROR
        };
        self.outbox
            .push(
                &Packet::ConnAck(ConnAck {
                    session_present: false,
                    reason,
                    properties: properties.into(),
                }),
                protocol,
                MAX_PACKET_SIZE,
            )
            .map_err(push_error)?;
        self.close();
        Ok(())
    }

    /// Answers a QoS 1 [`Event::Publish`]: PUBACK with `reason` (MQTT 5, e.g.
    /// 0x87 not authorized; a 3.1.1 PUBACK carries no reason).
    pub fn puback(&mut self, packet_id: u16, reason: ReasonCode) -> Result<(), ServerError> {
        let protocol = self
            .expect_state(ServerState::Connected, "puback")?
            .protocol;
        let Some(count) = self.unacked_inbound.get_mut(&packet_id) else {
            return Err(ServerError::UnknownPacketId {
                operation: "puback",
                packet_id,
            });
        };
        *count -= 1;
        if *count == 0 {
            self.unacked_inbound.remove(&packet_id);
        }
        self.unacked_inbound_total -= 1;
        self.push_internal(
            &Packet::PubAck(Ack {
                packet_id,
                reason,
                properties: Default::default(),
            }),
            protocol,
        );
        Ok(())
    }

    /// Answers an [`Event::Subscribe`]: SUBACK with one code per filter, in
    /// request order (granted QoS 0x00/0x01, or a failure ≥ 0x80).
    pub fn suback(&mut self, packet_id: u16, reasons: Vec<ReasonCode>) -> Result<(), ServerError> {
        let protocol = self
            .expect_state(ServerState::Connected, "suback")?
            .protocol;
        take_pending(
            &mut self.pending_subacks,
            "suback",
            packet_id,
            reasons.len(),
        )?;
        self.push_internal(
            &Packet::SubAck(SubAck {
                packet_id,
                reasons,
                properties: Default::default(),
            }),
            protocol,
        );
        Ok(())
    }

    /// Answers an [`Event::Unsubscribe`]: UNSUBACK. MQTT 5 needs one code per
    /// filter; for 3.1.1 `reasons` is ignored (pass an empty vector).
    pub fn unsuback(
        &mut self,
        packet_id: u16,
        reasons: Vec<ReasonCode>,
    ) -> Result<(), ServerError> {
        let protocol = self
            .expect_state(ServerState::Connected, "unsuback")?
            .protocol;
        let count = if protocol == ProtocolVersion::V5 {
            reasons.len()
        } else {
            self.pending_unsubacks.get(&packet_id).copied().unwrap_or(0)
        };
        take_pending(&mut self.pending_unsubacks, "unsuback", packet_id, count)?;
        let reasons = if protocol == ProtocolVersion::V5 {
            reasons
        } else {
            Vec::new()
        };
        self.push_internal(
            &Packet::UnsubAck(UnsubAck {
                packet_id,
                reasons,
                properties: Default::default(),
            }),
            protocol,
        );
        Ok(())
    }

    /// Delivers a message to the client. Returns the packet identifier
    /// assigned to a QoS 1 delivery ([`Event::Delivered`] carries it), `None`
    /// for QoS 0 or a dropped message.
    ///
    /// QoS 0 is sent only when connected, else dropped. QoS 1 (a QoS 2 message
    /// is delivered at QoS 1) is tracked until acknowledged: sent at once while
    /// fewer than `min(max_inflight, client Receive Maximum)` are in flight,
    /// else queued in order — also before `accept` and after close, so that
    /// [`take_pending_publishes`](Self::take_pending_publishes) can persist it.
    /// A message larger than the client's Maximum Packet Size is dropped with
    /// [`Event::PublishDropped`]. `dup`, `packet_id` and any Topic Alias
    /// property are set by the session.
    pub fn send_publish(&mut self, mut publish: Publish) -> Option<u16> {
        publish.dup = false;
        publish.properties.take_topic_alias();
        let protocol = self.protocol_version().unwrap_or(ProtocolVersion::V5);
        if publish.qos == QoS::AtMostOnce {
            publish.packet_id = None;
            if self.state == ServerState::Connected {
                let max = self.client_max_packet_size();
                if let Err(error) = self.outbox.push(&publish, protocol, max) {
                    self.report_drop(publish.topic, error);
                }
            }
            return None;
        }
        publish.qos = QoS::AtLeastOnce;
        publish.packet_id = Some(1);
        let size = publish.encoded_len(protocol);
        let max = self.client_max_packet_size();
        match size {
            Ok(size) if size > max => {
                self.report_drop(publish.topic, PushError::TooLarge { size, max });
                return None;
            }
            Err(error) => {
                self.report_drop(publish.topic, PushError::Encode(error));
                return None;
            }
            Ok(_) => {}
        }
        let Some(packet_id) = self.ids.allocate() else {
            self.events.push_back(Event::PublishDropped {
                topic: publish.topic,
                reason: DropReason::PacketIdsExhausted,
            });
            return None;
        };
        publish.packet_id = Some(packet_id);
        self.deliveries.push_back(publish);
        if self.state == ServerState::Connected {
            self.send_deliveries();
        }
        Some(packet_id)
    }

    /// Restores the unacknowledged deliveries of a resumed persistent session
    /// (as returned by [`take_pending_publishes`](Self::take_pending_publishes)
    /// on the previous connection). They go ahead of every delivery not yet
    /// sent and are sent after [`accept`](Self::accept), with DUP=1 for those
    /// whose `dup` is set (sent before). Each keeps its packet identifier
    /// unless that one is already in use; QoS 0 entries are ignored.
    pub fn resume(&mut self, unacked: Vec<Publish>) {
        let mut restored = Vec::with_capacity(unacked.len());
        for mut publish in unacked {
            if publish.qos == QoS::AtMostOnce {
                continue;
            }
            publish.qos = QoS::AtLeastOnce;
            let kept = publish.packet_id.filter(|&id| self.ids.reserve(id));
            let packet_id = match kept.or_else(|| self.ids.allocate()) {
                Some(id) => id,
                None => {
                    self.events.push_back(Event::PublishDropped {
                        topic: publish.topic,
                        reason: DropReason::PacketIdsExhausted,
                    });
                    continue;
                }
            };
            publish.packet_id = Some(packet_id);
            restored.push(publish);
        }
        self.deliveries.insert_before_waiting(restored);
        if self.state == ServerState::Connected {
            self.send_deliveries();
        }
    }

    /// Ends the connection from the server side: MQTT 5 queues DISCONNECT
    /// with `reason` (0x8E session taken over, 0x98 administrative action…);
    /// MQTT 3.1.1 has no server DISCONNECT, so nothing is sent. The session is
    /// closed; pending deliveries stay for [`take_pending_publishes`](Self::take_pending_publishes).
    pub fn disconnect(&mut self, reason: ReasonCode) {
        if self.state == ServerState::Connected {
            self.close_with(reason);
        } else {
            self.close();
        }
    }

    /// Removes and returns the QoS 1 deliveries not yet acknowledged, in
    /// order, for the broker to persist (`dup` set on those sent at least
    /// once; pass them to [`resume`](Self::resume) on the next connection).
    pub fn take_pending_publishes(&mut self) -> Vec<Publish> {
        let taken = self.deliveries.take_all();
        for publish in &taken {
            if let Some(id) = publish.packet_id {
                self.ids.release(id);
            }
        }
        taken
    }

    // ----- Outputs -----

    /// Bytes to write to the transport, all packets queued so far coalesced,
    /// or `None` when there is nothing to send.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.outbox.take()
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front();
        crate::session::release_if_empty(&mut self.events);
        event
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called:
    /// the connect deadline before CONNECT, 1.5 × keep-alive after the last
    /// packet once connected, `None` otherwise (or with keep-alive 0).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            ServerState::AwaitingConnect => Some(self.created + self.config.connect_timeout),
            ServerState::Connected => {
                let keep_alive = self.client.as_ref()?.keep_alive;
                (keep_alive != 0).then(|| {
                    self.last_received + Duration::from_millis(u64::from(keep_alive) * 1500)
                })
            }
            ServerState::AwaitingAccept | ServerState::Closed => None,
        }
    }

    // ----- Internals -----

    fn expect_state(
        &self,
        state: ServerState,
        operation: &'static str,
    ) -> Result<&ClientInfo, ServerError> {
        match &self.client {
            Some(client) if self.state == state => Ok(client),
            _ => Err(ServerError::InvalidState {
                operation,
                state: self.state.name(),
            }),
        }
    }

    fn client_max_packet_size(&self) -> usize {
        self.client
            .as_ref()
            .map_or(MAX_PACKET_SIZE, |c| c.maximum_packet_size)
    }

    fn report_drop(&mut self, topic: TopicName, error: PushError) {
        let reason = match error {
            PushError::TooLarge { size, max } => DropReason::TooLarge { size, max },
            PushError::Encode(error) => DropReason::Encode(error),
        };
        self.events
            .push_back(Event::PublishDropped { topic, reason });
    }

    fn push_internal(&mut self, packet: &Packet, protocol: ProtocolVersion) {
        // Only packets whose fields the session controls come here: a few
        // bytes long, they always encode.
        let _ = self.outbox.push(packet, protocol, MAX_PACKET_SIZE);
    }

    fn close(&mut self) {
        self.state = ServerState::Closed;
        self.inbound.clear();
        self.deliveries.connection_reset();
    }

    /// Closes, after an MQTT 5 DISCONNECT with `reason` when the client speaks MQTT 5.
    fn close_with(&mut self, reason: ReasonCode) {
        if let Some(ProtocolVersion::V5) = self.protocol_version() {
            self.push_internal(
                &Packet::Disconnect(Disconnect {
                    reason,
                    properties: Default::default(),
                }),
                ProtocolVersion::V5,
            );
        }
        self.close();
    }

    fn fail(&mut self, error: ProtocolError) -> ProtocolError {
        if self.state == ServerState::AwaitingConnect {
            if let ProtocolError::Decode(DecodeError::UnsupportedProtocolVersion(_)) = error {
                self.push_internal(
                    &Packet::ConnAck(ConnAck {
                        session_present: false,
                        reason: ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
                        properties: Default::default(),
                    }),
                    ProtocolVersion::V311,
                );
            }
            self.close();
        } else {
            self.close_with(error.reason_code());
        }
        self.protocol_error = Some(error.clone());
        error
    }

    /// Decodes and handles the buffered packets received at `now`.
    fn process_input(&mut self, now: Instant) -> Result<(), ProtocolError> {
        while matches!(
            self.state,
            ServerState::AwaitingConnect | ServerState::Connected
        ) {
            let protocol = self.protocol_version().unwrap_or(ProtocolVersion::V311);
            let packet = match packet::decode(
                &mut self.inbound,
                protocol,
                self.config.max_incoming_packet_size,
            ) {
                Ok(Some(packet)) => packet,
                Ok(None) => break,
                Err(error) => return Err(self.fail(ProtocolError::Decode(error))),
            };
            self.last_received = now;
            let result = if self.state == ServerState::AwaitingConnect {
                self.handle_first(packet)
            } else {
                self.handle_packet(packet)
            };
            if let Err(error) = result {
                return Err(self.fail(error));
            }
        }
        Ok(())
    }

    fn handle_first(&mut self, packet: Packet) -> Result<(), ProtocolError> {
        let Packet::Connect(connect) = packet else {
            return Err(ProtocolError::UnexpectedPacket {
                packet_type: packet.packet_type(),
                context: "before CONNECT",
            });
        };
        if let Some((error, answer)) = refuse_connect(&connect) {
            if answer {
                self.push_internal(
                    &Packet::ConnAck(ConnAck {
                        session_present: false,
                        reason: error.reason_code(),
                        properties: Default::default(),
                    }),
                    connect.protocol,
                );
            }
            self.close();
            return Err(error);
        }
        let properties = &connect.properties;
        self.client = Some(ClientInfo {
            empty_client_id: connect.client_id.is_empty(),
            protocol: connect.protocol,
            requested_keep_alive: connect.keep_alive,
            keep_alive: self.config.effective_keep_alive(connect.keep_alive),
            receive_maximum: properties.receive_maximum.unwrap_or(u16::MAX),
            maximum_packet_size: properties
                .maximum_packet_size
                .and_then(|max| usize::try_from(max).ok())
                .unwrap_or(MAX_PACKET_SIZE),
            session_expiry_interval: properties.session_expiry_interval.unwrap_or(0),
        });
        self.state = ServerState::AwaitingAccept;
        self.events.push_back(Event::Connect(connect));
        Ok(())
    }

    fn handle_packet(&mut self, packet: Packet) -> Result<(), ProtocolError> {
        match packet {
            Packet::Publish(publish) => self.handle_publish(publish),
            Packet::PubAck(ack) => {
                if self.deliveries.acknowledge(ack.packet_id).is_some() {
                    self.ids.release(ack.packet_id);
                    self.events.push_back(Event::Delivered {
                        packet_id: ack.packet_id,
                        reason: ack.reason,
                    });
                    self.send_deliveries();
                }
                // A PUBACK for nothing in flight (a duplicate) is ignored, as Mosquitto does.
                Ok(())
            }
            Packet::Subscribe(subscribe) => self.handle_subscribe(subscribe),
            Packet::Unsubscribe(unsubscribe) => {
                self.pending_unsubacks
                    .insert(unsubscribe.packet_id, unsubscribe.filters.len());
                self.events.push_back(Event::Unsubscribe(unsubscribe));
                Ok(())
            }
            Packet::PingReq => {
                let protocol = self.protocol_version().unwrap_or(ProtocolVersion::V311);
                self.push_internal(&Packet::PingResp, protocol);
                Ok(())
            }
            Packet::Disconnect(disconnect) => self.handle_disconnect(disconnect),
            other => Err(ProtocolError::UnexpectedPacket {
                packet_type: other.packet_type(),
                context: "on an established connection",
            }),
        }
    }

    fn handle_publish(&mut self, mut publish: Publish) -> Result<(), ProtocolError> {
        if !publish.properties.subscription_identifiers.is_empty() {
            // [MQTT-3.3.4-6]: only the server puts them in a PUBLISH.
            return Err(ProtocolError::Forbidden {
                packet_type: PacketType::Publish,
                rule: "carries a Subscription Identifier",
            });
        }
        self.aliases.resolve(&mut publish)?;
        match (publish.qos, publish.packet_id) {
            (QoS::ExactlyOnce, _) => return Err(ProtocolError::QoSNotSupported(QoS::ExactlyOnce)),
            (QoS::AtLeastOnce, Some(packet_id)) => {
                let v5 = self.protocol_version() == Some(ProtocolVersion::V5);
                if v5 && self.unacked_inbound_total >= usize::from(self.config.receive_maximum) {
                    return Err(ProtocolError::ReceiveMaximumExceeded {
                        max: self.config.receive_maximum,
                    });
                }
                *self.unacked_inbound.entry(packet_id).or_insert(0) += 1;
                self.unacked_inbound_total += 1;
            }
            _ => {}
        }
        self.events.push_back(Event::Publish(publish));
        Ok(())
    }

    fn handle_subscribe(&mut self, mut subscribe: Subscribe) -> Result<(), ProtocolError> {
        if subscribe
            .subscriptions
            .iter()
            .any(|s| s.options.no_local && s.filter.starts_with(SHARED_PREFIX))
        {
            // [MQTT-3.8.3-4]
            return Err(ProtocolError::Forbidden {
                packet_type: PacketType::Subscribe,
                rule: "sets No Local on a shared subscription",
            });
        }
        let asks_qos2 = subscribe
            .subscriptions
            .iter()
            .any(|s| s.options.qos == QoS::ExactlyOnce);
        if asks_qos2 {
            match self.config.qos2_subscribe {
                Qos2Subscribe::GrantQoS1 => {
                    for subscription in &mut subscribe.subscriptions {
                        subscription.options.qos = subscription.options.qos.min(QoS::AtLeastOnce);
                    }
                }
                Qos2Subscribe::Refuse if self.protocol_version() == Some(ProtocolVersion::V5) => {
                    return Err(ProtocolError::QoSNotSupported(QoS::ExactlyOnce));
                }
                Qos2Subscribe::Refuse => {
                    self.events.push_back(Event::SubscribeIgnored(subscribe));
                    return Ok(());
                }
            }
        }
        self.pending_subacks
            .insert(subscribe.packet_id, subscribe.subscriptions.len());
        self.events.push_back(Event::Subscribe(subscribe));
        Ok(())
    }

    fn handle_disconnect(&mut self, disconnect: Disconnect) -> Result<(), ProtocolError> {
        let connected_without_expiry = self
            .client
            .as_ref()
            .is_some_and(|c| c.session_expiry_interval == 0);
        if connected_without_expiry
            && disconnect
                .properties
                .session_expiry_interval
                .is_some_and(|s| s > 0)
        {
            return Err(ProtocolError::UnexpectedPacket {
                packet_type: PacketType::Disconnect,
                context: "setting a Session Expiry Interval after CONNECT set none",
            });
        }
        self.events.push_back(Event::Disconnected {
            reason: disconnect.reason,
            publish_will: disconnect.reason == ReasonCode::DISCONNECT_WITH_WILL,
            properties: disconnect.properties,
        });
        self.close();
        Ok(())
    }

    /// Sends waiting deliveries, in order, while the window has room.
    fn send_deliveries(&mut self) {
        let Some(client) = &self.client else {
            return;
        };
        let protocol = client.protocol;
        let max = client.maximum_packet_size;
        let window = usize::from(self.config.max_inflight.min(client.receive_maximum).max(1));
        while let Some(publish) = self.deliveries.next_to_send(window) {
            match self.outbox.push(publish, protocol, max) {
                Ok(()) => self.deliveries.mark_sent(),
                Err(error) => {
                    if let Some(dropped) = self.deliveries.drop_next() {
                        if let Some(id) = dropped.packet_id {
                            self.ids.release(id);
                        }
                        self.report_drop(dropped.topic, error);
                    }
                }
            }
        }
    }
}

/// The protocol's refusal of a CONNECT, if it must be refused before the
/// broker sees it, and whether a CONNACK carries the refusal:
///
/// * a QoS 2 will: MQTT 5 CONNACK 0x9B; MQTT 3.1.1 no CONNACK, as AWS IoT Core;
/// * MQTT 3.1.1, an empty client id with CleanSession=0: CONNACK return code
///   0x02, identifier rejected [MQTT-3.1.3-8];
/// * MQTT 5, an Authentication Method (enhanced authentication, which neither
///   this session nor AWS IoT Core supports): CONNACK 0x8C [MQTT-4.12.0-1].
fn refuse_connect(connect: &Connect) -> Option<(ProtocolError, bool)> {
    let v5 = connect.protocol == ProtocolVersion::V5;
    if connect
        .will
        .as_ref()
        .is_some_and(|will| will.qos == QoS::ExactlyOnce)
    {
        return Some((ProtocolError::QoSNotSupported(QoS::ExactlyOnce), v5));
    }
    if !v5 && connect.client_id.is_empty() && !connect.clean_start {
        return Some((ProtocolError::ClientIdRejected, true));
    }
    if let Some(method) = &connect.properties.authentication_method {
        return Some((
            ProtocolError::AuthenticationMethodNotSupported(method.clone()),
            true,
        ));
    }
    None
}

fn push_error(error: PushError) -> ServerError {
    match error {
        PushError::Encode(error) => ServerError::Encode(error),
        // Only CONNACK comes here, pushed with no size limit.
        PushError::TooLarge { size, .. } => {
            ServerError::Encode(crate::EncodeError::PacketTooLarge(size))
        }
    }
}

/// Removes the pending request `packet_id` from `pending`, checking that `count` codes answer it.
fn take_pending(
    pending: &mut HashMap<u16, usize>,
    operation: &'static str,
    packet_id: u16,
    count: usize,
) -> Result<(), ServerError> {
    let Some(&expected) = pending.get(&packet_id) else {
        return Err(ServerError::UnknownPacketId {
            operation,
            packet_id,
        });
    };
    if expected != count {
        return Err(ServerError::ReasonCountMismatch {
            operation,
            packet_id,
            expected,
            got: count,
        });
    }
    pending.remove(&packet_id);
    Ok(())
}
