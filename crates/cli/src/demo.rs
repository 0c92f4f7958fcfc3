//! `iotcore demo`: a device and its cloud side talking through AWS IoT Core,
//! step by step: by default through an emulator embedded in the command; with
//! `--certs DIR` through a running AWS IoT Core (or a separately started
//! emulator), as the two things whose files DIR holds ([`external`]).
//!
//! Every step prints what it does and how it ended; the first failure stops the demo
//! with a message saying which step failed and why, and a non-zero exit status.

mod external;

use std::fmt::Display;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use iotcore::jobs::{Job, JobOutcome, JobsError};
use iotcore::shadow::ShadowManager;
use iotcore::{Client, ClientBuilder, QoS};
use iotcore_emulator::control::{
    CreateJobRequest, DescribeJobExecutionRequest, ThingOptions, ThingPolicy,
};
use iotcore_emulator::pki::KeyAlgorithm;
use iotcore_emulator::policy::PolicyTemplate;
use iotcore_emulator::{Emulator, EmulatorConfig};
use serde::Deserialize;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;

use self::external::External;
use crate::CliResult;

/// The thing the demo device runs as.
const DEVICE: &str = "demo-device";
/// A second thing that plays the cloud application's part: its policy (the
/// "application" template) lets it talk to every device's topics.
const CLOUD: &str = "demo-cloud";
/// How long any one step may take before the demo gives up.
const STEP_TIMEOUT: Duration = Duration::from_secs(15);

/// Arguments of `iotcore demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Run against this AWS IoT Core endpoint (or a running `iotcore
    /// emulator`) instead of an embedded emulator: HOST or HOST:PORT, port 8883
    /// by default. Default: the endpoint in DIR/endpoint.txt. Needs --certs.
    #[arg(long, value_name = "HOST[:PORT]", requires = "certs")]
    endpoint: Option<String>,
    /// Connect as the things demo-device and demo-cloud, whose files DIR holds
    /// (NAME.cert.pem, NAME.private.key, root-ca.pem, endpoint.txt), as
    /// `scripts/aws-provision --demo --out DIR` writes them, instead of
    /// creating them in an embedded emulator.
    #[arg(long, value_name = "DIR")]
    certs: Option<PathBuf>,
}

/// Why a step of the demo failed.
#[derive(Debug, thiserror::Error)]
#[error("step \"{step}\" failed: {reason}")]
struct StepFailed {
    step: &'static str,
    reason: String,
}

/// Runs the demo: in a fresh temporary data directory, or against the
/// endpoint with the files `args` name (read before anything connects).
pub fn run(args: DemoArgs) -> CliResult {
    let external = match &args.certs {
        None => None,
        Some(certs) => Some(External::load(
            certs,
            args.endpoint.as_deref(),
            DEVICE,
            CLOUD,
        )?),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let clients = match external {
            None => Clients::embedded().await?,
            Some(external) => Clients::external(external).await?,
        };
        exchange(&clients.device, &clients.cloud).await?;
        if let Some((emulator, _)) = &clients.emulator {
            // Queuing a job is a control-plane call, which only the embedded
            // emulator gives the demo.
            firmware_job(emulator, &clients.device).await?;
        }
        clients.close().await?;
        println!("\ndemo finished: every step succeeded");
        Ok(())
    })
}

/// The demo's two connected clients, and the emulator they talk to when it
/// runs inside the command.
struct Clients {
    device: Client,
    cloud: Client,
    /// The embedded emulator and its data directory, removed after it stops.
    emulator: Option<(Emulator, TempDir)>,
}

impl Clients {
    /// Starts an emulator in a temporary directory, registers both things in
    /// it and connects them.
    async fn embedded() -> CliResult<Clients> {
        let data = tempfile::tempdir()?;
        println!("iotcore demo: an embedded AWS IoT Core emulator and a device, on loopback\n");
        let emulator = start_emulator(data.path()).await?;
        let port = emulator.local_addr().port();

        let connect = |thing: &'static str, template: PolicyTemplate| {
            let emulator = &emulator;
            async move {
                let options = ThingOptions::default()
                    .with_key(KeyAlgorithm::EcdsaP256)
                    .with_policy(ThingPolicy::Template(template));
                let created = emulator
                    .control()
                    .create_thing_with_certificate(thing, &options)
                    .map_err(|e| e.to_string())?;
                let policy = created.policy.map(|p| p.name).unwrap_or_default();
                let credentials = created.credentials;
                let client = Client::builder(thing)
                    .endpoint("localhost")
                    .port(port)
                    .client_cert_pem(&credentials.certificate_pem, &credentials.private_key_pem)
                    .map_err(|e| e.to_string())?
                    .root_ca_pem(emulator.pki().ca_pem())
                    .map_err(|e| e.to_string())?
                    .connect()
                    .await
                    .map_err(|e| e.to_string())?;
                let detail = format!(
                    "certificate {}… ACTIVE, policy {policy} ({template}), {}",
                    &credentials.certificate_id[..12],
                    *client.status().borrow()
                );
                Ok((client, detail))
            }
        };

