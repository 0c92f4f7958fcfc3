//! The qualifying server: mutual TLS with the qualification CA, then MQTT
//! spoken packet by packet with the iotcore-mqtt codec, as each case's
//! [`Faults`] say (CONNACK withheld, PUBACK never sent, …), writing down what
//! the device does. One case at a time: [`Qualifier::run`] serves every
//! connection the device opens until the case is graded or its time is over.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use iotcore_model::jobs::JobsTopic;
use iotcore_model::shadow::{StoredShadow, client_token_of};
use iotcore_model::topics::{ShadowOperation, ShadowTopic, ShadowTopicKind, shadow_topic_prefix};
use iotcore_mqtt::packet::{self, Ack, ConnAck, Disconnect, Publish, SubAck, UnsubAck};
use iotcore_mqtt::topic::{MatchMode, matches};
use iotcore_mqtt::{Packet, ProtocolVersion, QoS, ReasonCode};
use rand::Rng;
use rustls::RootCertStore;
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use super::case::{
    CaseId, ConnackPlan, Faults, LARGE_CERTIFICATE_BYTES, SMALL_PAYLOAD, SessionPlan,
};
use super::grade::{Outcome, final_grade, grade};
use super::jobs::{CaseJobs, default_document};
use super::long_duration::{LongDuration, run_long_duration};
use super::transcript::{Observation, Seen};
use crate::clock::Clock;
use crate::pki::{Pki, PkiError, ServerCertificateFlaw};
use crate::policy::PolicyDocument;
use crate::shadow::ShadowKey;
use crate::shadow::answer::answer;
use crate::tls::{ServerCertificate, TlsSetupError};

/// Why the qualifying server could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QualifierError {
    /// Its TLS configuration.
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    /// Issuing its certificates.
    #[error(transparent)]
    Pki(#[from] PkiError),
}

/// How long a connection lets through, after CONNACK, before the server cuts
/// it in the cases that cut connections.
const CUT_AFTER: Duration = Duration::from_millis(200);
/// How long the TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A case's graded run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    /// The case.
    pub case: CaseId,
    /// Its verdict and evidence.
    pub outcome: Outcome,
    /// How long it ran.
    pub duration: Duration,
    /// Connections the device opened during it.
    pub connections: u32,
}

/// The qualifying server, listening.
#[derive(Debug)]
pub struct Qualifier {
    listener: TcpListener,
    /// The qualification CA and its server identity.
    pki: Arc<Pki>,
    /// The document of the job `Job_Execution` queues.
    job_document: serde_json::Value,
    /// The policies attached to the device's certificate, by name, for
    /// `Security_Device_Policies`.
    policies: Vec<(String, PolicyDocument)>,
    /// The settings of `MQTT_Long_Duration`.
    long_duration: LongDuration,
    /// The right server certificate's configuration.
    tls: Arc<ServerConfig>,
    /// The flawed certificates' configurations, for the TLS cases.
    flawed: HashMap<ServerCertificateFlaw, Arc<ServerConfig>>,
    /// What the case's shadow and Jobs services read the time from.
    clock: Clock,
}

/// The flawed certificates the TLS cases present.
const FLAWS: [ServerCertificateFlaw; 4] = [
    ServerCertificateFlaw::Large {
        min_bytes: LARGE_CERTIFICATE_BYTES,
    },
    ServerCertificateFlaw::UnknownCa,
    ServerCertificateFlaw::IncorrectSubjectName,
    ServerCertificateFlaw::Expired,
];

