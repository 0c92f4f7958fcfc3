//! The SigV4 presigned query of the WebSocket upgrade, as AWS's SDKs sign
//! it: `GET /mqtt`, service `iotdevicegateway`, the `host` header signed,
//! the empty body hashed, and the session token appended after signing
//! (AWS IoT refuses a signed `X-Amz-Security-Token`). The signing itself is
//! the official `aws-sigv4` crate's.

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    SessionTokenMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4::SigningParams;

use crate::aws_credentials::AwsCredentials;

/// The credential scope's service for MQTT over WebSocket.
pub(crate) const SERVICE: &str = "iotdevicegateway";
/// The path of the MQTT WebSocket endpoint.
pub(crate) const PATH: &str = "/mqtt";
/// How long the presigned URL is valid (`X-Amz-Expires`: aws-sigv4 always
/// sends one in query mode, and 86400 is what AWS's JavaScript and Go users
/// send). AWS applies its own clock-skew window to `X-Amz-Date` as well;
/// the client signs afresh on every connection attempt anyway.
const EXPIRES_IN: Duration = Duration::from_secs(86400);

/// `/mqtt?X-Amz-…`: the upgrade request's target, signed for `host`.
pub(crate) fn presign(
    host: &str,
    region: &str,
    credentials: &AwsCredentials,
    time: SystemTime,
) -> Result<String, String> {
    let identity = aws_credential_types::Credentials::new(
        credentials.access_key_id(),
        credentials.secret_access_key(),
        credentials.session_token().map(str::to_owned),
        None,
        "iotcore",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(EXPIRES_IN);
    settings.session_token_mode = SessionTokenMode::Exclude;
    let params = SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SERVICE)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let uri = format!("https://{host}{PATH}");
    let request = SignableRequest::new(
        "GET",
        uri.as_str(),
        [("host", host)].into_iter(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _signature) = sign(request, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    let mut signed = http::Request::builder()
        .uri(uri.as_str())
        .body(())
        .map_err(|e| e.to_string())?;
    instructions.apply_to_request_http1x(&mut signed);
    Ok(signed
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| PATH.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2015-08-30T12:36:00Z, the date of AWS's SigV4 test suite.
    fn test_time() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn query_param<'a>(target: &'a str, name: &str) -> Option<&'a str> {
        target
            .split_once('?')?
            .1
            .split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
    }

    #[test]
    fn the_signature_matches_an_independent_computation_with_expires() {
        // Vector C of the research notes: host only, X-Amz-Expires=86400,
        // computed with Python's hashlib and cross-checked with botocore.
        let credentials = AwsCredentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
        );
        let host = "example-ats.iot.us-east-1.amazonaws.com";
        let target = presign_at(host, &credentials);
        assert_eq!(
            query_param(&target, "X-Amz-Signature"),
            Some("999c76eab2847c8e3b2c5c2dcd94add1cb80e962d4f278b55043a9b4c66ceb0f"),
            "{target}"
        );
        assert_eq!(query_param(&target, "X-Amz-SignedHeaders"), Some("host"));
        assert_eq!(
            query_param(&target, "X-Amz-Credential"),
            Some("AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fiotdevicegateway%2Faws4_request")
        );
        assert!(target.starts_with("/mqtt?"), "{target}");
    }

    #[test]
    fn the_session_token_is_appended_after_signing_and_does_not_change_the_signature() {
        let host = "example-ats.iot.us-east-1.amazonaws.com";
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        let without = presign_at(host, &AwsCredentials::new("AKIDEXAMPLE", secret, None));
        let token = "tok/en+with=chars";
        let with = presign_at(
            host,
            &AwsCredentials::new("AKIDEXAMPLE", secret, Some(token.into())),
        );
        assert_eq!(
            query_param(&with, "X-Amz-Signature"),
            query_param(&without, "X-Amz-Signature")
        );
        assert!(
            with.ends_with("&X-Amz-Security-Token=tok%2Fen%2Bwith%3Dchars"),
            "{with}"
        );
    }

    fn presign_at(host: &str, credentials: &AwsCredentials) -> String {
        presign(host, "us-east-1", credentials, test_time()).unwrap()
    }
}
