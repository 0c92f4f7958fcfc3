//! Certificates: CreateKeysAndCertificate, CreateCertificateFromCsr,
//! RegisterCertificate, RegisterCertificateWithoutCA, DescribeCertificate,
//! UpdateCertificate, DeleteCertificate, ListCertificates.

use serde::{Deserialize, Serialize};
use x509_parser::pem::parse_x509_pem;

use super::page::paginate;
use super::{Control, ControlError, ErrorCode, lenient};
use crate::pki::{DEFAULT_DEVICE_COMMON_NAME, KeyAlgorithm, certificate_id};
use crate::store::{CertificateRecord, CertificateStatus, StoreError};

/// AWS's `keyPair` (PascalCase members, as AWS's model has them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPair {
    /// The public key, PEM.
    #[serde(rename = "PublicKey")]
    pub public_key: String,
    /// The private key, PEM (PKCS#8).
    #[serde(rename = "PrivateKey")]
    pub private_key: String,
}

/// CreateKeysAndCertificate's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateKeysAndCertificateRequest {
    /// Register the certificate ACTIVE (INACTIVE otherwise).
    #[serde(default, deserialize_with = "lenient::bool")]
    pub set_as_active: Option<bool>,
}

/// CreateKeysAndCertificate's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateKeysAndCertificateResponse {
    /// The certificate's ARN.
    pub certificate_arn: String,
    /// Its id: lowercase hex SHA-256 of its DER.
    pub certificate_id: String,
    /// The certificate, PEM.
    pub certificate_pem: String,
    /// The new key pair.
    pub key_pair: KeyPair,
}

/// CreateCertificateFromCsr's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateCertificateFromCsrRequest {
    /// The PKCS#10 request, PEM.
    pub certificate_signing_request: String,
    /// Register the certificate ACTIVE (INACTIVE otherwise).
    #[serde(default, deserialize_with = "lenient::bool")]
    pub set_as_active: Option<bool>,
}

/// CreateCertificateFromCsr's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateCertificateFromCsrResponse {
    /// The certificate's ARN.
    pub certificate_arn: String,
    /// Its id.
    pub certificate_id: String,
    /// The certificate, PEM.
    pub certificate_pem: String,
}

/// RegisterCertificate's and RegisterCertificateWithoutCA's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterCertificateRequest {
    /// The certificate, PEM.
    pub certificate_pem: String,
    /// The CA that signed it (RegisterCertificate only); must be the emulator's.
    pub ca_certificate_pem: Option<String>,
    /// Deprecated form of `status: ACTIVE`.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub set_as_active: Option<bool>,
    /// ACTIVE or INACTIVE (the default).
    pub status: Option<String>,
}

/// The response of the two Register operations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterCertificateResponse {
    /// The certificate's ARN.
    pub certificate_arn: String,
    /// Its id.
    pub certificate_id: String,
}

/// A request naming one certificate (DescribeCertificate).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DescribeCertificateRequest {
    /// The certificate id.
    pub certificate_id: String,
}

/// AWS's `validity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateValidity {
    /// Not valid before, epoch seconds.
    pub not_before: i64,
    /// Not valid after, epoch seconds.
    pub not_after: i64,
}

/// AWS's `certificateDescription`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateDescription {
    /// The ARN.
    pub certificate_arn: String,
    /// The id.
    pub certificate_id: String,
    /// The id of the CA that signed it, when it is the emulator's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_certificate_id: Option<String>,
    /// ACTIVE, INACTIVE, REVOKED or PENDING_ACTIVATION.
    pub status: String,
    /// The certificate, PEM.
    pub certificate_pem: String,
    /// The account that owns it.
    pub owned_by: String,
    /// When it was registered, epoch seconds.
    pub creation_date: i64,
    /// When its status last changed, epoch seconds.
    pub last_modified_date: i64,
    /// Always 1.
    pub customer_version: i64,
    /// Its validity period.
    pub validity: CertificateValidity,
    /// DEFAULT when signed by the emulator's CA, SNI_ONLY otherwise.
    pub certificate_mode: String,
}