impl Qualifier {
    /// Serves on `listener` with `pki`'s server certificate (and, in the TLS
    /// cases, flawed ones it issues), requiring client certificates signed by
    /// its CA.
    pub fn new(listener: TcpListener, pki: Arc<Pki>) -> Result<Qualifier, QualifierError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = RootCertStore::empty();
        roots
            .add(pki.ca_der().clone())
            .map_err(|e| TlsSetupError::TrustAnchor(e.to_string()))?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .build()
                .map_err(|e| TlsSetupError::TrustAnchor(e.to_string()))?;
        let config = |(chain, key): (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)| {
            let mut config = ServerConfig::builder_with_provider(Arc::clone(&provider))
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
                .with_client_cert_verifier(Arc::clone(&verifier))
                .with_cert_resolver(Arc::new(ServerCertificate::new(chain, key)?));
            config.alpn_protocols = vec![b"x-amzn-mqtt-ca".to_vec()];
            Ok::<_, TlsSetupError>(Arc::new(config))
        };
        let tls = config((pki.server_cert_chain(), pki.server_private_key()))?;
        let mut flawed = HashMap::new();
        for flaw in FLAWS {
            flawed.insert(flaw, config(pki.issue_flawed_server_certificate(flaw)?)?);
        }
        Ok(Qualifier {
            listener,
            pki,
            job_document: default_document(),
            policies: Vec::new(),
            long_duration: LongDuration::default(),
            tls,
            flawed,
            clock: Clock::system(),
        })
    }

    /// The clock the cases' shadow and Jobs services timestamp their
    /// replies with (the system's by default).
    pub fn with_clock(mut self, clock: Clock) -> Qualifier {
        self.clock = clock;
        self
    }

    /// The document of the job `Job_Execution` queues for the device (by
    /// default a small one any job handler can run).
    pub fn with_job_document(mut self, document: serde_json::Value) -> Qualifier {
        self.job_document = document;
        self
    }

    /// The policies attached to the device's certificate (name, document),
    /// which `Security_Device_Policies` checks.
    pub fn with_policies(mut self, policies: Vec<(String, PolicyDocument)>) -> Qualifier {
        self.policies = policies;
        self
    }

    /// The settings of `MQTT_Long_Duration` (Device Advisor's defaults
    /// otherwise: a 15 s retry window, the server down for an hour, …).
    pub fn with_long_duration(mut self, settings: LongDuration) -> Qualifier {
        self.long_duration = settings;
        self
    }

    /// The address devices connect to.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Runs `case` until it is graded or `limit` passes, serving every
    /// connection the device opens meanwhile. `MQTT_Long_Duration` gives
    /// `limit` to each of its scenarios, besides their own durations.
    pub async fn run(&self, case: CaseId, limit: Duration) -> CaseResult {
        let mut run = CaseRun::new(self, case.faults());
        if case == CaseId::MqttLongDuration {
            let outcome = run_long_duration(&mut run, &self.long_duration, limit).await;
            return run.finish(case, outcome).await;
        }
        if case.faults().queue_job {
            match CaseJobs::new(
                Arc::clone(&self.pki),
                self.job_document.clone(),
                self.clock.clone(),
            ) {
                Ok(jobs) => run.state().jobs = Some(jobs),
                Err(e) => tracing::error!("qualify: no Jobs service for {case}: {e}"),
            }
        }
        if case == CaseId::SecurityDevicePolicies {
            run.transcript.extend(self.policy_observations());
        }
        let deadline = run.start + limit;
        let outcome = loop {
            if let Some(outcome) = grade(case, &run.transcript, false) {
                break outcome;
            }
            if !run.step(deadline).await {
                break final_grade(case, &run.transcript);
            }
        };
        run.finish(case, outcome).await
    }
}

/// One case being run: the connections the device opened, what they saw,
/// and the faults they play, which a long case changes as it goes.
pub(super) struct CaseRun<'q> {
    qualifier: &'q Qualifier,
    pub(super) start: Instant,
    tx: mpsc::UnboundedSender<Observation>,
    rx: mpsc::UnboundedReceiver<Observation>,
    commands: broadcast::Sender<Command>,
    state: Arc<Mutex<CaseState>>,
    pub(super) transcript: Vec<Observation>,
    connections: u32,
    tasks: tokio::task::JoinSet<()>,
}

/// What the case tells the connections open now.
#[derive(Debug, Clone, Copy)]
pub(super) enum Command {
    /// Send a QoS 1 message of this many bytes to the device's first filter.
    SendToSubscriber(usize),
}

