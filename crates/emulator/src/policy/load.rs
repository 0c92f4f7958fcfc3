//! Building a [`Principal`] from the registry: what the broker does at CONNECT
//! and `iotcore policy explain` does offline.

use std::net::IpAddr;
use std::sync::Arc;

use super::ArnScope;
use super::context::{CertificateAttributes, RequestContext};
use super::document::PolicyDocument;
use super::eval::{AttachedPolicy, PolicyRef, Principal};
use super::parsed::ParsedDocuments;
use crate::store::{CertificateStatus, Store, StoreError};

/// Why no principal could be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The certificate is not registered.
    #[error("unknown certificate id {0}: it is not registered")]
    UnknownCertificate(String),
    /// A policy named by an access key is not in the registry.
    #[error("policy {0} does not exist")]
    UnknownPolicy(String),
    /// The registry could not be read.
    #[error("registry lookup failed: {0}")]
    Store(#[from] StoreError),
}

impl Principal {
    /// Reads certificate `certificate_id`, the thing named `client_id` if the
    /// certificate is attached to it, and the default versions of the policies
    /// attached to the certificate, and compiles them for a connection from
    /// `source_ip`; the documents come parsed from `documents` when it holds
    /// them. Returns the certificate's status too: only `ACTIVE`
    /// certificates may connect, whatever the policies say.
    ///
    /// A stored policy document that no longer parses (the database was edited
    /// by hand) is skipped, and the skip logged.
    pub(crate) fn load(
        store: &Store,
        scope: &ArnScope,
        documents: &ParsedDocuments,
        certificate_id: &str,
        client_id: &str,
        source_ip: Option<IpAddr>,
    ) -> Result<(Principal, CertificateStatus), LoadError> {
        let status = store
            .certificate_status(certificate_id)?
            .ok_or_else(|| LoadError::UnknownCertificate(certificate_id.to_owned()))?;
        let thing = store.attached_thing(certificate_id, client_id)?;
        let policies: Vec<(String, u32, Arc<PolicyDocument>)> = store
            .certificate_policies(certificate_id)?
            .into_iter()
            .filter_map(|p| match documents.get(&p.name, &p.document) {
                Ok(document) => Some((p.name, p.version, document)),
                Err(e) => {
                    tracing::error!(
                        policy = p.name,
                        version = p.version,
                        "stored policy document ignored: {e}"
                    );
                    None
                }
            })
            .collect();
        // The certificate's attributes come from parsing its X.509: read and
        // parsed only when a policy has a variable that needs them.
        let mut attributes = CertificateAttributes::default();
        if policies
            .iter()
            .any(|(.., d)| d.uses_certificate_variables())
            && let Some(certificate) = store.certificate(certificate_id)?
        {
            match CertificateAttributes::from_pem(&certificate.pem) {
                Ok(read) => attributes = read,
                Err(e) => tracing::warn!(certificate_id, "certificate variables unavailable: {e}"),
            }
        }
        let context = RequestContext {
            client_id: client_id.to_owned(),
            source_ip,
            certificate_id: certificate_id.to_owned(),
            certificate: attributes,
            thing,
        };
        let policies: Vec<PolicyRef<'_>> = policies
            .iter()
            .map(|(name, version, document)| PolicyRef {
                name,
                version: *version,
                document,
            })
            .collect();
        Ok((
            Principal::compile(context, &policies, scope.clone()),
            status,
        ))
    }
}

impl Principal {
    /// Compiles policy `policy_name` (its default version) for a connection
    /// without a certificate (an access key's) as `client_id` from
    /// `source_ip`.
    pub(crate) fn load_named(
        store: &Store,
        scope: &ArnScope,
        policy_name: &str,
        client_id: &str,
        source_ip: Option<IpAddr>,
    ) -> Result<Principal, LoadError> {
        let policy = store
            .policy(policy_name)?
            .ok_or_else(|| LoadError::UnknownPolicy(policy_name.to_owned()))?;
        let document = policy.default_document().to_owned();
        Ok(Principal::from_documents(
            scope,
            &[(policy_name.to_owned(), policy.default_version, document)],
            client_id,
            source_ip,
        ))
    }

    /// Compiles policy documents `(name, version, JSON text)` for a
    /// connection without a certificate as `client_id` from `source_ip`: an
    /// access key's policy, or the documents a custom authorizer returned. A
    /// document that does not parse is skipped, and the skip logged.
    pub(crate) fn from_documents(
        scope: &ArnScope,
        documents: &[(String, u32, String)],
        client_id: &str,
        source_ip: Option<IpAddr>,
    ) -> Principal {
        let policies: Vec<AttachedPolicy> = documents
            .iter()
            .filter_map(|(name, version, text)| match PolicyDocument::parse(text) {
                Ok(document) => Some(AttachedPolicy {
                    name: name.clone(),
                    version: *version,
                    document,
                }),
                Err(e) => {
                    tracing::error!(policy = name, "policy document ignored: {e}");
                    None
                }
            })
            .collect();
        let context = RequestContext {
            client_id: client_id.to_owned(),
            source_ip,
            certificate_id: String::new(),
            certificate: CertificateAttributes::default(),
            thing: None,
        };
        Principal::new(context, &policies, scope.clone())
    }
}
