//! A device that runs AWS IoT Jobs with the `JobRunner`, until Ctrl-C.
//!
//! Against `iotcore emulator` (or AWS IoT Core), as a user would try it:
//!
//! ```text
//! iotcore emulator &                                  # MQTT on 127.0.0.1:8883
//! iotcore thing create dev1 --out ./dev1
//! IOTCORE_THING=dev1 IOTCORE_CERT=dev1/dev1.cert.pem IOTCORE_KEY=dev1/dev1.private.key \
//!   IOTCORE_ROOT_CA=dev1/root-ca.pem cargo run -p iotcore --example jobs
//!
//! # in another shell: the cloud queues a job, the device runs it
//! echo '{"steps": 3, "fail": false}' > job.json
//! iotcore jobs create job-1 --targets thing/dev1 --document job.json
//! iotcore jobs executions --thing dev1
//! ```
//!
//! Settings (environment): `IOTCORE_ENDPOINT` (default `127.0.0.1`),
//! `IOTCORE_PORT` (default 8883), `IOTCORE_THING` (default `dev1`),
//! `IOTCORE_CERT`, `IOTCORE_KEY` (default `<thing>.cert.pem` and
//! `<thing>.private.key`), `IOTCORE_ROOT_CA` (optional for AWS).
//!
//! The job document is any JSON object; this device reads `steps` (how many
//! progress reports to make, default 1) and `fail` (end with FAILED). A job
//! canceled with `iotcore jobs cancel ID --force` while it runs stops at once.

use std::error::Error;
use std::time::Duration;

use iotcore::Client;
use iotcore::jobs::{Job, JobOutcome, JobsError};
use serde::Deserialize;

/// What this device understands of a job document.
#[derive(Debug, Deserialize)]
struct Work {
    #[serde(default = "one")]
    steps: u32,
    #[serde(default)]
    fail: bool,
}

fn one() -> u32 {
    1
}

/// Runs one job: a progress report a second for each step.
async fn run(job: Job<Work>) -> Result<JobOutcome, JobsError> {
    let resumed = if job.is_resumed() { " (resumed)" } else { "" };
    println!("job {}{resumed}: {:?}", job.id(), job.document());
    for step in 1..=job.document().steps {
        job.progress([("step", format!("{step}/{}", job.document().steps))])
            .await?;
        println!("job {}: step {step} reported", job.id());
        tokio::select! {
            status = job.canceled() => {
                println!("job {}: ended by the service ({status:?})", job.id());
                return Ok(JobOutcome::succeeded());
            }
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    let outcome = if job.document().fail {
        JobOutcome::failed("the document asked to fail")
    } else {
        JobOutcome::succeeded()
    };
    println!("job {}: done", job.id());
    Ok(outcome)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let var = |name: &str, default: String| std::env::var(name).unwrap_or(default);
    let thing = var("IOTCORE_THING", "dev1".into());
    let mut builder = Client::builder(&thing)
        .endpoint(var("IOTCORE_ENDPOINT", "127.0.0.1".into()))
        .port(var("IOTCORE_PORT", iotcore::DEFAULT_PORT.to_string()).parse()?)
        .client_cert_pem_files(
            var("IOTCORE_CERT", format!("{thing}.cert.pem")),
            var("IOTCORE_KEY", format!("{thing}.private.key")),
        )?;
    if let Ok(ca) = std::env::var("IOTCORE_ROOT_CA") {
        builder = builder.root_ca_pem_file(ca)?;
    }
    let client = builder.connect().await?;
    println!("{thing} connected; waiting for jobs (Ctrl-C to stop)");
    tokio::select! {
        ran = client.jobs().runner::<Work>().run(run) => ran?,
        stop = tokio::signal::ctrl_c() => stop?,
    }
    client.close().await;
    Ok(())
}
