//! This workspace's device SDK: `iotcore::Client`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};
use iotcore::{Client, QoS};

use crate::error::{BenchResult, Context};
use crate::harness::Identity;
use crate::scenarios::publish_case::{Case, Mode, WINDOW};

/// Connects to 127.0.0.1:`port` (MQTT 3.1.1, clean session, the identity's CA only).
pub async fn connect(port: u16, identity: &Identity) -> BenchResult<Client> {
    let step = || format!("connecting iotcore client {}", identity.thing);
    Client::builder(&identity.thing)
        .endpoint("127.0.0.1")
        .port(port)
        .client_cert_pem_files(&identity.cert, &identity.key)
        .during(step())?
        .root_ca_pem_file(&identity.ca)
        .during(step())?
        .amazon_root_cas(false)
        .connect()
        .await
        .during(step())
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
