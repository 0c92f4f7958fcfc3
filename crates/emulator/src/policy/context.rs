//! What AWS IoT Core knows about a connection when it evaluates a policy: the
//! client id, the source address, the certificate's attributes and the thing.

use std::collections::BTreeMap;
use std::net::IpAddr;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

use super::variables::{Kind, Selector, Variable};
use crate::store::ThingRecord;

/// AWS: "Certificate attributes that contain arrays are limited to five items."
const MAX_VALUES: usize = 5;
/// AWS: "All string values are limited to 1024 characters"; longer ones are not substituted.
const MAX_VALUE_CHARS: usize = 1024;

/// Subject and issuer attribute OIDs, by AWS's names.
const NAME_OIDS: &[(&str, &str)] = &[
    ("2.5.4.46", "DistinguishedNameQualifier"),
    ("2.5.4.6", "Country"),
    ("2.5.4.10", "Organization"),
    ("2.5.4.11", "OrganizationalUnit"),
    ("2.5.4.8", "State"),
    ("2.5.4.3", "CommonName"),
    ("2.5.4.5", "SerialNumber"),
    ("2.5.4.12", "Title"),
    ("2.5.4.4", "Surname"),
    ("2.5.4.42", "GivenName"),
    ("2.5.4.43", "Initials"),
    ("2.5.4.65", "Pseudonym"),
    ("2.5.4.44", "GenerationQualifier"),
];

/// A certificate that could not be read for its attributes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the certificate's attributes: {0}")]
pub struct CertificateParseError(String);

/// The X.509 attributes AWS exposes as `iot:Certificate.…` policy variables,
/// keyed by their names without the `iot:Certificate.` prefix
/// (`Subject.CommonName`, `Issuer.Organization`, `Subject.AlternativeName.DNSName`,
/// `SerialNumber`), each with its values in certificate order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateAttributes {
    values: BTreeMap<String, Vec<String>>,
}

impl CertificateAttributes {
    /// Reads the attributes of a DER-encoded certificate.
    pub fn from_der(der: &[u8]) -> Result<CertificateAttributes, CertificateParseError> {
        let (_, cert) =
            X509Certificate::from_der(der).map_err(|e| CertificateParseError(e.to_string()))?;
        let mut attributes = CertificateAttributes::default();
        attributes.add_name("Subject", cert.subject());
        attributes.add_name("Issuer", cert.issuer());
        for extension in cert.extensions() {
            let (part, names) = match extension.parsed_extension() {
                ParsedExtension::SubjectAlternativeName(san) => ("Subject", &san.general_names),
                ParsedExtension::IssuerAlternativeName(ian) => ("Issuer", &ian.general_names),
                _ => continue,
            };
            for name in names {
                attributes.add_general_name(part, name);
            }
        }
        attributes.add("SerialNumber", cert.raw_serial_as_string());
        Ok(attributes)
    }

    /// Reads the attributes of the first certificate in a PEM document.
    pub fn from_pem(pem: &str) -> Result<CertificateAttributes, CertificateParseError> {
        let der = CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| CertificateParseError(format!("no PEM certificate: {e}")))?;
        CertificateAttributes::from_der(der.as_ref())
    }

    /// Adds a value to attribute `key` (e.g. `Subject.Organization`); values past
    /// the fifth are ignored, as AWS does.
    pub fn add(&mut self, key: &str, value: impl Into<String>) {
        let values = self.values.entry(key.to_owned()).or_default();
        if values.len() < MAX_VALUES {
            values.push(value.into());
        }
    }

    /// The values of attribute `key`, in certificate order.
    pub fn values(&self, key: &str) -> &[String] {
        self.values.get(key).map_or(&[], Vec::as_slice)
    }

    fn add_name(&mut self, part: &str, name: &X509Name<'_>) {
        for attribute in name.iter_attributes() {
            let oid = attribute.attr_type().to_id_string();
            let Some((_, field)) = NAME_OIDS.iter().find(|(o, _)| *o == oid) else {
                continue;
            };
            if let Ok(value) = attribute.as_str() {
                self.add(&format!("{part}.{field}"), value);
            }
        }
    }

    fn add_general_name(&mut self, part: &str, name: &GeneralName<'_>) {
        let (kind, value) = match name {
            GeneralName::RFC822Name(v) => ("RFC822Name", (*v).to_owned()),
            GeneralName::DNSName(v) => ("DNSName", (*v).to_owned()),
            GeneralName::URI(v) => ("UniformResourceIdentifier", (*v).to_owned()),
            GeneralName::DirectoryName(n) => ("DirectoryName", n.to_string()),
            GeneralName::IPAddress(bytes) => {
                let ip = match bytes.len() {
                    4 => <[u8; 4]>::try_from(*bytes).map(IpAddr::from).ok(),
                    16 => <[u8; 16]>::try_from(*bytes).map(IpAddr::from).ok(),
                    _ => None,
                };
                let Some(ip) = ip else { return };
                ("IPAddress", ip.to_string())
            }
            _ => return,
        };
        self.add(&format!("{part}.AlternativeName.{kind}"), value);
    }

    /// AWS does not substitute values with wildcard characters or over 1024 characters.
    fn usable(value: &str) -> bool {
        !value.contains(['*', '?']) && value.chars().count() <= MAX_VALUE_CHARS
    }

    fn select(&self, key: &str, selector: Selector) -> Vec<String> {
        if key == "AvailableKeys" {
            return self
                .values
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, _)| format!("iot:Certificate.{k}"))
                .collect();
        }
        let values = self.values(key);
        let chosen: Vec<&String> = match selector {
            Selector::First => values.first().into_iter().collect(),
            Selector::Index(i) => values.get(i).into_iter().collect(),
            Selector::List => values.iter().collect(),
        };
        chosen
            .into_iter()
            .filter(|v| Self::usable(v))
            .cloned()
            .collect()
    }
}

