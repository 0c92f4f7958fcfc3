//! `iotcore provision`: fleet provisioning by claim, as a device does it —
//! connect with the claim certificate, make a key and a CSR here, have the CSR
//! signed, register the thing with a template, save the new credentials.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};
use iotcore::Client;
use iotcore::provisioning::{FleetProvisioner, KeyType};

use crate::CliResult;

/// The key the device makes.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum KeyTypeArg {
    /// ECDSA P-256.
    Ec,
    /// ECDSA P-384.
    Ec384,
    /// RSA 2048.
    Rsa,
}

impl From<KeyTypeArg> for KeyType {
    fn from(arg: KeyTypeArg) -> KeyType {
        match arg {
            KeyTypeArg::Ec => KeyType::EcdsaP256,
            KeyTypeArg::Ec384 => KeyType::EcdsaP384,
            KeyTypeArg::Rsa => KeyType::Rsa2048,
        }
    }
}

/// Options of `iotcore provision`.
#[derive(Args)]
pub struct ProvisionArgs {
    /// Host name or IP address of the emulator (or of AWS IoT Core's endpoint).
    #[arg(long, default_value = "localhost")]
    endpoint: String,
    /// MQTT over TLS port.
    #[arg(long, default_value_t = 8883)]
    port: u16,
    /// The claim certificate (PEM), e.g. from `iotcore template claim`.
    #[arg(long)]
    claim_cert: PathBuf,
    /// The claim certificate's private key (PEM).
    #[arg(long)]
    claim_key: PathBuf,
    /// CA that signed the server's certificate (PEM). Default: the emulator's
    /// CA in the data directory if there is one, else Amazon's roots.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// The provisioning template.
    #[arg(long)]
    template: String,
    /// A template parameter, NAME=VALUE (repeat for more).
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
    params: Vec<(String, String)>,
    /// Directory for THING.cert.pem, THING.private.key (mode 0600) and provisioned.json.
    #[arg(long)]
    out: PathBuf,
    /// The claim connection's client id. Default: provision-PID-TIME.
    #[arg(long)]
    client_id: Option<String>,
    /// The key made here: ec (ECDSA P-256), ec384 or rsa.
    #[arg(
        long,
        value_enum,
        default_value = "ec",
        conflicts_with = "keys_from_service"
    )]
    key_type: KeyTypeArg,
    /// Have the service make the key too (CreateKeysAndCertificate) instead of
    /// signing a CSR made here.
    #[arg(long)]
    keys_from_service: bool,
    /// How long to wait for the connection and for each reply, in seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not NAME=VALUE")),
    }
}

/// Runs `iotcore provision`; the emulator's CA is looked for in `data_dir`.
pub fn run(data_dir: &Path, args: ProvisionArgs) -> CliResult {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(provision(data_dir, args))
}

async fn provision(data_dir: &Path, args: ProvisionArgs) -> CliResult {
    let timeout = Duration::from_secs(args.timeout.max(1));
    let client_id = args.client_id.clone().unwrap_or_else(default_client_id);
    let emulator_ca = data_dir.join("pki/ca.pem");
    let ca = args
        .ca
        .clone()
        .or_else(|| emulator_ca.is_file().then_some(emulator_ca));
    let mut claim = Client::builder(client_id.as_str())
        .endpoint(args.endpoint.as_str())
        .port(args.port)
        .client_cert_pem_files(&args.claim_cert, &args.claim_key)?
        .initial_connect(1, timeout)
        .connect_timeout(timeout);
    if let Some(ca) = &ca {
        claim = claim.root_ca_pem_file(ca)?;
    }
    let mut provisioner = FleetProvisioner::new(args.template.as_str())
        .parameters(args.params.iter().cloned())
        .timeout(timeout)
        .save_to(&args.out);
    provisioner = if args.keys_from_service {
        provisioner.keys_from_service()
    } else {
        provisioner.device_key(args.key_type.into())
    };
    let provisioned = provisioner.provision(claim).await?;
    println!("thing:       {}", provisioned.thing_name());
    println!("certificate: {} (ACTIVE)", provisioned.certificate_id());
    if let Some(files) = provisioned.files() {
        println!("  {}", files.certificate.display());
        println!("  {}", files.private_key.display());
        println!("  {}", files.record.display());
    }
    for (key, value) in provisioned.device_configuration() {
        println!("config:      {key}={value}");
    }
    Ok(())
}

/// `provision-<pid>-<milliseconds since the epoch>`: distinct per run.
fn default_client_id() -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("provision-{}-{millis}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_name_equals_value() {
        assert_eq!(parse_param("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(parse_param("a="), Ok(("a".into(), String::new())));
        assert!(parse_param("=b").is_err());
        assert!(parse_param("ab").is_err());
    }
}
