//! The running emulator: its handle, start-up and shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use iotcore_mqtt::server::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::accept::{Doors, WebSocketAuth};
use crate::api::handler::Operations;
use crate::api::server::{ApiServerConfig, CredentialLookup, HttpOverTls, http_over_tls};
use crate::api::sigv4::{SigV4Policy, StoredCredential};
use crate::broker::Broker;
use crate::broker::authz::Authorizer;
use crate::broker::journal::{Journal, run_writer};
use crate::broker::records::{restored_session, retained_message};
use crate::config::EmulatorConfig;
use crate::connection::Shared;
use crate::console::{Console, Place};
use crate::control::Control;
use crate::data_plane::DataPlane;
use crate::error::EmulatorError;
use crate::jobs::JobsService;
use crate::lifecycle::Lifecycle;
use crate::pki::{Pki, PkiOptions};
use crate::policy::ArnScope;
use crate::provisioning::ProvisioningService;
use crate::quotas::ConnectRate;
use crate::registry_watch::RegistryWatch;
use crate::services::Services;
use crate::shadow::{ShadowService, Shadows};
use crate::store::{CertificateStatus, Store, StoreError};
use crate::tls::{Admission, ServerCertificate, TlsConfigs};

/// A running emulator of AWS IoT Core's MQTT broker.
///
/// Start it with [`Emulator::start`]; stop it with [`Emulator::shutdown`] (or
/// [`Emulator::run_until`]). Dropping the handle also stops it, without waiting.
///
/// ```no_run
/// # async fn example() -> Result<(), iotcore_emulator::EmulatorError> {
/// use iotcore_emulator::{Emulator, EmulatorConfig};
/// let config = EmulatorConfig::new("/tmp/iotcore").with_bind("127.0.0.1:0".parse().unwrap());
/// let emulator = Emulator::start(config).await?;
/// println!("listening on {}", emulator.local_addr());
/// emulator.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Emulator {
    local_addr: SocketAddr,
    data_dir: PathBuf,
    pki: Arc<Pki>,
    broker: Arc<Broker>,
    shadows: ShadowService,
    control: Control,
    data_plane: DataPlane,
    api_addr: Option<SocketAddr>,
    discovery_addr: Option<SocketAddr>,
    console_addr: Option<SocketAddr>,
    scope: ArnScope,
    stop: watch::Sender<bool>,
    listener: JoinHandle<()>,
}

