//! `iotcore thing …`: things and their certificates in the emulator's registry.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use iotcore_emulator::pki::{KeyAlgorithm, Pki};
use iotcore_emulator::store::Store;
use iotcore_emulator::things;

use crate::CliResult;

/// Subcommands of `iotcore thing`.
#[derive(Subcommand)]
pub enum ThingCommand {
    /// Create a thing with a new key and a certificate signed by the emulator's CA
    /// (registered ACTIVE and attached to the thing), and write the device's files.
    Create {
        /// The thing name (1-128 characters: letters, digits, ':', '_', '-').
        name: String,
        /// Directory for NAME.cert.pem, NAME.private.key (mode 0600) and root-ca.pem.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Key type: "ec" (ECDSA P-256) or "rsa" (RSA 2048).
        #[arg(long, default_value = "ec")]
        key_type: KeyAlgorithm,
    },
    /// List the registered things.
    List,
}

/// Runs a `thing` subcommand against the registry in `data_dir`.
pub fn run(data_dir: &Path, command: ThingCommand) -> CliResult {
    let store = Store::open(data_dir)?;
    match command {
        ThingCommand::Create {
            name,
            out,
            key_type,
        } => {
            let pki = Pki::load_or_create(data_dir)?;
            let credentials = things::create_thing_with_certificate(&store, &pki, &name, key_type)?;
            let files = things::write_device_files(&name, &credentials, pki.ca_pem(), &out)?;
            println!("thing:       {name}");
            println!("certificate: {} (ACTIVE)", credentials.certificate_id);
            println!("  {}", files.certificate.display());
            println!("  {}", files.private_key.display());
            println!("  {}", files.root_ca.display());
        }
        ThingCommand::List => {
            for thing in store.list_things()? {
                let certificates = store.thing_principals(&thing.name)?;
                println!("{}\t{}", thing.name, certificates.join(","));
            }
        }
    }
    Ok(())
}
