//! The SDK through every Device Advisor case `iotcore qualify` runs, with the
//! settings a device maker would choose (short timeouts so the suite takes
//! seconds): the verdict of each case is pinned here, and the docs' table
//! (docs/guide/qualify.md) says the same.

use std::sync::Arc;
use std::time::Duration;

use iotcore::{Client, QoS, ReconnectPolicy};
use iotcore_emulator::pki::{KeyAlgorithm, Pki};
use iotcore_emulator::qualify::{CaseId, LongDuration, Qualifier, Scenario, Verdict};
use iotcore_emulator::things::{DeviceFiles, write_device_files};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_stream::StreamExt;

const THING: &str = "sdk-device";

/// How long a connection must last before the device's backoff starts over.
const RESET_AFTER: Duration = Duration::from_secs(30);

/// The device under test: connects, subscribes, publishes QoS 1 every 200 ms,
/// keeps its shadow in sync and runs the jobs it is given; with `retry`,
/// sends what is left unacknowledged again after 1 s.
async fn device(port: u16, files: DeviceFiles, retry: bool, reset_after: Duration) {
    let builder = Client::builder(THING)
        .endpoint("localhost")
        .port(port)
        .amazon_root_cas(false)
        .root_ca_pem_file(&files.root_ca)
        .unwrap()
        .client_cert_pem_files(&files.certificate, &files.private_key)
        .unwrap()
        .keep_alive(Duration::from_secs(1))
        .connect_timeout(Duration::from_millis(150))
        .initial_connect(20, Duration::from_secs(60))
        .reconnect_policy(ReconnectPolicy {
            initial_delay: Duration::from_millis(80),
            max_delay: Duration::from_secs(1),
            reset_after,
            seed: Some(11),
        })
        .persistent_session(Duration::from_secs(3600))
        .enforce_aws_limits(false);
    let builder = match retry {
        true => builder.retry_unacknowledged(Duration::from_secs(1)),
        false => builder,
    };
    let client = builder.connect().await;
    // Refusing the server (the TLS cases with a flawed certificate) is what it must do.
    let Ok(client) = client else { return };
    let _subscription = client
        .subscribe(format!("qualify/{THING}/in"), QoS::AtLeastOnce)
        .await;
    let telemetry = async {
        loop {
            let _ = client
                .publish(format!("qualify/{THING}/out"), "{}", QoS::AtLeastOnce)
                .await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    // The shadow: report at start; listen to deltas, then read the document
    // for a delta that came before, and report what desired asks for.
    let shadow = client.shadow();
    let shadow_sync = async {
        let _ = shadow.update_reported(json!({ "online": true })).await;
        let Ok(mut deltas) = shadow.deltas().await else {
            return;
        };
        if let Ok(document) = shadow.get().await {
            if let Some(delta) = document.state.delta {
                let _ = shadow.update_reported(&delta).await;
            }
        }
        while let Some(delta) = deltas.next().await {
            let _ = shadow.update_reported(&delta.state).await;
        }
    };
    // Jobs: run whatever job comes, and report it done.
    let jobs = client
        .jobs()
        .runner::<serde_json::Value>()
        .run(|_job| async { Ok::<(), String>(()) });
    let _ = tokio::join!(telemetry, shadow_sync, jobs);
}

/// The qualification CA, the device's files, and a qualifier on loopback.
async fn setup() -> (tempfile::TempDir, DeviceFiles, Qualifier) {
    let dir = tempfile::tempdir().unwrap();
    let pki = Arc::new(Pki::load_or_create(dir.path()).unwrap());
    let credentials = pki
        .issue_device_certificate(THING, KeyAlgorithm::EcdsaP256)
        .unwrap();
    let files =
        write_device_files(THING, &credentials, pki.ca_pem(), &dir.path().join(THING)).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let qualifier = Qualifier::new(listener, pki).unwrap();
    (dir, files, qualifier)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_through_every_case() {
    let (_dir, files, qualifier) = setup().await;
    let port = qualifier.local_addr().unwrap().port();
    let mut verdicts = Vec::new();
    for case in CaseId::ALL.into_iter().filter(|case| !case.opt_in()) {
        let device = tokio::spawn(device(port, files.clone(), false, RESET_AFTER));
        // Long enough for what the SDK does: two cycles of five retries when
        // CONNACK is withheld; seconds otherwise.
        let limit = match case {
            CaseId::MqttConnectJitterBackoffRetries
            | CaseId::MqttConnectExponentialBackoffRetries => Duration::from_secs(30),
            _ => Duration::from_secs(3),
        };
        let result = qualifier.run(case, limit).await;
        device.abort();
        let _ = device.await;
        println!(
            "{:<20} {case}: {:?}",
            result.outcome.verdict, result.outcome.evidence
        );
        verdicts.push((case, result.outcome.verdict));
    }
    for (case, verdict) in verdicts {
        let expected = match case {
            // MQTT 5 allows a PUBLISH or SUBSCRIBE to be sent again only after
            // reconnecting; the SDK retries them there, not in the connection.
            CaseId::MqttPublishRetryNoPuback | CaseId::MqttSubscribeRetryNoSuback => Verdict::Fail,
            // A check of the cloud's policies, not of the device: none given here.
            CaseId::SecurityDevicePolicies => Verdict::Skipped,
            _ => Verdict::Pass,
        };
        assert_eq!(verdict, expected, "{case}");
    }

    // With the MQTT 3.1.1 option, the in-connection retries pass too.
    for case in [
        CaseId::MqttPublishRetryNoPuback,
        CaseId::MqttSubscribeRetryNoSuback,
    ] {
        let device = tokio::spawn(device(port, files.clone(), true, RESET_AFTER));
        let result = qualifier.run(case, Duration::from_secs(5)).await;
        device.abort();
        let _ = device.await;
        println!(
            "{:<20} {case} (retry_unacknowledged): {:?}",
            result.outcome.verdict, result.outcome.evidence
        );
        assert_eq!(result.outcome.verdict, Verdict::Pass, "{case}: {result:?}");
    }
}

/// The long-duration case with its durations in seconds: the SDK passes
/// every scenario, the PUBLISH and SUBSCRIBE ones with warnings unless it
/// retries inside the connection (the MQTT 3.1.1 option).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_through_the_long_duration_case() {
    let (_dir, files, qualifier) = setup().await;
    let qualifier = qualifier.with_long_duration(LongDuration {
        retry_window: Duration::from_secs(2),
        long_server_disconnect: Duration::from_secs(2),
        settle: Duration::from_secs(1),
        ..LongDuration::default()
    });
    let port = qualifier.local_addr().unwrap().port();
    for retry in [false, true] {
        // Its backoff starts over after half a second connected: less than
        // the case leaves it connected between scenarios.
        let device = tokio::spawn(device(
            port,
            files.clone(),
            retry,
            Duration::from_millis(500),
        ));
        let result = qualifier
            .run(CaseId::MqttLongDuration, Duration::from_secs(10))
            .await;
        device.abort();
        let _ = device.await;
        println!("retry_unacknowledged: {retry}");
        for line in &result.outcome.evidence {
            println!("{line}");
        }
        let evidence = result.outcome.evidence.join("\n");
        let (verdict, retried) = match retry {
            true => (Verdict::Pass, "PASS"),
            false => (Verdict::PassWithWarnings, "PASS_WITH_WARNINGS"),
        };
        assert_eq!(result.outcome.verdict, verdict, "{evidence}");
        for basic in ["PUBLISH", "SUBSCRIBE"] {
            assert!(
                evidence.contains(&format!("\n{basic}: {retried} ")),
                "{basic}: {evidence}"
            );
        }
        for scenario in Scenario::ALL {
            assert!(
                evidence.contains(&format!("{scenario}: PASS ")),
                "{scenario}: {evidence}"
            );
        }
        assert!(evidence.contains("persistent session yes"), "{evidence}");
    }
}