impl<'q> CaseRun<'q> {
    pub(super) fn new(qualifier: &'q Qualifier, faults: Faults) -> CaseRun<'q> {
        let (tx, rx) = mpsc::unbounded_channel();
        let (commands, _) = broadcast::channel(16);
        let state = CaseState {
            faults,
            ..CaseState::default()
        };
        CaseRun {
            qualifier,
            start: Instant::now(),
            tx,
            rx,
            commands,
            state: Arc::new(Mutex::new(state)),
            transcript: Vec::new(),
            connections: 0,
            tasks: tokio::task::JoinSet::new(),
        }
    }

    pub(super) fn state(&self) -> MutexGuard<'_, CaseState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The faults connections play from now on.
    pub(super) fn set_faults(&self, faults: Faults) {
        self.state().faults = faults;
    }

    /// Tells the connections open now.
    pub(super) fn command(&self, command: Command) {
        let _ = self.commands.send(command);
    }

    /// Drops every connection open now, without a word.
    pub(super) fn cut(&mut self) {
        self.tasks.abort_all();
    }

    /// Serves until something is seen (`true`) or `deadline` passes (`false`).
    pub(super) async fn step(&mut self, deadline: Instant) -> bool {
        tokio::select! {
            accepted = self.qualifier.listener.accept() => {
                if let Ok((tcp, _)) = accepted {
                    self.accept(tcp);
                }
                true
            }
            Some(observation) = self.rx.recv() => {
                self.transcript.push(observation);
                true
            }
            () = tokio::time::sleep_until(deadline) => false,
        }
    }

    fn accept(&mut self, tcp: TcpStream) {
        self.connections += 1;
        let link = Link {
            connection: self.connections,
            start: self.start,
            clock: self.qualifier.clock.clone(),
            tx: self.tx.clone(),
            commands: self.commands.subscribe(),
            state: Arc::clone(&self.state),
        };
        let faults = self.state().faults;
        if faults.refuse_connections {
            // The server is down: the connection ends before TLS.
            link.saw(Seen::Refused);
            return;
        }
        let tls = faults
            .certificate
            .and_then(|flaw| self.qualifier.flawed.get(&flaw))
            .unwrap_or(&self.qualifier.tls);
        self.tasks.spawn(serve(Arc::clone(tls), tcp, link));
    }

    /// Ends the case: its connections are closed.
    pub(super) async fn finish(mut self, case: CaseId, outcome: Outcome) -> CaseResult {
        self.tasks.shutdown().await;
        CaseResult {
            case,
            outcome,
            duration: self.start.elapsed(),
            connections: self.connections,
        }
    }
}

impl Qualifier {
    /// What `Security_Device_Policies` sees: each policy's wildcards.
    fn policy_observations(&self) -> Vec<Observation> {
        let observe = |seen| Observation {
            at: Duration::ZERO,
            connection: 0,
            seen,
        };
        if self.policies.is_empty() {
            return vec![observe(Seen::NoPolicyGiven)];
        }
        self.policies
            .iter()
            .map(|(name, document)| {
                let (scoped, wide): (Vec<_>, Vec<_>) = document
                    .granted_wildcards()
                    .into_iter()
                    .partition(|w| w.scoped_to_device);
                observe(Seen::PolicyChecked {
                    name: name.clone(),
                    wildcards: wide.iter().map(ToString::to_string).collect(),
                    scoped_wildcards: scoped.iter().map(ToString::to_string).collect(),
                })
            })
            .collect()
    }
}

/// What the connections of one case share.
#[derive(Debug, Default)]
pub(super) struct CaseState {
    /// What the server withholds or does now.
    faults: Faults,
    /// CONNECTs seen so far.
    connects: usize,
    /// The first filter the device subscribed to (the persistent-session cases).
    pub(super) filter: Option<String>,
    /// The device's shadows, as the case's shadow service keeps them.
    shadows: HashMap<ShadowKey, StoredShadow>,
    /// The shadow case's desired state was set.
    desired_set: bool,
    /// The Jobs service of the case that queues a job.
    pub(super) jobs: Option<CaseJobs>,
}

/// One connection's way back to its case.
struct Link {
    connection: u32,
    start: Instant,
    clock: Clock,
    tx: mpsc::UnboundedSender<Observation>,
    commands: broadcast::Receiver<Command>,
    state: Arc<Mutex<CaseState>>,
}

impl Link {
    fn saw(&self, seen: Seen) {
        let _ = self.tx.send(Observation {
            at: self.start.elapsed(),
            connection: self.connection,
            seen,
        });
    }