/// The connection a policy is evaluated for.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The MQTT client id.
    pub client_id: String,
    /// The client's IP address.
    pub source_ip: Option<IpAddr>,
    /// The certificate id (SHA-256 of its DER, lowercase hex).
    pub certificate_id: String,
    /// The certificate's attributes.
    pub certificate: CertificateAttributes,
    /// The thing the connection is for: the thing named like the client id, if
    /// the certificate is attached to it (AWS: "the value of clientId … must
    /// exactly match the thing name"). `None` leaves the thing variables
    /// unresolved and `iot:Connection.Thing.IsAttached` false.
    pub thing: Option<ThingRecord>,
}

impl RequestContext {
    /// The value of `variable` in a resource, or `None` when it has none (it
    /// then stays as text and the resource matches nothing real).
    pub(crate) fn resolve(&self, variable: &Variable) -> Option<String> {
        match variable.kind() {
            Kind::ClientId => Some(self.client_id.clone()),
            Kind::SourceIp => self.source_ip.map(|ip| ip.to_string()),
            Kind::DomainName | Kind::Unknown => None,
            Kind::ThingName => self.thing.as_ref().map(|t| t.name.clone()),
            Kind::ThingTypeName => self.thing.as_ref().and_then(|t| t.thing_type.clone()),
            Kind::ThingAttribute(name) => self
                .thing
                .as_ref()
                .and_then(|t| t.attributes.get(name).cloned()),
            Kind::IsAttached => Some(self.thing.is_some().to_string()),
            Kind::Certificate {
                selector: Selector::List,
                ..
            } => None,
            Kind::Certificate { key, selector } => {
                self.certificate.select(key, *selector).into_iter().next()
            }
            Kind::Literal(c) => Some(c.to_string()),
        }
    }

    /// The values of a condition key: every value for a `.List` key, otherwise
    /// the one value [`RequestContext::resolve`] gives, or none.
    pub(crate) fn resolve_all(&self, variable: &Variable) -> Vec<String> {
        match variable.kind() {
            Kind::Certificate {
                key,
                selector: Selector::List,
            } => self.certificate.select(key, Selector::List),
            Kind::Certificate { key, .. } if key == "AvailableKeys" => {
                self.certificate.select(key, Selector::List)
            }
            _ => self.resolve(variable).into_iter().collect(),
        }
    }

    /// Why `variable` has no value here, for a denial's explanation.
    pub(crate) fn why_unresolved(&self, variable: &Variable) -> String {
        let thing_missing = || {
            format!(
                "client id \"{}\" is not the name of a thing certificate {} is attached to",
                self.client_id,
                short_id(&self.certificate_id)
            )
        };
        match variable.kind() {
            Kind::Unknown => "not an AWS IoT policy variable".to_owned(),
            Kind::DomainName => "not available in the emulator".to_owned(),
            Kind::SourceIp => "the client's address is unknown".to_owned(),
            Kind::ThingName | Kind::ThingTypeName | Kind::ThingAttribute(_)
                if self.thing.is_none() =>
            {
                thing_missing()
            }
            Kind::ThingTypeName => "the thing has no thing type".to_owned(),
            Kind::ThingAttribute(name) => format!("the thing has no attribute \"{name}\""),
            Kind::Certificate {
                selector: Selector::List,
                ..
            } => "a .List variable has no single value (use it in a ForAnyValue/ForAllValues \
                 condition)"
                .to_owned(),
            Kind::Certificate { key, selector } => match (self.certificate.values(key), selector) {
                ([], _) => format!("the certificate has no {key}"),
                (values, Selector::Index(i)) if *i >= values.len() => format!(
                    "the certificate has {} value(s) of {key}, no index {i}",
                    values.len()
                ),
                _ => format!(
                    "the certificate's {key} contains a wildcard character or is over \
                     {MAX_VALUE_CHARS} characters"
                ),
            },
            _ => "no value".to_owned(),
        }
    }
}

