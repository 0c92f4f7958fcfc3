//! `MQTT_Long_Duration`: Device Advisor's long-duration case, its scenarios
//! run one after the other against a device that stays up the whole time.
//!
//! As Device Advisor documents it ("Long duration tests"): basic scenarios
//! first (CONNECT; PUBLISH and SUBSCRIBE, the first QoS 1 one answered only
//! when the device sends it again with its packet id within the retry
//! window, or after the window with a warning; RECONNECT after the server
//! drops the device), then the advanced scenarios chosen (PUBACK for a QoS 1
//! message, a large payload, a persistent session, keep-alive with every
//! answer withheld, intermittent connectivity, reconnect backoff, a long
//! server disconnect), then additional time to watch. Each scenario is graded
//! on what happened since it began; the case's verdict is the worst of them,
//! and its evidence closes with Device Advisor's summary (keep-alive,
//! persistent session flag, connections, backoff type, topics).
//!
//! Device Advisor runs the basic scenarios in parallel and its durations in
//! minutes (a long server disconnect of 30 to 120); every duration here is a
//! setting, so that a CI run takes seconds and a soak run hours.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use tokio::time::Instant;

use super::case::{FRAGMENTED_PAYLOAD, Faults, SMALL_PAYLOAD, SessionPlan};
use super::grade::{
    Outcome, RetryOf, Verdict, connect_times, millis, puback, reconnect_backoff, resumed_on, retry,
    waits,
};
use super::server::{CaseRun, Command};
use super::transcript::{Observation, Seen};

/// The advanced scenarios, with Device Advisor's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Scenario {
    /// A QoS 1 message to the device's subscription: it answers PUBACK.
    PubackQos1,
    /// A 64 KiB QoS 1 message: it answers PUBACK.
    ReceiveLargePayload,
    /// The connection dropped: the device resumes its session without
    /// subscribing again and takes the message stored for it.
    PersistentSession,
    /// Every answer withheld: the device gives the connection up.
    KeepAlive,
    /// Connections dropped at random times: the device comes back each time.
    IntermittentConnectivity,
    /// Disconnected again and again: the device backs off.
    ReconnectBackOff,
    /// The server down for a long time: the device reconnects once it is back.
    LongServerDisconnect,
}

impl Scenario {
    /// Every advanced scenario, in the order they run.
    pub const ALL: [Scenario; 7] = [
        Scenario::PubackQos1,
        Scenario::ReceiveLargePayload,
        Scenario::PersistentSession,
        Scenario::KeepAlive,
        Scenario::IntermittentConnectivity,
        Scenario::ReconnectBackOff,
        Scenario::LongServerDisconnect,
    ];

    /// Device Advisor's name: `RECONNECT_BACK_OFF`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::PubackQos1 => "PUBACK_QOS_1",
            Scenario::ReceiveLargePayload => "RECEIVE_LARGE_PAYLOAD",
            Scenario::PersistentSession => "PERSISTENT_SESSION",
            Scenario::KeepAlive => "KEEP_ALIVE",
            Scenario::IntermittentConnectivity => "INTERMITTENT_CONNECTIVITY",
            Scenario::ReconnectBackOff => "RECONNECT_BACK_OFF",
            Scenario::LongServerDisconnect => "LONG_SERVER_DISCONNECT",
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is no long-duration scenario.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a long-duration scenario; expected one of PUBACK_QOS_1, RECEIVE_LARGE_PAYLOAD, PERSISTENT_SESSION, KEEP_ALIVE, INTERMITTENT_CONNECTIVITY, RECONNECT_BACK_OFF, LONG_SERVER_DISCONNECT"
)]
pub struct UnknownScenario(pub String);

impl FromStr for Scenario {
    type Err = UnknownScenario;

    fn from_str(text: &str) -> Result<Scenario, UnknownScenario> {
        Scenario::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| UnknownScenario(text.to_owned()))
    }
}