    fn state(&self) -> MutexGuard<'_, CaseState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The time in unix seconds, as the shadow service's timestamps take it.
    fn unix_now(&self) -> u64 {
        crate::shadow::unix_now(&self.clock)
    }

    /// What the server withholds or does now.
    fn faults(&self) -> Faults {
        self.state().faults
    }
}

/// Serves one connection of the case.
async fn serve(tls: Arc<ServerConfig>, tcp: TcpStream, link: Link) {
    let handshake = async {
        let start =
            tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp).await?;
        let suites = start
            .client_hello()
            .cipher_suites()
            .iter()
            .map(|suite| format!("{suite:?}"))
            .collect();
        link.saw(Seen::Hello {
            cipher_suites: suites,
        });
        start.into_stream(tls).await
    };
    let mut stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return link.saw(Seen::HandshakeFailed(e.to_string())),
        Err(_) => return link.saw(Seen::HandshakeFailed("timed out".into())),
    };
    link.saw(Seen::Handshake);
    let mut session = Session {
        link,
        protocol: ProtocolVersion::V311,
        next_id: 0,
        out: BytesMut::new(),
        cut_at: None,
        client_id: String::new(),
        filters: Vec::new(),
        releases: Vec::new(),
    };
    let mut buf = BytesMut::with_capacity(4096);
    let by_server = loop {
        loop {
            match packet::decode(&mut buf, session.protocol, packet::MAX_PACKET_SIZE) {
                Ok(Some(packet)) => session.on_packet(packet),
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!("qualify: malformed packet from the device: {e}");
                    let _ = stream.shutdown().await;
                    return session.link.saw(Seen::Closed { by_server: true });
                }
            }
        }
        if !session.out.is_empty() {
            let out = session.out.split().freeze();
            if stream.write_all(&out).await.is_err() {
                break false;
            }
        }
        let cut = sleep_until_some(session.cut_at);
        let release = sleep_until_some(session.releases.first().map(|(at, _)| *at));
        tokio::select! {
            read = stream.read_buf(&mut buf) => match read {
                Ok(0) | Err(_) => break false,
                Ok(_) => {}
            },
            Ok(command) = session.link.commands.recv() => session.on_command(command),
            () = release => session.release_due(),
            () = cut => {
                // MQTT 3.1.1 has no server DISCONNECT: the connection just closes.
                let v5 = session.protocol == ProtocolVersion::V5;
                if v5 && session.link.faults().connack == ConnackPlan::DisconnectAfter {
                    session.send(Packet::Disconnect(Disconnect {
                        reason: ReasonCode::SERVER_SHUTTING_DOWN,
                        ..Disconnect::default()
                    }));
                    let out = session.out.split().freeze();
                    let _ = stream.write_all(&out).await;
                }
                let _ = stream.shutdown().await;
                break true;
            }
        }
    };
    session.link.saw(Seen::Closed { by_server });
}

/// Sleeps until `at`, or forever.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The MQTT side of one connection.
struct Session {
    link: Link,
    protocol: ProtocolVersion,
    next_id: u16,
    out: BytesMut,
    /// When the server cuts the connection (the cases that cut connections).
    cut_at: Option<Instant>,
    /// The device's client id (its thing name).
    client_id: String,
    /// The filters it subscribed to on this connection: replies of the
    /// shadow service go to it when one matches.
    filters: Vec<String>,
    /// Acknowledgements withheld for now, with when they go out, soonest first.
    releases: Vec<(Instant, Packet)>,
}

impl Session {
    fn send(&mut self, packet: Packet) {
        if let Err(e) = packet.encode(self.protocol, &mut self.out) {
            tracing::warn!("qualify: cannot encode {packet:?}: {e}");
        }
    }

