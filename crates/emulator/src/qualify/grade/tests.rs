//! Each case's grader passes a device that does what it asks and fails one that does not.

use std::time::Duration;

use iotcore_mqtt::ProtocolVersion;

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn at(millis: u64, connection: u32, seen: Seen) -> Observation {
    Observation {
        at: ms(millis),
        connection,
        seen,
    }
}

fn connect() -> Seen {
    Seen::Connect {
        client_id: "dev".into(),
        clean_start: true,
        keep_alive: 30,
        protocol: ProtocolVersion::V311,
    }
}

fn publish(packet_id: u16, dup: bool) -> Seen {
    Seen::Publish {
        topic: "t".into(),
        qos: 1,
        packet_id: Some(packet_id),
        dup,
    }
}

/// CONNECTs at the cumulative sums of `waits`, one connection each.
fn connects_after(waits: &[u64]) -> Vec<Observation> {
    let mut t = 0;
    let mut transcript = vec![at(0, 1, connect())];
    for (i, wait) in waits.iter().enumerate() {
        t += wait;
        transcript.push(at(t, i as u32 + 2, connect()));
    }
    transcript
}

#[test]
fn shapes_of_backoff() {
    let d = |v: &[u64]| v.iter().map(|&m| ms(m)).collect::<Vec<_>>();
    assert_eq!(classify(&d(&[500, 510, 495, 505, 500])), Shape::Constant);
    assert_eq!(
        classify(&d(&[100, 200, 400, 800, 1600])),
        Shape::Exponential
    );
    assert_eq!(classify(&d(&[100, 200, 300, 400, 500])), Shape::Linear);
    assert_eq!(
        classify(&d(&[60, 150, 90, 700, 1300])),
        Shape::JitteredExponential
    );
    assert_eq!(classify(&d(&[300, 100, 500, 200, 250])), Shape::NoGrowth);
    // Doubling up to a cap (AWS's CRT: 5, 10, 20, 40, then 60 s) is exponential.
    assert_eq!(
        classify(&d(&[10_260, 20_259, 40_296, 60_318, 60_309])),
        Shape::Exponential
    );
    // One step of growth and then flat is not.
    assert_eq!(
        classify(&d(&[1_000, 2_000, 2_000, 2_000, 2_000])),
        Shape::NoGrowth
    );
}

#[test]
fn retries_with_the_same_packet_id_on_the_same_connection_pass() {
    let case = CaseId::MqttPublishRetryNoPuback;
    let good = [
        at(0, 1, connect()),
        at(10, 1, publish(7, false)),
        at(5_010, 1, publish(7, true)),
    ];
    assert_eq!(grade(case, &good, false).unwrap().verdict, Verdict::Pass);

    let no_dup = [
        at(10, 1, publish(7, false)),
        at(5_010, 1, publish(7, false)),
    ];
    assert_eq!(
        grade(case, &no_dup, false).unwrap().verdict,
        Verdict::PassWithWarnings
    );

    let new_id = [
        at(10, 1, publish(7, false)),
        at(5_010, 1, publish(8, false)),
    ];
    // Another packet id is another message: still no retry of 7.
    assert_eq!(grade(case, &new_id, false), None);
    assert_eq!(grade(case, &new_id, true).unwrap().verdict, Verdict::Fail);

    let reconnected = [
        at(10, 1, publish(7, false)),
        at(5_000, 2, connect()),
        at(5_010, 2, publish(7, true)),
    ];
    let outcome = grade(case, &reconnected, false).unwrap();
    assert_eq!(outcome.verdict, Verdict::Fail);
    assert!(outcome.evidence[0].contains("reconnected"), "{outcome:?}");

    let silent = [at(10, 1, publish(7, false))];
    assert_eq!(
        grade(case, &silent, false),
        None,
        "undecided while time remains"
    );
    assert_eq!(grade(case, &silent, true).unwrap().verdict, Verdict::Fail);
}

