//! `iotcore cert …`: the registered certificates and their status.
//!
//! A status change is written to the registry; a running emulator notices it
//! within a fraction of a second and disconnects devices whose certificate is no
//! longer ACTIVE.

use clap::Subcommand;
use iotcore_emulator::control::{
    CertificateStatus, Control, ControlError, UpdateCertificateRequest,
};

use crate::CliResult;
use crate::data_dir::DataDir;
use crate::registry;

/// Shortest certificate id prefix accepted in place of the full id.
const MIN_PREFIX: usize = 6;

/// Subcommands of `iotcore cert`.
#[derive(Subcommand)]
pub enum CertCommand {
    /// List the certificates with their status, things and policies.
    List,
    /// Set a certificate ACTIVE (also from PENDING_ACTIVATION): devices may connect with it.
    Activate {
        /// Certificate id, or a unique prefix of at least 6 characters.
        id: String,
    },
    /// Set a certificate INACTIVE: devices using it are disconnected and refused
    /// until it is activated again.
    Deactivate {
        /// Certificate id, or a unique prefix of at least 6 characters.
        id: String,
    },
    /// Set a certificate REVOKED, for good: devices using it are disconnected and
    /// refused.
    Revoke {
        /// Certificate id, or a unique prefix of at least 6 characters.
        id: String,
    },
}

/// Why a certificate id given on the command line names no single certificate.
#[derive(Debug, thiserror::Error)]
pub enum CertificateIdError {
    /// No certificate id starts with it.
    #[error("no certificate id starts with {0:?}; see `iotcore cert list`")]
    Unknown(String),
    /// Too short to be used as a prefix.
    #[error("certificate id prefix {0:?} is too short: give at least {MIN_PREFIX} characters")]
    TooShort(String),
    /// Several ids start with it.
    #[error("{prefix:?} is the start of several certificate ids ({ids}); give more characters")]
    Ambiguous {
        /// The prefix given.
        prefix: String,
        /// The matching ids, shortened.
        ids: String,
    },
    /// The control plane failed.
    #[error(transparent)]
    Control(#[from] ControlError),
}

/// The full id of the certificate `given` names: the id itself, or a unique
/// prefix of at least [`MIN_PREFIX`] characters.
pub fn resolve_certificate(control: &Control, given: &str) -> Result<String, CertificateIdError> {
    let given = given.to_ascii_lowercase();
    let ids: Vec<String> = registry::certificates(control)?
        .into_iter()
        .map(|c| c.certificate_id)
        .collect();
    if ids.contains(&given) {
        return Ok(given);
    }
    if given.len() < MIN_PREFIX {
        return Err(CertificateIdError::TooShort(given));
    }
    let matching: Vec<String> = ids
        .into_iter()
        .filter(|id| id.starts_with(&given))
        .collect();
    match matching.as_slice() {
        [] => Err(CertificateIdError::Unknown(given)),
        [one] => Ok(one.clone()),
        many => Err(CertificateIdError::Ambiguous {
            prefix: given,
            ids: many
                .iter()
                .map(|id| format!("{}…", &id[..12]))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Runs a `cert` subcommand against the registry in `data_dir`.
pub fn run(data_dir: &DataDir, command: CertCommand) -> CliResult {
    let control = data_dir.control()?;
    let (id, status) = match command {
        CertCommand::List => {
            println!("ID\tSTATUS\tTHINGS\tPOLICIES");
            for certificate in registry::certificates(&control)? {
                let id = &certificate.certificate_id;
                println!(
                    "{id}\t{}\t{}\t{}",
                    certificate.status,
                    registry::certificate_things(&control, id)?.join(","),
                    registry::certificate_policies(&control, id)?.join(",")
                );
            }
            return Ok(());
        }
        CertCommand::Activate { id } => (id, CertificateStatus::Active),
        CertCommand::Deactivate { id } => (id, CertificateStatus::Inactive),
        CertCommand::Revoke { id } => (id, CertificateStatus::Revoked),
    };
    let id = resolve_certificate(&control, &id)?;
    control.update_certificate(UpdateCertificateRequest {
        certificate_id: id.clone(),
        new_status: status.to_string(),
    })?;
    println!("certificate {id} is {status}");
    if status != CertificateStatus::Active {
        println!("a running emulator disconnects the devices using it and refuses them");
    }
    Ok(())
}
