//! SigV4 verification of requests to the emulator's HTTPS API and of
//! MQTT-over-WebSocket handshakes (`crate::accept::websocket`).
//!
//! Two forms are accepted (research: wave2-protocols.md §1.1–1.2, §5.1):
//!
//! * **header**: `Authorization: AWS4-HMAC-SHA256 Credential=AKID/yyyymmdd/region/service/aws4_request,
//!   SignedHeaders=…, Signature=…` with an `X-Amz-Date` header: what boto3, the
//!   AWS CLI and the AWS SDKs send;
//! * **query** (presigned): `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`,
//!   `X-Amz-SignedHeaders`, `X-Amz-Signature`, optional `X-Amz-Expires` and
//!   `X-Amz-Security-Token` query parameters: what the device SDKs send to open
//!   an MQTT WebSocket. As AWS IoT does, the session token is *not* part of the
//!   signed query (the CRT's `omit_session_token`); a presigner that signed it is
//!   refused (aws-sdk-js#1456).
//!
//! The signature is never recomputed by hand: the received request is rebuilt
//! (only the headers named in `SignedHeaders`, the raw percent-encoded path as
//! received, the query re-encoded from its decoded pairs, the body) and signed
//! again by the `aws-sigv4` crate with the request's own `X-Amz-Date` and
//! credential scope; the two signatures are compared in constant time.
//! `aws-sigv4`'s defaults are those of the non-S3 services: the canonical path is
//! the received path normalized and percent-encoded a second time (a label
//! `a%2Fb` is `a%252Fb` in the canonical request, as botocore and smithy-rs
//! sign it). For the query form, the presigned parameters are handed to the
//! signer as ordinary query parameters and `x-amz-date` is left out of the
//! signed headers, which yields exactly the presigned canonical request (the
//! signer's own presigning mode always adds `X-Amz-Expires`, which the CRT does
//! not send). To see a canonical request, run with
//! `RUST_LOG=aws_sigv4=trace`.
//!
//! Checks run in two steps so that the server can refuse a request before
//! reading its body: [`Claim::parse`] (syntax), [`Claim::admit`] (credential
//! scope, clock skew, access key, session token), then [`Admitted::verify`]
//! (the signature over the body).

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SigningInstructions, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use http::HeaderMap;
use http::header::{AUTHORIZATION, HOST};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use time::OffsetDateTime;

use super::error::AwsError;

/// The signing names (credential-scope services) the HTTPS API accepts: `iot`
/// (control plane), `execute-api` (what botocore signed `iot` with before
/// 2023-04), `iotdata` (HTTP data plane), `iotdevicegateway` (the name the
/// device SDKs use for the data endpoint), `iot-jobs-data` and `greengrass`.
pub(crate) const API_SIGNING_NAMES: &[&str] = &[
    "iot",
    "execute-api",
    "iotdata",
    "iotdevicegateway",
    "iot-jobs-data",
    "greengrass",
];

/// The signing names accepted for an MQTT WebSocket handshake:
/// `iotdevicegateway` (every current SDK) and `iotdata` (older clients).
pub(crate) const WEBSOCKET_SIGNING_NAMES: &[&str] = &["iotdevicegateway", "iotdata"];

/// How far `X-Amz-Date` may be from the server's clock, either way: 5 minutes,
/// as AWS ("Signature expired: … (… - 5 min.)").
pub(crate) const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// The longest `X-Amz-Expires` SigV4 allows: 7 days.
const MAX_EXPIRES_SECS: u64 = 7 * 24 * 3600;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const TERMINATOR: &str = "aws4_request";
const X_AMZ_DATE: &str = "x-amz-date";
const X_AMZ_SECURITY_TOKEN: &str = "x-amz-security-token";
const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

