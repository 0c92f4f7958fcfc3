//! Greengrass discovery: the JSON of
//! `GET /greengrass/discover/thing/<thingName>` and the connectivity
//! information of a core device.
//!
//! A client device (its IoT certificate, over mutual TLS) asks which
//! Greengrass core devices it may connect to; the answer lists one group per
//! core device it is associated with, each with the core's addresses
//! ([`ConnectivityInfo`], in the order the core reported them) and the CA
//! certificates that sign the core's local broker certificate.
//!
//! The field names are AWS's on the wire: `GGGroups`, `GGGroupId`, `Cores`,
//! `thingArn`, `Connectivity` with PascalCase `Id`/`HostAddress`/
//! `PortNumber`/`Metadata`, `CAs` (what AWS answers and what every AWS SDK
//! parses; the developer guide's generic example writes them in lowercase).
//! [`ConnectivityInfo`] is also the entry of the control plane's
//! `UpdateConnectivityInfo`/`GetConnectivityInfo`, which use the same names.
//!
//! ```
//! use iotcore_model::greengrass::DiscoverResponse;
//!
//! let body = r#"{"GGGroups":[{"GGGroupId":"greengrassV2-coreDevice-core1",
//!   "Cores":[{"thingArn":"arn:aws:iot:us-east-1:123456789012:thing/core1",
//!     "Connectivity":[{"Id":"lan","HostAddress":"192.168.1.10","PortNumber":8883,"Metadata":""}]}],
//!   "CAs":["-----BEGIN CERTIFICATE-----\n…\n-----END CERTIFICATE-----\n"]}]}"#;
//! let response: DiscoverResponse = serde_json::from_str(body)?;
//! let (group, core, address) = response.candidates().next().unwrap();
//! assert_eq!(group.id, "greengrassV2-coreDevice-core1");
//! assert_eq!(core.thing_arn, "arn:aws:iot:us-east-1:123456789012:thing/core1");
//! assert_eq!((address.host_address.as_str(), address.port), ("192.168.1.10", 8883));
//! # Ok::<(), serde_json::Error>(())
//! ```

use serde::{Deserialize, Serialize};

/// The prefix of a Greengrass V2 core device's group id in a discovery
/// response: `greengrassV2-coreDevice-<core thing name>`.
pub const CORE_DEVICE_GROUP_PREFIX: &str = "greengrassV2-coreDevice-";

/// The group id discovery gives core device `core_thing_name`.
///
/// ```
/// assert_eq!(
///     iotcore_model::greengrass::core_device_group_id("core1"),
///     "greengrassV2-coreDevice-core1"
/// );
/// ```
pub fn core_device_group_id(core_thing_name: &str) -> String {
    format!("{CORE_DEVICE_GROUP_PREFIX}{core_thing_name}")
}

/// One address of a core device's local broker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectivityInfo {
    /// An id the core chose for this address (AWS's IP detector uses the address itself).
    #[serde(rename = "Id", default)]
    pub id: String,
    /// A host name or an IP address.
    #[serde(rename = "HostAddress", default)]
    pub host_address: String,
    /// The local broker's port (8883 by default on a core).
    #[serde(rename = "PortNumber", default)]
    pub port: u16,
    /// Free text the core attached to the address.
    #[serde(rename = "Metadata", default)]
    pub metadata: String,
}

/// A core device in a discovery response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Core {
    /// The core device's thing ARN.
    #[serde(rename = "thingArn")]
    pub thing_arn: String,
    /// Its addresses, in the order to try them.
    #[serde(rename = "Connectivity", default)]
    pub connectivity: Vec<ConnectivityInfo>,
}

/// A group of a discovery response: with Greengrass V2, one core device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GgGroup {
    /// `greengrassV2-coreDevice-<core thing name>` (see [`core_device_group_id`]).
    #[serde(rename = "GGGroupId")]
    pub id: String,
    /// The group's cores.
    #[serde(rename = "Cores", default)]
    pub cores: Vec<Core>,
    /// PEM certificates of the CAs that sign the cores' broker certificates.
    #[serde(rename = "CAs", default)]
    pub cas: Vec<String>,
}

