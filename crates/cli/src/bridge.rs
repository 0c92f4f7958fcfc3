//! The MQTT bridge of a local Greengrass core: relays messages between the
//! core's broker and the cloud, as AWS's MQTT bridge component does with its
//! `mqttTopicMapping` (`LocalMqtt` → `IotCore` and `IotCore` → `LocalMqtt`).
//!
//! Each side is an SDK client with the core's own certificate: on the core's
//! broker (which gives the core every right) and on the cloud (with the
//! core's policy there). Both keep persistent sessions, and the cloud side
//! writes what it has not delivered yet to an offline store under the core's
//! directory: while the cloud cannot be reached, local devices go on talking
//! to each other, the messages for the cloud wait (in the core's broker, then
//! the store), and they are delivered in order when the link returns, even
//! across a restart of the core.
//!
//! A message bridged one way is not bridged back: map a topic in one
//! direction only, as with AWS's bridge, or the two sides echo it forever.

use std::path::Path;
use std::time::Duration;

use iotcore::{Client, Message, QoS};
use tokio_stream::StreamExt;

/// Where a mapping's messages come from and go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the core's broker to the cloud (`LocalMqtt` → `IotCore`).
    ToCloud,
    /// From the cloud to the core's broker (`IotCore` → `LocalMqtt`).
    ToLocal,
}

/// One topic mapping: the messages matching `filter` on one side are
/// published on the other under the same topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// The topic filter subscribed to on the source side.
    pub filter: String,
    /// Which way its messages go.
    pub direction: Direction,
}

/// How to reach both sides.
pub struct Sides<'a> {
    /// The core's thing name: the client id on both sides.
    pub core: &'a str,
    /// The core's certificate and key (PEM), as the cloud issued them.
    pub cert_pem: &'a str,
    /// Its private key (PEM).
    pub key_pem: &'a str,
    /// The core's broker: host, port and the CA its certificate chains to.
    pub local: (&'a str, u16, &'a str),
    /// The cloud: host, port and the CA its certificate chains to.
    pub cloud: (&'a str, u16, &'a str),
    /// Where the cloud side's offline store lives.
    pub store: &'a Path,
}

/// How long a session is kept on each side while the bridge is away.
const SESSION_EXPIRY: Duration = Duration::from_secs(3600);

/// A running bridge: both clients; dropping it ends the relays.
pub struct Bridge {
    local: Client,
    cloud: Client,
    relays: Vec<tokio::task::JoinHandle<()>>,
}

impl Bridge {
    /// Connects both sides (each retried for up to a minute; once connected,
    /// a side reconnects forever) and starts one relay per mapping.
    pub async fn start(sides: &Sides<'_>, mappings: &[Mapping]) -> Result<Bridge, iotcore::Error> {
        let (host, port, ca) = sides.local;
        let local = side(sides, &format!("{}-bridge", sides.core), host, port, ca)?
            .connect()
            .await?;
        let (host, port, ca) = sides.cloud;
        let cloud = side(sides, sides.core, host, port, ca)?
            .offline_store(sides.store)
            .connect()
            .await?;
        let mut relays = Vec::new();
        for mapping in mappings {
            let (from, to) = match mapping.direction {
                Direction::ToCloud => (&local, &cloud),
                Direction::ToLocal => (&cloud, &local),
            };
            let messages = from.subscribe(&mapping.filter, QoS::AtLeastOnce).await?;
            relays.push(tokio::spawn(relay(messages, to.clone(), mapping.clone())));
        }
        Ok(Bridge {
            local,
            cloud,
            relays,
        })
    }

    /// Stops the relays and closes both clients.
    pub async fn close(self) {
        for relay in &self.relays {
            relay.abort();
        }
        self.local.close().await;
        self.cloud.close().await;
    }
}

/// One side's client: the core's certificate, `ca` trusted, a persistent session.
fn side(
    sides: &Sides<'_>,
    client_id: &str,
    host: &str,
    port: u16,
    ca: &str,
) -> Result<iotcore::ClientBuilder, iotcore::Error> {
    Ok(Client::builder(sides.core)
        .client_id(client_id)
        .endpoint(host)
        .port(port)
        .amazon_root_cas(false)
        .persistent_session(SESSION_EXPIRY)
        .client_cert_pem(sides.cert_pem, sides.key_pem)?
        .root_ca_pem(ca)?)
}

/// Publishes every message of `messages` on `to`, one at a time, in order.
async fn relay(mut messages: iotcore::Subscription, to: Client, mapping: Mapping) {
    while let Some(message) = messages.next().await {
        forward(&to, &mapping, message).await;
    }
}

async fn forward(to: &Client, mapping: &Mapping, message: Message) {
    let topic = message.topic().to_owned();
    let qos = message.qos();
    if let Err(e) = to.publish(topic.clone(), message.into_payload(), qos).await {
        tracing::warn!(%topic, filter = %mapping.filter, "not bridged: {e}");
    }
}
