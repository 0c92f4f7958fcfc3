//! `iotcore template …`: fleet provisioning templates in the emulator's
//! registry, and the claim certificates devices provision with.

use std::io::Read;
use std::path::PathBuf;

use clap::Subcommand;
use iotcore_emulator::control::{ListProvisioningTemplatesRequest, TemplateNameRequest};
use iotcore_emulator::provisioning::{ProvisioningTemplate, write_claim_files};

use crate::CliResult;
use crate::data_dir::DataDir;
use crate::registry::{MAX_PAGE, all_pages};

/// Subcommands of `iotcore template`.
#[derive(Subcommand)]
pub enum TemplateCommand {
    /// Create a fleet provisioning template from AWS's JSON format (FILE, or -
    /// for stdin): Parameters, Mappings, Resources (AWS::IoT::Thing,
    /// AWS::IoT::Certificate, AWS::IoT::Policy), DeviceConfiguration. A template
    /// the emulator cannot apply is refused, naming the element at fault.
    Create {
        /// The template name (1-36 characters: letters, digits, '_', '-').
        name: String,
        /// The template body: a file, or - to read stdin.
        file: String,
        /// A description.
        #[arg(long)]
        description: Option<String>,
        /// Pre-provisioning hook: a command run with /bin/sh -c before each
        /// RegisterThing. It reads AWS's Lambda input as JSON on stdin and must
        /// print {"allowProvisioning": true, "parameterOverrides": {...}} within
        /// 5 seconds, or the registration is refused (403 AccessDenied).
        #[arg(long, value_name = "CMD")]
        hook_command: Option<String>,
    },
    /// Replace a template's body (and hook).
    Update {
        /// The template name.
        name: String,
        /// The new body: a file, or - to read stdin.
        file: String,
        /// A new pre-provisioning hook command (default: keep the current one).
        #[arg(long, value_name = "CMD", conflicts_with = "no_hook")]
        hook_command: Option<String>,
        /// Remove the pre-provisioning hook.
        #[arg(long)]
        no_hook: bool,
    },
    /// Show a template: its parameters, hook and body.
    Show {
        /// The template name.
        name: String,
    },
    /// List the templates.
    List,
    /// Delete a template (the things it provisioned stay).
    Delete {
        /// The template name.
        name: String,
    },
    /// Issue a claim certificate for a template (ACTIVE, no thing) with the
    /// claim policy NAME-claim-policy, which allows only the provisioning
    /// topics of this template, and write NAME-claim.cert.pem,
    /// NAME-claim.private.key (mode 0600) and root-ca.pem.
    Claim {
        /// The template name.
        name: String,
        /// Directory for the claim files.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
}

/// Why a template command could not run.
#[derive(Debug, thiserror::Error)]
enum TemplateCmdError {
    #[error("cannot read {file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
}

fn read_body(file: &str) -> Result<String, TemplateCmdError> {
    let read = if file == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map(|_| text)
    } else {
        std::fs::read_to_string(file)
    };
    read.map_err(|source| TemplateCmdError::Read {
        file: if file == "-" {
            "stdin".into()
        } else {
            file.into()
        },
        source,
    })
}

fn print_warnings(template: &ProvisioningTemplate) {
    for warning in template.warnings() {
        eprintln!("warning: {warning}");
    }
}

/// Runs a `template` subcommand against the registry in `data_dir`; claim
/// policies name resources in its scope.
pub fn run(data_dir: &DataDir, command: TemplateCommand) -> CliResult {
    let control = data_dir.control()?;
    match command {
        TemplateCommand::Create {
            name,
            file,
            description,
            hook_command,
        } => {
            let body = read_body(&file)?;
            let created = control.create_template(
                &name,
                &body,
                description.as_deref(),
                hook_command.as_deref(),
            )?;
            print_warnings(&created.template);
            println!("template:    {name} (created)");
            print_parameters(&created.template);
            println!(
                "next:        `iotcore template claim {name} --out DIR` makes a claim certificate"
            );
        }
        TemplateCommand::Update {
            name,
            file,
            hook_command,
            no_hook,
        } => {
            let body = read_body(&file)?;
            let current = control.template(&name)?;
            let hook = match (hook_command, no_hook) {
                (_, true) => None,
                (Some(command), false) => Some(command),
                (None, false) => current.hook_command,
            };
            let template = control.replace_template(&name, &body, hook.as_deref())?;
            print_warnings(&template);
            println!("template:    {name} (updated)");
        }
        TemplateCommand::Show { name } => {
            let record = control.template(&name)?;
            println!("template:    {}", record.name);
            if let Some(description) = &record.description {
                println!("description: {description}");
            }
            println!(
                "hook:        {}",
                record.hook_command.as_deref().unwrap_or("none")
            );
            match ProvisioningTemplate::parse(&record.body) {
                Ok(template) => print_parameters(&template),
                Err(problem) => println!("invalid:     {problem}"),
            }
            println!("{}", record.body.trim_end());
        }
        TemplateCommand::List => {
            let templates = all_pages(|next_token| {
                let page =
                    control.list_provisioning_templates(ListProvisioningTemplatesRequest {
                        max_results: Some(MAX_PAGE),
                        next_token,
                    })?;
                Ok((page.templates, page.next_token))
            })?;
            for template in templates {
                println!(
                    "{}\t{}",
                    template.template_name,
                    template.description.as_deref().unwrap_or("")
                );
            }
        }
        TemplateCommand::Delete { name } => {
            control.delete_provisioning_template(TemplateNameRequest {
                template_name: name.clone(),
            })?;
            println!("deleted template {name}");
        }
        TemplateCommand::Claim { name, out } => {
            let claim = control.create_claim(&name)?;
            let files = write_claim_files(&claim, control.pki().ca_pem(), &out)?;
            println!("claim:       {} (ACTIVE)", claim.credentials.certificate_id);
            println!("  {}", files.certificate.display());
            println!("  {}", files.private_key.display());
            println!("  {}", files.root_ca.display());
            println!(
                "policy:      {} (provisioning topics of template {name} only)",
                claim.policy
            );
        }
    }
    Ok(())
}

fn print_parameters(template: &ProvisioningTemplate) {
    for (name, default) in template.parameters() {
        match default {
            Some(default) => println!("parameter:   {name} (default {default:?})"),
            None => println!("parameter:   {name} (required)"),
        }
    }
}
