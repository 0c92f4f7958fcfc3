//! The `iotcore` command: a local AWS IoT Core emulator, its registry, and a demo device.
#![forbid(unsafe_code)]

mod authorizer_cmd;
mod bench_cmd;
mod bridge;
mod cert_cmd;
mod cli_identity;
mod credentials_cmd;
mod data_dir;
mod demo;
mod duration;
mod emulator_cmd;
mod greengrass_cmd;
mod greengrass_core_cmd;
mod jobs_cmd;
mod policy_cmd;
mod provision_cmd;
mod pubsub;
mod qualify_cmd;
mod registry;
mod shadow_cmd;
mod signals;
mod simulate;
mod template_cmd;
mod thing_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Command-line interface of iotcore.
#[derive(Parser)]
#[command(
    name = "iotcore",
    version,
    about = "AWS IoT Core device SDK tools and local emulator"
)]
struct Cli {
    /// Directory holding the emulator's CA, keys and SQLite registry.
    /// Default: $XDG_DATA_HOME/iotcore or ~/.local/share/iotcore.
    #[arg(long, global = true, env = "IOTCORE_DATA_DIR")]
    data_dir: Option<PathBuf>,

    /// The AWS region resource ARNs name (arn:aws:iot:REGION:…) in policies.
    #[arg(long, global = true, env = "IOTCORE_REGION", default_value = iotcore_emulator::policy::DEFAULT_REGION)]
    region: String,

    /// The account id resource ARNs name (arn:aws:iot:…:ACCOUNT:…) in policies.
    #[arg(long, global = true, env = "IOTCORE_ACCOUNT_ID", default_value = iotcore_emulator::policy::DEFAULT_ACCOUNT_ID)]
    account_id: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a device and its cloud side through AWS IoT Core, printing every
    /// step: by default an emulator embedded in the command; with --certs, a
    /// running AWS IoT Core or emulator.
    Demo(demo::DemoArgs),
    /// Run the local AWS IoT Core emulator until Ctrl-C.
    Emulator(emulator_cmd::EmulatorArgs),
    /// Manage things and their certificates in the emulator's registry.
    #[command(subcommand)]
    Thing(thing_cmd::ThingCommand),
    /// List certificates and change their status (activate, deactivate, revoke).
    #[command(subcommand)]
    Cert(cert_cmd::CertCommand),
    /// Issue access keys for the emulator's HTTPS API (the AWS CLI, boto3, the AWS SDKs).
    #[command(subcommand)]
    Credentials(credentials_cmd::CredentialsCommand),
    /// Manage custom authorizers: a local command decides who may connect.
    #[command(subcommand)]
    Authorizer(authorizer_cmd::AuthorizerCommand),
    /// Manage AWS IoT policies, attach them to certificates, explain decisions.
    #[command(subcommand)]
    Policy(policy_cmd::PolicyCommand),
    /// Manage fleet provisioning templates and make their claim certificates.
    #[command(subcommand)]
    Template(template_cmd::TemplateCommand),
    /// Provision a device by claim: connect with the claim certificate, have a
    /// CSR made here signed, register the thing with a template, save its
    /// credentials.
    Provision(provision_cmd::ProvisionArgs),
    /// Create, list, describe, cancel and delete jobs; list job executions.
    Jobs(jobs_cmd::JobsArgs),
    /// Greengrass core devices, their connectivity and client devices in the
    /// emulator's registry.
    #[command(subcommand)]
    Greengrass(greengrass_cmd::GreengrassCommand),
    /// Ask Greengrass discovery (the emulator's or AWS's) which core devices a
    /// client device may connect to, with its certificate; prints AWS's JSON.
    Discover(greengrass_cmd::DiscoverArgs),
    /// Get, update, delete or watch a thing's Device Shadow on a running emulator.
    #[command(subcommand)]
    Shadow(shadow_cmd::ShadowCommand),
    /// Publish messages, like mosquitto_pub (the CLI's own identity by default).
    Pub(pubsub::publish::PubArgs),
    /// Subscribe and print messages, like mosquitto_sub; JSON pretty-printed.
    Sub(pubsub::subscribe::SubArgs),
    /// Load-test: a fleet of N devices (things sim-00001…) connecting at a
    /// ramp rate, sending telemetry and shadow updates, with live progress
    /// and a latency summary (also as JSON). A fleet larger than one machine:
    /// --shard K/N in N processes, then `simulate merge` of their summaries.
    Simulate(simulate::SimulateCommand),
    /// AWS IoT Device Advisor's test cases, offline: a qualifying endpoint
    /// withholds acknowledgements, cuts connections and grades how the device
    /// reacts (human summary, JSON and JUnit XML).
    Qualify(qualify_cmd::QualifyArgs),
    /// Benchmark the device SDK and the emulator against their peers (rumqttc,
    /// AWS's Python SDK, paho-mqtt, Mosquitto, rumqttd) in one run; writes
    /// bench/results/DATE.json, .md and .svg and updates BENCHMARKS.md.
    Bench(bench_cmd::BenchArgs),
}

