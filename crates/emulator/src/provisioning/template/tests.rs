//! Templates: what is taken, what is refused, what applying one gives.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;

const CERT: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// AWS's fleet provisioning example, with a parameter for the thing name.
fn fleet_template() -> Value {
    json!({
        "Parameters": {
            "SerialNumber": {"Type": "String"},
            "DeviceLocation": {"Type": "String", "Default": "Seattle"},
            "AWS::IoT::Certificate::Id": {"Type": "String"}
        },
        "Mappings": {"LocationTable": {"Seattle": {"LocationUrl": "https://example.aws"}}},
        "Resources": {
            "thing": {
                "Type": "AWS::IoT::Thing",
                "Properties": {
                    "ThingName": {"Fn::Join": ["", ["ThingPrefix_", {"Ref": "SerialNumber"}]]},
                    "AttributePayload": {"version": "v1", "serialNumber": {"Ref": "SerialNumber"}},
                    "ThingGroups": ["v1-lightbulbs", "WA"],
                    "BillingGroup": "LightBulbBillingGroup"
                },
                "OverrideSettings": {
                    "AttributePayload": "MERGE",
                    "ThingTypeName": "REPLACE",
                    "ThingGroups": "DO_NOTHING"
                }
            },
            "certificate": {
                "Type": "AWS::IoT::Certificate",
                "Properties": {
                    "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"},
                    "Status": "Active"
                }
            },
            "policy": {
                "Type": "AWS::IoT::Policy",
                "Properties": {
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [{
                            "Effect": "Allow",
                            "Action": ["iot:Publish"],
                            "Resource": [{"Fn::Sub": "arn:aws:iot:${AWS::Region}:${AWS::AccountId}:topic/dt/${SerialNumber}"}]
                        }]
                    }
                }
            },
            "named": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "shared-policy"}}
        },
        "DeviceConfiguration": {
            "FallbackUrl": "https://www.example.com/test-site",
            "LocationUrl": {"Fn::FindInMap": ["LocationTable", {"Ref": "DeviceLocation"}, "LocationUrl"]},
            "Retries": 3
        }
    })
}

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn parse(value: &Value) -> Result<ProvisioningTemplate, TemplateProblem> {
    ProvisioningTemplate::parse(&value.to_string())
}

#[test]
fn awss_fleet_example_renders_to_a_registration() {
    let template = parse(&fleet_template()).unwrap();
    assert_eq!(template.warnings().len(), 2, "{:?}", template.warnings());
    assert!(template.warnings()[0].contains("ThingGroups"));
    let scope = ArnScope::new("eu-west-1", "111122223333");
    let rendered = template
        .render(&params(&[("SerialNumber", "42")]), CERT, "tok", &scope)
        .unwrap();
    let registration = &rendered.registration;
    assert_eq!(registration.token, "tok");
    assert_eq!(registration.certificate_id, CERT);
    assert_eq!(registration.certificate_status, CertificateStatus::Active);
    assert_eq!(registration.thing.name, "ThingPrefix_42");
    assert_eq!(
        registration.thing.attributes,
        Some(params(&[("version", "v1"), ("serialNumber", "42")]))
    );
    assert_eq!(registration.thing.existing.attributes, Override::Merge);
    assert_eq!(registration.thing.existing.thing_type, Override::Replace);
    assert_eq!(
        registration.policies.len(),
        2,
        "{:?}",
        registration.policies
    );
    let by_document = registration
        .policies
        .iter()
        .find(|p| p.document.is_some())
        .unwrap();
    let by_name = registration
        .policies
        .iter()
        .find(|p| p.document.is_none())
        .unwrap();
    let document = by_document.document.as_deref().unwrap();
    assert!(
        document.contains("arn:aws:iot:eu-west-1:111122223333:topic/dt/42"),
        "{document}"
    );
    assert_eq!(by_document.name, document_policy_name(document));
    assert_eq!(by_document.name.len(), 64);
    assert_eq!(
        by_name,
        &PolicyRegistration {
            name: "shared-policy".into(),
            document: None
        }
    );
    assert_eq!(
        rendered.device_configuration,
        params(&[
            ("FallbackUrl", "https://www.example.com/test-site"),
            ("LocationUrl", "https://example.aws"),
            ("Retries", "3"),
        ])
    );
}