        let device = step(
            "register thing \"demo-device\" and connect it over mTLS",
            connect(DEVICE, PolicyTemplate::Thing),
        )
        .await?;
        let cloud = step(
            "register the cloud side (\"demo-cloud\") and connect it",
            connect(CLOUD, PolicyTemplate::Application),
        )
        .await?;
        Ok(Clients {
            device,
            cloud,
            emulator: Some((emulator, data)),
        })
    }

    /// Connects both things to the external endpoint, and deletes the
    /// device's shadow an earlier run left there, so every run starts alike.
    async fn external(external: External) -> Result<Clients, StepFailed> {
        let External {
            endpoint,
            certs,
            device,
            cloud,
        } = external;
        println!(
            "iotcore demo: a device and its cloud side on {endpoint}, as the things in {}\n",
            certs.display()
        );
        let connect = |builder: ClientBuilder, thing: &'static str| {
            let endpoint = &endpoint;
            async move {
                let client = builder.connect().await.map_err(|e| e.to_string())?;
                let detail = format!(
                    "{endpoint}, certificate {thing}.cert.pem, {}",
                    *client.status().borrow()
                );
                Ok((client, detail))
            }
        };
        let device = step(
            "connect thing \"demo-device\" over mTLS",
            connect(device, DEVICE),
        )
        .await?;
        let cloud = step(
            "connect the cloud side (\"demo-cloud\")",
            connect(cloud, CLOUD),
        )
        .await?;
        step(
            "cloud deletes the device's shadow left by an earlier run",
            async {
                match cloud.thing_shadow(DEVICE, None).delete().await {
                    Ok(deleted) => Ok(((), format!("deleted version {}", deleted.version))),
                    Err(e) if e.is_not_found() => Ok(((), "there was none (404)".to_owned())),
                    Err(e) => Err(e.to_string()),
                }
            },
        )
        .await?;
        Ok(Clients {
            device,
            cloud,
            emulator: None,
        })
    }

    /// Closes both clients, and stops the embedded emulator.
    async fn close(self) -> Result<(), StepFailed> {
        let Clients {
            device,
            cloud,
            emulator,
        } = self;
        let what = match emulator {
            Some(_) => "close both clients and stop the emulator",
            None => "close both clients",
        };
        step(what, async {
            device.close().await;
            cloud.close().await;
            if let Some((emulator, _data)) = emulator {
                emulator.shutdown().await;
            }
            Ok(((), format!("device status: {}", *device.status().borrow())))
        })
        .await
    }
}

async fn start_emulator(data: &Path) -> Result<Emulator, StepFailed> {
    step("start the embedded emulator", async {
        let config =
            EmulatorConfig::new(data).with_bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        let emulator = Emulator::start(config).await.map_err(|e| e.to_string())?;
        let detail = format!("listening on {}", emulator.local_addr());
        Ok((emulator, detail))
    })
    .await
}

