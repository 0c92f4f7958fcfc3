//! AWS IoT Core answers a publish or subscribe that the device's policy does
//! not allow by closing the connection (MQTT 3.1.1). The client must say so,
//! naming the topic. A scripted broker plays AWS's part.

mod common;

use std::sync::Arc;

use bytes::BytesMut;
use iotcore::{ConnectionState, DisconnectReason, ErrorKind, Operation, QoS};
use iotcore_mqtt::packet::{self, ConnAck};
use iotcore_mqtt::{Packet, ProtocolVersion, ReasonCode};
use iotcore_test_support::{TestPki, init_tracing};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use common::{Credentials, builder_for, next};

/// Accepts TLS connections, answers CONNECT with CONNACK, and closes the
/// connection (close_notify, then FIN) on the first PUBLISH or SUBSCRIBE.
async fn start_denying_broker(pki: &TestPki) -> u16 {
    let certs = CertificateDer::pem_file_iter(pki.server().cert())
        .expect("server cert")
        .collect::<Result<Vec<_>, _>>()
        .expect("server cert");
    let key = PrivateKeyDer::from_pem_file(pki.server().key()).expect("server key");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = BytesMut::new();
                loop {
                    let packet = loop {
                        match packet::decode(&mut buf, ProtocolVersion::V311, 1 << 20) {
                            Ok(Some(p)) => break p,
                            Ok(None) => {}
                            Err(_) => return,
                        }
                        match tls.read_buf(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                    };
                    match packet {
                        Packet::Connect(_) => {
                            let connack = Packet::ConnAck(ConnAck {
                                session_present: false,
                                reason: ReasonCode::SUCCESS,
                                properties: Default::default(),
                            });
                            let mut out = BytesMut::new();
                            connack
                                .encode(ProtocolVersion::V311, &mut out)
                                .expect("encode CONNACK");
                            if tls.write_all(&out).await.is_err() {
                                return;
                            }
                        }
                        Packet::Publish(_) | Packet::Subscribe(_) => {
                            let _ = tls.shutdown().await;
                            return;
                        }
                        _ => {}
                    }
                }
            });
        }
    });
    port
}

async fn denied_reason(operation: Operation, topic: &str) -> DisconnectReason {
    init_tracing();
    let pki = TestPki::generate().expect("test PKI");
    let port = start_denying_broker(&pki).await;
    let creds = Credentials {
        cert: pki.client().cert().to_owned(),
        key: pki.client().key().to_owned(),
    };
    let device = builder_for(port, pki.ca_path(), &creds, "dev-denied")
        .connect()
        .await
        .expect("connect");
    let mut events = device.status_events();
    let request = {
        let device = device.clone();
        let topic = topic.to_owned();
        tokio::spawn(async move {
            match operation {
                Operation::Publish => device.publish(topic, "x", QoS::AtLeastOnce).await,
                _ => device.subscribe(topic, QoS::AtLeastOnce).await.map(drop),
            }
        })
    };
    let reason = match next("the hang-up", &mut events).await {
        ConnectionState::Disconnected { reason } => reason,
        other => panic!("expected Disconnected, got {other:?}"),
    };
    device.close().await;
    let outcome = request.await.expect("request task");
    assert_eq!(
        outcome.expect_err("never acknowledged").kind(),
        ErrorKind::Closed
    );
    reason
}

#[tokio::test]
async fn a_hang_up_right_after_a_publish_is_reported_as_a_policy_denial_naming_the_topic() {
    let reason = denied_reason(Operation::Publish, "dt/dev-denied/secret").await;
    assert_eq!(
        reason,
        DisconnectReason::PolicyDenialSuspected {
            operation: Operation::Publish,
            topic: "dt/dev-denied/secret".into()
        }
    );
    let text = reason.to_string();
    assert!(
        text.contains("iot:Publish on topic/dt/dev-denied/secret"),
        "{text}"
    );
}

#[tokio::test]
async fn a_hang_up_right_after_a_subscribe_is_reported_as_a_policy_denial_naming_the_filter() {
    let reason = denied_reason(Operation::Subscribe, "cmd/dev-denied/#").await;
    assert_eq!(
        reason,
        DisconnectReason::PolicyDenialSuspected {
            operation: Operation::Subscribe,
            topic: "cmd/dev-denied/#".into()
        }
    );
}