const Q_ALGORITHM: &str = "X-Amz-Algorithm";
const Q_CREDENTIAL: &str = "X-Amz-Credential";
const Q_DATE: &str = "X-Amz-Date";
const Q_SIGNED_HEADERS: &str = "X-Amz-SignedHeaders";
const Q_SIGNATURE: &str = "X-Amz-Signature";
const Q_EXPIRES: &str = "X-Amz-Expires";
const Q_SECURITY_TOKEN: &str = "X-Amz-Security-Token";

/// RFC 3986 unreserved characters stay, everything else is percent-encoded:
/// SigV4's canonical encoding of query keys and values.
const QUERY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// What the emulator knows of an access key: its secret, the session token
/// issued with it (temporary credentials) and when it expires.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct StoredCredential {
    /// The secret access key.
    pub(crate) secret_access_key: String,
    /// The session token issued with temporary credentials; when set, requests
    /// must present it.
    pub(crate) session_token: Option<String>,
    /// When temporary credentials stop being valid.
    pub(crate) expires_at: Option<SystemTime>,
}

impl fmt::Debug for StoredCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredCredential")
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What a verifier accepts: signing names, region, clock skew.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SigV4Policy {
    /// The credential-scope services accepted.
    pub(crate) signing_names: &'static [&'static str],
    /// The only region accepted; `None` accepts any (the AWS CLI signs with
    /// whatever region the user's profile names).
    pub(crate) region: Option<String>,
    /// How far `X-Amz-Date` may be from now, either way.
    pub(crate) max_skew: Duration,
}

impl SigV4Policy {
    /// The HTTPS API's policy: [`API_SIGNING_NAMES`], any region, ±5 minutes.
    pub(crate) fn api() -> SigV4Policy {
        SigV4Policy {
            signing_names: API_SIGNING_NAMES,
            region: None,
            max_skew: MAX_CLOCK_SKEW,
        }
    }

    /// The MQTT WebSocket policy: [`WEBSOCKET_SIGNING_NAMES`], any region,
    /// ±5 minutes.
    pub(crate) fn websocket() -> SigV4Policy {
        SigV4Policy {
            signing_names: WEBSOCKET_SIGNING_NAMES,
            ..SigV4Policy::api()
        }
    }

    /// The same policy accepting only `region`.
    pub(crate) fn with_region(self, region: impl Into<String>) -> SigV4Policy {
        SigV4Policy {
            region: Some(region.into()),
            ..self
        }
    }
}

/// The parts of a received request a signature covers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequestParts<'a> {
    /// The method, e.g. `GET`.
    pub(crate) method: &'a str,
    /// The path as received, still percent-encoded.
    pub(crate) raw_path: &'a str,
    /// The query's percent-decoded `(key, value)` pairs in received order.
    pub(crate) query: &'a [(String, String)],
    /// The headers.
    pub(crate) headers: &'a HeaderMap,
    /// The request URI's authority (HTTP/2 `:authority`), used for `host` when
    /// there is no `Host` header.
    pub(crate) authority: Option<&'a str>,
}

impl<'a> RequestParts<'a> {
    /// The parts of a received request: its method, URI (path and
    /// authority) and headers, and its query already decoded.
    pub(crate) fn of(
        method: &'a http::Method,
        uri: &'a http::Uri,
        headers: &'a HeaderMap,
        query: &'a [(String, String)],
    ) -> RequestParts<'a> {
        RequestParts {
            method: method.as_str(),
            raw_path: uri.path(),
            query,
            headers,
            authority: uri.authority().map(|a| a.as_str()),
        }
    }
}

/// Who signed a verified request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Verified {
    /// The access key id.
    pub(crate) access_key_id: String,
    /// The credential scope's service, e.g. `iot`.
    pub(crate) signing_name: String,
    /// The credential scope's region.
    pub(crate) region: String,
}

/// Where the signature was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SignatureForm {
    /// The `Authorization` header.
    Header,
    /// Presigned query parameters.
    Query,
}

