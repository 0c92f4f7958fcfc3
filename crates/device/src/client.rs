//! The `Client` handle.

use std::sync::{Arc, RwLock};

use bytes::Bytes;
use iotcore_mqtt::QoS;
use iotcore_mqtt::packet::Publish;
use iotcore_mqtt::topic::TopicName;
use tokio::sync::{mpsc, oneshot, watch};

use crate::builder::{ClientBuilder, Config};
use crate::driver::{Command, Driver, Listeners, Request};
use crate::error::Error;
use crate::greengrass::CoreAddress;
use crate::jobs::JobsClient;
use crate::limits::Limits;
use crate::service::Services;
use crate::shadow::ShadowClient;
use crate::status::{ConnectionState, Sessions};
use crate::streams::{CloudToDevice, Messages, StatusEvents, Subscription};
use crate::transport::{Connector, DoorSetup};

/// Commands waiting for the driver; publishers wait when it is full.
const COMMAND_QUEUE: usize = 256;

/// A connection to AWS IoT Core (or the emulator, or any MQTT broker) for one device.
///
/// Cheap to clone: every clone talks to the same connection task. The
/// connection is re-established by itself whenever it drops, with jittered
/// exponential backoff, until [`close`](Client::close) is called or every
/// clone is dropped.
///
/// ```no_run
/// # async fn demo() -> Result<(), iotcore::Error> {
/// use iotcore::{Client, QoS};
/// use futures_util::StreamExt;
///
/// let client = Client::builder("my-thing")
///     .endpoint("xxxx-ats.iot.eu-west-1.amazonaws.com")
///     .client_cert_pem_files("cert.pem", "key.pem")?
///     .connect()
///     .await?;
/// client.publish("dt/my-thing/temp", "21.5", QoS::AtLeastOnce).await?;
/// let mut commands = client.cloud_to_device().await?;
/// while let Some(command) = commands.next().await {
///     println!("{}: {:?}", command.sub_topic(), command.payload());
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    commands: mpsc::Sender<Command>,
    status: watch::Receiver<ConnectionState>,
    listeners: Arc<Listeners>,
    limits: Limits,
    thing_name: String,
    /// The configured client id, or the one the broker assigned for an empty one.
    client_id: Arc<RwLock<String>>,
    telemetry_topic: TopicName,
    cloud_to_device_filter: String,
    /// The connection numbers requests waiting for a reply go by.
    sessions: Arc<Sessions>,
    /// The service framework's channels and tokens, for every service alike.
    services: Services,
    /// How connections are opened (what the Greengrass door learnt).
    connector: Arc<Connector>,
}

impl Client {
    /// Starts building a client for the thing `thing_name` (also the client
    /// id unless [`ClientBuilder::client_id`] says otherwise).
    pub fn builder(thing_name: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(thing_name.into())
    }

    /// Makes the first connection, then spawns the connection task.
    pub(crate) async fn start(config: Config) -> Result<Client, Error> {
        let (commands, commands_rx) = mpsc::channel(COMMAND_QUEUE);
        let (state_tx, status) = watch::channel(ConnectionState::Connecting);
        let listeners = Listeners::new(config.stream_buffer);
        let (ready_tx, ready) = oneshot::channel();
        let sessions = Arc::new(Sessions::default());
        let client_id = Arc::new(RwLock::new(config.client_id.clone()));
        let inner = Inner {
            commands,
            status,
            listeners: listeners.clone(),
            limits: config.limits,
            thing_name: config.thing_name.clone(),
            client_id: Arc::clone(&client_id),
            telemetry_topic: config.telemetry_topic.clone(),
            cloud_to_device_filter: config.cloud_to_device_filter.clone(),
            sessions: sessions.clone(),
            services: Services::new(config.stream_buffer),
            connector: Arc::clone(&config.connector),
        };
        let driver = Driver::new(
            config,
            commands_rx,
            state_tx,
            listeners,
            sessions,
            client_id,
            ready_tx,
        )?;
        // The first connection (TCP, TLS, CONNECT → CONNACK, with its retries) runs
        // in the caller's task: no wake-up of another task, likely on another
        // thread, at each step of the handshake and again for the answer. Only once
        // the driver has answered does it move, pinned where it is, to a task of
        // its own; its reconnections dial from there.
        let mut run = Box::pin(Box::new(driver).run());
        let mut ready = ready;
        let (answer, running) = tokio::select! {
            biased;
            () = &mut run => (ready.await, false),
            answer = &mut ready => (answer, true),
        };
        match answer {
            Ok(Ok(())) => {
                if running {
                    tokio::spawn(run);
                }
                Ok(Client {
                    inner: Arc::new(inner),
                })
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::closed()),
        }
    }