#[test]
fn subscribe_retries_are_graded_like_publish_retries() {
    let case = CaseId::MqttSubscribeRetryNoSuback;
    let sub = |id| Seen::Subscribe {
        packet_id: id,
        filters: vec!["a".into()],
    };
    assert_eq!(
        grade(case, &[at(0, 1, sub(3)), at(900, 1, sub(3))], false)
            .unwrap()
            .verdict,
        Verdict::Pass
    );
    assert_eq!(
        grade(case, &[at(0, 1, sub(3))], true).unwrap().verdict,
        Verdict::Fail
    );
}

#[test]
fn withheld_connacks_graded_by_the_shape_of_the_retries() {
    let cycle_jitter = [60, 150, 90, 700, 1300];
    let mut waits: Vec<u64> = cycle_jitter.to_vec();
    waits.push(3_000); // the 6th was let through; the next cycle starts later
    waits.extend(cycle_jitter);
    let jittered = connects_after(&waits);
    let jitter = CaseId::MqttConnectJitterBackoffRetries;
    let exponential = CaseId::MqttConnectExponentialBackoffRetries;
    assert_eq!(
        grade(jitter, &jittered, false).unwrap().verdict,
        Verdict::Pass
    );
    assert_eq!(
        grade(exponential, &jittered, false).unwrap().verdict,
        Verdict::Pass
    );

    let strict: Vec<u64> = [100, 200, 400, 800, 1600, 3000, 3000, 3000, 3000, 3000, 3000].to_vec();
    let strict = connects_after(&strict);
    assert_eq!(
        grade(jitter, &strict, false).unwrap().verdict,
        Verdict::PassWithWarnings
    );
    assert_eq!(
        grade(exponential, &strict, false).unwrap().verdict,
        Verdict::Pass
    );

    let constant = connects_after(&[1000; 11]);
    let outcome = grade(jitter, &constant, false).unwrap();
    assert_eq!(outcome.verdict, Verdict::Fail);
    assert!(outcome.evidence[0].contains("constant"), "{outcome:?}");

    let too_few = connects_after(&[100, 200, 400]);
    assert_eq!(grade(jitter, &too_few, false), None);
    assert_eq!(
        grade(jitter, &too_few, true).unwrap().verdict,
        Verdict::Fail
    );
}

#[test]
fn reconnects_after_server_disconnects_must_back_off() {
    let case = CaseId::MqttReconnectBackoffRetriesOnServerDisconnect;
    let jittered = connects_after(&[60, 150, 90, 700, 1300]);
    assert_eq!(
        grade(case, &jittered, false).unwrap().verdict,
        Verdict::Pass
    );
    let linear = connects_after(&[100, 200, 300, 400, 500]);
    let outcome = grade(case, &linear, false).unwrap();
    assert_eq!(outcome.verdict, Verdict::Fail);
    assert!(outcome.evidence[0].contains("linear"), "{outcome:?}");
    let strict = connects_after(&[100, 200, 400, 800, 1600]);
    assert_eq!(
        grade(case, &strict, false).unwrap().verdict,
        Verdict::PassWithWarnings
    );
}

#[test]
fn a_device_that_never_gives_up_a_dead_connection_fails() {
    let case = CaseId::MqttNoAckPingResp;
    let gives_up = [
        at(0, 1, connect()),
        at(1, 1, Seen::ConnAckSent),
        at(1_000, 1, Seen::PingReq),
        at(2_500, 1, Seen::Closed { by_server: false }),
    ];
    assert_eq!(
        grade(case, &gives_up, false).unwrap().verdict,
        Verdict::Pass
    );
    let hangs_on = [
        at(0, 1, connect()),
        at(1, 1, Seen::ConnAckSent),
        at(1_000, 1, Seen::PingReq),
    ];
    assert_eq!(grade(case, &hangs_on, false), None);
    assert_eq!(grade(case, &hangs_on, true).unwrap().verdict, Verdict::Fail);
}

