//! A device that keeps its state in step with its shadow.
//!
//! ```text
//! cargo run -p iotcore --example shadow
//! ```
//!
//! With no settings it starts an emulator of AWS IoT Core in this process
//! (state in a temporary directory) and registers a lamp (a thing confined to
//! its own topics) and a fleet application (allowed on every device's shadow).
//! Then:
//!
//! 1. the lamp starts a [`ShadowManager`], which reads its shadow (none yet),
//!    and reports its state, a `Lamp` struct, through serde;
//! 2. the application asks for another brightness (`update_desired` on the
//!    lamp's shadow);
//! 3. the lamp receives the desired change, applies it and reports back;
//! 4. the application reads the shadow: desired and reported agree.
//!
//! To use a running emulator or AWS IoT Core instead, set:
//!
//! ```text
//! IOTCORE_ENDPOINT=xxxx-ats.iot.eu-west-1.amazonaws.com   # or 127.0.0.1
//! IOTCORE_PORT=8883                                        # optional
//! IOTCORE_THING=my-lamp
//! IOTCORE_CERT=my-lamp.cert.pem IOTCORE_KEY=my-lamp.private.key
//! IOTCORE_ROOT_CA=root-ca.pem                              # optional for AWS
//! ```
//!
//! The application side then connects with the same certificate as client id
//! `<thing>-app`, so the certificate's policy must allow that client id and
//! the shadow topics of the thing.

use std::error::Error;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;
use iotcore::shadow::ShadowManager;
use iotcore::{Client, ClientBuilder};
use iotcore_emulator::control::{ThingOptions, ThingPolicy};
use iotcore_emulator::pki::{DeviceCredentials, KeyAlgorithm};
use iotcore_emulator::policy::PolicyTemplate;
use iotcore_emulator::{Emulator, EmulatorConfig};
use serde::{Deserialize, Serialize};

/// The lamp's state, as it keeps it in its shadow.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Lamp {
    on: bool,
    brightness: u8,
}

/// An emulator in this process, with one identity per client.
struct Local {
    emulator: Emulator,
    lamp: DeviceCredentials,
    app: DeviceCredentials,
}

/// How the two clients are built.
enum Setup {
    /// An emulator in this process.
    Local(Box<Local>),
    /// Settings from the environment: one certificate for both clients.
    Remote {
        endpoint: String,
        port: u16,
        cert: PathBuf,
        key: PathBuf,
        root_ca: Option<PathBuf>,
    },
}

impl Setup {
    fn builder(
        &self,
        thing: &str,
        client_id: &str,
        lamp: bool,
    ) -> Result<ClientBuilder, Box<dyn Error>> {
        let builder = Client::builder(thing).client_id(client_id);
        Ok(match self {
            Setup::Local(local) => {
                let identity = if lamp { &local.lamp } else { &local.app };
                builder
                    .endpoint("127.0.0.1")
                    .port(local.emulator.local_addr().port())
                    .root_ca_pem(local.emulator.ca_pem())?
                    .client_cert_pem(&identity.certificate_pem, &identity.private_key_pem)?
            }
            Setup::Remote {
                endpoint,
                port,
                cert,
                key,
                root_ca,
            } => {
                let mut builder = builder
                    .endpoint(endpoint)
                    .port(*port)
                    .client_cert_pem_files(cert, key)?;
                if let Some(ca) = root_ca {
                    builder = builder.root_ca_pem_file(ca)?;
                }
                builder
            }
        })
    }
}

/// Starts an emulator and registers the lamp and the application.
async fn local(dir: &std::path::Path, lamp: &str, app: &str) -> Result<Setup, Box<dyn Error>> {
    let config = EmulatorConfig::new(dir).with_bind("127.0.0.1:0".parse()?);
    let emulator = Emulator::start(config).await?;
    println!("emulator listening on {}", emulator.local_addr());
    let register = |name: &str, template: PolicyTemplate| {
        let options = ThingOptions::default()
            .with_key(KeyAlgorithm::EcdsaP256)
            .with_policy(ThingPolicy::Template(template));
        emulator
            .control()
            .create_thing_with_certificate(name, &options)
            .map(|c| c.credentials)
    };
    let lamp = register(lamp, PolicyTemplate::Thing)?;
    let app = register(app, PolicyTemplate::Application)?;
    Ok(Setup::Local(Box::new(Local {
        emulator,
        lamp,
        app,
    })))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let var = |name: &str| std::env::var(name).ok();
    let dir = tempfile::tempdir()?;
    let thing = var("IOTCORE_THING").unwrap_or_else(|| "shadow-lamp".into());
    let app_id = format!("{thing}-app");
    let setup = match var("IOTCORE_ENDPOINT") {
        Some(endpoint) => Setup::Remote {
            endpoint,
            port: var("IOTCORE_PORT")
                .and_then(|p| p.parse().ok())
                .unwrap_or(iotcore::DEFAULT_PORT),
            cert: var("IOTCORE_CERT")
                .unwrap_or_else(|| format!("{thing}.cert.pem"))
                .into(),
            key: var("IOTCORE_KEY")
                .unwrap_or_else(|| format!("{thing}.private.key"))
                .into(),
            root_ca: var("IOTCORE_ROOT_CA").map(PathBuf::from),
        },
        None => local(dir.path(), &thing, &app_id).await?,
    };

    // The lamp: a manager keeps its copy of the shadow.
    let lamp = setup.builder(&thing, &thing, true)?.connect().await?;
    let (manager, mut changes) = ShadowManager::start(lamp.shadow()).await?;
    println!("lamp: shadow read, version {:?}", manager.local().version);
    let mut state = Lamp {
        on: true,
        brightness: 30,
    };
    let accepted = manager.report(&state).await?;
    println!(
        "lamp: reported {state:?}, shadow version {}",
        accepted.version
    );

    // The application asks for more light.
    let app = setup.builder(&app_id, &app_id, false)?.connect().await?;
    let lamp_shadow = app.thing_shadow(&thing, None).typed::<Lamp>();
    let wanted = Lamp {
        on: true,
        brightness: 80,
    };
    let accepted = lamp_shadow.desire(&wanted).await?;
    println!(
        "app: desired {wanted:?}, shadow version {}",
        accepted.version
    );

    // The lamp applies the change and reports back.
    let change = tokio::time::timeout(Duration::from_secs(10), changes.next())
        .await?
        .ok_or("the lamp's change stream ended")?;
    println!(
        "lamp: desired change {} at version {}",
        serde_json::Value::Object(change.delta().clone()),
        change.version()
    );
    state = change.apply_to(&state)?;
    let accepted = manager.report(&state).await?;
    println!(
        "lamp: now {state:?}, reported at version {}",
        accepted.version
    );

    // The application sees the lamp caught up.
    let document = lamp_shadow.get().await?;
    println!(
        "app: shadow version {}: desired {:?}, reported {:?}, delta {:?}",
        document.version, document.desired, document.reported, document.delta
    );

    drop(manager);
    app.close().await;
    lamp.close().await;
    if let Setup::Local(local) = setup {
        local.emulator.shutdown().await;
    }
    Ok(())
}
