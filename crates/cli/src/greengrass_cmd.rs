//! `iotcore greengrass …`: Greengrass core devices, their connectivity and
//! client devices in the emulator's registry; `iotcore discover`: Greengrass
//! discovery as a client device asks it (of the emulator or of AWS).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use iotcore::greengrass::{DiscoveryEndpoint, discover};
use iotcore::{Client, Identity};
use iotcore_emulator::control::{
    BatchClientDevicesRequest, BatchClientDevicesResponse, Control, CreateThingRequest,
    DescribeThingRequest, Discovery, UpdateConnectivityInfoRequest,
};
use iotcore_emulator::pki::Pki;
use iotcore_model::greengrass::ConnectivityInfo;

use crate::CliResult;
use crate::data_dir::DataDir;
use crate::registry;

/// Subcommands of `iotcore greengrass`.
#[derive(Subcommand)]
pub enum GreengrassCommand {
    /// Greengrass core devices.
    #[command(subcommand)]
    Core(CoreCommand),
    /// The addresses of a core device's local broker, which discovery returns.
    #[command(subcommand)]
    Connectivity(ConnectivityCommand),
    /// Associate client devices with a core device: discovery then returns
    /// the core to them.
    Associate(AssociationArgs),
    /// End the association of client devices with a core device.
    Disassociate(AssociationArgs),
    /// List the core devices, their connectivity and their client devices.
    List,
}

/// Subcommands of `iotcore greengrass core`.
#[derive(Subcommand)]
pub enum CoreCommand {
    /// Make thing NAME a Greengrass core device (creating the thing if needed).
    Create {
        /// The core device's thing name.
        name: String,
    },
    /// Run core NAME's local broker for its client devices, bridged to the
    /// emulator, until Ctrl-C.
    Run(crate::greengrass_core_cmd::CoreRunArgs),
}

/// Subcommands of `iotcore greengrass connectivity`.
#[derive(Subcommand)]
pub enum ConnectivityCommand {
    /// Replace the core device's addresses (UpdateConnectivityInfo), in the
    /// order client devices should try them.
    Set {
        /// The core device's thing name.
        name: String,
        /// HOST:PORT of its local broker ([IPV6]:PORT for an IPv6 address).
        #[arg(required = true, value_parser = parse_address)]
        addresses: Vec<ConnectivityInfo>,
    },
}

/// Arguments of `iotcore greengrass associate|disassociate`.
#[derive(Args)]
pub struct AssociationArgs {
    /// The core device's thing name.
    core: String,
    /// A client device's thing name (repeat for several).
    #[arg(long = "thing", required = true)]
    things: Vec<String>,
}

/// Runs a `greengrass` subcommand against the registry in `data_dir`.
pub fn run(data_dir: &DataDir, command: GreengrassCommand) -> CliResult {
    let control = data_dir.control()?;
    match command {
        GreengrassCommand::Core(CoreCommand::Run(args)) => {
            return crate::greengrass_core_cmd::run(data_dir, control, args);
        }
        GreengrassCommand::Core(CoreCommand::Create { name }) => {
            let described = registry::found(control.describe_thing(DescribeThingRequest {
                thing_name: name.clone(),
            }))?;
            let arn = match described {
                Some(thing) => thing.thing_arn,
                None => {
                    control
                        .create_thing(CreateThingRequest::named(&name))?
                        .thing_arn
                }
            };
            let created = control.register_core_device(&name)?;
            let what = if created { "is now" } else { "was already" };
            println!("{name} ({arn}) {what} a Greengrass core device");
        }
        GreengrassCommand::Connectivity(ConnectivityCommand::Set { name, addresses }) => {
            let updated = control.update_connectivity_info(UpdateConnectivityInfoRequest {
                thing_name: name.clone(),
                connectivity_info: addresses.clone(),
            })?;
            let list: Vec<String> = addresses.iter().map(|a| a.id.clone()).collect();
            println!(
                "connectivity of {name} (version {}): {}",
                updated.version,
                list.join(", ")
            );
        }
        GreengrassCommand::Associate(args) => {
            let response = control.batch_associate_client_device_with_core_device(
                BatchClientDevicesRequest::new(&args.core, args.things.iter().cloned()),
            )?;
            report(&args, &response, "associated with")?;
            for thing in &args.things {
                warn_if_discovery_is_forbidden(&control, thing)?;
            }
        }
        GreengrassCommand::Disassociate(args) => {
            let response = control.batch_disassociate_client_device_from_core_device(
                BatchClientDevicesRequest::new(&args.core, args.things.iter().cloned()),
            )?;
            report(&args, &response, "no longer associated with")?;
        }
        GreengrassCommand::List => list(&control)?,
    }
    Ok(())
}