    fn on_packet(&mut self, packet: Packet) {
        let faults = self.link.faults();
        match packet {
            Packet::Connect(connect) => {
                self.protocol = connect.protocol;
                self.client_id.clone_from(&connect.client_id);
                self.link.saw(Seen::Connect {
                    client_id: connect.client_id.clone(),
                    clean_start: connect.clean_start,
                    keep_alive: connect.keep_alive,
                    protocol: connect.protocol,
                });
                let connects = {
                    let mut state = self.link.state();
                    state.connects += 1;
                    state.connects
                };
                let answer = match faults.connack {
                    ConnackPlan::WithholdCycles { withheld } => connects % (withheld + 1) == 0,
                    _ => true,
                };
                if !answer {
                    return self.link.saw(Seen::ConnAckWithheld);
                }
                // The persistent-session cases: the session of the first
                // connection is kept, or gone, when the device comes back.
                let resumed = connects > 1
                    && !connect.clean_start
                    && faults.session == Some(SessionPlan::Kept);
                self.send(Packet::ConnAck(ConnAck::new(resumed, ReasonCode::SUCCESS)));
                self.link.saw(Seen::ConnAckSent);
                if faults.connack != ConnackPlan::Always {
                    self.cut_at = Some(Instant::now() + CUT_AFTER);
                }
                if let Some((lo, hi)) = faults.cut_randomly {
                    let after = rand::rng().random_range(lo..=hi);
                    self.cut_at = Some(Instant::now() + after);
                }
                let stored = self.link.state().filter.clone();
                if let (true, Some(filter)) = (resumed, stored) {
                    self.send_message(&filter, SMALL_PAYLOAD);
                }
            }
            Packet::Publish(publish) => {
                self.link.saw(Seen::Publish {
                    topic: publish.topic.to_string(),
                    qos: publish.qos as u8,
                    packet_id: publish.packet_id,
                    dup: publish.dup,
                });
                if let Some(packet_id) = publish.packet_id {
                    self.acknowledge(Packet::PubAck(Ack::new(packet_id)), faults.withhold_puback);
                }
                if let Ok(topic) = ShadowTopic::parse(&publish.topic) {
                    if topic.kind() == ShadowTopicKind::Request {
                        self.shadow_request(&topic, &publish.payload);
                    }
                } else if JobsTopic::is_reserved(&publish.topic) {
                    self.jobs_request(&publish.topic, &publish.payload);
                }
            }
            Packet::Subscribe(subscribe) => {
                let filters: Vec<String> = subscribe
                    .subscriptions
                    .iter()
                    .map(|s| s.filter.clone())
                    .collect();
                self.link.saw(Seen::Subscribe {
                    packet_id: subscribe.packet_id,
                    filters: filters.clone(),
                });
                let granted = subscribe
                    .subscriptions
                    .iter()
                    .map(|s| ReasonCode(s.options.qos.min(QoS::AtLeastOnce) as u8))
                    .collect();
                self.acknowledge(
                    Packet::SubAck(SubAck::new(subscribe.packet_id, granted)),
                    faults.withhold_suback,
                );
                if let (Some(size), Some(filter)) = (faults.send_to_subscriber, filters.first()) {
                    self.send_message(filter, size);
                }
                self.filters.extend(filters.iter().cloned());
                if faults.set_desired {
                    self.set_desired();
                }
                if filters
                    .iter()
                    .any(|filter| CaseJobs::listens(&self.client_id, filter))
                {
                    self.queue_job();
                }
                if let Some(filter) = filters.first() {
                    let first = {
                        let mut state = self.link.state();
                        let first = state.filter.is_none();
                        state.filter.get_or_insert_with(|| filter.clone());
                        first
                    };
                    if first && faults.session.is_some() {
                        // Cut the connection: the session is what the device comes back to.
                        self.cut_at = Some(Instant::now() + CUT_AFTER);
                    }
                }
            }
            Packet::Unsubscribe(unsubscribe) => {
                let reasons = vec![ReasonCode::SUCCESS; unsubscribe.filters.len()];
                self.send(Packet::UnsubAck(UnsubAck::new(
                    unsubscribe.packet_id,
                    reasons,
                )));
            }
            Packet::PubAck(ack) => self.link.saw(Seen::PubAck {
                packet_id: ack.packet_id,
            }),
            Packet::PingReq => {
                self.link.saw(Seen::PingReq);
                if !faults.withhold_pingresp {
                    self.send(Packet::PingResp);
                }
            }
            Packet::Disconnect(_) => self.link.saw(Seen::Disconnect),
            other => tracing::debug!("qualify: ignored {other:?}"),
        }
    }
}

