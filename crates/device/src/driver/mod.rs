//! The connection task: one tokio task per client that owns the transport
//! and the sans-IO [`ClientSession`], and that the [`crate::Client`] handles
//! talk to over a channel.
//!
//! Its life is a loop of connection attempts: the connector's byte stream
//! (see [`crate::transport`]), CONNECT, then
//! serving the connection (reading, timers, commands) until it ends, then a
//! jittered backoff before the next attempt — forever, until the client is
//! closed. Requests made while not connected wait in the bounded offline
//! queue; QoS 1 publishes the session has sent stay in the session and are
//! resent after every reconnect. With an offline store, every QoS 1 publish
//! is also written there when accepted and marked done when it has an
//! outcome; the store's records are flushed once per batch, before the
//! batch's packets go to the writer.

mod alarm;
mod command;
mod router;
mod writer;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::BytesMut;
use iotcore_mqtt::client::{ClientConfig, ClientError, ClientSession, Event};
use iotcore_mqtt::packet::{Subscription as MqttSubscription, SubscriptionOptions};
use iotcore_mqtt::topic::{MatchMode, TopicName};
use iotcore_mqtt::{Properties, QoS, ReasonCode};
use tokio::io::{AsyncReadExt, ReadHalf};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, sleep_until};

use crate::backoff::Backoff;
use crate::builder::{Config, SessionMode};
use crate::error::{ConfigError, Error};
use crate::message::Message;
use crate::offline_queue::{OfflineQueue, publish_size};
use crate::offline_store::{AppendError, OfflineStore};
use crate::status::{ConnectionState, DisconnectReason, Operation, Sessions};
use crate::streams::Subscription;
use crate::transport::{self, Connected, Stream, io_error_reason};

use alarm::Alarm;
pub(crate) use command::{Command, Request, Responder};
pub(crate) use router::Listeners;
use router::Router;
use writer::Writer;

/// Stop taking commands while this many bytes wait to be written.
const MAX_WRITE_BACKLOG: u64 = 1024 * 1024;
/// Stop taking commands while the session holds this many QoS 1 publishes.
const MAX_SESSION_PUBLISHES: usize = 1000;
/// Commands taken per wake-up before the driver writes and reads again.
const COMMAND_BATCH: usize = 64;
/// A hang-up this soon after a publish or subscribe is reported as a
/// suspected policy denial.
const POLICY_DENIAL_WINDOW: Duration = Duration::from_secs(2);
/// How long a dying connection may take to flush its last packets, or to
/// explain why it died.
const GRACE: Duration = Duration::from_millis(500);
/// The read buffer's first capacity: room for every packet an idle
/// connection receives (CONNACK, PINGRESP, SUBACK, PUBACK).
const READ_BUFFER_MIN: usize = 512;
/// The most the read buffer grows to: one TLS record's plaintext.
const READ_BUFFER_MAX: usize = 16 * 1024;

/// The clock the session runs on: tokio's, so paused test time applies.
fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// The bookkeeping of the first connection, which `connect()` waits for.
struct Initial {
    respond: oneshot::Sender<Result<(), Error>>,
    started: Instant,
    deadline: Instant,
    failures: u32,
    max_attempts: u32,
    last_failure: Option<DisconnectReason>,
}

/// The last publish or subscribe sent, to explain a hang-up right after it.
struct LastRequest {
    operation: Operation,
    /// The publish's topic or the subscription's filter.
    topic: Arc<str>,
    at: Instant,
    packet_id: Option<u16>,
}

/// How one connection ended.
enum End {
    /// The client was closed.
    Closed,
    /// The connection (or attempt) failed; `uptime` is set when it had been accepted.
    Lost {
        reason: DisconnectReason,
        uptime: Option<Duration>,
    },
}

/// A QoS 1 publish handed to the session, waiting for its PUBACK.
struct SentPublish {
    topic: TopicName,
    respond: Responder<()>,
    /// Its sequence number in the offline store.
    stored: Option<u64>,
}

/// Requests answered by the broker later.
#[derive(Default)]
struct Pending {
    publishes: HashMap<u16, SentPublish>,
    subscribes: HashMap<u16, (String, Responder<Subscription>)>,
    unsubscribes: HashMap<u16, (String, Responder<()>)>,
    /// QoS 0 publishes handed to the session, not yet given a stream offset.
    qos0_unplaced: Vec<(TopicName, Responder<()>)>,
    /// QoS 0 publishes resolved once the writer has passed their offset.
    qos0_unwritten: VecDeque<(u64, TopicName, Responder<()>)>,
}

