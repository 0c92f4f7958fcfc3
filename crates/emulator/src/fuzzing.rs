//! Entry points of the parsers that read untrusted input, for the fuzz
//! targets (`fuzz/`, see docs/fuzzing.md) and their seed replay test
//! (`tests/fuzz_seeds.rs`). Not part of the API: it follows the parsers.
//!
//! Each function runs one parser on raw bytes as the emulator runs it on what
//! a device, an HTTP client, an authorizer command or a user sent, and says
//! whether the input was accepted (`Ok`) or refused, with the refusal's text.
//! None may panic, whatever the input: a refusal is a typed error.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use iotcore_model::jobs::{
    DescribeJobExecutionRequest, GetPendingJobExecutionsRequest, JobsApi, JobsMessage, JobsTopic,
    JobsTopicKind, StartNextPendingJobExecutionRequest, UpdateJobExecutionRequest,
};
use iotcore_model::provisioning::RegisterThingRequest;
use iotcore_model::shadow::{ShadowError, StoredShadow, TokenRequest, UpdateRequest};
use iotcore_model::topics::{ShadowOperation, ShadowTopic, ShadowTopicKind};

use crate::accept::websocket::{WebSocketAuth, check_upgrade};
use crate::api::error::AwsError;
use crate::api::query::parse_query;
use crate::api::sigv4::{RequestParts, SigV4Policy, StoredCredential, authenticate};
use crate::authorizer::{AuthRequest, MqttContext, response};
use crate::control::ThingRecord;
use crate::pki::Pki;
use crate::policy::{
    Action, ArnScope, AttachedPolicy, CertificateAttributes, PolicyDocument, Principal,
    RequestContext,
};
use crate::provisioning::ProvisioningTemplate;

/// The one access key the SigV4 entry points know: AWS's documentation
/// example key.
pub const ACCESS_KEY_ID: &str = "AKIDEXAMPLE";
/// Its secret.
pub const SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// The time the SigV4 entry points take as now: 2025-01-01T00:00:00Z, when
/// the signed seeds were signed.
pub const SIGNED_AT_UNIX: u64 = 1_735_689_600;

/// Most headers read from a raw HTTP request.
const MAX_HEADERS: usize = 64;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(SIGNED_AT_UNIX)
}

fn lookup(id: &str) -> Option<StoredCredential> {
    (id == ACCESS_KEY_ID).then(|| StoredCredential {
        secret_access_key: SECRET_ACCESS_KEY.to_owned(),
        session_token: None,
        expires_at: None,
    })
}

/// Reads a raw HTTP/1.1 request (head and body) with `httparse`, hyper's
/// parser, into the `http::Request` hyper would hand the emulator.
fn http_request(raw: &[u8]) -> Result<(http::Request<()>, &[u8]), String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let head_len = match parsed.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err("incomplete HTTP request head".into()),
        Err(e) => return Err(format!("not an HTTP request: {e}")),
    };
    let mut builder = http::Request::builder()
        .method(parsed.method.unwrap_or_default())
        .uri(parsed.path.unwrap_or_default());
    for header in parsed.headers.iter() {
        builder = builder.header(header.name, header.value);
    }
    let request = builder.body(()).map_err(|e| e.to_string())?;
    Ok((request, &raw[head_len..]))
}

