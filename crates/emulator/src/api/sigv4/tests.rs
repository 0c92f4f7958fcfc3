//! Unit tests of SigV4 verification: AWS's signing test suite, the presigned
//! WebSocket vectors of research §1.4, round trips through `aws-sigv4`'s
//! signer, and every refusal.

use http::{HeaderMap, HeaderName, HeaderValue};

use super::*;
use crate::api::query::parse_query;

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const TOKEN: &str = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";

fn example_key(id: &str) -> Option<StoredCredential> {
    (id == AKID).then(|| StoredCredential {
        secret_access_key: SECRET.to_owned(),
        session_token: None,
        expires_at: None,
    })
}

fn temporary_key(id: &str) -> Option<StoredCredential> {
    example_key(id).map(|c| StoredCredential {
        session_token: Some(TOKEN.to_owned()),
        ..c
    })
}

fn at(date: &str) -> SystemTime {
    parse_amz_date(date).unwrap()
}

/// A received request: what the server hands the verifier.
#[derive(Clone, Debug)]
struct Raw {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Raw {
    /// Parses `METHOD target HTTP/1.1`, `Name:value` lines, a blank line and a body.
    fn parse(text: &str) -> Raw {
        let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
        let mut lines = head.lines();
        let mut request_line = lines.next().unwrap().split(' ');
        let method = request_line.next().unwrap().to_owned();
        let target = request_line.next().unwrap();
        let mut headers = HeaderMap::new();
        for line in lines {
            let (name, value) = line.split_once(':').unwrap();
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value.trim()).unwrap(),
            );
        }
        Raw::new(&method, target, headers, body.as_bytes())
    }

    fn new(method: &str, target: &str, headers: HeaderMap, body: &[u8]) -> Raw {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Raw {
            method: method.to_owned(),
            path: path.to_owned(),
            query: parse_query(query).unwrap(),
            headers,
            body: body.to_vec(),
        }
    }

    fn parts(&self) -> RequestParts<'_> {
        RequestParts {
            method: &self.method,
            raw_path: &self.path,
            query: &self.query,
            headers: &self.headers,
            authority: None,
        }
    }

    fn verify(
        &self,
        policy: &SigV4Policy,
        now: SystemTime,
        lookup: impl Fn(&str) -> Option<StoredCredential>,
    ) -> Result<Option<Verified>, AwsError> {
        authenticate(&self.parts(), &self.body, policy, now, lookup)
    }

    fn set(&mut self, name: &'static str, value: &str) -> &mut Self {
        self.headers
            .insert(name, HeaderValue::from_str(value).unwrap());
        self
    }
}