impl Pending {
    /// Fails every request waiting for the broker. Stored publishes stay in
    /// the offline store: the next client opened on it sends them.
    fn fail_all(&mut self, error: impl Fn() -> Error) {
        for (_, sent) in self.publishes.drain() {
            let _ = sent.respond.send(Err(error()));
        }
        for (_, (_, respond)) in self.subscribes.drain() {
            let _ = respond.send(Err(error()));
        }
        for (_, (_, respond)) in self.unsubscribes.drain() {
            let _ = respond.send(Err(error()));
        }
        self.fail_qos0(|_| error());
    }

    fn fail_qos0(&mut self, error: impl Fn(&str) -> Error) {
        for (topic, respond) in self.qos0_unplaced.drain(..) {
            let _ = respond.send(Err(error(&topic)));
        }
        for (_, topic, respond) in self.qos0_unwritten.drain(..) {
            let _ = respond.send(Err(error(&topic)));
        }
    }
}

/// The connection task.
pub(crate) struct Driver {
    config: Config,
    session: ClientSession,
    commands: mpsc::Receiver<Command>,
    state: watch::Sender<ConnectionState>,
    listeners: Arc<Listeners>,
    sessions: Arc<Sessions>,
    router: Router,
    offline: OfflineQueue<Request>,
    /// The durable offline queue, when configured (boxed: most clients have none).
    store: Option<Box<OfflineStore>>,
    /// The outcomes of the publishes recovered from the store at start,
    /// until `run` hands them to the task that logs them.
    recovered: Vec<oneshot::Receiver<Result<(), Error>>>,
    pending: Pending,
    backoff: Backoff,
    initial: Option<Initial>,
    /// Set by a close request: who to tell when done (none when every handle was dropped).
    closing: Option<Option<oneshot::Sender<()>>>,
    last_request: Option<LastRequest>,
    /// The client id [`crate::Client::client_id`] reports: set on every
    /// connection when the broker assigns one.
    client_id: Arc<RwLock<String>>,
}

impl Driver {
    pub(crate) fn new(
        mut config: Config,
        commands: mpsc::Receiver<Command>,
        state: watch::Sender<ConnectionState>,
        listeners: Arc<Listeners>,
        sessions: Arc<Sessions>,
        client_id: Arc<RwLock<String>>,
        ready: oneshot::Sender<Result<(), Error>>,
    ) -> Result<Driver, ConfigError> {
        let session = ClientSession::new(session_config(&config)).map_err(|e| {
            ConfigError::InvalidSetting {
                setting: "last_will",
                why: match e {
                    ClientError::QoS2NotSupported => "QoS 2 is not supported",
                    _ => "the will topic is invalid",
                },
            }
        })?;
        let mode = if config.limits.aws {
            MatchMode::Aws
        } else {
            MatchMode::Standard
        };
        let started = Instant::now();
        // What the store held is sent first, whatever the queue's bounds.
        let mut offline = OfflineQueue::new(config.offline_queue);
        let mut recovered = Vec::new();
        let store = config.offline_store.take().map(|(store, pending)| {
            for p in pending {
                let (respond, outcome) = oneshot::channel();
                recovered.push(outcome);
                let size = publish_size(&p.publish);
                let request = Request::Publish {
                    publish: Box::new(p.publish),
                    respond,
                    stored: Some(p.seq),
                };
                offline.restore(request, size);
            }
            Box::new(store)
        });
        Ok(Driver {
            router: Router::new(listeners.clone(), mode, config.stream_buffer),
            offline,
            store,
            recovered,
            backoff: Backoff::new(config.reconnect.clone()),
            initial: Some(Initial {
                respond: ready,
                started,
                deadline: started + config.initial_connect.timeout,
                failures: 0,
                max_attempts: config.initial_connect.max_attempts,
                last_failure: None,
            }),
            session,
            commands,
            state,
            listeners,
            sessions,
            pending: Pending::default(),
            closing: None,
            last_request: None,
            client_id,
            config,
        })
    }