/// The first 12 characters of a certificate id, for messages.
pub(crate) fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate_pem() -> String {
        let mut params = rcgen::CertificateParams::new(vec!["dev.example".to_owned()]).unwrap();
        let dn = &mut params.distinguished_name;
        dn.push(rcgen::DnType::CommonName, "dev-1");
        dn.push(rcgen::DnType::OrganizationName, "Example Corp");
        dn.push(rcgen::DnType::OrganizationalUnitName, "Sensors");
        dn.push(rcgen::DnType::CountryName, "DE");
        dn.push(rcgen::DnType::from_oid(&[2, 5, 4, 65]), "pseudo");
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress("10.0.0.7".parse().unwrap()));
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn subject_issuer_and_alternative_names_are_read() {
        let a = CertificateAttributes::from_pem(&certificate_pem()).unwrap();
        assert_eq!(a.values("Subject.CommonName"), ["dev-1"]);
        assert_eq!(a.values("Subject.Organization"), ["Example Corp"]);
        assert_eq!(a.values("Subject.OrganizationalUnit"), ["Sensors"]);
        assert_eq!(a.values("Subject.Country"), ["DE"]);
        assert_eq!(a.values("Subject.Pseudonym"), ["pseudo"]);
        assert_eq!(a.values("Issuer.CommonName"), ["dev-1"], "self-signed");
        assert_eq!(a.values("Subject.AlternativeName.DNSName"), ["dev.example"]);
        assert_eq!(a.values("Subject.AlternativeName.IPAddress"), ["10.0.0.7"]);
        assert_eq!(a.values("SerialNumber").len(), 1);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(CertificateAttributes::from_pem("nope").is_err());
        assert!(CertificateAttributes::from_der(b"\x30\x03\x02\x01\x00").is_err());
    }

    fn context() -> RequestContext {
        let mut certificate = CertificateAttributes::default();
        certificate.add("Subject.Organization", "First");
        certificate.add("Subject.Organization", "Second");
        certificate.add("Subject.OrganizationalUnit", "has*star");
        for i in 0..7 {
            certificate.add("Subject.Country", format!("C{i}"));
        }
        RequestContext {
            client_id: "dev-1".into(),
            source_ip: Some("127.0.0.1".parse().unwrap()),
            certificate_id: "ab".repeat(32),
            certificate,
            thing: None,
        }
    }

    fn var(name: &str) -> Variable {
        Variable::parse(name)
    }

    #[test]
    fn multi_valued_attributes_give_the_first_an_index_or_the_list() {
        let c = context();
        assert_eq!(
            c.resolve(&var("iot:Certificate.Subject.Organization")),
            Some("First".into())
        );
        assert_eq!(
            c.resolve(&var("iot:Certificate.Subject.Organization.1")),
            Some("Second".into())
        );
        assert_eq!(
            c.resolve(&var("iot:Certificate.Subject.Organization.2")),
            None
        );
        assert_eq!(
            c.resolve_all(&var("iot:Certificate.Subject.Organization.List")),
            ["First", "Second"]
        );
        assert_eq!(
            c.resolve(&var("iot:Certificate.Subject.Organization.List")),
            None
        );
        assert_eq!(
            c.resolve_all(&var("iot:Certificate.Subject.Country.List"))
                .len(),
            5,
            "arrays are cut at five items"
        );
    }

    #[test]
    fn values_with_wildcards_are_not_substituted() {
        let c = context();
        let v = var("iot:Certificate.Subject.OrganizationalUnit");
        assert_eq!(c.resolve(&v), None);
        assert!(c.why_unresolved(&v).contains("wildcard"));
    }

    #[test]
    fn thing_variables_need_an_attached_thing_named_like_the_client_id() {
        let mut c = context();
        assert_eq!(c.resolve(&var("iot:Connection.Thing.ThingName")), None);
        assert_eq!(
            c.resolve(&var("iot:Connection.Thing.IsAttached")),
            Some("false".into())
        );
        assert!(
            c.why_unresolved(&var("iot:Connection.Thing.ThingName"))
                .contains("client id \"dev-1\"")
        );
        c.thing = Some(ThingRecord {
            name: "dev-1".into(),
            thing_type: None,
            attributes: [("floor".to_owned(), "3".to_owned())].into(),
            created_at: 0,
            thing_id: String::new(),
            version: 1,
        });
        assert_eq!(
            c.resolve(&var("iot:Connection.Thing.ThingName")),
            Some("dev-1".into())
        );
        assert_eq!(
            c.resolve(&var("iot:Connection.Thing.Attributes[floor]")),
            Some("3".into())
        );
        assert_eq!(c.resolve(&var("iot:Connection.Thing.ThingTypeName")), None);
        assert_eq!(
            c.resolve(&var("iot:Connection.Thing.IsAttached")),
            Some("true".into())
        );
    }

    #[test]
    fn available_keys_lists_the_certificate_variables_with_values() {
        let c = context();
        let keys = c.resolve_all(&var("iot:Certificate.AvailableKeys"));
        assert!(keys.contains(&"iot:Certificate.Subject.Organization".to_owned()));
        assert!(!keys.iter().any(|k| k.contains("CommonName")));
    }
}