/// A request signed by `aws-sigv4` as the API client signs it: `headers` are
/// sent and signed, `host` is added.
fn signed(
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    scope: &Scope<'_>,
    session_token: Option<&str>,
) -> Raw {
    let host = "127.0.0.1:8443";
    let mut all: Vec<(&str, &str)> = vec![("host", host)];
    all.extend_from_slice(headers);
    let request = SignableRequest::new(
        method,
        format!("https://{host}{target}"),
        all.iter().copied(),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let key = SigningKey {
        access_key_id: AKID,
        secret_access_key: SECRET,
        session_token,
    };
    let (instructions, _) = sign_v4(request, &key, scope, None).unwrap().into_parts();
    let mut map = HeaderMap::new();
    for (name, value) in all.iter().copied().chain(instructions.headers()) {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    Raw::new(method, target, map, body)
}

const NOW: &str = "20260501T100000Z";

fn iot_scope() -> Scope<'static> {
    Scope {
        region: "us-east-1",
        service: "iot",
        time: at(NOW),
    }
}

fn signed_iot(method: &str, target: &str, body: &[u8]) -> Raw {
    let headers: &[(&str, &str)] = if body.is_empty() {
        &[]
    } else {
        &[("content-type", "application/json")]
    };
    signed(method, target, headers, body, &iot_scope(), None)
}

fn refused(raw: &Raw, policy: &SigV4Policy, now: SystemTime) -> AwsError {
    raw.verify(policy, now, example_key)
        .expect_err("the request must be refused")
}

fn accepted(raw: &Raw) -> Verified {
    raw.verify(&SigV4Policy::api(), at(NOW), example_key)
        .expect("the request must verify")
        .expect("the request is signed")
}

fn authorization(raw: &Raw) -> String {
    raw.headers[AUTHORIZATION].to_str().unwrap().to_owned()
}

// ---------------------------------------------------------------------------
// AWS's SigV4 test suite (header form), as shipped with aws-sigv4 1.3
// (aws-signing-test-suite/v4, taken from awslabs/aws-c-auth). Service
// "service" or "lambda", secret SECRET.

const SUITE: &[(&str, &str, &str)] = &[
    (
        "get-vanilla",
        "20150830T123600Z",
        "GET / HTTP/1.1\n\
         Host:example.amazonaws.com\n\
         X-Amz-Date:20150830T123600Z\n\
         Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    ),
    (
        "get-vanilla-query-order-key-case",
        "20150830T123600Z",
        "GET /?Param2=value2&Param1=value1 HTTP/1.1\n\
         Host:example.amazonaws.com\n\
         X-Amz-Date:20150830T123600Z\n\
         Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    ),
    (
        "get-vanilla-empty-query-key",
        "20150830T123600Z",
        "GET /?Param1=value1 HTTP/1.1\n\
         Host:example.amazonaws.com\n\
         X-Amz-Date:20150830T123600Z\n\
         Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb",
    ),
    (
        "get-vanilla-query-unreserved",
        "20150830T123600Z",
        "GET /?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz HTTP/1.1\n\
         Host:example.amazonaws.com\n\
         X-Amz-Date:20150830T123600Z\n\
         Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
    ),
    (
        // The suite's key is U+1234 raw; on the wire it is percent-encoded.
        "get-vanilla-utf8-query",
        "20150830T123600Z",
        "GET /?%E1%88%B4=bar HTTP/1.1\n\
         Host:example.amazonaws.com\n\
         X-Amz-Date:20150830T123600Z\n\
         Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
    ),
    (
        "get-header-key-duplicate",
        "20150830T123600Z",
        "GET / HTTP/1.1\n\
         Host:example.amazonaws.com\n\
         My-Header1:value2\n\
         My-Header1:value2\n\
         My-Header1:value1\n\
         X-Amz-Date:20150830T123600Z\n\
         Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
    ),
    (
        "get-header-value-order",
        "20150830T123600Z",
        "GET / HTTP/1.1\n\
         Host:example.amazonaws.com\n\
         My-Header1:value4\n\
         My-Header1:value1\n\
         My-Header1:value3\n\
         My-Header1:value2\n\
         X-Amz-Date:20150830T123600Z\n\
         Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
    ),
    (
        "get-header-value-trim",
        "20150830T123600Z",
        "GET / HTTP/1.1\n\
         Host:example.amazonaws.com\n\
         My-Header1: value1\n\
         My-Header2: \"a   b   c\"\n\
         X-Amz-Date:20150830T123600Z\n\
         Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;my-header2;x-amz-date, Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
    ),
    (
        "get-slashes-normalized",
        "20150830T123600Z",
        "GET //example// HTTP/1.1\n\
         Host:example.amazonaws.com\n\
         X-Amz-Date:20150830T123600Z\n\
         Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84",
    ),
    (
        "post-x-www-form-urlencoded",
        "20150830T123600Z",
        "POST / HTTP/1.1\n\
         Content-Type:application/x-www-form-urlencoded\n\
         Host:example.amazonaws.com\n\
         Content-Length:13\n\
         X-Amz-Date:20150830T123600Z\n\
         x-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e\n\
         Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date, Signature=d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b\n\
         \n\
         Param1=value1",
    ),
    (
        // The path's %3A are encoded a second time in the canonical request.
        "double-url-encode",
        "20210511T154045Z",
        "POST /2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-west-2%3A892717189312%3Afunction%3Amy-rusty-fun/invocations HTTP/1.1\n\
         Host:lambda.us-east-2.amazonaws.com\n\
         X-Amz-Date:20210511T154045Z\n\
         Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20210511/us-east-2/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=4b93abbcc68be32bd64c18e2c71150660ab4c29bbd6c32a383a7517a88fc1804",
    ),
];

fn suite_policy() -> SigV4Policy {
    SigV4Policy {
        signing_names: &["service", "lambda"],
        ..SigV4Policy::api()
    }
}

#[test]
fn every_header_form_vector_of_the_aws_test_suite_verifies() {
    for (name, date, text) in SUITE {
        let raw = Raw::parse(text);
        let verified = raw
            .verify(&suite_policy(), at(date), example_key)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .unwrap_or_else(|| panic!("{name}: not seen as signed"));
        assert_eq!(verified.access_key_id, AKID, "{name}");
    }
}

#[test]
fn every_vector_of_the_aws_test_suite_fails_once_one_signed_part_changes() {
    for (name, date, text) in SUITE {
        let mut raw = Raw::parse(text);
        raw.set("x-amz-date", &amz_date(at(date) + Duration::from_secs(1)));
        let error = raw.verify(&suite_policy(), at(date), example_key);
        assert!(
            error.is_err(),
            "{name}: a changed X-Amz-Date still verifies"
        );
        let mut raw = Raw::parse(text);
        raw.path.push('x');
        let error = raw
            .verify(&suite_policy(), at(date), example_key)
            .unwrap_err();
        assert_eq!(error, AwsError::signature_mismatch(), "{name}");
    }
}

#[test]
fn the_suites_session_token_vector_verifies_when_that_token_was_issued() {
    let raw = Raw::parse(
        "GET / HTTP/1.1\n\
         Host:example.amazonaws.com\n\
         X-Amz-Security-Token:6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267\n\
         X-Amz-Date:20150830T123600Z\n\
         Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
    );
    let now = at("20150830T123600Z");
    assert!(
        raw.verify(&suite_policy(), now, temporary_key)
            .unwrap()
            .is_some()
    );
    // The same key without a token issued: the presented token is not one of ours.
    assert_eq!(
        raw.verify(&suite_policy(), now, example_key).unwrap_err(),
        AwsError::unrecognized_client()
    );
}

// ---------------------------------------------------------------------------
// Presigned WebSocket handshakes: research wave2-protocols.md §1.4.

const WS_HOST: &str = "example-ats.iot.us-east-1.amazonaws.com";
const WS_DATE: &str = "20150830T123600Z";
const CREDENTIAL: &str = "AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fiotdevicegateway%2Faws4_request";

/// The handshake as the CRT sends it (query parameters in the CRT's order);
/// `crt` adds the headers a real handshake carries.
fn handshake(signed_headers: &str, expires: Option<u32>, token: bool, signature: &str) -> Raw {
    let mut target = format!(
        "/mqtt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={CREDENTIAL}\
         &X-Amz-Date={WS_DATE}&X-Amz-SignedHeaders={}",
        signed_headers.replace(';', "%3B")
    );
    if let Some(expires) = expires {
        target.push_str(&format!("&X-Amz-Expires={expires}"));
    }
    if token {
        target.push_str(&format!("&X-Amz-Security-Token={TOKEN}"));
    }
    target.push_str(&format!("&X-Amz-Signature={signature}"));
    let mut headers = HeaderMap::new();
    headers.insert(HOST, HeaderValue::from_static(WS_HOST));
    if signed_headers.contains("connection") {
        for (name, value) in [
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "13"),
            ("sec-websocket-protocol", "mqtt"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    Raw::new("GET", &target, headers, b"")
}

fn ws_verify(
    raw: &Raw,
    lookup: impl Fn(&str) -> Option<StoredCredential>,
) -> Result<Option<Verified>, AwsError> {
    raw.verify(&SigV4Policy::websocket(), at(WS_DATE), lookup)
}

#[test]
fn presigned_vector_a_host_only_without_expires_verifies() {
    let raw = handshake(
        "host",
        None,
        false,
        "026c20a61bae0c9e109ab3720b96164d965f64dfc0dd03bfc9f1152ab1d323f9",
    );
    let verified = ws_verify(&raw, example_key).unwrap().unwrap();
    assert_eq!(
        verified,
        Verified {
            access_key_id: AKID.into(),
            signing_name: "iotdevicegateway".into(),
            region: "us-east-1".into(),
        }
    );
}

#[test]
fn presigned_vector_a_prime_the_crts_connection_and_host_verifies() {
    let raw = handshake(
        "connection;host",
        None,
        false,
        "bb97ceda63bdd9199ada8c5ce76411245451e9449f3ef5bfcb5ebb278816da2e",
    );
    assert!(ws_verify(&raw, example_key).unwrap().is_some());
}

#[test]
fn presigned_vector_b_an_unsigned_session_token_verifies_against_the_issued_one() {
    let raw = handshake(
        "connection;host",
        None,
        true,
        "bb97ceda63bdd9199ada8c5ce76411245451e9449f3ef5bfcb5ebb278816da2e",
    );
    assert!(ws_verify(&raw, temporary_key).unwrap().is_some());
    let mut other = StoredCredential {
        session_token: Some("another-token".into()),
        ..temporary_key(AKID).unwrap()
    };
    assert_eq!(
        ws_verify(&raw, |_| Some(other.clone())).unwrap_err(),
        AwsError::unrecognized_client()
    );
    other.session_token = None;
    assert_eq!(
        ws_verify(&raw, |_| Some(other.clone())).unwrap_err(),
        AwsError::unrecognized_client(),
        "a token presented for long-term credentials is refused"
    );
}

#[test]
fn presigned_vector_b_without_its_token_is_refused_when_one_was_issued() {
    let raw = handshake(
        "connection;host",
        None,
        false,
        "bb97ceda63bdd9199ada8c5ce76411245451e9449f3ef5bfcb5ebb278816da2e",
    );
    assert_eq!(
        ws_verify(&raw, temporary_key).unwrap_err(),
        AwsError::unrecognized_client()
    );
}

#[test]
fn presigned_vectors_c_with_expires_verify() {
    let c = handshake(
        "host",
        Some(86400),
        false,
        "999c76eab2847c8e3b2c5c2dcd94add1cb80e962d4f278b55043a9b4c66ceb0f",
    );
    assert!(ws_verify(&c, example_key).unwrap().is_some());
    let c_prime = handshake(
        "connection;host",
        Some(86400),
        false,
        "ff4ce23890890239f7dead6507ebee8451c8260977a526a06c1e7fc86906cd35",
    );
    assert!(ws_verify(&c_prime, example_key).unwrap().is_some());
}

#[test]
fn presigned_vector_d_a_signed_session_token_is_refused_as_aws_iot_does() {
    let raw = handshake(
        "host",
        None,
        true,
        "f2c509e15591fbfee3e022fd8e25c662bb12a6772970d8c0aae674c5bae65da2",
    );
    assert_eq!(
        ws_verify(&raw, temporary_key).unwrap_err(),
        AwsError::signature_mismatch()
    );
}

#[test]
fn presigned_parameters_arrive_in_any_order() {
    let mut raw = handshake(
        "host",
        None,
        false,
        "026c20a61bae0c9e109ab3720b96164d965f64dfc0dd03bfc9f1152ab1d323f9",
    );
    raw.query.reverse();
    assert!(ws_verify(&raw, example_key).unwrap().is_some());
}

#[test]
fn presigned_refusals() {
    let good = handshake(
        "host",
        Some(86400),
        false,
        "999c76eab2847c8e3b2c5c2dcd94add1cb80e962d4f278b55043a9b4c66ceb0f",
    );
    let without = |name: &str| {
        let mut raw = good.clone();
        raw.query.retain(|(k, _)| k != name);
        raw
    };
    for name in [
        Q_ALGORITHM,
        Q_CREDENTIAL,
        Q_DATE,
        Q_SIGNED_HEADERS,
        Q_SIGNATURE,
    ] {
        let error = ws_verify(&without(name), example_key).unwrap_err();
        assert_eq!(
            error.code(),
            "IncompleteSignatureException",
            "without {name}"
        );
        assert!(error.message().contains("must include"), "{error}");
    }

    let mut twice = good.clone();
    twice.query.push((Q_SIGNATURE.into(), "00".into()));
    let error = ws_verify(&twice, example_key).unwrap_err();
    assert!(error.message().contains("more than once"), "{error}");

    let with = |name: &str, value: &str| {
        let mut raw = good.clone();
        for (k, v) in &mut raw.query {
            if k == name {
                *v = value.to_owned();
            }
        }
        raw
    };
    let error = ws_verify(&with(Q_ALGORITHM, "AWS4-HMAC-SHA1"), example_key).unwrap_err();
    assert!(
        error.message().contains("Unsupported AWS 'algorithm'"),
        "{error}"
    );
    let error = ws_verify(&with(Q_EXPIRES, "604801"), example_key).unwrap_err();
    assert!(error.message().contains("less than a week"), "{error}");
    let error = ws_verify(&with(Q_EXPIRES, "soon"), example_key).unwrap_err();
    assert!(error.message().contains("whole number"), "{error}");
    let error = ws_verify(&with(Q_SIGNATURE, &"0".repeat(64)), example_key).unwrap_err();
    assert_eq!(error, AwsError::signature_mismatch());

    // The control plane's signing names are not the WebSocket's.
    let mut iot = good.clone();
    for (k, v) in &mut iot.query {
        if k == Q_CREDENTIAL {
            *v = v.replace("iotdevicegateway", "iot");
        }
    }
    let error = ws_verify(&iot, example_key).unwrap_err();
    assert_eq!(error.code(), "InvalidSignatureException");
    assert!(error.message().contains("correct service"), "{error}");

    // X-Amz-Expires=60 and 2 minutes later: expired, though within the skew.
    let short = with(Q_EXPIRES, "60");
    let later = at(WS_DATE) + Duration::from_secs(120);
    let error = short
        .verify(&SigV4Policy::websocket(), later, example_key)
        .unwrap_err();
    assert_eq!(error.code(), "InvalidSignatureException");
    assert!(error.message().contains("X-Amz-Expires=60"), "{error}");

    // X-Amz-Expires=86400 does not extend the 5-minute window (research §1.2 step 7).
    let error = good
        .verify(
            &SigV4Policy::websocket(),
            at(WS_DATE) + Duration::from_secs(301),
            example_key,
        )
        .unwrap_err();
    assert!(error.message().starts_with("Signature expired"), "{error}");
}

// ---------------------------------------------------------------------------
// Round trips through aws-sigv4's signer (what the API client sends).

#[test]
fn a_request_signed_by_aws_sigv4_verifies_and_names_its_signer() {
    let raw = signed_iot("POST", "/things/t1", br#"{"attributePayload":{}}"#);
    assert_eq!(
        accepted(&raw),
        Verified {
            access_key_id: AKID.into(),
            signing_name: "iot".into(),
            region: "us-east-1".into(),
        }
    );
}

#[test]
fn a_label_with_an_encoded_slash_and_dollar_verifies_only_as_sent() {
    let raw = signed_iot("POST", "/topics/%24aws%2Fthings%2Fx?qos=1", b"hello");
    accepted(&raw);
    let mut decoded = raw.clone();
    decoded.path = "/topics/$aws/things/x".into();
    assert_eq!(
        refused(&decoded, &SigV4Policy::api(), at(NOW)),
        AwsError::signature_mismatch()
    );
}

#[test]
fn duplicate_query_keys_are_signed_and_verified_in_canonical_order() {
    let raw = signed_iot("GET", "/things?b=2&a=2&a=1&flag&e=%20x%2By", b"");
    accepted(&raw);
    let mut changed = raw.clone();
    changed.query.retain(|(k, v)| !(k == "a" && v == "1"));
    assert_eq!(
        refused(&changed, &SigV4Policy::api(), at(NOW)),
        AwsError::signature_mismatch()
    );
}

#[test]
fn header_names_in_any_case_and_order_verify() {
    let raw = signed(
        "PUT",
        "/things/t1/principals",
        &[
            ("X-Amzn-Principal", "arn:aws:iot:us-east-1:123:cert/abc"),
            ("Content-Type", "application/json"),
            ("x-custom", "  spaced   value "),
        ],
        b"{}",
        &iot_scope(),
        None,
    );
    // Rebuild the received headers in reverse order.
    let mut reversed = HeaderMap::new();
    let pairs: Vec<_> = raw.headers.iter().collect();
    for (name, value) in pairs.into_iter().rev() {
        reversed.append(name.clone(), value.clone());
    }
    let mut received = raw.clone();
    received.headers = reversed;
    accepted(&received);
    assert!(authorization(&raw).contains("x-amzn-principal"));
}

#[test]
fn unsigned_headers_may_change_and_signed_ones_may_not() {
    let mut raw = signed_iot("GET", "/things/t1", b"");
    raw.set("user-agent", "aws-cli/2")
        .set("x-unsigned", "anything");
    accepted(&raw);
    let mut raw = signed(
        "GET",
        "/things/t1",
        &[("x-custom", "a")],
        b"",
        &iot_scope(),
        None,
    );
    raw.set("x-custom", "b");
    assert_eq!(
        refused(&raw, &SigV4Policy::api(), at(NOW)),
        AwsError::signature_mismatch()
    );
}

#[test]
fn a_changed_body_is_a_signature_mismatch() {
    let mut raw = signed_iot("POST", "/things/t1", b"{}");
    raw.body = b"{ }".to_vec();
    assert_eq!(
        refused(&raw, &SigV4Policy::api(), at(NOW)),
        AwsError::signature_mismatch()
    );
}

#[test]
fn host_comes_from_the_authority_when_there_is_no_host_header() {
    let mut raw = signed_iot("GET", "/things/t1", b"");
    let host = raw.headers.remove(HOST).unwrap();
    let parts = RequestParts {
        authority: Some(host.to_str().unwrap()),
        ..raw.parts()
    };
    assert!(
        authenticate(&parts, b"", &SigV4Policy::api(), at(NOW), example_key)
            .unwrap()
            .is_some()
    );
    assert_eq!(
        authenticate(&raw.parts(), b"", &SigV4Policy::api(), at(NOW), example_key).unwrap_err(),
        AwsError::signature_mismatch()
    );
}

#[test]
fn a_signed_session_token_header_verifies_against_the_issued_token() {
    let raw = signed("GET", "/things", &[], b"", &iot_scope(), Some(TOKEN));
    assert!(authorization(&raw).contains("x-amz-security-token"));
    assert!(
        raw.verify(&SigV4Policy::api(), at(NOW), temporary_key)
            .unwrap()
            .is_some()
    );
    let mut wrong = raw.clone();
    wrong.set("x-amz-security-token", "forged");
    assert_eq!(
        wrong
            .verify(&SigV4Policy::api(), at(NOW), temporary_key)
            .unwrap_err(),
        AwsError::unrecognized_client()
    );
    // Issued a token, the request has none.
    let plain = signed_iot("GET", "/things", b"");
    assert_eq!(
        plain
            .verify(&SigV4Policy::api(), at(NOW), temporary_key)
            .unwrap_err(),
        AwsError::unrecognized_client()
    );
}

#[test]
fn content_sha256_is_checked_and_unsigned_payload_honoured() {
    let body = b"{\"a\":1}";
    let digest = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body));
    let raw = signed(
        "POST",
        "/things/t",
        &[("x-amz-content-sha256", &digest)],
        body,
        &iot_scope(),
        None,
    );
    accepted(&raw);
    let mut lying = raw.clone();
    lying.body = b"{}".to_vec();
    let error = refused(&lying, &SigV4Policy::api(), at(NOW));
    assert!(error.message().contains("x-amz-content-sha256"), "{error}");

    let headers = [("x-amz-content-sha256", "UNSIGNED-PAYLOAD")];
    let mut all: Vec<(&str, &str)> = vec![("host", "h")];
    all.extend_from_slice(&headers);
    let request = SignableRequest::new(
        "POST",
        "https://h/things/t",
        all.iter().copied(),
        SignableBody::UnsignedPayload,
    )
    .unwrap();
    let key = SigningKey {
        access_key_id: AKID,
        secret_access_key: SECRET,
        session_token: None,
    };
    let (instructions, _) = sign_v4(request, &key, &iot_scope(), None)
        .unwrap()
        .into_parts();
    let mut map = HeaderMap::new();
    for (name, value) in all.iter().copied().chain(instructions.headers()) {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    accepted(&Raw::new("POST", "/things/t", map, b"any body at all"));
}

// ---------------------------------------------------------------------------
// Refusals of the header form.

#[test]
fn a_request_without_any_signature_is_not_a_claim() {
    let raw = Raw::new("GET", "/things", HeaderMap::new(), b"");
    assert_eq!(
        raw.verify(&SigV4Policy::api(), at(NOW), example_key),
        Ok(None)
    );
}

fn with_authorization(value: &str) -> Raw {
    let mut raw = signed_iot("GET", "/things", b"");
    raw.set("authorization", value);
    raw
}

fn incomplete(raw: &Raw) -> String {
    let error = refused(raw, &SigV4Policy::api(), at(NOW));
    assert_eq!(error.code(), "IncompleteSignatureException", "{error}");
    assert_eq!(error.status(), http::StatusCode::FORBIDDEN);
    error.message().to_owned()
}

#[test]
fn malformed_authorization_headers_are_incomplete_signatures() {
    let message = incomplete(&with_authorization("Bearer abc.def"));
    assert_eq!(
        message,
        "Authorization header requires 'Credential' parameter. \
         Authorization header requires 'Signature' parameter. \
         Authorization header requires 'SignedHeaders' parameter. \
         Authorization=Bearer abc.def"
    );
    let message = incomplete(&with_authorization(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260501/us-east-1/iot/aws4_request, SignedHeaders",
    ));
    assert!(message.starts_with("'SignedHeaders' not a valid key=value pair (missing equal-sign)"));
    let message = incomplete(&with_authorization(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260501/us-east-1/iot/aws4_request, SignedHeaders=host;x-amz-date",
    ));
    assert!(
        message
            .starts_with("Authorization header requires 'Signature' parameter. Authorization=AWS4")
    );
    let message = incomplete(&with_authorization("AWS4-HMAC-SHA256"));
    assert!(message.contains("requires 'Credential'"), "{message}");
    let message = incomplete(&with_authorization(
        "AWS4-ECDSA-P256-SHA256 Credential=AKIDEXAMPLE/20260501/iot/aws4_request, SignedHeaders=host, Signature=00",
    ));
    assert!(
        message.starts_with("Unsupported AWS 'algorithm'"),
        "{message}"
    );
    let message = incomplete(&with_authorization(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260501/iot/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
    ));
    assert!(message.starts_with("Credential must have exactly 5 slash-delimited elements"));
    let message = incomplete(&with_authorization(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260501/us-east-1/iot/aws4_request, SignedHeaders=x-amz-date, Signature=00",
    ));
    assert!(message.contains("'Host' or ':authority' must be a 'SignedHeader'"));

    let mut non_ascii = signed_iot("GET", "/things", b"");
    non_ascii.headers.insert(
        AUTHORIZATION,
        HeaderValue::from_bytes(b"AWS4-HMAC-SHA256 Credential=\xff").unwrap(),
    );
    incomplete(&non_ascii);
}

#[test]
fn a_missing_or_malformed_date_is_an_incomplete_signature() {
    let mut raw = signed_iot("GET", "/things", b"");
    raw.headers.remove("x-amz-date");
    let message = incomplete(&raw);
    assert!(
        message.contains("'X-Amz-Date' or a 'Date' header"),
        "{message}"
    );

    for bad in [
        "2026-05-01T10:00:00Z",
        "20260501T100000",
        "20261301T100000Z",
        "x",
    ] {
        let mut raw = signed_iot("GET", "/things", b"");
        raw.set("x-amz-date", bad);
        let message = incomplete(&raw);
        assert!(
            message.starts_with(&format!(
                "Date must be in ISO-8601 'basic format'. Got '{bad}'"
            )),
            "{message}"
        );
    }
}

#[test]
fn a_scope_date_other_than_x_amz_dates_day_is_an_invalid_signature() {
    let mut raw = signed_iot("GET", "/things", b"");
    raw.set("x-amz-date", "20260502T000000Z");
    let error = refused(&raw, &SigV4Policy::api(), at(NOW));
    assert_eq!(error.code(), "InvalidSignatureException");
    assert_eq!(
        error.message(),
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
         '20260501' != '20260502', from '20260502T000000Z'."
    );
}

#[test]
fn a_wrong_terminator_service_or_region_is_an_invalid_signature() {
    let auth = authorization(&signed_iot("GET", "/things", b""));
    let error = refused(
        &with_authorization(&auth.replace("aws4_request", "aws5_request")),
        &SigV4Policy::api(),
        at(NOW),
    );
    assert_eq!(error.code(), "InvalidSignatureException");
    assert!(error.message().contains("valid terminator"), "{error}");

    let s3 = signed(
        "GET",
        "/things",
        &[],
        b"",
        &Scope {
            service: "s3",
            ..iot_scope()
        },
        None,
    );
    let error = refused(&s3, &SigV4Policy::api(), at(NOW));
    assert_eq!(error.code(), "InvalidSignatureException");
    assert!(
        error
            .message()
            .starts_with("Credential should be scoped to correct service: 'iot' or 'execute-api'"),
        "{error}"
    );

    let eu = signed(
        "GET",
        "/things",
        &[],
        b"",
        &Scope {
            region: "eu-west-1",
            ..iot_scope()
        },
        None,
    );
    assert!(eu.verify(&SigV4Policy::api(), at(NOW), example_key).is_ok());
    let error = refused(&eu, &SigV4Policy::api().with_region("us-east-1"), at(NOW));
    assert_eq!(error.code(), "InvalidSignatureException");
    assert!(
        error
            .message()
            .starts_with("Credential should be scoped to a valid region, not 'eu-west-1'."),
        "{error}"
    );
}

#[test]
fn every_api_signing_name_is_accepted_and_named_in_the_result() {
    for service in API_SIGNING_NAMES {
        let raw = signed(
            "GET",
            "/things",
            &[],
            b"",
            &Scope {
                service,
                ..iot_scope()
            },
            None,
        );
        assert_eq!(accepted(&raw).signing_name, *service);
    }
}

#[test]
fn an_unknown_access_key_is_an_unrecognized_client() {
    let raw = signed_iot("GET", "/things", b"");
    assert_eq!(
        raw.verify(&SigV4Policy::api(), at(NOW), |_| None)
            .unwrap_err(),
        AwsError::unrecognized_client()
    );
}

#[test]
fn a_wrong_secret_is_a_signature_mismatch_with_aws_message() {
    let raw = signed_iot("GET", "/things", b"");
    let error = raw
        .verify(&SigV4Policy::api(), at(NOW), |_| {
            Some(StoredCredential {
                secret_access_key: "not the secret".into(),
                session_token: None,
                expires_at: None,
            })
        })
        .unwrap_err();
    assert_eq!(error.status(), http::StatusCode::FORBIDDEN);
    assert_eq!(error.code(), "InvalidSignatureException");
    assert_eq!(
        error.message(),
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. \
         Consult the service documentation for details."
    );
}

#[test]
fn a_signature_older_or_newer_than_five_minutes_is_refused_with_aws_wording() {
    let raw = signed_iot("GET", "/things", b"");
    let five = Duration::from_secs(300);
    assert!(
        raw.verify(&SigV4Policy::api(), at(NOW) + five, example_key)
            .is_ok()
    );
    assert!(
        raw.verify(&SigV4Policy::api(), at(NOW) - five, example_key)
            .is_ok()
    );

    let late = refused(&raw, &SigV4Policy::api(), at("20260501T100601Z"));
    assert_eq!(late.code(), "InvalidSignatureException");
    assert_eq!(
        late.message(),
        "Signature expired: 20260501T100000Z is now earlier than 20260501T100101Z \
         (20260501T100601Z - 5 min.)"
    );
    let early = refused(&raw, &SigV4Policy::api(), at("20260501T095459Z"));
    assert_eq!(
        early.message(),
        "Signature not yet current: 20260501T100000Z is still later than 20260501T095959Z \
         (20260501T095459Z + 5 min.)"
    );
}

#[test]
fn expired_credentials_are_an_expired_token() {
    let raw = signed_iot("GET", "/things", b"");
    let expired = |_: &str| {
        Some(StoredCredential {
            expires_at: Some(at(NOW)),
            ..example_key(AKID).unwrap()
        })
    };
    let error = raw
        .verify(&SigV4Policy::api(), at(NOW), expired)
        .unwrap_err();
    assert_eq!(error, AwsError::expired_token());
    assert_eq!(
        error.message(),
        "The security token included in the request is expired"
    );
    let valid = |_: &str| {
        Some(StoredCredential {
            expires_at: Some(at(NOW) + Duration::from_secs(1)),
            ..example_key(AKID).unwrap()
        })
    };
    assert!(raw.verify(&SigV4Policy::api(), at(NOW), valid).is_ok());
}

#[test]
fn odd_headers_never_panic() {
    // A signed header that is absent, a signed header that is not UTF-8, a
    // signed header name that is not a header name, a Host that is not UTF-8.
    let auth = authorization(&signed_iot("GET", "/things", b""));
    for signed_headers in [
        "host;x-absent;x-amz-date",
        "host;x-bin;x-amz-date",
        "host;bad name;x-amz-date",
    ] {
        let mut raw = with_authorization(&auth.replace("host;x-amz-date", signed_headers));
        raw.headers
            .insert("x-bin", HeaderValue::from_bytes(b"\xff\xfe").unwrap());
        assert_eq!(
            refused(&raw, &SigV4Policy::api(), at(NOW)),
            AwsError::signature_mismatch(),
            "{signed_headers}"
        );
    }
    let mut raw = signed_iot("GET", "/things", b"");
    raw.headers
        .insert(HOST, HeaderValue::from_bytes(b"h\xff").unwrap());
    assert_eq!(
        refused(&raw, &SigV4Policy::api(), at(NOW)),
        AwsError::signature_mismatch()
    );
    let mut raw = signed_iot("GET", "/things", b"");
    raw.path = "*".into();
    assert_eq!(
        refused(&raw, &SigV4Policy::api(), at(NOW)),
        AwsError::signature_mismatch()
    );
}

#[test]
fn amz_dates_round_trip() {
    assert_eq!(amz_date(at("20150830T123600Z")), "20150830T123600Z");
    assert_eq!(amz_date(SystemTime::UNIX_EPOCH), "19700101T000000Z");
}

// ---------------------------------------------------------------------------
// No input panics.

mod arbitrary {
    use proptest::prelude::*;

    use super::*;

    fn header_text() -> impl Strategy<Value = String> {
        "[ -~]{0,60}"
    }

    fn authorization() -> impl Strategy<Value = String> {
        prop_oneof![
            header_text(),
            (
                "[A-Z0-9]{0,12}",
                prop_oneof![Just("20260501".to_owned()), "[0-9]{0,9}"],
                prop_oneof![Just("us-east-1".to_owned()), "[a-z0-9-]{0,12}"],
                prop_oneof![Just("iot".to_owned()), "[a-z/-]{0,12}"],
                prop_oneof![Just("aws4_request".to_owned()), "[a-z0-9_/]{0,14}"],
                "(host|x-amz-date|x-[a-z]{1,5}|[;A-Z ]{0,3})(;(host|x-amz-date|x-[a-z]{1,5})){0,3}",
                "[0-9a-f ,=]{0,70}",
            )
                .prop_map(|(akid, date, region, service, term, signed, signature)| {
                    format!(
                        "AWS4-HMAC-SHA256 Credential={akid}/{date}/{region}/{service}/{term}, \
                         SignedHeaders={signed}, Signature={signature}"
                    )
                }),
        ]
    }

    fn query() -> impl Strategy<Value = Vec<(String, String)>> {
        let key = prop_oneof![
            Just(Q_ALGORITHM.to_owned()),
            Just(Q_CREDENTIAL.to_owned()),
            Just(Q_DATE.to_owned()),
            Just(Q_SIGNED_HEADERS.to_owned()),
            Just(Q_SIGNATURE.to_owned()),
            Just(Q_EXPIRES.to_owned()),
            Just(Q_SECURITY_TOKEN.to_owned()),
            "\\PC{0,8}",
        ];
        prop::collection::vec((key, "\\PC{0,30}"), 0..8)
    }

    proptest! {
        #[test]
        fn authenticate_never_panics(
            authorization in prop::option::of(authorization()),
            date in prop::option::of(prop_oneof![Just(NOW.to_owned()), header_text()]),
            host in prop::option::of(header_text()),
            token in prop::option::of(header_text()),
            query in query(),
            path in "/[a-zA-Z0-9%/._~$*-]{0,24}",
            body in prop::collection::vec(any::<u8>(), 0..32),
        ) {
            let mut headers = HeaderMap::new();
            for (name, value) in [
                ("authorization", authorization),
                ("x-amz-date", date),
                ("host", host),
                ("x-amz-security-token", token),
            ] {
                if let Some(value) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                    headers.insert(name, value);
                }
            }
            let parts = RequestParts {
                method: "POST",
                raw_path: &path,
                query: &query,
                headers: &headers,
                authority: None,
            };
            for policy in [SigV4Policy::api(), SigV4Policy::websocket()] {
                let _ = authenticate(&parts, &body, &policy, at(NOW), example_key);
                let _ = authenticate(&parts, &body, &policy, at(NOW), temporary_key);
            }
        }
    }
}
