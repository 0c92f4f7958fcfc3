//! Greengrass on the cloud side: core devices, the client devices associated
//! with them, their connectivity information and CA certificates, and
//! discovery.
//!
//! AWS's operations, with their shapes:
//! * `greengrassv2`: BatchAssociateClientDeviceWithCoreDevice,
//!   BatchDisassociateClientDeviceFromCoreDevice,
//!   ListClientDevicesAssociatedWithCoreDevice;
//! * `greengrass` (the V1 model, still what cores and the AWS CLI call):
//!   UpdateConnectivityInfo, GetConnectivityInfo, with PascalCase
//!   `ConnectivityInfo` entries;
//! * the private `greengrassv2-data` PutCertificateAuthorities, by which a
//!   core's client device auth component uploads its local CA (public here:
//!   [`Control::put_certificate_authorities`]).
//!
//! AWS creates a core device's record when the core first reports; here
//! [`Control::register_core_device`] does (and UpdateConnectivityInfo, which
//! only a core calls). [`Control::discover`] is what
//! `GET /greengrass/discover/thing/<thing>` decides, with AWS's order of
//! refusals.

use std::net::IpAddr;

use iotcore_model::greengrass::{ConnectivityInfo, Core, DiscoverResponse, GgGroup};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};

use super::page::paginate;
use super::{Control, ControlError, lenient};
use crate::policy::Reason;
use crate::store::{CertificateStatus, CoreDeviceRecord, StoreError, validate_thing_name};

/// The most entries one Batch(Dis)Associate call takes (AWS's model).
pub const MAX_BATCH_ENTRIES: usize = 100;

/// The action a device's policy must allow, on its thing's ARN, to discover.
pub const DISCOVER_ACTION: &str = "greengrass:Discover";

/// An entry of BatchAssociateClientDeviceWithCoreDevice and
/// BatchDisassociateClientDeviceFromCoreDevice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientDeviceEntry {
    /// The client device's thing name.
    pub thing_name: String,
}

/// BatchAssociateClientDeviceWithCoreDevice's and
/// BatchDisassociateClientDeviceFromCoreDevice's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchClientDevicesRequest {
    /// The core device's thing name.
    pub core_device_thing_name: String,
    /// The client devices (1 to 100).
    #[serde(default)]
    pub entries: Vec<ClientDeviceEntry>,
}

impl BatchClientDevicesRequest {
    /// A request for core `core` and client devices `things`.
    pub fn new<S: Into<String>>(
        core: &str,
        things: impl IntoIterator<Item = S>,
    ) -> BatchClientDevicesRequest {
        BatchClientDevicesRequest {
            core_device_thing_name: core.to_owned(),
            entries: things
                .into_iter()
                .map(|t| ClientDeviceEntry {
                    thing_name: t.into(),
                })
                .collect(),
        }
    }
}

/// An entry that could not be (dis)associated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientDeviceErrorEntry {
    /// The client device's thing name.
    pub thing_name: String,
    /// The error's code (`ResourceNotFoundException`, `ValidationException`).
    pub code: String,
    /// What went wrong.
    pub message: String,
}

/// BatchAssociateClientDeviceWithCoreDevice's and
/// BatchDisassociateClientDeviceFromCoreDevice's response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchClientDevicesResponse {
    /// The entries that failed; the others took effect.
    pub error_entries: Vec<ClientDeviceErrorEntry>,
}

/// ListClientDevicesAssociatedWithCoreDevice's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListClientDevicesRequest {
    /// The core device's thing name.
    pub core_device_thing_name: String,
    /// At most this many (1 to 100).
    #[serde(default, deserialize_with = "lenient::int")]
    pub max_results: Option<i64>,
    /// The token of the page to return.
    pub next_token: Option<String>,
}

/// A client device associated with a core device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssociatedClientDevice {
    /// Its thing name.
    pub thing_name: String,
    /// When it was associated, epoch seconds.
    pub association_timestamp: i64,
}

