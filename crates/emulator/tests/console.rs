//! The console over HTTP, as a browser talks to it: its views show the
//! registry; its forms publish, edit desired and change a certificate's
//! status, and devices see the effect; its event streams carry what devices
//! do (messages, connections, refusals with why); it refuses other hosts and
//! cross-site forms. The same flows in a real browser: the CLI's
//! `console_browser` test.

mod support;

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use iotcore_emulator::EmulatorConfig;
use iotcore_emulator::control::ThingPolicy;
use iotcore_mqtt::{Packet, ProtocolVersion, QoS, ReasonCode};
use support::*;
use tokio::net::TcpStream;

const V5: ProtocolVersion = ProtocolVersion::V5;

async fn with_console() -> (Setup, SocketAddr) {
    let setup = Setup::start_with(|config: EmulatorConfig| {
        config.with_console_bind("127.0.0.1:0".parse().unwrap())
    })
    .await;
    let console = setup.emulator.console_addr().expect("the console listens");
    (setup, console)
}

/// Sends a request to the console; `form` makes it a POST of that form.
async fn send(
    console: SocketAddr,
    path: &str,
    form: Option<&[(&str, &str)]>,
    headers: &[(&str, &str)],
) -> hyper::Response<Incoming> {
    let tcp = TcpStream::connect(console)
        .await
        .expect("console reachable");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("HTTP handshake");
    tokio::spawn(connection);
    let mut request = Request::builder().uri(path);
    if !headers.iter().any(|(name, _)| *name == "host") {
        request = request.header("host", format!("127.0.0.1:{}", console.port()));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = match form {
        Some(fields) => {
            request = request
                .method("POST")
                .header("content-type", "application/x-www-form-urlencoded");
            let mut encoded = form_urlencoded::Serializer::new(String::new());
            encoded.extend_pairs(fields.iter().copied());
            Bytes::from(encoded.finish())
        }
        None => Bytes::new(),
    };
    sender
        .send_request(request.body(Full::new(body)).unwrap())
        .await
        .expect("console answers")
}

async fn get(console: SocketAddr, path: &str) -> (StatusCode, String) {
    let response = send(console, path, None, &[]).await;
    let status = response.status();
    (status, text(response).await)
}

async fn text(response: hyper::Response<Incoming>) -> String {
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8(body.to_vec()).expect("UTF-8 page")
}

/// An open event stream.
struct Events(Incoming);

impl Events {
    async fn open(console: SocketAddr, path: &str) -> Events {
        let response = send(console, path, None, &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "{path}"
        );
        Events(response.into_body())
    }

    /// Reads until what came contains every one of `wanted`; returns it all.
    async fn until(&mut self, wanted: &[&str]) -> String {
        let mut seen = String::new();
        let read = async {
            while !wanted.iter().all(|w| seen.contains(w)) {
                let frame = self.0.frame().await.expect("stream open").expect("frame");
                if let Ok(data) = frame.into_data() {
                    seen.push_str(&String::from_utf8_lossy(&data));
                }
            }
        };
        if tokio::time::timeout(PATIENCE, read).await.is_err() {
            panic!("the stream never carried {wanted:?}; it carried:\n{seen}");
        }
        seen
    }
}

#[tokio::test]
async fn every_view_answers_and_shows_the_registry() {
    let (setup, console) = with_console().await;
    let device = setup.device("sensor-1");
    let id = &device.credentials.certificate_id;
    for path in [
        "/",
        "/mqtt",
        "/shadows",
        "/things",
        "/certificates",
        "/policies",
        "/connections",
        "/jobs",
        "/greengrass",
    ] {
        let (status, page) = get(console, path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {page}");
        assert!(page.contains("<nav aria-label=\"Views\">"), "{path}");
    }
    let (_, things) = get(console, "/things").await;
    assert!(things.contains("sensor-1"), "{things}");
    let (_, certificates) = get(console, "/certificates").await;
    assert!(certificates.contains(&id[..12]) && certificates.contains("ACTIVE"));
    let (status, missing) = get(console, "/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(missing.contains("no page /nothing-here"));
    let (_, script) = get(console, "/assets/console.js").await;
    assert!(script.contains("EventSource"));
}

#[tokio::test]
async fn a_device_publish_reaches_the_page_and_a_page_publish_reaches_the_device() {
    let (setup, console) = with_console().await;
    let device = setup.device("sensor-1");
    let mut client = RawClient::connected(setup.addr(), &device, V5).await;
    let mut messages = Events::open(console, "/mqtt/stream?filter=telemetry%2F%23").await;

    assert_eq!(
        client
            .publish_qos1(1, "telemetry/sensor-1", r#"{"t":21.5}"#)
            .await,
        ReasonCode::SUCCESS
    );
    client.publish_qos1(2, "elsewhere", "not shown").await;
    client.publish_qos1(3, "telemetry/last", "plain").await;
    let seen = messages.until(&["telemetry/last"]).await;
    assert!(seen.contains("event: messages"), "{seen}");
    assert!(seen.contains("telemetry/sensor-1"), "{seen}");
    assert!(seen.contains("&quot;t&quot;: 21.5"), "pretty JSON: {seen}");
    assert!(!seen.contains("elsewhere"), "{seen}");

    client.subscribe(4, &["commands/#"], QoS::AtLeastOnce).await;
    let response = send(
        console,
        "/mqtt?filter=%23",
        Some(&[
            ("topic", "commands/sensor-1"),
            ("qos", "1"),
            ("payload", "reboot"),
        ]),
        &[],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/mqtt?filter=%23&done=Published"),
        "{location}"
    );
    let publish = client.recv_publish().await;
    assert_eq!(
        (publish.topic.as_str(), &publish.payload[..]),
        ("commands/sensor-1", &b"reboot"[..])
    );

    let refused = send(
        console,
        "/mqtt",
        Some(&[
            ("topic", "commands/sensor-1"),
            ("qos", "2"),
            ("payload", "x"),
        ]),
        &[],
    )
    .await;
    let location = refused.headers()["location"].to_str().unwrap();
    assert!(
        location.contains("error=Not+published%3A+QoS+2"),
        "{location}"
    );
}

#[tokio::test]
async fn desired_edited_on_the_page_reaches_the_device_and_its_report_reaches_the_page() {
    let (setup, console) = with_console().await;
    let device = setup.device("lamp");
    let mut client = RawClient::connected(setup.addr(), &device, V5).await;
    client
        .subscribe(
            1,
            &["$aws/things/lamp/shadow/update/delta"],
            QoS::AtLeastOnce,
        )
        .await;
    let mut shadow = Events::open(console, "/shadows/lamp/stream").await;

    let response = send(
        console,
        "/shadows/lamp",
        Some(&[("desired", r#"{"led":"on"}"#)]),
        &[],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let delta = client.recv_publish().await;
    let delta: serde_json::Value = serde_json::from_slice(&delta.payload).unwrap();
    assert_eq!(delta["state"]["led"], "on");

    client
        .publish_qos1(
            2,
            "$aws/things/lamp/shadow/update",
            r#"{"state":{"reported":{"led":"on"}}}"#,
        )
        .await;
    let seen = shadow
        .until(&["event: history", "version <strong>2</strong>"])
        .await;
    assert!(seen.contains("event: state"), "{seen}");
    let (_, page) = get(console, "/shadows/lamp").await;
    assert!(
        page.contains("Version <strong class=\"version\">2</strong>"),
        "{page}"
    );

    let bad = send(
        console,
        "/shadows/lamp",
        Some(&[("desired", r#"{"led":"#)]),
        &[],
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let page = text(bad).await;
    assert!(page.contains("desired is not valid JSON"), "{page}");
    assert!(
        page.contains("{&quot;led&quot;:</textarea>"),
        "the text sent is kept: {page}"
    );
    let (_, page) = get(console, "/shadows/lamp").await;
    assert!(
        page.contains("Version <strong class=\"version\">2</strong>"),
        "unchanged: {page}"
    );
}

#[tokio::test]
async fn revoking_on_the_page_disconnects_the_device_and_the_log_says_why() {
    let (setup, console) = with_console().await;
    let device = setup.device("meter");
    let mut log = Events::open(console, "/connections/stream").await;
    let mut client = RawClient::connected(setup.addr(), &device, V5).await;
    log.until(&["connected", "meter"]).await;
    let (_, page) = get(console, "/connections").await;
    assert!(page.contains("data-client-id=\"meter\""), "{page}");

    let id = &device.credentials.certificate_id;
    let response = send(
        console,
        &format!("/certificates/{id}"),
        Some(&[("status", "REVOKED")]),
        &[],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let packets = client.until_closed().await;
    assert!(
        matches!(packets.last(), Some(Packet::Disconnect(_)) | None),
        "{packets:?}"
    );
    let seen = log.until(&["AUTH_ERROR", "REVOKED"]).await;
    assert!(seen.contains("event: tables"), "{seen}");
    let (_, page) = get(console, "/connections").await;
    assert!(!page.contains("data-client-id=\"meter\""), "{page}");
    assert!(page.contains("AUTH_ERROR"), "{page}");
    assert_eq!(
        certificate_status(setup.emulator.control(), id).as_deref(),
        Some("REVOKED")
    );
}

/// The device `keeper` under a new policy `policy` that allows only
/// `iot:Connect`, on the condition `operator` (`ForAllValues:…`,
/// `ForAnyValue:…`) on `iot:ConnectAttributes` and `["PersistentConnect"]`.
fn connect_only_device(setup: &Setup, policy: &str, operator: &str) -> Device {
    let document = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*",
         "Condition": {operator: {"iot:ConnectAttributes": ["PersistentConnect"]}}}]});
    create_policy(setup.emulator.control(), policy, &document.to_string());
    setup.device_with("keeper", ThingPolicy::Existing(policy.into()))
}

#[tokio::test]
async fn a_connect_refused_for_its_connect_attributes_is_logged_naming_the_key() {
    let (setup, console) = with_console().await;
    let device = connect_only_device(&setup, "no-persistent", "ForAllValues:StringNotEquals");
    let mut connect = connect_packet("keeper", V5);
    connect.properties.session_expiry_interval = Some(3600);
    let mut client = RawClient::open(setup.addr(), &device).await.expect("TLS");
    client.protocol = V5;
    client.send(&Packet::Connect(Box::new(connect))).await;
    match client.recv().await {
        Some(Packet::ConnAck(ack)) => assert_eq!(ack.reason, ReasonCode::NOT_AUTHORIZED),
        other => panic!("{other:?}"),
    }
    let (_, page) = get(console, "/connections").await;
    assert!(
        page.contains("with iot:ConnectAttributes [PersistentConnect] denied"),
        "{page}"
    );
    assert!(
        page.contains("its condition on iot:ConnectAttributes does not hold"),
        "{page}"
    );
}

#[tokio::test]
async fn the_explain_form_evaluates_the_connect_attributes_ticked() {
    let (setup, console) = with_console().await;
    let device = connect_only_device(&setup, "persistent-only", "ForAnyValue:StringEquals");
    let id = &device.credentials.certificate_id;
    let explain = format!("/policies?cert={id}&action=iot%3AConnect&resource=keeper");

    let (_, page) = get(console, &explain).await;
    assert!(
        page.contains(r#"<input type="checkbox" name="persistent" value="1">"#),
        "{page}"
    );
    assert!(
        page.contains(r#"<input type="checkbox" name="will" value="1">"#),
        "{page}"
    );
    assert!(page.contains(r#"class="verdict deny">DENY"#), "{page}");
    assert!(
        page.contains("with no iot:ConnectAttributes denied"),
        "{page}"
    );

    let (_, page) = get(console, &format!("{explain}&persistent=1")).await;
    assert!(page.contains(r#"class="verdict allow">ALLOW"#), "{page}");
    assert!(
        page.contains("with iot:ConnectAttributes [PersistentConnect] allowed"),
        "{page}"
    );
    // The form keeps the box ticked for the next question.
    assert!(
        page.contains(r#"<input type="checkbox" name="persistent" value="1" checked>"#),
        "{page}"
    );

    // A will alone does not satisfy the condition.
    let (_, page) = get(console, &format!("{explain}&will=1")).await;
    assert!(page.contains(r#"class="verdict deny">DENY"#), "{page}");
    assert!(
        page.contains("with iot:ConnectAttributes [LastWill] denied"),
        "{page}"
    );
}

#[tokio::test]
async fn a_refused_publish_is_logged_with_the_policy_decision_and_explained() {
    let (setup, console) = with_console().await;
    let device = setup.device_with("narrow", ThingPolicy::default());
    let mut client = RawClient::connected(setup.addr(), &device, V5).await;
    let reason = client.publish_qos1(1, "not/mine", "x").await;
    assert_eq!(reason, ReasonCode::NOT_AUTHORIZED);
    let (_, page) = get(console, "/connections").await;
    assert!(page.contains("refused"), "{page}");
    assert!(page.contains("<code>not/mine</code>"), "{page}");

    let id = &device.credentials.certificate_id;
    let (_, explained) = get(
        console,
        &format!("/policies?cert={id}&action=iot%3APublish&resource=not%2Fmine"),
    )
    .await;
    assert!(explained.contains("DENY"), "{explained}");
    let (_, allowed) = get(
        console,
        &format!("/policies?cert={id}&action=iot%3AConnect&resource=narrow"),
    )
    .await;
    assert!(allowed.contains("ALLOW"), "{allowed}");
}

#[tokio::test]
async fn other_hosts_and_cross_site_forms_are_refused() {
    let (setup, console) = with_console().await;
    let device = setup.device("victim");
    let id = device.credentials.certificate_id.clone();
    let rebound = send(console, "/", None, &[("host", "attacker.example")]).await;
    assert_eq!(rebound.status(), StatusCode::FORBIDDEN);
    let cross_site = send(
        console,
        &format!("/certificates/{id}"),
        Some(&[("status", "REVOKED")]),
        &[("origin", "http://attacker.example")],
    )
    .await;
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        certificate_status(setup.emulator.control(), &id).as_deref(),
        Some("ACTIVE")
    );
}

#[tokio::test]
async fn the_console_listens_on_loopback_only() {
    let dir = tempfile::tempdir().unwrap();
    let config = EmulatorConfig::new(dir.path())
        .with_bind("127.0.0.1:0".parse().unwrap())
        .with_console_bind("0.0.0.0:0".parse().unwrap());
    let refused = iotcore_emulator::Emulator::start(config).await.unwrap_err();
    assert!(refused.to_string().contains("loopback"), "{refused}");
}
