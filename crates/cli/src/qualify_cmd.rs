//! `iotcore qualify`: AWS IoT Device Advisor's test cases, offline, for any
//! device. A qualifying server on loopback plays each case's part (CONNACK
//! withheld, PUBACK never sent, the connection cut, …) and grades what the
//! device does; `--run CMD` starts the device for each case and stops it
//! after.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use iotcore_emulator::pki::{KeyAlgorithm, Pki};
use iotcore_emulator::policy::{PolicyDocument, PolicyDocumentError};
use iotcore_emulator::qualify::{
    CaseId, CaseResult, LongDuration, Qualifier, Report, Scenario, Verdict,
};
use iotcore_emulator::things::{DeviceFiles, write_device_files};

use crate::CliResult;
use crate::data_dir::DataDir;
use crate::duration::parse_duration;

/// Options of `iotcore qualify`.
#[derive(Args)]
pub struct QualifyArgs {
    /// Which cases: AWS's qualification list, or every case this version runs.
    #[arg(long, value_enum, default_value_t = Suite::All, conflicts_with = "case")]
    suite: Suite,
    /// Run these cases only (Device Advisor's ids, e.g. MQTT_Publish_Retry_No_Puback).
    #[arg(long = "case", value_name = "ID")]
    case: Vec<CaseId>,
    /// A shell command that starts the device under test; it is started for
    /// each case and stopped after. It finds the endpoint and its files in
    /// IOTCORE_QUALIFY_HOST, _PORT, _THING, _CERT, _KEY and _CA. Without it
    /// the command says where the device must connect and waits for it.
    #[arg(long, value_name = "CMD")]
    run: Option<String>,
    /// Write report.json and junit.xml into this directory.
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// The device's thing name (its client id, and the subject of its certificate).
    #[arg(long, default_value = "qualify-device")]
    thing: String,
    /// TCP port of the qualifying endpoint (0 picks a free one).
    #[arg(long, default_value_t = 8883)]
    port: u16,
    /// How long a case waits for the device before failing it.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    case_timeout: Duration,
    /// The document of the job Job_Execution queues for the device (JSON; by
    /// default a small one any job handler can run).
    #[arg(long, value_name = "FILE")]
    job_document: Option<PathBuf>,
    /// A policy attached to the device's certificate (JSON, as in AWS IoT);
    /// Security_Device_Policies checks it for wildcards. Repeat for each
    /// policy; without one that case is skipped.
    #[arg(long = "policy", value_name = "FILE")]
    policies: Vec<PathBuf>,
    /// MQTT_Long_Duration: how long the first QoS 1 PUBLISH and SUBSCRIBE
    /// wait for the device to send them again.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    retry_window: Duration,
    /// MQTT_Long_Duration: how long the server stays down in LONG_SERVER_DISCONNECT.
    #[arg(long, default_value = "60m", value_parser = parse_duration)]
    long_server_disconnect: Duration,
    /// MQTT_Long_Duration: how long to watch after the scenarios.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    additional_time: Duration,
    /// MQTT_Long_Duration: disconnections in RECONNECT_BACK_OFF (5 to 10).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u8).range(5..=10))]
    backoff_attempts: u8,
    /// MQTT_Long_Duration: how long the device is left connected before each
    /// advanced scenario (so that its backoff starts over).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    settle: Duration,
    /// MQTT_Long_Duration: run only these advanced scenarios (Device
    /// Advisor's names, e.g. RECONNECT_BACK_OFF; all by default).
    #[arg(long = "scenario", value_name = "NAME")]
    scenarios: Vec<Scenario>,
    /// List the cases and what each checks, then exit.
    #[arg(long)]
    list: bool,
}

/// The suites `--suite` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Suite {
    /// AWS's qualification list (the cases for the AWS Partner Device Catalog).
    Qualification,
    /// Every case but the long-duration one.
    All,
    /// MQTT_Long_Duration alone: every scenario, for as long as its settings say.
    LongDuration,
}

impl QualifyArgs {
    fn cases(&self) -> Vec<CaseId> {
        if !self.case.is_empty() {
            return self.case.clone();
        }
        CaseId::ALL
            .into_iter()
            .filter(|case| match self.suite {
                Suite::Qualification => case.in_qualification_suite(),
                Suite::All => !case.opt_in(),
                Suite::LongDuration => *case == CaseId::MqttLongDuration,
            })
            .collect()
    }
}

impl QualifyArgs {
    /// The settings of MQTT_Long_Duration.
    fn long_duration(&self) -> LongDuration {
        LongDuration {
            retry_window: self.retry_window,
            long_server_disconnect: self.long_server_disconnect,
            additional_time: self.additional_time,
            backoff_attempts: usize::from(self.backoff_attempts),
            settle: self.settle,
            scenarios: if self.scenarios.is_empty() {
                Scenario::ALL.to_vec()
            } else {
                self.scenarios.clone()
            },
        }
    }
}