/// ListClientDevicesAssociatedWithCoreDevice's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListClientDevicesResponse {
    /// The client devices of this page, by thing name.
    pub associated_client_devices: Vec<AssociatedClientDevice>,
    /// The token of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// UpdateConnectivityInfo's request (AWS's PascalCase names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateConnectivityInfoRequest {
    /// The core's thing name.
    #[serde(rename = "ThingName")]
    pub thing_name: String,
    /// Its local broker's addresses, in the order client devices should try them.
    #[serde(rename = "ConnectivityInfo", default)]
    pub connectivity_info: Vec<ConnectivityInfo>,
}

/// UpdateConnectivityInfo's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateConnectivityInfoResponse {
    /// The new version of the connectivity information.
    #[serde(rename = "Version")]
    pub version: String,
    /// A message about the update.
    #[serde(rename = "message")]
    pub message: String,
}

/// GetConnectivityInfo's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetConnectivityInfoRequest {
    /// The core's thing name.
    #[serde(rename = "ThingName")]
    pub thing_name: String,
}

/// GetConnectivityInfo's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetConnectivityInfoResponse {
    /// The addresses, in order.
    #[serde(rename = "ConnectivityInfo")]
    pub connectivity_info: Vec<ConnectivityInfo>,
}

/// A core device as `iotcore greengrass list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CoreDevice {
    /// Its thing name.
    pub core_device_thing_name: String,
    /// Its thing ARN.
    pub thing_arn: String,
    /// Its local broker's addresses.
    pub connectivity_info: Vec<ConnectivityInfo>,
    /// Its client devices' thing names.
    pub client_devices: Vec<String>,
    /// How many CA certificates it uploaded.
    pub certificate_authorities: usize,
}

/// What discovery answers a client device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    /// 200: the groups of its core devices.
    Found(DiscoverResponse),
    /// 403: its policies do not allow [`DISCOVER_ACTION`] on its thing; why.
    Forbidden(String),
    /// 404: no associated core device has connectivity information.
    NotFound,
    /// No answer at all, the connection closed: the certificate is not
    /// ACTIVE or not attached to the thing; why.
    Refused(String),
}

impl Control {
    /// Makes thing `name` a Greengrass core device (what AWS does when the
    /// core first reports). Returns `false` if it was one already; fails with
    /// ResourceNotFound if the thing does not exist.
    pub fn register_core_device(&self, name: &str) -> Result<bool, ControlError> {
        validate_thing_name(name)?;
        Ok(self.store.register_core_device(name)?)
    }

    /// Every core device, with its connectivity and client devices.
    pub fn list_core_devices(&self) -> Result<Vec<CoreDevice>, ControlError> {
        self.store
            .list_core_devices()?
            .into_iter()
            .map(|core| {
                let client_devices = self
                    .store
                    .client_devices(&core.thing_name)?
                    .into_iter()
                    .map(|c| c.thing_name)
                    .collect();
                Ok(CoreDevice {
                    thing_arn: self.arn("thing", &core.thing_name),
                    core_device_thing_name: core.thing_name,
                    connectivity_info: core.connectivity,
                    client_devices,
                    certificate_authorities: core.certificate_authorities.len(),
                })
            })
            .collect()
    }

    /// BatchAssociateClientDeviceWithCoreDevice: each entry's thing becomes a
    /// client device of the core; an unknown or invalid thing is an error
    /// entry, the others are associated.
    pub fn batch_associate_client_device_with_core_device(
        &self,
        request: BatchClientDevicesRequest,
    ) -> Result<BatchClientDevicesResponse, ControlError> {
        self.batch_client_devices(request, |core, thing| {
            self.store.associate_client_device(core, thing)
        })
    }

    /// BatchDisassociateClientDeviceFromCoreDevice: a thing that was not
    /// associated is not an error.
    pub fn batch_disassociate_client_device_from_core_device(
        &self,
        request: BatchClientDevicesRequest,
    ) -> Result<BatchClientDevicesResponse, ControlError> {
        self.batch_client_devices(request, |core, thing| {
            self.store
                .disassociate_client_device(core, thing)
                .map(|_| ())
        })
    }

