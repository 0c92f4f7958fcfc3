//! Grading a case from its transcript, as Device Advisor documents it: pass,
//! pass with warnings, or fail, with the evidence (connect times and the
//! backoff's shape, the packet ids of a retry, …).
//!
//! Pure functions of the transcript: tests feed them scripted transcripts.

use std::fmt;
use std::time::Duration;

use super::case::{CaseId, WITHHELD_PER_CYCLE};
use super::transcript::{Observation, Seen};

/// A case's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Verdict {
    /// The device did what the case asks.
    Pass,
    /// It did, in a way AWS accepts with a warning.
    PassWithWarnings,
    /// It did not.
    Fail,
    /// The case could not run: what it needs was not given (this verdict is
    /// iotcore's, not Device Advisor's).
    Skipped,
}

impl Verdict {
    /// `PASS`, `PASS_WITH_WARNINGS`, `FAIL`: Device Advisor's words.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::PassWithWarnings => "PASS_WITH_WARNINGS",
            Verdict::Fail => "FAIL",
            Verdict::Skipped => "SKIPPED",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A verdict and what it rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The verdict.
    pub verdict: Verdict,
    /// Why, in sentences: what was observed.
    pub evidence: Vec<String>,
}

impl Outcome {
    pub(super) fn pass(evidence: impl Into<String>) -> Outcome {
        Outcome {
            verdict: Verdict::Pass,
            evidence: vec![evidence.into()],
        }
    }

    pub(super) fn warn(evidence: impl Into<String>) -> Outcome {
        Outcome {
            verdict: Verdict::PassWithWarnings,
            evidence: vec![evidence.into()],
        }
    }

    pub(super) fn fail(evidence: impl Into<String>) -> Outcome {
        Outcome {
            verdict: Verdict::Fail,
            evidence: vec![evidence.into()],
        }
    }

    pub(super) fn skipped(evidence: impl Into<String>) -> Outcome {
        Outcome {
            verdict: Verdict::Skipped,
            evidence: vec![evidence.into()],
        }
    }
}

/// The shape of a series of waits between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// About the same wait every time.
    Constant,
    /// Each wait longer than the last by about the same amount.
    Linear,
    /// Each wait about twice the last.
    Exponential,
    /// Growing overall, each wait random within a growing bound.
    JitteredExponential,
    /// Varying without growing: no backoff.
    NoGrowth,
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Shape::Constant => "constant",
            Shape::Linear => "linear",
            Shape::Exponential => "exponential",
            Shape::JitteredExponential => "jittered exponential",
            Shape::NoGrowth => "varying without growing",
        })
    }
}

/// Classifies the waits between attempts (at least two).
///
/// Constant: the spread is within 20 % of the mean. Exponential: each wait
/// is 1.5 to 2.6 times the one before, or, after at least two such steps,
/// reaches a cap and stays there (within 10 %). Linear: each wait is longer than the
/// one before, by amounts within 30 % of their mean. Jittered exponential:
/// none of those, and the later half of the waits is on average at least 1.5
/// times the earlier half. Anything else does not back off.
pub fn classify(waits: &[Duration]) -> Shape {
    let d: Vec<f64> = waits.iter().map(Duration::as_secs_f64).collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let (min, max) = d
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    if d.len() < 2 || max - min <= 0.2 * mean(&d) {
        return Shape::Constant;
    }
    let ratios: Vec<f64> = d.windows(2).map(|w| w[1] / w[0].max(1e-9)).collect();
    let growing = ratios
        .iter()
        .take_while(|r| (1.5..=2.6).contains(*r))
        .count();
    let mut at_cap = &ratios[growing..];
    if growing >= 2 {
        // The step into the cap may be cut short by it.
        if let Some((into, after)) = at_cap.split_first() {
            if (1.1..=2.6).contains(into) {
                at_cap = after;
            }
        }
    }
    let flat = at_cap.iter().all(|r| (0.9..=1.1).contains(r));
    if growing == ratios.len() || (growing >= 2 && flat) {
        return Shape::Exponential;
    }
    let steps: Vec<f64> = d.windows(2).map(|w| w[1] - w[0]).collect();
    let (step_min, step_max) = steps
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    if step_min > 0.0 && step_max - step_min <= 0.3 * mean(&steps) {
        return Shape::Linear;
    }
    let half = d.len() / 2;
    if mean(&d[d.len() - half..]) >= 1.5 * mean(&d[..half]) {
        Shape::JitteredExponential
    } else {
        Shape::NoGrowth
    }
}

