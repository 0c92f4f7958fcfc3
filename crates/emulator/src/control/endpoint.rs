//! DescribeEndpoint: where devices connect.

use serde::{Deserialize, Serialize};

use super::{Control, ControlError};

/// The endpoint types AWS's DescribeEndpoint knows.
const ENDPOINT_TYPES: [&str; 4] = [
    "iot:Data",
    "iot:Data-ATS",
    "iot:CredentialProvider",
    "iot:Jobs",
];

/// DescribeEndpoint's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DescribeEndpointRequest {
    /// iot:Data, iot:Data-ATS, iot:CredentialProvider or iot:Jobs.
    pub endpoint_type: Option<String>,
}

/// DescribeEndpoint's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeEndpointResponse {
    /// The host devices connect to; `host:port` when the emulator's MQTT
    /// port is not AWS's 8883.
    pub endpoint_address: String,
}

impl Control {
    /// DescribeEndpoint: every endpoint type answers the emulator's MQTT
    /// endpoint (one listener serves them all).
    pub fn describe_endpoint(
        &self,
        request: DescribeEndpointRequest,
    ) -> Result<DescribeEndpointResponse, ControlError> {
        if let Some(kind) = &request.endpoint_type {
            if !ENDPOINT_TYPES.contains(&kind.as_str()) {
                return Err(ControlError::invalid(format!(
                    "endpointType {kind:?} is not one of {}",
                    ENDPOINT_TYPES.join(", ")
                )));
            }
        }
        Ok(DescribeEndpointResponse {
            endpoint_address: self.data_endpoint.clone(),
        })
    }
}