    fn batch_client_devices(
        &self,
        request: BatchClientDevicesRequest,
        apply: impl Fn(&str, &str) -> Result<(), StoreError>,
    ) -> Result<BatchClientDevicesResponse, ControlError> {
        let core = &request.core_device_thing_name;
        self.require_core(core)?;
        if request.entries.is_empty() || request.entries.len() > MAX_BATCH_ENTRIES {
            return Err(ControlError::invalid(format!(
                "entries must list 1 to {MAX_BATCH_ENTRIES} client devices, not {}",
                request.entries.len()
            )));
        }
        let mut error_entries = Vec::new();
        for entry in request.entries {
            let failed = validate_thing_name(&entry.thing_name)
                .and_then(|()| apply(core, &entry.thing_name))
                .err()
                .map(ControlError::from);
            if let Some(e) = failed {
                error_entries.push(ClientDeviceErrorEntry {
                    thing_name: entry.thing_name,
                    code: greengrass_error_name(&e).to_owned(),
                    message: e.message().to_owned(),
                });
            }
        }
        Ok(BatchClientDevicesResponse { error_entries })
    }

    /// ListClientDevicesAssociatedWithCoreDevice, by thing name.
    pub fn list_client_devices_associated_with_core_device(
        &self,
        request: ListClientDevicesRequest,
    ) -> Result<ListClientDevicesResponse, ControlError> {
        self.require_core(&request.core_device_thing_name)?;
        let clients = self.store.client_devices(&request.core_device_thing_name)?;
        let page = paginate(
            clients,
            |c| c.thing_name.as_str(),
            request.next_token.as_deref(),
            request.max_results,
            50,
            100,
        )?;
        Ok(ListClientDevicesResponse {
            associated_client_devices: page
                .items
                .into_iter()
                .map(|c| AssociatedClientDevice {
                    thing_name: c.thing_name,
                    association_timestamp: c.associated_at,
                })
                .collect(),
            next_token: page.next,
        })
    }

    /// UpdateConnectivityInfo: replaces the core's addresses (the thing
    /// becomes a core device if it was not one).
    pub fn update_connectivity_info(
        &self,
        request: UpdateConnectivityInfoRequest,
    ) -> Result<UpdateConnectivityInfoResponse, ControlError> {
        validate_thing_name(&request.thing_name)?;
        for (i, entry) in request.connectivity_info.iter().enumerate() {
            validate_connectivity(i, entry)?;
        }
        let version = self
            .store
            .set_connectivity(&request.thing_name, &request.connectivity_info)?;
        Ok(UpdateConnectivityInfoResponse {
            version: version.to_string(),
            message: format!(
                "the connectivity information of {} is at version {version}",
                request.thing_name
            ),
        })
    }

    /// GetConnectivityInfo: the core's addresses (none for a thing that is
    /// not a core device).
    pub fn get_connectivity_info(
        &self,
        request: GetConnectivityInfoRequest,
    ) -> Result<GetConnectivityInfoResponse, ControlError> {
        validate_thing_name(&request.thing_name)?;
        self.require_thing(&request.thing_name)?;
        let connectivity_info = self
            .store
            .core_device(&request.thing_name)?
            .map(|core| core.connectivity)
            .unwrap_or_default();
        Ok(GetConnectivityInfoResponse { connectivity_info })
    }

    /// PutCertificateAuthorities (AWS's private `greengrassv2-data`
    /// operation, by which a core uploads the CA of its local broker):
    /// replaces core device `core`'s CA certificates with `pems`, each one
    /// PEM certificate. Discovery returns them in `CAs`.
    pub fn put_certificate_authorities(
        &self,
        core: &str,
        pems: &[String],
    ) -> Result<(), ControlError> {
        self.require_core(core)?;
        for (i, pem) in pems.iter().enumerate() {
            let mut certificates = CertificateDer::pem_slice_iter(pem.as_bytes());
            let parsed = match (certificates.next(), certificates.next()) {
                (Some(Ok(der)), None) => x509_parser::parse_x509_certificate(der.as_ref())
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                (None, _) => Err("no PEM CERTIFICATE block".to_owned()),
                (Some(Err(e)), _) => Err(e.to_string()),
                (Some(Ok(_)), Some(_)) => Err("more than one certificate".to_owned()),
            };
            parsed.map_err(|why| {
                ControlError::invalid(format!(
                    "certificate authority {i} is not one PEM certificate: {why}"
                ))
            })?;
        }
        Ok(self.store.set_core_certificate_authorities(core, pems)?)
    }

