//! The emulator's HTTPS API with clients we did not write and with our own
//! signed client: boto3 calls every `iot` and `iot-data` operation
//! (`tests/peers/iot_control_plane.py`), shadows updated over HTTP agree with
//! the MQTT shadow service and reach MQTT subscribers, devices publish over
//! HTTPS with their certificate as their policy allows (on the API port, and
//! on the MQTT port with ALPN `x-amzn-http-ca`)
//! (`tests/peers/https_publish.py`, Python's own `http.client` and `ssl`), and
//! bad requests get AWS's errors and change nothing.
//!
//! Needs `scripts/setup-peers` to have run.

mod support;

use std::ffi::OsString;

use bytes::Bytes;
use http::{Method, StatusCode};
use iotcore_emulator::api::client::{ApiClient, ApiCredentials, encode_label};
use iotcore_emulator::control::{AccessKeyOptions, DescribeThingRequest, ErrorCode, ThingPolicy};
use iotcore_mqtt::{ProtocolVersion, QoS};
use iotcore_test_support::run_peer;
use serde_json::{Value, json};
use support::{RawClient, Setup};

/// An emulator with its API on a free port, and an access key for it.
async fn start() -> (Setup, ApiCredentials) {
    let setup =
        Setup::start_with(|config| config.with_api_bind("127.0.0.1:0".parse().expect("addr")))
            .await;
    let key = setup
        .emulator
        .control()
        .create_access_key("tests", &AccessKeyOptions::default())
        .expect("access key");
    let credentials = ApiCredentials::new(key.access_key_id, key.secret_access_key);
    (setup, credentials)
}

fn endpoint(setup: &Setup) -> String {
    let port = setup.emulator.api_addr().expect("API listening").port();
    format!("https://localhost:{port}")
}

/// Our signed client, for service `signing_name`.
fn client(setup: &Setup, credentials: &ApiCredentials, signing_name: &str) -> ApiClient {
    ApiClient::new(
        &endpoint(setup),
        setup.emulator.ca_pem(),
        credentials.clone(),
    )
    .expect("client")
    .with_signing_name(signing_name)
}

fn ca_file(setup: &Setup) -> std::path::PathBuf {
    setup.dir.path().join("pki/ca.pem")
}

#[tokio::test]
async fn boto3_calls_every_operation_and_gets_aws_answers_and_errors() {
    let (setup, credentials) = start().await;
    let args: Vec<OsString> = vec![
        "--endpoint".into(),
        endpoint(&setup).into(),
        "--ca".into(),
        ca_file(&setup).into(),
        "--access-key-id".into(),
        credentials.access_key_id.clone().into(),
        "--secret".into(),
        credentials.secret_access_key.clone().into(),
    ];
    let output = run_peer("iot_control_plane.py", &args).await;
    let failed: Vec<Value> = output
        .events_named("check")
        .into_iter()
        .filter(|c| c["ok"] != json!(true))
        .collect();
    assert!(
        failed.is_empty(),
        "boto3 checks failed: {failed:#?}\n{output}"
    );
    let done = output.events_named("done");
    assert_eq!(done.len(), 1, "{output}");
    // Every part ran to its end: a part that stops early reports fewer checks.
    assert!(done[0]["passed"].as_u64() >= Some(121), "{output}");
    output.assert_success();
}

