//! The qualifying server: mutual TLS with the qualification CA, then MQTT
//! spoken packet by packet with the iotcore-mqtt codec, as each case's
//! [`Faults`] say (CONNACK withheld, PUBACK never sent, …), writing down what
//! the device does. One case at a time: [`Qualifier::run`] serves every
//! connection the device opens until the case is graded or its time is over.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use iotcore_mqtt::packet::{self, Ack, ConnAck, Disconnect, Publish, SubAck, UnsubAck};
use iotcore_mqtt::{Packet, ProtocolVersion, QoS, ReasonCode};
use rustls::RootCertStore;
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::case::{CaseId, ConnackPlan, Faults};
use super::grade::{Outcome, grade};
use super::transcript::{Observation, Seen};
use crate::tls::{ServerCertificate, TlsSetupError};

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
    tls: Arc<ServerConfig>,
}

impl Qualifier {
    /// Serves on `listener`, presenting `chain` and `key`, requiring client
    /// certificates signed by one of `client_roots`.
    pub fn new(
        listener: TcpListener,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        client_roots: &[CertificateDer<'static>],
    ) -> Result<Qualifier, TlsSetupError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = RootCertStore::empty();
        for root in client_roots {
            roots
                .add(root.clone())
                .map_err(|e| TlsSetupError::TrustAnchor(e.to_string()))?;
        }
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .build()
                .map_err(|e| TlsSetupError::TrustAnchor(e.to_string()))?;
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::new(ServerCertificate::new(chain, key)?));
        config.alpn_protocols = vec![b"x-amzn-mqtt-ca".to_vec()];
        Ok(Qualifier {
            listener,
            tls: Arc::new(config),
        })
    }

    /// The address devices connect to.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Runs `case` until it is graded or `limit` passes, serving every
    /// connection the device opens meanwhile.
    pub async fn run(&self, case: CaseId, limit: Duration) -> CaseResult {
        let start = Instant::now();
        let deadline = start + limit;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let state = Arc::new(Mutex::new(CaseState::default()));
        let mut transcript: Vec<Observation> = Vec::new();
        let mut connections = 0u32;
        let mut tasks = tokio::task::JoinSet::new();
        let outcome = loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let Ok((tcp, _)) = accepted else { continue };
                    connections += 1;
                    let link = Link {
                        connection: connections,
                        start,
                        tx: tx.clone(),
                        faults: case.faults(),
                        state: Arc::clone(&state),
                    };
                    tasks.spawn(serve(Arc::clone(&self.tls), tcp, link));
                }
                Some(observation) = rx.recv() => {
                    transcript.push(observation);
                    if let Some(outcome) = grade(case, &transcript, false) {
                        break outcome;
                    }
                }
                () = tokio::time::sleep_until(deadline) => {
                    break grade(case, &transcript, true).unwrap_or_else(|| unreachable_verdict(case));
                }
            }
        };
        // The device's connections of this case end with it.
        tasks.shutdown().await;
        CaseResult {
            case,
            outcome,
            duration: start.elapsed(),
            connections,
        }
    }
}

/// `grade` always decides once over; a verdict for the impossible case anyway.
fn unreachable_verdict(case: CaseId) -> Outcome {
    Outcome {
        verdict: super::grade::Verdict::Fail,
        evidence: vec![format!("{case}: no verdict")],
    }
}

/// What the connections of one case share.
#[derive(Debug, Default)]
struct CaseState {
    /// CONNECTs seen so far.
    connects: usize,
}

/// One connection's way back to its case.
struct Link {
    connection: u32,
    start: Instant,
    tx: mpsc::UnboundedSender<Observation>,
    faults: Faults,
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
        let cut = async {
            match session.cut_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            read = stream.read_buf(&mut buf) => match read {
                Ok(0) | Err(_) => break false,
                Ok(_) => {}
            },
            () = cut => {
                // MQTT 3.1.1 has no server DISCONNECT: the connection just closes.
                let v5 = session.protocol == ProtocolVersion::V5;
                if v5 && session.link.faults.connack == ConnackPlan::DisconnectAfter {
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

/// The MQTT side of one connection.
struct Session {
    link: Link,
    protocol: ProtocolVersion,
    next_id: u16,
    out: BytesMut,
    /// When the server cuts the connection (the cases that cut connections).
    cut_at: Option<Instant>,
}

impl Session {
    fn send(&mut self, packet: Packet) {
        if let Err(e) = packet.encode(self.protocol, &mut self.out) {
            tracing::warn!("qualify: cannot encode {packet:?}: {e}");
        }
    }

    fn on_packet(&mut self, packet: Packet) {
        let faults = self.link.faults;
        match packet {
            Packet::Connect(connect) => {
                self.protocol = connect.protocol;
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
                self.send(Packet::ConnAck(ConnAck::new(false, ReasonCode::SUCCESS)));
                self.link.saw(Seen::ConnAckSent);
                if faults.connack != ConnackPlan::Always {
                    self.cut_at = Some(Instant::now() + CUT_AFTER);
                }
            }
            Packet::Publish(publish) => {
                self.link.saw(Seen::Publish {
                    topic: publish.topic.clone(),
                    qos: publish.qos as u8,
                    packet_id: publish.packet_id,
                    dup: publish.dup,
                });
                if let (Some(packet_id), false) = (publish.packet_id, faults.withhold_puback) {
                    self.send(Packet::PubAck(Ack::new(packet_id)));
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
                if !faults.withhold_suback {
                    let granted = subscribe
                        .subscriptions
                        .iter()
                        .map(|s| ReasonCode(s.options.qos.min(QoS::AtLeastOnce) as u8))
                        .collect();
                    self.send(Packet::SubAck(SubAck::new(subscribe.packet_id, granted)));
                }
                if let (true, Some(filter)) = (faults.send_to_subscriber, filters.first()) {
                    let topic = topic_for(filter);
                    self.next_id = self.next_id.wrapping_add(1).max(1);
                    let mut publish = Publish::new(
                        topic.clone(),
                        Bytes::from_static(br#"{"qualify":"MQTT_Client_Puback_Qos1"}"#),
                        QoS::AtLeastOnce,
                    );
                    publish.packet_id = Some(self.next_id);
                    self.send(Packet::Publish(publish));
                    self.link.saw(Seen::PublishSent {
                        packet_id: self.next_id,
                        topic,
                    });
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