/// DescribeCertificate's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeCertificateResponse {
    /// The description.
    pub certificate_description: CertificateDescription,
}

/// UpdateCertificate's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateCertificateRequest {
    /// The certificate id.
    pub certificate_id: String,
    /// ACTIVE, INACTIVE or REVOKED.
    pub new_status: String,
}

/// DeleteCertificate's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteCertificateRequest {
    /// The certificate id.
    pub certificate_id: String,
    /// Delete even when policies are attached (they are detached).
    #[serde(default, deserialize_with = "lenient::bool")]
    pub force_delete: Option<bool>,
}

/// ListCertificates' request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListCertificatesRequest {
    /// At most this many (1 to 250).
    #[serde(default, deserialize_with = "lenient::int")]
    pub page_size: Option<i64>,
    /// The marker of the page to return.
    pub marker: Option<String>,
    /// Accepted; the order is by id.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub ascending_order: Option<bool>,
}

/// One certificate in ListCertificates' response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateSummary {
    /// The ARN.
    pub certificate_arn: String,
    /// The id.
    pub certificate_id: String,
    /// The status.
    pub status: String,
    /// DEFAULT or SNI_ONLY.
    pub certificate_mode: String,
    /// When it was registered, epoch seconds.
    pub creation_date: i64,
}

/// ListCertificates' response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListCertificatesResponse {
    /// The certificates of this page.
    pub certificates: Vec<CertificateSummary>,
    /// The marker of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

/// What the emulator reads from a certificate PEM.
struct ParsedCertificate {
    id: String,
    validity: CertificateValidity,
    signed_by_emulator: bool,
}

fn status_or_inactive(active: bool) -> CertificateStatus {
    if active {
        CertificateStatus::Active
    } else {
        CertificateStatus::Inactive
    }
}

impl Control {
    /// CreateKeysAndCertificate: a new RSA 2048 key pair (as AWS makes) and a
    /// certificate for it signed by the emulator's CA, registered ACTIVE with
    /// `setAsActive`, INACTIVE otherwise.
    pub fn create_keys_and_certificate(
        &self,
        request: CreateKeysAndCertificateRequest,
    ) -> Result<CreateKeysAndCertificateResponse, ControlError> {
        let issued = self
            .pki
            .issue_device_certificate(DEFAULT_DEVICE_COMMON_NAME, KeyAlgorithm::Rsa2048)?;
        let status = status_or_inactive(request.set_as_active == Some(true));
        self.store
            .add_certificate(&issued.certificate_id, &issued.certificate_pem, status)?;
        let public_key = rcgen::KeyPair::from_pem(&issued.private_key_pem)
            .map_err(|e| ControlError::new(ErrorCode::InternalFailure, e.to_string()))?
            .public_key_pem();
        self.changed();
        Ok(CreateKeysAndCertificateResponse {
            certificate_arn: self.arn("cert", &issued.certificate_id),
            certificate_id: issued.certificate_id,
            certificate_pem: issued.certificate_pem,
            key_pair: KeyPair {
                public_key,
                private_key: issued.private_key_pem,
            },
        })
    }

    /// CreateCertificateFromCsr: signs the request with the emulator's CA.
    pub fn create_certificate_from_csr(
        &self,
        request: CreateCertificateFromCsrRequest,
    ) -> Result<CreateCertificateFromCsrResponse, ControlError> {
        let issued = self
            .pki
            .sign_csr(&request.certificate_signing_request)
            .map_err(|e| ControlError::invalid(e.to_string()))?;
        let status = status_or_inactive(request.set_as_active == Some(true));
        self.store
            .add_certificate(&issued.certificate_id, &issued.certificate_pem, status)?;
        self.changed();
        Ok(CreateCertificateFromCsrResponse {
            certificate_arn: self.arn("cert", &issued.certificate_id),
            certificate_id: issued.certificate_id,
            certificate_pem: issued.certificate_pem,
        })
    }