/// `document` with every `timestamp` member (which tell when, not what) set to 0.
fn without_timestamps(mut document: Value) -> Value {
    fn walk(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, member) in map.iter_mut() {
                    if key == "timestamp" {
                        *member = json!(0);
                    } else {
                        walk(member);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut document);
    document
}

#[tokio::test]
async fn http_shadow_updates_agree_with_mqtt_updates_and_reach_mqtt_delta_subscribers() {
    let (setup, credentials) = start().await;
    let data = client(&setup, &credentials, "iotdata");
    let device = setup.device("lamp");
    let mut mqtt = RawClient::connected(setup.addr(), &device, ProtocolVersion::V5).await;
    mqtt.subscribe(
        1,
        &["$aws/things/lamp/shadow/update/accepted"],
        QoS::AtLeastOnce,
    )
    .await;
    setup.device("twin");

    let requests = [
        json!({"state": {"reported": {"on": false, "level": 3}}, "clientToken": "t1"}),
        json!({"state": {"desired": {"on": true, "color": {"r": 1}}}, "clientToken": "t2"}),
        json!({"state": {"desired": {"color": null}}, "clientToken": "t3"}),
    ];
    for (i, request) in requests.iter().enumerate() {
        // The device's own thing over MQTT…
        let packet_id = u16::try_from(i).expect("few") + 10;
        mqtt.publish_qos1(
            packet_id,
            "$aws/things/lamp/shadow/update",
            request.to_string(),
        )
        .await;
        let publish = mqtt.recv_publish().await;
        assert!(publish.topic.ends_with("/accepted"), "{}", publish.topic);
        let mqtt_accepted: Value = serde_json::from_slice(&publish.payload).expect("json");
        // …and its twin over HTTP: the same answer.
        let response = data
            .send(
                Method::POST,
                "/things/twin/shadow",
                &[],
                Bytes::from(request.to_string()),
            )
            .await
            .expect("sent")
            .error_for_status()
            .expect("accepted");
        let http_accepted: Value = serde_json::from_slice(&response.body).expect("json");
        assert_eq!(
            without_timestamps(http_accepted),
            without_timestamps(mqtt_accepted),
            "update {i}"
        );
    }
    let get = |thing: &str| {
        let data = &data;
        let path = format!("/things/{thing}/shadow");
        async move {
            let response = data
                .send(Method::GET, &path, &[], Bytes::new())
                .await
                .expect("sent");
            serde_json::from_slice::<Value>(&response.body).expect("json")
        }
    };
    let (lamp, twin) = (get("lamp").await, get("twin").await);
    assert_eq!(lamp["version"], json!(3));
    assert_eq!(lamp["state"]["delta"], json!({"on": true}));
    assert_eq!(without_timestamps(lamp), without_timestamps(twin));

    // A desired change made over HTTP reaches the device's delta subscription.
    mqtt.subscribe(
        2,
        &["$aws/things/lamp/shadow/update/delta"],
        QoS::AtLeastOnce,
    )
    .await;
    let change = json!({"state": {"desired": {"level": 7}}, "clientToken": "cloud"});
    data.send(
        Method::POST,
        "/things/lamp/shadow",
        &[],
        Bytes::from(change.to_string()),
    )
    .await
    .expect("sent")
    .error_for_status()
    .expect("accepted");
    // The HTTP update is announced on update/accepted too, as AWS does.
    let accepted = mqtt.recv_publish().await;
    assert!(accepted.topic.ends_with("/accepted"), "{}", accepted.topic);
    let publish = mqtt.recv_publish().await;
    assert!(publish.topic.ends_with("/delta"), "{}", publish.topic);
    let delta: Value = serde_json::from_slice(&publish.payload).expect("json");
    assert_eq!(delta["state"], json!({"on": true, "level": 7}));
    assert_eq!(
        (delta["version"].clone(), delta["clientToken"].clone()),
        (json!(4), json!("cloud"))
    );
}

#[tokio::test]
async fn bad_requests_get_aws_errors_and_change_nothing() {
    let (setup, credentials) = start().await;
    let iot = client(&setup, &credentials, "iot");
    let control = setup.emulator.control();
    let gone = || {
        control
            .describe_thing(DescribeThingRequest {
                thing_name: "t".into(),
            })
            .map(|_| ())
            .map_err(|e| e.code())
    };
    // (case, method, path, body, status, AWS error code)
    type Case = (
        &'static str,
        Method,
        &'static str,
        &'static [u8],
        StatusCode,
        &'static str,
    );
    let cases: [Case; 5] = [
        (
            "malformed JSON",
            Method::POST,
            "/things/t",
            b"{\"attributePayload\":",
            StatusCode::BAD_REQUEST,
            "InvalidRequestException",
        ),
        (
            "not an object",
            Method::POST,
            "/things/t",
            b"[1,2]",
            StatusCode::BAD_REQUEST,
            "InvalidRequestException",
        ),
        (
            "unknown field",
            Method::POST,
            "/things/t",
            b"{\"bogus\":1}",
            StatusCode::BAD_REQUEST,
            "InvalidRequestException",
        ),
        (
            "wrong type",
            Method::POST,
            "/things/t",
            b"{\"attributePayload\":{\"attributes\":7}}",
            StatusCode::BAD_REQUEST,
            "InvalidRequestException",
        ),
        (
            "unknown path",
            Method::POST,
            "/nothing/here",
            b"{}",
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
        ),
    ];
    for (name, method, path, body, status, code) in cases {
        let response = iot
            .send(
                method,
                path,
                &[("content-type", "application/json")],
                Bytes::from_static(body),
            )
            .await
            .expect("sent");
        assert_eq!(response.status, status, "{name}");
        let error = response.error_for_status().expect_err(name);
        assert_eq!(error.code, code, "{name}: {error}");
        assert!(!error.message.is_empty(), "{name}");
        assert_eq!(
            gone(),
            Err(ErrorCode::ResourceNotFound),
            "{name} stored a thing"
        );
    }

    // A data-plane operation signed for the control plane's service is refused.
    let response = iot
        .send(Method::GET, "/things/t/shadow", &[], Bytes::new())
        .await
        .expect("sent");
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    assert_eq!(
        response.error_for_status().expect_err("refused").code,
        "InvalidSignatureException"
    );

    // A shadow document that is not JSON, and one over AWS's 8 KB.
    let data = client(&setup, &credentials, "iotdata");
    control
        .create_thing(iotcore_emulator::control::CreateThingRequest::named("t"))
        .expect("thing");
    for (body, status) in [
        (Bytes::from_static(b"{nope"), StatusCode::BAD_REQUEST),
        (
            Bytes::from(json!({"state": {"desired": {"x": "y".repeat(9000)}}}).to_string()),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ] {
        let response = data
            .send(Method::POST, "/things/t/shadow", &[], body)
            .await
            .expect("sent");
        assert_eq!(response.status, status);
    }
    let response = data
        .send(Method::GET, "/things/t/shadow", &[], Bytes::new())
        .await
        .expect("sent");
    assert_eq!(
        response.status,
        StatusCode::NOT_FOUND,
        "no shadow was stored"
    );

    // A topic label carries '/' and '$' percent-encoded, as AWS's SDKs send it.
    let path = format!("/topics/{}?qos=1&retain=true", encode_label("dt/t/state"));
    data.send(Method::POST, &path, &[], Bytes::from_static(b"on"))
        .await
        .expect("sent")
        .error_for_status()
        .expect("published");
    let retained = data
        .call(
            Method::GET,
            &format!("/retainedMessage/{}", encode_label("dt/t/state")),
            None,
        )
        .await
        .expect("retained");
    assert_eq!(retained["topic"], json!("dt/t/state"));
}

#[tokio::test]
async fn a_device_publishes_over_https_as_its_policy_allows() {
    let (setup, _) = start().await;
    let device = setup.device_with("meter", ThingPolicy::default());
    let app = setup.device("app");
    let mut subscriber = RawClient::connected(setup.addr(), &app, ProtocolVersion::V5).await;
    subscriber.subscribe(1, &["dt/#"], QoS::AtLeastOnce).await;
    let port = setup.emulator.api_addr().expect("API").port();
    let files = &device.files;
    let publish = |topic: &str| -> Vec<OsString> {
        vec![
            "--port".into(),
            port.to_string().into(),
            "--ca".into(),
            files.root_ca.clone().into(),
            "--cert".into(),
            files.certificate.clone().into(),
            "--key".into(),
            files.private_key.clone().into(),
            "--topic".into(),
            topic.into(),
            "--payload".into(),
            "{\"kwh\":12}".into(),
        ]
    };
    // Its own topic: allowed, and delivered to MQTT subscribers.
    let output = run_peer("https_publish.py", publish("dt/meter/energy")).await;
    output.assert_success();
    assert_eq!(
        output.events_named("response")[0]["status"],
        json!(200),
        "{output}"
    );
    let message = subscriber.recv_publish().await;
    assert_eq!(message.topic, "dt/meter/energy");
    assert_eq!(&message.payload[..], b"{\"kwh\":12}");
    // The same on the MQTT port, with ALPN x-amzn-http-ca as on AWS's port 443.
    let mut args = publish("dt/meter/energy");
    args[1] = setup.addr().port().to_string().into();
    args.extend(["--alpn".into(), "x-amzn-http-ca".into()]);
    let output = run_peer("https_publish.py", args).await;
    assert_eq!(
        output.events_named("response")[0]["status"],
        json!(200),
        "{output}"
    );
    assert_eq!(subscriber.recv_publish().await.topic, "dt/meter/energy");
    // Another device's topic: refused by its policy.
    let output = run_peer("https_publish.py", publish("dt/other/energy")).await;
    let response = &output.events_named("response")[0];
    assert_eq!(response["status"], json!(403), "{output}");
    assert_eq!(
        response["error_type"],
        json!("ForbiddenException"),
        "{output}"
    );
    // A device may not call the control plane.
    let mut args = publish("unused");
    args.extend([
        "--path".into(),
        "/things".into(),
        "--method".into(),
        "GET".into(),
    ]);
    let output = run_peer("https_publish.py", args).await;
    assert_eq!(
        output.events_named("response")[0]["status"],
        json!(403),
        "{output}"
    );
}

#[tokio::test]
async fn an_access_key_with_a_policy_may_call_only_what_the_policy_allows() {
    let (setup, _) = start().await;
    let control = setup.emulator.control();
    let document = json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["iot:DescribeThing", "iot:ListThings", "iot:CreateThing"],
             "Resource": "*"},
            {"Effect": "Deny", "Action": "iot:CreateThing",
             "Resource": "arn:aws:iot:us-east-1:123456789012:thing/secret-*"},
            {"Effect": "Allow", "Action": "iot:GetThingShadow",
             "Resource": "arn:aws:iot:us-east-1:123456789012:thing/lamp"}
        ]
    });
    control
        .create_policy(iotcore_emulator::control::CreatePolicyRequest {
            policy_name: "reader".into(),
            policy_document: document.to_string(),
            tags: None,
        })
        .expect("policy");
    let key = control
        .create_access_key(
            "dashboard",
            &AccessKeyOptions {
                policy: Some("reader".into()),
                ..AccessKeyOptions::default()
            },
        )
        .expect("key");
    let credentials = ApiCredentials::new(key.access_key_id, key.secret_access_key);
    let iot = client(&setup, &credentials, "iot");
    let status = |response: iotcore_emulator::api::client::RawResponse| {
        let status = response.status;
        let code = response
            .error_for_status()
            .err()
            .map(|e| (e.code, e.message));
        (status, code)
    };
    let list = iot
        .send(Method::GET, "/things", &[], Bytes::new())
        .await
        .expect("sent");
    assert_eq!(status(list).0, StatusCode::OK);
    let create = |name: &str| {
        let iot = &iot;
        let path = format!("/things/{name}");
        async move {
            iot.send(Method::POST, &path, &[], Bytes::from_static(b"{}"))
                .await
                .expect("sent")
        }
    };
    assert_eq!(status(create("lamp").await).0, StatusCode::OK);
    let (denied, error) = status(create("secret-1").await);
    assert_eq!(denied, StatusCode::FORBIDDEN);
    let (code, message) = error.expect("an error");
    assert_eq!(code, "AccessDeniedException");
    assert!(
        message.contains("iot:CreateThing") && message.contains("explicit deny"),
        "{message}"
    );
    let (denied, error) = status(
        iot.send(Method::DELETE, "/things/lamp", &[], Bytes::new())
            .await
            .expect("sent"),
    );
    assert_eq!(denied, StatusCode::FORBIDDEN, "{error:?}");
    assert!(
        control
            .describe_thing(DescribeThingRequest {
                thing_name: "lamp".into()
            })
            .is_ok(),
        "a denied call changes nothing"
    );
    // The data plane: this thing's shadow only.
    let data = client(&setup, &credentials, "iotdata");
    for (thing, expected) in [
        ("lamp", StatusCode::NOT_FOUND),
        ("other", StatusCode::FORBIDDEN),
    ] {
        let response = data
            .send(
                Method::GET,
                &format!("/things/{thing}/shadow"),
                &[],
                Bytes::new(),
            )
            .await
            .expect("sent");
        assert_eq!(response.status, expected, "{thing}");
    }
}
