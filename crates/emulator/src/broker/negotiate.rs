//! What the broker grants a CONNECT: session expiry, client id checks, the way
//! AWS IoT Core does (docs/aws-iot-core-behaviour.md §1.3, §1.4). The keep-alive
//! is the server session's business (`iotcore_mqtt::server::ServerConfig`).

use std::time::Duration;

use iotcore_mqtt::ProtocolVersion;

use crate::config::{EmulatorConfig, Limits};

/// How long a session outlives its connection, and whether the client is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SessionExpiry {
    /// Zero: the session ends with the connection.
    pub(crate) expiry: Duration,
    /// MQTT 5: the value to put in CONNACK's Session Expiry Interval when the
    /// broker granted less than requested.
    pub(crate) adjusted: Option<u32>,
}

/// The session expiry granted to a CONNECT.
///
/// MQTT 3.1.1: `cleanSession=0` gives the account's persistent session expiry
/// (AWS default 1 hour); `cleanSession=1` none. MQTT 5: the Session Expiry
/// Interval asked for (absent = 0), capped at the maximum (AWS: up to 7 days),
/// the cap being reported back in CONNACK.
pub(crate) fn session_expiry(
    protocol: ProtocolVersion,
    clean_start: bool,
    requested: Option<u32>,
    config: &EmulatorConfig,
) -> SessionExpiry {
    match protocol {
        ProtocolVersion::V311 => SessionExpiry {
            expiry: if clean_start {
                Duration::ZERO
            } else {
                config.persistent_session_expiry
            },
            adjusted: None,
        },
        ProtocolVersion::V5 => {
            let requested = requested.unwrap_or(0);
            let max = u32::try_from(config.max_session_expiry.as_secs()).unwrap_or(u32::MAX);
            SessionExpiry {
                expiry: Duration::from_secs(requested.min(max).into()),
                adjusted: (requested > max).then_some(max),
            }
        }
    }
}

/// Why a client id is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ClientIdError {
    /// Longer than AWS's 128 bytes.
    #[error("client id is {len} bytes long, AWS IoT Core allows {max}")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Starts with `$`, a prefix AWS reserves for the ids it generates.
    #[error("client ids starting with '$' are reserved by AWS IoT Core")]
    Reserved,
}

/// The prefix of the client ids AWS IoT Core assigns (`$GEN/<uuid>`). Clients
/// may not send it themselves: it starts with the reserved `$` (§1.3).
pub(crate) const ASSIGNED_CLIENT_ID_PREFIX: &str = "$GEN/";

/// The client id a connection goes by: the one its CONNECT carries, or for an
/// empty one a new, unique `$GEN/<uuid>`, the form AWS IoT Core assigns (§1.3).
/// The second value is true when the id was assigned (MQTT 5 clients are told
/// it in CONNACK's Assigned Client Identifier).
///
/// MQTT 3.1.1 allows an empty id only with CleanSession=1 (the server session
/// refuses the other case with CONNACK 0x02); MQTT 5 allows it with either
/// Clean Start, and the session then belongs to the assigned id, which no
/// client can send back: AWS refuses `$`-prefixed ids, so it cannot be resumed.
pub(crate) fn effective_client_id(requested: &str) -> (String, bool) {
    if requested.is_empty() {
        (
            format!("{ASSIGNED_CLIENT_ID_PREFIX}{}", crate::ids::new_uuid()),
            true,
        )
    } else {
        (requested.to_owned(), false)
    }
}

/// Checks a client id against AWS's rules (§1.3: at most 128 bytes, no `$` prefix).
pub(crate) fn check_client_id(client_id: &str, limits: &Limits) -> Result<(), ClientIdError> {
    if client_id.len() > limits.max_client_id_bytes {
        return Err(ClientIdError::TooLong {
            len: client_id.len(),
            max: limits.max_client_id_bytes,
        });
    }
    if client_id.starts_with('$') {
        return Err(ClientIdError::Reserved);
    }
    Ok(())
}

/// The SDK metrics AWS SDKs append to the CONNECT user name after its last `?`
/// (`?SDK=PythonV2&Version=1.2.3`, `…&Platform=Linux`), for the log. AWS
/// ignores them for authentication and so does the emulator (§1.11).
pub(crate) fn sdk_metrics(username: Option<&str>) -> Option<&str> {
    username?.rsplit_once('?').map(|(_, metrics)| metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mqtt311_sessions_last_the_configured_persistent_expiry() {
        let config = EmulatorConfig::new("/nonexistent");
        let persistent = session_expiry(ProtocolVersion::V311, false, None, &config);
        assert_eq!(persistent.expiry, Duration::from_secs(3600));
        assert_eq!(persistent.adjusted, None);
        let clean = session_expiry(ProtocolVersion::V311, true, None, &config);
        assert_eq!(clean.expiry, Duration::ZERO);
    }

    #[test]
    fn mqtt5_session_expiry_is_honoured_up_to_the_maximum() {
        let config = EmulatorConfig::new("/nonexistent");
        let v5 = |sei| session_expiry(ProtocolVersion::V5, false, sei, &config);
        assert_eq!(v5(None).expiry, Duration::ZERO);
        assert_eq!(v5(Some(60)).expiry, Duration::from_secs(60));
        assert_eq!(v5(Some(60)).adjusted, None);
        assert_eq!(v5(Some(604_800)).adjusted, None);
        let capped = v5(Some(u32::MAX));
        assert_eq!(capped.expiry, Duration::from_secs(604_800));
        assert_eq!(capped.adjusted, Some(604_800));
    }

    #[test]
    fn client_ids_are_checked_like_aws() {
        let limits = Limits::default();
        assert_eq!(check_client_id("dev1", &limits), Ok(()));
        assert_eq!(check_client_id(&"x".repeat(128), &limits), Ok(()));
        assert_eq!(
            check_client_id(&"x".repeat(129), &limits),
            Err(ClientIdError::TooLong { len: 129, max: 128 })
        );
        assert_eq!(
            check_client_id("$GEN/abc", &limits),
            Err(ClientIdError::Reserved)
        );
    }

    #[test]
    fn an_empty_client_id_is_given_a_unique_gen_id_and_others_are_kept() {
        assert_eq!(effective_client_id("dev1"), ("dev1".to_owned(), false));
        let (first, assigned) = effective_client_id("");
        assert!(assigned);
        let uuid = first.strip_prefix("$GEN/").expect("AWS's $GEN/ prefix");
        assert_eq!(uuid.len(), 36, "{first}");
        assert_ne!(effective_client_id("").0, first, "each one is new");
        assert_eq!(
            check_client_id(&first, &Limits::default()),
            Err(ClientIdError::Reserved),
            "a client cannot send an assigned id back"
        );
    }

    #[test]
    fn sdk_metrics_are_what_follows_the_last_question_mark() {
        assert_eq!(sdk_metrics(None), None);
        assert_eq!(sdk_metrics(Some("alice")), None);
        assert_eq!(
            sdk_metrics(Some("?SDK=PythonV2&Version=1.2.3")),
            Some("SDK=PythonV2&Version=1.2.3")
        );
        assert_eq!(
            sdk_metrics(Some("u?x=1?SDK=C&Platform=Linux")),
            Some("SDK=C&Platform=Linux")
        );
    }
}
