//! `iotcore policy …`: AWS IoT policies in the emulator's registry, and
//! `policy explain`, which answers offline what the broker would decide.

use std::io::Read;
use std::net::IpAddr;

use clap::Subcommand;
use iotcore_emulator::control::{
    CertificateStatus, Control, ControlError, CreatePolicyRequest, CreatePolicyVersionRequest,
    ErrorCode, ListPoliciesRequest, ListTargetsForPolicyRequest, MAX_POLICY_VERSIONS,
    PolicyNameRequest, PolicyTargetRequest, PolicyVersionRequest,
};
use iotcore_emulator::policy::{Action, ConnectAttributes, PolicyDocument, PolicyTemplate};

use crate::CliResult;
use crate::cert_cmd::resolve_certificate;
use crate::data_dir::DataDir;
use crate::registry::{self, MAX_PAGE, all_pages, certificate_arn, certificate_id};

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
    ///
    /// Prints ALLOW or DENY and the explanation. Exit status: 0 ALLOW, 3 DENY,
    /// 1 when the question cannot be answered (unknown certificate, no client
    /// id…), 2 for a usage error.
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
        /// With iot:Connect: the CONNECT asks for a persistent session
        /// (iot:ConnectAttributes PersistentConnect).
        #[arg(long)]
        persistent: bool,
        /// With iot:Connect: the CONNECT carries a will (iot:ConnectAttributes
        /// LastWill).
        #[arg(long)]
        will: bool,
    },
}

/// The exit status of `policy explain` for DENY (ALLOW is 0, an error 1,
/// a usage error 2).
pub const DENIED_STATUS: u8 = 3;

/// `policy explain`'s answer was DENY: not an error, already printed; the
/// command exits with [`DENIED_STATUS`].
#[derive(Debug, thiserror::Error)]
#[error("the policies deny the request")]
pub struct Denied;

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
    /// `--persistent` or `--will` for another action than iot:Connect.
    #[error(
        "--persistent and --will describe a CONNECT (iot:ConnectAttributes): use them with \
         --action iot:Connect, not {0}"
    )]
    ConnectAttributesWithout(Action),
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
/// named in its scope.
pub fn run(data_dir: &DataDir, command: PolicyCommand) -> CliResult {
    match command {
        PolicyCommand::Template { template } => print!("{}", template.render(data_dir.scope())),
        PolicyCommand::Create { name, file } => {
            let control = data_dir.control()?;
            let document = read_document(&file)?;
            let created = control.create_policy(CreatePolicyRequest {
                policy_name: name.clone(),
                policy_document: document.clone(),
                tags: None,
            })?;
            warn_about(&document);
            println!(
                "created policy {name} (version {})",
                created.policy_version_id
            );
        }
        PolicyCommand::Update { name, file, prune } => {
            let control = data_dir.control()?;
            let document = read_document(&file)?;
            let replaced = replace_default_version(&control, &name, &document, prune)?;
            if let Some(pruned) = replaced.pruned {
                println!(
                    "deleted version {pruned} of policy {name} (limit of {MAX_POLICY_VERSIONS})"
                );
            }
            warn_about(&document);
            println!(
                "policy {name}: version {} is now the default",
                replaced.version
            );
        }
        PolicyCommand::Show { name } => {
            let control = data_dir.control()?;
            let policy = control.get_policy(policy_name(&name))?;
            let versions = control.list_policy_versions(policy_name(&name))?;
            let versions: Vec<String> = versions
                .policy_versions
                .into_iter()
                .rev()
                .map(|v| v.version_id)
                .collect();
            let certificates: Vec<String> = targets(&control, &name)?
                .iter()
                .map(|arn| certificate_id(arn).to_owned())
                .collect();
            println!("policy:          {}", policy.policy_name);
            println!("default version: {}", policy.default_version_id);
            println!("versions:        {}", versions.join(", "));
            println!("certificates:    {}", certificates.join(", "));
            let document = policy.policy_document;
            print!("{document}");
            if !document.ends_with('\n') {
                println!();
            }
        }
        PolicyCommand::List => {
            let control = data_dir.control()?;
            let policies = all_pages(|marker| {
                let page = control.list_policies(ListPoliciesRequest {
                    marker,
                    page_size: Some(MAX_PAGE),
                    ..ListPoliciesRequest::default()
                })?;
                Ok((page.policies, page.next_marker))
            })?;
            for policy in policies {
                let name = policy.policy_name;
                let default = control.get_policy(policy_name(&name))?.default_version_id;
                let certificates = targets(&control, &name)?.len();
                println!("{name}\tversion {default}\t{certificates} certificate(s)");
            }
        }
        PolicyCommand::Attach { name, cert } => {
            let control = data_dir.control()?;
            let id = resolve_certificate(&control, &cert)?;
            control.attach_policy(policy_target(&control, &name, &id))?;
            println!("attached policy {name} to certificate {id}");
        }
        PolicyCommand::Detach { name, cert } => {
            let control = data_dir.control()?;
            let id = resolve_certificate(&control, &cert)?;
            let attached = registry::certificate_policies(&control, &id)?.contains(&name);
            control.detach_policy(policy_target(&control, &name, &id))?;
            if attached {
                println!("detached policy {name} from certificate {id}");
            } else {
                println!("policy {name} was not attached to certificate {id}");
            }
        }
        PolicyCommand::Delete { name } => {
            let control = data_dir.control()?;
            control.delete_policy(policy_name(&name))?;
            println!("deleted policy {name}");
        }
        PolicyCommand::Explain {
            cert,
            action,
            resource,
            client_id,
            source_ip,
            persistent,
            will,
        } => {
            let connect = ConnectAttributes {
                persistent_connect: persistent,
                last_will: will,
            };
            if action != Action::Connect && !connect.is_empty() {
                return Err(PolicyCmdError::ConnectAttributesWithout(action).into());
            }
            let control = data_dir.control()?;
            let id = resolve_certificate(&control, &cert)?;
            let client_id = match client_id {
                Some(client_id) => client_id,
                None => registry::certificate_things(&control, &id)?
                    .into_iter()
                    .next()
                    .ok_or_else(|| PolicyCmdError::NoClientId(id.clone()))?,
            };
            let (principal, status) = control.principal(&id, &client_id, Some(source_ip))?;
            let decision = principal.explain(action, &resource, connect);
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
            if action == Action::Connect {
                println!("  iot:ConnectAttributes: {connect}");
            }
            if status != CertificateStatus::Active {
                println!(
                    "  note: the certificate is {status}: the emulator refuses it before any \
                     policy is evaluated"
                );
            }
            if !decision.is_allowed() {
                return Err(Denied.into());
            }
        }
    }
    Ok(())
}

