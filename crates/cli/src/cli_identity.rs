//! Where the CLI's MQTT commands (`shadow`, `pub`, `sub`) connect, and as whom.
//!
//! Identity: `--cert`/`--key` (and `--ca`) when given. Otherwise the CLI uses
//! its own identity in the emulator's data directory, made on first use: thing
//! `iotcore-cli` with a certificate from the emulator's CA (files in
//! `<data dir>/cli/`) and the policy `iotcore-cli-policy`, which allows client
//! ids `iotcore-cli-*` and publishing, subscribing and receiving on every
//! topic (shadow topics included), with retain. The CLI owns that policy: when
//! its default version is not the document this release writes (an older
//! release allowed only shadow topics), a new version with that document is
//! made the default, the older versions kept (the oldest other one deleted at
//! AWS's limit of five).
//!
//! Each run connects with a fresh client id `iotcore-cli-<random>` unless
//! `--client-id` says otherwise, so a `watch` or a `sub` and an `update` or a
//! `pub` in two terminals do not take over each other's connection.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use iotcore::{Client, ClientBuilder, ProtocolVersion};
use iotcore_emulator::control::{
    Control, ControlError, CreatePolicyRequest, DescribeThingRequest, PolicyNameRequest,
    ThingOptions, ThingPolicy,
};
use iotcore_emulator::things::write_device_files;

use crate::CliResult;
use crate::data_dir::DataDir;
use crate::policy_cmd::replace_default_version;
use crate::registry::found;

/// The thing that holds the CLI's certificate in the emulator's registry.
const CLI_THING: &str = "iotcore-cli";
/// The policy of the CLI's certificate.
const CLI_POLICY: &str = "iotcore-cli-policy";
/// Client ids the CLI's policy allows: this, then a random suffix.
const CLI_CLIENT_ID_PREFIX: &str = "iotcore-cli-";
/// Where, under the data directory, the CLI keeps its certificate and key.
const CLI_DIR: &str = "cli";

/// Where to connect and as whom: the options every MQTT command of the CLI
/// shares. mosquitto's `-h HOST` is `--endpoint` here (`-h` is help), also
/// spelled `--host`.
#[derive(Args)]
pub struct Connection {
    /// Host name or IP address of the emulator, or AWS IoT Core's endpoint
    /// (xxxx-ats.iot.REGION.amazonaws.com).
    #[arg(long, visible_alias = "host", default_value = "localhost")]
    endpoint: String,
    /// MQTT over TLS port.
    #[arg(short = 'p', long, default_value_t = 8883)]
    port: u16,
    /// Client certificate (PEM). Default: the CLI's own identity in the data directory.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Private key of --cert (PEM).
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// CA that signed the server's certificate (PEM). Default: the emulator's
    /// CA in the data directory if there is one; Amazon's roots are always trusted.
    #[arg(long, visible_alias = "cafile")]
    ca: Option<PathBuf>,
    /// MQTT client id. Default: iotcore-cli-RANDOM (`shadow` with --cert: the
    /// name of --thing). With --cert, pass one the certificate's policy allows.
    #[arg(short = 'i', long, visible_alias = "id")]
    client_id: Option<String>,
    /// MQTT version: 311 (or mqttv311) or 5 (or mqttv5).
    #[arg(
        short = 'V',
        long = "protocol-version",
        value_enum,
        default_value = "311"
    )]
    protocol: Protocol,
    /// How long to wait for the connection and for each reply, in seconds.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
}

/// The MQTT versions AWS IoT Core speaks, named as mosquitto's `-V` names them.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Protocol {
    /// MQTT 3.1.1.
    #[value(name = "311", alias = "mqttv311")]
    V311,
    /// MQTT 5.
    #[value(name = "5", alias = "mqttv5")]
    V5,
}

