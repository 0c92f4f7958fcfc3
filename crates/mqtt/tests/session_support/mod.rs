//! Shared harness of the session tests: a fake clock, raw packet helpers for
//! scripting one side by hand, and a [`Pair`] wiring a client session to a
//! server session through byte buffers.
#![allow(dead_code)] // Each test binary uses a different part of the harness.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use iotcore_mqtt::client::{self, ClientConfig, ClientSession};
use iotcore_mqtt::packet::{
    Ack, ConnAck, MAX_PACKET_SIZE, Publish, Subscription, SubscriptionOptions, decode,
};
use iotcore_mqtt::server::{self, ServerConfig, ServerSession};
use iotcore_mqtt::{Packet, Properties, ProtocolVersion, QoS, ReasonCode};

/// Both protocol versions, for tests that must hold on each.
pub const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::V311, ProtocolVersion::V5];

/// A deterministic clock: a fixed base instant plus the time advanced so far.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    now: Instant,
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            now: Instant::now(),
        }
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    pub fn advance(&mut self, by: Duration) -> Instant {
        self.now += by;
        self.now
    }

    /// Moves to `instant` (never backwards).
    pub fn advance_to(&mut self, instant: Instant) -> Instant {
        self.now = self.now.max(instant);
        self.now
    }
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The wire form of `packet`.
pub fn encode(packet: &Packet, version: ProtocolVersion) -> Bytes {
    let mut out = BytesMut::new();
    packet
        .encode(version, &mut out)
        .expect("test packet encodes");
    out.freeze()
}

/// Every packet in `bytes`, which must hold whole packets only.
#[track_caller]
pub fn decode_all(bytes: &[u8], version: ProtocolVersion) -> Vec<Packet> {
    let mut buf = BytesMut::from(bytes);
    let mut packets = Vec::new();
    while let Some(packet) =
        decode(&mut buf, version, MAX_PACKET_SIZE).expect("session output decodes")
    {
        packets.push(packet);
    }
    assert!(buf.is_empty(), "trailing partial packet in session output");
    packets
}

pub fn publish(topic: &str, qos: QoS, payload: &'static [u8]) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id: None,
        payload: Bytes::from_static(payload),
        properties: Default::default(),
    }
}

pub fn subscription(filter: &str, qos: QoS) -> Subscription {
    Subscription {
        filter: filter.to_owned(),
        options: SubscriptionOptions {
            qos,
            ..SubscriptionOptions::default()
        },
    }
}

pub fn connack(session_present: bool) -> Packet {
    connack_with(session_present, Properties::default())
}

pub fn connack_with(session_present: bool, properties: Properties) -> Packet {
    Packet::ConnAck(ConnAck {
        session_present,
        reason: ReasonCode::SUCCESS,
        properties: properties.into(),
    })
}

pub fn puback(packet_id: u16) -> Packet {
    Packet::PubAck(Ack {
        packet_id,
        reason: ReasonCode::SUCCESS,
        properties: Default::default(),
    })
}

pub fn client_config(version: ProtocolVersion) -> ClientConfig {
    let mut config = ClientConfig::new("thing-1");
    config.protocol = version;
    config.keep_alive = 60;
    config
}

/// A client session scripted by hand: the test plays the server with raw packets.
pub struct ScriptedClient {
    pub session: ClientSession,
    pub version: ProtocolVersion,
    pub clock: Clock,
}

impl ScriptedClient {
    pub fn new(config: ClientConfig) -> ScriptedClient {
        let version = config.protocol;
        ScriptedClient {
            session: ClientSession::new(config).expect("valid config"),
            version,
            clock: Clock::new(),
        }
    }

    /// Packets the client has queued.
    pub fn sent(&mut self) -> Vec<Packet> {
        let mut packets = Vec::new();
        while let Some(bytes) = self.session.poll_transmit() {
            packets.extend(decode_all(&bytes, self.version));
        }
        packets
    }

    pub fn events(&mut self) -> Vec<client::Event> {
        std::iter::from_fn(|| self.session.poll_event()).collect()
    }

    /// Feeds `packet` from the "server".
    #[track_caller]
    pub fn receive(&mut self, packet: Packet) {
        let bytes = encode(&packet, self.version);
        self.session
            .handle_input(&bytes, self.clock.now())
            .expect("client accepts the packet");
    }

    /// connect() + CONNACK; returns the packets sent after the CONNACK.
    #[track_caller]
    pub fn connect(&mut self, session_present: bool) -> Vec<Packet> {
        self.connect_with(connack(session_present))
    }

    #[track_caller]
    pub fn connect_with(&mut self, connack: Packet) -> Vec<Packet> {
        self.session.connect(self.clock.now()).expect("connect");
        let sent = self.sent();
        assert!(matches!(sent.as_slice(), [Packet::Connect(_)]), "{sent:?}");
        self.receive(connack);
        self.sent()
    }

    pub fn publish(&mut self, topic: &str, qos: QoS) -> Option<u16> {
        self.session
            .publish(publish(topic, qos, b"payload"), self.clock.now())
            .expect("publish accepted")
    }

    /// Runs the timer to its next deadline.
    pub fn fire_timer(&mut self) -> Option<Instant> {
        let deadline = self.session.poll_timeout()?;
        self.clock.advance_to(deadline);
        self.session.handle_timeout(deadline);
        Some(deadline)
    }
}

/// A server session scripted by hand: the test plays the client with raw packets.
pub struct ScriptedServer {
    pub session: ServerSession,
    pub version: ProtocolVersion,
    pub clock: Clock,
}