/// The long-duration case's settings (Device Advisor's configuration
/// options, with its defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LongDuration {
    /// How long a PUBACK or SUBACK is withheld waiting for the device to
    /// send its packet again (Device Advisor: 15 s).
    pub retry_window: Duration,
    /// How long the server stays down in `LONG_SERVER_DISCONNECT`
    /// (`LONG_SERVER_DISCONNECT_TIME`: 60 min, 30 to 120 in Device Advisor).
    pub long_server_disconnect: Duration,
    /// How long the case watches after the scenarios
    /// (`ADDITIONAL_EXECUTION_TIME`: 0).
    pub additional_time: Duration,
    /// Disconnections in `RECONNECT_BACK_OFF` (`BACKOFF_CONNECTION_ATTEMPTS`:
    /// 5, 5 to 10).
    pub backoff_attempts: usize,
    /// The advanced scenarios to run (`SCENARIOS`: all of them).
    pub scenarios: Vec<Scenario>,
    /// Before each advanced scenario the device is left connected this
    /// long, so that a backoff that starts over after a stable connection
    /// (AWS's SDKs: after 30 s) does, and each scenario sees the device as
    /// it is after a quiet spell (iotcore's setting: Device Advisor does not
    /// say how it spaces its scenarios).
    pub settle: Duration,
}

impl Default for LongDuration {
    fn default() -> Self {
        LongDuration {
            retry_window: Duration::from_secs(15),
            long_server_disconnect: Duration::from_secs(60 * 60),
            additional_time: Duration::ZERO,
            backoff_attempts: 5,
            scenarios: Scenario::ALL.to_vec(),
            settle: Duration::from_secs(30),
        }
    }
}

/// The cuts `INTERMITTENT_CONNECTIVITY` makes.
const INTERMITTENT_CUTS: usize = 3;
/// When, after CONNACK, it cuts: at random in this range.
const INTERMITTENT_AFTER: (Duration, Duration) =
    (Duration::from_millis(200), Duration::from_millis(1_000));
/// How long after a retry window the case waits for the retry to show.
const WINDOW_MARGIN: Duration = Duration::from_millis(500);

/// One scenario's verdict.
struct Scored {
    name: String,
    outcome: Outcome,
}

/// Runs the case on `run`: each scenario may take `limit` (plus its own
/// durations); returns the verdict.
pub(super) async fn run_long_duration(
    run: &mut CaseRun<'_>,
    config: &LongDuration,
    limit: Duration,
) -> Outcome {
    let mut scored = Vec::new();
    let mut score = |name: &str, outcome: Outcome| {
        scored.push(Scored {
            name: name.to_owned(),
            outcome,
        });
    };
    // Basic scenarios.
    let connected = {
        let basic = basic(run, config.retry_window, limit).await;
        let connected = basic[0].1.verdict == Verdict::Pass;
        for (name, outcome) in basic {
            score(name, outcome);
        }
        connected
    };
    if !connected {
        return conclude(&scored, &run.transcript);
    }
    run.cut();
    score(
        "RECONNECT",
        reconnected(run, limit, "the connection was dropped").await,
    );

    // Advanced scenarios.
    for &scenario in &config.scenarios {
        settle(run, config.settle, limit).await;
        let outcome = advanced(run, scenario, config, limit).await;
        score(scenario.as_str(), outcome);
    }
    if !config.additional_time.is_zero() {
        let end = Instant::now() + config.additional_time;
        run.set_faults(Faults::default());
        while run.step(end).await {}
    }
    conclude(&scored, &run.transcript)
}

/// Serves without faults until the device has been connected for `settle`
/// on one connection (or `limit` passed).
async fn settle(run: &mut CaseRun<'_>, settle: Duration, limit: Duration) {
    run.set_faults(Faults::default());
    let deadline = Instant::now() + limit.max(settle * 2);
    loop {
        let up_since = run.transcript.iter().rev().find_map(|o| match o.seen {
            Seen::ConnAckSent => Some(Some(o.at)),
            Seen::Closed { .. } | Seen::Refused => Some(None),
            _ => None,
        });
        let next = match up_since.flatten() {
            Some(at) if run.start.elapsed() >= at + settle => return,
            Some(at) => (run.start + at + settle).min(deadline),
            None => deadline,
        };
        if !run.step(next).await && next >= deadline {
            return;
        }
    }
}

/// Serves with `faults` until `decide` decides on what was seen since, or
/// `limit` passes (`None`).
async fn until(
    run: &mut CaseRun<'_>,
    faults: Faults,
    limit: Duration,
    decide: impl Fn(&[Observation]) -> Option<Outcome>,
) -> Option<Outcome> {
    run.set_faults(faults);
    let from = run.transcript.len();
    let deadline = Instant::now() + limit;
    loop {
        if let Some(outcome) = decide(&run.transcript[from..]) {
            return Some(outcome);
        }
        if !run.step(deadline).await {
            return None;
        }
    }
}

