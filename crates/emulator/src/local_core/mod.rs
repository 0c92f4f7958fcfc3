//! A local Greengrass core device: the MQTT broker that Greengrass client
//! devices discover and connect to on their own network (AWS's client device
//! auth and Moquette broker components, docs/aws-iot-core-behaviour.md §5.3).
//!
//! [`LocalCore::start`] runs, beside the cloud emulator whose [`Control`] it
//! is given:
//! * a broker (an [`Emulator`] of its own, state under `<dir>/broker/`) that
//!   presents a server certificate issued by the core's own CA
//!   (`<dir>/pki/ca.pem`, "Greengrass Core CA"), for `localhost`, `127.0.0.1`,
//!   `::1` and every host of the core's connectivity information, valid for
//!   [`LocalCoreConfig::rotate_every`] and issued again on that schedule and
//!   whenever the connectivity hosts change, as AWS's client device auth does
//!   every 7 days;
//! * the CA uploaded to the cloud (`PutCertificateAuthorities`), so that
//!   discovery hands it to client devices; [`LocalCore::rotate_ca`] makes a
//!   new one;
//! * client device authentication as the cloud sees it: the certificates of
//!   the things associated with the core are mirrored into the broker's
//!   registry ([`LocalCore::sync`]) at start and every [`LocalCoreConfig::sync_every`],
//!   and the mirror keeps serving while the cloud cannot be read;
//! * authorization ([`LocalCoreConfig::client_policy`]) by AWS's client
//!   device auth configuration (device groups and their policies,
//!   [`DeviceGroups`]) or by one IoT policy for every client device; by
//!   default a device connects with its thing name as client id (AWS's client
//!   device auth requires it) and publishes and subscribes to any topic. The
//!   core's own certificates get every right, for the bridge to the cloud.
//!
//! If the core has no connectivity information, it sets it to the broker's
//! address, as AWS's IP detector component reports the core's addresses.

mod device_groups;
mod identity;
mod sync;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use iotcore_model::greengrass::ConnectivityInfo;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::control::{
    Control, ControlError, GetConnectivityInfoRequest, ListClientDevicesRequest,
    UpdateConnectivityInfoRequest,
};
use crate::pki::{DeviceCredentials, Pki, PkiError, PkiOptions};
use crate::policy::ArnScope;
use crate::quotas::Quotas;
use crate::things::{DeviceFiles, DeviceFilesError};
use crate::tls::{ServerCertificate, TlsSetupError};
use crate::{Emulator, EmulatorConfig, EmulatorError};

pub use device_groups::{DeviceGroups, DeviceGroupsError};
pub use identity::CORE_CLOUD_POLICY_NAME;
use sync::LocalPolicy;
pub use sync::Synced;

/// The common name of a core's CA, as AWS's client device auth names it.
pub const CORE_CA_COMMON_NAME: &str = "Greengrass Core CA";

/// How long the core's server certificate is valid, and how often it is
/// issued again, by default: AWS's 7 days.
pub const DEFAULT_ROTATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// How often the core reads its client devices from the cloud by default.
pub const DEFAULT_SYNC: Duration = Duration::from_secs(10);

/// The local policy every client device's certificate is attached to.
const CLIENT_POLICY_NAME: &str = "greengrass-client-devices";

/// The local policy of the core's own certificates.
const CORE_POLICY_NAME: &str = "greengrass-core";

/// How to run a [`LocalCore`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LocalCoreConfig {
    /// The core device's thing name in the cloud.
    pub name: String,
    /// Where the core keeps its CA (`pki/`) and its broker's state (`broker/`).
    pub dir: PathBuf,
    /// The broker's address. AWS's default port is 8883.
    pub bind: SocketAddr,
    /// How long a server certificate is valid; a new one is issued when it is
    /// over. AWS: 7 days ([`DEFAULT_ROTATION`]); 60 s to 10 days allowed there.
    pub rotate_every: Duration,
    /// How often the client devices are read from the cloud ([`DEFAULT_SYNC`]).
    pub sync_every: Duration,
    /// What client devices may do on the core: AWS's client device auth
    /// configuration (`{"deviceGroups": …}`, [`DeviceGroups`]), or an IoT
    /// policy document that every client device is held to; `None`:
    /// [`default_client_policy`].
    pub client_policy: Option<String>,
}

impl LocalCoreConfig {
    /// The defaults for core `name` with state under `dir`, the broker on `bind`.
    pub fn new(name: impl Into<String>, dir: impl Into<PathBuf>, bind: SocketAddr) -> Self {
        LocalCoreConfig {
            name: name.into(),
            dir: dir.into(),
            bind,
            rotate_every: DEFAULT_ROTATION,
            sync_every: DEFAULT_SYNC,
            client_policy: None,
        }
    }

