//! `iotcore thing …`: things, their certificates and policies in the emulator's registry.

use std::path::PathBuf;

use clap::Subcommand;
use iotcore_emulator::control::{ThingOptions, ThingPolicy};
use iotcore_emulator::pki::KeyAlgorithm;
use iotcore_emulator::policy::PolicyTemplate;
use iotcore_emulator::things::write_device_files;

use crate::CliResult;
use crate::data_dir::DataDir;
use crate::registry;

/// Subcommands of `iotcore thing`.
#[derive(Subcommand)]
pub enum ThingCommand {
    /// Create a thing with a new key and a certificate signed by the emulator's CA
    /// (registered ACTIVE and attached to the thing), attach a policy to the
    /// certificate, and write the device's files.
    ///
    /// By default the thing gets its own policy NAME-policy from the "thing"
    /// template: it connects as NAME only and uses only its own topics
    /// ($aws/things/NAME/…, device/NAME/…, dt/NAME[/…], cmd/NAME[/…]). The
    /// "application" template is for a cloud-side client that talks to every
    /// device. The policy is printed; change it with `iotcore policy update`.
    Create {
        /// The thing name (1-128 characters: letters, digits, ':', '_', '-').
        name: String,
        /// Directory for NAME.cert.pem, NAME.private.key (mode 0600) and root-ca.pem.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Key type: "ec" (ECDSA P-256) or "rsa" (RSA 2048).
        #[arg(long, default_value = "ec")]
        key_type: KeyAlgorithm,
        /// Template of the thing's own policy: "thing" (a device) or
        /// "application" (a cloud-side client).
        #[arg(long, default_value = "thing", conflicts_with_all = ["policy", "no_policy"])]
        template: PolicyTemplate,
        /// Attach this existing policy instead of creating one.
        #[arg(long, conflicts_with = "no_policy")]
        policy: Option<String>,
        /// Attach no policy (the device cannot connect until one is attached).
        #[arg(long)]
        no_policy: bool,
    },
    /// List the registered things and their certificates.
    List,
    /// Delete a thing, its certificates that no other thing uses (devices using
    /// them are disconnected), and its own policy NAME-policy if nothing else uses it.
    Delete {
        /// The thing name.
        name: String,
    },
}

/// Runs a `thing` subcommand against the registry in `data_dir`; policies name
/// resources in its scope.
pub fn run(data_dir: &DataDir, command: ThingCommand) -> CliResult {
    let control = data_dir.control()?;
    match command {
        ThingCommand::Create {
            name,
            out,
            key_type,
            template,
            policy,
            no_policy,
        } => {
            let policy = match (policy, no_policy) {
                (_, true) => ThingPolicy::None,
                (Some(existing), false) => ThingPolicy::Existing(existing),
                (None, false) => ThingPolicy::Template(template),
            };
            let options = ThingOptions::default()
                .with_key(key_type)
                .with_policy(policy);
            let created = control.create_thing_with_certificate(&name, &options)?;
            let credentials = &created.credentials;
            let files = write_device_files(&name, credentials, control.pki().ca_pem(), &out)?;
            println!("thing:       {name}");
            println!("certificate: {} (ACTIVE)", credentials.certificate_id);
            println!("  {}", files.certificate.display());
            println!("  {}", files.private_key.display());
            println!("  {}", files.root_ca.display());
            match created.policy {
                None => println!(
                    "policy:      none (attach one with `iotcore policy attach NAME --cert {}`)",
                    &credentials.certificate_id[..12]
                ),
                Some(policy) => match policy.created_document {
                    None => println!("policy:      {} (existing)", policy.name),
                    Some(document) => {
                        println!(
                            "policy:      {} (new, from template \"{template}\"; change it with \
                             `iotcore policy update {} FILE`)",
                            policy.name, policy.name
                        );
                        print!("{document}");
                    }
                },
            }
        }
        ThingCommand::List => {
            for thing in registry::things(&control)? {
                let certificates = registry::thing_certificates(&control, &thing.thing_name)?;
                println!("{}\t{}", thing.thing_name, certificates.join(","));
            }
        }
        ThingCommand::Delete { name } => {
            let deleted = control.delete_thing_with_credentials(&name)?;
            println!("deleted thing {name}");
            for id in &deleted.certificates {
                println!("  deleted certificate {id}");
            }
            for id in &deleted.detached_certificates {
                println!("  detached certificate {id} (other things still use it)");
            }
            if let Some(policy) = &deleted.policy {
                println!("  deleted policy {policy}");
            }
        }
    }
    Ok(())
}