    /// RegisterCertificate: registers a certificate signed by the emulator's
    /// CA (`caCertificatePem`, when given, must be the emulator's CA).
    pub fn register_certificate(
        &self,
        request: RegisterCertificateRequest,
    ) -> Result<RegisterCertificateResponse, ControlError> {
        if let Some(ca) = &request.ca_certificate_pem {
            if self.parse_certificate(ca)?.id != certificate_id(self.pki.ca_der()) {
                return Err(ControlError::new(
                    ErrorCode::CertificateValidation,
                    "caCertificatePem is not the emulator's CA: register certificates signed by \
                     the emulator's CA (its root-ca.pem), or use RegisterCertificateWithoutCA",
                ));
            }
        }
        let parsed = self.parse_certificate(&request.certificate_pem)?;
        if !parsed.signed_by_emulator {
            return Err(ControlError::new(
                ErrorCode::CertificateValidation,
                "the certificate is not signed by the emulator's CA; use \
                 RegisterCertificateWithoutCA for certificates of other CAs",
            ));
        }
        self.register(request, parsed)
    }

    /// RegisterCertificateWithoutCA: registers a certificate of any CA
    /// (AWS's SNI_ONLY mode). Only certificates signed by the emulator's CA
    /// can complete the emulator's TLS handshake.
    pub fn register_certificate_without_ca(
        &self,
        request: RegisterCertificateRequest,
    ) -> Result<RegisterCertificateResponse, ControlError> {
        if request.ca_certificate_pem.is_some() || request.set_as_active.is_some() {
            return Err(ControlError::invalid(
                "RegisterCertificateWithoutCA takes only certificatePem and status",
            ));
        }
        let parsed = self.parse_certificate(&request.certificate_pem)?;
        self.register(request, parsed)
    }

    fn register(
        &self,
        request: RegisterCertificateRequest,
        parsed: ParsedCertificate,
    ) -> Result<RegisterCertificateResponse, ControlError> {
        let status = match request.status.as_deref() {
            None => status_or_inactive(request.set_as_active == Some(true)),
            Some(text) => match text.parse::<CertificateStatus>() {
                Ok(s @ (CertificateStatus::Active | CertificateStatus::Inactive)) => s,
                _ => {
                    return Err(ControlError::invalid(format!(
                        "status {text:?} cannot be registered: give ACTIVE or INACTIVE"
                    )));
                }
            },
        };
        self.store
            .add_certificate(&parsed.id, request.certificate_pem.trim_start(), status)
            .map_err(|e| match e {
                StoreError::CertificateExists(_) => {
                    ControlError::from(e).with_resource(&parsed.id, self.arn("cert", &parsed.id))
                }
                e => e.into(),
            })?;
        self.changed();
        Ok(RegisterCertificateResponse {
            certificate_arn: self.arn("cert", &parsed.id),
            certificate_id: parsed.id,
        })
    }

    /// DescribeCertificate.
    pub fn describe_certificate(
        &self,
        request: DescribeCertificateRequest,
    ) -> Result<DescribeCertificateResponse, ControlError> {
        let record = self.require_certificate(&request.certificate_id)?;
        let parsed = self.parse_certificate(&record.pem)?;
        Ok(DescribeCertificateResponse {
            certificate_description: CertificateDescription {
                certificate_arn: self.arn("cert", &record.id),
                certificate_id: record.id,
                ca_certificate_id: parsed
                    .signed_by_emulator
                    .then(|| certificate_id(self.pki.ca_der())),
                status: record.status.to_string(),
                certificate_pem: record.pem,
                owned_by: self.scope.account_id().to_owned(),
                creation_date: record.created_at,
                last_modified_date: record.updated_at,
                customer_version: 1,
                validity: parsed.validity,
                certificate_mode: certificate_mode(parsed.signed_by_emulator).to_owned(),
            },
        })
    }