/// A basic scenario whose first packet waits for its retry.
struct Windowed {
    of: RetryOf,
    /// When its first packet came, from the case's start.
    original: Option<Duration>,
    outcome: Option<Outcome>,
}

impl Windowed {
    fn new(of: RetryOf) -> Windowed {
        Windowed {
            of,
            original: None,
            outcome: None,
        }
    }

    /// Decides on what was seen, or on the window's end at `now`.
    fn decide(&mut self, seen: &[Observation], now: Duration, window: Duration) {
        if self.outcome.is_some() {
            return;
        }
        if let Some(outcome) = retry(seen, self.of) {
            self.outcome = Some(outcome);
            return;
        }
        self.original = self
            .original
            .or_else(|| first_seen(seen, |s| self.of.packet(s).is_some()).map(|o| o.at));
        if self
            .original
            .is_some_and(|at| now >= at + window + WINDOW_MARGIN)
        {
            self.outcome = Some(Outcome::warn(format!(
                "the device did not send its first QoS 1 {} again within the {} ms retry \
                 window; it was answered after the window",
                self.of.name(),
                window.as_millis()
            )));
        }
    }

    /// When the window of its first packet ends, from the case's start.
    fn window_end(&self, window: Duration) -> Option<Duration> {
        match self.outcome {
            None => self.original.map(|at| at + window + WINDOW_MARGIN),
            Some(_) => None,
        }
    }

    fn outcome(self) -> Outcome {
        self.outcome.unwrap_or_else(|| {
            Outcome::skipped(format!(
                "the device sent no QoS 1 {}: not among its operations",
                self.of.name()
            ))
        })
    }
}

/// The basic scenarios, together as Device Advisor runs them: CONNECT, and
/// the first QoS 1 PUBLISH and the first SUBSCRIBE, each answered only when
/// the device sends it again within `window` (or after the window, with a
/// warning).
async fn basic(
    run: &mut CaseRun<'_>,
    window: Duration,
    limit: Duration,
) -> Vec<(&'static str, Outcome)> {
    let from = run.transcript.len();
    let deadline = Instant::now() + limit;
    let mut connected = None;
    let mut windowed = [
        Windowed::new(RetryOf::Publish),
        Windowed::new(RetryOf::Subscribe),
    ];
    loop {
        let seen = &run.transcript[from..];
        let now = run.start.elapsed();
        connected = connected
            .or_else(|| first_seen(seen, |s| matches!(s, Seen::ConnAckSent)).map(|o| o.at));
        for w in &mut windowed {
            w.decide(seen, now, window);
        }
        // Withheld until decided: the first of each only.
        run.set_faults(Faults {
            withhold_puback: windowed[0].outcome.is_none(),
            withhold_suback: windowed[1].outcome.is_none(),
            release_after: Some(window),
            ..Faults::default()
        });
        if connected.is_some() && windowed.iter().all(|w| w.outcome.is_some()) {
            break;
        }
        let next = windowed
            .iter()
            .filter_map(|w| w.window_end(window))
            .map(|end| run.start + end)
            .fold(deadline, Instant::min);
        if !run.step(next).await && next >= deadline {
            break;
        }
    }
    let qos0 = first_seen(&run.transcript[from..], |s| {
        matches!(s, Seen::Publish { qos: 0, .. })
    })
    .is_some();
    let connect = match connected {
        Some(at) => Outcome::pass(format!("connected at {} ms", at.as_millis())),
        None => Outcome::fail("the device did not connect"),
    };
    let [publish, subscribe] = windowed;
    let publish_outcome = match qos0 {
        true => with_note(publish.outcome(), "QoS 0 PUBLISH seen too"),
        false => publish.outcome(),
    };
    vec![
        ("CONNECT", connect),
        ("PUBLISH", publish_outcome),
        ("SUBSCRIBE", subscribe.outcome()),
    ]
}

/// The device connected again (without faults) after `event`, which just
/// happened.
async fn reconnected(run: &mut CaseRun<'_>, limit: Duration, event: &str) -> Outcome {
    run.set_faults(Faults::default());
    let from = run.transcript.len();
    let since = run.start.elapsed();
    let deadline = Instant::now() + limit;
    loop {
        if let Some(o) = first_seen(&run.transcript[from..], |s| matches!(s, Seen::ConnAckSent)) {
            return Outcome::pass(format!(
                "connected again {} ms after {event}",
                o.at.saturating_sub(since).as_millis()
            ));
        }
        if !run.step(deadline).await {
            return Outcome::fail(format!("the device did not connect again after {event}"));
        }
    }
}

