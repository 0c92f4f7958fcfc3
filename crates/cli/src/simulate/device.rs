//! One simulated device: connect, then publish telemetry and update the
//! shadow on their periods until told to stop, recording every outcome.

use std::collections::HashMap;
use std::error::Error as _;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use iotcore::{Client, ConfigError, ConnectionState, QoS, ServerTrust};
use serde_json::json;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use super::identities::Identity;
use super::limits;
use super::stats::{Operation, Stats};

/// How long connecting (TLS, CONNECT, CONNACK) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one publish or shadow update may take before it counts as a timeout.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
/// Items each of a device's streams buffers (the SDK's default is 1,024).
const STREAM_BUFFER: usize = 8;
/// errno EMFILE: the process has no file descriptor left.
const EMFILE: i32 = 24;

/// What every device shares: where to connect and how often to talk.
pub struct Plan {
    /// Host name or address of the emulator.
    pub endpoint: String,
    /// Its MQTT over TLS port.
    pub port: u16,
    /// Loopback source addresses the devices take in turn (1: the kernel's
    /// choice), see [`limits::source_address`].
    pub source_addresses: u8,
    /// Telemetry period; zero for none.
    pub telemetry_every: Duration,
    /// Shadow update period; zero for none.
    pub shadow_every: Duration,
    /// The root CAs the devices trust, parsed once for all.
    pub trust: Trust,
}

/// Each root CA the fleet's devices trust, parsed on first use and shared by
/// every device that trusts it: one copy for the fleet instead of one per
/// device.
#[derive(Default)]
pub struct Trust {
    parsed: Mutex<HashMap<Arc<str>, ServerTrust>>,
}

impl Trust {
    /// The parsed form of `root_ca_pem`.
    fn of(&self, root_ca_pem: &Arc<str>) -> Result<ServerTrust, ConfigError> {
        let mut parsed = self.parsed.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(trust) = parsed.get(root_ca_pem) {
            return Ok(trust.clone());
        }
        let trust = ServerTrust::from_pem(root_ca_pem.as_bytes())?;
        parsed.insert(Arc::clone(root_ca_pem), trust.clone());
        Ok(trust)
    }
}

/// Runs device number `index` until `stop` turns true, then closes it.
pub async fn run(
    index: usize,
    identity: Identity,
    plan: Arc<Plan>,
    stats: Arc<Stats>,
    mut stop: watch::Receiver<bool>,
) {
    let started = Instant::now();
    let connect = async {
        let mut builder = Client::builder(identity.thing.as_str())
            .endpoint(plan.endpoint.as_str())
            .port(plan.port);
        if let Some(local) = limits::source_address(index, plan.source_addresses) {
            builder = builder.local_address(local);
        }
        builder
            .client_cert_pem(&identity.certificate_pem, &identity.private_key_pem)?
            .server_trust(plan.trust.of(&identity.root_ca_pem)?)
            // A simulated device reads no streams but its shadow replies: a
            // small buffer per stream keeps 10,000 devices' memory down.
            .stream_buffer(STREAM_BUFFER)
            .initial_connect(1, CONNECT_TIMEOUT)
            .connect()
            .await
    };
    // Boxed: connecting's state (the builder, TLS handshake) is freed once
    // connected instead of sizing every device's task for its whole life.
    let client = tokio::select! {
        outcome = Box::pin(connect) => match outcome {
            Ok(client) => client,
            Err(e) => {
                stats.failed(Operation::Connect, &connect_error_kind(&e), || e.to_string());
                return;
            }
        },
        _ = stop.wait_for(|stopped| *stopped) => return,
    };
    stats.succeeded(Operation::Connect, started.elapsed());
    drop(identity);

    let telemetry_topic = format!("dt/{}/telemetry", client.thing_name());
    let shadow = client.shadow().with_timeout(OPERATION_TIMEOUT);
    // Spread each device's first message over the period (golden-ratio
    // sequence: even, and the same on every run).
    let phase = (index as f64 * 0.618_033_988_75).fract();
    let (client, stats, shadow, telemetry_topic) = (&client, &*stats, &shadow, &telemetry_topic);
    let telemetry = every(
        plan.telemetry_every,
        phase,
        stop.clone(),
        |seq| async move {
            let payload = json!({"seq": seq, "temperature": 20.0 + (seq % 10) as f64 / 2.0});
            let sent = Instant::now();
            let publish = client.publish(
                telemetry_topic.as_str(),
                payload.to_string(),
                QoS::AtLeastOnce,
            );
            match tokio::time::timeout(OPERATION_TIMEOUT, publish).await {
                Ok(Ok(())) => stats.succeeded(Operation::Telemetry, sent.elapsed()),
                Ok(Err(e)) => {
                    stats.failed(Operation::Telemetry, &format!("{:?}", e.kind()), || {
                        e.to_string()
                    })
                }
                Err(_) => stats.failed(Operation::Telemetry, "timeout", || {
                    format!("no PUBACK within {} s", OPERATION_TIMEOUT.as_secs())
                }),
            }
        },
    );
    let shadow_updates = every(plan.shadow_every, phase, stop.clone(), |seq| async move {
        let sent = Instant::now();
        match shadow
            .update_reported(json!({"seq": seq, "firmware": "1.0.0"}))
            .await
        {
            Ok(_) => stats.succeeded(Operation::Shadow, sent.elapsed()),
            Err(e) => stats.failed(Operation::Shadow, &format!("{:?}", e.kind()), || {
                e.to_string()
            }),
        }
    });
    let watch_connection = watch_connection(client, stats, stop.clone());
    tokio::join!(telemetry, shadow_updates, watch_connection);
    client.close().await;
    stats.disconnected();
}

/// Runs `work(0)`, `work(1)`, … every `period`, the first at `phase` (0–1) of
/// a period from now, until `stop`. A `work` longer than the period delays the
/// next one rather than piling up.
async fn every<F, Fut>(period: Duration, phase: f64, mut stop: watch::Receiver<bool>, mut work: F)
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = ()>,
{
    if period.is_zero() {
        return;
    }
    let first = tokio::time::Instant::now() + period.mul_f64(phase);
    let mut ticks = tokio::time::interval_at(first, period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    for seq in 0.. {
        let due = tokio::select! {
            _ = ticks.tick() => true,
            _ = stop.wait_for(|stopped| *stopped) => false,
        };
        if !due {
            return;
        }
        // Boxed: a publish or shadow update in flight is allocated while it
        // lasts instead of sizing the task of every idle device.
        Box::pin(work(seq)).await;
    }
}

/// Counts every time the connection drops before `stop` (the client reconnects by itself).
async fn watch_connection(client: &Client, stats: &Stats, mut stop: watch::Receiver<bool>) {
    let mut status = client.status();
    loop {
        tokio::select! {
            changed = status.changed() => {
                if changed.is_err() {
                    return;
                }
                let state = status.borrow_and_update().clone();
                if let ConnectionState::Disconnected { reason } = state {
                    stats.failed(Operation::Connection, "lost", || reason.to_string());
                }
            }
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
    }
}

/// A short label for a failed connection: the error kind, or the file
/// descriptor limit when that is what ran out.
fn connect_error_kind(error: &iotcore::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = error.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && io.raw_os_error() == Some(EMFILE)
        {
            return "too many open files (raise `ulimit -n`)".to_owned();
        }
        source = cause.source();
    }
    if error.to_string().contains("Too many open files") {
        return "too many open files (raise `ulimit -n`)".to_owned();
    }
    format!("{:?}", error.kind())
}
