//! AWS credentials for the WebSocket door (SigV4), and where they come from.
//!
//! A [`CredentialsProvider`] is asked on **every** connection attempt, so a
//! reconnect signs with fresh credentials: temporary ones from STS, Cognito
//! or the IoT credentials provider are fetched again by the application's
//! own closure ([`CredentialsProvider::from_fn`]), and the files and
//! environment are read again.
//!
//! ```
//! use iotcore::aws_credentials::{AwsCredentials, CredentialsProvider};
//!
//! // Fixed keys (tests, the emulator's `iotcore credentials create`).
//! let fixed = CredentialsProvider::fixed(AwsCredentials::new("AKIDEXAMPLE", "secret", None));
//! // AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.
//! let env = CredentialsProvider::environment();
//! // ~/.aws/credentials and ~/.aws/config, profile AWS_PROFILE or "default".
//! let files = CredentialsProvider::profile(None);
//! // The application's own source, e.g. Cognito.
//! let own = CredentialsProvider::from_fn(|| async {
//!     Ok(AwsCredentials::new("ASIA…", "secret", Some("token".into())))
//! });
//! // Any provider of the AWS SDK for Rust (here its static one).
//! let sdk = CredentialsProvider::from_aws_sdk(aws_credential_types::Credentials::new(
//!     "AKIDEXAMPLE",
//!     "secret",
//!     None,
//!     None,
//!     "example",
//! ));
//! ```
//!
//! With the cargo feature `aws-config` (off by default),
//! `CredentialsProvider::aws_default_chain()` is the AWS SDK's whole default
//! chain: the environment, the shared files with SSO, roles and
//! `credential_process`, web identity tokens, ECS and EC2 instance metadata.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use aws_credential_types::provider::ProvideCredentials;

/// An access key, its secret, and for temporary credentials the session token.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

impl AwsCredentials {
    /// Credentials from their parts; `session_token` for temporary ones
    /// (access key ids starting `ASIA`).
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
    ) -> AwsCredentials {
        AwsCredentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token,
        }
    }

    /// The access key id.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The secret access key.
    pub fn secret_access_key(&self) -> &str {
        &self.secret_access_key
    }

    /// The session token of temporary credentials.
    pub fn session_token(&self) -> Option<&str> {
        self.session_token.as_deref()
    }
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"…")
            .field("session_token", &self.session_token.as_ref().map(|_| "…"))
            .finish()
    }
}

/// Why credentials could not be had.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// The environment does not hold credentials.
    #[error(
        "no credentials in the environment: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
         (and AWS_SESSION_TOKEN for temporary credentials)"
    )]
    NotInEnvironment,
    /// A credentials or config file could not be read.
    #[error("cannot read {}: {detail}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        detail: String,
    },
    /// The profile is in neither file, or holds no keys.
    #[error(
        "profile {profile:?} has no aws_access_key_id and aws_secret_access_key in {}{}",
        files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" or "),
        hint.map(|h| format!(" ({h})")).unwrap_or_default()
    )]
    ProfileWithoutKeys {
        /// The profile asked for.
        profile: String,
        /// The files looked in.
        files: Vec<PathBuf>,
        /// What the profile uses instead, when known.
        hint: Option<&'static str>,
    },
    /// The application's provider failed.
    #[error("the credentials provider failed: {0}")]
    Provider(String),
}

/// What a provider's closure returns.
type CredentialsFuture =
    Pin<Box<dyn Future<Output = Result<AwsCredentials, CredentialsError>> + Send>>;

/// Where the WebSocket door gets its credentials: asked on every connection
/// attempt. Cheap to clone.
#[derive(Clone)]
pub struct CredentialsProvider {
    name: &'static str,
    fetch: Arc<dyn Fn() -> CredentialsFuture + Send + Sync>,
}

impl fmt::Debug for CredentialsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CredentialsProvider")
            .field(&self.name)
            .finish()
    }
}