/// What a request claims about its signature, parsed but not yet checked.
#[derive(Clone, Debug)]
pub(crate) struct Claim {
    form: SignatureForm,
    access_key_id: String,
    region: String,
    service: String,
    date_text: String,
    date: SystemTime,
    signed_headers: Vec<String>,
    signature: String,
    expires: Option<Duration>,
    session_token: Option<String>,
}

/// A claim whose scope, time and credentials passed; only the signature is
/// left to check.
#[derive(Debug)]
pub(crate) struct Admitted {
    claim: Claim,
    secret_access_key: String,
}

/// Verifies a request in one call: `Ok(None)` when it carries no SigV4 at all
/// (neither an `Authorization` header nor presigned parameters).
pub(crate) fn authenticate(
    parts: &RequestParts<'_>,
    body: &[u8],
    policy: &SigV4Policy,
    now: SystemTime,
    lookup: impl Fn(&str) -> Option<StoredCredential>,
) -> Result<Option<Verified>, AwsError> {
    let Some(claim) = Claim::parse(parts)? else {
        return Ok(None);
    };
    claim
        .admit(policy, now, lookup)?
        .verify(parts, body)
        .map(Some)
}

impl Claim {
    /// Reads the signature's parts from the `Authorization` header or, without
    /// one, from the presigned query parameters; `Ok(None)` if there is neither.
    pub(crate) fn parse(parts: &RequestParts<'_>) -> Result<Option<Claim>, AwsError> {
        if let Some(value) = parts.headers.get(AUTHORIZATION) {
            let Ok(text) = value.to_str() else {
                return Err(AwsError::incomplete_signature(
                    "The Authorization header is not printable ASCII",
                ));
            };
            return parse_header_form(text.trim(), parts.headers).map(Some);
        }
        let presigned = parts
            .query
            .iter()
            .any(|(k, _)| k == Q_ALGORITHM || k == Q_CREDENTIAL || k == Q_SIGNATURE);
        if presigned {
            return parse_query_form(parts.query).map(Some);
        }
        Ok(None)
    }

    /// Checks the credential scope against `policy`, `X-Amz-Date` (and
    /// `X-Amz-Expires`) against `now`, then the access key and its session token
    /// against `lookup`.
    pub(crate) fn admit(
        self,
        policy: &SigV4Policy,
        now: SystemTime,
        lookup: impl Fn(&str) -> Option<StoredCredential>,
    ) -> Result<Admitted, AwsError> {
        if !policy.signing_names.contains(&self.service.as_str()) {
            return Err(AwsError::invalid_signature(format!(
                "Credential should be scoped to correct service: '{}'. ",
                policy.signing_names.join("' or '")
            )));
        }
        if let Some(region) = &policy.region {
            if *region != self.region {
                return Err(AwsError::invalid_signature(format!(
                    "Credential should be scoped to a valid region, not '{}'. \
                     This emulator's region is '{region}'.",
                    self.region
                )));
            }
        }
        self.check_time(policy.max_skew, now)?;
        let id = &self.access_key_id;
        let Some(stored) = lookup(id) else {
            tracing::info!(access_key_id = %id, "SigV4 refused: unknown access key (never issued by `iotcore credentials create`, or deleted)");
            return Err(AwsError::unrecognized_client());
        };
        if stored.expires_at.is_some_and(|at| at <= now) {
            tracing::info!(access_key_id = %id, "SigV4 refused: the temporary credentials have expired");
            return Err(AwsError::expired_token());
        }
        let token_problem = match (&stored.session_token, &self.session_token) {
            (None, None) => None,
            (Some(issued), Some(presented)) => (!same_bytes(issued, presented))
                .then_some("the session token is not the one issued with the key"),
            (Some(_), None) => Some(
                "temporary credentials need their session token (X-Amz-Security-Token), \
                 which is missing",
            ),
            (None, Some(_)) => Some("a session token was sent with a long-term key"),
        };
        if let Some(problem) = token_problem {
            tracing::info!(access_key_id = %id, "SigV4 refused: {problem}");
            return Err(AwsError::unrecognized_client());
        }
        Ok(Admitted {
            claim: self,
            secret_access_key: stored.secret_access_key,
        })
    }

