//! What AWS IoT Core knows about a connection when it evaluates a policy: the
//! client id, the source address, the certificate's attributes and the thing;
//! and, for `iot:Connect` only, what the CONNECT asks for
//! ([`ConnectAttributes`]).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use iotcore_mqtt::ProtocolVersion;
use iotcore_mqtt::packet::Connect;

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

/// The values of the multi-valued condition key `iot:ConnectAttributes`,
/// which AWS IoT Core sets on an `iot:Connect` request only: `PersistentConnect`
/// when the CONNECT asks for a persistent session, `LastWill` when it carries a
/// will (AWS IoT developer guide, "Using connectAttributes" and "Connect policy
/// examples"). A CONNECT asking for neither has no value: the key is absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ConnectAttributes {
    /// `PersistentConnect`: the session outlives the connection.
    pub persistent_connect: bool,
    /// `LastWill`: the CONNECT carries a will message.
    pub last_will: bool,
}

impl ConnectAttributes {
    /// A CONNECT asking for neither: the key is absent. Every request but
    /// `iot:Connect` is evaluated with these.
    pub const NONE: ConnectAttributes = ConnectAttributes {
        persistent_connect: false,
        last_will: false,
    };

    /// The value for a persistent session.
    pub const PERSISTENT_CONNECT: &'static str = "PersistentConnect";
    /// The value for a will.
    pub const LAST_WILL: &'static str = "LastWill";

    /// Every combination, [`ConnectAttributes::index`] order.
    pub(crate) const ALL: [ConnectAttributes; 4] = [
        ConnectAttributes::NONE,
        ConnectAttributes {
            persistent_connect: true,
            last_will: false,
        },
        ConnectAttributes {
            persistent_connect: false,
            last_will: true,
        },
        ConnectAttributes {
            persistent_connect: true,
            last_will: true,
        },
    ];

    /// The attributes of `connect`. MQTT 3.1.1: `PersistentConnect` when
    /// `cleanSession` is 0 (AWS: "You create an MQTT persistent session by
    /// sending a CONNECT message, setting the cleanSession flag to 0"). MQTT 5:
    /// when the Session Expiry Interval is above 0, so that the session
    /// outlives the connection, whatever Clean Start says (AWS does not say
    /// how it maps MQTT 5: unconfirmed). `LastWill` when it has a will.
    pub fn of(connect: &Connect) -> ConnectAttributes {
        let persistent_connect = match connect.protocol {
            ProtocolVersion::V311 => !connect.clean_start,
            ProtocolVersion::V5 => connect
                .properties
                .session_expiry_interval
                .is_some_and(|secs| secs > 0),
        };
        ConnectAttributes {
            persistent_connect,
            last_will: connect.will.is_some(),
        }
    }

    /// Whether the CONNECT asks for neither (the key is then absent).
    pub fn is_empty(self) -> bool {
        self == ConnectAttributes::NONE
    }

    /// The key's values: `PersistentConnect`, then `LastWill`.
    pub fn values(self) -> Vec<String> {
        let mut values = Vec::new();
        if self.persistent_connect {
            values.push(ConnectAttributes::PERSISTENT_CONNECT.to_owned());
        }
        if self.last_will {
            values.push(ConnectAttributes::LAST_WILL.to_owned());
        }
        values
    }

    /// This combination's position in [`ConnectAttributes::ALL`].
    pub(crate) fn index(self) -> usize {
        usize::from(self.persistent_connect) | usize::from(self.last_will) << 1
    }
}