impl CredentialsProvider {
    /// Always the same credentials.
    pub fn fixed(credentials: AwsCredentials) -> CredentialsProvider {
        CredentialsProvider::named("fixed", move || {
            let credentials = credentials.clone();
            async move { Ok(credentials) }
        })
    }

    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and (optional)
    /// `AWS_SESSION_TOKEN`, read on every attempt.
    pub fn environment() -> CredentialsProvider {
        CredentialsProvider::named("environment", || async { from_environment() })
    }

    /// A profile of the shared credentials and config files
    /// (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`, then
    /// `AWS_CONFIG_FILE`, default `~/.aws/config`), read on every attempt.
    /// `None` picks `AWS_PROFILE`, else `default`. Only static keys
    /// (`aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`)
    /// are read here; SSO, roles and `credential_process` need the full AWS
    /// chain: `aws_default_chain` (cargo feature `aws-config`) or any AWS SDK
    /// provider through [`from_aws_sdk`](Self::from_aws_sdk).
    pub fn profile(name: Option<&str>) -> CredentialsProvider {
        let name = name.map(str::to_owned);
        CredentialsProvider::named("profile", move || {
            let name = name.clone();
            async move { from_profile(name.as_deref()) }
        })
    }

    /// The application's own source, e.g. Cognito or the AWS IoT
    /// credentials provider: `fetch` is called on every connection attempt.
    pub fn from_fn<F, Fut>(fetch: F) -> CredentialsProvider
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<AwsCredentials, CredentialsError>> + Send + 'static,
    {
        CredentialsProvider::named("application", fetch)
    }

    /// Any credentials provider of the AWS SDK for Rust
    /// (`aws_credential_types::provider::ProvideCredentials`), asked on every
    /// connection attempt: `SdkConfig::credentials_provider()` from
    /// `aws_config::load_defaults`, an `AssumeRoleProvider`, a
    /// `ProfileFileCredentialsProvider`…
    pub fn from_aws_sdk(provider: impl ProvideCredentials + 'static) -> CredentialsProvider {
        let provider = Arc::new(provider);
        CredentialsProvider::named("aws-sdk", move || {
            let provider = Arc::clone(&provider);
            async move {
                let credentials = provider
                    .provide_credentials()
                    .await
                    .map_err(|e| CredentialsError::Provider(error_chain(&e)))?;
                Ok(AwsCredentials::new(
                    credentials.access_key_id(),
                    credentials.secret_access_key(),
                    credentials.session_token().map(str::to_owned),
                ))
            }
        })
    }

    /// The AWS SDK for Rust's default credentials chain (`aws-config`), in
    /// its order: the environment, the shared config and credentials files
    /// (profile `AWS_PROFILE`, with SSO, assumed roles and
    /// `credential_process`), a web identity token, the ECS container and
    /// the EC2 instance metadata service. Asked on every connection attempt.
    #[cfg(feature = "aws-config")]
    pub async fn aws_default_chain() -> CredentialsProvider {
        let chain = aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
            .build()
            .await;
        CredentialsProvider::from_aws_sdk(chain)
    }

    fn named<F, Fut>(name: &'static str, fetch: F) -> CredentialsProvider
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<AwsCredentials, CredentialsError>> + Send + 'static,
    {
        CredentialsProvider {
            name,
            fetch: Arc::new(move || Box::pin(fetch())),
        }
    }

    /// Fetches credentials.
    pub async fn credentials(&self) -> Result<AwsCredentials, CredentialsError> {
        (self.fetch)().await
    }
}

/// An error and its sources, `: `-separated (the AWS SDK's errors say little
/// at the top).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn from_environment() -> Result<AwsCredentials, CredentialsError> {
    let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => Ok(AwsCredentials::new(id, secret, var("AWS_SESSION_TOKEN"))),
        _ => Err(CredentialsError::NotInEnvironment),
    }
}

/// The shared files, as the AWS CLI and SDKs find them.
fn shared_files() -> (PathBuf, PathBuf) {
    let home = || {
        std::env::var_os("HOME")
            .or_else(|| std::env::var_os("USERPROFILE"))
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(".aws")
    };
    let path = |var: &str, file: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| home().join(file))
    };
    (
        path("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
        path("AWS_CONFIG_FILE", "config"),
    )
}

