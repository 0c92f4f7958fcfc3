//! This workspace's device SDK: `iotcore::Client`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};
use iotcore::aws_credentials::{AwsCredentials, CredentialsProvider};
use iotcore::{Client, ClientBuilder, QoS};

use crate::error::{BenchResult, Context};
use crate::harness::{AccessKey, Identity};
use crate::scenarios::publish_case::{Case, Mode, WINDOW};

/// Connects to 127.0.0.1:`port` (MQTT 3.1.1, clean session, the identity's CA only).
pub async fn connect(port: u16, identity: &Identity) -> BenchResult<Client> {
    builder(port, identity)?
        .connect()
        .await
        .during(format!("connecting iotcore client {}", identity.thing))
}

/// The builder [`connect`] uses, for callers that change a setting first: reads the
/// identity's files (a fresh TLS configuration, so nothing is shared with another client).
pub fn builder(port: u16, identity: &Identity) -> BenchResult<ClientBuilder> {
    let step = || format!("loading iotcore client {}'s TLS files", identity.thing);
    Ok(Client::builder(&identity.thing)
        .endpoint("127.0.0.1")
        .port(port)
        .client_cert_pem_files(&identity.cert, &identity.key)
        .during(step())?
        .root_ca_pem_file(&identity.ca)
        .during(step())?
        .amazon_root_cas(false))
}

/// A builder for MQTT over WebSocket (`wss://127.0.0.1:port/mqtt`), signed with
/// SigV4 with `key` (region us-east-1); the identity gives the client id and the CA
/// (its certificate is not used).
pub fn websocket_builder(
    port: u16,
    identity: &Identity,
    key: &AccessKey,
) -> BenchResult<ClientBuilder> {
    let credentials = AwsCredentials::new(key.id.clone(), key.secret.clone(), None);
    Ok(Client::builder(&identity.thing)
        .endpoint("127.0.0.1")
        .port(port)
        .root_ca_pem_file(&identity.ca)
        .during(format!("loading iotcore client {}'s CA", identity.thing))?
        .amazon_root_cas(false)
        .websocket(CredentialsProvider::fixed(credentials))
        .region("us-east-1"))
}

/// One connection from nothing: TLS handshake (the client's first, so a full one),
/// CONNECT → CONNACK (one attempt of at most `timeout`, no retry), then DISCONNECT
/// and close.
pub async fn connect_once(port: u16, identity: &Identity, timeout: Duration) -> BenchResult<()> {
    connect_once_with(builder(port, identity)?, identity, timeout).await
}

/// [`connect_once`] over WebSocket with SigV4 (the HTTP upgrade and the signature
/// checked by the emulator come in addition).
pub async fn connect_once_over_websocket(
    port: u16,
    identity: &Identity,
    key: &AccessKey,
    timeout: Duration,
) -> BenchResult<()> {
    connect_once_with(websocket_builder(port, identity, key)?, identity, timeout).await
}

async fn connect_once_with(
    builder: ClientBuilder,
    identity: &Identity,
    timeout: Duration,
) -> BenchResult<()> {
    let client = builder
        .initial_connect(1, timeout)
        .connect_timeout(timeout)
        .connect()
        .await
        .during(format!("connecting iotcore client {}", identity.thing))?;
    client.close().await;
    Ok(())
}

/// The SDK's QoS for 0 or 1.
pub fn qos(level: u8) -> QoS {
    match level {
        0 => QoS::AtMostOnce,
        _ => QoS::AtLeastOnce,
    }
}

/// Sends the case's messages to `topic` and returns how long it took until the
/// broker had them all.
pub async fn publish(client: &Client, topic: &str, case: &Case) -> BenchResult<Duration> {
    let payload = Bytes::from(vec![0u8; case.size]);
    let qos = qos(case.qos);
    let step = "publishing with the iotcore client";
    let start = Instant::now();
    match case.mode {
        Mode::Pipelined => {
            stream::iter(0..case.count)
                .map(|_| client.publish(topic, payload.clone(), qos))
                .buffer_unordered(WINDOW)
                .try_for_each(|()| async { Ok(()) })
                .await
                .during(step)?;
        }
        Mode::Sequential => {
            for _ in 0..case.count {
                client
                    .publish(topic, payload.clone(), qos)
                    .await
                    .during(step)?;
            }
        }
    }
    if qos == QoS::AtMostOnce {
        // The PUBACK of a QoS 1 publish sent after them says the broker has read them all.
        client
            .publish(topic, payload, QoS::AtLeastOnce)
            .await
            .during(step)?;
    }
    Ok(start.elapsed())
}