/// Runs one advanced scenario.
async fn advanced(
    run: &mut CaseRun<'_>,
    scenario: Scenario,
    config: &LongDuration,
    limit: Duration,
) -> Outcome {
    let subscribed = run.state().filter.is_some();
    match scenario {
        Scenario::PubackQos1 | Scenario::ReceiveLargePayload => {
            if !subscribed {
                return Outcome::skipped("the device subscribed to nothing: no message to send it");
            }
            let size = match scenario {
                Scenario::PubackQos1 => SMALL_PAYLOAD,
                _ => FRAGMENTED_PAYLOAD,
            };
            run.command(Command::SendToSubscriber(size));
            until(run, Faults::default(), limit, puback)
                .await
                .unwrap_or_else(|| {
                    Outcome::fail(format!("no PUBACK for the {size}-byte QoS 1 message"))
                })
        }
        Scenario::PersistentSession => {
            let persistent = first_seen(&run.transcript, |s| {
                matches!(
                    s,
                    Seen::Connect {
                        clean_start: false,
                        ..
                    }
                )
            })
            .is_some();
            if !persistent || !subscribed {
                return Outcome::skipped(
                    "the device does not keep a session (clean session) with a subscription",
                );
            }
            let faults = Faults {
                session: Some(SessionPlan::Kept),
                ..Faults::default()
            };
            run.set_faults(faults);
            run.cut();
            until(run, faults, limit, resumed_session)
                .await
                .unwrap_or_else(|| {
                    Outcome::fail(
                        "the device did not resume its session and take the stored message",
                    )
                })
        }
        Scenario::KeepAlive => {
            let faults = Faults {
                withhold_puback: true,
                withhold_suback: true,
                withhold_pingresp: true,
                ..Faults::default()
            };
            until(run, faults, limit, gave_up_unanswered)
                .await
                .unwrap_or_else(|| {
                    Outcome::fail("the device kept its connection open with every answer withheld")
                })
        }
        Scenario::IntermittentConnectivity => {
            let faults = Faults {
                cut_randomly: Some(INTERMITTENT_AFTER),
                ..Faults::default()
            };
            run.set_faults(faults);
            run.cut();
            until(run, faults, limit, came_back_each_time)
                .await
                .unwrap_or_else(|| {
                    let back = connects(&run.transcript).len();
                    Outcome::fail(format!(
                        "the device did not come back after each of {INTERMITTENT_CUTS} drops \
                         ({back} CONNECTs in the whole case)"
                    ))
                })
        }
        Scenario::ReconnectBackOff => {
            let faults = Faults {
                connack: super::case::ConnackPlan::DisconnectAfter,
                ..Faults::default()
            };
            run.set_faults(faults);
            run.cut();
            let attempts = config.backoff_attempts;
            until(run, faults, limit, |seen| reconnect_backoff(seen, attempts))
                .await
                .unwrap_or_else(|| {
                    Outcome::fail(format!(
                        "fewer than {attempts} reconnects after the server disconnected the device"
                    ))
                })
        }
        Scenario::LongServerDisconnect => long_server_disconnect(run, config, limit).await,
    }
}

/// The server down for the configured time, then up: the device must
/// reconnect.
async fn long_server_disconnect(
    run: &mut CaseRun<'_>,
    config: &LongDuration,
    limit: Duration,
) -> Outcome {
    let down = Faults {
        refuse_connections: true,
        ..Faults::default()
    };
    run.set_faults(down);
    run.cut();
    let from = run.transcript.len();
    let back_at = Instant::now() + config.long_server_disconnect;
    while run.step(back_at).await {}
    let refused = run.transcript[from..]
        .iter()
        .filter(|o| o.seen == Seen::Refused)
        .count();
    let outcome = reconnected(run, limit, "the server came back").await;
    let down_for = format!(
        "the server was down for {} ms; the device tried {refused} time(s) meanwhile",
        config.long_server_disconnect.as_millis()
    );
    with_note(outcome, &down_for)
}

