//! Fleet provisioning by claim: a device leaves the factory with a shared
//! claim certificate and, on first boot, obtains its own identity from AWS IoT
//! Core (or the emulator).
//!
//! [`FleetProvisioner`] runs the whole flow:
//!
//! 1. connects with the claim certificate (the [`ClientBuilder`] you give);
//! 2. makes a key and a certificate signing request **on the device**
//!    ([`KeyType`]; the private key never leaves it) and asks
//!    CreateCertificateFromCsr to sign it — or, with
//!    [`FleetProvisioner::keys_from_service`], asks CreateKeysAndCertificate
//!    for a key and certificate;
//! 3. registers the thing with RegisterThing, the template and its parameters;
//! 4. writes the certificate and key ([`FleetProvisioner::save_to`]; key mode
//!    0600, each file atomic, a `provisioned.json` record last);
//! 5. disconnects, and returns a [`Provisioned`] identity to connect with.
//!
//! Each request subscribes to its `/accepted` and `/rejected` topics before it
//! publishes ([`IdentityClient`], also usable on its own, a typed layer over
//! the [service framework](crate::service) with topic-only correlation: the
//! service echoes no `clientToken`). Every failure is a
//! [`ProvisioningError`]; a failed request is a
//! [`ProvisioningError::Service`], and a rejection carries AWS's
//! `statusCode`, `errorCode` and `errorMessage` (an expired or used ownership
//! token, a template that does not exist, a parameter missing, a
//! pre-provisioning hook's refusal, a CSR the service refuses).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use iotcore::Client;
//! use iotcore::provisioning::{FleetProvisioner, Provisioned};
//!
//! let dir = "/var/lib/my-device";
//! let identity = match Provisioned::load(dir)? {
//!     Some(identity) => identity,                          // provisioned on an earlier boot
//!     None => {
//!         let claim = Client::builder("serial-0042")       // the claim connection's client id
//!             .endpoint("xxxx-ats.iot.eu-west-1.amazonaws.com")
//!             .client_cert_pem_files("claim.cert.pem", "claim.private.key")?;
//!         FleetProvisioner::new("my-template")
//!             .parameter("SerialNumber", "0042")
//!             .save_to(dir)
//!             .provision(claim)
//!             .await?
//!     }
//! };
//! let client = identity
//!     .client_builder()?                                   // thing name + new certificate
//!     .endpoint("xxxx-ats.iot.eu-west-1.amazonaws.com")
//!     .connect()
//!     .await?;
//! # Ok(()) }
//! ```

mod error;
mod files;
mod identity;
mod keys;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use iotcore_model::provisioning::{
    MAX_PARAMETER_KEY_CHARS, MAX_PARAMETER_VALUE_CHARS, validate_template_name,
};

pub use error::ProvisioningError;
pub use files::{CredentialFiles, RECORD_FILE};
pub use identity::{DEFAULT_TIMEOUT, IdentityClient};
pub use iotcore_model::provisioning::{
    CreateCertificateFromCsrAccepted, CreateKeysAndCertificateAccepted, ErrorResponse,
    RegisterThingAccepted,
};
pub use keys::KeyType;

use crate::builder::ClientBuilder;
use crate::client::Client;
use crate::error::ConfigError;

/// Where the new certificate and key come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CertificateSource {
    /// A key made on the device, a certificate from CreateCertificateFromCsr.
    DeviceKey(KeyType),
    /// Key and certificate from CreateKeysAndCertificate.
    Service,
}

/// Runs fleet provisioning by claim; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct FleetProvisioner {
    template: String,
    parameters: BTreeMap<String, String>,
    source: CertificateSource,
    timeout: Duration,
    save_to: Option<PathBuf>,
}

impl FleetProvisioner {
    /// Provisioning with template `template`, a key made on the device
    /// ([`KeyType::EcdsaP256`]), nothing saved, [`DEFAULT_TIMEOUT`] per request.
    pub fn new(template: impl Into<String>) -> FleetProvisioner {
        FleetProvisioner {
            template: template.into(),
            parameters: BTreeMap::new(),
            source: CertificateSource::DeviceKey(KeyType::default()),
            timeout: DEFAULT_TIMEOUT,
            save_to: None,
        }
    }