    /// What `GET /greengrass/discover/thing/<thing>` answers a client that
    /// presented certificate `certificate_id` from `source_ip`, in AWS's
    /// order: the certificate must be ACTIVE and attached to the thing (else
    /// no answer), its policies must allow [`DISCOVER_ACTION`] on the thing's
    /// ARN (else 403; thing policy variables have no value here, as on AWS),
    /// and a core device it is associated with must have connectivity
    /// information (else 404). One group per such core, cores by name.
    pub fn discover(
        &self,
        certificate_id: &str,
        thing: &str,
        source_ip: Option<IpAddr>,
    ) -> Result<Discovery, ControlError> {
        let Some(certificate) = self.store.certificate(certificate_id)? else {
            return Ok(Discovery::Refused(format!(
                "certificate {certificate_id} is not registered"
            )));
        };
        if certificate.status != CertificateStatus::Active {
            return Ok(Discovery::Refused(format!(
                "certificate {certificate_id} is {}",
                certificate.status
            )));
        }
        if !certificate.things.iter().any(|t| t == thing) {
            return Ok(Discovery::Refused(format!(
                "certificate {certificate_id} is not attached to thing {thing:?}"
            )));
        }
        // No client id over HTTP: no thing either, so thing policy variables
        // stay unresolved (AWS: not supported in the Discover policy).
        let (principal, _) = self.principal(certificate_id, "", source_ip)?;
        let thing_arn = self.arn("thing", thing);
        match principal.evaluate_operation(DISCOVER_ACTION, &thing_arn) {
            Reason::Allowed(_) => {}
            Reason::ExplicitDeny(statement) => {
                return Ok(Discovery::Forbidden(format!(
                    "{DISCOVER_ACTION} on {thing_arn} is denied by {statement}"
                )));
            }
            Reason::NoAllow { .. } => {
                return Ok(Discovery::Forbidden(format!(
                    "no statement of the certificate's policies allows {DISCOVER_ACTION} \
                     on {thing_arn} (thing policy variables have no value here)"
                )));
            }
        }
        let groups: Vec<GgGroup> = self
            .store
            .cores_of_client_device(thing)?
            .into_iter()
            .filter(|core| !core.connectivity.is_empty())
            .map(|core| self.group(core))
            .collect();
        Ok(if groups.is_empty() {
            Discovery::NotFound
        } else {
            Discovery::Found(DiscoverResponse { groups })
        })
    }

    fn group(&self, core: CoreDeviceRecord) -> GgGroup {
        GgGroup {
            id: iotcore_model::greengrass::core_device_group_id(&core.thing_name),
            cores: vec![Core {
                thing_arn: self.arn("thing", &core.thing_name),
                connectivity: core.connectivity,
            }],
            cas: core.certificate_authorities,
        }
    }

    /// Fails with ResourceNotFound unless thing `name` is a core device.
    fn require_core(&self, name: &str) -> Result<CoreDeviceRecord, ControlError> {
        validate_thing_name(name)?;
        self.store.core_device(name)?.ok_or_else(|| {
            ControlError::not_found(format!(
                "{}; make it one with `iotcore greengrass core create {name}`",
                StoreError::CoreDeviceNotFound(name.to_owned())
            ))
            .with_resource_type(name, "coreDevice")
        })
    }
}

/// Greengrass's name for a control error's code (its models name the
/// invalid-request error ValidationException).
pub(crate) fn greengrass_error_name(e: &ControlError) -> &'static str {
    match e.code() {
        super::ErrorCode::InvalidRequest => "ValidationException",
        super::ErrorCode::ResourceNotFound => "ResourceNotFoundException",
        super::ErrorCode::InternalFailure => "InternalServerException",
        other => other.name(),
    }
}

fn validate_connectivity(index: usize, entry: &ConnectivityInfo) -> Result<(), ControlError> {
    let host = &entry.host_address;
    if host.is_empty() || host.len() > 253 || host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(ControlError::invalid(format!(
            "ConnectivityInfo[{index}].HostAddress {host:?} is not a host name or an IP address"
        )));
    }
    Ok(())
}
