//! Fleet provisioning's reserved topics: building and parsing.
//!
//! [`ProvisioningTopic`] is both the builder ([`ProvisioningTopic::new`], then
//! [`ProvisioningTopic::to_topic`] or `Display`) and the result of
//! [`ProvisioningTopic::parse`]. Source: docs/aws-iot-core-behaviour.md §4.

use std::fmt;

/// Longest provisioning template name (AWS's CreateProvisioningTemplate:
/// 1 to 36 characters of `[0-9A-Za-z_-]`).
pub const MAX_TEMPLATE_NAME_LEN: usize = 36;

/// A provisioning template name AWS would refuse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid provisioning template name '{0}': use 1 to 36 characters of a-z, A-Z, 0-9, '_', '-'"
)]
pub struct TemplateNameError(pub String);

/// Checks a template name: 1 to 36 characters of `[0-9A-Za-z_-]`.
pub fn validate_template_name(name: &str) -> Result<(), TemplateNameError> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-');
    if name.is_empty() || name.len() > MAX_TEMPLATE_NAME_LEN || !name.chars().all(ok) {
        return Err(TemplateNameError(name.to_owned()));
    }
    Ok(())
}

/// Which API a topic belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProvisioningApi<'a> {
    /// `$aws/certificates/create/…`: the service makes a key and a certificate.
    CreateKeysAndCertificate,
    /// `$aws/certificates/create-from-csr/…`: the service signs the device's CSR.
    CreateCertificateFromCsr,
    /// `$aws/provisioning-templates/{template}/provision/…`: registers a thing
    /// with a template.
    RegisterThing {
        /// The template's name.
        template: &'a str,
    },
}

impl ProvisioningApi<'_> {
    /// AWS's name of the operation: `CreateKeysAndCertificate`,
    /// `CreateCertificateFromCsr` or `RegisterThing`.
    pub fn name(&self) -> &'static str {
        match self {
            ProvisioningApi::CreateKeysAndCertificate => "CreateKeysAndCertificate",
            ProvisioningApi::CreateCertificateFromCsr => "CreateCertificateFromCsr",
            ProvisioningApi::RegisterThing { .. } => "RegisterThing",
        }
    }
}

/// The payload format a request is sent in and answered in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PayloadFormat {
    /// `json`.
    Json,
    /// `cbor`.
    Cbor,
}

impl PayloadFormat {
    /// The topic level: `json` or `cbor`.
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadFormat::Json => "json",
            PayloadFormat::Cbor => "cbor",
        }
    }

    fn from_level(level: &str) -> Option<Self> {
        match level {
            "json" => Some(PayloadFormat::Json),
            "cbor" => Some(PayloadFormat::Cbor),
            _ => None,
        }
    }
}

/// Which topic of an API: the request, or one of the service's replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProvisioningTopicKind {
    /// The request a client publishes (no suffix).
    Request,
    /// `/accepted`: the service did it.
    Accepted,
    /// `/rejected`: the service refused, with an error document.
    Rejected,
}

impl ProvisioningTopicKind {
    /// The last topic level, or `None` for a request.
    pub fn suffix(self) -> Option<&'static str> {
        match self {
            ProvisioningTopicKind::Request => None,
            ProvisioningTopicKind::Accepted => Some("accepted"),
            ProvisioningTopicKind::Rejected => Some("rejected"),
        }
    }
}

/// Why a topic is not a fleet provisioning topic.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProvisioningTopicError {
    /// The topic is under neither `$aws/certificates/` nor `$aws/provisioning-templates/`.
    #[error(
        "'{topic}' is not a fleet provisioning topic: they start with $aws/certificates/ or \
         $aws/provisioning-templates/"
    )]
    NotProvisioning {
        /// The topic.
        topic: String,
    },
    /// Under one of the prefixes, but not one of the service's topics.
    #[error(
        "'{topic}' is not a fleet provisioning topic: expected $aws/certificates/create[-from-csr]/<json|cbor>[/accepted|/rejected] \
         or $aws/provisioning-templates/<template>/provision/<json|cbor>[/accepted|/rejected]"
    )]
    Unknown {
        /// The topic.
        topic: String,
    },
    /// The template name breaks AWS's rules.
    #[error(transparent)]
    InvalidTemplateName(#[from] TemplateNameError),
}