    /// Runs until the client is closed (or its first connection fails for good).
    ///
    /// Boxed: an `async fn` keeps its by-value arguments apart from its
    /// locals, so a `Driver` moved in would take its ~2.5 KiB twice in every
    /// client's task for the client's whole life.
    pub(crate) async fn run(mut self: Box<Self>) {
        if !self.recovered.is_empty() {
            tokio::spawn(log_recovered(std::mem::take(&mut self.recovered)));
        }
        loop {
            let end = self.connection().await;
            let (reason, uptime) = match end {
                End::Closed => break,
                End::Lost { reason, uptime } => (reason, uptime),
            };
            tracing::info!(client_id = %self.config.client_id, %reason, "disconnected");
            if let Some(uptime) = uptime {
                self.backoff.connection_ended(uptime);
            }
            self.set_state(ConnectionState::Disconnected {
                reason: reason.clone(),
            });
            if self.initial_attempt_failed(reason) {
                break;
            }
            let (attempt, delay) = self.backoff.next_delay();
            self.set_state(ConnectionState::Reconnecting {
                attempt,
                next_delay: delay,
            });
            if !self.wait(delay).await {
                break;
            }
        }
        self.shut_down();
    }

    // ----- State -----

    fn set_state(&mut self, state: ConnectionState) {
        tracing::debug!(client_id = %self.config.client_id, %state, "connection state");
        self.listeners.publish_status(&state);
        self.state.send_replace(state);
    }

    /// Counts a failure of the first connection; true when `connect()` has
    /// been answered with an error and the driver must stop.
    fn initial_attempt_failed(&mut self, reason: DisconnectReason) -> bool {
        let Some(initial) = &mut self.initial else {
            return false;
        };
        initial.failures += 1;
        initial.last_failure = Some(reason.clone());
        let error = if reason.needs_configuration_change() {
            Error::connect_refused(reason)
        } else if initial.failures >= initial.max_attempts || Instant::now() >= initial.deadline {
            Error::connect_failed(initial.failures, initial.started.elapsed(), reason)
        } else {
            return false;
        };
        if let Some(initial) = self.initial.take() {
            let _ = initial.respond.send(Err(error));
        }
        true
    }

    /// Waits `delay` between attempts while serving commands. False when the
    /// driver must stop (closed, or the first connection's time is up).
    async fn wait(&mut self, delay: Duration) -> bool {
        let mut until = Instant::now() + delay;
        if let Some(initial) = &self.initial {
            until = until.min(initial.deadline);
        }
        loop {
            tokio::select! {
                _ = sleep_until(until) => break,
                command = self.commands.recv() => {
                    let close = self.on_command(command);
                    self.flush_store();
                    if close {
                        return false;
                    }
                }
            }
        }
        if let Some(initial) = self.initial.take_if(|i| Instant::now() >= i.deadline) {
            let reason = initial
                .last_failure
                .unwrap_or(DisconnectReason::ConnectTimeout {
                    after: self.config.initial_connect.timeout,
                });
            let error = Error::connect_failed(initial.failures, initial.started.elapsed(), reason);
            let _ = initial.respond.send(Err(error));
            return false;
        }
        true
    }

    /// Fails everything still waiting and ends every stream. The offline
    /// store keeps what is still pending.
    fn shut_down(&mut self) {
        self.flush_store();
        self.pending.fail_all(Error::closed);
        while let Some(request) = self.offline.pop() {
            request.fail(Error::closed());
        }
        self.commands.close();
        while let Ok(command) = self.commands.try_recv() {
            match command.into_request() {
                Ok(request) => request.fail(Error::closed()),
                Err(done) => {
                    let _ = done.send(());
                }
            }
        }
        if let Some(initial) = self.initial.take() {
            let _ = initial.respond.send(Err(Error::closed()));
        }
        self.set_state(ConnectionState::Closed);
        self.router.close();
        self.listeners.close();
        if let Some(Some(done)) = self.closing.take() {
            let _ = done.send(());
        }
        tracing::info!(client_id = %self.config.client_id, "client closed");
    }

    // ----- Commands -----

    /// Handles a command; true when it asks to close.
    fn on_command(&mut self, command: Option<Command>) -> bool {
        match command.map(Command::into_request) {
            Some(Ok(request)) => {
                self.submit(request);
                false
            }
            Some(Err(done)) => {
                self.closing = Some(Some(done));
                true
            }
            None => {
                self.closing = Some(None);
                true
            }
        }
    }

    fn submit(&mut self, request: Request) {
        if self.closing.is_some() {
            request.fail(Error::closed());
            return;
        }
        let Some(request) = self.store_publish(request) else {
            return;
        };
        if self.session.is_connected() {
            self.submit_to_session(request);
        } else if matches!(&request, Request::Publish { publish, .. } if publish.qos == QoS::AtMostOnce)
        {
            let error = Error::offline(request.topic());
            request.fail(error);
        } else {
            let size = request.size();
            if let Err((request, full)) = self.offline.push(request, size) {
                if let Request::Publish {
                    stored: Some(seq), ..
                } = &request
                {
                    self.forget_stored(Some(*seq));
                }
                let error = Error::offline_queue_full(request.topic(), full);
                request.fail(error);
            }
        }
    }