impl ScriptedServer {
    pub fn new(config: ServerConfig, version: ProtocolVersion) -> ScriptedServer {
        let clock = Clock::new();
        ScriptedServer {
            session: ServerSession::new(config, clock.now()),
            version,
            clock,
        }
    }

    pub fn sent(&mut self) -> Vec<Packet> {
        let mut packets = Vec::new();
        while let Some(bytes) = self.session.poll_transmit() {
            packets.extend(decode_all(&bytes, self.version));
        }
        packets
    }

    pub fn events(&mut self) -> Vec<server::Event> {
        std::iter::from_fn(|| self.session.poll_event()).collect()
    }

    /// Feeds `packet` from the "client", returning the session's verdict.
    pub fn receive(&mut self, packet: Packet) -> Result<(), iotcore_mqtt::server::ProtocolError> {
        let bytes = encode(&packet, self.version);
        self.session.handle_input(&bytes, self.clock.now())
    }
}

/// A client session and a server session joined by in-memory byte pipes,
/// with a minimal broker answering the server's events.
pub struct Pair {
    pub client: ClientSession,
    pub server: ServerSession,
    pub server_config: ServerConfig,
    pub clock: Clock,
    /// When false, bytes written by the client are lost (a half-open link).
    pub client_to_server: bool,
    /// When false, bytes written by the server are lost.
    pub server_to_client: bool,
    /// What the broker answers to CONNECT.
    pub session_present: bool,
    /// Whether the broker answers events by itself (accept, puback, suback…).
    pub auto_broker: bool,
    pub client_events: Vec<client::Event>,
    pub server_events: Vec<server::Event>,
    /// Every packet the client wrote, in order (across connections).
    pub client_wire: Vec<Packet>,
    pub version: ProtocolVersion,
}

impl Pair {
    pub fn new(client_config: ClientConfig, server_config: ServerConfig) -> Pair {
        let clock = Clock::new();
        let version = client_config.protocol;
        Pair {
            client: ClientSession::new(client_config).expect("valid config"),
            server: ServerSession::new(server_config.clone(), clock.now()),
            server_config,
            clock,
            client_to_server: true,
            server_to_client: true,
            session_present: false,
            auto_broker: true,
            client_events: Vec::new(),
            server_events: Vec::new(),
            client_wire: Vec::new(),
            version,
        }
    }

    /// connect() on a fresh server session, then drive until quiet.
    pub fn connect(&mut self) {
        self.server = ServerSession::new(self.server_config.clone(), self.clock.now());
        self.client.connect(self.clock.now()).expect("connect");
        self.drive();
    }

    /// The transport breaks: the client learns it, the server side is dropped.
    pub fn break_connection(&mut self) {
        self.client.connection_lost(self.clock.now());
        self.server.disconnect(ReasonCode::SUCCESS);
        while self.server.poll_transmit().is_some() {}
    }

    /// Moves bytes and answers broker events until nothing moves.
    pub fn drive(&mut self) {
        loop {
            let mut moved = false;
            while let Some(bytes) = self.client.poll_transmit() {
                moved = true;
                self.client_wire.extend(decode_all(&bytes, self.version));
                if self.client_to_server {
                    let _ = self.server.handle_input(&bytes, self.clock.now());
                }
            }
            while let Some(event) = self.server.poll_event() {
                moved = true;
                if self.auto_broker {
                    self.answer(&event);
                }
                self.server_events.push(event);
            }
            while let Some(bytes) = self.server.poll_transmit() {
                moved = true;
                if self.server_to_client {
                    let _ = self.client.handle_input(&bytes, self.clock.now());
                }
            }
            while let Some(event) = self.client.poll_event() {
                moved = true;
                self.client_events.push(event);
            }
            if !moved {
                return;
            }
        }
    }

    fn answer(&mut self, event: &server::Event) {
        let now = self.clock.now();
        let result = match event {
            server::Event::Connect(_) => {
                self.server
                    .accept(self.session_present, Properties::default(), now)
            }
            server::Event::Publish(p) => match p.packet_id {
                Some(id) if p.qos == QoS::AtLeastOnce => {
                    self.server.puback(id, ReasonCode::SUCCESS)
                }
                _ => Ok(()),
            },
            server::Event::Subscribe(s) => {
                let reasons = s
                    .subscriptions
                    .iter()
                    .map(|s| ReasonCode(s.options.qos as u8))
                    .collect();
                self.server.suback(s.packet_id, reasons)
            }
            server::Event::Unsubscribe(u) => {
                let reasons = vec![ReasonCode::SUCCESS; u.filters.len()];
                self.server.unsuback(u.packet_id, reasons)
            }
            _ => Ok(()),
        };
        result.expect("broker answer accepted");
    }

    /// Advances the clock to the earliest timer of either side, fires it, and drives.
    pub fn run_timers_until(&mut self, end: Instant) {
        loop {
            let next = [self.client.poll_timeout(), self.server.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(at) if at <= end => {
                    self.clock.advance_to(at);
                    self.client.handle_timeout(at);
                    self.server.handle_timeout(at);
                    self.drive();
                }
                _ => {
                    self.clock.advance_to(end);
                    return;
                }
            }
        }
    }

    pub fn take_client_events(&mut self) -> Vec<client::Event> {
        std::mem::take(&mut self.client_events)
    }

    pub fn take_server_events(&mut self) -> Vec<server::Event> {
        std::mem::take(&mut self.server_events)
    }
}
