//! Telemetry and cloud-to-device messages, end to end.
//!
//! ```text
//! cargo run -p iotcore --example telemetry
//! ```
//!
//! With no settings it starts an emulator of AWS IoT Core in this process
//! (state in a temporary directory), registers two things with certificates,
//! connects a device and a "cloud" client, sends telemetry from the device,
//! sends a command from the cloud to the device, and prints every connection
//! status change along the way.
//!
//! To use a running emulator or AWS IoT Core instead, set:
//!
//! ```text
//! IOTCORE_ENDPOINT=xxxx-ats.iot.eu-west-1.amazonaws.com   # or 127.0.0.1
//! IOTCORE_PORT=8883                                        # optional
//! IOTCORE_THING=my-thing
//! IOTCORE_CERT=my-thing.cert.pem IOTCORE_KEY=my-thing.private.key
//! IOTCORE_ROOT_CA=root-ca.pem                              # optional for AWS
//! ```
//!
//! The cloud side then connects with the same certificate as client id
//! `<thing>-cloud`, so the certificate's policy must allow that client id.

use std::error::Error;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;
use iotcore::{Client, ClientBuilder, QoS};
use iotcore_emulator::control::{ThingOptions, ThingPolicy};
use iotcore_emulator::pki::KeyAlgorithm;
use iotcore_emulator::policy::PolicyTemplate;
use iotcore_emulator::things::write_device_files;
use iotcore_emulator::{Emulator, EmulatorConfig};

/// Where to connect and with which credentials.
struct Target {
    endpoint: String,
    port: u16,
    thing: String,
    device: (PathBuf, PathBuf),
    cloud: (String, PathBuf, PathBuf),
    root_ca: Option<PathBuf>,
}

impl Target {
    fn builder(
        &self,
        client_id: &str,
        cert: &PathBuf,
        key: &PathBuf,
    ) -> Result<ClientBuilder, Box<dyn Error>> {
        let mut builder = Client::builder(&self.thing)
            .client_id(client_id)
            .endpoint(&self.endpoint)
            .port(self.port)
            .client_cert_pem_files(cert, key)?;
        if let Some(ca) = &self.root_ca {
            builder = builder.root_ca_pem_file(ca)?;
        }
        Ok(builder)
    }
}

fn from_env() -> Option<Target> {
    let var = |name: &str| std::env::var(name).ok();
    let endpoint = var("IOTCORE_ENDPOINT")?;
    let thing = var("IOTCORE_THING").unwrap_or_else(|| "my-thing".into());
    let cert = PathBuf::from(var("IOTCORE_CERT").unwrap_or_else(|| format!("{thing}.cert.pem")));
    let key = PathBuf::from(var("IOTCORE_KEY").unwrap_or_else(|| format!("{thing}.private.key")));
    Some(Target {
        port: var("IOTCORE_PORT")
            .and_then(|p| p.parse().ok())
            .unwrap_or(iotcore::DEFAULT_PORT),
        cloud: (format!("{thing}-cloud"), cert.clone(), key.clone()),
        device: (cert, key),
        root_ca: var("IOTCORE_ROOT_CA").map(PathBuf::from),
        endpoint,
        thing,
    })
}

/// Starts an emulator and registers the device and the cloud client.
async fn local_emulator(dir: &std::path::Path) -> Result<(Emulator, Target), Box<dyn Error>> {
    let emulator =
        Emulator::start(EmulatorConfig::new(dir.join("data")).with_bind("127.0.0.1:0".parse()?))
            .await?;
    println!("emulator listening on {}", emulator.local_addr());
    let mut files = Vec::new();
    // The device gets the default thing policy (its own topics); the cloud side the
    // application policy (every device's topics).
    for (name, template) in [
        ("telemetry-demo", PolicyTemplate::Thing),
        ("telemetry-cloud", PolicyTemplate::Application),
    ] {
        let options = ThingOptions::default()
            .with_key(KeyAlgorithm::EcdsaP256)
            .with_policy(ThingPolicy::Template(template));
        let credentials = emulator
            .control()
            .create_thing_with_certificate(name, &options)?
            .credentials;
        files.push(write_device_files(
            name,
            &credentials,
            emulator.ca_pem(),
            &dir.join("things"),
        )?);
    }
    let target = Target {
        endpoint: "127.0.0.1".into(),
        port: emulator.local_addr().port(),
        thing: "telemetry-demo".into(),
        root_ca: Some(files[0].root_ca.clone()),
        device: (files[0].certificate.clone(), files[0].private_key.clone()),
        cloud: (
            "telemetry-cloud".into(),
            files[1].certificate.clone(),
            files[1].private_key.clone(),
        ),
    };
    Ok((emulator, target))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let dir = tempfile::tempdir()?;
    let (emulator, target) = match from_env() {
        Some(target) => (None, target),
        None => {
            let (emulator, target) = local_emulator(dir.path()).await?;
            (Some(emulator), target)
        }
    };
    let thing = target.thing.clone();

    // The device.
    let (cert, key) = &target.device;
    let device = target.builder(&thing, cert, key)?.connect().await?;
    println!("device {thing}: {}", *device.status().borrow());
    let mut status = device.status_events();
    let printer = tokio::spawn(async move {
        while let Some(state) = status.next().await {
            println!("device {thing}: {state}");
        }
    });
    let mut commands = device.cloud_to_device().await?;

    // The cloud side: reads telemetry, sends a command.
    let (cloud_id, cloud_cert, cloud_key) = &target.cloud;
    let cloud = target
        .builder(cloud_id, cloud_cert, cloud_key)?
        .connect()
        .await?;
    let mut telemetry = cloud
        .subscribe(
            format!("device/{}/messages/events", target.thing),
            QoS::AtLeastOnce,
        )
        .await?;

    for reading in [21.5, 21.7, 22.0] {
        device
            .send_message(format!("{{\"temperature\":{reading}}}"))
            .await?;
        let message = tokio::time::timeout(Duration::from_secs(10), telemetry.next())
            .await?
            .ok_or("the telemetry stream ended")?;
        println!(
            "cloud received on {}: {}",
            message.topic(),
            message.payload_str().unwrap_or("<binary>")
        );
    }

    cloud
        .publish(
            format!("device/{}/messages/devicebound/led", target.thing),
            "on",
            QoS::AtLeastOnce,
        )
        .await?;
    let command = tokio::time::timeout(Duration::from_secs(10), commands.next())
        .await?
        .ok_or("the cloud-to-device stream ended")?;
    println!(
        "device received cloud-to-device message {:?}: {}",
        command.sub_topic(),
        command.message().payload_str().unwrap_or("<binary>")
    );

    cloud.close().await;
    device.close().await;
    printer.await?;
    if let Some(emulator) = emulator {
        emulator.shutdown().await;
    }
    Ok(())
}
