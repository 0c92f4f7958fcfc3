//! This crate's client: `Client::publish`, pipelined or awaited one by one.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};
use iotcore::{Client, QoS};

use crate::BoxError;
use crate::cases::{Case, Mode, WINDOW};
use crate::setup::Identity;

/// Connects to the emulator on 127.0.0.1:`port` (MQTT 3.1.1, clean session).
pub async fn connect(port: u16, identity: &Identity) -> Result<Client, BoxError> {
    let client = Client::builder(&identity.thing)
        .endpoint("127.0.0.1")
        .port(port)
        .client_cert_pem_files(&identity.cert, &identity.key)?
        .root_ca_pem_file(&identity.ca)?
        .amazon_root_cas(false)
        .connect()
        .await?;
    Ok(client)
}

/// Sends the case's messages and returns how long it took until the broker had them all.
pub async fn run(client: &Client, topic: &str, case: &Case) -> Result<Duration, BoxError> {
    let payload = Bytes::from(vec![0u8; case.size]);
    let qos = match case.qos {
        0 => QoS::AtMostOnce,
        _ => QoS::AtLeastOnce,
    };
    let start = Instant::now();
    match case.mode {
        Mode::Pipelined => {
            stream::iter(0..case.count)
                .map(|_| client.publish(topic, payload.clone(), qos))
                .buffer_unordered(WINDOW)
                .try_for_each(|()| async { Ok(()) })
                .await?;
        }
        Mode::Sequential => {
            for _ in 0..case.count {
                client.publish(topic, payload.clone(), qos).await?;
            }
        }
    }
    if qos == QoS::AtMostOnce {
        // The PUBACK of a QoS 1 publish sent after them says the broker has read them all.
        client.publish(topic, payload, QoS::AtLeastOnce).await?;
    }
    Ok(start.elapsed())
}