    /// Adds a template parameter (RegisterThing's `parameters`).
    pub fn parameter(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.parameters.insert(name.into(), value.into());
        self
    }

    /// Adds template parameters.
    pub fn parameters<K: Into<String>, V: Into<String>>(
        mut self,
        parameters: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.parameters
            .extend(parameters.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Makes a key of `key_type` on the device (the default, with
    /// [`KeyType::EcdsaP256`]) and has its CSR signed.
    pub fn device_key(mut self, key_type: KeyType) -> Self {
        self.source = CertificateSource::DeviceKey(key_type);
        self
    }

    /// Asks the service for the key too (CreateKeysAndCertificate): the key
    /// travels over the connection. Prefer [`device_key`](Self::device_key).
    pub fn keys_from_service(mut self) -> Self {
        self.source = CertificateSource::Service;
        self
    }

    /// How long each request may wait for its reply.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Writes the new credentials into `dir` before disconnecting (see
    /// [`Provisioned::load`] and [`CredentialFiles`]).
    pub fn save_to(mut self, dir: impl Into<PathBuf>) -> Self {
        self.save_to = Some(dir.into());
        self
    }

    fn check(&self) -> Result<(), ProvisioningError> {
        validate_template_name(&self.template)
            .map_err(|e| ProvisioningError::InvalidRequest(e.to_string()))?;
        for (key, value) in &self.parameters {
            if key.is_empty() || key.chars().count() > MAX_PARAMETER_KEY_CHARS {
                return Err(ProvisioningError::InvalidRequest(format!(
                    "parameter names must have 1 to {MAX_PARAMETER_KEY_CHARS} characters"
                )));
            }
            if value.chars().count() > MAX_PARAMETER_VALUE_CHARS {
                return Err(ProvisioningError::InvalidRequest(format!(
                    "the value of parameter {key} is longer than {MAX_PARAMETER_VALUE_CHARS} characters"
                )));
            }
        }
        Ok(())
    }

    /// Connects with `claim` (a builder holding the claim certificate),
    /// provisions, saves the credentials if asked, disconnects, and returns the
    /// new identity. The claim connection is closed whatever happens.
    pub async fn provision(&self, claim: ClientBuilder) -> Result<Provisioned, ProvisioningError> {
        self.check()?;
        let client = claim.connect().await.map_err(ProvisioningError::Connect)?;
        let result = self.provision_with(&client).await;
        client.close().await;
        result
    }

    /// The same flow over a client already connected with the claim
    /// certificate; the client is left open.
    pub async fn provision_with(&self, client: &Client) -> Result<Provisioned, ProvisioningError> {
        self.check()?;
        let identity = IdentityClient::new(client).with_timeout(self.timeout);
        let (certificate_id, certificate_pem, private_key_pem, token) = match self.source {
            CertificateSource::DeviceKey(key_type) => {
                let common_name = client.client_id();
                let key =
                    tokio::task::spawn_blocking(move || keys::generate(key_type, &common_name))
                        .await
                        .map_err(|e| ProvisioningError::Key(e.to_string()))??;
                let created = identity.create_certificate_from_csr(&key.csr_pem).await?;
                (
                    created.certificate_id,
                    created.certificate_pem,
                    key.private_key_pem,
                    created.certificate_ownership_token,
                )
            }
            CertificateSource::Service => {
                let created = identity.create_keys_and_certificate().await?;
                (
                    created.certificate_id,
                    created.certificate_pem,
                    created.private_key,
                    created.certificate_ownership_token,
                )
            }
        };
        tracing::info!(
            certificate_id,
            template = self.template,
            "certificate created"
        );
        let registered = identity
            .register_thing(&self.template, &token, &self.parameters)
            .await?;
        tracing::info!(thing = registered.thing_name, "thing registered");
        let mut provisioned = Provisioned {
            thing_name: registered.thing_name,
            certificate_id,
            certificate_pem,
            private_key_pem,
            device_configuration: registered.device_configuration,
            files: None,
        };
        if let Some(dir) = &self.save_to {
            provisioned.files = Some(provisioned.save(dir)?);
        }
        Ok(provisioned)
    }
}

/// A provisioned identity: the thing and its certificate and key. `Debug`
/// never shows the private key.
#[derive(Clone, PartialEq, Eq)]
pub struct Provisioned {
    thing_name: String,
    certificate_id: String,
    certificate_pem: String,
    private_key_pem: String,
    device_configuration: BTreeMap<String, String>,
    files: Option<CredentialFiles>,
}

impl Provisioned {
    /// The thing registered (connect with it as the client id).
    pub fn thing_name(&self) -> &str {
        &self.thing_name
    }

    /// The new certificate's id.
    pub fn certificate_id(&self) -> &str {
        &self.certificate_id
    }

    /// The new certificate, PEM.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// The private key, PEM.
    pub fn private_key_pem(&self) -> &str {
        &self.private_key_pem
    }

    /// The template's `DeviceConfiguration`.
    pub fn device_configuration(&self) -> &BTreeMap<String, String> {
        &self.device_configuration
    }

    /// Where the credentials were saved, if they were.
    pub fn files(&self) -> Option<&CredentialFiles> {
        self.files.as_ref()
    }

    /// A client builder for the thing with the new certificate; add the
    /// endpoint (and the CA, for the emulator) and connect.
    pub fn client_builder(&self) -> Result<ClientBuilder, ConfigError> {
        Client::builder(self.thing_name.clone())
            .client_cert_pem(&self.certificate_pem, &self.private_key_pem)
    }

    /// Writes the credentials into `dir` (see [`CredentialFiles`]).
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<CredentialFiles, ProvisioningError> {
        let record = files::Record {
            thing_name: self.thing_name.clone(),
            certificate_id: self.certificate_id.clone(),
            certificate_file: format!("{}.cert.pem", file_stem(&self.thing_name)),
            private_key_file: format!("{}.private.key", file_stem(&self.thing_name)),
            device_configuration: self.device_configuration.clone(),
        };
        files::save(
            dir.as_ref(),
            &record,
            &self.certificate_pem,
            &self.private_key_pem,
        )
    }

    /// The identity saved in `dir` by an earlier provisioning, or `None` when
    /// `dir` holds none (no `provisioned.json`).
    pub fn load(dir: impl AsRef<Path>) -> Result<Option<Provisioned>, ProvisioningError> {
        Ok(
            files::load(dir.as_ref())?.map(|(record, certificate_pem, private_key_pem, files)| {
                Provisioned {
                    thing_name: record.thing_name,
                    certificate_id: record.certificate_id,
                    certificate_pem,
                    private_key_pem,
                    device_configuration: record.device_configuration,
                    files: Some(files),
                }
            }),
        )
    }
}

/// A thing name as a file name: its characters are letters, digits, `:`,
/// `_` and `-`; anything else (a service that broke the rule) becomes `_`.
fn file_stem(thing: &str) -> String {
    thing
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl fmt::Debug for Provisioned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provisioned")
            .field("thing_name", &self.thing_name)
            .field("certificate_id", &self.certificate_id)
            .field("device_configuration", &self.device_configuration)
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_requests_are_refused_before_connecting() {
        let cases = [
            (FleetProvisioner::new("has space"), "template name"),
            (FleetProvisioner::new(""), "template name"),
            (
                FleetProvisioner::new("t").parameter("", "v"),
                "parameter names",
            ),
            (
                FleetProvisioner::new("t").parameter("k", "v".repeat(4097)),
                "longer than 4096",
            ),
        ];
        for (provisioner, needle) in cases {
            let err = provisioner.check().unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
            assert!(err.to_string().ends_with("nothing was sent"), "{err}");
        }
        FleetProvisioner::new("fleet_1-a")
            .parameters([("SerialNumber", "42")])
            .check()
            .unwrap();
    }

    #[test]
    fn file_names_come_from_the_thing_name_safely() {
        assert_eq!(file_stem("dev:1_a-b"), "dev:1_a-b");
        assert_eq!(file_stem("../x y"), "___x_y");
    }

    #[test]
    fn debug_never_shows_the_key() {
        let provisioned = Provisioned {
            thing_name: "t".into(),
            certificate_id: "c".into(),
            certificate_pem: "cert".into(),
            private_key_pem: "SECRET".into(),
            device_configuration: BTreeMap::new(),
            files: None,
        };
        assert!(!format!("{provisioned:?}").contains("SECRET"));
    }
}