#[test]
fn parameters_have_defaults_and_the_required_ones_are_checked() {
    let template = parse(&fleet_template()).unwrap();
    assert_eq!(
        template.parameters().collect::<Vec<_>>(),
        [("DeviceLocation", Some("Seattle")), ("SerialNumber", None)]
    );
    let scope = ArnScope::default();
    let err = template
        .render(&params(&[("DeviceLocation", "Seattle")]), CERT, "t", &scope)
        .unwrap_err();
    assert_eq!(err.error_code(), "InvalidParameters");
    assert!(err.to_string().contains("SerialNumber"), "{err}");
    // Undeclared parameters are allowed (the hook may use them); a declared
    // pseudo parameter is the service's, not the device's.
    let rendered = template
        .render(
            &params(&[
                ("SerialNumber", "1"),
                ("Extra", "x"),
                ("AWS::IoT::Certificate::Id", "forged"),
            ]),
            CERT,
            "t",
            &scope,
        )
        .unwrap();
    assert_eq!(rendered.registration.certificate_id, CERT);
    let unknown_location = template.render(
        &params(&[("SerialNumber", "1"), ("DeviceLocation", "Mars")]),
        CERT,
        "t",
        &scope,
    );
    let err = unknown_location.unwrap_err();
    assert_eq!(err.error_code(), "InvalidTemplate");
    assert!(err.to_string().contains("LocationTable.Mars"), "{err}");
}

#[test]
fn a_certificate_id_other_than_the_tokens_is_refused() {
    let mut body = fleet_template();
    body["Resources"]["certificate"]["Properties"]["CertificateId"] = json!("abc");
    let template = parse(&body).unwrap();
    let err = template
        .render(
            &params(&[("SerialNumber", "1")]),
            CERT,
            "t",
            &ArnScope::default(),
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("AWS::IoT::Certificate::Id"),
        "{err}"
    );
}