    /// Sets [`LocalCoreConfig::rotate_every`].
    pub fn with_rotate_every(mut self, every: Duration) -> Self {
        self.rotate_every = every;
        self
    }

    /// Sets [`LocalCoreConfig::sync_every`].
    pub fn with_sync_every(mut self, every: Duration) -> Self {
        self.sync_every = every;
        self
    }

    /// Sets [`LocalCoreConfig::client_policy`].
    pub fn with_client_policy(mut self, document: impl Into<String>) -> Self {
        self.client_policy = Some(document.into());
        self
    }
}

/// What client devices may do on a core unless told otherwise: connect with
/// their thing name as client id, publish, receive and subscribe anywhere
/// (`region` and `account` as the cloud's ARNs have them).
pub fn default_client_policy(region: &str, account: &str) -> String {
    let arn = |resource: &str| format!("arn:aws:iot:{region}:{account}:{resource}");
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect",
             "Resource": arn("client/${iot:Connection.Thing.ThingName}")},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive", "iot:RetainPublish"],
             "Resource": arn("topic/*")},
            {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": arn("topicfilter/*")}
        ]
    })
    .to_string()
}

/// The core's own certificates may do anything on its broker (the bridge).
fn core_policy() -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]
    })
    .to_string()
}

/// Why a local core could not start or do what it was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalCoreError {
    /// The core's CA or server certificate could not be made or loaded.
    #[error("the core's CA: {0}")]
    Pki(#[from] PkiError),
    /// rustls refused the server certificate.
    #[error("the core's server certificate: {0}")]
    Tls(#[from] TlsSetupError),
    /// The broker did not start.
    #[error("the core's broker: {0}")]
    Broker(#[from] EmulatorError),
    /// A cloud or local registry operation failed (the core is not a core
    /// device, the cloud's data directory is unreadable, …).
    #[error("{0}")]
    Control(#[from] ControlError),
    /// The core's certificate file is not a PEM certificate.
    #[error("{}: {reason}; delete it and its key for the core to get a new certificate", path.display())]
    Identity {
        /// The certificate file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The core's certificate files could not be written.
    #[error("{0}")]
    Files(#[from] DeviceFilesError),
    /// The client policy is a `deviceGroups` configuration that cannot be used.
    #[error("the client device auth configuration: {0}")]
    DeviceGroups(#[from] DeviceGroupsError),
    /// A blocking task panicked or was cancelled.
    #[error("a background task of the core failed: {0}")]
    Task(String),
}

/// A running local Greengrass core. Stop it with [`LocalCore::shutdown`].
#[derive(Debug)]
pub struct LocalCore {
    shared: Arc<Shared>,
    broker: Emulator,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// What the core's background task and its handle share.
#[derive(Debug)]
struct Shared {
    config: LocalCoreConfig,
    cloud: Control,
    local: Control,
    ca: RwLock<Arc<Pki>>,
    certificate: ServerCertificate,
    /// The extra names of the certificate presented now.
    names: RwLock<Vec<String>>,
    /// What client devices may do.
    client_policies: ClientPolicies,
    /// The core's own certificate in the cloud, and its files.
    identity: (DeviceFiles, DeviceCredentials),
}

/// The local policies of client devices.
#[derive(Debug)]
enum ClientPolicies {
    /// One IoT policy document for every client device.
    One(String),
    /// AWS's device groups, and each of their policies as an IoT document.
    Groups(DeviceGroups, BTreeMap<String, String>),
}

impl ClientPolicies {
    fn new(
        document: Option<String>,
        scope: &ArnScope,
    ) -> Result<ClientPolicies, DeviceGroupsError> {
        let (region, account) = (scope.region(), scope.account_id());
        Ok(match document {
            Some(document) if DeviceGroups::is_device_groups(&document) => {
                let groups = DeviceGroups::parse(&document)?;
                let documents = groups.documents(region, account);
                ClientPolicies::Groups(groups, documents)
            }
            Some(document) => ClientPolicies::One(document),
            None => ClientPolicies::One(default_client_policy(region, account)),
        })
    }

    /// The local policies of client device `thing`: none when it is in no
    /// device group (it may then do nothing, as with the component).
    fn of(&self, thing: &str) -> Vec<LocalPolicy<'_>> {
        match self {
            ClientPolicies::One(document) => vec![LocalPolicy {
                name: CLIENT_POLICY_NAME,
                document,
            }],
            ClientPolicies::Groups(groups, documents) => groups
                .policies_of(thing)
                .iter()
                .filter_map(|name| documents.get_key_value(name))
                .map(|(name, document)| LocalPolicy { name, document })
                .collect(),
        }
    }
}

impl LocalCore {
    /// Starts core `config.name` of the cloud whose registry `cloud` is: loads
    /// or creates its CA, issues a server certificate, starts its broker,
    /// uploads the CA, sets the connectivity information if there is none,
    /// and mirrors its client devices. Fails if the thing is not a core
    /// device of the cloud (`iotcore greengrass core create`), or the address
    /// is taken.
    pub async fn start(
        config: LocalCoreConfig,
        cloud: Control,
    ) -> Result<LocalCore, LocalCoreError> {
        let client_policies = ClientPolicies::new(config.client_policy.clone(), cloud.arn_scope())?;
        let (ca, names, identity) = {
            let (cloud, dir, name) = (cloud.clone(), config.dir.clone(), config.name.clone());
            blocking(move || {
                let names = connectivity_hosts(&cloud, &name)?;
                let ca = Pki::load_or_create_with(&dir, &ca_options())?;
                let identity = identity::core_identity(&cloud, &name, &dir)?;
                Ok((ca, names, identity))
            })
            .await?
        };
        let (chain, key) = ca.issue_server_certificate(&names, config.rotate_every)?;
        let certificate = ServerCertificate::new(chain, key)?;
        let scope = cloud.arn_scope().clone();
        let broker = Emulator::start(
            EmulatorConfig::new(config.dir.join("broker"))
                .with_bind(config.bind)
                .with_arn_scope(scope.region(), scope.account_id())
                .with_server_certificate(certificate.clone())
                // A core's broker has no throttling quotas (Moquette has none).
                .with_quotas(Quotas::off())
                .with_client_trust(vec![cloud.pki().ca_der().clone()]),
        )
        .await?;
        let shared = Arc::new(Shared {
            local: broker.control().clone(),
            cloud,
            ca: RwLock::new(Arc::new(ca)),
            certificate,
            names: RwLock::new(names),
            identity,
            client_policies,
            config,
        });
        {
            let shared = Arc::clone(&shared);
            let addr = broker.local_addr();
            blocking(move || {
                shared.upload_ca()?;
                shared.report_address(addr)?;
                shared.sync()?;
                Ok(())
            })
            .await?;
        }
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(Arc::clone(&shared), stopped));
        tracing::info!(
            core = %shared.config.name,
            local_addr = %broker.local_addr(),
            "Greengrass core listening (MQTT over TLS, client devices by their IoT certificates)"
        );
        Ok(LocalCore {
            shared,
            broker,
            stop,
            task,
        })
    }

    /// The broker's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.broker.local_addr()
    }

    /// The core's CA certificate, PEM: what discovery hands client devices.
    pub fn ca_pem(&self) -> String {
        self.shared.ca().ca_pem().to_owned()
    }

    /// The files of the core's own certificate in the cloud (created on the
    /// first start): what its bridge connects with.
    pub fn identity_files(&self) -> &DeviceFiles {
        &self.shared.identity.0
    }

    /// The core's own certificate and key in the cloud.
    pub fn identity(&self) -> &DeviceCredentials {
        &self.shared.identity.1
    }

    /// The core's broker: its registry (the mirror), data plane and shadows.
    pub fn broker(&self) -> &Emulator {
        &self.broker
    }

    /// Issues a new server certificate now (the schedule goes on).
    pub async fn rotate_server_certificate(&self) -> Result<(), LocalCoreError> {
        let shared = Arc::clone(&self.shared);
        blocking(move || shared.rotate_server_certificate()).await
    }

    /// Replaces the core's CA with a new one, uploads it to the cloud and
    /// issues a server certificate under it: client devices that trust the
    /// old CA fail their next TLS handshake and must discover again.
    pub async fn rotate_ca(&self) -> Result<(), LocalCoreError> {
        let shared = Arc::clone(&self.shared);
        blocking(move || {
            let ca = Pki::replace_ca(&shared.config.dir, &ca_options())?;
            *shared.ca.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(ca);
            shared.upload_ca()?;
            shared.rotate_server_certificate()
        })
        .await
    }

    /// Reads the client devices from the cloud now and mirrors them.
    pub async fn sync(&self) -> Result<Synced, LocalCoreError> {
        let shared = Arc::clone(&self.shared);
        blocking(move || shared.sync()).await
    }

    /// Stops the background task and the broker.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!("the core's background task failed: {e}");
        }
        self.broker.shutdown().await;
    }
}

impl Shared {
    fn ca(&self) -> Arc<Pki> {
        Arc::clone(&self.ca.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn upload_ca(&self) -> Result<(), LocalCoreError> {
        let pem = self.ca().ca_pem().to_owned();
        self.cloud
            .put_certificate_authorities(&self.config.name, &[pem])?;
        Ok(())
    }

    /// Sets the core's connectivity information to `addr` if it has none.
    fn report_address(&self, addr: SocketAddr) -> Result<(), LocalCoreError> {
        let request = GetConnectivityInfoRequest {
            thing_name: self.config.name.clone(),
        };
        if !self
            .cloud
            .get_connectivity_info(request)?
            .connectivity_info
            .is_empty()
        {
            return Ok(());
        }
        let host = addr.ip().to_string();
        tracing::info!(core = %self.config.name, %addr, "no connectivity information: reporting the broker's address");
        self.cloud
            .update_connectivity_info(UpdateConnectivityInfoRequest {
                thing_name: self.config.name.clone(),
                connectivity_info: vec![ConnectivityInfo {
                    id: host.clone(),
                    host_address: host,
                    port: addr.port(),
                    metadata: String::new(),
                }],
            })?;
        Ok(())
    }

    fn rotate_server_certificate(&self) -> Result<(), LocalCoreError> {
        let names = connectivity_hosts(&self.cloud, &self.config.name)?;
        self.present_certificate_for(names)
    }

    /// Issues a server certificate for `names` and presents it from now on.
    fn present_certificate_for(&self, names: Vec<String>) -> Result<(), LocalCoreError> {
        let (chain, key) = self
            .ca()
            .issue_server_certificate(&names, self.config.rotate_every)?;
        self.certificate.replace(chain, key)?;
        tracing::info!(core = %self.config.name, ?names, "issued a new server certificate");
        *self.names.write().unwrap_or_else(PoisonError::into_inner) = names;
        Ok(())
    }

    /// Mirrors the client devices; issues a new server certificate if the
    /// connectivity hosts changed.
    fn sync(&self) -> Result<Synced, LocalCoreError> {
        let name = &self.config.name;
        let mut things = BTreeMap::new();
        for thing in associated_things(&self.cloud, name)? {
            let policies = self.client_policies.of(&thing);
            things.insert(thing, policies);
        }
        let core_document = core_policy();
        let core = LocalPolicy {
            name: CORE_POLICY_NAME,
            document: &core_document,
        };
        things.insert(name.clone(), vec![core]);
        let synced = sync::sync_devices(&self.cloud, &self.local, &things)?;
        let hosts = connectivity_hosts(&self.cloud, name)?;
        let current = self
            .names
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if hosts != current {
            self.present_certificate_for(hosts)?;
        }
        Ok(synced)
    }
}

/// Rotates the certificate on schedule and syncs until told to stop.
async fn run(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let mut sync = tokio::time::interval(shared.config.sync_every);
    let mut rotate = tokio::time::interval(shared.config.rotate_every);
    sync.tick().await;
    rotate.tick().await;
    loop {
        let work: fn(&Shared) -> Result<(), LocalCoreError> = tokio::select! {
            _ = stopped.changed() => return,
            _ = sync.tick() => |shared| shared.sync().map(drop),
            _ = rotate.tick() => Shared::rotate_server_certificate,
        };
        let task = Arc::clone(&shared);
        if let Err(e) = blocking(move || work(&task)).await {
            tracing::warn!(core = %shared.config.name, "{e}; the core goes on with what it had");
        }
    }
}

/// The thing names associated with core `name`.
fn associated_things(cloud: &Control, name: &str) -> Result<BTreeSet<String>, ControlError> {
    let mut things = BTreeSet::new();
    let mut next_token = None;
    loop {
        let page =
            cloud.list_client_devices_associated_with_core_device(ListClientDevicesRequest {
                core_device_thing_name: name.to_owned(),
                max_results: None,
                next_token,
            })?;
        things.extend(
            page.associated_client_devices
                .into_iter()
                .map(|d| d.thing_name),
        );
        match page.next_token {
            Some(token) => next_token = Some(token),
            None => return Ok(things),
        }
    }
}

/// The hosts of core `name`'s connectivity information, sorted, deduplicated.
fn connectivity_hosts(cloud: &Control, name: &str) -> Result<Vec<String>, ControlError> {
    let info = cloud.get_connectivity_info(GetConnectivityInfoRequest {
        thing_name: name.to_owned(),
    })?;
    let hosts: BTreeSet<String> = info
        .connectivity_info
        .into_iter()
        .map(|c| c.host_address)
        .collect();
    Ok(hosts.into_iter().collect())
}

fn ca_options() -> PkiOptions {
    PkiOptions::default().with_ca_common_name(CORE_CA_COMMON_NAME)
}

/// Runs `f` on tokio's blocking pool (registry and key work).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, LocalCoreError> + Send + 'static,
) -> Result<T, LocalCoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| LocalCoreError::Task(e.to_string()))?
}