impl Emulator {
    /// Starts an emulator: loads (or creates, on first start) the CA, the server
    /// certificate and the registry under [`EmulatorConfig::data_dir`], restores
    /// retained messages and persistent sessions, and listens on
    /// [`EmulatorConfig::bind`].
    ///
    /// Fails if the address is in use ([`EmulatorError::AddressInUse`]), the data
    /// directory is not writable, or its files are damaged; the error says what to do.
    pub async fn start(config: EmulatorConfig) -> Result<Emulator, EmulatorError> {
        let data_dir = config.data_dir.clone();
        let options = PkiOptions::with_extra_server_names(config.extra_server_names.clone());
        let (pki, store) = tokio::task::spawn_blocking(move || {
            let pki = Pki::load_or_create_with(&data_dir, &options)?;
            let store = Store::open(&data_dir)?;
            Ok::<_, EmulatorError>((pki, store))
        })
        .await
        .map_err(|e| EmulatorError::Startup(e.to_string()))??;
        let pki = Arc::new(pki);

        let (listener, local_addr) = bind(config.bind).await?;
        let api = match config.api_bind {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let discovery = match config.discovery_bind {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let console = match config.console_bind {
            Some(addr) if !addr.ip().is_loopback() => {
                return Err(EmulatorError::Startup(format!(
                    "the console has no login: it listens on a loopback address only, not {addr}"
                )));
            }
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };

        let server_certificate = match &config.server_certificate {
            Some(certificate) => certificate.clone(),
            None => ServerCertificate::new(pki.server_cert_chain(), pki.server_private_key())?,
        };
        let client_roots: Vec<_> = std::iter::once(pki.ca_der().clone())
            .chain(config.client_trust.iter().cloned())
            .collect();
        let tls = TlsConfigs::new(&client_roots, &server_certificate, admission(store.clone()))?;
        let mut server_config = ServerConfig::aws();
        server_config.max_incoming_packet_size = config.limits.max_packet_size;
        server_config.max_inflight = config.limits.max_inflight_outbound;
        server_config.min_keep_alive = config.limits.min_keep_alive;
        server_config.max_keep_alive = config.limits.max_keep_alive;
        server_config.receive_maximum = config.quotas.receive_maximum();
        let connects = ConnectRate::new(config.quotas.connects_per_second);
        let max_shadow_in_flight = config.quotas.max_shadow_in_flight();

        let (stop, closing) = watch::channel(false);
        if config.fsync {
            store.set_fsync(true)?;
        }
        let (journal, ops) = Journal::channel();
        tokio::spawn(run_writer(store.clone(), ops));
        let data_dir = config.data_dir.clone();
        let scope = config.arn_scope();
        let clock = config.clock.clone();
        let registry = RegistryWatch::start(&config.data_dir, closing.clone());
        let broker = Arc::new(Broker::new(config, journal, closing.clone()));
        restore(&broker, &store).await?;
        let shadows = ShadowService::start(
            store.clone(),
            Arc::clone(&broker),
            max_shadow_in_flight,
            clock.clone(),
            closing.clone(),
        );
        let provisioning = ProvisioningService::start(
            store.clone(),
            Arc::clone(&pki),
            Arc::clone(&broker),
            scope.clone(),
            clock.clone(),
            closing.clone(),
        );

        let control = {
            let registry = registry.clone();
            let endpoint = match local_addr.port() {
                crate::config::DEFAULT_PORT => "localhost".to_owned(),
                port => format!("localhost:{port}"),
            };
            Control::new(
                store.clone(),
                Arc::clone(&pki),
                scope.clone(),
                endpoint,
                Some(Arc::new(move || registry.poke())),
            )
            .with_clock(clock)
        };
        let data_plane = DataPlane::new(
            Arc::clone(&broker),
            Shadows::new(shadows.clone()),
            store.clone(),
        );
        let jobs = JobsService::start(
            control.clone(),
            Arc::clone(&broker),
            registry.subscribe(),
            closing.clone(),
        );
        let http_api = Api::new(&pki, &store, &control, &data_plane, &closing)?;
        let shared = Arc::new(Shared {
            broker: Arc::clone(&broker),
            doors: Doors {
                tls,
                http: http_api.http_over_tls(),
                websocket: Arc::new(WebSocketAuth {
                    credentials: credential_lookup(store.clone()),
                    policy: SigV4Policy::websocket().with_region(scope.region()),
                    clock: Arc::new(SystemTime::now),
                    custom_authorizers: {
                        let store = store.clone();
                        Arc::new(move || {
                            store
                                .list_authorizers()
                                .is_ok_and(|authorizers| !authorizers.is_empty())
                        })
                    },
                }),
            },
            server_config,
            closing: closing.clone(),
            services: Services::new()
                .with(Arc::new(shadows.clone()))
                .with(Arc::new(provisioning))
                .with(Arc::new(jobs)),
            authz: Authorizer::new(store.clone(), scope.clone(), registry.clone()),
            lifecycle: Lifecycle::default(),
            connects,
        });
        let api_addr = match api {
            Some((api_listener, api_addr)) => {
                http_api.serve(api_listener);
                tracing::info!(
                    endpoint_url = %format!("https://localhost:{}", api_addr.port()),
                    "HTTPS API listening (AWS's iot and iot-data; SigV4 or a device certificate)"
                );
                Some(api_addr)
            }
            None => None,
        };
        let discovery_addr = discovery.map(|(discovery_listener, discovery_addr)| {
            http_api.serve_discovery(discovery_listener);
            tracing::info!(
                url = %format!("https://localhost:{}/greengrass/discover/thing/<thing>", discovery_addr.port()),
                "Greengrass discovery listening (a device certificate)"
            );
            discovery_addr
        });
        let console_addr = console.map(|(console_listener, console_addr)| {
            let console = Console::new(
                Arc::clone(&broker),
                store.clone(),
                control.clone(),
                data_plane.clone(),
                Shadows::new(shadows.clone()),
                Place {
                    mqtt: local_addr,
                    data_dir: data_dir.clone(),
                },
                closing.clone(),
            );
            tokio::spawn(console.serve(console_listener));
            tracing::info!(url = %format!("http://{console_addr}/"), "console listening");
            console_addr
        });
        let listener = tokio::spawn(crate::listener::run(
            listener,
            closing.clone(),
            "mqtt",
            move |tcp, peer, id| crate::accept::accept(Arc::clone(&shared), tcp, peer, id),
        ));
        tracing::info!(%local_addr, data_dir = %data_dir.display(), "emulator listening (MQTT over TLS, 3.1.1 and 5)");
        Ok(Emulator {
            local_addr,
            data_dir,
            pki,
            broker,
            shadows,
            control,
            data_plane,
            api_addr,
            discovery_addr,
            console_addr,
            scope,
            stop,
            listener,
        })
    }

    /// The address the listener is bound to (the actual port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address the HTTPS API listens on, when
    /// [`EmulatorConfig::api_bind`] asked for one.
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.api_addr
    }

    /// The address of the listener serving Greengrass discovery alone, when
    /// [`EmulatorConfig::discovery_bind`] asked for one.
    pub fn discovery_addr(&self) -> Option<SocketAddr> {
        self.discovery_addr
    }

    /// The address of the console, when [`EmulatorConfig::console_bind`]
    /// asked for one: open `http://<addr>/` in a browser.
    pub fn console_addr(&self) -> Option<SocketAddr> {
        self.console_addr
    }

    /// The root CA certificate, PEM-encoded: what clients must trust.
    pub fn ca_pem(&self) -> &str {
        self.pki.ca_pem()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The emulator's PKI: issue device certificates with it.
    pub fn pki(&self) -> &Pki {
        &self.pki
    }

    /// The control plane: AWS's registry operations (CreateThing,
    /// AttachPolicy, UpdateCertificate, …). Its changes apply to live
    /// connections at once.
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// The HTTP data plane: Publish, retained messages, shadows (AWS's `iot-data`).
    pub fn data_plane(&self) -> &DataPlane {
        &self.data_plane
    }

    /// The region and account the emulator's resource ARNs are in (what policies name).
    pub fn arn_scope(&self) -> &ArnScope {
        &self.scope
    }

    /// The Device Shadow service's documents as the cloud side sees them: get,
    /// update and delete without MQTT (what AWS's data-plane API does). Updates
    /// and deletes publish to the shadow's MQTT topics like MQTT requests do.
    pub fn shadows(&self) -> Shadows {
        Shadows::new(self.shadows.clone())
    }

    /// Stops the emulator gracefully: stops accepting, tells every connected
    /// client (MQTT 5: DISCONNECT 0x8B server shutting down), publishes their
    /// wills, and waits until the store has the persistent sessions' last state.
    pub async fn shutdown(mut self) {
        tracing::info!(local_addr = %self.local_addr, "emulator shutting down");
        let _ = self.stop.send(true);
        if let Err(e) = (&mut self.listener).await {
            tracing::error!("the listener task failed: {e}");
        }
        for session in self.broker.persistent_sessions() {
            session.log_settings();
        }
        if let Err(e) = self.broker.journal().sync().await {
            tracing::error!("the last changes to the broker state may be lost: {e}");
        }
        tracing::info!(local_addr = %self.local_addr, "emulator stopped");
    }

    /// Runs until `signal` completes (e.g. Ctrl-C), then shuts down gracefully.
    ///
    /// ```no_run
    /// # async fn example(emulator: iotcore_emulator::Emulator) {
    /// emulator.run_until(async { let _ = tokio::signal::ctrl_c().await; }).await;
    /// # }
    /// ```
    pub async fn run_until(self, signal: impl Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }
}

impl Drop for Emulator {
    /// Tells the tasks to stop if [`Emulator::shutdown`] was not called.
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Binds a listener, with errors that say what to do.
async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), EmulatorError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| match source.kind() {
            io::ErrorKind::AddrInUse => EmulatorError::AddressInUse { addr },
            _ => EmulatorError::Bind { addr, source },
        })?;
    let local = listener
        .local_addr()
        .map_err(|source| EmulatorError::Bind { addr, source })?;
    Ok((listener, local))
}