    /// Writes a QoS 1 publish to the offline store, if there is one and it
    /// is not there yet. `None` when the store refused it (the request has
    /// been answered).
    fn store_publish(&mut self, request: Request) -> Option<Request> {
        let Some(store) = &mut self.store else {
            return Some(request);
        };
        let Request::Publish {
            publish,
            respond,
            stored: None,
        } = request
        else {
            return Some(request);
        };
        if publish.qos == QoS::AtMostOnce {
            return Some(Request::Publish {
                publish,
                respond,
                stored: None,
            });
        }
        match store.append(&publish) {
            Ok(seq) => Some(Request::Publish {
                publish,
                respond,
                stored: Some(seq),
            }),
            Err(AppendError::Full(full)) => {
                let _ = respond.send(Err(Error::offline_queue_full(&publish.topic, full)));
                None
            }
            Err(AppendError::Unencodable(e)) => {
                let _ = respond.send(Err(Error::unsendable(&publish.topic, e)));
                None
            }
        }
    }

    /// Marks a stored publish done: it has had its outcome.
    fn forget_stored(&mut self, stored: Option<u64>) {
        if let (Some(store), Some(seq)) = (&mut self.store, stored) {
            store.ack(seq);
        }
    }

    /// Writes the offline store's buffered records to its file.
    fn flush_store(&mut self) {
        let Some(store) = &mut self.store else {
            return;
        };
        if let Err(e) = store.flush() {
            tracing::error!(
                target: "iotcore::offline_store",
                client_id = %self.config.client_id,
                error = %e,
                "cannot write to the offline store: its records stay in memory and are written                  at the next attempt"
            );
        }
    }

    fn submit_to_session(&mut self, request: Request) {
        let at = Instant::now();
        match request {
            Request::Publish {
                publish,
                respond,
                stored,
            } => {
                let topic = publish.topic.clone();
                match self.session.publish(*publish, now()) {
                    Ok(Some(packet_id)) => {
                        let sent = SentPublish {
                            topic: topic.clone(),
                            respond,
                            stored,
                        };
                        self.pending.publishes.insert(packet_id, sent);
                        self.note_request(Operation::Publish, topic.into(), at, Some(packet_id));
                    }
                    Ok(None) => {
                        self.pending.qos0_unplaced.push((topic.clone(), respond));
                        self.note_request(Operation::Publish, topic.into(), at, None);
                    }
                    Err(ClientError::NotConnected) => {
                        self.forget_stored(stored);
                        let _ = respond.send(Err(Error::offline(&topic)));
                    }
                    Err(e) => {
                        self.forget_stored(stored);
                        let _ = respond.send(Err(Error::unsendable(&topic, e)));
                    }
                }
            }
            Request::Subscribe {
                filter,
                qos,
                respond,
            } => {
                let subscription = MqttSubscription {
                    filter: filter.clone(),
                    options: SubscriptionOptions {
                        qos,
                        ..SubscriptionOptions::default()
                    },
                };
                match self
                    .session
                    .subscribe(vec![subscription], Properties::default(), now())
                {
                    Ok(packet_id) => {
                        self.pending
                            .subscribes
                            .insert(packet_id, (filter.clone(), respond));
                        self.note_request(Operation::Subscribe, filter.into(), at, Some(packet_id));
                    }
                    Err(e) => {
                        let _ = respond.send(Err(Error::unsendable(&filter, e)));
                    }
                }
            }
            Request::Unsubscribe { filter, respond } => {
                match self
                    .session
                    .unsubscribe(vec![filter.clone()], Properties::default(), now())
                {
                    Ok(packet_id) => {
                        self.pending
                            .unsubscribes
                            .insert(packet_id, (filter, respond));
                    }
                    Err(e) => {
                        let _ = respond.send(Err(Error::unsendable(&filter, e)));
                    }
                }
            }
        }
    }

    fn note_request(
        &mut self,
        operation: Operation,
        topic: Arc<str>,
        at: Instant,
        packet_id: Option<u16>,
    ) {
        self.last_request = Some(LastRequest {
            operation,
            topic,
            at,
            packet_id,
        });
    }

