//! Provisioning topics and messages, case by case.

use serde_json::json;

use super::*;

use PayloadFormat::{Cbor, Json};
use ProvisioningTopicKind::{Accepted, Rejected, Request};

#[test]
fn every_topic_round_trips() {
    let register = ProvisioningApi::RegisterThing {
        template: "fleet-1",
    };
    let cases = [
        (
            "$aws/certificates/create/json",
            ProvisioningApi::CreateKeysAndCertificate,
            Json,
            Request,
        ),
        (
            "$aws/certificates/create/json/accepted",
            ProvisioningApi::CreateKeysAndCertificate,
            Json,
            Accepted,
        ),
        (
            "$aws/certificates/create/cbor/rejected",
            ProvisioningApi::CreateKeysAndCertificate,
            Cbor,
            Rejected,
        ),
        (
            "$aws/certificates/create-from-csr/json",
            ProvisioningApi::CreateCertificateFromCsr,
            Json,
            Request,
        ),
        (
            "$aws/certificates/create-from-csr/json/rejected",
            ProvisioningApi::CreateCertificateFromCsr,
            Json,
            Rejected,
        ),
        (
            "$aws/provisioning-templates/fleet-1/provision/json",
            register,
            Json,
            Request,
        ),
        (
            "$aws/provisioning-templates/fleet-1/provision/json/accepted",
            register,
            Json,
            Accepted,
        ),
        (
            "$aws/provisioning-templates/fleet-1/provision/cbor/rejected",
            register,
            Cbor,
            Rejected,
        ),
    ];
    for (topic, api, format, kind) in cases {
        assert!(ProvisioningTopic::is_reserved(topic), "{topic}");
        let parsed = ProvisioningTopic::parse(topic).unwrap_or_else(|e| panic!("{topic}: {e}"));
        assert_eq!(parsed.api(), api, "{topic}");
        assert_eq!(parsed.format(), format, "{topic}");
        assert_eq!(parsed.kind(), kind, "{topic}");
        assert_eq!(parsed.to_topic(), topic);
        assert_eq!(ProvisioningTopic::new(api, format, kind).unwrap(), parsed);
    }
    let request = ProvisioningTopic::parse("$aws/certificates/create-from-csr/json").unwrap();
    assert_eq!(
        request.with_kind(Accepted).to_topic(),
        "$aws/certificates/create-from-csr/json/accepted"
    );
}

#[test]
fn other_topics_are_refused_with_the_reason() {
    for topic in ["a/b", "$aws/things/t/shadow/get", "$aws/certificates", ""] {
        assert!(
            matches!(
                ProvisioningTopic::parse(topic),
                Err(ProvisioningTopicError::NotProvisioning { .. })
            ),
            "{topic}"
        );
    }
    for topic in [
        "$aws/certificates/create",
        "$aws/certificates/create/xml",
        "$aws/certificates/create/json/done",
        "$aws/certificates/create/json/accepted/x",
        "$aws/certificates/delete/json",
        "$aws/provisioning-templates/t/provision",
        "$aws/provisioning-templates/t/register/json",
        "$aws/provisioning-templates/t",
    ] {
        assert!(
            matches!(
                ProvisioningTopic::parse(topic),
                Err(ProvisioningTopicError::Unknown { .. })
            ),
            "{topic}"
        );
    }
    for topic in [
        "$aws/provisioning-templates//provision/json",
        "$aws/provisioning-templates/a+b/provision/json",
        "$aws/provisioning-templates/has.dot/provision/json",
    ] {
        assert!(
            matches!(
                ProvisioningTopic::parse(topic),
                Err(ProvisioningTopicError::InvalidTemplateName(_))
            ),
            "{topic}"
        );
    }
}

#[test]
fn template_names_follow_aws_rules() {
    for ok in ["a", "Fleet_template-2", &"x".repeat(36)] {
        assert_eq!(validate_template_name(ok), Ok(()), "{ok}");
    }
    for bad in ["", "a b", "a/b", "a:b", &"x".repeat(37)] {
        let err = validate_template_name(bad).unwrap_err();
        assert!(err.to_string().contains("1 to 36"), "{err}");
    }
}

