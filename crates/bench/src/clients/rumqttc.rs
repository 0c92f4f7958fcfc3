//! rumqttc 0.25: `AsyncClient` + `EventLoop` polled in a task, the same TLS
//! (rustls, aws-lc-rs provider, same client certificate) and in-flight window.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{
    AsyncClient, ConnectReturnCode, Event, EventLoop, MqttOptions, NetworkOptions, Outgoing,
    Packet, QoS, TlsConfiguration, Transport,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::error::{BenchError, BenchResult, Context};
use crate::harness::Identity;
use crate::scenarios::publish_case::{Case, Mode, WINDOW};

/// A connected rumqttc client whose event loop runs in its own task.
pub struct Rumqttc {
    client: AsyncClient,
    acks: Arc<Acks>,
    event_loop: JoinHandle<()>,
}

/// Counts the PUBACKs the event loop sees and wakes the publisher at a target count.
struct Acks {
    count: AtomicU64,
    target: AtomicU64,
    reached: Notify,
    failure: Mutex<Option<String>>,
}

impl Acks {
    fn acked(&self) {
        let count = self.count.fetch_add(1, SeqCst) + 1;
        if count >= self.target.load(SeqCst) {
            self.reached.notify_one();
        }
    }

    fn fail(&self, why: String) {
        if let Ok(mut failure) = self.failure.lock() {
            *failure = Some(why);
        }
        self.reached.notify_one();
    }

    /// Sets the count [`wait`](Self::wait) waits for: `more` acks from now.
    fn expect(&self, more: u64) {
        self.target.store(self.count.load(SeqCst) + more, SeqCst);
    }

    async fn wait(&self) -> BenchResult<()> {
        let target = self.target.load(SeqCst);
        loop {
            if self.count.load(SeqCst) >= target {
                return Ok(());
            }
            if let Some(why) = self.failure.lock().ok().and_then(|f| f.clone()) {
                return Err(BenchError::new("rumqttc's connection", why));
            }
            self.reached.notified().await;
        }
    }
}

/// The TLS configuration: aws-lc-rs, TLS 1.2/1.3, the emulator's CA, the client certificate.
pub fn tls_config(identity: &Identity) -> BenchResult<ClientConfig> {
    tls_config_from_files(identity).during(format!("loading {}'s TLS files", identity.thing))
}

fn tls_config_from_files(
    identity: &Identity,
) -> Result<ClientConfig, Box<dyn std::error::Error + Send + Sync>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&identity.ca)? {
        roots.add(cert?)?;
    }
    let chain = CertificateDer::pem_file_iter(&identity.cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&identity.key)?;
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?)
}

/// rumqttc's options and event loop for 127.0.0.1:`port` (MQTT 3.1.1, clean session,
/// keep-alive 60 s, TCP_NODELAY, [`WINDOW`] publishes in flight).
pub fn event_loop(port: u16, identity: &Identity) -> BenchResult<(AsyncClient, EventLoop)> {
    let mut options = MqttOptions::new(&identity.thing, "127.0.0.1", port);
    options
        .set_keep_alive(Duration::from_secs(60))
        .set_clean_session(true)
        .set_inflight(WINDOW as u16)
        .set_transport(Transport::Tls(TlsConfiguration::Rustls(Arc::new(
            tls_config(identity)?,
        ))));
    let (client, mut event_loop) = AsyncClient::new(options, WINDOW);
    let mut network = NetworkOptions::new();
    network.set_tcp_nodelay(true);
    event_loop.set_network_options(network);
    Ok((client, event_loop))
}

/// Polls `event_loop` until the broker accepts the connection.
pub async fn wait_for_connack(event_loop: &mut EventLoop) -> BenchResult<()> {
    loop {
        let event = event_loop.poll().await.during("connecting rumqttc")?;
        if let Event::Incoming(Packet::ConnAck(ack)) = event {
            if ack.code != ConnectReturnCode::Success {
                return Err(BenchError::new(
                    "connecting rumqttc",
                    format!("the broker refused the connection: {:?}", ack.code),
                ));
            }
            return Ok(());
        }
    }
}