impl Session {
    /// Sends `ack`, or withholds it when `withhold`: for good, or until the
    /// case's release time or until the device sends its packet again.
    fn acknowledge(&mut self, ack: Packet, withhold: bool) {
        if let Some(at) = self.releases.iter().position(|(_, held)| *held == ack) {
            // The device sent it again within the window: answered now.
            self.releases.remove(at);
            return self.send(ack);
        }
        match (withhold, self.link.faults().release_after) {
            (false, _) => self.send(ack),
            (true, None) => {}
            (true, Some(after)) => {
                self.releases.push((Instant::now() + after, ack));
                self.releases.sort_by_key(|(at, _)| *at);
            }
        }
    }

    /// Sends the withheld acknowledgements whose time came.
    fn release_due(&mut self) {
        let now = Instant::now();
        while let Some((at, _)) = self.releases.first() {
            if *at > now {
                break;
            }
            let (_, ack) = self.releases.remove(0);
            self.send(ack);
        }
    }

    /// Does what the case asks of every open connection.
    fn on_command(&mut self, command: Command) {
        match command {
            Command::SendToSubscriber(size) => {
                let filter = self
                    .link
                    .state()
                    .filter
                    .clone()
                    .or_else(|| self.filters.first().cloned());
                if let Some(filter) = filter {
                    self.send_message(&filter, size);
                }
            }
        }
    }

    /// Answers a request to the Device Shadow service as it would, from the
    /// shadows the case keeps in memory.
    fn shadow_request(&mut self, topic: &ShadowTopic<'_>, payload: &[u8]) {
        self.link.saw(Seen::ShadowRequest {
            operation: topic.operation().as_str().to_owned(),
            request: serde_json::from_slice(payload).unwrap_or(serde_json::Value::Null),
        });
        let key = ShadowKey::of(topic);
        let now = self.link.unix_now();
        let replies = {
            let mut state = self.link.state();
            let shadow = state.shadows.entry(key.clone()).or_default();
            match answer(shadow, &key, topic.operation(), payload, now) {
                Ok(served) => served.replies(),
                Err(error) => {
                    let reply = error.to_response(client_token_of(payload), now);
                    vec![(
                        ShadowTopicKind::Rejected,
                        serde_json::to_value(reply).unwrap_or_default(),
                    )]
                }
            }
        };
        self.deliver(&key, topic.operation(), replies);
    }

    /// Answers a request to the Jobs service as it would, queueing the
    /// case's job first if it is not yet.
    fn jobs_request(&mut self, topic: &str, payload: &[u8]) {
        if self.link.state().jobs.is_none() {
            return;
        }
        self.queue_job();
        let (served, notifications) = {
            let mut state = self.link.state();
            let Some(jobs) = state.jobs.as_mut() else {
                return;
            };
            let served = jobs.serve(topic, payload);
            (served, jobs.notifications())
        };
        self.link.saw(Seen::JobsRequest {
            api: served.api.to_owned(),
            job_id: served.job_id,
            status: served.status,
            accepted: served.accepted,
        });
        // The requester hears the reply whatever it subscribed to (AWS:
        // "automatically subscribed to the response message topics").
        if let Some((topic, body)) = served.reply {
            self.send(Packet::Publish(Publish::new(
                topic,
                Bytes::from(body),
                QoS::AtMostOnce,
            )));
        }
        self.notify(notifications);
    }