pub(super) fn millis(waits: &[Duration]) -> String {
    waits
        .iter()
        .map(|w| format!("{} ms", w.as_millis()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Grades `case` on `transcript`. `None` while it cannot tell yet; once
/// `over` (the case's time ran out, or the device stopped) always a verdict,
/// [`final_grade`]'s.
pub fn grade(case: CaseId, transcript: &[Observation], over: bool) -> Option<Outcome> {
    match decide(case, transcript) {
        Some(outcome) => Some(outcome),
        None if over => Some(timed_out(case, transcript)),
        None => None,
    }
}

/// Grades `case` on `transcript` once its time is over: what it decided,
/// or a failure that says what did not happen.
pub fn final_grade(case: CaseId, transcript: &[Observation]) -> Outcome {
    decide(case, transcript).unwrap_or_else(|| timed_out(case, transcript))
}

/// The verdict `transcript` decides, if it decides one yet.
fn decide(case: CaseId, transcript: &[Observation]) -> Option<Outcome> {
    match case {
        CaseId::TlsConnect => first(transcript, |s| matches!(s, Seen::Handshake)).map(|o| {
            Outcome::pass(format!(
                "TLS handshake completed at {} ms",
                o.at.as_millis()
            ))
        }),
        CaseId::TlsSupportAwsIotCipherSuites => cipher_suites(transcript),
        CaseId::TlsLargeSizeServerCert => large_certificate(transcript),
        CaseId::TlsUnsecureServerCert
        | CaseId::TlsIncorrectSubjectNameServerCert
        | CaseId::TlsExpiredServerCert => refused_certificate(transcript),
        CaseId::MqttConnect => first(transcript, |s| matches!(s, Seen::Connect { .. })).map(|o| {
            Outcome::pass(match &o.seen {
                Seen::Connect {
                    client_id,
                    protocol,
                    ..
                } => format!("CONNECT from client id {client_id:?} ({protocol:?})"),
                _ => String::new(),
            })
        }),
        CaseId::MqttPublish => first(transcript, |s| matches!(s, Seen::Publish { .. })).map(|o| {
            Outcome::pass(match &o.seen {
                Seen::Publish { topic, qos, .. } => format!("PUBLISH QoS {qos} to {topic}"),
                _ => String::new(),
            })
        }),
        CaseId::MqttSubscribe => {
            first(transcript, |s| matches!(s, Seen::Subscribe { .. })).map(|o| {
                Outcome::pass(match &o.seen {
                    Seen::Subscribe { filters, .. } => format!("SUBSCRIBE to {filters:?}"),
                    _ => String::new(),
                })
            })
        }
        CaseId::MqttClientPubackQos1 | CaseId::TlsReceiveMaximumSizeFragments => puback(transcript),
        CaseId::MqttPersistentSessionHappyCase => session_kept(transcript),
        CaseId::ShadowPublishReportedState => reported(transcript),
        CaseId::ShadowUpdateReportedState => synced(transcript),
        CaseId::MqttExpiredPersistentSession => session_expired(transcript),
        CaseId::MqttPublishRetryNoPuback => retry(transcript, RetryOf::Publish),
        CaseId::MqttSubscribeRetryNoSuback => retry(transcript, RetryOf::Subscribe),
        CaseId::MqttNoAckPingResp => gave_up(transcript),
        CaseId::MqttConnectJitterBackoffRetries => connect_cycles(transcript, true),
        CaseId::MqttConnectExponentialBackoffRetries => connect_cycles(transcript, false),
        CaseId::MqttReconnectBackoffRetriesOnServerDisconnect
        | CaseId::MqttReconnectBackoffRetriesOnUnstableConnection => reconnects(transcript),
        CaseId::JobExecution => job_run(transcript),
        CaseId::SecurityDevicePolicies => policies(transcript),
        // Graded scenario by scenario as it runs (long_duration.rs).
        CaseId::MqttLongDuration => None,
    }
}

fn first(transcript: &[Observation], pred: impl Fn(&Seen) -> bool) -> Option<&Observation> {
    transcript.iter().find(|o| pred(&o.seen))
}

/// The verdict when the time ran out undecided.
fn timed_out(case: CaseId, transcript: &[Observation]) -> Outcome {
    let connects = transcript
        .iter()
        .filter(|o| matches!(o.seen, Seen::Connect { .. }))
        .count();
    let what = match case {
        CaseId::MqttPublishRetryNoPuback => "no PUBLISH left without PUBACK was sent again",
        CaseId::MqttSubscribeRetryNoSuback => "no SUBSCRIBE left without SUBACK was sent again",
        CaseId::MqttNoAckPingResp => "the device kept the connection open without answers",
        CaseId::MqttClientPubackQos1 | CaseId::TlsReceiveMaximumSizeFragments => {
            "no PUBACK for the QoS 1 message sent to the device"
        }
        CaseId::MqttPersistentSessionHappyCase | CaseId::MqttExpiredPersistentSession => {
            "the device did not reconnect and resume as the case asks"
        }
        CaseId::ShadowPublishReportedState => "no shadow update with a reported state",
        CaseId::ShadowUpdateReportedState => {
            "no shadow update reporting the desired state (did the device subscribe to its \
             delta topic?)"
        }
        CaseId::JobExecution => {
            return Outcome::fail(format!(
                "time ran out: the job's execution did not reach SUCCEEDED; {}",
                jobs_story(transcript)
            ));
        }
        _ => "the device did not do what the case asks",
    };
    Outcome::fail(format!("time ran out: {what} ({connects} CONNECT(s) seen)"))
}

/// The job run to its end: an accepted UpdateJobExecution to a terminal status.
fn job_run(transcript: &[Observation]) -> Option<Outcome> {
    if let Some(why) = transcript.iter().find_map(|o| match &o.seen {
        Seen::JobNotQueued(why) => Some(why),
        _ => None,
    }) {
        return Some(Outcome::fail(format!(
            "no job could be queued for the device: {why}"
        )));
    }
    let status = transcript.iter().find_map(|o| match &o.seen {
        Seen::JobsRequest {
            api,
            status: Some(status),
            accepted: true,
            ..
        } if api == "UpdateJobExecution" && TERMINAL_BY_DEVICE.contains(&status.as_str()) => {
            Some(status.as_str())
        }
        _ => None,
    })?;
    let story = jobs_story(transcript);
    Some(if status == "SUCCEEDED" {
        Outcome::pass(format!("the job's execution reached SUCCEEDED; {story}"))
    } else {
        Outcome::fail(format!(
            "the device reported the job's execution {status}, not SUCCEEDED; {story}"
        ))
    })
}

/// The policies given hold no wildcard in what they allow.
fn policies(transcript: &[Observation]) -> Option<Outcome> {
    let mut checked = 0;
    let mut wide = Vec::new();
    let mut scoped = Vec::new();
    for o in transcript {
        match &o.seen {
            Seen::NoPolicyGiven => {
                return Some(Outcome::skipped(
                    "no policy given: pass each policy attached to the device's certificate with \
                     --policy FILE",
                ));
            }
            Seen::PolicyChecked {
                name,
                wildcards,
                scoped_wildcards,
            } => {
                checked += 1;
                wide.extend(wildcards.iter().map(|w| format!("{name}: {w}")));
                scoped.extend(scoped_wildcards.iter().map(|w| format!("{name}: {w}")));
            }
            _ => {}
        }
    }
    if checked == 0 {
        return None;
    }
    Some(match (wide.is_empty(), scoped.is_empty()) {
        (true, true) => Outcome::pass(format!(
            "{checked} polic{} checked: no wildcard in any action or resource allowed",
            if checked == 1 { "y" } else { "ies" }
        )),
        (true, false) => Outcome {
            verdict: Verdict::PassWithWarnings,
            evidence: std::iter::once(
                "wildcards only within the device's own resources (after its client id or \
                 thing name):"
                    .to_owned(),
            )
            .chain(scoped)
            .collect(),
        },
        (false, _) => Outcome {
            verdict: Verdict::Fail,
            evidence: std::iter::once(
                "the policies allow more than the device needs, with wildcards:".to_owned(),
            )
            .chain(wide)
            .chain(scoped)
            .collect(),
        },
    })
}

/// The terminal statuses a device may report.
const TERMINAL_BY_DEVICE: [&str; 3] = ["SUCCEEDED", "FAILED", "REJECTED"];

/// What the device did with Jobs, in order, for the evidence.
fn jobs_story(transcript: &[Observation]) -> String {
    let mut steps = Vec::new();
    for o in transcript {
        match &o.seen {
            Seen::JobQueued { job_id } => steps.push(format!("job {job_id} queued")),
            Seen::JobsRequest {
                api,
                job_id,
                status,
                accepted,
            } => {
                let job = job_id
                    .as_deref()
                    .map(|j| format!(" {j}"))
                    .unwrap_or_default();
                let status = status
                    .as_deref()
                    .map(|s| format!(" {s}"))
                    .unwrap_or_default();
                let answer = if *accepted { "accepted" } else { "rejected" };
                steps.push(format!("{api}{job}{status} ({answer})"));
            }
            _ => {}
        }
    }
    if steps.is_empty() {
        "the device neither subscribed to its Jobs notifications nor sent a Jobs request".into()
    } else {
        format!("seen: {}", steps.join(", "))
    }
}

/// The suites counted as recommended: TLS 1.3's, and TLS 1.2's ECDHE with an
/// AEAD cipher (AES-GCM, ChaCha20-Poly1305), the forward-secret AEAD suites of
/// AWS IoT Core's security policies (AWS IoT developer guide, "Transport
/// security in AWS IoT Core"; which of them Device Advisor's own list names
/// is not published).
const RECOMMENDED_SUITES: [&str; 9] = [
    "TLS13_AES_128_GCM_SHA256",
    "TLS13_AES_256_GCM_SHA384",
    "TLS13_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
];

fn cipher_suites(transcript: &[Observation]) -> Option<Outcome> {
    let suites = transcript.iter().find_map(|o| match &o.seen {
        Seen::Hello { cipher_suites } => Some(cipher_suites),
        _ => None,
    })?;
    let recommended: Vec<&String> = suites
        .iter()
        .filter(|s| RECOMMENDED_SUITES.contains(&s.as_str()))
        .collect();
    let others: Vec<&String> = suites
        .iter()
        .filter(|s| !RECOMMENDED_SUITES.contains(&s.as_str()) && !s.contains("SCSV"))
        .collect();
    Some(match (recommended.is_empty(), others.is_empty()) {
        (true, _) => Outcome::fail(format!(
            "the ClientHello offers none of the recommended suites; it offers {suites:?}"
        )),
        (false, true) => Outcome::pass(format!("offers {recommended:?}")),
        (false, false) => Outcome::warn(format!(
            "offers the recommended {recommended:?}, and also {others:?}, which AWS IoT Core \
             does not recommend"
        )),
    })
}

/// The first CONNECT, and whether it asked for clean session.
fn first_connect(transcript: &[Observation]) -> Option<(&Observation, bool)> {
    transcript.iter().find_map(|o| match &o.seen {
        Seen::Connect { clean_start, .. } => Some((o, *clean_start)),
        _ => None,
    })
}

/// The connection after the one the server cut, if the device opened it.
fn reconnection(transcript: &[Observation], first: u32) -> Option<u32> {
    transcript
        .iter()
        .find(|o| o.connection > first && matches!(o.seen, Seen::Connect { .. }))
        .map(|o| o.connection)
}

/// Reconnected to a kept session: the stored message acknowledged, no SUBSCRIBE again.
fn session_kept(transcript: &[Observation]) -> Option<Outcome> {
    let (first, clean) = first_connect(transcript)?;
    if clean {
        return Some(Outcome::fail(
            "the device connected with clean session: it has no session to keep",
        ));
    }
    let second = reconnection(transcript, first.connection)?;
    resumed_on(transcript, second)
}

/// On `connection`, which CONNACK told its session was present: no SUBSCRIBE
/// again, and the message stored for it acknowledged.
pub(super) fn resumed_on(transcript: &[Observation], connection: u32) -> Option<Outcome> {
    let on_it = || transcript.iter().filter(|o| o.connection == connection);
    if on_it().any(|o| matches!(o.seen, Seen::Subscribe { .. })) {
        return Some(Outcome::fail(
            "the device subscribed again although CONNACK said its session was present",
        ));
    }
    let sent = on_it().find_map(|o| match o.seen {
        Seen::PublishSent { packet_id, .. } => Some(packet_id),
        _ => None,
    })?;
    on_it()
        .any(|o| o.seen == Seen::PubAck { packet_id: sent })
        .then(|| {
            Outcome::pass(
                "reconnected to its session without subscribing again, and acknowledged the \
                 message stored for it",
            )
        })
}

/// Reconnected after its session expired: it subscribed again.
fn session_expired(transcript: &[Observation]) -> Option<Outcome> {
    let (first, clean) = first_connect(transcript)?;
    if clean {
        return Some(Outcome::fail(
            "the device connected with clean session: it has no session to lose",
        ));
    }
    let second = reconnection(transcript, first.connection)?;
    transcript
        .iter()
        .find(|o| o.connection == second && matches!(o.seen, Seen::Subscribe { .. }))
        .map(|o| {
            Outcome::pass(format!(
                "subscribed again {} ms after the session was gone",
                (o.at - first.at).as_millis()
            ))
        })
}

/// The `state.reported` object of a shadow update request, if it has one.
fn reported_state(seen: &Seen) -> Option<&serde_json::Map<String, serde_json::Value>> {
    match seen {
        Seen::ShadowRequest { operation, request } if operation == "update" => {
            request["state"]["reported"].as_object()
        }
        _ => None,
    }
}

/// A shadow update with a reported state.
fn reported(transcript: &[Observation]) -> Option<Outcome> {
    transcript.iter().find_map(|o| {
        reported_state(&o.seen)
            .filter(|reported| !reported.is_empty())
            .map(|reported| {
                Outcome::pass(format!(
                    "reported {}",
                    serde_json::Value::Object(reported.clone())
                ))
            })
    })
}

/// After desired was set, a shadow update reporting every desired value.
fn synced(transcript: &[Observation]) -> Option<Outcome> {
    let (set, desired) = transcript.iter().find_map(|o| match &o.seen {
        Seen::DesiredSet { desired } => desired.as_object().map(|d| (o, d)),
        _ => None,
    })?;
    transcript
        .iter()
        .filter(|o| o.at >= set.at)
        .find_map(|o| {
            reported_state(&o.seen)
                .filter(|reported| desired.iter().all(|(k, v)| reported.get(k) == Some(v)))
                .map(|_| o)
        })
        .map(|o| {
            Outcome::pass(format!(
                "reported the desired {} {} ms after it was set",
                serde_json::Value::Object(desired.clone()),
                (o.at - set.at).as_millis()
            ))
        })
}

/// The device refused the flawed certificate: its handshakes fail, none completes.
fn refused_certificate(transcript: &[Observation]) -> Option<Outcome> {
    transcript.iter().find_map(|o| match &o.seen {
        Seen::Handshake => Some(Outcome::fail(
            "the device completed the TLS handshake with the flawed server certificate",
        )),
        Seen::HandshakeFailed(why) => Some(Outcome::pass(format!(
            "the device ended the handshake at {} ms: {why}",
            o.at.as_millis()
        ))),
        _ => None,
    })
}

/// The device took the large certificate and went on to CONNECT.
fn large_certificate(transcript: &[Observation]) -> Option<Outcome> {
    transcript.iter().find_map(|o| match &o.seen {
        Seen::Connect { .. } => Some(Outcome::pass(
            "the device completed the handshake with the large certificate and sent CONNECT",
        )),
        Seen::HandshakeFailed(why) => Some(Outcome::fail(format!(
            "the handshake with the large certificate failed: {why}"
        ))),
        _ => None,
    })
}

pub(super) fn puback(transcript: &[Observation]) -> Option<Outcome> {
    transcript.iter().find_map(|sent| {
        let Seen::PublishSent { packet_id, topic } = &sent.seen else {
            return None;
        };
        transcript
            .iter()
            .find(|o| {
                o.connection == sent.connection
                    && o.at >= sent.at
                    && o.seen
                        == Seen::PubAck {
                            packet_id: *packet_id,
                        }
            })
            .map(|ack| {
                Outcome::pass(format!(
                    "PUBACK for packet id {packet_id} on {topic}, {} ms after it was sent",
                    (ack.at - sent.at).as_millis()
                ))
            })
    })
}

#[derive(Clone, Copy)]
pub(super) enum RetryOf {
    Publish,
    Subscribe,
}

impl RetryOf {
    /// `PUBLISH` or `SUBSCRIBE`.
    pub(super) fn name(self) -> &'static str {
        match self {
            RetryOf::Publish => "PUBLISH",
            RetryOf::Subscribe => "SUBSCRIBE",
        }
    }

    /// The packet id and DUP of a QoS 1 PUBLISH (or a SUBSCRIBE, DUP
    /// counted as set) from the device.
    pub(super) fn packet(self, seen: &Seen) -> Option<(u16, bool)> {
        match (self, seen) {
            (
                RetryOf::Publish,
                Seen::Publish {
                    qos: 1,
                    packet_id: Some(id),
                    dup,
                    ..
                },
            ) => Some((*id, *dup)),
            (RetryOf::Subscribe, Seen::Subscribe { packet_id, .. }) => Some((*packet_id, true)),
            _ => None,
        }
    }
}

/// The first QoS 1 PUBLISH (or SUBSCRIBE) sent again with its packet id.
pub(super) fn retry(transcript: &[Observation], of: RetryOf) -> Option<Outcome> {
    let id_of = |seen: &Seen| of.packet(seen);
    let name = of.name();
    let original = transcript.iter().find(|o| id_of(&o.seen).is_some())?;
    let (id, _) = id_of(&original.seen)?;
    for later in transcript.iter().filter(|o| o.at >= original.at) {
        if std::ptr::eq(later, original) {
            continue;
        }
        if later.connection != original.connection {
            if matches!(later.seen, Seen::Connect { .. }) {
                return Some(Outcome::fail(format!(
                    "{name} packet id {id} was not sent again on its connection: the device \
                     reconnected instead ({} ms later)",
                    (later.at - original.at).as_millis()
                )));
            }
            continue;
        }
        // Another packet id is another message, not a retry of this one.
        if let Some((_, dup)) = id_of(&later.seen).filter(|(again, _)| *again == id) {
            let waited = (later.at - original.at).as_millis();
            return Some(if !dup {
                Outcome::warn(format!(
                    "{name} packet id {id} sent again after {waited} ms, without DUP set"
                ))
            } else {
                Outcome::pass(format!(
                    "{name} packet id {id} sent again after {waited} ms on the same connection"
                ))
            });
        }
    }
    None
}

/// The device closed a connection on which answers stopped.
fn gave_up(transcript: &[Observation]) -> Option<Outcome> {
    let connected = first(transcript, |s| matches!(s, Seen::ConnAckSent))?;
    transcript
        .iter()
        .find(|o| {
            o.connection == connected.connection
                && matches!(o.seen, Seen::Disconnect | Seen::Closed { by_server: false })
        })
        .map(|o| {
            let pings = transcript
                .iter()
                .filter(|p| p.connection == connected.connection && p.seen == Seen::PingReq)
                .count();
            Outcome::pass(format!(
                "the device closed the connection {} ms after CONNACK, after {pings} PINGREQ(s) \
                 left unanswered",
                (o.at - connected.at).as_millis()
            ))
        })
}

pub(super) fn connect_times(transcript: &[Observation]) -> Vec<Duration> {
    transcript
        .iter()
        .filter(|o| matches!(o.seen, Seen::Connect { .. }))
        .map(|o| o.at)
        .collect()
}

pub(super) fn waits(times: &[Duration]) -> Vec<Duration> {
    times
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .collect()
}

/// CONNACK withheld five times, then let through, and the cycle again: the
/// shape of the waits is graded on the first cycle, where the backoff starts
/// (in the second a device may already wait its longest, as it should when
/// its backoff resets only after a stable connection); the second must
/// happen, the device retrying again after it was let through.
fn connect_cycles(transcript: &[Observation], jitter_wanted: bool) -> Option<Outcome> {
    let times = connect_times(transcript);
    let per_cycle = WITHHELD_PER_CYCLE + 1;
    if times.len() < 2 * per_cycle {
        return None;
    }
    let first = waits(&times[..per_cycle]);
    let second = waits(&times[per_cycle..2 * per_cycle]);
    let shape = classify(&first);
    let verdict = match (shape, jitter_wanted) {
        (Shape::JitteredExponential, _) | (Shape::Exponential, false) => Verdict::Pass,
        (Shape::Exponential, true) => Verdict::PassWithWarnings,
        _ => Verdict::Fail,
    };
    Some(Outcome {
        verdict,
        evidence: vec![
            format!(
                "cycle 1: {per_cycle} CONNECTs, waits {}: {shape}",
                millis(&first)
            ),
            format!(
                "cycle 2: {per_cycle} CONNECTs after the device was let through, waits {}",
                millis(&second)
            ),
        ],
    })
}

/// At least five reconnects after the server ended the connection: the waits between them.
fn reconnects(transcript: &[Observation]) -> Option<Outcome> {
    reconnect_backoff(transcript, 5)
}

/// `attempts` reconnects after the server ended the connection, graded by
/// the shape of the waits between them.
pub(super) fn reconnect_backoff(transcript: &[Observation], attempts: usize) -> Option<Outcome> {
    let times = connect_times(transcript);
    if times.len() < attempts + 1 {
        return None;
    }
    let waits = waits(&times[..=attempts]);
    let shape = classify(&waits);
    let evidence = format!(
        "{} CONNECTs, waits {}: {shape}",
        attempts + 1,
        millis(&waits)
    );
    Some(match shape {
        Shape::JitteredExponential => Outcome::pass(evidence),
        Shape::Exponential => Outcome::warn(format!("{evidence} (without jitter)")),
        _ => Outcome::fail(evidence),
    })
}

#[cfg(test)]
mod tests;