/// An error the CLI reports before exiting with status 1 (or the status its
/// type stands for: `sub -W`'s timeout, `policy explain`'s DENY).
type CliResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo prints its own steps; the emulator's log is its output. rustls warns
    // about every client that sends an IP address as SNI (AWS's SDKs do, on
    // 127.0.0.1); the emulator accepts them, so that warning is noise.
    init_tracing(match cli.command {
        Command::Demo(_)
        | Command::Shadow(_)
        | Command::Pub(_)
        | Command::Sub(_)
        | Command::Simulate(_)
        | Command::Bench(_) => "warn,rustls=error",
        _ => "info,rustls=error",
    });
    let scope = iotcore_emulator::policy::ArnScope::new(&cli.region, &cli.account_id);
    let data_dir = data_dir::DataDir::new(data_dir::resolve(cli.data_dir), scope);
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Emulator(args) => emulator_cmd::run(&data_dir, args),
        Command::Thing(cmd) => thing_cmd::run(&data_dir, cmd),
        Command::Cert(cmd) => cert_cmd::run(&data_dir, cmd),
        Command::Credentials(cmd) => credentials_cmd::run(&data_dir, cmd),
        Command::Authorizer(cmd) => authorizer_cmd::run(&data_dir, cmd),
        Command::Policy(cmd) => policy_cmd::run(&data_dir, cmd),
        Command::Template(cmd) => template_cmd::run(&data_dir, cmd),
        Command::Provision(args) => provision_cmd::run(data_dir.path(), args),
        Command::Jobs(args) => jobs_cmd::run(&data_dir, args),
        Command::Greengrass(cmd) => greengrass_cmd::run(&data_dir, cmd),
        Command::Discover(args) => greengrass_cmd::run_discover(&data_dir, args),
        Command::Shadow(cmd) => shadow_cmd::run(&data_dir, cmd),
        Command::Pub(args) => pubsub::publish::run(&data_dir, args),
        Command::Sub(args) => pubsub::subscribe::run(&data_dir, args),
        Command::Simulate(args) => simulate::run(&data_dir, args),
        Command::Qualify(args) => qualify_cmd::run(&data_dir, args),
        Command::Bench(args) => bench_cmd::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // Printed as DENY with its explanation already.
        Err(e) if e.is::<policy_cmd::Denied>() => ExitCode::from(policy_cmd::DENIED_STATUS),
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = e.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            match e.is::<pubsub::subscribe::TimedOut>() {
                true => ExitCode::from(pubsub::subscribe::TIMED_OUT_STATUS),
                false => ExitCode::FAILURE,
            }
        }
    }
}

/// Logs to stderr at `default_level`; `RUST_LOG` overrides it.
fn init_tracing(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
