//! `iotcore policy …`: AWS IoT policies in the emulator's registry, and
//! `policy explain`, which answers offline what the broker would decide.

use std::io::Read;
use std::net::IpAddr;
use std::path::Path;

use clap::Subcommand;
use iotcore_emulator::policy::{Action, ArnScope, PolicyDocument, PolicyTemplate, Principal};
use iotcore_emulator::store::{CertificateStatus, MAX_POLICY_VERSIONS, Store, StoreError};

use crate::CliResult;
use crate::cert_cmd::resolve_certificate;

/// Subcommands of `iotcore policy`.
#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Create a policy from a JSON document (FILE, or - for stdin). A document
    /// AWS IoT would refuse is refused, naming the element at fault.
    Create {
        /// The policy name (1-128 characters: letters, digits, _+=,.@-).
        name: String,
        /// The policy document: a file, or - to read stdin.
        file: String,
    },
    /// Replace a policy's document: adds a version and makes it the default
    /// (AWS keeps at most 5 versions).
    Update {
        /// The policy name.
        name: String,
        /// The new document: a file, or - to read stdin.
        file: String,
        /// At the 5-version limit, delete the oldest version that is not the default first.
        #[arg(long)]
        prune: bool,
    },
    /// Show a policy: its versions, certificates, and the document in force.
    Show {
        /// The policy name.
        name: String,
    },
    /// List the policies.
    List,
    /// Attach a policy to a certificate.
    Attach {
        /// The policy name.
        name: String,
        /// Certificate id, or a unique prefix of at least 6 characters.
        #[arg(long)]
        cert: String,
    },
    /// Detach a policy from a certificate.
    Detach {
        /// The policy name.
        name: String,
        /// Certificate id, or a unique prefix of at least 6 characters.
        #[arg(long)]
        cert: String,
    },
    /// Delete a policy (detach it and delete its other versions first, as on AWS).
    Delete {
        /// The policy name.
        name: String,
    },
    /// Print a built-in policy template ("thing" or "application"), to edit and
    /// create or update a policy from.
    Template {
        /// The template.
        template: PolicyTemplate,
    },
    /// Say whether a certificate's policies allow an action, and which statement
    /// decides: what the emulator would answer, without running it.
    Explain {
        /// Certificate id, or a unique prefix of at least 6 characters.
        #[arg(long)]
        cert: String,
        /// iot:Connect, iot:Publish, iot:Subscribe, iot:Receive or iot:RetainPublish.
        #[arg(long)]
        action: Action,
        /// A resource ARN, or the client id, topic or topic filter the action is on.
        #[arg(long)]
        resource: String,
        /// The client id of the connection (default: the certificate's first thing).
        #[arg(long)]
        client_id: Option<String>,
        /// The client's IP address, for aws:SourceIp.
        #[arg(long, default_value = "127.0.0.1")]
        source_ip: IpAddr,
    },
}

/// Why a policy command could not run.
#[derive(Debug, thiserror::Error)]
enum PolicyCmdError {
    /// The document file could not be read.
    #[error("cannot read {file}: {source}")]
    Read {
        /// The file (or stdin).
        file: String,
        /// The error.
        source: std::io::Error,
    },
    /// The certificate has no thing to take a client id from.
    #[error(
        "certificate {0} is attached to no thing: give the connection's client id with --client-id"
    )]
    NoClientId(String),
}

fn read_document(file: &str) -> Result<String, PolicyCmdError> {
    let read = |file: &str| {
        if file == "-" {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map(|_| text)
        } else {
            std::fs::read_to_string(file)
        }
    };
    read(file).map_err(|source| PolicyCmdError::Read {
        file: if file == "-" {
            "stdin".into()
        } else {
            file.into()
        },
        source,
    })
}

/// Prints the warnings AWS would not refuse the document for.
fn warn_about(document: &str) {
    if let Ok(parsed) = PolicyDocument::parse(document) {
        for warning in parsed.warnings() {
            eprintln!("warning: {warning}");
        }
    }
}