#[test]
fn a_qos1_message_must_be_acknowledged() {
    let case = CaseId::MqttClientPubackQos1;
    let sent = Seen::PublishSent {
        packet_id: 1,
        topic: "t".into(),
    };
    let acked = [
        at(0, 1, sent.clone()),
        at(5, 1, Seen::PubAck { packet_id: 1 }),
    ];
    assert_eq!(grade(case, &acked, false).unwrap().verdict, Verdict::Pass);
    let other_id = [at(0, 1, sent), at(5, 1, Seen::PubAck { packet_id: 2 })];
    assert_eq!(grade(case, &other_id, false), None);
    assert_eq!(grade(case, &other_id, true).unwrap().verdict, Verdict::Fail);
}

#[test]
fn cipher_suites_are_graded_on_the_client_hello() {
    let case = CaseId::TlsSupportAwsIotCipherSuites;
    let hello = |suites: &[&str]| {
        [at(
            0,
            1,
            Seen::Hello {
                cipher_suites: suites.iter().map(|s| s.to_string()).collect(),
            },
        )]
    };
    let modern = hello(&[
        "TLS13_AES_128_GCM_SHA256",
        "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
    ]);
    assert_eq!(grade(case, &modern, false).unwrap().verdict, Verdict::Pass);
    let mixed = hello(&["TLS13_AES_128_GCM_SHA256", "TLS_RSA_WITH_AES_128_CBC_SHA"]);
    assert_eq!(
        grade(case, &mixed, false).unwrap().verdict,
        Verdict::PassWithWarnings
    );
    let old = hello(&["TLS_RSA_WITH_AES_128_CBC_SHA"]);
    assert_eq!(grade(case, &old, false).unwrap().verdict, Verdict::Fail);
}

#[test]
fn the_simple_cases_pass_on_what_they_wait_for_and_fail_without_it() {
    let sub = Seen::Subscribe {
        packet_id: 1,
        filters: vec!["a/#".into()],
    };
    let cases = [
        (CaseId::TlsConnect, Seen::Handshake),
        (CaseId::MqttConnect, connect()),
        (CaseId::MqttPublish, publish(1, false)),
        (CaseId::MqttSubscribe, sub),
    ];
    for (case, seen) in cases {
        assert_eq!(
            grade(case, &[at(0, 1, seen)], false).unwrap().verdict,
            Verdict::Pass,
            "{case}"
        );
        assert_eq!(grade(case, &[], false), None, "{case}");
        assert_eq!(
            grade(case, &[], true).unwrap().verdict,
            Verdict::Fail,
            "{case}"
        );
    }
}

#[test]
fn a_flawed_server_certificate_must_be_refused() {
    for case in [
        CaseId::TlsUnsecureServerCert,
        CaseId::TlsIncorrectSubjectNameServerCert,
        CaseId::TlsExpiredServerCert,
    ] {
        let refused = [at(
            3,
            1,
            Seen::HandshakeFailed("received fatal alert: BadCertificate".into()),
        )];
        assert_eq!(
            grade(case, &refused, false).unwrap().verdict,
            Verdict::Pass,
            "{case}"
        );
        let accepted = [at(3, 1, Seen::Handshake), at(4, 1, connect())];
        assert_eq!(
            grade(case, &accepted, false).unwrap().verdict,
            Verdict::Fail,
            "{case}"
        );
    }
    let large = CaseId::TlsLargeSizeServerCert;
    assert_eq!(
        grade(
            large,
            &[at(3, 1, Seen::Handshake), at(4, 1, connect())],
            false
        )
        .unwrap()
        .verdict,
        Verdict::Pass
    );
    let choked = [at(3, 1, Seen::HandshakeFailed("buffer too small".into()))];
    assert_eq!(grade(large, &choked, false).unwrap().verdict, Verdict::Fail);
}

fn connect_keeping_session() -> Seen {
    Seen::Connect {
        client_id: "dev".into(),
        clean_start: false,
        keep_alive: 30,
        protocol: ProtocolVersion::V311,
    }
}