    fn check_time(&self, max_skew: Duration, now: SystemTime) -> Result<(), AwsError> {
        let skew_minutes = max_skew.as_secs() / 60;
        if let Some(latest) = now.checked_add(max_skew) {
            if self.date > latest {
                return Err(AwsError::invalid_signature(format!(
                    "Signature not yet current: {} is still later than {} ({} + {skew_minutes} min.)",
                    self.date_text,
                    amz_date(latest),
                    amz_date(now),
                )));
            }
        }
        if let Some(earliest) = now.checked_sub(max_skew) {
            if self.date < earliest {
                return Err(AwsError::invalid_signature(format!(
                    "Signature expired: {} is now earlier than {} ({} - {skew_minutes} min.)",
                    self.date_text,
                    amz_date(earliest),
                    amz_date(now),
                )));
            }
        }
        if let Some(expires) = self.expires {
            if self.date.checked_add(expires).is_some_and(|end| end < now) {
                return Err(AwsError::invalid_signature(format!(
                    "Signature expired: {} plus X-Amz-Expires={} s is now earlier than {}",
                    self.date_text,
                    expires.as_secs(),
                    amz_date(now),
                )));
            }
        }
        Ok(())
    }
}

impl Admitted {
    /// Signs the rebuilt request with `aws-sigv4` and compares the signatures.
    pub(crate) fn verify(
        self,
        parts: &RequestParts<'_>,
        body: &[u8],
    ) -> Result<Verified, AwsError> {
        let claim = self.claim;
        let expected = expected_signature(&claim, &self.secret_access_key, parts, body)?;
        if !same_bytes(&expected, &claim.signature) {
            tracing::debug!(
                access_key_id = %claim.access_key_id,
                signed_headers = %claim.signed_headers.join(";"),
                "SigV4 signature mismatch (RUST_LOG=aws_sigv4=trace shows the canonical request)"
            );
            return Err(AwsError::signature_mismatch());
        }
        Ok(Verified {
            access_key_id: claim.access_key_id,
            signing_name: claim.service,
            region: claim.region,
        })
    }
}

fn parse_header_form(text: &str, headers: &HeaderMap) -> Result<Claim, AwsError> {
    let (algorithm, rest) = text.split_once(' ').unwrap_or((text, ""));
    if algorithm != ALGORITHM && algorithm.starts_with("AWS4-") {
        return Err(AwsError::incomplete_signature(format!(
            "Unsupported AWS 'algorithm': '{algorithm}'. This emulator verifies {ALGORITHM} (SigV4) only."
        )));
    }
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    if algorithm == ALGORITHM {
        for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, value)) = part.split_once('=') else {
                return Err(AwsError::incomplete_signature(format!(
                    "'{part}' not a valid key=value pair (missing equal-sign) in Authorization header: '{text}'."
                )));
            };
            match key.trim() {
                "Credential" => credential = Some(value.trim()),
                "SignedHeaders" => signed_headers = Some(value.trim()),
                "Signature" => signature = Some(value.trim()),
                _ => {}
            }
        }
    }
    let date = headers.get(X_AMZ_DATE);
    let mut missing = String::new();
    for (name, value) in [
        ("Credential", credential),
        ("Signature", signature),
        ("SignedHeaders", signed_headers),
    ] {
        if value.is_none_or(str::is_empty) {
            missing.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }
    if date.is_none() {
        missing.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header \
             (this emulator reads 'X-Amz-Date' only). ",
        );
    }
    let (Some(credential), Some(signed_headers), Some(signature), Some(date), true) = (
        credential,
        signed_headers,
        signature,
        date,
        missing.is_empty(),
    ) else {
        return Err(AwsError::incomplete_signature(format!(
            "{missing}Authorization={text}"
        )));
    };
    let date_text = date.to_str().unwrap_or_default();
    let session_token = match headers.get(X_AMZ_SECURITY_TOKEN) {
        Some(token) => Some(
            token
                .to_str()
                .map_err(|_| AwsError::unrecognized_client())?
                .to_owned(),
        ),
        None => None,
    };
    build_claim(
        SignatureForm::Header,
        credential,
        date_text,
        signed_headers,
        signature,
        None,
        session_token,
    )
}