/// The HTTPS API's signature check (`Authorization` header or presigned
/// query, then the canonical request) on a raw HTTP request, with
/// [`ACCESS_KEY_ID`] known and now [`SIGNED_AT_UNIX`]: `Ok` when signed by
/// that key.
pub fn sigv4_request(raw: &[u8]) -> Result<(), String> {
    let (request, body) = http_request(raw)?;
    let query =
        parse_query(request.uri().query().unwrap_or_default()).map_err(|e| e.to_string())?;
    let parts = RequestParts::of(request.method(), request.uri(), request.headers(), &query);
    match authenticate(&parts, body, &SigV4Policy::api(), now(), lookup) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(AwsError::missing_authentication_token().to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// The MQTT-over-WebSocket door's check of an upgrade request (path,
/// headers, subprotocol, presigned SigV4 query), with [`ACCESS_KEY_ID`]
/// known, now [`SIGNED_AT_UNIX`] and no custom authorizer.
pub fn websocket_upgrade(raw: &[u8]) -> Result<(), String> {
    let (request, _) = http_request(raw)?;
    let auth = WebSocketAuth {
        credentials: Arc::new(lookup),
        policy: SigV4Policy::websocket(),
        clock: Arc::new(now),
        custom_authorizers: Arc::new(|| false),
    };
    check_upgrade(&request, &auth)
}

/// A custom authorizer command's answer (its stdout), read as AWS's Lambda
/// response; then the input, taken as an MQTT username with a query, asked
/// for the authorizer's parameters as a CONNECT's would be.
pub fn authorizer_response(output: &[u8]) -> Result<(), String> {
    let request = AuthRequest {
        mqtt: Some(MqttContext {
            username: Some(String::from_utf8_lossy(output).into_owned()),
            password: Some(output.to_vec()),
            client_id: None,
        }),
        ..AuthRequest::default()
    };
    for name in [
        "x-amz-customauthorizer-name",
        "token",
        "x-amz-customauthorizer-signature",
    ] {
        let _ = request.parameter(name);
    }
    let _ = request.event(None, false);
    response::parse("fuzz", output)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// An IoT policy document, as CreatePolicy reads it; an accepted one is then
/// compiled for a connection and asked about every action on a few resources
/// (panics if [`Principal::allows`] and [`Principal::evaluate_name`] disagree).
pub fn policy_document(text: &str) -> Result<(), String> {
    let document = PolicyDocument::parse(text).map_err(|e| e.to_string())?;
    let mut certificate = CertificateAttributes::default();
    certificate.add("Subject.CommonName", "sensor-1");
    certificate.add("Subject.AlternativeName.DNSName", "sensor-1.example.com");
    let context = RequestContext {
        client_id: "sensor-1".into(),
        source_ip: Some([127, 0, 0, 1].into()),
        certificate_id: "0".repeat(64),
        certificate,
        thing: Some(ThingRecord {
            name: "sensor-1".into(),
            thing_type: Some("lamp".into()),
            attributes: BTreeMap::from([("room".into(), "kitchen".into())]),
            created_at: 0,
            thing_id: "7c6e5f6a-4f0e-4d43-9f4f-3e6c1a0b2d11".into(),
            version: 1,
        }),
    };
    let policies = [AttachedPolicy {
        name: "fuzzed".into(),
        version: 1,
        document,
    }];
    let principal = Principal::new(context, &policies, ArnScope::default());
    for action in [
        Action::Connect,
        Action::Publish,
        Action::Subscribe,
        Action::Receive,
        Action::RetainPublish,
    ] {
        for name in [
            "sensor-1",
            "dt/sensor-1/temp",
            "$aws/things/sensor-1/shadow/update",
        ] {
            let decision = principal.evaluate_name(action, name);
            // The per-message check answers as the explained one does.
            assert_eq!(
                principal.allows(action, name),
                decision.is_allowed(),
                "{decision}"
            );
            let _ = decision.to_string();
        }
    }
    let _ = principal.evaluate_operation("iot:UpdateThingShadow", "arn:aws:iot:*");
    Ok(())
}

/// A fleet provisioning template, as CreateProvisioningTemplate reads it;
/// an accepted one is then applied to the RegisterThing request `request`
/// (its parameters).
pub fn provisioning_template(body: &str, request: &[u8]) -> Result<(), String> {
    let template = ProvisioningTemplate::parse(body).map_err(|e| e.to_string())?;
    let parameters = RegisterThingRequest::parse(request)
        .map(|r| r.parameters)
        .unwrap_or_default();
    let certificate_id = "0123456789abcdef".repeat(4);
    template
        .render(&parameters, &certificate_id, "token", &ArnScope::default())
        .map(drop)
        .map_err(|e| e.to_string())
}

/// DER bytes read as a certificate signing request (in PEM), signed by
/// `pki` as CreateCertificateFromCsr does, and as a device certificate for
/// its policy variables: `Ok` when either reading takes them.
pub fn x509(pki: &Pki, der: &[u8]) -> Result<(), String> {
    let pem = format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        BASE64.encode(der)
    );
    let signed = pki.sign_csr(&pem);
    let read = CertificateAttributes::from_der(der);
    match (signed, read) {
        (Err(csr), Err(certificate)) => Err(format!("{csr}; {certificate}")),
        _ => Ok(()),
    }
}

/// A device's request on `topic` to the jobs service, read as the service
/// reads it: the topic, then the payload its API takes.
pub fn jobs_request(topic: &str, payload: &[u8]) -> Result<(), String> {
    let topic = JobsTopic::parse(topic).map_err(|e| e.to_string())?;
    if topic.kind() != JobsTopicKind::Request {
        return Err("not a request topic".into());
    }
    let parsed = match topic.api() {
        JobsApi::GetPending => GetPendingJobExecutionsRequest::from_json(payload).map(drop),
        JobsApi::StartNext => StartNextPendingJobExecutionRequest::from_json(payload).map(drop),
        JobsApi::Describe { .. } => DescribeJobExecutionRequest::from_json(payload).map(drop),
        JobsApi::Update { .. } => UpdateJobExecutionRequest::from_json(payload).map(drop),
        JobsApi::Notify | JobsApi::NotifyNext => return Err("not a request".into()),
    };
    parsed.map_err(|e| e.to_string())
}

/// A device's request on `topic` to the shadow service, applied to `shadow`
/// at `now` as the service applies it. An accepted update must leave a
/// document that survives the store's round trip.
pub fn shadow_request(
    shadow: &mut StoredShadow,
    topic: &str,
    payload: &[u8],
    now: u64,
) -> Result<(), ShadowError> {
    let Ok(topic) = ShadowTopic::parse(topic) else {
        return Err(ShadowError::InvalidJson);
    };
    if topic.kind() != ShadowTopicKind::Request {
        return Err(ShadowError::InvalidJson);
    }
    let name = topic.shadow().unwrap_or(topic.thing()).to_owned();
    match topic.operation() {
        ShadowOperation::Get => {
            let request = TokenRequest::parse_get(payload)?;
            shadow.get(request.client_token, &name, now).map(drop)
        }
        ShadowOperation::Update => {
            let request = UpdateRequest::parse(payload)?;
            let before = shadow.document().map(|d| d.version());
            shadow.update(&request, now)?;
            let document = shadow
                .document()
                .expect("an accepted update leaves a document");
            assert!(before.is_none_or(|v| document.version() == v + 1));
            let stored = document.to_json();
            let back = iotcore_model::shadow::ShadowDocument::from_json(&stored)
                .expect("a stored document reads back");
            assert_eq!(
                back.to_json(),
                stored,
                "the stored document changes on reading"
            );
            Ok(())
        }
        ShadowOperation::Delete => {
            let request = TokenRequest::parse_delete(payload)?;
            shadow.delete(request.client_token, &name, now).map(drop)
        }
    }
}