#[test]
fn a_kept_session_is_resumed_without_subscribing_again() {
    let case = CaseId::MqttPersistentSessionHappyCase;
    let sub = |id| Seen::Subscribe {
        packet_id: id,
        filters: vec!["c/#".into()],
    };
    let sent = Seen::PublishSent {
        packet_id: 1,
        topic: "c/qualify".into(),
    };
    let good = [
        at(0, 1, connect_keeping_session()),
        at(5, 1, sub(1)),
        at(300, 2, connect_keeping_session()),
        at(301, 2, sent.clone()),
        at(305, 2, Seen::PubAck { packet_id: 1 }),
    ];
    assert_eq!(grade(case, &good, false).unwrap().verdict, Verdict::Pass);
    let resubscribes = [
        at(0, 1, connect_keeping_session()),
        at(5, 1, sub(1)),
        at(300, 2, connect_keeping_session()),
        at(301, 2, sent),
        at(302, 2, sub(2)),
    ];
    assert_eq!(
        grade(case, &resubscribes, false).unwrap().verdict,
        Verdict::Fail
    );
    let clean = [at(0, 1, connect())];
    assert_eq!(grade(case, &clean, false).unwrap().verdict, Verdict::Fail);
}

#[test]
fn an_expired_session_needs_a_new_subscribe() {
    let case = CaseId::MqttExpiredPersistentSession;
    let sub = |id| Seen::Subscribe {
        packet_id: id,
        filters: vec!["c/#".into()],
    };
    let good = [
        at(0, 1, connect_keeping_session()),
        at(5, 1, sub(1)),
        at(300, 2, connect_keeping_session()),
        at(302, 2, sub(2)),
    ];
    assert_eq!(grade(case, &good, false).unwrap().verdict, Verdict::Pass);
    let forgets = [
        at(0, 1, connect_keeping_session()),
        at(5, 1, sub(1)),
        at(300, 2, connect_keeping_session()),
    ];
    assert_eq!(grade(case, &forgets, false), None);
    assert_eq!(grade(case, &forgets, true).unwrap().verdict, Verdict::Fail);
}

#[test]
fn the_shadow_cases_want_a_report_and_then_the_desired_state() {
    let update = |reported: serde_json::Value| Seen::ShadowRequest {
        operation: "update".into(),
        request: serde_json::json!({ "state": { "reported": reported } }),
    };
    let case = CaseId::ShadowPublishReportedState;
    let good = [at(10, 1, update(serde_json::json!({ "online": true })))];
    assert_eq!(grade(case, &good, false).unwrap().verdict, Verdict::Pass);
    let empty = [at(10, 1, update(serde_json::json!({})))];
    assert_eq!(grade(case, &empty, false), None);
    assert_eq!(grade(case, &empty, true).unwrap().verdict, Verdict::Fail);

    let case = CaseId::ShadowUpdateReportedState;
    let set = Seen::DesiredSet {
        desired: serde_json::json!({ "qualify": "synced" }),
    };
    let synced = [
        at(10, 1, update(serde_json::json!({ "online": true }))),
        at(20, 1, set.clone()),
        at(25, 1, update(serde_json::json!({ "qualify": "synced" }))),
    ];
    assert_eq!(grade(case, &synced, false).unwrap().verdict, Verdict::Pass);
    let stale = [
        at(20, 1, set),
        at(25, 1, update(serde_json::json!({ "qualify": "old" }))),
    ];
    assert_eq!(grade(case, &stale, false), None);
    assert_eq!(grade(case, &stale, true).unwrap().verdict, Verdict::Fail);
}

fn jobs_request(api: &str, status: Option<&str>, accepted: bool) -> Seen {
    Seen::JobsRequest {
        api: api.into(),
        job_id: Some("device-advisor-job".into()),
        status: status.map(str::to_owned),
        accepted,
    }
}