fn from_profile(name: Option<&str>) -> Result<AwsCredentials, CredentialsError> {
    let profile = name
        .map(str::to_owned)
        .or_else(|| std::env::var("AWS_PROFILE").ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "default".to_owned());
    let (credentials_file, config_file) = shared_files();
    profile_from_files(profile, &credentials_file, &config_file)
}

/// The static keys of `profile` in the two shared files.
fn profile_from_files(
    profile: String,
    credentials_file: &Path,
    config_file: &Path,
) -> Result<AwsCredentials, CredentialsError> {
    // The credentials file wins over the config file, key by key.
    let mut keys = read_profile(config_file, &profile, ProfileFile::Config)?;
    keys.extend(read_profile(
        credentials_file,
        &profile,
        ProfileFile::Credentials,
    )?);
    match (
        keys.remove("aws_access_key_id"),
        keys.remove("aws_secret_access_key"),
    ) {
        (Some(id), Some(secret)) => Ok(AwsCredentials::new(
            id,
            secret,
            keys.remove("aws_session_token"),
        )),
        _ => Err(CredentialsError::ProfileWithoutKeys {
            profile,
            files: vec![credentials_file.to_owned(), config_file.to_owned()],
            hint: ["sso_session", "sso_start_url", "role_arn", "credential_process", "web_identity_token_file"]
                .iter()
                .any(|k| keys.contains_key(*k))
                .then_some("it uses SSO, a role or a process: use the AWS SDK's chain, CredentialsProvider::aws_default_chain with the cargo feature aws-config"),
        }),
    }
}

/// Which shared file: they name profiles differently.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ProfileFile {
    /// `[name]`.
    Credentials,
    /// `[profile name]`, except `[default]`.
    Config,
}

/// The keys of one profile in a shared file; a missing file has none.
fn read_profile(
    path: &Path,
    profile: &str,
    kind: ProfileFile,
) -> Result<HashMap<String, String>, CredentialsError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(parse_profile(&text, profile, kind)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashMap::new()),
        Err(e) => Err(CredentialsError::ReadFile {
            path: path.to_owned(),
            detail: e.to_string(),
        }),
    }
}