/// Runs the cases and prints the report; fails when a case failed.
pub fn run(data_dir: &DataDir, args: QualifyArgs) -> CliResult {
    if args.list {
        for case in CaseId::ALL {
            let list = if case.in_qualification_suite() {
                " (qualification)"
            } else if case.opt_in() {
                " (opt-in: --suite long-duration)"
            } else {
                ""
            };
            println!("{case}{list}\n    the device {}", case.checks());
        }
        return Ok(());
    }
    let job_document = match &args.job_document {
        Some(path) => Some(read_job_document(path)?),
        None => None,
    };
    let policies = args
        .policies
        .iter()
        .map(|path| read_policy(path))
        .collect::<Result<Vec<_>, _>>()?;
    let dir = data_dir.path().join("qualify");
    let pki = Arc::new(Pki::load_or_create(&dir)?);
    let credentials = pki.issue_device_certificate(&args.thing, KeyAlgorithm::EcdsaP256)?;
    let files = write_device_files(
        &args.thing,
        &credentials,
        pki.ca_pem(),
        &dir.join(&args.thing),
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(async {
        let addr = SocketAddr::new(IpAddr::from([127, 0, 0, 1]), args.port);
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let mut qualifier = Qualifier::new(listener, Arc::clone(&pki))?;
        if let Some(document) = job_document {
            qualifier = qualifier.with_job_document(document);
        }
        let qualifier = qualifier
            .with_policies(policies)
            .with_long_duration(args.long_duration());
        let port = qualifier.local_addr()?.port();
        let device = Device {
            thing: &args.thing,
            port,
            files: &files,
        };
        if args.run.is_none() {
            device.explain();
        }
        let mut results: Vec<CaseResult> = Vec::new();
        for case in args.cases() {
            println!("{case}: the device {}", case.checks());
            let child = match &args.run {
                Some(command) => Some(device.start(command)?),
                None => None,
            };
            let result = qualifier.run(case, args.case_timeout).await;
            if let Some(child) = child {
                stop(child);
            }
            println!("{:<20} {case}", result.outcome.verdict);
            results.push(result);
        }
        let name = args.run.clone().unwrap_or_else(|| args.thing.clone());
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Report::new(name, &results))
    })?;
    println!("\n{}", report.human());
    if let Some(dir) = &args.report {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("report.json"), report.json())?;
        std::fs::write(dir.join("junit.xml"), report.junit())?;
        println!(
            "report: {}, {}",
            dir.join("report.json").display(),
            dir.join("junit.xml").display()
        );
    }
    match report.count(Verdict::Fail) {
        0 => Ok(()),
        failed => Err(Box::new(Failed(failed))),
    }
}

/// A file given to `iotcore qualify` that cannot be used.
#[derive(Debug, thiserror::Error)]
enum InputError {
    /// It cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// It is not a JSON object.
    #[error("the job document {path} is not a JSON object: {why}")]
    Invalid { path: PathBuf, why: String },
    /// A policy AWS IoT would refuse.
    #[error("the policy {path} is not a valid AWS IoT policy: {source}")]
    Policy {
        path: PathBuf,
        source: PolicyDocumentError,
    },
}

/// Reads `--policy`: its name (the file's stem) and document.
fn read_policy(path: &Path) -> Result<(String, PolicyDocument), InputError> {
    let text = read(path)?;
    let document = PolicyDocument::parse(&text).map_err(|source| InputError::Policy {
        path: path.to_owned(),
        source,
    })?;
    let name = path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    Ok((name, document))
}

/// A file's text.
fn read(path: &Path) -> Result<String, InputError> {
    std::fs::read_to_string(path).map_err(|source| InputError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Reads `--job-document`: a JSON object, as AWS IoT Jobs requires.
fn read_job_document(path: &Path) -> Result<serde_json::Value, InputError> {
    let text = read(path)?;
    let invalid = |why: String| InputError::Invalid {
        path: path.to_owned(),
        why,
    };
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(document) if document.is_object() => Ok(document),
        Ok(_) => Err(invalid("it is valid JSON, but not an object".into())),
        Err(e) => Err(invalid(e.to_string())),
    }
}

/// Some cases failed.
#[derive(Debug, thiserror::Error)]
#[error("{0} case(s) failed: see the report above")]
struct Failed(usize);

/// The device under test: where it connects, with which files.
struct Device<'a> {
    thing: &'a str,
    port: u16,
    files: &'a DeviceFiles,
}

impl Device<'_> {
    /// Tells a person what the device must do.
    fn explain(&self) {
        println!(
            "qualifying endpoint: localhost:{port} (MQTT over mutual TLS)\n\
             the device: client id {thing}, certificate {cert}, key {key}, trusting {ca}\n\
             it must connect (without clean session, for the persistent-session cases), \
             subscribe to a topic filter, publish QoS 1 messages, keep its connection alive with \
             PINGREQ, and reconnect by itself when the connection drops; each case waits for it \
             in turn",
            port = self.port,
            thing = self.thing,
            cert = self.files.certificate.display(),
            key = self.files.private_key.display(),
            ca = self.files.root_ca.display(),
        );
    }

    /// Starts `command` in a process group of its own.
    fn start(&self, command: &str) -> std::io::Result<Child> {
        use std::os::unix::process::CommandExt;
        let path = |p: &Path| p.display().to_string();
        Command::new("sh")
            .args(["-c", command])
            .env("IOTCORE_QUALIFY_HOST", "localhost")
            .env("IOTCORE_QUALIFY_PORT", self.port.to_string())
            .env("IOTCORE_QUALIFY_THING", self.thing)
            .env("IOTCORE_QUALIFY_CERT", path(&self.files.certificate))
            .env("IOTCORE_QUALIFY_KEY", path(&self.files.private_key))
            .env("IOTCORE_QUALIFY_CA", path(&self.files.root_ca))
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
    }
}

/// How long a device may take to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// Stops the device: SIGTERM to its whole process group, and SIGKILL to the
/// group if it has not exited after [`STOP_GRACE`] (a device may ignore
/// SIGTERM, or handle it only between its own retries).
fn stop(mut child: Child) {
    let group = format!("-{}", child.id());
    let signal_group = |signal: &str| {
        let _ = Command::new("kill")
            .args([signal, "--", &group])
            .stderr(Stdio::null())
            .status();
    };
    signal_group("-TERM");
    let deadline = std::time::Instant::now() + STOP_GRACE;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    signal_group("-KILL");
    let _ = child.kill();
    let _ = child.wait();
}