/// The first connection since the cut resumed the session: no SUBSCRIBE on
/// it, and the stored message acknowledged.
fn resumed_session(seen: &[Observation]) -> Option<Outcome> {
    let connection = first_seen(seen, |s| matches!(s, Seen::Connect { .. }))?.connection;
    resumed_on(seen, connection)
}

/// The device closed its connection while every answer was withheld.
fn gave_up_unanswered(seen: &[Observation]) -> Option<Outcome> {
    let began = seen.first()?.at;
    let closed = first_seen(seen, |s| {
        matches!(s, Seen::Disconnect | Seen::Closed { by_server: false })
    })?;
    let pings = seen
        .iter()
        .filter(|o| o.connection == closed.connection && o.seen == Seen::PingReq)
        .count();
    Some(Outcome::pass(format!(
        "closed its connection {} ms after answers stopped, {pings} PINGREQ(s) left unanswered",
        closed.at.saturating_sub(began).as_millis()
    )))
}

/// The device reconnected after each of the intermittent drops.
fn came_back_each_time(seen: &[Observation]) -> Option<Outcome> {
    let times = connect_times(seen);
    (times.len() > INTERMITTENT_CUTS).then(|| {
        Outcome::pass(format!(
            "came back after each of {INTERMITTENT_CUTS} drops at random times, waits {}",
            millis(&waits(&times[..=INTERMITTENT_CUTS]))
        ))
    })
}

fn first_seen(seen: &[Observation], pred: impl Fn(&Seen) -> bool) -> Option<&Observation> {
    seen.iter().find(|o| pred(&o.seen))
}

fn connects(seen: &[Observation]) -> Vec<&Observation> {
    seen.iter()
        .filter(|o| matches!(o.seen, Seen::Connect { .. }))
        .collect()
}

fn with_note(mut outcome: Outcome, note: &str) -> Outcome {
    outcome.evidence.push(note.to_owned());
    outcome
}

/// The case's verdict: the worst scenario's (skipped ones aside), each
/// scenario's evidence, and Device Advisor's summary.
fn conclude(scored: &[Scored], transcript: &[Observation]) -> Outcome {
    let verdict = scored
        .iter()
        .map(|s| s.outcome.verdict)
        .filter(|v| *v != Verdict::Skipped)
        .max()
        .unwrap_or(Verdict::Skipped);
    let mut evidence: Vec<String> = scored
        .iter()
        .map(|s| {
            format!(
                "{}: {} — {}",
                s.name,
                s.outcome.verdict,
                s.outcome.evidence.join("; ")
            )
        })
        .collect();
    evidence.extend(summary(scored, transcript));
    Outcome { verdict, evidence }
}

/// Device Advisor's summary log: keep-alive, persistent session, connections,
/// backoff type, topics.
fn summary(scored: &[Scored], transcript: &[Observation]) -> Vec<String> {
    let connect = transcript.iter().find_map(|o| match &o.seen {
        Seen::Connect {
            keep_alive,
            clean_start,
            ..
        } => Some((*keep_alive, *clean_start)),
        _ => None,
    });
    let mut published = BTreeSet::new();
    let mut subscribed = BTreeSet::new();
    for o in transcript {
        match &o.seen {
            Seen::Publish { topic, .. } => {
                published.insert(topic.as_str());
            }
            Seen::Subscribe { filters, .. } => {
                subscribed.extend(filters.iter().map(String::as_str));
            }
            _ => {}
        }
    }
    let backoff = scored
        .iter()
        .find(|s| s.name == Scenario::ReconnectBackOff.as_str())
        .and_then(|s| s.outcome.evidence.first())
        .and_then(|e| e.rsplit(": ").next())
        .map_or("not validated".to_owned(), str::to_owned);
    let list = |set: &BTreeSet<&str>| {
        if set.is_empty() {
            "none".to_owned()
        } else {
            set.iter().copied().collect::<Vec<_>>().join(", ")
        }
    };
    vec![
        format!(
            "summary: keep-alive {}; persistent session {}; {} connection(s); reconnect backoff \
             {backoff}",
            connect.map_or("unknown".to_owned(), |(k, _)| format!("{k} s")),
            connect.map_or("unknown", |(_, clean)| if clean { "no" } else { "yes" }),
            connects(transcript).len(),
        ),
        format!("published to: {}", list(&published)),
        format!("subscribed to: {}", list(&subscribed)),
    ]
}