    /// True when the driver may take more commands now: the writer and the
    /// session are not too far behind.
    fn accepts_commands(&self, writer: &Writer) -> bool {
        self.closing.is_none()
            && writer.backlog() < MAX_WRITE_BACKLOG
            && self.session.pending_publishes().len() < MAX_SESSION_PUBLISHES
    }

    // ----- One connection -----

    /// One connection attempt, and serving the connection if it succeeds.
    async fn connection(&mut self) -> End {
        self.set_state(ConnectionState::Connecting);
        let mut deadline = Instant::now() + self.config.connect_timeout;
        if let Some(initial) = &self.initial {
            deadline = deadline.min(initial.deadline);
        }
        // Boxed: the handshake's state (~1.3 KiB, a rustls connection
        // inline) is needed only while connecting, not in every idle task.
        let connector = self.config.connector.clone();
        let mut connect = Box::pin(async move { connector.connect().await });
        let Connected {
            stream,
            username,
            password,
        } = loop {
            tokio::select! {
                result = &mut connect => match result {
                    Ok(connected) => break connected,
                    Err(reason) => return End::Lost { reason, uptime: None },
                },
                _ = sleep_until(deadline) => {
                    return End::Lost { reason: self.connect_timeout(), uptime: None };
                }
                command = self.commands.recv() => {
                    let close = self.on_command(command);
                    self.flush_store();
                    if close {
                        return End::Closed;
                    }
                }
            }
        };
        drop(connect);
        self.session.set_login(username, password);
        // Split here rather than in `serve`: a stream passed by value
        // would stay in the task's state (twice) while the connection lasts.
        let (reader, writer) = tokio::io::split(stream);
        self.serve(reader, Writer::new(writer), deadline).await
    }

    fn connect_timeout(&self) -> DisconnectReason {
        DisconnectReason::ConnectTimeout {
            after: self.config.connect_timeout,
        }
    }

    /// Runs MQTT on an established transport until the connection ends.
    async fn serve(
        &mut self,
        mut reader: ReadHalf<Stream>,
        mut writer: Writer,
        connect_deadline: Instant,
    ) -> End {
        self.last_request = None;
        if let Err(e) = self.session.connect(now()) {
            return End::Lost {
                reason: DisconnectReason::Protocol {
                    detail: format!("cannot encode CONNECT: {e}"),
                },
                uptime: None,
            };
        }
        let mut connected_at: Option<Instant> = None;
        let mut close_deadline: Option<Instant> = None;
        let mut alarm = Alarm::new();
        let mut buf = BytesMut::with_capacity(READ_BUFFER_MIN);
        // How the connection ends, and whether the writer may flush first.
        let (reason, graceful) = loop {
            if let Some(reason) = self.process_events(&mut connected_at) {
                break (reason, true);
            }
            // What the store is to hold is on file before it goes out.
            self.flush_store();
            self.transmit(&mut writer);
            self.resolve_written(writer.flushed());

            if self.closing.is_some() {
                if connected_at.is_none() {
                    self.session.connection_lost(now());
                    return End::Closed;
                }
                let deadline = *close_deadline
                    .get_or_insert_with(|| Instant::now() + self.config.close_timeout);
                if self.session.pending_publishes().next().is_none() || Instant::now() >= deadline {
                    return self.disconnect(reader, writer, deadline).await;
                }
            }

            let timer = self.session.poll_timeout().map(Instant::from_std);
            let connecting = connected_at.is_none().then_some(connect_deadline);
            alarm.set(
                [timer, connecting, close_deadline]
                    .into_iter()
                    .flatten()
                    .min(),
            );
            let accepting = self.accepts_commands(&writer);
            tokio::select! {
                biased;
                read = reader.read_buf(&mut buf) => match read {
                    Ok(0) => break (self.hangup_reason(connected_at.is_some()), false),
                    Ok(_) => {
                        let result = self.session.handle_input(&buf, now());
                        recycle_read_buffer(&mut buf);
                        if let Err(e) = result {
                            tracing::warn!(error = %e, "protocol violation by the server");
                            // Keep events that came before the bad packet.
                            let _ = self.process_events(&mut connected_at);
                            break (DisconnectReason::Protocol { detail: e.to_string() }, true);
                        }
                    }
                    Err(e) => break (self.read_error_reason(&e, connected_at.is_some()), false),
                },
                written = writer.write_some(), if writer.is_busy() => {
                    if let Err(e) = written {
                        let failed = io_error_reason(&e);
                        let reason = self
                            .explain_failure(&mut reader, &mut buf, connected_at.is_some(), failed)
                            .await;
                        break (reason, false);
                    }
                }
                // The close deadline needs no action here: the loop's top checks it.
                _ = alarm.ring(), if alarm.is_armed() => {
                    let now_at = Instant::now();
                    if connecting.is_some_and(|at| at <= now_at) {
                        break (self.connect_timeout(), false);
                    }
                    if timer.is_some_and(|at| at <= now_at) {
                        self.session.handle_timeout(now());
                    }
                }
                command = self.commands.recv(), if accepting => {
                    self.on_command(command);
                    for _ in 1..COMMAND_BATCH {
                        if !self.accepts_commands(&writer) {
                            break;
                        }
                        match self.commands.try_recv() {
                            Ok(command) => { self.on_command(Some(command)); }
                            Err(mpsc::error::TryRecvError::Empty) => break,
                            Err(mpsc::error::TryRecvError::Disconnected) => {
                                self.on_command(None);
                                break;
                            }
                        }
                    }
                }
            }
        };
        if graceful {
            self.transmit(&mut writer);
            writer.finish_within(reader, GRACE).await;
        }
        self.session.connection_lost(now());
        self.pending
            .fail_qos0(|topic| Error::connection_lost(topic, reason.clone()));
        End::Lost {
            reason,
            uptime: connected_at.map(|at| at.elapsed()),
        }
    }

