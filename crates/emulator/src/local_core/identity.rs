//! The core device's own certificate in the cloud: what Greengrass's
//! installer provisions (a certificate attached to the core's thing and to
//! `GreengrassV2IoTThingPolicy`). The core's bridge connects with it.

use std::path::Path;

use crate::control::{
    Control, CreateKeysAndCertificateRequest, CreatePolicyRequest, PolicyTargetRequest,
    ThingPrincipalRequest,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::pki::{DeviceCredentials, certificate_id};
use crate::things::{DeviceFiles, write_device_files};

use super::LocalCoreError;
use super::sync::ignore_exists;

/// The cloud policy the core's certificate gets: the one AWS's Greengrass
/// installer creates with `--provision true` (Greengrass developer guide,
/// "Install with automatic resource provisioning").
pub const CORE_CLOUD_POLICY_NAME: &str = "GreengrassV2IoTThingPolicy";

fn core_cloud_policy() -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["iot:Publish", "iot:Subscribe", "iot:Receive", "iot:Connect", "greengrass:*"],
            "Resource": "*"
        }]
    })
    .to_string()
}

/// The core's certificate files under `dir`, created in the cloud (ACTIVE,
/// attached to thing `name` and to [`CORE_CLOUD_POLICY_NAME`]) when missing.
pub(crate) fn core_identity(
    cloud: &Control,
    name: &str,
    dir: &Path,
) -> Result<(DeviceFiles, DeviceCredentials), LocalCoreError> {
    let files = DeviceFiles::in_dir(dir, name);
    if let (Ok(certificate_pem), Ok(private_key_pem)) = (
        std::fs::read_to_string(&files.certificate),
        std::fs::read_to_string(&files.private_key),
    ) {
        let certificate_id = CertificateDer::from_pem_slice(certificate_pem.as_bytes())
            .map(|der| certificate_id(&der))
            .map_err(|e| LocalCoreError::Identity {
                path: files.certificate.clone(),
                reason: e.to_string(),
            })?;
        let credentials = DeviceCredentials {
            certificate_pem,
            private_key_pem,
            certificate_id,
        };
        return Ok((files, credentials));
    }
    let created = cloud.create_keys_and_certificate(CreateKeysAndCertificateRequest {
        set_as_active: Some(true),
    })?;
    cloud.attach_thing_principal(ThingPrincipalRequest {
        thing_name: name.to_owned(),
        principal: created.certificate_arn.clone(),
        thing_principal_type: None,
    })?;
    ignore_exists(cloud.create_policy(CreatePolicyRequest {
        policy_name: CORE_CLOUD_POLICY_NAME.to_owned(),
        policy_document: core_cloud_policy(),
        tags: None,
    }))?;
    cloud.attach_policy(PolicyTargetRequest {
        policy_name: CORE_CLOUD_POLICY_NAME.to_owned(),
        target: created.certificate_arn,
    })?;
    let credentials = DeviceCredentials {
        certificate_pem: created.certificate_pem,
        private_key_pem: created.key_pair.private_key,
        certificate_id: created.certificate_id,
    };
    let files = write_device_files(name, &credentials, cloud.pki().ca_pem(), dir)?;
    tracing::info!(core = name, certificate = %files.certificate.display(), "created the core's certificate");
    Ok((files, credentials))
}