    /// UpdateCertificate: devices using a certificate that is no longer
    /// ACTIVE are disconnected by a running emulator at once.
    pub fn update_certificate(
        &self,
        request: UpdateCertificateRequest,
    ) -> Result<(), ControlError> {
        let status: CertificateStatus =
            request
                .new_status
                .parse()
                .map_err(|e: crate::store::UnknownCertificateStatus| {
                    ControlError::invalid(e.to_string())
                })?;
        if status == CertificateStatus::PendingActivation {
            return Err(ControlError::invalid(
                "newStatus PENDING_ACTIVATION cannot be set; give ACTIVE, INACTIVE or REVOKED",
            ));
        }
        self.store
            .set_certificate_status(&request.certificate_id, status)?;
        self.changed();
        Ok(())
    }

    /// DeleteCertificate: the certificate must not be ACTIVE nor attached to a
    /// thing; attached policies refuse it too unless `forceDelete`.
    pub fn delete_certificate(
        &self,
        request: DeleteCertificateRequest,
    ) -> Result<(), ControlError> {
        let id = &request.certificate_id;
        let record = self.require_certificate(id)?;
        if request.force_delete == Some(true) && record.status != CertificateStatus::Active {
            for policy in self.store.certificate_policies(id)? {
                self.store.detach_policy(&policy.name, id)?;
            }
        }
        self.store.delete_certificate(id)?;
        self.changed();
        Ok(())
    }

    /// ListCertificates, by id.
    pub fn list_certificates(
        &self,
        request: ListCertificatesRequest,
    ) -> Result<ListCertificatesResponse, ControlError> {
        let page = paginate(
            self.store.list_certificates()?,
            |c| c.id.as_str(),
            request.marker.as_deref(),
            request.page_size,
            25,
            250,
        )?;
        let certificates = page
            .items
            .into_iter()
            .map(|c| {
                let ours = self
                    .parse_certificate(&c.pem)
                    .is_ok_and(|p| p.signed_by_emulator);
                CertificateSummary {
                    certificate_arn: self.arn("cert", &c.id),
                    certificate_id: c.id,
                    status: c.status.to_string(),
                    certificate_mode: certificate_mode(ours).to_owned(),
                    creation_date: c.created_at,
                }
            })
            .collect();
        Ok(ListCertificatesResponse {
            certificates,
            next_marker: page.next,
        })
    }

    /// The certificate `id`, or ResourceNotFoundException.
    pub(crate) fn require_certificate(&self, id: &str) -> Result<CertificateRecord, ControlError> {
        self.store
            .certificate(id)?
            .ok_or_else(|| StoreError::CertificateNotFound(id.to_owned()).into())
    }

    /// Reads a certificate PEM: its id, validity and whether the emulator's
    /// CA signed it.
    fn parse_certificate(&self, pem: &str) -> Result<ParsedCertificate, ControlError> {
        let invalid = |reason: String| ControlError::new(ErrorCode::CertificateValidation, reason);
        let (_, pem) = parse_x509_pem(pem.trim_start().as_bytes())
            .map_err(|e| invalid(format!("certificatePem is not a PEM certificate: {e}")))?;
        let cert = pem
            .parse_x509()
            .map_err(|e| invalid(format!("certificatePem is not an X.509 certificate: {e}")))?;
        let ca = self.pki.ca_der();
        let signed_by_emulator = x509_parser::parse_x509_certificate(ca.as_ref())
            .ok()
            .is_some_and(|(_, ca)| {
                cert.issuer() == ca.subject()
                    && cert.verify_signature(Some(ca.public_key())).is_ok()
            });
        Ok(ParsedCertificate {
            id: certificate_id(&pem.contents),
            validity: CertificateValidity {
                not_before: cert.validity().not_before.timestamp(),
                not_after: cert.validity().not_after.timestamp(),
            },
            signed_by_emulator,
        })
    }
}

fn certificate_mode(signed_by_emulator: bool) -> &'static str {
    if signed_by_emulator {
        "DEFAULT"
    } else {
        "SNI_ONLY"
    }
}