/// The 200 answer of Greengrass discovery.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoverResponse {
    /// One group per core device the thing is associated with (that has
    /// connectivity information).
    #[serde(rename = "GGGroups", default)]
    pub groups: Vec<GgGroup>,
}

impl DiscoverResponse {
    /// Every address to try, in order: each group's cores, each core's
    /// connectivity entries, with the group (whose [`GgGroup::cas`] verify
    /// the broker at that address) and the core.
    pub fn candidates(&self) -> impl Iterator<Item = (&GgGroup, &Core, &ConnectivityInfo)> {
        self.groups.iter().flat_map(|group| {
            group.cores.iter().flat_map(move |core| {
                core.connectivity
                    .iter()
                    .map(move |address| (group, core, address))
            })
        })
    }
}

/// The body AWS answers discovery with when the thing is not associated with
/// a core device that has connectivity information (HTTP 404).
pub const NOT_FOUND_MESSAGE: &str = "The thing provided for discovery was not found";

/// The body of discovery's 404: `{"errorMessage": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoverNotFound {
    /// [`NOT_FOUND_MESSAGE`] on AWS.
    #[serde(rename = "errorMessage")]
    pub error_message: String,
}

/// The body of discovery's 403: `{"message": null, "traceId": "<uuid>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoverForbidden {
    /// `null` on AWS.
    pub message: Option<String>,
    /// An id of the refused request.
    #[serde(rename = "traceId")]
    pub trace_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_names_are_aws_pascal_case() {
        let response = DiscoverResponse {
            groups: vec![GgGroup {
                id: core_device_group_id("c"),
                cores: vec![Core {
                    thing_arn: "arn:aws:iot:r:1:thing/c".into(),
                    connectivity: vec![ConnectivityInfo {
                        id: "a".into(),
                        host_address: "127.0.0.1".into(),
                        port: 8883,
                        metadata: String::new(),
                    }],
                }],
                cas: vec!["PEM".into()],
            }],
        };
        let json = serde_json::to_value(&response).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"GGGroups":[{"GGGroupId":"greengrassV2-coreDevice-c",
                "Cores":[{"thingArn":"arn:aws:iot:r:1:thing/c","Connectivity":[
                    {"Id":"a","HostAddress":"127.0.0.1","PortNumber":8883,"Metadata":""}]}],
                "CAs":["PEM"]}]})
        );
        let back: DiscoverResponse = serde_json::from_value(json).unwrap();
        assert_eq!(back, response);
    }

    #[test]
    fn candidates_run_through_groups_cores_and_addresses_in_order() {
        let address = |id: &str| ConnectivityInfo {
            id: id.into(),
            ..ConnectivityInfo::default()
        };
        let core = |arn: &str, ids: &[&str]| Core {
            thing_arn: arn.into(),
            connectivity: ids.iter().map(|i| address(i)).collect(),
        };
        let response = DiscoverResponse {
            groups: vec![
                GgGroup {
                    id: "g1".into(),
                    cores: vec![core("c1", &["a", "b"])],
                    cas: vec![],
                },
                GgGroup {
                    id: "g2".into(),
                    cores: vec![core("c2", &[]), core("c3", &["c"])],
                    cas: vec![],
                },
            ],
        };
        let order: Vec<(&str, &str, &str)> = response
            .candidates()
            .map(|(g, c, a)| (g.id.as_str(), c.thing_arn.as_str(), a.id.as_str()))
            .collect();
        assert_eq!(
            order,
            [("g1", "c1", "a"), ("g1", "c1", "b"), ("g2", "c3", "c")]
        );
    }

    #[test]
    fn missing_lists_are_empty_and_a_bad_port_is_an_error() {
        let r: DiscoverResponse = serde_json::from_str("{}").unwrap();
        assert!(r.groups.is_empty());
        let bad = r#"{"GGGroups":[{"GGGroupId":"g","Cores":[{"thingArn":"a",
            "Connectivity":[{"PortNumber":70000}]}]}]}"#;
        assert!(serde_json::from_str::<DiscoverResponse>(bad).is_err());
    }
}