impl fmt::Display for ConnectAttributes {
    /// `[PersistentConnect, LastWill]`, or `[]` (absent).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.values().join(", "))
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
            }
            | Kind::ConnectAttributes => None,
            Kind::Certificate { key, selector } => {
                self.certificate.select(key, *selector).into_iter().next()
            }
            Kind::Literal(c) => Some(c.to_string()),
        }
    }

    /// The values of a condition key in a request with `connect`'s attributes
    /// ([`ConnectAttributes::NONE`] for every request but `iot:Connect`):
    /// every value for a `.List` key and `iot:ConnectAttributes`, otherwise
    /// the one value [`RequestContext::resolve`] gives, or none.
    pub(crate) fn resolve_all(
        &self,
        variable: &Variable,
        connect: ConnectAttributes,
    ) -> Vec<String> {
        match variable.kind() {
            Kind::ConnectAttributes => connect.values(),
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
            Kind::ConnectAttributes => "a multi-valued condition key of iot:Connect, not a \
                 policy variable (use it in a ForAnyValue/ForAllValues condition)"
                .to_owned(),
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

    #[test]
    fn connect_attributes_come_from_the_session_asked_for_and_the_will() {
        use iotcore_mqtt::QoS;
        use iotcore_mqtt::packet::Will;
        let mut v311 = Connect::new(ProtocolVersion::V311, "dev-1", 30);
        assert_eq!(ConnectAttributes::of(&v311), ConnectAttributes::NONE);
        v311.clean_start = false;
        assert_eq!(
            ConnectAttributes::of(&v311).values(),
            ["PersistentConnect"],
            "cleanSession = 0"
        );
        v311.will = Some(Will::new("w", "gone", QoS::AtMostOnce, false));
        assert_eq!(
            ConnectAttributes::of(&v311).to_string(),
            "[PersistentConnect, LastWill]"
        );

        let mut v5 = Connect::new(ProtocolVersion::V5, "dev-1", 30);
        v5.clean_start = false;
        assert!(
            ConnectAttributes::of(&v5).is_empty(),
            "Clean Start 0 without a Session Expiry Interval: the session ends with the connection"
        );
        v5.properties.session_expiry_interval = Some(0);
        assert!(ConnectAttributes::of(&v5).is_empty());
        v5.clean_start = true;
        v5.properties.session_expiry_interval = Some(3600);
        assert_eq!(ConnectAttributes::of(&v5).values(), ["PersistentConnect"]);
        v5.will = Some(Will::new("w", "gone", QoS::AtLeastOnce, true));
        assert!(ConnectAttributes::of(&v5).last_will);
    }

    #[test]
    fn every_combination_of_connect_attributes_has_its_own_index() {
        for (i, attributes) in ConnectAttributes::ALL.into_iter().enumerate() {
            assert_eq!(attributes.index(), i, "{attributes}");
        }
        assert_eq!(ConnectAttributes::NONE.to_string(), "[]");
    }

    #[test]
    fn connect_attributes_are_a_condition_key_never_a_variable() {
        let c = context();
        let key = var("iot:ConnectAttributes");
        assert_eq!(c.resolve(&key), None);
        assert!(c.why_unresolved(&key).contains("multi-valued"));
        assert!(c.resolve_all(&key, ConnectAttributes::NONE).is_empty());
        assert_eq!(
            c.resolve_all(&key, ConnectAttributes::ALL[3]),
            ["PersistentConnect", "LastWill"]
        );
        assert!(
            c.resolve_all(&var("iot:ClientId"), ConnectAttributes::ALL[3]) == ["dev-1"],
            "other keys do not change"
        );
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
            c.resolve_all(
                &var("iot:Certificate.Subject.Organization.List"),
                ConnectAttributes::NONE
            ),
            ["First", "Second"]
        );
        assert_eq!(
            c.resolve(&var("iot:Certificate.Subject.Organization.List")),
            None
        );
        assert_eq!(
            c.resolve_all(
                &var("iot:Certificate.Subject.Country.List"),
                ConnectAttributes::NONE
            )
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
        let keys = c.resolve_all(
            &var("iot:Certificate.AvailableKeys"),
            ConnectAttributes::NONE,
        );
        assert!(keys.contains(&"iot:Certificate.Subject.Organization".to_owned()));
        assert!(!keys.iter().any(|k| k.contains("CommonName")));
    }
}
