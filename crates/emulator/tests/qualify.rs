//! The qualifying server against scripted devices over real TLS: a device
//! that does what a case asks passes it, one that does not fails it, and the
//! server's faults are the case's (PUBACK withheld, PINGRESP withheld, the
//! connection cut after CONNACK).

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use iotcore_emulator::pki::{KeyAlgorithm, Pki};
use iotcore_emulator::qualify::{CaseId, Qualifier, Verdict};
use iotcore_mqtt::packet::Publish;
use iotcore_mqtt::{Packet, ProtocolVersion, QoS};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use support::{RawClient, connect_packet, publish, tls_config};
use tokio::net::TcpListener;

struct Bench {
    _dir: tempfile::TempDir,
    qualifier: Qualifier,
    config: rustls::ClientConfig,
}

async fn bench() -> Bench {
    bench_with(|qualifier| qualifier).await
}

/// A bench whose qualifier `setup` configures.
async fn bench_with(setup: impl FnOnce(Qualifier) -> Qualifier) -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let pki = Arc::new(Pki::load_or_create(dir.path()).unwrap());
    let device = pki
        .issue_device_certificate("dut", KeyAlgorithm::EcdsaP256)
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let qualifier = setup(Qualifier::new(listener, Arc::clone(&pki)).unwrap());
    let config = tls_config(
        pki.ca_pem(),
        &device.certificate_pem,
        &device.private_key_pem,
        None,
    );
    Bench {
        _dir: dir,
        qualifier,
        config,
    }
}

impl Bench {
    async fn device(&self) -> RawClient {
        let addr = self.qualifier.local_addr().unwrap();
        RawClient::open_with(addr, self.config.clone())
            .await
            .unwrap()
    }

    /// A device connected as `dut` with `protocol` (whatever the CONNACK said).
    async fn connected(&self, protocol: ProtocolVersion) -> RawClient {
        let mut device = self.device().await;
        device.handshake(connect_packet("dut", protocol)).await;
        device
    }

    /// A device connected as `dut` with MQTT 3.1.1 and subscribed to `filter`.
    async fn subscribed(&self, filter: &str) -> RawClient {
        let mut device = self.connected(ProtocolVersion::V311).await;
        device.subscribe(1, &[filter], QoS::AtLeastOnce).await;
        device
    }
}

/// The JSON payload of `message`.
fn json_of(message: &Publish) -> serde_json::Value {
    serde_json::from_slice(&message.payload).unwrap()
}

const LIMIT: Duration = Duration::from_secs(3);

#[tokio::test]
async fn a_publish_sent_again_with_its_packet_id_passes_and_one_never_sent_again_fails() {
    let bench = bench().await;
    let good = async {
        let mut device = bench.connected(ProtocolVersion::V311).await;
        device
            .send(&publish("dt/dut", QoS::AtLeastOnce, Some(9), "1"))
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut again = publish("dt/dut", QoS::AtLeastOnce, Some(9), "1");
        if let Packet::Publish(p) = &mut again {
            p.dup = true;
        }
        device.send(&again).await;
        device
    };
    let (result, _device) = tokio::join!(
        bench.qualifier.run(CaseId::MqttPublishRetryNoPuback, LIMIT),
        good
    );
    assert_eq!(result.outcome.verdict, Verdict::Pass, "{result:?}");

    let bad = async {
        let mut device = bench.connected(ProtocolVersion::V311).await;
        device
            .send(&publish("dt/dut", QoS::AtLeastOnce, Some(9), "1"))
            .await;
        device
    };
    let (result, _device) = tokio::join!(
        bench
            .qualifier
            .run(CaseId::MqttPublishRetryNoPuback, Duration::from_secs(1)),
        bad
    );
    assert_eq!(result.outcome.verdict, Verdict::Fail, "{result:?}");
}

#[tokio::test]
async fn a_device_must_give_up_a_connection_that_stopped_answering() {
    let bench = bench().await;
    let gives_up = async {
        let mut device = bench.connected(ProtocolVersion::V5).await;
        device.send(&Packet::PingReq).await;
        // No PINGRESP: the device closes.
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(device);
    };
    let (result, ()) = tokio::join!(
        bench.qualifier.run(CaseId::MqttNoAckPingResp, LIMIT),
        gives_up
    );
    assert_eq!(result.outcome.verdict, Verdict::Pass, "{result:?}");

    let hangs_on = async {
        let mut device = bench.connected(ProtocolVersion::V5).await;
        device.send(&Packet::PingReq).await;
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        device
    };
    let (result, _device) = tokio::join!(
        bench
            .qualifier
            .run(CaseId::MqttNoAckPingResp, Duration::from_secs(1)),
        hangs_on
    );
    assert_eq!(result.outcome.verdict, Verdict::Fail, "{result:?}");
}