/// Prints what took effect; fails naming the entries that did not.
fn report(args: &AssociationArgs, response: &BatchClientDevicesResponse, done: &str) -> CliResult {
    for thing in &args.things {
        if !response
            .error_entries
            .iter()
            .any(|e| &e.thing_name == thing)
        {
            println!("{thing} {done} core device {}", args.core);
        }
    }
    if response.error_entries.is_empty() {
        return Ok(());
    }
    let failures: Vec<String> = response
        .error_entries
        .iter()
        .map(|e| format!("{} ({}: {})", e.thing_name, e.code, e.message))
        .collect();
    Err(format!("not done for {}", failures.join("; ")).into())
}

/// Says so when none of `thing`'s certificates may discover it: their
/// policies must allow `greengrass:Discover` on the thing's ARN.
fn warn_if_discovery_is_forbidden(control: &Control, thing: &str) -> CliResult {
    let certificates = registry::thing_certificates(control, thing)?;
    let mut allowed = false;
    for certificate in &certificates {
        if !matches!(
            control.discover(certificate, thing, None)?,
            Discovery::Forbidden(_)
        ) {
            allowed = true;
        }
    }
    if !allowed {
        println!(
            "note: no certificate of {thing} may discover yet: attach a policy allowing \
             greengrass:Discover on {}thing/{thing} to its certificate (iotcore policy create \
             NAME FILE; iotcore policy attach NAME --cert ID)",
            control.arn_scope().prefix()
        );
    }
    Ok(())
}

fn list(control: &Control) -> CliResult {
    let cores = control.list_core_devices()?;
    if cores.is_empty() {
        println!("no core devices (iotcore greengrass core create NAME)");
    }
    for core in cores {
        println!(
            "{} ({} CA certificates)",
            core.core_device_thing_name, core.certificate_authorities
        );
        let addresses: Vec<String> = core
            .connectivity_info
            .iter()
            .map(|a| format!("{}:{}", host_for_url(&a.host_address), a.port))
            .collect();
        println!(
            "  connectivity: {}",
            if addresses.is_empty() {
                "none (discovery does not return this core)".to_owned()
            } else {
                addresses.join(", ")
            }
        );
        println!(
            "  client devices: {}",
            if core.client_devices.is_empty() {
                "none".to_owned()
            } else {
                core.client_devices.join(", ")
            }
        );
    }
    Ok(())
}

/// `host` as it goes before `:port` (an IPv6 address in brackets).
fn host_for_url(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// Parses `HOST:PORT` or `[IPV6]:PORT` into a connectivity entry whose id is
/// the text given.
fn parse_address(text: &str) -> Result<ConnectivityInfo, String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?} is not HOST:PORT"))?;
    let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6,
        None if host.contains(':') => {
            return Err(format!(
                "{text:?}: write an IPv6 address in brackets, [::1]:8883"
            ));
        }
        None => host,
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{text:?}: {port:?} is not a port number (0-65535)"))?;
    if host.is_empty() {
        return Err(format!("{text:?} has no host"));
    }
    Ok(ConnectivityInfo {
        id: text.to_owned(),
        host_address: host.to_owned(),
        port,
        metadata: String::new(),
    })
}

