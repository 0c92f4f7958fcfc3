//! `iotcore shadow get|update|delete|watch`: a thing's Device Shadow, from the
//! application's side, over MQTT to a running emulator (or AWS IoT Core).
//!
//! Identity: `--cert`/`--key` (and `--ca`) when given. Otherwise the CLI uses
//! its own identity in the emulator's data directory, made on first use: thing
//! `iotcore-cli` with a certificate from the emulator's CA (files in
//! `<data dir>/cli/`) and the policy `iotcore-cli-policy`, which allows client
//! ids `iotcore-cli-*` and the shadow topics of every thing, nothing else.
//! Each run connects with a fresh client id `iotcore-cli-<random>`, so a
//! `watch` and an `update` in two terminals do not take over each other's
//! connection.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};
use iotcore::Client;
use iotcore::shadow::{ShadowClient, UpdateRequest};
use iotcore_emulator::control::{
    CreatePolicyRequest, DescribeThingRequest, PolicyNameRequest, ThingOptions, ThingPolicy,
};
use iotcore_emulator::things::write_device_files;
use serde_json::{Map, Value};
use tokio_stream::StreamExt;

use crate::CliResult;
use crate::data_dir::DataDir;
use crate::registry::found;

/// The thing that holds the CLI's certificate in the emulator's registry.
const CLI_THING: &str = "iotcore-cli";
/// The policy of the CLI's certificate.
const CLI_POLICY: &str = "iotcore-cli-policy";
/// Client ids the CLI's policy allows: this, then a random suffix.
const CLI_CLIENT_ID_PREFIX: &str = "iotcore-cli-";
/// Where, under the data directory, the CLI keeps its certificate and key.
const CLI_DIR: &str = "cli";

/// Subcommands of `iotcore shadow`.
#[derive(Subcommand)]
pub enum ShadowCommand {
    /// Print a shadow's document (state, metadata, version) as JSON.
    Get(Target),
    /// Change a shadow's desired and/or reported state; print the accepted reply.
    Update {
        #[command(flatten)]
        target: Target,
        /// Merge this JSON object into the desired state (`null` values delete
        /// keys; `null` alone removes the section).
        #[arg(long, value_name = "JSON")]
        desired: Option<String>,
        /// Merge this JSON object into the reported state.
        #[arg(long, value_name = "JSON")]
        reported: Option<String>,
        /// Read the state from a file (- for stdin): `{"desired":…,"reported":…}`,
        /// or a whole update request `{"state":{…}}`.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["desired", "reported"])]
        state_file: Option<PathBuf>,
        /// Apply only if the shadow is at this version (else 409 Version conflict).
        #[arg(long)]
        version: Option<u64>,
    },
    /// Delete a shadow.
    Delete(Target),
    /// Print the shadow's delta and documents events as JSON lines until Ctrl-C.
    Watch(Target),
}

/// Which shadow, and how to reach the service.
#[derive(Args)]
pub struct Target {
    /// The thing whose shadow it is.
    #[arg(long)]
    thing: String,
    /// A named shadow; without it, the thing's classic shadow.
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    connection: Connection,
}

/// Where to connect and as whom.
#[derive(Args)]
struct Connection {
    /// Host name or IP address of the emulator (or of AWS IoT Core's endpoint).
    #[arg(long, default_value = "localhost")]
    endpoint: String,
    /// MQTT over TLS port.
    #[arg(long, default_value_t = 8883)]
    port: u16,
    /// Client certificate (PEM). Default: the CLI's own identity in the data directory.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Private key of --cert (PEM).
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// CA that signed the server's certificate (PEM). Default: the emulator's
    /// CA in the data directory if there is one, else Amazon's roots.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// MQTT client id. Default: iotcore-cli-RANDOM (with --cert: the name of --thing).
    #[arg(long)]
    client_id: Option<String>,
    /// How long to wait for the connection and for each reply, in seconds.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
}