/// Reconnects after each cut with the waits given.
async fn reconnecting(bench: &Bench, waits: &[u64]) {
    for (n, wait) in std::iter::once(&0).chain(waits).enumerate() {
        tokio::time::sleep(Duration::from_millis(*wait)).await;
        let mut device = bench.device().await;
        let connack = device
            .handshake(connect_packet("dut", ProtocolVersion::V5))
            .await;
        assert!(!connack.reason.is_error());
        // The server ends the connection (DISCONNECT 0x8B, then close); the
        // last one ends with the case, graded on its CONNECT.
        let packets = device.until_closed().await;
        assert!(
            n == waits.len() || matches!(packets.last(), Some(Packet::Disconnect(_))),
            "{packets:?}"
        );
    }
}

#[tokio::test]
async fn reconnects_after_server_disconnects_are_graded_by_their_backoff() {
    let bench = bench().await;
    let case = CaseId::MqttReconnectBackoffRetriesOnServerDisconnect;
    let limit = Duration::from_secs(10);
    let (result, ()) = tokio::join!(
        bench.qualifier.run(case, limit),
        reconnecting(&bench, &[100, 100, 100, 100, 100])
    );
    assert_eq!(result.outcome.verdict, Verdict::Fail, "{result:?}");
    assert!(
        result.outcome.evidence[0].contains("constant"),
        "{result:?}"
    );
    assert_eq!(result.connections, 6);

    let (result, ()) = tokio::join!(
        bench.qualifier.run(case, limit),
        reconnecting(&bench, &[50, 300, 120, 900, 1_500])
    );
    assert_eq!(result.outcome.verdict, Verdict::Pass, "{result:?}");
    assert!(
        result.outcome.evidence[0].contains("jittered"),
        "{result:?}"
    );
}

#[tokio::test]
async fn the_client_hello_and_connect_are_recorded() {
    let bench = bench().await;
    for case in [
        CaseId::TlsConnect,
        CaseId::TlsSupportAwsIotCipherSuites,
        CaseId::MqttConnect,
    ] {
        // The case may be decided, and its connections closed, at any step of
        // this device's: it takes no answer for granted.
        let device = try_connect(&bench, bench.config.clone());
        let (result, ()) = tokio::join!(bench.qualifier.run(case, LIMIT), device);
        assert_eq!(result.outcome.verdict, Verdict::Pass, "{result:?}");
    }
}