#[test]
fn status_and_attribute_shapes() {
    let mut body = fleet_template();
    body["Resources"]["certificate"]["Properties"]["Status"] = json!("INACTIVE");
    body["Resources"]["thing"]["Properties"]["AttributePayload"] =
        json!({"Attributes": {"a": "1"}});
    let rendered = parse(&body)
        .unwrap()
        .render(
            &params(&[("SerialNumber", "1")]),
            CERT,
            "t",
            &ArnScope::default(),
        )
        .unwrap();
    assert_eq!(
        rendered.registration.certificate_status,
        CertificateStatus::Inactive
    );
    assert_eq!(
        rendered.registration.thing.attributes,
        Some(params(&[("a", "1")]))
    );
    for (status, attributes, needle) in [
        (json!("PENDING"), json!({}), "ACTIVE or INACTIVE"),
        (
            json!("ACTIVE"),
            json!({"a": {"b": 1}}),
            "AttributePayload.a",
        ),
        (json!("ACTIVE"), json!(["a"]), "object of attribute names"),
    ] {
        let mut body = fleet_template();
        body["Resources"]["certificate"]["Properties"]["Status"] = status;
        body["Resources"]["thing"]["Properties"]["AttributePayload"] = attributes;
        let err = parse(&body)
            .unwrap()
            .render(
                &params(&[("SerialNumber", "1")]),
                CERT,
                "t",
                &ArnScope::default(),
            )
            .unwrap_err();
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
}

#[test]
fn templates_the_emulator_cannot_apply_are_refused_at_creation() {
    type Edit = Box<dyn Fn(&mut Value)>;
    let edits: Vec<(&str, Edit)> = vec![
        (
            "Conditions is not supported",
            Box::new(|t| t["Conditions"] = json!({})),
        ),
        (
            "must be \"String\"",
            Box::new(|t| t["Parameters"]["SerialNumber"]["Type"] = json!("Number")),
        ),
        (
            "Parameters.SerialNumber.Min is not supported",
            Box::new(|t| t["Parameters"]["SerialNumber"]["Min"] = json!(1)),
        ),
        (
            "exactly one AWS::IoT::Thing",
            Box::new(|t| {
                t["Resources"].as_object_mut().unwrap().remove("thing");
            }),
        ),
        (
            "exactly one AWS::IoT::Thing and one AWS::IoT::Certificate (found 1 and 2)",
            Box::new(|t| {
                t["Resources"]["certificate2"] = t["Resources"]["certificate"].clone();
            }),
        ),
        (
            "AWS::IoT::Role is not supported",
            Box::new(|t| t["Resources"]["x"] = json!({"Type": "AWS::IoT::Role"})),
        ),
        (
            "only certificate ids",
            Box::new(|t| {
                t["Resources"]["certificate"]["Properties"]["CertificateSigningRequest"] =
                    json!({"Ref": "SerialNumber"});
            }),
        ),
        (
            "ThingName is missing",
            Box::new(|t| {
                t["Resources"]["thing"]["Properties"]
                    .as_object_mut()
                    .unwrap()
                    .remove("ThingName");
            }),
        ),
        (
            "must be DO_NOTHING, REPLACE, FAIL or MERGE",
            Box::new(|t| {
                t["Resources"]["thing"]["OverrideSettings"]["AttributePayload"] = json!("KEEP")
            }),
        ),
        (
            "MERGE is only for attributes",
            Box::new(|t| {
                t["Resources"]["thing"]["OverrideSettings"]["ThingTypeName"] = json!("MERGE")
            }),
        ),
        (
            "not both",
            Box::new(|t| t["Resources"]["named"]["Properties"]["PolicyDocument"] = json!("{}")),
        ),
        (
            "a string but not JSON",
            Box::new(|t| {
                t["Resources"]["named"]["Properties"] = json!({"PolicyDocument": "{not json"});
            }),
        ),
        (
            "declare it in Parameters",
            Box::new(|t| t["DeviceConfiguration"]["x"] = json!({"Ref": "Nope"})),
        ),
        (
            "no map 'Nowhere'",
            Box::new(|t| {
                t["DeviceConfiguration"]["x"] = json!({"Fn::FindInMap": ["Nowhere", "a", "b"]})
            }),
        ),
        (
            "Resources.thing.Properties.ThingName.Fn::GetAtt: unsupported",
            Box::new(|t| {
                t["Resources"]["thing"]["Properties"]["ThingName"] =
                    json!({"Fn::GetAtt": ["a", "b"]});
            }),
        ),
    ];
    for (needle, edit) in edits {
        let mut body = fleet_template();
        edit(&mut body);
        let err = parse(&body).unwrap_err();
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
    assert!(ProvisioningTemplate::parse("not json").is_err());
    assert!(
        ProvisioningTemplate::parse("[]")
            .unwrap_err()
            .to_string()
            .contains("JSON object")
    );
    let long = format!(
        "{{\"DeviceConfiguration\": {{\"x\": \"{}\"}}}}",
        "a".repeat(MAX_TEMPLATE_CHARS)
    );
    assert!(
        ProvisioningTemplate::parse(&long)
            .unwrap_err()
            .to_string()
            .contains("at most 10240")
    );
}

#[test]
fn policy_documents_given_as_strings_keep_their_text() {
    let mut body = fleet_template();
    let text = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}"#;
    body["Resources"]["policy"]["Properties"]["PolicyDocument"] = json!(text);
    let rendered = parse(&body)
        .unwrap()
        .render(
            &params(&[("SerialNumber", "1")]),
            CERT,
            "t",
            &ArnScope::default(),
        )
        .unwrap();
    let policy = rendered
        .registration
        .policies
        .iter()
        .find(|p| p.document.is_some())
        .unwrap();
    assert_eq!(policy.document.as_deref(), Some(text));
    assert_eq!(policy.name, document_policy_name(text));
}