fn parse_query_form(query: &[(String, String)]) -> Result<Claim, AwsError> {
    let mut found: [Option<&str>; 7] = [None; 7];
    const NAMES: [&str; 7] = [
        Q_ALGORITHM,
        Q_CREDENTIAL,
        Q_DATE,
        Q_SIGNED_HEADERS,
        Q_SIGNATURE,
        Q_EXPIRES,
        Q_SECURITY_TOKEN,
    ];
    for (key, value) in query {
        if let Some(i) = NAMES.iter().position(|n| n == key) {
            if found[i].replace(value).is_some() {
                return Err(AwsError::incomplete_signature(format!(
                    "The query parameter '{key}' appears more than once"
                )));
            }
        }
    }
    let [
        algorithm,
        credential,
        date,
        signed_headers,
        signature,
        expires,
        token,
    ] = found;
    let (Some(algorithm), Some(credential), Some(date), Some(signed_headers), Some(signature)) =
        (algorithm, credential, date, signed_headers, signature)
    else {
        return Err(AwsError::incomplete_signature(
            "AWS query-string parameters must include 'X-Amz-Algorithm', 'X-Amz-Credential', \
             'X-Amz-Signature', 'X-Amz-SignedHeaders', 'X-Amz-Date'. \
             Re-examine the query-string parameters.",
        ));
    };
    if algorithm != ALGORITHM {
        return Err(AwsError::incomplete_signature(format!(
            "Unsupported AWS 'algorithm': '{algorithm}'. This emulator verifies {ALGORITHM} (SigV4) only."
        )));
    }
    let expires = match expires {
        None => None,
        Some(text) => match text.parse::<u64>() {
            Ok(secs) if secs <= MAX_EXPIRES_SECS => Some(Duration::from_secs(secs)),
            Ok(_) => {
                return Err(AwsError::incomplete_signature(format!(
                    "X-Amz-Expires must be less than a week (in seconds) that is {MAX_EXPIRES_SECS}"
                )));
            }
            Err(_) => {
                return Err(AwsError::incomplete_signature(format!(
                    "X-Amz-Expires must be a whole number of seconds, got '{text}'"
                )));
            }
        },
    };
    build_claim(
        SignatureForm::Query,
        credential,
        date,
        signed_headers,
        signature,
        expires,
        token.map(str::to_owned),
    )
}