/// The HTTPS API: AWS's operations on the emulator's control and data planes,
/// for requests signed with the access keys in the store or made with a
/// device certificate; served on its own port and, to clients that choose
/// ALPN `x-amzn-http-ca`, on the MQTT port; Greengrass discovery alone on
/// the discovery port.
struct Api {
    config: ApiServerConfig,
    operations: Arc<Operations>,
    discovery: Arc<Operations>,
    closing: watch::Receiver<bool>,
}

impl Api {
    fn new(
        pki: &Pki,
        store: &Store,
        control: &Control,
        data_plane: &DataPlane,
        closing: &watch::Receiver<bool>,
    ) -> Result<Api, EmulatorError> {
        let tls = crate::api::tls::server_config_from_pki(pki)?;
        let mut config = ApiServerConfig::new(tls, credential_lookup(store.clone()));
        config.policy = SigV4Policy::api().with_region(control.arn_scope().region());
        Ok(Api {
            config,
            operations: Arc::new(Operations::new(control.clone(), data_plane.clone())),
            discovery: Arc::new(
                Operations::new(control.clone(), data_plane.clone()).discovery_only(),
            ),
            closing: closing.clone(),
        })
    }

    /// Serves the API on its own listener.
    fn serve(&self, listener: TcpListener) {
        tokio::spawn(crate::api::server::serve(
            listener,
            self.config.clone(),
            Arc::clone(&self.operations),
            self.closing.clone(),
        ));
    }