    /// The orderly end of a connection on close: DISCONNECT, then close the transport.
    async fn disconnect(
        &mut self,
        reader: ReadHalf<Stream>,
        mut writer: Writer,
        deadline: Instant,
    ) -> End {
        self.session.disconnect(ReasonCode::SUCCESS);
        self.transmit(&mut writer);
        let grace = deadline
            .saturating_duration_since(Instant::now())
            .max(GRACE);
        writer.finish_within(reader, grace).await;
        self.session.connection_lost(now());
        End::Closed
    }

    /// Hands the session's outgoing bytes to the writer.
    fn transmit(&mut self, writer: &mut Writer) {
        while let Some(bytes) = self.session.poll_transmit() {
            writer.send(bytes);
        }
        let end = writer.queued();
        for (topic, respond) in self.pending.qos0_unplaced.drain(..) {
            self.pending.qos0_unwritten.push_back((end, topic, respond));
        }
    }

    /// Answers QoS 0 publishes whose bytes have been written.
    fn resolve_written(&mut self, written: u64) {
        while self
            .pending
            .qos0_unwritten
            .front()
            .is_some_and(|(end, _, _)| *end <= written)
        {
            if let Some((_, _, respond)) = self.pending.qos0_unwritten.pop_front() {
                let _ = respond.send(Ok(()));
            }
        }
    }

    /// Handles the session's events; returns the reason when one ends the connection.
    fn process_events(&mut self, connected_at: &mut Option<Instant>) -> Option<DisconnectReason> {
        let mut end = None;
        while let Some(event) = self.session.poll_event() {
            let reason = match event {
                Event::Connected {
                    session_present, ..
                } => {
                    *connected_at = Some(Instant::now());
                    self.on_connected(session_present);
                    None
                }
                Event::ConnectionRefused { reason, .. } => {
                    Some(transport::refusal(self.config.connector.door(), reason))
                }
                Event::PublishAcked {
                    packet_id, reason, ..
                } => {
                    self.on_publish_acked(packet_id, reason);
                    None
                }
                Event::PublishDropped {
                    packet_id,
                    size,
                    max,
                } => {
                    if let Some(sent) = self.pending.publishes.remove(&packet_id) {
                        self.forget_stored(sent.stored);
                        let detail = format!(
                            "its {size} bytes exceed the server's maximum packet size of {max} bytes"
                        );
                        let _ = sent
                            .respond
                            .send(Err(Error::unsendable(&sent.topic, detail)));
                    }
                    None
                }
                Event::Message(publish) => {
                    self.router.deliver(&Message::new(publish));
                    None
                }
                Event::Subscribed {
                    packet_id, reasons, ..
                } => {
                    self.on_subscribed(packet_id, &reasons);
                    None
                }
                Event::Unsubscribed {
                    packet_id, reasons, ..
                } => {
                    self.on_unsubscribed(packet_id, &reasons);
                    None
                }
                Event::Resubscribing { filters, .. } => {
                    tracing::info!(
                        ?filters,
                        "the broker forgot the session: restoring subscriptions"
                    );
                    None
                }
                Event::Resubscribed {
                    filters, reasons, ..
                } => {
                    for (filter, reason) in filters.iter().zip(&reasons) {
                        if reason.is_error() {
                            tracing::warn!(%filter, %reason, "the broker refused to restore a subscription: its streams end");
                            self.router.remove(filter);
                        }
                    }
                    None
                }
                Event::ServerDisconnect { reason, properties } => {
                    Some(DisconnectReason::ServerDisconnect {
                        reason,
                        reason_string: properties.into_inner().reason_string,
                    })
                }
                Event::KeepAliveTimeout => Some(if connected_at.is_some() {
                    DisconnectReason::KeepAliveTimeout {
                        keep_alive: self.session.keep_alive(),
                    }
                } else {
                    self.connect_timeout()
                }),
                other => {
                    tracing::debug!(event = ?other, "session event ignored");
                    None
                }
            };
            if end.is_none() {
                end = reason;
            }
        }
        end
    }