/// Accepts any server certificate: a device that does not check.
#[derive(Debug)]
struct TrustsAnything(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for TrustsAnything {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Opens TLS with `config` and, if the handshake completes, sends CONNECT.
async fn try_connect(bench: &Bench, config: rustls::ClientConfig) {
    let addr = bench.qualifier.local_addr().unwrap();
    if let Ok(mut device) = RawClient::open_with(addr, config).await {
        let mut connect = BytesMut::new();
        Packet::Connect(Box::new(connect_packet("dut", ProtocolVersion::V311)))
            .encode(ProtocolVersion::V311, &mut connect)
            .unwrap();
        if device.send_raw(&connect).await.is_ok() {
            device.until_closed().await;
        }
    }
}

#[tokio::test]
async fn flawed_server_certificates_must_be_refused_and_a_large_one_taken() {
    let bench = bench().await;
    let mut careless = bench.config.clone();
    careless
        .dangerous()
        .set_certificate_verifier(Arc::new(TrustsAnything(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))));
    for case in [
        CaseId::TlsUnsecureServerCert,
        CaseId::TlsIncorrectSubjectNameServerCert,
        CaseId::TlsExpiredServerCert,
    ] {
        let (result, ()) = tokio::join!(
            bench.qualifier.run(case, LIMIT),
            try_connect(&bench, bench.config.clone())
        );
        assert_eq!(result.outcome.verdict, Verdict::Pass, "{result:?}");
        let (result, ()) = tokio::join!(
            bench.qualifier.run(case, LIMIT),
            try_connect(&bench, careless.clone())
        );
        assert_eq!(result.outcome.verdict, Verdict::Fail, "{result:?}");
    }
    let (result, ()) = tokio::join!(
        bench.qualifier.run(CaseId::TlsLargeSizeServerCert, LIMIT),
        try_connect(&bench, bench.config.clone())
    );
    assert_eq!(result.outcome.verdict, Verdict::Pass, "{result:?}");
}

/// A device that waits for notify-next, takes the job it names and reports
/// `status`; returns the job document it was given.
async fn running_the_job(bench: &Bench, status: &str) -> (serde_json::Value, RawClient) {
    let mut device = bench.subscribed("$aws/things/dut/jobs/notify-next").await;
    let notified = device.recv_publish().await;
    assert_eq!(notified.topic, "$aws/things/dut/jobs/notify-next");
    let next = json_of(&notified);
    let job_id = next["execution"]["jobId"].as_str().unwrap().to_owned();
    let document = next["execution"]["jobDocument"].clone();
    let update = format!("$aws/things/dut/jobs/{job_id}/update");
    for (n, status) in [(2, "IN_PROGRESS"), (3, status)] {
        let body = serde_json::json!({ "status": status, "clientToken": "t" }).to_string();
        device
            .send(&publish(&update, QoS::AtLeastOnce, Some(n), body))
            .await;
        // PUBACK, then the reply on …/update/accepted.
        assert!(matches!(device.recv().await, Some(Packet::PubAck(_))));
        let reply = device.recv_publish().await;
        assert_eq!(reply.topic, format!("{update}/accepted"), "{reply:?}");
    }
    (document, device)
}

#[tokio::test]
async fn a_job_run_to_succeeded_passes_and_one_reported_failed_fails() {
    let bench = bench().await;
    let (result, (document, _device)) = tokio::join!(
        bench.qualifier.run(CaseId::JobExecution, LIMIT),
        running_the_job(&bench, "SUCCEEDED")
    );
    assert_eq!(result.outcome.verdict, Verdict::Pass, "{result:?}");
    assert_eq!(document, iotcore_emulator::qualify::default_document());
    assert!(
        result.outcome.evidence[0].contains("UpdateJobExecution device-advisor-job IN_PROGRESS"),
        "{result:?}"
    );

    // Each run queues a job afresh: the second device is told of one too.
    let (result, _) = tokio::join!(
        bench.qualifier.run(CaseId::JobExecution, LIMIT),
        running_the_job(&bench, "FAILED")
    );
    assert_eq!(result.outcome.verdict, Verdict::Fail, "{result:?}");
    assert!(result.outcome.evidence[0].contains("FAILED"), "{result:?}");
}

#[tokio::test]
async fn the_job_document_is_the_one_given_and_describe_next_finds_the_job() {
    let ota = serde_json::json!({ "operation": "ota", "url": "file:///firmware.bin" });
    let bench = bench_with(|q| q.with_job_document(ota.clone())).await;
    // A device that asks for $next without subscribing to anything.
    let asks = async {
        let mut device = bench.connected(ProtocolVersion::V5).await;
        device
            .send(&publish(
                "$aws/things/dut/jobs/$next/get",
                QoS::AtMostOnce,
                None,
                "{}",
            ))
            .await;
        let reply = device.recv_publish().await;
        assert_eq!(reply.topic, "$aws/things/dut/jobs/$next/get/accepted");
        (json_of(&reply), device)
    };
    let (result, (body, _device)) = tokio::join!(
        bench
            .qualifier
            .run(CaseId::JobExecution, Duration::from_secs(1)),
        asks
    );
    assert_eq!(body["execution"]["jobDocument"], ota, "{body}");
    // It never reported: the evidence says what it did.
    assert_eq!(result.outcome.verdict, Verdict::Fail, "{result:?}");
    assert!(
        result.outcome.evidence[0].contains("DescribeJobExecution $next (accepted)"),
        "{result:?}"
    );
}

#[tokio::test]
async fn the_policies_given_are_checked_for_wildcards() {
    use iotcore_emulator::policy::{ArnScope, PolicyDocument, PolicyTemplate};
    let check = |template: PolicyTemplate| async move {
        let document = PolicyDocument::parse(&template.render(&ArnScope::default())).unwrap();
        let bench = bench_with(|q| q.with_policies(vec![(template.to_string(), document)])).await;
        bench
            .qualifier
            .run(CaseId::SecurityDevicePolicies, Duration::from_secs(1))
            .await
            .outcome
    };
    // The device template confines each device to its own topics, with
    // wildcards after its thing name: a warning. The application's spans
    // every device: a failure.
    let device = check(PolicyTemplate::Thing).await;
    assert_eq!(device.verdict, Verdict::PassWithWarnings, "{device:?}");
    assert!(
        device.evidence[1].contains("${iot:Connection.Thing.ThingName}"),
        "{device:?}"
    );
    let application = check(PolicyTemplate::Application).await;
    assert_eq!(application.verdict, Verdict::Fail, "{application:?}");
    assert!(
        application
            .evidence
            .iter()
            .any(|e| e.contains("topic/dt/*")),
        "{application:?}"
    );
}

#[tokio::test]
async fn the_long_duration_case_warns_of_no_retry_and_fails_a_device_that_stays_away() {
    use iotcore_emulator::qualify::LongDuration;
    let bench = bench_with(|q| {
        q.with_long_duration(LongDuration {
            retry_window: Duration::from_millis(300),
            scenarios: Vec::new(),
            ..LongDuration::default()
        })
    })
    .await;
    // Subscribes and publishes once, sends nothing again, and does not come
    // back when dropped.
    let once = async {
        let mut device = bench.connected(ProtocolVersion::V311).await;
        device
            .send(&support::subscribe(1, &["cmd/dut"], QoS::AtLeastOnce))
            .await;
        device
            .send(&publish("dt/dut", QoS::AtLeastOnce, Some(7), "1"))
            .await;
        // The answers come after the window, then the connection is dropped.
        device.until_closed().await
    };
    let (result, answers) = tokio::join!(
        bench
            .qualifier
            .run(CaseId::MqttLongDuration, Duration::from_secs(1)),
        once
    );
    assert!(
        answers.iter().any(|p| matches!(p, Packet::SubAck(_))),
        "{answers:?}"
    );
    assert!(
        answers.iter().any(|p| matches!(p, Packet::PubAck(_))),
        "{answers:?}"
    );
    assert_eq!(result.outcome.verdict, Verdict::Fail, "{result:#?}");
    let evidence = result.outcome.evidence.join("\n");
    assert!(evidence.contains("CONNECT: PASS"), "{evidence}");
    assert!(
        evidence.contains(
            "PUBLISH: PASS_WITH_WARNINGS — the device did not send its first QoS 1 PUBLISH again"
        ),
        "{evidence}"
    );
    assert!(
        evidence.contains("SUBSCRIBE: PASS_WITH_WARNINGS"),
        "{evidence}"
    );
    assert!(
        evidence.contains("RECONNECT: FAIL — the device did not connect again"),
        "{evidence}"
    );
    assert!(evidence.contains("persistent session no"), "{evidence}");
}

#[tokio::test]
async fn the_cases_shadow_and_jobs_services_read_the_qualifiers_clock() {
    use iotcore_emulator::clock::Clock;
    use std::time::UNIX_EPOCH;

    let start = 1_000_000_000;
    let (clock, _hand) = Clock::manual(UNIX_EPOCH + Duration::from_secs(start));
    let bench = bench_with(|q| q.with_clock(clock)).await;
    let reports = async {
        let mut device = bench
            .subscribed("$aws/things/dut/shadow/update/accepted")
            .await;
        let report = r#"{"state": {"reported": {"on": true}}}"#;
        device
            .send(&publish(
                "$aws/things/dut/shadow/update",
                QoS::AtMostOnce,
                None,
                report,
            ))
            .await;
        (json_of(&device.recv_publish().await), device)
    };
    let (result, (accepted, _device)) = tokio::join!(
        bench
            .qualifier
            .run(CaseId::ShadowPublishReportedState, LIMIT),
        reports
    );
    assert_eq!(result.outcome.verdict, Verdict::Pass, "{result:?}");
    assert_eq!(accepted["timestamp"], start, "{accepted}");
    assert_eq!(
        accepted["metadata"]["reported"]["on"]["timestamp"], start,
        "{accepted}"
    );

    let notified = async {
        let mut device = bench.subscribed("$aws/things/dut/jobs/notify-next").await;
        (json_of(&device.recv_publish().await), device)
    };
    let (_, (next, _device)) = tokio::join!(
        bench
            .qualifier
            .run(CaseId::JobExecution, Duration::from_secs(1)),
        notified
    );
    assert_eq!(next["timestamp"], start, "{next}");
    assert_eq!(next["execution"]["queuedAt"], start, "{next}");
}