/// A fleet provisioning topic: API, payload format and kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProvisioningTopic<'a> {
    api: ProvisioningApi<'a>,
    format: PayloadFormat,
    kind: ProvisioningTopicKind,
}

const CERTIFICATES: &str = "$aws/certificates/";
const TEMPLATES: &str = "$aws/provisioning-templates/";

impl<'a> ProvisioningTopic<'a> {
    /// A provisioning topic; fails on an invalid template name.
    pub fn new(
        api: ProvisioningApi<'a>,
        format: PayloadFormat,
        kind: ProvisioningTopicKind,
    ) -> Result<Self, ProvisioningTopicError> {
        if let ProvisioningApi::RegisterThing { template } = api {
            validate_template_name(template)?;
        }
        Ok(ProvisioningTopic { api, format, kind })
    }

    /// Whether `topic` is under one of the service's prefixes (a cheap test
    /// before [`ProvisioningTopic::parse`]).
    pub fn is_reserved(topic: &str) -> bool {
        topic.starts_with(CERTIFICATES) || topic.starts_with(TEMPLATES)
    }

    /// Parses a topic name. [`ProvisioningTopicError::NotProvisioning`] means
    /// the topic is under neither prefix; the other errors mean it is, but is
    /// not one of the service's topics.
    pub fn parse(topic: &'a str) -> Result<Self, ProvisioningTopicError> {
        let unknown = || ProvisioningTopicError::Unknown {
            topic: topic.to_owned(),
        };
        let (api, rest) = if let Some(rest) = topic.strip_prefix(CERTIFICATES) {
            let mut levels = rest.splitn(2, '/');
            let api = match levels.next() {
                Some("create") => ProvisioningApi::CreateKeysAndCertificate,
                Some("create-from-csr") => ProvisioningApi::CreateCertificateFromCsr,
                _ => return Err(unknown()),
            };
            (api, levels.next().ok_or_else(unknown)?)
        } else if let Some(rest) = topic.strip_prefix(TEMPLATES) {
            let mut levels = rest.splitn(3, '/');
            let (Some(template), Some("provision"), Some(rest)) =
                (levels.next(), levels.next(), levels.next())
            else {
                return Err(unknown());
            };
            (ProvisioningApi::RegisterThing { template }, rest)
        } else {
            return Err(ProvisioningTopicError::NotProvisioning {
                topic: topic.to_owned(),
            });
        };
        let levels: Vec<&str> = rest.split('/').collect();
        let (format, kind) = match levels.as_slice() {
            [format] => (*format, ProvisioningTopicKind::Request),
            [format, "accepted"] => (*format, ProvisioningTopicKind::Accepted),
            [format, "rejected"] => (*format, ProvisioningTopicKind::Rejected),
            _ => return Err(unknown()),
        };
        let format = PayloadFormat::from_level(format).ok_or_else(unknown)?;
        ProvisioningTopic::new(api, format, kind)
    }

    /// The API.
    pub fn api(&self) -> ProvisioningApi<'a> {
        self.api
    }

    /// The payload format.
    pub fn format(&self) -> PayloadFormat {
        self.format
    }

    /// The kind of topic.
    pub fn kind(&self) -> ProvisioningTopicKind {
        self.kind
    }

    /// The same API and format with another kind (a request's reply topics).
    pub fn with_kind(self, kind: ProvisioningTopicKind) -> Self {
        ProvisioningTopic { kind, ..self }
    }

    /// The topic name.
    pub fn to_topic(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for ProvisioningTopic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.api {
            ProvisioningApi::CreateKeysAndCertificate => write!(f, "{CERTIFICATES}create")?,
            ProvisioningApi::CreateCertificateFromCsr => {
                write!(f, "{CERTIFICATES}create-from-csr")?;
            }
            ProvisioningApi::RegisterThing { template } => {
                write!(f, "{TEMPLATES}{template}/provision")?;
            }
        }
        write!(f, "/{}", self.format.as_str())?;
        if let Some(suffix) = self.kind.suffix() {
            write!(f, "/{suffix}")?;
        }
        Ok(())
    }
}