    fn on_connected(&mut self, session_present: bool) {
        if self.config.client_id.is_empty() {
            if let Some(assigned) = self.session.assigned_client_id() {
                *self.client_id.write().unwrap_or_else(|p| p.into_inner()) = assigned.to_owned();
            }
        }
        tracing::info!(
            client_id = %self.config.client_id,
            assigned_client_id = self.session.assigned_client_id(),
            session_present,
            "connected"
        );
        // Before `connect()` returns and before the state change, so that
        // whoever they wake sees the connection's number.
        self.sessions.connected(session_present);
        if let Some(initial) = self.initial.take() {
            let _ = initial.respond.send(Ok(()));
        }
        self.set_state(ConnectionState::Connected { session_present });
        // The session resends unacknowledged publishes first: if the server
        // hangs up right away, the first of them is the likely culprit (a
        // publish the policy denies is resent, and denied, on every reconnect).
        let resent = self
            .session
            .pending_publishes()
            .next()
            .map(|p| (p.topic.clone(), p.packet_id));
        while let Some(request) = self.offline.pop() {
            self.submit_to_session(request);
        }
        if let Some((topic, packet_id)) = resent {
            self.note_request(Operation::Publish, topic.into(), Instant::now(), packet_id);
        }
    }

    fn on_publish_acked(&mut self, packet_id: u16, reason: ReasonCode) {
        self.clear_last_request(packet_id);
        let Some(sent) = self.pending.publishes.remove(&packet_id) else {
            return;
        };
        self.forget_stored(sent.stored);
        let result = if reason.is_error() {
            Err(Error::rejected("publish", &sent.topic, reason))
        } else {
            Ok(())
        };
        let _ = sent.respond.send(result);
    }

    fn on_subscribed(&mut self, packet_id: u16, reasons: &[ReasonCode]) {
        self.clear_last_request(packet_id);
        let Some((filter, respond)) = self.pending.subscribes.remove(&packet_id) else {
            return;
        };
        let reason = reasons
            .first()
            .copied()
            .unwrap_or(ReasonCode::UNSPECIFIED_ERROR);
        let result = if reason.is_error() {
            Err(Error::rejected("subscribe", &filter, reason))
        } else {
            Ok(self.router.add(filter))
        };
        let _ = respond.send(result);
    }

    fn on_unsubscribed(&mut self, packet_id: u16, reasons: &[ReasonCode]) {
        let Some((filter, respond)) = self.pending.unsubscribes.remove(&packet_id) else {
            return;
        };
        let result = match reasons.first() {
            Some(reason) if reason.is_error() => {
                Err(Error::rejected("unsubscribe", &filter, *reason))
            }
            _ => {
                self.router.remove(&filter);
                Ok(())
            }
        };
        let _ = respond.send(result);
    }

    fn clear_last_request(&mut self, packet_id: u16) {
        if self
            .last_request
            .as_ref()
            .is_some_and(|r| r.packet_id == Some(packet_id))
        {
            self.last_request = None;
        }
    }

    // ----- Why a connection ended -----

    /// The server closed the connection.
    fn hangup_reason(&self, connected: bool) -> DisconnectReason {
        if !connected {
            return transport::closed_before_connack(
                self.config.connector.door(),
                &self.config.client_id,
            );
        }
        match &self.last_request {
            Some(last) if last.at.elapsed() <= POLICY_DENIAL_WINDOW => {
                DisconnectReason::PolicyDenialSuspected {
                    operation: last.operation,
                    topic: last.topic.to_string(),
                }
            }
            _ => DisconnectReason::ServerClosed,
        }
    }

