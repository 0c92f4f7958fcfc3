//! Greengrass on the emulator's cloud side, with AWS's own clients: boto3's
//! `greengrassv2` and `greengrass` clients manage client devices and
//! connectivity information (`tests/peers/greengrass_control_plane.py`);
//! AWS's Python SDK v2 `DiscoveryClient` discovers a thing's core devices
//! (`tests/peers/awsiot_discovery.py`) on the MQTT port with ALPN
//! `x-amzn-http-ca` and on the API port, and gets AWS's refusals; the exact
//! bodies of those refusals are read with hyper.
//!
//! Needs `scripts/setup-peers` to have run.

mod support;

use std::ffi::OsString;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use iotcore_emulator::control::{
    AccessKeyOptions, BatchClientDevicesRequest, CreateThingRequest, GetConnectivityInfoRequest,
    ThingPolicy, UpdateConnectivityInfoRequest,
};
use iotcore_model::greengrass::ConnectivityInfo;
use iotcore_test_support::{PeerOutput, run_peer};
use serde_json::{Value, json};
use support::{Device, Setup};

/// An emulator with its API on a free port.
async fn start() -> Setup {
    Setup::start_with(|config| config.with_api_bind("127.0.0.1:0".parse().expect("addr"))).await
}

fn endpoint(setup: &Setup) -> String {
    let port = setup.emulator.api_addr().expect("API listening").port();
    format!("https://localhost:{port}")
}

#[tokio::test]
async fn boto3_manages_client_devices_and_connectivity_with_aws_answers_and_errors() {
    let setup = start().await;
    let control = setup.emulator.control();
    for name in ["core1", "dev1", "dev2", "dev3"] {
        control
            .create_thing(CreateThingRequest::named(name))
            .expect("thing");
    }
    control.register_core_device("core1").expect("core device");
    let key = control
        .create_access_key("tests", &AccessKeyOptions::default())
        .expect("access key");
    let args: Vec<OsString> = vec![
        "--endpoint".into(),
        endpoint(&setup).into(),
        "--ca".into(),
        support::ca_file(&setup).into(),
        "--access-key-id".into(),
        key.access_key_id.into(),
        "--secret".into(),
        key.secret_access_key.into(),
    ];
    let output = run_peer("greengrass_control_plane.py", &args).await;
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
    assert!(done[0]["passed"].as_u64() >= Some(12), "{output}");
    output.assert_success();

    // What boto3 changed is what the control layer holds.
    let clients: Vec<String> = control
        .list_core_devices()
        .expect("cores")
        .into_iter()
        .flat_map(|core| core.client_devices)
        .collect();
    assert_eq!(clients, ["dev1", "dev2"]);
    let connectivity = control
        .get_connectivity_info(GetConnectivityInfoRequest {
            thing_name: "core1".into(),
        })
        .expect("connectivity")
        .connectivity_info;
    let hosts: Vec<(&str, u16)> = connectivity
        .iter()
        .map(|c| (c.host_address.as_str(), c.port))
        .collect();
    assert_eq!(hosts, [("127.0.0.1", 8883), ("localhost", 18883)]);
}

/// The policy that lets a device discover as any thing named `dev*`.
const DISCOVER_POLICY: &str = "discover-dev";