/// Options of `iotcore discover`.
#[derive(Args)]
pub struct DiscoverArgs {
    /// The client device's thing name.
    #[arg(long)]
    thing: String,
    /// Its certificate (PEM).
    #[arg(long)]
    cert: PathBuf,
    /// Its private key (PEM).
    #[arg(long)]
    key: PathBuf,
    /// The discovery endpoint's host: the emulator, or
    /// greengrass-ats.iot.REGION.amazonaws.com.
    #[arg(long, default_value = "localhost")]
    endpoint: String,
    /// Its port: the emulator's MQTT port or AWS's 443 (both with ALPN
    /// x-amzn-http-ca), or 8443 (the emulator's API port and AWS's: no ALPN).
    #[arg(long, default_value_t = 8883)]
    port: u16,
    /// Offer no ALPN, whatever the port.
    #[arg(long)]
    no_alpn: bool,
    /// The server name (SNI) its certificate is checked against, when it is
    /// not --endpoint.
    #[arg(long)]
    server_name: Option<String>,
    /// CA that signed the endpoint's certificate (PEM). Default: the
    /// emulator's CA in the data directory if there is one; Amazon's roots
    /// are trusted too.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// How long to wait for the answer, in seconds.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// Only ask discovery; do not then connect to a core to say which
    /// address answers.
    #[arg(long)]
    no_connect: bool,
}

/// Runs `iotcore discover`: prints the discovery response as AWS's JSON,
/// then (on stderr, stdout staying JSON) which core address accepts the device.
pub fn run_discover(data_dir: &DataDir, args: DiscoverArgs) -> CliResult {
    let identity = Identity::from_files(&args.cert, &args.key)?;
    let mut endpoint = DiscoveryEndpoint::new(args.endpoint.as_str(), args.port)
        .alpn(!args.no_alpn && args.port != 8443)
        .timeout(Duration::from_secs(args.timeout.max(1)));
    if let Some(name) = &args.server_name {
        endpoint = endpoint.server_name(name.as_str());
    }
    let emulator_ca = Pki::ca_cert_path(data_dir.path());
    match args.ca {
        Some(ca) => endpoint = endpoint.root_ca_pem_file(ca)?,
        None if emulator_ca.is_file() => endpoint = endpoint.root_ca_pem_file(emulator_ca)?,
        None => {}
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let response = runtime.block_on(discover(&identity, &endpoint, &args.thing))?;
    println!("{}", serde_json::to_string_pretty(&response)?);
    if args.no_connect {
        return Ok(());
    }
    // As the device would: the addresses in order, each with its core's CAs.
    let client = runtime.block_on(
        Client::builder(&args.thing)
            .client_cert_pem_files(&args.cert, &args.key)?
            .greengrass_core(endpoint)
            .initial_connect(1, Duration::from_secs(args.timeout.max(1)))
            .connect(),
    )?;
    if let Some(core) = client.greengrass_core() {
        eprintln!(
            "connected to core {} at {}:{} as {}",
            core.core_thing_arn, core.host, core.port, args.thing
        );
    }
    runtime.block_on(client.close());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_host_colon_port_with_ipv6_in_brackets() {
        let a = parse_address("core.local:8883").unwrap();
        assert_eq!((a.host_address.as_str(), a.port), ("core.local", 8883));
        assert_eq!(a.id, "core.local:8883");
        let a = parse_address("[::1]:18883").unwrap();
        assert_eq!((a.host_address.as_str(), a.port), ("::1", 18883));
        assert_eq!(host_for_url(&a.host_address), "[::1]");
        for bad in ["core.local", "::1:8883", ":8883", "h:70000", "h:x"] {
            assert!(parse_address(bad).is_err(), "{bad} accepted");
        }
    }
}