/// The demo's steps once both clients are connected: shadow, telemetry,
/// desired state, cloud-to-device command.
async fn exchange(device: &Client, cloud: &Client) -> Result<(), StepFailed> {
    let (manager, mut desired_changes) = step("device reads its shadow", async {
        let (manager, changes) = ShadowManager::start(device.shadow())
            .await
            .map_err(|e| e.to_string())?;
        let detail = match manager.local().version {
            None => "no shadow yet (404): starting from an empty document".to_owned(),
            Some(version) => format!("version {version}"),
        };
        Ok(((manager, changes), detail))
    })
    .await?;

    step("device reports its state", async {
        let state = json!({"firmware": "1.0.0", "led": "off"});
        let accepted = manager.report(&state).await.map_err(|e| e.to_string())?;
        Ok((
            (),
            format!("reported {state}: shadow version {}", accepted.version),
        ))
    })
    .await?;

    let telemetry_topic = format!("device/{DEVICE}/messages/events");
    let mut telemetry = step("cloud subscribes to the device's telemetry", async {
        let sub = cloud
            .subscribe(telemetry_topic.as_str(), QoS::AtLeastOnce)
            .await;
        sub.map(|s| (s, telemetry_topic.clone()))
            .map_err(|e| e.to_string())
    })
    .await?;

    step(
        "device sends telemetry (QoS 1, resolves on PUBACK)",
        async {
            device
                .send_message(r#"{"temperature":21.5}"#)
                .await
                .map(|()| ((), "delivered".to_owned()))
                .map_err(|e| e.to_string())
        },
    )
    .await?;

    step("cloud receives the telemetry", async {
        match telemetry.next().await {
            Some(m) => Ok((
                (),
                format!("{} {}", m.topic(), String::from_utf8_lossy(m.payload())),
            )),
            None => Err("the subscription ended".to_owned()),
        }
    })
    .await?;

    step("cloud changes the device's desired state", async {
        let desired = json!({"led": "on"});
        let accepted = cloud
            .thing_shadow(DEVICE, None)
            .update_desired(&desired)
            .await
            .map_err(|e| e.to_string())?;
        Ok((
            (),
            format!("desired {desired}: shadow version {}", accepted.version),
        ))
    })
    .await?;

    let change = step("device receives the desired change", async {
        match desired_changes.next().await {
            Some(change) => {
                let detail = format!(
                    "delta {} at version {}",
                    Value::Object(change.delta().clone()),
                    change.version()
                );
                Ok((change, detail))
            }
            None => Err("the desired-change stream ended".to_owned()),
        }
    })
    .await?;

    step("device applies it and reports back", async {
        let accepted = manager
            .report(change.delta())
            .await
            .map_err(|e| e.to_string())?;
        match manager.local().delta() {
            None => Ok((
                (),
                format!(
                    "shadow version {}: desired and reported agree",
                    accepted.version
                ),
            )),
            Some(delta) => Err(format!(
                "desired and reported still differ: {}",
                Value::Object(delta)
            )),
        }
    })
    .await?;

    let mut commands = step("device subscribes to cloud-to-device messages", async {
        device
            .cloud_to_device()
            .await
            .map(|c| (c, format!("device/{DEVICE}/messages/devicebound/#")))
            .map_err(|e| e.to_string())
    })
    .await?;

    step("cloud sends a command to the device", async {
        let topic = format!("device/{DEVICE}/messages/devicebound/reboot");
        cloud
            .publish(topic.as_str(), r#"{"delay":5}"#, QoS::AtLeastOnce)
            .await
            .map(|()| ((), topic))
            .map_err(|e| e.to_string())
    })
    .await?;

    step("device receives the command", async {
        match commands.next().await {
            Some(m) => Ok((
                (),
                format!(
                    "sub-topic \"{}\": {}",
                    m.sub_topic(),
                    String::from_utf8_lossy(m.payload())
                ),
            )),
            None => Err("the cloud-to-device stream ended".to_owned()),
        }
    })
    .await?;
    Ok(())
}

/// The firmware update job's document, as the device reads it.
#[derive(Deserialize)]
struct FirmwareUpdate {
    version: String,
    url: String,
}

/// The Jobs steps: the cloud queues a firmware-update job for the device,
/// whose JobRunner takes it, reports progress and SUCCEEDED.
async fn firmware_job(emulator: &Emulator, device: &Client) -> Result<(), StepFailed> {
    const JOB: &str = "demo-firmware-1-3";
    let (ran_tx, mut ran) = mpsc::unbounded_channel();
    let runner = tokio::spawn(device.jobs().runner::<FirmwareUpdate>().run(
        move |job: Job<FirmwareUpdate>| {
            let ran_tx = ran_tx.clone();
            async move {
                job.progress([("step", "downloading")]).await?;
                // A real device downloads, verifies and installs here.
                job.progress([("step", "installing")]).await?;
                let update = job.document();
                ran_tx
                    .send(format!(
                        "{} {} from {}",
                        job.id(),
                        update.version,
                        update.url
                    ))
                    .ok();
                Ok::<_, JobsError>(
                    JobOutcome::succeeded().with_detail("firmware", update.version.clone()),
                )
            }
        },
    ));
    let result = async {
        step("cloud queues a firmware-update job for the device", async {
            let control = emulator.control();
            let target = format!("{}thing/{DEVICE}", control.arn_scope().prefix());
            let document = json!({
                "operation": "firmware-update",
                "version": "1.3",
                "url": "https://example.com/firmware-1.3.bin",
            });
            control
                .create_job(CreateJobRequest::new(
                    JOB,
                    vec![target],
                    &document.to_string(),
                ))
                .map(|created| ((), created.job_arn))
                .map_err(|e| e.to_string())
        })
        .await?;
        step("device's job runner takes the job and installs it", async {
            match ran.recv().await {
                Some(detail) => Ok(((), detail)),
                None => Err("the job runner stopped".to_owned()),
            }
        })
        .await?;
        step("the job execution is SUCCEEDED", async {
            loop {
                let execution = emulator
                    .control()
                    .describe_job_execution(DescribeJobExecutionRequest {
                        job_id: JOB.to_owned(),
                        thing_name: DEVICE.to_owned(),
                        execution_number: None,
                    })
                    .map_err(|e| e.to_string())?
                    .execution;
                let status = serde_json::to_value(execution.status).map_err(|e| e.to_string())?;
                if status == "SUCCEEDED" {
                    let details = serde_json::to_value(&execution.status_details)
                        .map_err(|e| e.to_string())?;
                    return Ok(((), format!("status details {}", details["detailsMap"])));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
    }
    .await;
    runner.abort();
    result
}

/// Runs one step with a timeout and prints `[ ok ] what — detail` or `[FAIL] what`.
async fn step<T, D: Display>(
    what: &'static str,
    work: impl Future<Output = Result<(T, D), String>>,
) -> Result<T, StepFailed> {
    let outcome = match tokio::time::timeout(STEP_TIMEOUT, work).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("no result within {} s", STEP_TIMEOUT.as_secs())),
    };
    match outcome {
        Ok((value, detail)) => {
            println!("[ ok ] {what} — {detail}");
            Ok(value)
        }
        Err(reason) => {
            println!("[FAIL] {what}");
            Err(StepFailed { step: what, reason })
        }
    }
}