/// An emulator with its API and discovery ports on free ports; core device `core1` with two
/// addresses and the emulator's CA as its CA; devices `dev1` (associated),
/// `dev2` (not associated), both allowed to discover, and `dev3`
/// (associated, its policy does not allow discovery).
async fn discovery_setup() -> (Setup, [Device; 3]) {
    let setup = Setup::start_with(|config| {
        config
            .with_api_bind("127.0.0.1:0".parse().expect("addr"))
            .with_discovery_bind("127.0.0.1:0".parse().expect("addr"))
    })
    .await;
    let control = setup.emulator.control();
    let arn = |name: &str| format!("{}thing/{name}", control.arn_scope().prefix());
    support::create_policy(
        control,
        DISCOVER_POLICY,
        &json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "greengrass:Discover", "Resource": arn("dev*")},
            {"Effect": "Deny", "Action": "greengrass:Discover", "Resource": arn("dev3")},
        ]})
        .to_string(),
    );
    let devices = ["dev1", "dev2", "dev3"]
        .map(|name| setup.device_with(name, ThingPolicy::Existing(DISCOVER_POLICY.into())));
    control
        .create_thing(CreateThingRequest::named("core1"))
        .expect("core thing");
    control.register_core_device("core1").expect("core device");
    control
        .update_connectivity_info(UpdateConnectivityInfoRequest {
            thing_name: "core1".into(),
            connectivity_info: vec![
                address("lan", "192.0.2.10", 8883),
                address("lo", "127.0.0.1", 18883),
            ],
        })
        .expect("connectivity");
    control
        .put_certificate_authorities("core1", &[setup.emulator.ca_pem().to_owned()])
        .expect("core CA");
    control
        .batch_associate_client_device_with_core_device(BatchClientDevicesRequest::new(
            "core1",
            ["dev1", "dev3"],
        ))
        .expect("associated");
    (setup, devices)
}

fn address(id: &str, host: &str, port: u16) -> ConnectivityInfo {
    ConnectivityInfo {
        id: id.into(),
        host_address: host.into(),
        port,
        metadata: String::new(),
    }
}

/// `awsiot_discovery.py` as `device` on `port`.
async fn aws_discovery(device: &Device, port: u16) -> PeerOutput {
    let files = &device.files;
    let port = port.to_string();
    let args: Vec<OsString> = [
        ("--port", port.as_ref()),
        ("--ca", files.root_ca.as_os_str()),
        ("--cert", files.certificate.as_os_str()),
        ("--key", files.private_key.as_os_str()),
        ("--thing", device.name.as_ref()),
    ]
    .into_iter()
    .flat_map(|(flag, value): (&str, &std::ffi::OsStr)| [flag.into(), value.to_owned()])
    .collect();
    run_peer("awsiot_discovery.py", &args).await
}

#[tokio::test]
async fn aws_discovery_client_finds_the_core_on_the_mqtt_api_and_discovery_ports() {
    let (setup, [dev1, ..]) = discovery_setup().await;
    let api_port = setup.emulator.api_addr().expect("API").port();
    let discovery_port = setup.emulator.discovery_addr().expect("discovery").port();
    for port in [setup.addr().port(), api_port, discovery_port] {
        let output = aws_discovery(&dev1, port).await;
        let discovered = output.events_named("discovered");
        assert_eq!(discovered.len(), 1, "port {port}: {output}");
        assert_eq!(
            discovered[0]["alpn"],
            json!(true),
            "the CRT offered ALPN x-amzn-http-ca"
        );
        let arn = format!("{}thing/core1", setup.emulator.arn_scope().prefix());
        assert_eq!(
            discovered[0]["groups"],
            json!([{
                "id": "greengrassV2-coreDevice-core1",
                "cores": [{"thing_arn": arn, "connectivity": [
                    {"id": "lan", "host_address": "192.0.2.10", "port": 8883, "metadata": ""},
                    {"id": "lo", "host_address": "127.0.0.1", "port": 18883, "metadata": ""},
                ]}],
                "cas": [setup.emulator.ca_pem()],
            }]),
            "port {port}"
        );
        output.assert_success();
    }
}

#[tokio::test]
async fn aws_discovery_client_gets_403_404_and_a_closed_connection() {
    let (setup, [dev1, dev2, dev3]) = discovery_setup().await;
    let port = setup.addr().port();
    let refused = |output: &PeerOutput| {
        output
            .events_named("refused")
            .first()
            .map(|e| e["http_response_code"].clone())
    };
    let output = aws_discovery(&dev3, port).await;
    assert_eq!(refused(&output), Some(json!(403)), "{output}");
    let output = aws_discovery(&dev2, port).await;
    assert_eq!(refused(&output), Some(json!(404)), "{output}");

    support::set_certificate_status(
        setup.emulator.control(),
        &dev1.credentials.certificate_id,
        "INACTIVE",
    );
    let api_port = setup.emulator.api_addr().expect("API").port();
    let output = aws_discovery(&dev1, api_port).await;
    assert!(
        refused(&output).is_none(),
        "no HTTP answer at all: {output}"
    );
    let errors = output.events_named("error");
    assert_eq!(errors.len(), 1, "{output}");
    assert!(
        errors[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("CLOSED") || m.contains("closed")),
        "{output}"
    );
}

