//! `iotcore credentials …`: access keys for the emulator's HTTPS API, written
//! in the AWS CLI's shared credentials file format so that the AWS CLI, boto3
//! and the AWS SDKs use them unchanged.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Subcommand;
use iotcore_emulator::control::{AccessKeyOptions, CredentialRecord};
use iotcore_emulator::pki::Pki;

use crate::CliResult;
use crate::data_dir::DataDir;

/// Subcommands of `iotcore credentials`.
#[derive(Subcommand)]
pub enum CredentialsCommand {
    /// Issue an access key pair for the emulator's HTTPS API (what an IAM
    /// user's keys are on AWS) and print it, or write it as a profile of an AWS
    /// shared credentials file.
    Create {
        /// Whose key it is (1-128 characters), shown by `iotcore credentials list`.
        name: String,
        /// Write the key as profile PROFILE of this credentials file (created
        /// with mode 0600, or updated: other profiles are kept).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The profile name in the credentials file.
        #[arg(long, default_value = "iotcore")]
        profile: String,
        /// Issue temporary credentials (an ASIA… key and a session token) valid
        /// for this many seconds.
        #[arg(long, value_name = "SECONDS")]
        temporary: Option<u64>,
        /// Limit the key to what this policy allows, as an IAM policy does on
        /// AWS: each call is checked as action iot:OPERATION (iot:CreateThing,
        /// iot:GetThingShadow, iot:Publish…) on the ARN of the thing, policy,
        /// certificate, topic… it names, or "*". Without it the key may call
        /// every operation.
        #[arg(long)]
        policy: Option<String>,
    },
    /// List the access keys the emulator has issued.
    List,
    /// Delete an access key: requests signed with it are refused from then on.
    Delete {
        /// The access key id.
        access_key_id: String,
    },
}

/// Why a credentials file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the credentials file {}: {source}", path.display())]
struct WriteError {
    path: PathBuf,
    source: io::Error,
}

/// Runs a `credentials` subcommand against the registry in `data_dir`.
pub fn run(data_dir: &DataDir, command: CredentialsCommand) -> CliResult {
    let control = data_dir.control()?;
    match command {
        CredentialsCommand::Create {
            name,
            out,
            profile,
            temporary,
            policy,
        } => {
            let options = AccessKeyOptions {
                temporary: temporary.map(Duration::from_secs),
                policy,
            };
            let key = control.create_access_key(&name, &options)?;
            let section = profile_section(&profile, &key);
            match &out {
                None => print!("{section}"),
                Some(path) => {
                    write_profile(path, &profile, &section).map_err(|source| WriteError {
                        path: path.clone(),
                        source,
                    })?;
                    println!(
                        "access key {} for {name} written to {} as profile {profile}",
                        key.access_key_id,
                        path.display()
                    );
                }
            }
            let ca = Pki::ca_cert_path(data_dir.path());
            let file = out.map_or_else(
                || String::from("<the file you saved it in>"),
                |p| p.display().to_string(),
            );
            println!(
                "use it with:\n  AWS_SHARED_CREDENTIALS_FILE={file} AWS_PROFILE={profile} \
                 AWS_CA_BUNDLE={} \\\n  aws --endpoint-url https://localhost:8443 --region {} iot list-things\n(8443: the API port `iotcore emulator` printed)",
                ca.display(),
                data_dir.scope().region()
            );
        }
        CredentialsCommand::List => {
            println!("ACCESS KEY ID\tNAME\tEXPIRES");
            for key in control.list_access_keys()? {
                let expires = key
                    .expires_at
                    .map_or_else(|| "never".to_owned(), |at| at.to_string());
                println!("{}\t{}\t{expires}", key.access_key_id, key.name);
            }
        }
        CredentialsCommand::Delete { access_key_id } => {
            control.delete_access_key(&access_key_id)?;
            println!("access key {access_key_id} deleted");
        }
    }
    Ok(())
}

/// The key as a profile of an AWS shared credentials file.
fn profile_section(profile: &str, key: &CredentialRecord) -> String {
    let mut section = format!(
        "[{profile}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        key.access_key_id, key.secret_access_key
    );
    if let Some(token) = &key.session_token {
        section.push_str(&format!("aws_session_token = {token}\n"));
    }
    section
}

/// Writes `section` as profile `profile` of the credentials file at `path`:
/// replaces that profile if the file has it, appends it otherwise, and keeps
/// the file readable by its owner only.
fn write_profile(path: &Path, profile: &str, section: &str) -> io::Result<()> {
    let existing = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let updated = replace_profile(&existing, profile, section);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    io::Write::write_all(&mut options.open(path)?, updated.as_bytes())
}

/// `text` (an INI file) with profile `profile`'s section replaced by `section`,
/// or `section` appended.
fn replace_profile(text: &str, profile: &str, section: &str) -> String {
    let header = format!("[{profile}]");
    let mut out = String::new();
    let mut skipping = false;
    let mut replaced = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            skipping = trimmed == header;
            if skipping {
                out.push_str(section);
                replaced = true;
                continue;
            }
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !replaced {
        if !out.is_empty() && !out.ends_with("\n\n") {
            out.push('\n');
        }
        out.push_str(section);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECTION: &str = "[iotcore]\naws_access_key_id = AKIA1\naws_secret_access_key = s\n";

    #[test]
    fn a_profile_is_appended_to_other_profiles() {
        let text = "[default]\naws_access_key_id = X\n";
        assert_eq!(
            replace_profile(text, "iotcore", SECTION),
            format!("[default]\naws_access_key_id = X\n\n{SECTION}")
        );
        assert_eq!(replace_profile("", "iotcore", SECTION), SECTION);
    }

    #[test]
    fn an_existing_profile_is_replaced_and_the_others_kept() {
        let text = "[iotcore]\naws_access_key_id = OLD\naws_session_token = T\n[other]\nk = v\n";
        assert_eq!(
            replace_profile(text, "iotcore", SECTION),
            format!("{SECTION}[other]\nk = v\n")
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/credentials");
        write_profile(&path, "iotcore", SECTION).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), SECTION);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