    /// Queues the case's job for the device, once, and tells its
    /// subscriptions.
    fn queue_job(&mut self) {
        let (queued, notifications) = {
            let mut state = self.link.state();
            let Some(jobs) = state.jobs.as_mut() else {
                return;
            };
            (jobs.queue(&self.client_id), jobs.notifications())
        };
        match queued {
            Ok(Some(job_id)) => self.link.saw(Seen::JobQueued {
                job_id: job_id.to_owned(),
            }),
            Ok(None) => {}
            Err(why) => self.link.saw(Seen::JobNotQueued(why)),
        }
        self.notify(notifications);
    }

    /// Sends the Jobs notifications whose topics the device subscribed to (QoS 0).
    fn notify(&mut self, notifications: Vec<crate::jobs::notify::Outgoing>) {
        for message in notifications {
            if self
                .filters
                .iter()
                .any(|filter| matches(filter, &message.topic, MatchMode::Aws))
            {
                let payload = Bytes::from(message.body.to_string());
                self.send(Packet::Publish(Publish::new(
                    message.topic,
                    payload,
                    QoS::AtMostOnce,
                )));
            }
        }
    }

    /// The case's setup once the device listens to its classic shadow's
    /// delta: desired is set, as Device Advisor sets it.
    fn set_desired(&mut self) {
        let Ok(delta) = shadow_topic_prefix(&self.client_id, None)
            .map(|prefix| format!("{prefix}/update/delta"))
        else {
            return;
        };
        let listening = self
            .filters
            .iter()
            .any(|filter| matches(filter, &delta, MatchMode::Aws));
        let key = ShadowKey {
            thing: self.client_id.clone(),
            shadow: None,
        };
        let desired = serde_json::json!({ "qualify": "synced" });
        let request = serde_json::json!({
            "state": { "desired": desired },
            "clientToken": "DeviceAdvisorShadowTestCaseSetup",
        })
        .to_string();
        let replies = {
            let mut state = self.link.state();
            if !listening || state.desired_set {
                return;
            }
            state.desired_set = true;
            let shadow = state.shadows.entry(key.clone()).or_default();
            let now = self.link.unix_now();
            match answer(
                shadow,
                &key,
                ShadowOperation::Update,
                request.as_bytes(),
                now,
            ) {
                Ok(served) => served.replies(),
                Err(e) => {
                    tracing::warn!("qualify: the shadow setup was refused: {e}");
                    return;
                }
            }
        };
        self.link.saw(Seen::DesiredSet { desired });
        self.deliver(&key, ShadowOperation::Update, replies);
    }

    /// Sends the service's replies whose topics the device subscribed to (QoS 0).
    fn deliver(
        &mut self,
        key: &ShadowKey,
        operation: ShadowOperation,
        replies: Vec<(ShadowTopicKind, serde_json::Value)>,
    ) {
        for (kind, body) in replies {
            let Some(topic) = key.topic(operation, kind) else {
                continue;
            };
            if self
                .filters
                .iter()
                .any(|filter| matches(filter, &topic, MatchMode::Aws))
            {
                let payload = Bytes::from(body.to_string());
                self.send(Packet::Publish(Publish::new(
                    topic,
                    payload,
                    QoS::AtMostOnce,
                )));
            }
        }
    }

    /// Sends a QoS 1 message of `size` bytes to a topic `filter` matches.
    fn send_message(&mut self, filter: &str, size: usize) {
        let topic = topic_for(filter);
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let payload = if size <= SMALL_PAYLOAD {
            Bytes::from_static(br#"{"qualify":"a QoS 1 message"}"#)
        } else {
            Bytes::from(vec![b'q'; size])
        };
        let mut publish = Publish::new(topic.clone(), payload, QoS::AtLeastOnce);
        publish.packet_id = Some(self.next_id);
        self.send(Packet::Publish(publish));
        self.link.saw(Seen::PublishSent {
            packet_id: self.next_id,
            topic,
        });
    }
}

/// A topic a filter matches: `+` as `qualify`, `#` as `qualify`.
fn topic_for(filter: &str) -> String {
    filter
        .split('/')
        .map(|level| match level {
            "+" | "#" => "qualify",
            level => level,
        })
        .collect::<Vec<_>>()
        .join("/")
}