/// One discovery request as `device` (thing `thing`) over TLS to `addr`
/// with `alpn`: the status, the `x-amzn-ErrorType` header and the body.
async fn raw_discover(
    setup: &Setup,
    addr: SocketAddr,
    device: &Device,
    thing: &str,
    alpn: Option<&[u8]>,
) -> Result<(StatusCode, Option<String>, Value), hyper::Error> {
    let path = format!("/greengrass/discover/thing/{thing}");
    raw_get(setup, addr, device, &path, alpn).await
}

/// `GET path` as `device` over TLS to `addr` with `alpn`: the status, the
/// `x-amzn-ErrorType` header and the JSON body.
async fn raw_get(
    setup: &Setup,
    addr: SocketAddr,
    device: &Device,
    path: &str,
    alpn: Option<&[u8]>,
) -> Result<(StatusCode, Option<String>, Value), hyper::Error> {
    let config = support::tls_config(
        setup.emulator.ca_pem(),
        &device.credentials.certificate_pem,
        &device.credentials.private_key_pem,
        alpn,
    );
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("tcp");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("localhost".try_into().expect("name"), tcp)
        .await
        .expect("tls");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(connection);
    let request = http::Request::get(path)
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let response = sender.send_request(request).await?;
    let status = response.status();
    let error_type = response
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.into_body().collect().await?.to_bytes();
    let body = serde_json::from_slice(&body).expect("a JSON body");
    Ok((status, error_type, body))
}

#[tokio::test]
async fn refusals_have_aws_bodies_and_a_certificate_discovers_only_its_thing() {
    let (setup, [dev1, dev2, dev3]) = discovery_setup().await;
    let alpn = Some(&b"x-amzn-http-ca"[..]);
    let (status, error_type, body) = raw_discover(&setup, setup.addr(), &dev3, "dev3", alpn)
        .await
        .expect("answered");
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(error_type.is_some());
    assert_eq!(body["message"], Value::Null);
    assert!(
        body["traceId"].as_str().is_some_and(|t| t.len() == 36),
        "{body}"
    );

    let (status, error_type, body) = raw_discover(&setup, setup.addr(), &dev2, "dev2", alpn)
        .await
        .expect("answered");
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(error_type.is_some());
    assert_eq!(
        body,
        json!({"errorMessage": "The thing provided for discovery was not found"})
    );

    let api = setup.emulator.api_addr().expect("API");
    let (status, _, body) = raw_discover(&setup, api, &dev1, "dev1", None)
        .await
        .expect("answered");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["GGGroups"][0]["Cores"][0]["Connectivity"][1]["PortNumber"],
        18883
    );

    let error = raw_discover(&setup, api, &dev2, "dev1", None)
        .await
        .expect_err("dev2's certificate is not attached to dev1: no answer");
    let eof = std::error::Error::source(&error)
        .and_then(|e| e.downcast_ref::<std::io::Error>())
        .is_some_and(|e| e.kind() == std::io::ErrorKind::UnexpectedEof);
    assert!(error.is_incomplete_message() || eof, "{error:?}");

    let discovery = setup.emulator.discovery_addr().expect("discovery port");
    let (status, error_type, _) = raw_get(&setup, discovery, &dev1, "/things/dev1/shadow", None)
        .await
        .expect("answered");
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the discovery port serves discovery alone"
    );
    assert_eq!(error_type.as_deref(), Some("UnknownOperationException"));
}