#[test]
fn register_thing_requests_are_validated() {
    let ok = RegisterThingRequest::parse(
        br#"{"certificateOwnershipToken":"tok","parameters":{"SerialNumber":"42"}}"#,
    )
    .unwrap();
    assert_eq!(ok.certificate_ownership_token, "tok");
    assert_eq!(ok.parameters["SerialNumber"], "42");
    let round_trip = RegisterThingRequest::parse(&ok.to_json()).unwrap();
    assert_eq!(round_trip, ok);
    assert!(
        RegisterThingRequest::parse(br#"{"certificateOwnershipToken":"t","parameters":null}"#)
            .unwrap()
            .parameters
            .is_empty()
    );

    let cases: &[(&[u8], &str)] = &[
        (b"", "InvalidCertificateOwnershipToken"),
        (b"{}", "InvalidCertificateOwnershipToken"),
        (
            br#"{"certificateOwnershipToken":""}"#,
            "InvalidCertificateOwnershipToken",
        ),
        (
            br#"{"certificateOwnershipToken":null}"#,
            "InvalidCertificateOwnershipToken",
        ),
        (br#"{"certificateOwnershipToken":5}"#, "InvalidPayload"),
        (b"not json", "InvalidPayload"),
        (b"[1]", "InvalidPayload"),
        (
            br#"{"certificateOwnershipToken":"t","parameters":[]}"#,
            "InvalidPayload",
        ),
        (
            br#"{"certificateOwnershipToken":"t","parameters":{"a":1}}"#,
            "InvalidPayload",
        ),
    ];
    for (payload, code) in cases {
        let err = RegisterThingRequest::parse(payload).unwrap_err();
        assert_eq!(
            err.error_code(),
            *code,
            "{}",
            String::from_utf8_lossy(payload)
        );
        assert_eq!(err.status_code(), 400);
    }
    let empty = RegisterThingRequest::parse(b"{}").unwrap_err();
    assert_eq!(
        empty.to_response(),
        ErrorResponse {
            status_code: 400,
            error_code: "InvalidCertificateOwnershipToken".into(),
            error_message: "Certificate ownership token cannot be empty.".into(),
        }
    );
    let long = json!({"certificateOwnershipToken": "t", "parameters": {"k": "v".repeat(4097)}});
    let err = RegisterThingRequest::parse(long.to_string().as_bytes()).unwrap_err();
    assert_eq!(err.error_code(), "InvalidParameters");
}

#[test]
fn csr_and_create_keys_requests_are_validated() {
    let request = CreateCertificateFromCsrRequest {
        certificate_signing_request: "-----BEGIN CERTIFICATE REQUEST-----".into(),
    };
    assert_eq!(
        CreateCertificateFromCsrRequest::parse(&request.to_json()).unwrap(),
        request
    );
    for payload in [
        &b"{}"[..],
        br#"{"certificateSigningRequest":""}"#,
        br#"{"certificateSigningRequest":7}"#,
    ] {
        let err = CreateCertificateFromCsrRequest::parse(payload).unwrap_err();
        assert_eq!(err.error_code(), "InvalidCsr");
    }
    assert_eq!(
        CreateCertificateFromCsrRequest::parse(b"{")
            .unwrap_err()
            .error_code(),
        "InvalidPayload"
    );
    parse_create_keys_request(b"").unwrap();
    parse_create_keys_request(b"{}").unwrap();
    assert!(parse_create_keys_request(b"x").is_err());
}

#[test]
fn replies_have_aws_field_names() {
    let keys = CreateKeysAndCertificateAccepted {
        certificate_id: "id".into(),
        certificate_pem: "pem".into(),
        private_key: "secret".into(),
        certificate_ownership_token: "tok".into(),
    };
    assert_eq!(
        serde_json::to_value(&keys).unwrap(),
        json!({"certificateId": "id", "certificatePem": "pem", "privateKey": "secret",
               "certificateOwnershipToken": "tok"})
    );
    assert!(!format!("{keys:?}").contains("secret"));
    let csr = CreateCertificateFromCsrAccepted {
        certificate_ownership_token: "tok".into(),
        certificate_id: "id".into(),
        certificate_pem: "pem".into(),
    };
    assert_eq!(
        serde_json::to_value(&csr).unwrap(),
        json!({"certificateOwnershipToken": "tok", "certificateId": "id", "certificatePem": "pem"})
    );
    let registered = RegisterThingAccepted {
        device_configuration: [("k".to_owned(), "v".to_owned())].into(),
        thing_name: "dev-1".into(),
    };
    assert_eq!(
        serde_json::to_value(&registered).unwrap(),
        json!({"deviceConfiguration": {"k": "v"}, "thingName": "dev-1"})
    );
    let error = ProvisioningError::TemplateNotFound { name: "t".into() }.to_response();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&error.to_json()).unwrap(),
        json!({"statusCode": 404, "errorCode": "ResourceNotFound",
               "errorMessage": "Provisioning template t does not exist."})
    );
}