/// The `key = value` lines of one profile of an AWS shared file (comments
/// start with `#` or `;`; keys are case-insensitive; a later section of
/// the same name adds to an earlier one).
fn parse_profile(text: &str, profile: &str, kind: ProfileFile) -> HashMap<String, String> {
    let mut keys = HashMap::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[') {
            let section = section.split(']').next().unwrap_or("").trim();
            let name = match kind {
                ProfileFile::Credentials => Some(section),
                ProfileFile::Config if section == "default" => Some(section),
                ProfileFile::Config => section
                    .strip_prefix("profile")
                    .filter(|rest| rest.starts_with(char::is_whitespace))
                    .map(str::trim),
            };
            inside = name == Some(profile);
            continue;
        }
        if let (true, Some((key, value))) = (inside, line.split_once('=')) {
            let value = value.trim();
            // An inline comment needs whitespace before it.
            let value = value
                .split_once(" #")
                .or_else(|| value.split_once(" ;"))
                .map_or(value, |(v, _)| v.trim_end());
            keys.insert(key.trim().to_ascii_lowercase(), value.to_owned());
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREDENTIALS: &str = "\
[default]
aws_access_key_id = AKIDDEFAULT
aws_secret_access_key = defaultsecret

# a comment
[dev]
AWS_ACCESS_KEY_ID=ASIADEV ; inline
aws_secret_access_key = dev/secret+key=
aws_session_token = token==
";

    const CONFIG: &str = "\
[default]
region = eu-west-1
[profile dev]
region = us-east-1
[profile sso]
sso_session = corp
[dev]
aws_access_key_id = NOTAPROFILEINCONFIG
";

    #[test]
    fn the_credentials_file_names_profiles_bare_and_the_config_file_with_profile() {
        let default = parse_profile(CREDENTIALS, "default", ProfileFile::Credentials);
        assert_eq!(default["aws_access_key_id"], "AKIDDEFAULT");
        let dev = parse_profile(CREDENTIALS, "dev", ProfileFile::Credentials);
        assert_eq!(dev["aws_access_key_id"], "ASIADEV");
        assert_eq!(dev["aws_secret_access_key"], "dev/secret+key=");
        assert_eq!(dev["aws_session_token"], "token==");
        let dev_config = parse_profile(CONFIG, "dev", ProfileFile::Config);
        assert_eq!(dev_config["region"], "us-east-1");
        assert!(!dev_config.contains_key("aws_access_key_id"));
        assert_eq!(
            parse_profile(CONFIG, "default", ProfileFile::Config)["region"],
            "eu-west-1"
        );
    }

    #[test]
    fn a_profile_takes_keys_from_both_files_and_says_when_it_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let credentials = dir.path().join("credentials");
        let config = dir.path().join("config");
        std::fs::write(
            &config,
            format!("{CONFIG}[profile split]\naws_access_key_id = AKIDSPLIT\n"),
        )
        .unwrap();
        std::fs::write(
            &credentials,
            format!("{CREDENTIALS}[split]\naws_secret_access_key = splitsecret\n"),
        )
        .unwrap();
        let dev = profile_from_files("dev".into(), &credentials, &config).unwrap();
        assert_eq!(dev.access_key_id(), "ASIADEV");
        assert_eq!(dev.session_token(), Some("token=="));
        let split = profile_from_files("split".into(), &credentials, &config).unwrap();
        assert_eq!(
            (split.access_key_id(), split.secret_access_key()),
            ("AKIDSPLIT", "splitsecret")
        );
        let sso = profile_from_files("sso".into(), &credentials, &config).unwrap_err();
        assert!(
            matches!(
                &sso,
                CredentialsError::ProfileWithoutKeys { hint: Some(_), .. }
            ),
            "{sso:?}"
        );
        assert!(sso.to_string().contains("aws-config"), "{sso}");
        let missing = dir.path().join("none");
        assert!(matches!(
            profile_from_files("dev".into(), &missing, &missing),
            Err(CredentialsError::ProfileWithoutKeys { hint: None, .. })
        ));
    }

    #[test]
    fn debug_output_hides_the_secret_and_the_token() {
        let credentials = AwsCredentials::new("AKID", "s3cr3t", Some("t0k3n".into()));
        let text = format!("{credentials:?}");
        assert!(text.contains("AKID"));
        assert!(
            !text.contains("s3cr3t") && !text.contains("t0k3n"),
            "{text}"
        );
    }

    /// An AWS SDK provider that fails, with a cause underneath.
    #[derive(Debug)]
    struct Unreachable;

    impl ProvideCredentials for Unreachable {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let cause = std::io::Error::new(std::io::ErrorKind::TimedOut, "IMDS did not answer");
            aws_credential_types::provider::future::ProvideCredentials::ready(Err(
                aws_credential_types::provider::error::CredentialsError::provider_error(cause),
            ))
        }
    }

    #[tokio::test]
    async fn an_aws_sdk_provider_is_asked_and_its_failure_keeps_its_cause() {
        let sdk = aws_credential_types::Credentials::new(
            "AKIDSDK",
            "sdk",
            Some("tok".into()),
            None,
            "test",
        );
        let got = CredentialsProvider::from_aws_sdk(sdk).credentials().await;
        assert_eq!(
            got,
            Ok(AwsCredentials::new("AKIDSDK", "sdk", Some("tok".into())))
        );
        match CredentialsProvider::from_aws_sdk(Unreachable)
            .credentials()
            .await
        {
            Err(CredentialsError::Provider(why)) => {
                assert!(why.contains("IMDS did not answer"), "{why}");
            }
            other => panic!("expected the provider's error, got {other:?}"),
        }
    }
}
