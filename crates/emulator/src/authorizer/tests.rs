//! The authorizer flow with real commands: allow, deny, crash, garbage, a
//! hang (paused time), and signed tokens.

use std::collections::BTreeMap;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::*;

const ALLOW: &str = r#"{"isAuthenticated":true,"principalId":"dev1","disconnectAfterInSeconds":3600,"policyDocuments":[{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}]}"#;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn record(name: &str, command: &str) -> AuthorizerRecord {
    AuthorizerRecord {
        name: name.into(),
        function: command.into(),
        token_key_name: Some("tok".into()),
        token_signing_public_keys: BTreeMap::new(),
        status: "ACTIVE".into(),
        signing_disabled: true,
        enable_caching_for_http: false,
        is_default: false,
        created_at: 1,
        last_modified_at: 1,
    }
}

fn named(name: &str, username_query: &str) -> AuthRequest {
    AuthRequest {
        mqtt: Some(MqttContext {
            username: Some(format!(
                "user?x-amz-customauthorizer-name={name}{username_query}"
            )),
            password: Some(b"secret".to_vec()),
            client_id: Some("dev1".into()),
        }),
        ..AuthRequest::default()
    }
}

fn echo(json: &str) -> String {
    format!("cat > /dev/null; printf '%s' '{json}'")
}

#[tokio::test]
async fn an_allowing_function_gets_the_event_and_its_answer_is_read() {
    let (_dir, store) = store();
    // The command answers only if the event names the client id and token.
    let command = format!("grep -q '\"clientId\":\"dev1\"' && printf '%s' '{ALLOW}'");
    store.add_authorizer(&record("allow", &command)).unwrap();
    let a = authorize(&store, &named("allow", "&tok=t1")).await.unwrap();
    assert_eq!(a.principal_id, "dev1");
    assert_eq!(a.authorizer, "allow");
    assert_eq!(a.disconnect_after, Some(Duration::from_secs(3600)));
    assert_eq!(a.policy_documents.len(), 1);
}

#[tokio::test]
async fn a_denial_a_crash_and_garbage_are_refusals_that_say_why() {
    let (_dir, store) = store();
    store
        .add_authorizer(&record("deny", &echo(r#"{"isAuthenticated":false}"#)))
        .unwrap();
    store
        .add_authorizer(&record("crash", "echo boom >&2; exit 3"))
        .unwrap();
    store
        .add_authorizer(&record("garbage", "echo hello"))
        .unwrap();
    let deny = authorize(&store, &named("deny", "")).await.unwrap_err();
    assert!(matches!(deny, AuthorizerError::Denied { .. }), "{deny}");
    let crash = authorize(&store, &named("crash", "")).await.unwrap_err();
    let crash = crash.to_string();
    assert!(
        crash.contains("exit status: 3") && crash.contains("boom"),
        "{crash}"
    );
    let garbage = authorize(&store, &named("garbage", "")).await.unwrap_err();
    assert!(garbage.to_string().contains("not JSON"), "{garbage}");
}

#[tokio::test(start_paused = true)]
async fn a_function_that_hangs_is_refused_after_five_seconds() {
    let (_dir, store) = store();
    store.add_authorizer(&record("hang", "sleep 30")).unwrap();
    let hang = authorize(&store, &named("hang", "")).await.unwrap_err();
    assert!(hang.to_string().contains("within 5 s"), "{hang}");
}

#[tokio::test]
async fn the_named_or_default_authorizer_must_exist_and_be_active() {
    let (_dir, store) = store();
    let none = authorize(&store, &AuthRequest::default())
        .await
        .unwrap_err();
    assert!(matches!(none, AuthorizerError::NoAuthorizer), "{none}");
    let unknown = authorize(&store, &named("nope", "")).await.unwrap_err();
    assert!(
        matches!(unknown, AuthorizerError::UnknownAuthorizer(_)),
        "{unknown}"
    );
    let mut inactive = record("off", &echo(ALLOW));
    inactive.status = "INACTIVE".into();
    store.add_authorizer(&inactive).unwrap();
    let off = authorize(&store, &named("off", "")).await.unwrap_err();
    assert!(matches!(off, AuthorizerError::Inactive(_)), "{off}");
    store
        .add_authorizer(&record("fallback", &echo(ALLOW)))
        .unwrap();
    store.set_default_authorizer("fallback").unwrap();
    let a = authorize(&store, &AuthRequest::default()).await.unwrap();
    assert_eq!(a.authorizer, "fallback", "no name: the default authorizer");
}

/// An RSA key pair: its public key as PEM, and a signer.
fn key_pair() -> (String, impl Fn(&str) -> String) {
    let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let der = pair.public_key().as_der().unwrap();
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        BASE64.encode(der.as_ref())
    );
    let sign = move |token: &str| {
        let mut signature = vec![0; pair.public_modulus_len()];
        pair.sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            token.as_bytes(),
            &mut signature,
        )
        .unwrap();
        BASE64.encode(signature)
    };
    (pem, sign)
}

#[tokio::test]
async fn a_signed_token_is_checked_before_the_function_runs() {
    let (_dir, store) = store();
    let (pem, sign) = key_pair();
    let mut signed = record("signed", &echo(ALLOW));
    signed.signing_disabled = false;
    signed.token_signing_public_keys = [("k1".to_owned(), pem)].into();
    store.add_authorizer(&signed).unwrap();
    let good = format!(
        "&tok=token-1&x-amz-customauthorizer-signature={}",
        percent_encoding::utf8_percent_encode(&sign("token-1"), percent_encoding::NON_ALPHANUMERIC)
    );
    authorize(&store, &named("signed", &good)).await.unwrap();

    let other = format!(
        "&tok=token-2&x-amz-customauthorizer-signature={}",
        percent_encoding::utf8_percent_encode(&sign("token-1"), percent_encoding::NON_ALPHANUMERIC)
    );
    let bad = authorize(&store, &named("signed", &other))
        .await
        .unwrap_err();
    assert!(matches!(bad, AuthorizerError::BadSignature { .. }), "{bad}");
    let unsigned = authorize(&store, &named("signed", "&tok=token-1"))
        .await
        .unwrap_err();
    assert!(unsigned.to_string().contains("signature"), "{unsigned}");
}

#[test]
fn public_keys_must_be_rsa_of_2048_bits_or_more() {
    let (pem, _) = key_pair();
    assert!(signature::parse_public_key(&pem).is_ok());
    assert!(signature::parse_public_key("nope").is_err());
}