/// One connection from nothing: a fresh TLS configuration (so no session to resume:
/// a full handshake), CONNECT → CONNACK, then DISCONNECT and close; at most
/// `timeout` in all.
pub async fn connect_once(port: u16, identity: &Identity, timeout: Duration) -> BenchResult<()> {
    let step = "connecting rumqttc once";
    tokio::time::timeout(timeout, async {
        let (client, mut event_loop) = event_loop(port, identity)?;
        wait_for_connack(&mut event_loop).await?;
        client.disconnect().await.during(step)?;
        loop {
            let event = event_loop.poll().await.during(step)?;
            if let Event::Outgoing(Outgoing::Disconnect) = event {
                return Ok(());
            }
        }
    })
    .await
    .during(format!("{step} (at most {timeout:?})"))?
}

impl Rumqttc {
    /// Connects and starts polling the event loop in a task.
    pub async fn connect(port: u16, identity: &Identity) -> BenchResult<Rumqttc> {
        let (client, mut event_loop) = event_loop(port, identity)?;
        wait_for_connack(&mut event_loop).await?;
        let acks = Arc::new(Acks {
            count: AtomicU64::new(0),
            target: AtomicU64::new(u64::MAX),
            reached: Notify::new(),
            failure: Mutex::new(None),
        });
        let counter = acks.clone();
        let event_loop = tokio::spawn(async move {
            loop {
                match event_loop.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => counter.acked(),
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                    Ok(_) => {}
                    Err(e) => {
                        counter.fail(e.to_string());
                        break;
                    }
                }
            }
        });
        Ok(Rumqttc {
            client,
            acks,
            event_loop,
        })
    }

    /// Sends the case's messages and returns how long it took until the broker had them all.
    pub async fn publish(&self, topic: &str, case: &Case) -> BenchResult<Duration> {
        let step = "publishing with rumqttc";
        let payload = vec![0u8; case.size];
        let qos = match case.qos {
            0 => QoS::AtMostOnce,
            _ => QoS::AtLeastOnce,
        };
        let acks_per_publish = u64::from(qos == QoS::AtLeastOnce);
        let start = Instant::now();
        match case.mode {
            Mode::Pipelined => {
                // publish() returns once the request is queued; the event loop keeps
                // WINDOW QoS 1 publishes in flight and counts their PUBACKs.
                self.acks.expect(acks_per_publish * case.count as u64);
                for _ in 0..case.count {
                    self.client
                        .publish(topic, qos, false, payload.clone())
                        .await
                        .during(step)?;
                }
                self.acks.wait().await?;
            }
            Mode::Sequential => {
                for _ in 0..case.count {
                    self.acks.expect(acks_per_publish);
                    self.client
                        .publish(topic, qos, false, payload.clone())
                        .await
                        .during(step)?;
                    self.acks.wait().await?;
                }
            }
        }
        if qos == QoS::AtMostOnce {
            // The PUBACK of a QoS 1 publish sent after them says the broker has read them all.
            self.acks.expect(1);
            self.client
                .publish(topic, QoS::AtLeastOnce, false, payload)
                .await
                .during(step)?;
            self.acks.wait().await?;
        }
        Ok(start.elapsed())
    }

    /// Sends DISCONNECT and stops the event loop.
    pub async fn close(self) -> BenchResult<()> {
        disconnect(&self.client, self.event_loop).await
    }
}

/// Sends DISCONNECT through `client` and waits for the task polling its event
/// loop to end (it ends on the outgoing DISCONNECT).
pub async fn disconnect(client: &AsyncClient, event_loop: JoinHandle<()>) -> BenchResult<()> {
    client.disconnect().await.during("disconnecting rumqttc")?;
    event_loop.await.during("stopping rumqttc's event loop")
}