/// Runs a `shadow` subcommand; the default identity lives in `data_dir`.
pub fn run(data_dir: &DataDir, command: ShadowCommand) -> CliResult {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match command {
            ShadowCommand::Get(target) => {
                let (client, shadow) = connect(data_dir, &target).await?;
                let result = shadow.get().await;
                client.close().await;
                let mut document = result?;
                document.client_token = None;
                print_json(serde_json::to_value(document)?)
            }
            ShadowCommand::Update {
                target,
                desired,
                reported,
                state_file,
                version,
            } => {
                let request = update_request(
                    desired.as_deref(),
                    reported.as_deref(),
                    state_file.as_deref(),
                    version,
                )?;
                let (client, shadow) = connect(data_dir, &target).await?;
                let result = shadow.update(request).await;
                client.close().await;
                let mut accepted = result?;
                accepted.client_token = None;
                print_json(serde_json::to_value(accepted)?)
            }
            ShadowCommand::Delete(target) => {
                let (client, shadow) = connect(data_dir, &target).await?;
                let result = shadow.delete().await;
                client.close().await;
                let mut accepted = result?;
                accepted.client_token = None;
                print_json(serde_json::to_value(accepted)?)
            }
            ShadowCommand::Watch(target) => watch(data_dir, &target).await,
        }
    })
}

/// Prints every delta and documents event until Ctrl-C or the connection closes.
async fn watch(data_dir: &DataDir, target: &Target) -> CliResult {
    let (client, shadow) = connect(data_dir, target).await?;
    let mut deltas = shadow.deltas().await?;
    let mut documents = shadow.documents().await?;
    eprintln!("watching {} (Ctrl-C to stop)", shadow.id());
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        let line = tokio::select! {
            delta = deltas.next() => match delta {
                Some(delta) => event_line("delta", serde_json::to_value(delta)?)?,
                None => break,
            },
            event = documents.next() => match event {
                Some(event) => event_line("documents", serde_json::to_value(event)?)?,
                None => break,
            },
            _ = &mut stop => break,
        };
        // A closed stdout (`… watch | head -1`) ends the watch.
        if writeln!(std::io::stdout(), "{line}").is_err() {
            break;
        }
    }
    client.close().await;
    Ok(())
}

/// `{"event": kind, …the event's fields}` on one line.
fn event_line(kind: &str, event: Value) -> Result<String, serde_json::Error> {
    let mut line = Map::new();
    line.insert("event".into(), kind.into());
    if let Value::Object(fields) = event {
        line.extend(fields);
    }
    serde_json::to_string(&line)
}

fn print_json(value: Value) -> CliResult {
    writeln!(
        std::io::stdout(),
        "{}",
        serde_json::to_string_pretty(&value)?
    )?;
    Ok(())
}

/// Why the command line's update is not one.
#[derive(Debug, thiserror::Error)]
enum UpdateInputError {
    #[error("nothing to update: give --desired, --reported or --state-file")]
    Nothing,
    #[error("--{option} is not valid JSON: {source}")]
    NotJson {
        option: &'static str,
        source: serde_json::Error,
    },
    #[error("cannot read the state file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the update is not one AWS IoT accepts: {message} (code {code})")]
    Invalid { code: u16, message: String },
}

/// The update request the options describe, checked as the service checks it.
fn update_request(
    desired: Option<&str>,
    reported: Option<&str>,
    state_file: Option<&Path>,
    version: Option<u64>,
) -> Result<UpdateRequest, UpdateInputError> {
    let json = |option: &'static str, text: &str| {
        serde_json::from_str::<Value>(text)
            .map_err(|source| UpdateInputError::NotJson { option, source })
    };
    let state = match state_file {
        Some(path) => {
            let text = read_state_file(path)?;
            match json("state-file", &text)? {
                Value::Object(mut request) if request.contains_key("state") => {
                    request.remove("state").unwrap_or(Value::Null)
                }
                state => state,
            }
        }
        None => {
            let mut state = Map::new();
            if let Some(desired) = desired {
                state.insert("desired".into(), json("desired", desired)?);
            }
            if let Some(reported) = reported {
                state.insert("reported".into(), json("reported", reported)?);
            }
            if state.is_empty() {
                return Err(UpdateInputError::Nothing);
            }
            Value::Object(state)
        }
    };
    let mut request = Map::new();
    request.insert("state".into(), state);
    if let Some(version) = version {
        request.insert("version".into(), version.into());
    }
    let payload = serde_json::to_vec(&request).unwrap_or_default();
    UpdateRequest::parse(&payload).map_err(|e| UpdateInputError::Invalid {
        code: e.code(),
        message: e.to_string(),
    })
}