    /// The Greengrass core address the client is (or was last) connected
    /// to, with [`ClientBuilder::greengrass_core`]; `None` on other doors
    /// and before the first connection.
    pub fn greengrass_core(&self) -> Option<CoreAddress> {
        match &self.inner.connector.setup {
            DoorSetup::GreengrassCore(core) => core.answered(),
            _ => None,
        }
    }

    /// The thing name the client was built for.
    pub fn thing_name(&self) -> &str {
        &self.inner.thing_name
    }

    /// The MQTT client id: the one configured, or for an empty one (see
    /// [`ClientBuilder::client_id`]) the id the broker assigned on the latest
    /// connection (MQTT 5 Assigned Client Identifier; AWS IoT Core:
    /// `$GEN/<uuid>`, a new one on every connection).
    pub fn client_id(&self) -> String {
        self.inner
            .client_id
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Publishes `payload` to `topic`.
    ///
    /// Resolves at QoS 1 when the broker acknowledges it (PUBACK), at QoS 0
    /// when it has been written to the connection. The topic and payload are
    /// checked first ([`crate::ErrorKind::InvalidRequest`], nothing sent).
    ///
    /// While disconnected, a QoS 1 publish waits in the offline queue (and
    /// this future with it) and is sent on the next connection; a QoS 0
    /// publish fails at once with [`crate::ErrorKind::Offline`]. A QoS 1
    /// publish sent but not acknowledged when the connection drops is sent
    /// again (DUP) after the reconnect, so it may arrive twice.
    ///
    /// With an [offline store](ClientBuilder::offline_store), a QoS 1 publish
    /// is written there before it is sent; one still unacknowledged when the
    /// client closes (this future then fails with
    /// [`crate::ErrorKind::Closed`]) or when the process dies is sent by the
    /// next client opened on the store.
    pub async fn publish(
        &self,
        topic: impl Into<TopicName>,
        payload: impl Into<Bytes>,
        qos: QoS,
    ) -> Result<(), Error> {
        let publish = Publish::new(topic, payload, qos);
        self.send_publish(publish).await
    }

    /// Publishes with the retain flag set: the broker keeps the message and
    /// hands it to future subscribers of the topic. Otherwise like
    /// [`publish`](Self::publish).
    pub async fn publish_retained(
        &self,
        topic: impl Into<TopicName>,
        payload: impl Into<Bytes>,
        qos: QoS,
    ) -> Result<(), Error> {
        let mut publish = Publish::new(topic, payload, qos);
        publish.retain = true;
        self.send_publish(publish).await
    }

    /// Sends a telemetry message at QoS 1 to the device's telemetry topic
    /// (`device/{thing}/messages/events` unless configured otherwise), like
    /// nanoFramework's `SendMessage`.
    pub async fn send_message(&self, payload: impl Into<Bytes>) -> Result<(), Error> {
        let publish = Publish::new(
            self.inner.telemetry_topic.clone(),
            payload,
            QoS::AtLeastOnce,
        );
        self.send_publish(publish).await
    }

    async fn send_publish(&self, publish: Publish) -> Result<(), Error> {
        self.inner
            .limits
            .check_publish(&publish.topic, publish.payload.len(), publish.qos)
            .map_err(|v| v.into_error(&publish.topic))?;
        self.request(|respond| Command::Publish {
            publish: Box::new(publish),
            respond,
        })
        .await
    }

    /// Subscribes to `filter` and returns the stream of the messages that
    /// match it. Resolves when the broker grants the subscription (SUBACK);
    /// while disconnected, the request waits for the next connection.
    ///
    /// Each call gives its own stream, even for the same filter. The
    /// subscription is restored by itself if the broker loses the session.
    pub async fn subscribe(
        &self,
        filter: impl Into<String>,
        qos: QoS,
    ) -> Result<Subscription, Error> {
        let filter = filter.into();
        self.inner
            .limits
            .check_filter(&filter, qos)
            .map_err(|v| v.into_error(&filter))?;
        self.request(|respond| {
            Command::Subscription(Box::new(Request::Subscribe {
                filter,
                qos,
                respond,
            }))
        })
        .await
    }

    /// Unsubscribes from `filter`; every stream of that filter ends.
    pub async fn unsubscribe(&self, filter: impl Into<String>) -> Result<(), Error> {
        let filter = filter.into();
        self.inner
            .limits
            .check_filter(&filter, QoS::AtMostOnce)
            .map_err(|v| v.into_error(&filter))?;
        self.request(|respond| {
            Command::Subscription(Box::new(Request::Unsubscribe { filter, respond }))
        })
        .await
    }

    /// Subscribes (QoS 1) to the device's cloud-to-device topic,
    /// `device/{thing}/messages/devicebound/#` unless configured otherwise,
    /// and yields each message with the part of its topic after that prefix.
    pub async fn cloud_to_device(&self) -> Result<CloudToDevice, Error> {
        let filter = self.inner.cloud_to_device_filter.clone();
        let prefix = filter.trim_end_matches('#').to_owned();
        let subscription = self.subscribe(filter, QoS::AtLeastOnce).await?;
        Ok(CloudToDevice::new(prefix, subscription))
    }

    /// The thing's classic shadow (`$aws/things/{thing}/shadow`); see
    /// [`crate::shadow`].
    pub fn shadow(&self) -> ShadowClient {
        ShadowClient::new(self.clone(), self.inner.thing_name.clone(), None)
    }

    /// The thing's named shadow `name` (`$aws/things/{thing}/shadow/name/{name}`).
    /// A name AWS does not accept makes every request fail without sending.
    pub fn named_shadow(&self, name: impl Into<String>) -> ShadowClient {
        ShadowClient::new(
            self.clone(),
            self.inner.thing_name.clone(),
            Some(name.into()),
        )
    }

    /// A shadow of any thing (`name`: `None` for the classic shadow), for an
    /// application working on its devices' shadows; the policy must allow it.
    pub fn thing_shadow(&self, thing: impl Into<String>, name: Option<&str>) -> ShadowClient {
        ShadowClient::new(self.clone(), thing.into(), name.map(str::to_owned))
    }

    /// The thing's jobs (`$aws/things/{thing}/jobs`): the Jobs device API and
    /// a [`JobRunner`](crate::jobs::JobRunner); see [`crate::jobs`].
    pub fn jobs(&self) -> JobsClient {
        JobsClient::new(self.clone(), self.inner.thing_name.clone())
    }

    /// The service framework's state (see [`crate::service`]).
    pub(crate) fn services(&self) -> &Services {
        &self.inner.services
    }

    /// Which connection the client is on, for requests waiting for replies.
    pub(crate) fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    /// A stream of every message the client receives from now on, whatever
    /// subscription it matched.
    pub fn messages(&self) -> Messages {
        self.inner.listeners.messages()
    }

    /// The connection state: read it with `borrow()`, wait for changes with
    /// `changed()`. Holds only the latest state; see
    /// [`status_events`](Self::status_events) for every transition.
    pub fn status(&self) -> watch::Receiver<ConnectionState> {
        self.inner.status.clone()
    }

    /// A stream of every connection state change from now on.
    pub fn status_events(&self) -> StatusEvents {
        self.inner.listeners.status_events()
    }

    /// Closes the client: waits (up to the close timeout) for QoS 1
    /// publishes in flight to be acknowledged, sends DISCONNECT, closes the
    /// connection, fails every request still waiting with
    /// [`crate::ErrorKind::Closed`], and ends every stream. Idempotent.
    pub async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.inner.commands.send(Command::Close(done)).await.is_ok() {
            // An error means the driver already stopped: closed either way.
            let _ = closed.await;
        }
    }

    async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, Error>>) -> Command,
    ) -> Result<T, Error> {
        let (respond, response) = oneshot::channel();
        self.inner
            .commands
            .send(make(respond))
            .await
            .map_err(|_| Error::closed())?;
        response.await.unwrap_or_else(|_| Err(Error::closed()))
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.client_id())
            .field("state", &*self.inner.status.borrow())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_and_their_futures_can_move_between_tasks() {
        fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
        fn assert_send<T: Send>(_: &T) {}
        assert_send_sync::<Client>();
        let client: Option<Client> = None;
        if let Some(client) = client {
            assert_send(&client.publish("t", "p", QoS::AtLeastOnce));
            assert_send(&client.subscribe("t", QoS::AtLeastOnce));
            assert_send(&client.cloud_to_device());
            assert_send(&client.close());
        }
    }
}
