//! Access keys for the emulator's HTTPS API (an emulator extension: on AWS
//! they are IAM's). `iotcore credentials create` issues them; the API
//! verifies SigV4 signatures with them.

use std::net::IpAddr;
use std::time::Duration;

use super::{Control, ControlError};
use crate::ids::random_string;
use crate::policy::Principal;
use crate::store::CredentialRecord;

const KEY_ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// What [`Control::create_access_key`] issues.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessKeyOptions {
    /// An IoT policy that limits which operations the key may call, as an
    /// IAM policy does on AWS: each call is checked as action
    /// `iot:<OperationName>` (`iot:CreateThing`, `iot:GetThingShadow`,
    /// `iot:Publish`…) on the ARN of the resource it names (`thing/NAME`,
    /// `topic/TOPIC`…, or `*`); every operation when `None`.
    pub policy: Option<String>,
    /// Issue temporary credentials (an `ASIA…` key with a session token)
    /// valid this long.
    pub temporary: Option<Duration>,
}

impl Control {
    /// Issues an access key pair named `name` (who uses it).
    pub fn create_access_key(
        &self,
        name: &str,
        options: &AccessKeyOptions,
    ) -> Result<CredentialRecord, ControlError> {
        if name.is_empty() || name.len() > 128 {
            return Err(ControlError::invalid(
                "a credential's name must have 1 to 128 characters",
            ));
        }
        if let Some(policy) = &options.policy {
            self.require_policy(policy)?;
        }
        let now = crate::store::now_unix();
        let prefix = if options.temporary.is_some() {
            "ASIA"
        } else {
            "AKIA"
        };
        let record = CredentialRecord {
            access_key_id: format!("{prefix}{}", random_string(KEY_ID_ALPHABET, 16)),
            secret_access_key: random_string(SECRET_ALPHABET, 40),
            session_token: options
                .temporary
                .map(|_| random_string(SECRET_ALPHABET, 64)),
            name: name.to_owned(),
            policy: options.policy.clone(),
            created_at: now,
            expires_at: options
                .temporary
                .map(|d| now.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))),
        };
        self.store.add_credential(&record)?;
        Ok(record)
    }

    /// The access key `access_key_id`, if issued.
    pub fn access_key(
        &self,
        access_key_id: &str,
    ) -> Result<Option<CredentialRecord>, ControlError> {
        Ok(self.store.credential(access_key_id)?)
    }

    /// Every access key issued.
    pub fn list_access_keys(&self) -> Result<Vec<CredentialRecord>, ControlError> {
        Ok(self.store.list_credentials()?)
    }

    /// The policy that limits access key `record`, compiled for a request
    /// from `source_ip` (`${iot:ClientId}` is the key's name): `None` when the
    /// key may call every operation.
    pub(crate) fn access_key_principal(
        &self,
        record: &CredentialRecord,
        source_ip: Option<IpAddr>,
    ) -> Result<Option<Principal>, ControlError> {
        let Some(name) = &record.policy else {
            return Ok(None);
        };
        Principal::load_named(&self.store, &self.scope, name, &record.name, source_ip)
            .map(Some)
            .map_err(ControlError::from)
    }

    /// Deletes an access key; requests signed with it are refused from then on.
    pub fn delete_access_key(&self, access_key_id: &str) -> Result<(), ControlError> {
        if !self.store.delete_credential(access_key_id)? {
            return Err(ControlError::not_found(format!(
                "access key {access_key_id} does not exist"
            )));
        }
        Ok(())
    }
}