fn read_state_file(path: &Path) -> Result<String, UpdateInputError> {
    let read = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map(|_| text)
    } else {
        std::fs::read_to_string(path)
    };
    read.map_err(|source| UpdateInputError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Connects and returns the client and the target's shadow handle.
async fn connect(
    data_dir: &DataDir,
    target: &Target,
) -> Result<(Client, ShadowClient), Box<dyn std::error::Error + Send + Sync>> {
    let options = &target.connection;
    let timeout = Duration::from_secs(options.timeout.max(1));
    let identity = Identity::resolve(data_dir, options, &target.thing)?;
    let mut builder = Client::builder(identity.thing.as_str())
        .client_id(identity.client_id.as_str())
        .endpoint(options.endpoint.as_str())
        .port(options.port)
        .client_cert_pem_files(&identity.cert, &identity.key)?
        .initial_connect(1, timeout)
        .connect_timeout(timeout);
    if let Some(ca) = &identity.ca {
        builder = builder.root_ca_pem_file(ca)?;
    }
    let client = builder.connect().await.map_err(|e| ConnectError {
        endpoint: format!("{}:{}", options.endpoint, options.port),
        source: e,
    })?;
    let shadow = client
        .thing_shadow(target.thing.as_str(), target.name.as_deref())
        .with_timeout(timeout);
    Ok((client, shadow))
}

/// The connection could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to {endpoint} (is `iotcore emulator` running there?)")]
struct ConnectError {
    endpoint: String,
    #[source]
    source: iotcore::Error,
}

/// Who the CLI connects as.
struct Identity {
    thing: String,
    client_id: String,
    cert: PathBuf,
    key: PathBuf,
    ca: Option<PathBuf>,
}

/// Why the CLI has no identity to connect with.
#[derive(Debug, thiserror::Error)]
enum IdentityError {
    #[error(
        "no identity to connect with: pass --cert and --key (and --ca), or run `iotcore emulator` \
         once so that {} holds the emulator's CA", dir.display()
    )]
    NoEmulatorData { dir: PathBuf },
    #[error(
        "thing {CLI_THING} exists but its key is not in {}: delete the thing (`iotcore thing \
         delete {CLI_THING}`) to have a new identity made, or pass --cert and --key", dir.display()
    )]
    LostKey { dir: PathBuf },
    #[error("cannot set up the CLI's identity in {}: {source}", dir.display())]
    Setup {
        dir: PathBuf,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Identity {
    fn resolve(
        data_dir: &DataDir,
        options: &Connection,
        thing: &str,
    ) -> Result<Identity, IdentityError> {
        let emulator_ca = data_dir.path().join("pki/ca.pem");
        let ca = options
            .ca
            .clone()
            .or_else(|| emulator_ca.is_file().then(|| emulator_ca.clone()));
        if let (Some(cert), Some(key)) = (&options.cert, &options.key) {
            return Ok(Identity {
                thing: thing.to_owned(),
                client_id: options
                    .client_id
                    .clone()
                    .unwrap_or_else(|| thing.to_owned()),
                cert: cert.clone(),
                key: key.clone(),
                ca,
            });
        }
        if !emulator_ca.is_file() {
            return Err(IdentityError::NoEmulatorData {
                dir: data_dir.path().to_owned(),
            });
        }
        let (cert, key) = cli_identity_files(data_dir)?;
        Ok(Identity {
            thing: CLI_THING.to_owned(),
            client_id: options
                .client_id
                .clone()
                .unwrap_or_else(|| format!("{CLI_CLIENT_ID_PREFIX}{:08x}", rand_suffix())),
            cert,
            key,
            ca,
        })
    }
}

/// A random 32-bit suffix for client ids.
fn rand_suffix() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded randomly per process: enough to tell runs apart.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish() as u32
}

/// The CLI's certificate and key files, made on first use: thing
/// [`CLI_THING`] with policy [`CLI_POLICY`].
fn cli_identity_files(data_dir: &DataDir) -> Result<(PathBuf, PathBuf), IdentityError> {
    let dir = data_dir.path().join(CLI_DIR);
    let cert = dir.join(format!("{CLI_THING}.cert.pem"));
    let key = dir.join(format!("{CLI_THING}.private.key"));
    if cert.is_file() && key.is_file() {
        return Ok((cert, key));
    }
    let setup = |e: Box<dyn std::error::Error + Send + Sync>| IdentityError::Setup {
        dir: dir.clone(),
        source: e,
    };
    let control = data_dir.control().map_err(|e| setup(e.into()))?;
    let thing = control.describe_thing(DescribeThingRequest {
        thing_name: CLI_THING.to_owned(),
    });
    if found(thing).map_err(|e| setup(e.into()))?.is_some() {
        return Err(IdentityError::LostKey { dir });
    }
    let policy = control.get_policy(PolicyNameRequest {
        policy_name: CLI_POLICY.to_owned(),
    });
    if found(policy).map_err(|e| setup(e.into()))?.is_none() {
        control
            .create_policy(CreatePolicyRequest {
                policy_name: CLI_POLICY.to_owned(),
                policy_document: cli_policy_document(),
                tags: None,
            })
            .map_err(|e| setup(e.into()))?;
    }
    let options = ThingOptions::default().with_policy(ThingPolicy::Existing(CLI_POLICY.into()));
    let created = control
        .create_thing_with_certificate(CLI_THING, &options)
        .map_err(|e| setup(e.into()))?;
    let files = write_device_files(
        CLI_THING,
        &created.credentials,
        control.pki().ca_pem(),
        &dir,
    )
    .map_err(|e| setup(e.into()))?;
    eprintln!(
        "created the CLI's identity: thing {CLI_THING}, policy {CLI_POLICY}, files in {}",
        dir.display()
    );
    Ok((files.certificate, files.private_key))
}