#[test]
fn a_job_passes_when_its_execution_succeeds_and_fails_otherwise() {
    let queued = at(
        10,
        1,
        Seen::JobQueued {
            job_id: "device-advisor-job".into(),
        },
    );
    let taken = at(
        20,
        1,
        jobs_request("StartNextPendingJobExecution", None, true),
    );
    let succeeded = vec![
        at(0, 1, connect()),
        queued.clone(),
        taken.clone(),
        at(
            30,
            1,
            jobs_request("UpdateJobExecution", Some("SUCCEEDED"), true),
        ),
    ];
    let outcome = grade(CaseId::JobExecution, &succeeded, false).unwrap();
    assert_eq!(outcome.verdict, Verdict::Pass, "{outcome:?}");
    assert!(outcome.evidence[0].contains("StartNextPendingJobExecution"));

    // Reporting FAILED fails the case; a refused SUCCEEDED decides nothing.
    let failed = vec![
        queued.clone(),
        at(
            30,
            1,
            jobs_request("UpdateJobExecution", Some("SUCCEEDED"), false),
        ),
        at(
            40,
            1,
            jobs_request("UpdateJobExecution", Some("FAILED"), true),
        ),
    ];
    let outcome = grade(CaseId::JobExecution, &failed, false).unwrap();
    assert_eq!(outcome.verdict, Verdict::Fail, "{outcome:?}");
    assert!(outcome.evidence[0].contains("FAILED"), "{outcome:?}");

    // Taking the job without finishing it is undecided, then a failure.
    let unfinished = vec![queued, taken];
    assert_eq!(grade(CaseId::JobExecution, &unfinished, false), None);
    let outcome = grade(CaseId::JobExecution, &unfinished, true).unwrap();
    assert_eq!(outcome.verdict, Verdict::Fail);
    assert!(outcome.evidence[0].contains("did not reach SUCCEEDED"));

    // A device that never turns to Jobs is told so.
    let outcome = grade(CaseId::JobExecution, &[at(0, 1, connect())], true).unwrap();
    assert!(
        outcome.evidence[0].contains("neither subscribed"),
        "{outcome:?}"
    );

    let refused = vec![at(0, 1, Seen::JobNotQueued("bad thing name".into()))];
    let outcome = grade(CaseId::JobExecution, &refused, false).unwrap();
    assert_eq!(outcome.verdict, Verdict::Fail);
}

fn policy(name: &str, wildcards: &[&str], scoped: &[&str]) -> Observation {
    let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
    at(
        0,
        0,
        Seen::PolicyChecked {
            name: name.into(),
            wildcards: strings(wildcards),
            scoped_wildcards: strings(scoped),
        },
    )
}

#[test]
fn policies_pass_without_wildcards_warn_within_the_device_and_fail_beyond() {
    let case = CaseId::SecurityDevicePolicies;
    let clean = grade(case, &[policy("a", &[], &[]), policy("b", &[], &[])], false).unwrap();
    assert_eq!(clean.verdict, Verdict::Pass, "{clean:?}");
    assert!(clean.evidence[0].starts_with("2 policies checked"));

    let scoped = grade(
        case,
        &[policy("a", &[], &["Resource \"…/${thing}/*\""])],
        false,
    )
    .unwrap();
    assert_eq!(scoped.verdict, Verdict::PassWithWarnings, "{scoped:?}");
    assert_eq!(scoped.evidence[1], "a: Resource \"…/${thing}/*\"");

    let wide = grade(
        case,
        &[
            policy("a", &[], &[]),
            policy("b", &["Action \"iot:*\""], &[]),
        ],
        false,
    )
    .unwrap();
    assert_eq!(wide.verdict, Verdict::Fail, "{wide:?}");
    assert_eq!(wide.evidence[1], "b: Action \"iot:*\"");

    let none = grade(case, &[at(0, 0, Seen::NoPolicyGiven)], false).unwrap();
    assert_eq!(none.verdict, Verdict::Skipped);
    assert!(none.evidence[0].contains("--policy FILE"));
}
