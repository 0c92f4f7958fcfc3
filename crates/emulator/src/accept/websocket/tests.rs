//! The WebSocket door's handshake checks with the presigned vectors of
//! research wave2-protocols.md §1.4 (the signature arithmetic itself is
//! tested in `api::sigv4`).

use std::time::SystemTime;

use super::*;
use crate::api::sigv4::{StoredCredential, amz_date};

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const TOKEN: &str = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
const HOST: &str = "example-ats.iot.us-east-1.amazonaws.com";
const DATE: &str = "20150830T123600Z";
/// Vector A′: the CRT's real handshake, `connection;host` signed.
const SIGNATURE_A_PRIME: &str = "bb97ceda63bdd9199ada8c5ce76411245451e9449f3ef5bfcb5ebb278816da2e";
/// Vector A: a `host`-only request.
const SIGNATURE_A: &str = "026c20a61bae0c9e109ab3720b96164d965f64dfc0dd03bfc9f1152ab1d323f9";

fn vector_time() -> SystemTime {
    let t = time::PrimitiveDateTime::parse(
        DATE,
        time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"),
    )
    .unwrap()
    .assume_utc();
    t.into()
}

fn auth(token: Option<&str>) -> WebSocketAuth {
    let token = token.map(str::to_owned);
    WebSocketAuth {
        credentials: Arc::new(move |id: &str| {
            (id == AKID).then(|| StoredCredential {
                secret_access_key: SECRET.to_owned(),
                session_token: token.clone(),
                expires_at: None,
            })
        }),
        policy: SigV4Policy::websocket(),
        clock: Arc::new(vector_time),
        custom_authorizers: Arc::new(|| false),
    }
}

/// The CRT's handshake request, presigned as in vector A′ (or A when
/// `signed_headers` is `host`), with `subprotocol` and an optional token.
fn request(signed_headers: &str, signature: &str, token: bool, subprotocol: &str) -> Request<()> {
    let mut target = format!(
        "/mqtt?X-Amz-Algorithm=AWS4-HMAC-SHA256\
         &X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fiotdevicegateway%2Faws4_request\
         &X-Amz-Date={DATE}&X-Amz-SignedHeaders={}",
        signed_headers.replace(';', "%3B")
    );
    if token {
        target.push_str(&format!("&X-Amz-Security-Token={TOKEN}"));
    }
    target.push_str(&format!("&X-Amz-Signature={signature}"));
    Request::get(target)
        .header("host", HOST)
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-protocol", subprotocol)
        .body(())
        .unwrap()
}

fn crt_request() -> Request<()> {
    request("connection;host", SIGNATURE_A_PRIME, false, "mqtt")
}

fn refused(request: &Request<()>, auth: &WebSocketAuth) -> Refusal {
    check(request, auth).expect_err("refused")
}

#[test]
fn the_crts_handshake_is_accepted_and_names_the_access_key() {
    let accepted = check(&crt_request(), &auth(None)).unwrap();
    assert_eq!(
        accepted.identity,
        Identity::Known(Principal::AccessKey {
            access_key_id: AKID.to_owned()
        })
    );
    assert_eq!(accepted.door, Door::WebSocketSigV4);
    assert_eq!(accepted.subprotocol, "mqtt");
    let response = switching_protocols(&accepted);
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(
        response.headers()[SEC_WEBSOCKET_ACCEPT],
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
        "RFC 6455's example key"
    );
    assert_eq!(response.headers()[SEC_WEBSOCKET_PROTOCOL], "mqtt");
}

#[test]
fn a_host_only_signature_verifies_too() {
    let request = request("host", SIGNATURE_A, false, "mqtt");
    assert!(check(&request, &auth(None)).is_ok());
}

#[test]
fn both_subprotocol_spellings_are_accepted_and_echoed() {
    let request = request("connection;host", SIGNATURE_A_PRIME, false, "mqttv3.1");
    let accepted = check(&request, &auth(None)).unwrap();
    assert_eq!(accepted.subprotocol, "mqttv3.1");
    assert_eq!(
        switching_protocols(&accepted).headers()[SEC_WEBSOCKET_PROTOCOL],
        "mqttv3.1"
    );
    let other = request_with_subprotocol("wamp");
    let refusal = refused(&other, &auth(None));
    assert_eq!(refusal.status, StatusCode::BAD_REQUEST);
    assert!(refusal.why.contains("wamp"), "{}", refusal.why);
}