fn build_claim(
    form: SignatureForm,
    credential: &str,
    date_text: &str,
    signed_headers: &str,
    signature: &str,
    expires: Option<Duration>,
    session_token: Option<String>,
) -> Result<Claim, AwsError> {
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, scope_date, region, service, terminator] = scope[..] else {
        return Err(AwsError::incomplete_signature(format!(
            "Credential must have exactly 5 slash-delimited elements, \
             e.g. keyid/date/region/service/term, got '{credential}'"
        )));
    };
    if terminator != TERMINATOR {
        return Err(AwsError::invalid_signature(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{terminator}'."
        )));
    }
    let Some(date) = parse_amz_date(date_text) else {
        return Err(AwsError::incomplete_signature(format!(
            "Date must be in ISO-8601 'basic format'. Got '{date_text}'. \
             See http://en.wikipedia.org/wiki/ISO_8601"
        )));
    };
    if !date_text.starts_with(scope_date) || scope_date.len() != 8 {
        return Err(AwsError::invalid_signature(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
             '{scope_date}' != '{}', from '{date_text}'.",
            date_text.get(..8).unwrap_or(date_text)
        )));
    }
    let signed_headers: Vec<String> = signed_headers.split(';').map(str::to_owned).collect();
    if !signed_headers.iter().any(|h| h == "host") {
        return Err(AwsError::incomplete_signature(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    Ok(Claim {
        form,
        access_key_id: access_key_id.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        date_text: date_text.to_owned(),
        date,
        signed_headers,
        signature: signature.to_owned(),
        expires,
        session_token,
    })
}

/// The signature `aws-sigv4` computes for the request as received.
fn expected_signature(
    claim: &Claim,
    secret_access_key: &str,
    parts: &RequestParts<'_>,
    body: &[u8],
) -> Result<String, AwsError> {
    let headers = signed_header_values(claim, parts)?;
    let payload = match claim.form {
        SignatureForm::Header => payload_for_header_form(parts.headers, body)?,
        SignatureForm::Query => SignableBody::Bytes(body),
    };
    let excluded = match claim.form {
        SignatureForm::Header => Vec::new(),
        SignatureForm::Query => vec![Cow::Borrowed(X_AMZ_DATE)],
    };
    let uri = rebuilt_uri(claim.form, parts);
    let key = SigningKey {
        access_key_id: &claim.access_key_id,
        secret_access_key,
        session_token: None,
    };
    let scope = Scope {
        region: &claim.region,
        service: &claim.service,
        time: claim.date,
    };
    let request = SignableRequest::new(
        parts.method,
        uri,
        headers.iter().map(|(k, v)| (*k, v.as_str())),
        payload,
    )
    .map_err(|e| {
        tracing::debug!("the request cannot be rebuilt for SigV4 verification: {e}");
        AwsError::signature_mismatch()
    })?;
    let (instructions, signature) = sign_v4(request, &key, &scope, Some(excluded))
        .map_err(|e| {
            tracing::debug!("SigV4 verification could not sign the rebuilt request: {e}");
            AwsError::signature_mismatch()
        })?
        .into_parts();
    // The signer lists the headers it was given (plus x-amz-date in the header
    // form); a claimed list it cannot reproduce (a signed header absent from the
    // request, a repeated name, x-amz-date unsigned) is a mismatch.
    let reproduced = instructions
        .headers()
        .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, value)| value.split("SignedHeaders=").nth(1))
        .and_then(|rest| rest.split(',').next());
    let claimed = claim.signed_headers.join(";");
    if reproduced != Some(claimed.as_str()) {
        tracing::debug!(
            "SigV4: the request signs headers {claimed:?} but only {reproduced:?} can be rebuilt from it"
        );
        return Err(AwsError::signature_mismatch());
    }
    Ok(signature)
}

/// The `(name, value)` pairs of the headers in `SignedHeaders`, every value of
/// a repeated header in received order; `host` from the `Host` header or the
/// URI's authority.
fn signed_header_values<'a>(
    claim: &'a Claim,
    parts: &RequestParts<'_>,
) -> Result<Vec<(&'a str, String)>, AwsError> {
    let mut out = Vec::new();
    for name in &claim.signed_headers {
        if name == "host" {
            let host = match parts.headers.get(HOST) {
                Some(v) => std::str::from_utf8(v.as_bytes()).ok().map(str::to_owned),
                None => parts.authority.map(str::to_owned),
            };
            let Some(host) = host else {
                tracing::debug!("SigV4: 'host' is signed but the request has no Host");
                return Err(AwsError::signature_mismatch());
            };
            out.push((name.as_str(), host));
            continue;
        }
        for value in parts.headers.get_all(name.as_str()) {
            let Ok(value) = std::str::from_utf8(value.as_bytes()) else {
                tracing::debug!("SigV4: signed header {name} is not UTF-8");
                return Err(AwsError::signature_mismatch());
            };
            out.push((name.as_str(), value.to_owned()));
        }
    }
    Ok(out)
}