    /// Serves Greengrass discovery alone on its own listener.
    fn serve_discovery(&self, listener: TcpListener) {
        tokio::spawn(crate::api::server::serve(
            listener,
            self.config.clone(),
            Arc::clone(&self.discovery),
            self.closing.clone(),
        ));
    }

    /// The API for TLS connections the MQTT listener accepted.
    fn http_over_tls(&self) -> HttpOverTls {
        http_over_tls(
            self.config.clone(),
            Arc::clone(&self.operations),
            self.closing.clone(),
        )
    }
}

/// Looks access keys up in `store`, for SigV4 verification (the HTTPS API's
/// and the WebSocket door's).
fn credential_lookup(store: Store) -> CredentialLookup {
    Arc::new(move |access_key_id: &str| {
        let record = match store.credential(access_key_id) {
            Ok(record) => record?,
            Err(e) => {
                tracing::error!("cannot read access key {access_key_id}: {e}");
                return None;
            }
        };
        Some(StoredCredential {
            secret_access_key: record.secret_access_key,
            session_token: record.session_token,
            expires_at: record
                .expires_at
                .map(|at| UNIX_EPOCH + Duration::from_secs(u64::try_from(at).unwrap_or(0))),
        })
    })
}

/// Only certificates registered and ACTIVE may complete the TLS handshake.
fn admission(store: Store) -> Admission {
    Arc::new(move |id: &str| match store.certificate_status(id) {
        Ok(Some(CertificateStatus::Active)) => Ok(()),
        Ok(Some(status)) => Err(format!("certificate {id} is {status}")),
        Ok(None) => Err(format!(
            "unknown certificate id {id}: it is signed by this emulator's CA but not registered"
        )),
        Err(e) => Err(format!(
            "the registry lookup of certificate {id} failed: {e}"
        )),
    })
}

/// Loads retained messages and persistent sessions from the store.
async fn restore(broker: &Arc<Broker>, store: &Store) -> Result<(), EmulatorError> {
    let store = store.clone();
    let (retained, sessions) = tokio::task::spawn_blocking(move || {
        let retained = store.all_retained()?;
        let sessions = store
            .session_client_ids()?
            .into_iter()
            .filter_map(|id| store.load_session(&id).transpose())
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok::<_, StoreError>((retained, sessions))
    })
    .await
    .map_err(|e| EmulatorError::Startup(e.to_string()))??;
    let now = SystemTime::now();
    let (mut kept, mut resumed, mut queued, mut in_flight) = (0, 0, 0, 0);
    for record in retained {
        let message = retained_message(record);
        if !message.is_expired(now) {
            broker.restore_retained(message);
            kept += 1;
        }
    }
    for record in sessions {
        let client_id = record.client_id.clone();
        match restored_session(record, now) {
            Ok(session) => {
                queued += session.queued.len();
                in_flight += session.unacked.len();
                broker.restore_session(session, now);
                resumed += 1;
            }
            Err(why) => tracing::warn!(client_id, "stored session ignored: {why}"),
        }
    }
    tracing::info!(
        retained = kept,
        sessions = resumed,
        queued,
        in_flight,
        "broker state restored from the store"
    );
    if in_flight > 0 {
        // Sent before the stop and not acknowledged: the client may hold them,
        // or have acknowledged them after the last commit.
        tracing::info!(
            possible_duplicates = in_flight,
            "messages in flight at the stop are sent again with DUP set"
        );
    }
    Ok(())
}