/// Runs a `policy` subcommand against the registry in `data_dir`; resources are
/// named in `scope`.
pub fn run(data_dir: &Path, scope: &ArnScope, command: PolicyCommand) -> CliResult {
    let open = || Store::open(data_dir);
    match command {
        PolicyCommand::Template { template } => print!("{}", template.render(scope)),
        PolicyCommand::Create { name, file } => {
            let store = open()?;
            let document = read_document(&file)?;
            store.create_policy(&name, &document)?;
            warn_about(&document);
            println!("created policy {name} (version 1)");
        }
        PolicyCommand::Update { name, file, prune } => {
            let store = open()?;
            let document = read_document(&file)?;
            let version = match store.create_policy_version(&name, &document, true) {
                Err(StoreError::PolicyVersionLimit { .. }) if prune => {
                    let oldest = store
                        .policy(&name)?
                        .and_then(|p| {
                            let default = p.default_version;
                            p.versions
                                .into_iter()
                                .map(|v| v.version)
                                .find(|v| *v != default)
                        })
                        .ok_or_else(|| StoreError::PolicyNotFound(name.clone()))?;
                    store.delete_policy_version(&name, oldest)?;
                    println!(
                        "deleted version {oldest} of policy {name} (limit of {MAX_POLICY_VERSIONS})"
                    );
                    store.create_policy_version(&name, &document, true)?
                }
                other => other?,
            };
            warn_about(&document);
            println!("policy {name}: version {version} is now the default");
        }
        PolicyCommand::Show { name } => {
            let store = open()?;
            let policy = store
                .policy(&name)?
                .ok_or_else(|| StoreError::PolicyNotFound(name.clone()))?;
            let versions: Vec<String> = policy
                .versions
                .iter()
                .map(|v| v.version.to_string())
                .collect();
            println!("policy:          {}", policy.name);
            println!("default version: {}", policy.default_version);
            println!("versions:        {}", versions.join(", "));
            println!("certificates:    {}", policy.certificates.join(", "));
            let document = policy.default_document();
            print!("{document}");
            if !document.ends_with('\n') {
                println!();
            }
        }
        PolicyCommand::List => {
            let store = open()?;
            for policy in store.list_policies()? {
                println!(
                    "{}\tversion {}\t{} certificate(s)",
                    policy.name,
                    policy.default_version,
                    policy.certificates.len()
                );
            }
        }
        PolicyCommand::Attach { name, cert } => {
            let store = open()?;
            let id = resolve_certificate(&store, &cert)?;
            store.attach_policy(&name, &id)?;
            println!("attached policy {name} to certificate {id}");
        }
        PolicyCommand::Detach { name, cert } => {
            let store = open()?;
            let id = resolve_certificate(&store, &cert)?;
            if store.detach_policy(&name, &id)? {
                println!("detached policy {name} from certificate {id}");
            } else {
                println!("policy {name} was not attached to certificate {id}");
            }
        }
        PolicyCommand::Delete { name } => {
            let store = open()?;
            if store.delete_policy(&name)? {
                println!("deleted policy {name}");
            } else {
                return Err(StoreError::PolicyNotFound(name).into());
            }
        }
        PolicyCommand::Explain {
            cert,
            action,
            resource,
            client_id,
            source_ip,
        } => {
            let store = open()?;
            let id = resolve_certificate(&store, &cert)?;
            let client_id = match client_id {
                Some(client_id) => client_id,
                None => store
                    .certificate(&id)?
                    .and_then(|c| c.things.into_iter().next())
                    .ok_or_else(|| PolicyCmdError::NoClientId(id.clone()))?,
            };
            let (principal, status) =
                Principal::load(&store, scope, &id, &client_id, Some(source_ip))?;
            let decision = if resource.starts_with("arn:") {
                principal.evaluate(action, &resource)
            } else {
                principal.evaluate_name(action, &resource)
            };
            println!(
                "{}",
                if decision.is_allowed() {
                    "ALLOW"
                } else {
                    "DENY"
                }
            );
            println!("  {decision}");
            println!("  connection: {}", principal.describe());
            if status != CertificateStatus::Active {
                println!(
                    "  note: the certificate is {status}: the emulator refuses it before any \
                     policy is evaluated"
                );
            }
        }
    }
    Ok(())
}