fn policy_name(name: &str) -> PolicyNameRequest {
    PolicyNameRequest {
        policy_name: name.to_owned(),
    }
}

fn policy_target(control: &Control, name: &str, certificate: &str) -> PolicyTargetRequest {
    PolicyTargetRequest {
        policy_name: name.to_owned(),
        target: certificate_arn(control, certificate),
    }
}

/// What [`replace_default_version`] did.
pub struct NewDefaultVersion {
    /// The id of the version made the default.
    pub version: String,
    /// The version deleted first to stay within AWS's limit, if any.
    pub pruned: Option<String>,
}

/// Adds `document` as policy `name`'s default version; at the limit of
/// [`MAX_POLICY_VERSIONS`], with `prune`, deletes the oldest version that is
/// not the default first.
pub fn replace_default_version(
    control: &Control,
    name: &str,
    document: &str,
    prune: bool,
) -> Result<NewDefaultVersion, ControlError> {
    match new_default_version(control, name, document) {
        Err(e) if prune && e.code() == ErrorCode::VersionsLimitExceeded => {
            let oldest = oldest_other_version(control, name)?.ok_or(e)?;
            control.delete_policy_version(PolicyVersionRequest {
                policy_name: name.to_owned(),
                policy_version_id: oldest.clone(),
            })?;
            Ok(NewDefaultVersion {
                version: new_default_version(control, name, document)?,
                pruned: Some(oldest),
            })
        }
        other => Ok(NewDefaultVersion {
            version: other?,
            pruned: None,
        }),
    }
}

/// Adds `document` as policy `name`'s default version; returns the version id.
fn new_default_version(
    control: &Control,
    name: &str,
    document: &str,
) -> Result<String, ControlError> {
    let created = control.create_policy_version(CreatePolicyVersionRequest {
        policy_name: name.to_owned(),
        policy_document: document.to_owned(),
        set_as_default: Some(true),
    })?;
    Ok(created.policy_version_id)
}

/// The oldest version of policy `name` that is not its default, if any.
fn oldest_other_version(control: &Control, name: &str) -> Result<Option<String>, ControlError> {
    Ok(control
        .list_policy_versions(policy_name(name))?
        .policy_versions
        .into_iter()
        .rev()
        .find(|v| !v.is_default_version)
        .map(|v| v.version_id))
}

/// The ARNs of the certificates policy `name` is attached to.
fn targets(control: &Control, name: &str) -> Result<Vec<String>, ControlError> {
    all_pages(|marker| {
        let page = control.list_targets_for_policy(ListTargetsForPolicyRequest {
            policy_name: name.to_owned(),
            marker,
            page_size: Some(MAX_PAGE),
        })?;
        Ok((page.targets, page.next_marker))
    })
}
