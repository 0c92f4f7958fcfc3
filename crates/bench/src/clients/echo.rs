//! A client subscribed (QoS 1) to its own topic that publishes one message at a time
//! and times how long it takes to come back: the publish → receive latency.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use iotcore::{Client, QoS, Subscription};
use rumqttc::{AsyncClient, Event, Outgoing, Packet};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::clients::{iotcore as sdk, rumqttc as peer};
use crate::error::{BenchError, BenchResult, Context};
use crate::harness::Identity;

/// A connected client that receives what it publishes.
pub enum Echo {
    /// The iotcore SDK: `subscribe` gives the stream the message comes back on.
    Iotcore {
        /// The connection.
        client: Client,
        /// Its subscription to `topic`.
        messages: Subscription,
        /// `dt/<thing>/bench`.
        topic: String,
    },
    /// rumqttc, its event loop in its own task handing what it reads to the caller.
    Rumqttc(RumqttcEcho),
}

impl Echo {
    /// Connects the iotcore SDK to 127.0.0.1:`port` and subscribes to the identity's topic.
    pub async fn iotcore(port: u16, identity: &Identity) -> BenchResult<Echo> {
        let client = sdk::connect(port, identity).await?;
        let topic = identity.topic();
        let messages = client
            .subscribe(topic.as_str(), QoS::AtLeastOnce)
            .await
            .during(format!("subscribing iotcore client {}", identity.thing))?;
        Ok(Echo::Iotcore {
            client,
            messages,
            topic,
        })
    }

    /// Connects rumqttc to 127.0.0.1:`port` and subscribes to the identity's topic.
    pub async fn rumqttc(port: u16, identity: &Identity) -> BenchResult<Echo> {
        RumqttcEcho::connect(port, identity)
            .await
            .map(Echo::Rumqttc)
    }

    /// Publishes `payload` at QoS 1 and returns the time until it came back. Returns
    /// only once the broker has also acknowledged it, so that calls never overlap.
    pub async fn round_trip(&mut self, payload: &Bytes) -> BenchResult<Duration> {
        match self {
            Echo::Iotcore {
                client,
                messages,
                topic,
            } => {
                let start = Instant::now();
                let (published, received) = tokio::join!(
                    client.publish(topic.as_str(), payload.clone(), QoS::AtLeastOnce),
                    async { messages.next().await.map(|_| start.elapsed()) }
                );
                published.during("publishing with the iotcore client")?;
                received
                    .ok_or("its subscription ended")
                    .during("receiving with the iotcore client")
            }
            Echo::Rumqttc(echo) => echo.round_trip(payload).await,
        }
    }

    /// Disconnects.
    pub async fn close(self) -> BenchResult<()> {
        match self {
            Echo::Iotcore { client, .. } => {
                client.close().await;
                Ok(())
            }
            Echo::Rumqttc(echo) => echo.close().await,
        }
    }
}

/// What rumqttc's event loop saw that the caller waits for.
enum Seen {
    SubAck,
    PubAck,
    Publish,
    Failed(String),
}

/// rumqttc with the suite's options ([`peer::event_loop`]), subscribed to its own topic.
pub struct RumqttcEcho {
    client: AsyncClient,
    seen: mpsc::UnboundedReceiver<Seen>,
    event_loop: JoinHandle<()>,
    topic: String,
}

impl RumqttcEcho {
    async fn connect(port: u16, identity: &Identity) -> BenchResult<RumqttcEcho> {
        let (client, mut event_loop) = peer::event_loop(port, identity)?;
        peer::wait_for_connack(&mut event_loop).await?;
        let (tell, seen) = mpsc::unbounded_channel();
        let event_loop = tokio::spawn(async move {
            loop {
                let seen = match event_loop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => Seen::SubAck,
                    Ok(Event::Incoming(Packet::PubAck(_))) => Seen::PubAck,
                    Ok(Event::Incoming(Packet::Publish(_))) => Seen::Publish,
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                    Ok(_) => continue,
                    Err(e) => Seen::Failed(e.to_string()),
                };
                let failed = matches!(seen, Seen::Failed(_));
                if tell.send(seen).is_err() || failed {
                    break;
                }
            }
        });
        let mut echo = RumqttcEcho {
            client,
            seen,
            event_loop,
            topic: identity.topic(),
        };
        echo.client
            .subscribe(echo.topic.as_str(), rumqttc::QoS::AtLeastOnce)
            .await
            .during("subscribing rumqttc")?;
        while !matches!(echo.next("subscribing rumqttc").await?, Seen::SubAck) {}
        Ok(echo)
    }

    /// The next thing the event loop saw; an error if the connection failed.
    async fn next(&mut self, step: &str) -> BenchResult<Seen> {
        match self.seen.recv().await {
            Some(Seen::Failed(why)) => Err(BenchError::new(step, why)),
            Some(seen) => Ok(seen),
            None => Err(BenchError::new(step, "rumqttc's event loop stopped")),
        }
    }

    async fn round_trip(&mut self, payload: &Bytes) -> BenchResult<Duration> {
        let step = "publish → receive with rumqttc";
        let start = Instant::now();
        self.client
            .publish_bytes(
                self.topic.as_str(),
                rumqttc::QoS::AtLeastOnce,
                false,
                payload.clone(),
            )
            .await
            .during(step)?;
        let (mut received, mut acked) = (None, false);
        loop {
            match self.next(step).await? {
                Seen::Publish => received = Some(start.elapsed()),
                Seen::PubAck => acked = true,
                Seen::SubAck | Seen::Failed(_) => {}
            }
            if let (Some(elapsed), true) = (received, acked) {
                return Ok(elapsed);
            }
        }
    }

    async fn close(self) -> BenchResult<()> {
        peer::disconnect(&self.client, self.event_loop).await
    }
}