fn request_with_subprotocol(subprotocol: &str) -> Request<()> {
    request("connection;host", SIGNATURE_A_PRIME, false, subprotocol)
}

#[test]
fn temporary_credentials_need_their_token_appended_unsigned() {
    let with_token = request("connection;host", SIGNATURE_A_PRIME, true, "mqtt");
    assert!(check(&with_token, &auth(Some(TOKEN))).is_ok());
    let refusal = refused(&crt_request(), &auth(Some(TOKEN)));
    assert_eq!(refusal.status, StatusCode::FORBIDDEN);
    assert_eq!(refusal.error.code(), "UnrecognizedClientException");
}

#[test]
fn a_signed_token_is_refused_with_a_hint() {
    // Vector D: the token was part of the signed query.
    let signed = request(
        "host",
        "f2c509e15591fbfee3e022fd8e25c662bb12a6772970d8c0aae674c5bae65da2",
        true,
        "mqtt",
    );
    let refusal = refused(&signed, &auth(Some(TOKEN)));
    assert_eq!(refusal.status, StatusCode::FORBIDDEN);
    assert_eq!(refusal.error.code(), "InvalidSignatureException");
    assert!(
        refusal.why.contains("appended after signing"),
        "{}",
        refusal.why
    );
}

#[test]
fn a_wrong_secret_an_unknown_key_and_an_old_date_are_forbidden() {
    let wrong_secret = WebSocketAuth {
        credentials: Arc::new(|_: &str| {
            Some(StoredCredential {
                secret_access_key: "not-the-secret".to_owned(),
                session_token: None,
                expires_at: None,
            })
        }),
        ..auth(None)
    };
    let refusal = refused(&crt_request(), &wrong_secret);
    assert_eq!(refusal.status, StatusCode::FORBIDDEN);
    assert!(refusal.why.contains("does not match"), "{}", refusal.why);

    let nobody = WebSocketAuth {
        credentials: Arc::new(|_: &str| None),
        ..auth(None)
    };
    let refusal = refused(&crt_request(), &nobody);
    assert_eq!(refusal.error.code(), "UnrecognizedClientException");

    let later = WebSocketAuth {
        clock: Arc::new(|| vector_time() + Duration::from_secs(6 * 60)),
        ..auth(None)
    };
    let refusal = refused(&crt_request(), &later);
    assert_eq!(refusal.status, StatusCode::FORBIDDEN);
    assert!(refusal.why.contains("Signature expired"), "{}", refusal.why);
    assert!(
        refusal.why.contains(&amz_date(vector_time())),
        "{}",
        refusal.why
    );
}

#[test]
fn an_unsigned_upgrade_is_forbidden() {
    let request = Request::get("/mqtt")
        .header("host", HOST)
        .header("upgrade", "websocket")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-protocol", "mqtt")
        .body(())
        .unwrap();
    let refusal = refused(&request, &auth(None));
    assert_eq!(refusal.status, StatusCode::FORBIDDEN);
    assert_eq!(refusal.error.code(), "MissingAuthenticationTokenException");
    assert!(
        refusal.why.contains("no SigV4 signature"),
        "{}",
        refusal.why
    );
}

#[test]
fn another_path_or_a_plain_request_is_refused_before_any_signature() {
    let mut other = crt_request();
    *other.uri_mut() = "/other".parse().unwrap();
    assert_eq!(refused(&other, &auth(None)).status, StatusCode::NOT_FOUND);

    let mut plain = crt_request();
    plain.headers_mut().remove(UPGRADE);
    let refusal = refused(&plain, &auth(None));
    assert_eq!(refusal.status, StatusCode::BAD_REQUEST);
    assert!(
        refusal.why.contains("not a WebSocket upgrade"),
        "{}",
        refusal.why
    );

    let mut old = crt_request();
    old.headers_mut()
        .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
    assert_eq!(refused(&old, &auth(None)).status, StatusCode::BAD_REQUEST);
}

#[test]
fn the_browser_sdks_double_slash_path_is_served() {
    // `//mqtt` is signed as sent; a refusal here would be about the
    // signature, never the path.
    let mut request = crt_request();
    let query = request.uri().query().unwrap().to_owned();
    *request.uri_mut() = format!("//mqtt?{query}").parse().unwrap();
    let refusal = check(&request, &auth(None)).err();
    assert!(
        refusal
            .as_ref()
            .is_none_or(|r| r.status == StatusCode::FORBIDDEN),
        "{refusal:?}"
    );
}