/// The payload a header-form signature covers: the body's SHA-256, or
/// `UNSIGNED-PAYLOAD` when the client said so in `x-amz-content-sha256` (which
/// must otherwise be the body's SHA-256).
fn payload_for_header_form<'b>(
    headers: &HeaderMap,
    body: &'b [u8],
) -> Result<SignableBody<'b>, AwsError> {
    let Some(declared) = headers.get(X_AMZ_CONTENT_SHA256) else {
        return Ok(SignableBody::Bytes(body));
    };
    if declared == UNSIGNED_PAYLOAD {
        return Ok(SignableBody::UnsignedPayload);
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body);
    if declared.as_bytes() != hex::encode(digest.as_ref()).as_bytes() {
        return Err(AwsError::invalid_signature(
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        ));
    }
    Ok(SignableBody::Bytes(body))
}

/// `https://emulator.invalid` + the raw path + the query re-encoded from its
/// decoded pairs (the presigned form without `X-Amz-Signature` and
/// `X-Amz-Security-Token`). The authority is a placeholder: `host` always comes
/// from the request's headers.
fn rebuilt_uri(form: SignatureForm, parts: &RequestParts<'_>) -> String {
    let mut uri = format!("https://emulator.invalid{}", parts.raw_path);
    let mut separator = '?';
    for (key, value) in parts.query {
        if form == SignatureForm::Query && (key == Q_SIGNATURE || key == Q_SECURITY_TOKEN) {
            continue;
        }
        uri.push(separator);
        uri.extend(utf8_percent_encode(key, QUERY_ENCODE));
        uri.push('=');
        uri.extend(utf8_percent_encode(value, QUERY_ENCODE));
        separator = '&';
    }
    uri
}

/// Why `aws-sigv4` could not sign a request (a header value or URI it
/// refuses, a missing signing parameter).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct SigningError(String);

/// An access key to sign with.
pub(crate) struct SigningKey<'a> {
    /// The access key id.
    pub(crate) access_key_id: &'a str,
    /// The secret access key.
    pub(crate) secret_access_key: &'a str,
    /// The session token, signed as `x-amz-security-token` when set.
    pub(crate) session_token: Option<&'a str>,
}

/// A credential scope and signing time.
pub(crate) struct Scope<'a> {
    /// The region, e.g. `us-east-1`.
    pub(crate) region: &'a str,
    /// The signing name, e.g. `iot`.
    pub(crate) service: &'a str,
    /// The signing time (`X-Amz-Date`).
    pub(crate) time: SystemTime,
}

/// Signs `request` in header mode with `aws-sigv4`'s defaults for non-S3
/// services; `excluded_headers` replaces the signer's default exclusions
/// (`None` keeps them). Shared by the verifier and the API client.
pub(crate) fn sign_v4(
    request: SignableRequest<'_>,
    key: &SigningKey<'_>,
    scope: &Scope<'_>,
    excluded_headers: Option<Vec<Cow<'static, str>>>,
) -> Result<aws_sigv4::SigningOutput<SigningInstructions>, SigningError> {
    let identity = Credentials::new(
        key.access_key_id,
        key.secret_access_key,
        key.session_token.map(str::to_owned),
        None,
        "iotcore-emulator",
    )
    .into();
    let mut settings = SigningSettings::default();
    if let Some(excluded) = excluded_headers {
        settings.excluded_headers = Some(excluded);
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(scope.region)
        .name(scope.service)
        .time(scope.time)
        .settings(settings)
        .build()
        .map_err(|e| SigningError(e.to_string()))?
        .into();
    sign(request, &params).map_err(|e| SigningError(e.to_string()))
}

/// Compares two strings in constant time (for equal lengths).
fn same_bytes(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

/// Parses SigV4's `yyyymmddThhmmssZ`.
fn parse_amz_date(text: &str) -> Option<SystemTime> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let parsed = time::PrimitiveDateTime::parse(text, format).ok()?;
    Some(parsed.assume_utc().into())
}

/// Formats `t` as SigV4's `yyyymmddThhmmssZ`.
pub(crate) fn amz_date(t: SystemTime) -> String {
    let t = OffsetDateTime::from(t);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests;