    fn read_error_reason(&self, e: &io::Error, connected: bool) -> DisconnectReason {
        let reason = io_error_reason(e);
        let abrupt_close = matches!(
            e.kind(),
            io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::BrokenPipe
        );
        if abrupt_close && matches!(reason, DisconnectReason::Network { .. }) {
            self.hangup_reason(connected)
        } else {
            reason
        }
    }

    /// A write failed: the read side usually knows better why (a TLS alert
    /// refusing our certificate, or the server's close), so give it a moment.
    async fn explain_failure(
        &self,
        reader: &mut ReadHalf<Stream>,
        buf: &mut BytesMut,
        connected: bool,
        write_failure: DisconnectReason,
    ) -> DisconnectReason {
        let read = tokio::time::timeout(GRACE, async {
            loop {
                buf.clear();
                match reader.read_buf(buf).await {
                    Ok(0) => return Ok(()),
                    Ok(_) => continue,
                    Err(e) => return Err(e),
                }
            }
        })
        .await;
        match read {
            Ok(Ok(())) => self.hangup_reason(connected),
            Ok(Err(e)) => self.read_error_reason(&e, connected),
            Err(_) => write_failure,
        }
    }
}

/// Logs the outcome of the publishes recovered from the offline store at
/// start: their `publish` futures ended with the process that made them.
async fn log_recovered(outcomes: Vec<oneshot::Receiver<Result<(), Error>>>) {
    let total = outcomes.len();
    let mut refused = 0usize;
    let mut unresolved = 0usize;
    let mut outcomes: futures_util::stream::FuturesUnordered<_> = outcomes.into_iter().collect();
    while let Some(outcome) = futures_util::StreamExt::next(&mut outcomes).await {
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.kind() == crate::ErrorKind::Closed => unresolved += 1,
            Ok(Err(e)) => {
                refused += 1;
                tracing::warn!(target: "iotcore::offline_store", error = %e, "a publish recovered from the offline store failed");
            }
            Err(_) => unresolved += 1,
        }
    }
    tracing::info!(
        target: "iotcore::offline_store",
        total,
        acknowledged = total - refused - unresolved,
        refused,
        still_stored = unresolved,
        "the publishes recovered from the offline store are done"
    );
}

/// Empties the read buffer once its bytes are handled, doubling its capacity
/// (up to [`READ_BUFFER_MAX`]) when they filled it: a busy connection soon
/// reads whole TLS records at a time, while an idle one (most of a fleet)
/// keeps [`READ_BUFFER_MIN`] bytes instead of 16 KiB.
fn recycle_read_buffer(buf: &mut BytesMut) {
    let capacity = buf.capacity();
    let filled = buf.len() >= capacity;
    buf.clear();
    if filled && capacity < READ_BUFFER_MAX {
        buf.reserve((capacity * 2).min(READ_BUFFER_MAX));
    }
}

/// The sans-IO session's configuration.
fn session_config(config: &Config) -> ClientConfig {
    let mut session = ClientConfig::new(config.client_id.clone());
    // AWS IoT Core refuses the `$GEN/…` ids it assigns when a client sends them.
    session.reuse_assigned_client_id = !config.limits.aws;
    session.protocol = config.protocol;
    session.keep_alive = config.keep_alive;
    session.retry_unacknowledged = config.retry_unacknowledged;
    session.will = config.mqtt_will();
    match config.session {
        SessionMode::Clean => session.clean_start = true,
        SessionMode::Persistent { expiry } => {
            session.clean_start = false;
            session.session_expiry_interval =
                Some(u32::try_from(expiry.as_secs()).unwrap_or(u32::MAX));
        }
    }
    session
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_read_buffer_grows_only_when_a_read_fills_it_and_stops_at_16_kib() {
        let mut buf = BytesMut::with_capacity(READ_BUFFER_MIN);
        buf.extend_from_slice(&[1; 100]);
        recycle_read_buffer(&mut buf);
        assert!(buf.is_empty());
        assert_eq!(buf.capacity(), READ_BUFFER_MIN);

        let mut capacities = vec![buf.capacity()];
        for _ in 0..10 {
            buf.resize(buf.capacity(), 1);
            recycle_read_buffer(&mut buf);
            assert!(buf.is_empty());
            capacities.push(buf.capacity());
        }
        assert_eq!(
            capacities[..7],
            [512, 1024, 2048, 4096, 8192, 16384, 16384],
            "{capacities:?}"
        );
        assert!(capacities.iter().all(|&c| c <= READ_BUFFER_MAX));
    }
}