/// The CLI's policy: client ids `iotcore-cli-*`, and the Device Shadow topics
/// of every thing, in any region and account.
fn cli_policy_document() -> String {
    let arn = |kind: &str, name: &str| format!("\"arn:aws:iot:*:*:{kind}/{name}\"");
    format!(
        r#"{{
  "Version": "2012-10-17",
  "Statement": [
    {{"Effect": "Allow", "Action": "iot:Connect", "Resource": {connect}}},
    {{"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": {topic}}},
    {{"Effect": "Allow", "Action": "iot:Subscribe", "Resource": {filter}}}
  ]
}}
"#,
        connect = arn("client", &format!("{CLI_CLIENT_ID_PREFIX}*")),
        topic = arn("topic", "$aws/things/*/shadow/*"),
        filter = arn("topicfilter", "$aws/things/*/shadow/*"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use iotcore::shadow::StatePatch;
    use serde_json::json;

    #[test]
    fn options_make_a_checked_update_request() {
        let request = update_request(Some(r#"{"led":"on"}"#), Some("null"), None, Some(3)).unwrap();
        assert_eq!(
            request.state.desired,
            StatePatch::Merge(json!({"led": "on"}).as_object().unwrap().clone())
        );
        assert_eq!(request.state.reported, StatePatch::Clear);
        assert_eq!(request.version, Some(3));
        assert!(matches!(
            update_request(None, None, None, None),
            Err(UpdateInputError::Nothing)
        ));
        let e = update_request(Some("{led"), None, None, None).unwrap_err();
        assert!(
            e.to_string().starts_with("--desired is not valid JSON"),
            "{e}"
        );
        let e = update_request(Some("[1]"), None, None, None).unwrap_err();
        assert!(
            e.to_string()
                .contains("Desired node must be an object (code 400)"),
            "{e}"
        );
    }

    #[test]
    fn a_state_file_holds_the_state_or_a_whole_request() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        std::fs::write(&state, r#"{"reported":{"fw":"1.2"}}"#).unwrap();
        let request = update_request(None, None, Some(&state), None).unwrap();
        assert!(matches!(request.state.reported, StatePatch::Merge(_)));
        std::fs::write(&state, r#"{"state":{"desired":{"fw":"1.3"}},"version":9}"#).unwrap();
        let request = update_request(None, None, Some(&state), Some(4)).unwrap();
        assert!(matches!(request.state.desired, StatePatch::Merge(_)));
        assert_eq!(
            request.version,
            Some(4),
            "the command line's version counts"
        );
        let e = update_request(None, None, Some(&dir.path().join("none.json")), None).unwrap_err();
        assert!(
            e.to_string().starts_with("cannot read the state file"),
            "{e}"
        );
    }

    #[test]
    fn the_cli_policy_is_a_valid_policy_confined_to_shadows() {
        let document = cli_policy_document();
        let parsed = iotcore_emulator::policy::PolicyDocument::parse(&document)
            .unwrap_or_else(|e| panic!("{e}\n{document}"));
        assert!(parsed.warnings().is_empty(), "{:?}", parsed.warnings());
        assert!(document.contains("client/iotcore-cli-*"));
        assert!(!document.contains("\"*\""));
    }

    #[test]
    fn event_lines_name_their_event() {
        let line = event_line("delta", json!({"state": {"a": 1}, "version": 2})).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&line).unwrap(),
            json!({"event": "delta", "state": {"a": 1}, "version": 2})
        );
    }
}
