//! The qualifying server against scripted devices over real TLS: a device
//! that does what a case asks passes it, one that does not fails it, and the
//! server's faults are the case's (PUBACK withheld, PINGRESP withheld, the
//! connection cut after CONNACK).

mod support;

use std::time::Duration;

use bytes::BytesMut;
use iotcore_emulator::pki::{KeyAlgorithm, Pki};
use iotcore_emulator::qualify::{CaseId, Qualifier, Verdict};
use iotcore_mqtt::{Packet, ProtocolVersion, QoS};
use support::{RawClient, connect_packet, publish, tls_config};
use tokio::net::TcpListener;

struct Bench {
    _dir: tempfile::TempDir,
    qualifier: Qualifier,
    config: rustls::ClientConfig,
}

async fn bench() -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path()).unwrap();
    let device = pki
        .issue_device_certificate("dut", KeyAlgorithm::EcdsaP256)
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let qualifier = Qualifier::new(
        listener,
        pki.server_cert_chain(),
        pki.server_private_key(),
        &[pki.ca_der().clone()],
    )
    .unwrap();
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
}

const LIMIT: Duration = Duration::from_secs(3);

#[tokio::test]
async fn a_publish_sent_again_with_its_packet_id_passes_and_one_never_sent_again_fails() {
    let bench = bench().await;
    let good = async {
        let mut device = bench.device().await;
        device
            .handshake(connect_packet("dut", ProtocolVersion::V311))
            .await;
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
        let mut device = bench.device().await;
        device
            .handshake(connect_packet("dut", ProtocolVersion::V311))
            .await;
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
        let mut device = bench.device().await;
        device
            .handshake(connect_packet("dut", ProtocolVersion::V5))
            .await;
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
        let mut device = bench.device().await;
        device
            .handshake(connect_packet("dut", ProtocolVersion::V5))
            .await;
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
        let device = async {
            let addr = bench.qualifier.local_addr().unwrap();
            if let Ok(mut device) = RawClient::open_with(addr, bench.config.clone()).await {
                let mut connect = BytesMut::new();
                Packet::Connect(connect_packet("dut", ProtocolVersion::V311))
                    .encode(ProtocolVersion::V311, &mut connect)
                    .unwrap();
                let _ = device.send_raw(&connect).await;
                device.until_closed().await;
            }
        };
        let (result, ()) = tokio::join!(bench.qualifier.run(case, LIMIT), device);
        assert_eq!(result.outcome.verdict, Verdict::Pass, "{result:?}");
    }
}