impl Connection {
    /// How long to wait for the connection and for each reply.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout.max(1))
    }

    /// Connects: as `--cert`/`--key` if given, the certificate of `thing`
    /// (client id: `--client-id`, else `thing` if given, else a fresh one),
    /// else as the CLI's own identity. `configure` sets the command's own
    /// builder options.
    pub async fn connect(
        &self,
        data_dir: &DataDir,
        thing: Option<&str>,
        configure: impl FnOnce(ClientBuilder) -> ClientBuilder,
    ) -> CliResult<Client> {
        let identity = Identity::resolve(data_dir, self, thing)?;
        let timeout = self.timeout();
        let mut builder = Client::builder(identity.thing.as_str())
            .client_id(identity.client_id.as_str())
            .endpoint(self.endpoint.as_str())
            .port(self.port)
            .protocol(match self.protocol {
                Protocol::V311 => ProtocolVersion::V311,
                Protocol::V5 => ProtocolVersion::V5,
            })
            .client_cert_pem_files(&identity.cert, &identity.key)?
            .initial_connect(1, timeout)
            .connect_timeout(timeout);
        if let Some(ca) = &identity.ca {
            builder = builder.root_ca_pem_file(ca)?;
        }
        let client = configure(builder)
            .connect()
            .await
            .map_err(|e| ConnectError {
                endpoint: format!("{}:{}", self.endpoint, self.port),
                source: e,
            })?;
        Ok(client)
    }
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
        thing: Option<&str>,
    ) -> Result<Identity, IdentityError> {
        let emulator_ca = data_dir.path().join("pki/ca.pem");
        let ca = options
            .ca
            .clone()
            .or_else(|| emulator_ca.is_file().then(|| emulator_ca.clone()));
        let fresh_client_id = || format!("{CLI_CLIENT_ID_PREFIX}{:08x}", rand_suffix());
        if let (Some(cert), Some(key)) = (&options.cert, &options.key) {
            let client_id = options
                .client_id
                .clone()
                .or_else(|| thing.map(str::to_owned))
                .unwrap_or_else(fresh_client_id);
            return Ok(Identity {
                thing: thing.unwrap_or(CLI_THING).to_owned(),
                client_id,
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
            client_id: options.client_id.clone().unwrap_or_else(fresh_client_id),
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
/// [`CLI_THING`] with policy [`CLI_POLICY`], kept at [`cli_policy_document`].
fn cli_identity_files(data_dir: &DataDir) -> Result<(PathBuf, PathBuf), IdentityError> {
    let dir = data_dir.path().join(CLI_DIR);
    let cert = dir.join(format!("{CLI_THING}.cert.pem"));
    let key = dir.join(format!("{CLI_THING}.private.key"));
    let setup = |e: Box<dyn std::error::Error + Send + Sync>| IdentityError::Setup {
        dir: dir.clone(),
        source: e,
    };
    let control = data_dir.control().map_err(|e| setup(e.into()))?;
    ensure_cli_policy(&control).map_err(|e| setup(e.into()))?;
    if cert.is_file() && key.is_file() {
        return Ok((cert, key));
    }
    let thing = control.describe_thing(DescribeThingRequest {
        thing_name: CLI_THING.to_owned(),
    });
    if found(thing).map_err(|e| setup(e.into()))?.is_some() {
        return Err(IdentityError::LostKey { dir });
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

/// Creates [`CLI_POLICY`], or makes [`cli_policy_document`] its default
/// version if its default version says something else.
fn ensure_cli_policy(control: &Control) -> Result<(), ControlError> {
    let document = cli_policy_document();
    let policy = control.get_policy(PolicyNameRequest {
        policy_name: CLI_POLICY.to_owned(),
    });
    match found(policy)? {
        None => {
            control.create_policy(CreatePolicyRequest {
                policy_name: CLI_POLICY.to_owned(),
                policy_document: document,
                tags: None,
            })?;
        }
        Some(policy) if !same_json(&policy.policy_document, &document) => {
            let replaced = replace_default_version(control, CLI_POLICY, &document, true)?;
            eprintln!(
                "updated the CLI's policy {CLI_POLICY}: version {} allows pub/sub on every topic",
                replaced.version
            );
        }
        Some(_) => {}
    }
    Ok(())
}

/// Whether two policy documents say the same, whatever their layout.
fn same_json(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<serde_json::Value>(a),
        serde_json::from_str::<serde_json::Value>(b),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The CLI's policy: client ids `iotcore-cli-*`, and publishing (with retain),
/// subscribing and receiving on every topic, in any region and account.
fn cli_policy_document() -> String {
    let arn = |kind: &str, name: &str| format!("\"arn:aws:iot:*:*:{kind}/{name}\"");
    format!(
        r#"{{
  "Version": "2012-10-17",
  "Statement": [
    {{"Effect": "Allow", "Action": "iot:Connect", "Resource": {connect}}},
    {{"Effect": "Allow", "Action": ["iot:Publish", "iot:RetainPublish", "iot:Receive"], "Resource": {topic}}},
    {{"Effect": "Allow", "Action": "iot:Subscribe", "Resource": {filter}}}
  ]
}}
"#,
        connect = arn("client", &format!("{CLI_CLIENT_ID_PREFIX}*")),
        topic = arn("topic", "*"),
        filter = arn("topicfilter", "*"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use iotcore_emulator::policy::{ArnScope, DEFAULT_ACCOUNT_ID, DEFAULT_REGION};

    #[test]
    fn the_cli_policy_is_valid_and_confines_client_ids() {
        let document = cli_policy_document();
        let parsed = iotcore_emulator::policy::PolicyDocument::parse(&document)
            .unwrap_or_else(|e| panic!("{e}\n{document}"));
        assert!(parsed.warnings().is_empty(), "{:?}", parsed.warnings());
        assert!(document.contains("client/iotcore-cli-*"));
        assert!(document.contains("iot:RetainPublish"));
        assert!(!document.contains("\"*\""));
    }

    #[test]
    fn an_older_cli_policy_gets_a_new_default_version() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = DataDir::new(
            dir.path().to_owned(),
            ArnScope::new(DEFAULT_REGION, DEFAULT_ACCOUNT_ID),
        );
        let control = data_dir.control().unwrap();
        let shadows_only = cli_policy_document().replace("topic/*", "topic/$aws/things/*");
        control
            .create_policy(CreatePolicyRequest {
                policy_name: CLI_POLICY.to_owned(),
                policy_document: shadows_only,
                tags: None,
            })
            .unwrap();
        ensure_cli_policy(&control).unwrap();
        let policy = control
            .get_policy(PolicyNameRequest {
                policy_name: CLI_POLICY.to_owned(),
            })
            .unwrap();
        assert_eq!(policy.default_version_id, "2");
        assert!(same_json(&policy.policy_document, &cli_policy_document()));
        ensure_cli_policy(&control).unwrap();
        let versions = control
            .list_policy_versions(PolicyNameRequest {
                policy_name: CLI_POLICY.to_owned(),
            })
            .unwrap();
        assert_eq!(
            versions.policy_versions.len(),
            2,
            "an up-to-date policy is left alone"
        );
    }
}
