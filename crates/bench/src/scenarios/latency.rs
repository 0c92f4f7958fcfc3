//! Latency, one request at a time, p50 and p99 of each run:
//!
//! * publish → receive: a client subscribed (QoS 1) to its own topic publishes a
//!   64-byte QoS 1 message and waits until it has it back (and its PUBACK) before the
//!   next. iotcore through the emulator, against rumqttc through the emulator (the
//!   client differs) and iotcore through Mosquitto (the broker differs);
//! * shadow update → accepted: one `update` of the reported state of a classic shadow,
//!   from the call to the accepted reply, iotcore against AWS's Python SDK v2.
//!
//! Each run pools one contender's samples into its p50 and p99; the figures report
//! the median of the runs' percentiles. The contenders take turns, never two at once,
//! starting with a different one each run.

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;

use crate::clients::echo::Echo;
use crate::clients::iotcore as sdk;
use crate::clients::python;
use crate::clients::python_shadow::{self, Rounds, ShadowClient};
use crate::error::{BenchResult, Context};
use crate::harness::Identity;
use crate::harness::PeerKind;
use crate::report::{Better, Figure, Group, Measurement, Target};
use crate::stats::quantile;
use crate::suite::Suite;

/// Publish → receive round trips per contender and run (divided by [`Suite::scale`]).
const PUBLISH_SAMPLES: usize = 2_000;
/// Shadow updates per contender and run (divided by [`Suite::scale`]).
const SHADOW_SAMPLES: usize = 1_000;
/// Unmeasured round trips before measuring (divided by [`Suite::scale`]), once per
/// connection of a Rust client.
const WARM_UP: usize = 100;
/// Unmeasured shadow updates at the start of each Python process (divided by
/// [`Suite::scale`]): a new connection each run, and 44 ms per update for two of them.
const PYTHON_WARM_UP: usize = 20;
/// A shadow contender stops a run early after this long: two of the Python clients
/// take about 44 ms per update and would otherwise take a minute per run.
const SHADOW_BUDGET: Duration = Duration::from_secs(3);
/// The published payload.
const PAYLOAD: usize = 64;
/// The shadow round trip p99 the issue asks for, in µs.
const SHADOW_P99_TARGET_US: f64 = 1_000.0;

/// Runs both figures' pairs (p50 and p99).
pub async fn run(suite: &Suite) -> BenchResult<Vec<Figure>> {
    let mut figures = publish_receive(suite).await?;
    figures.extend(shadow_update(suite).await?);
    Ok(figures)
}

/// Each run's p50 and p99 of one contender, in µs, or why it was not measured.
#[derive(Debug, Default)]
struct Percentiles {
    p50: Vec<f64>,
    p99: Vec<f64>,
    skipped: Option<String>,
}

impl Percentiles {
    /// Not measured, and why (on one line: it goes in a table cell).
    fn skipped(why: &str) -> Percentiles {
        Percentiles {
            skipped: Some(why.lines().collect::<Vec<_>>().join(" ")),
            ..Percentiles::default()
        }
    }

    /// Adds one run's samples.
    fn add_run(&mut self, samples: &[Duration]) {
        let micros = |q| quantile(samples, q).map(|d| d.as_secs_f64() * 1e6);
        if let (Some(p50), Some(p99)) = (micros(0.50), micros(0.99)) {
            self.p50.push(p50);
            self.p99.push(p99);
        }
    }

    /// The p50 (`p99` false) or p99 runs as a measurement of `who`.
    fn measurement(&self, who: &str, p99: bool) -> Measurement {
        match &self.skipped {
            Some(why) => Measurement::skipped(who, why.clone()),
            None => Measurement::new(who, if p99 { &self.p99 } else { &self.p50 }.clone()),
        }
    }
}

/// The p50 and p99 figures of `name`: the subject, then each peer; `note` goes on the p50.
fn figure_pair(
    name: &str,
    subject: &Percentiles,
    peers: &[(String, Percentiles)],
    note: &str,
) -> [Figure; 2] {
    [false, true].map(|p99| {
        let percentile = if p99 { "p99" } else { "p50" };
        let mut figure = Figure::new(
            Group::Latency,
            format!("{name}, {percentile}"),
            "µs",
            Better::Lower,
            subject.measurement("iotcore", p99),
        );
        if !p99 {
            // One note for the pair: the Markdown lists every figure's note.
            figure = figure.note(note);
        }
        for (who, percentiles) in peers {
            figure = figure.peer(percentiles.measurement(who, p99));
        }
        figure
    })
}

/// The order the contenders take their turns in during `run`: a different first each run.
fn turns(contenders: usize, run: usize) -> impl Iterator<Item = usize> {
    (0..contenders).map(move |i| (i + run) % contenders)
}

/// One client of the publish → receive figures.
struct Contender {
    who: String,
    /// `None` when it could not be started (then `results` says why).
    echo: Option<Echo>,
    results: Percentiles,
}

impl Contender {
    fn measured(who: String, echo: Echo) -> Contender {
        Contender {
            who,
            echo: Some(echo),
            results: Percentiles::default(),
        }
    }
}

/// Publish → receive: iotcore and rumqttc through the emulator, iotcore through Mosquitto
/// and through rumqttd.
async fn publish_receive(suite: &Suite) -> BenchResult<Vec<Figure>> {
    let samples = (PUBLISH_SAMPLES / suite.scale()).max(1);
    let warm_up = (WARM_UP / suite.scale()).max(1);
    let port = suite.emulator().port();
    let rumqttc = suite.version_of("rumqttc");
    let mut contenders = vec![
        Contender::measured(
            "iotcore".to_owned(),
            Echo::iotcore(port, &suite.identity("bench-lat-iotcore")?).await?,
        ),
        Contender::measured(
            format!("{rumqttc} → emulator (client differs)"),
            Echo::rumqttc(port, &suite.identity("bench-lat-rumqttc")?).await?,
        ),
    ];
    let mut brokers = Vec::new();
    for kind in PeerKind::ALL {
        contenders.push(match kind.start(suite.emulator().broker_tls(), &[]) {
            Ok(broker) => {
                suite.note_peer(broker.name());
                let identity =
                    suite.identity(&format!("bench-lat-{}", kind.label().to_lowercase()))?;
                let contender = Contender::measured(
                    format!("iotcore → {} (broker differs)", broker.name()),
                    Echo::iotcore(broker.port(), &identity).await?,
                );
                brokers.push(broker);
                contender
            }
            Err(why) => Contender {
                who: format!("iotcore → {} (broker differs)", kind.label()),
                echo: None,
                results: Percentiles::skipped(&why),
            },
        });
    }
    let payload = Bytes::from(vec![0u8; PAYLOAD]);

    suite.progress("latency: publish → receive, warming up");
    for echo in contenders.iter_mut().filter_map(|c| c.echo.as_mut()) {
        for _ in 0..warm_up {
            echo.round_trip(&payload).await?;
        }
    }
    for run in 0..suite.runs() {
        suite.progress(&format!(
            "latency: publish → receive, run {} of {}",
            run + 1,
            suite.runs()
        ));
        for index in turns(contenders.len(), run) {
            let contender = &mut contenders[index];
            if let Some(echo) = &mut contender.echo {
                let mut taken = Vec::with_capacity(samples);
                for _ in 0..samples {
                    taken.push(echo.round_trip(&payload).await?);
                }
                contender.results.add_run(&taken);
            }
        }
    }
    let mut results = Vec::new();
    for contender in contenders {
        if let Some(echo) = contender.echo {
            echo.close().await?;
        }
        results.push((contender.who, contender.results));
    }
    drop(brokers);

    let note = format!(
        "Publish → receive: a client subscribed (QoS 1) to its own topic publishes {PAYLOAD} B \
         at QoS 1 and times until the message is back in hand, one at a time ({samples} per run \
         after {warm_up} unmeasured): iotcore → the emulator against {rumqttc} → the emulator \
         (the client differs) and iotcore → Mosquitto and → rumqttd (the broker differs), same \
         certificates, each broker in its own process with its default settings."
    );
    let (ours, peers) = results
        .split_first()
        .ok_or("no contender")
        .during("latency")?;
    Ok(figure_pair(
        &format!("publish → receive, QoS 1, {PAYLOAD} B"),
        &ours.1,
        peers,
        &note,
    )
    .into())
}

/// One of the Python SDK's shadow clients and its runs.
struct ShadowPeer {
    client: ShadowClient,
    /// Its thing; `None` once it cannot be measured (then `results` says why).
    identity: Option<Identity>,
    results: Percentiles,
}

/// `rounds.requests` shadow updates with iotcore, one at a time, fewer once `rounds.budget` has passed.
async fn iotcore_updates(
    shadow: &iotcore::shadow::ShadowClient,
    rounds: Rounds,
) -> BenchResult<Vec<Duration>> {
    let mut taken = Vec::with_capacity(rounds.requests);
    let first = Instant::now();
    for n in 0..rounds.requests {
        let start = Instant::now();
        shadow
            .update_reported(json!({ "n": n }))
            .await
            .during("updating the shadow with iotcore")?;
        taken.push(start.elapsed());
        if first.elapsed() >= rounds.budget {
            break;
        }
    }
    Ok(taken)
}

/// Shadow update → accepted: iotcore's `update_reported` against the Python SDK's clients.
async fn shadow_update(suite: &Suite) -> BenchResult<Vec<Figure>> {
    let rounds = Rounds {
        warm_up: (WARM_UP / suite.scale()).max(1),
        requests: (SHADOW_SAMPLES / suite.scale()).max(1),
        budget: SHADOW_BUDGET,
    };
    let port = suite.emulator().port();
    let client = sdk::connect(port, &suite.identity("bench-lat-shadow")?).await?;
    let shadow = client.shadow();
    let missing = python::missing();
    let mut peers = Vec::new();
    for (index, client) in ShadowClient::ALL.into_iter().enumerate() {
        peers.push(match &missing {
            None => ShadowPeer {
                client,
                identity: Some(suite.identity(&format!("bench-lat-shadow-py-{index}"))?),
                results: Percentiles::default(),
            },
            Some(why) => ShadowPeer {
                client,
                identity: None,
                results: Percentiles::skipped(why),
            },
        });
    }

    suite.progress("latency: shadow update → accepted, warming up");
    iotcore_updates(
        &shadow,
        Rounds {
            requests: rounds.warm_up,
            ..rounds
        },
    )
    .await?;
    let mut ours = Percentiles::default();
    for run in 0..suite.runs() {
        suite.progress(&format!(
            "latency: shadow update → accepted, run {} of {}",
            run + 1,
            suite.runs()
        ));
        for index in turns(peers.len() + 1, run) {
            let Some(peer) = index.checked_sub(1).and_then(|i| peers.get_mut(i)) else {
                ours.add_run(&iotcore_updates(&shadow, rounds).await?);
                continue;
            };
            let Some(identity) = &peer.identity else {
                continue;
            };
            let python_rounds = Rounds {
                warm_up: (PYTHON_WARM_UP / suite.scale()).max(1),
                ..rounds
            };
            match python_shadow::round_trips(peer.client, port, identity, python_rounds).await {
                Ok(run) => {
                    suite.note_peer(&run.versions.label());
                    suite.note_peer(&run.versions.interpreter());
                    peer.results.add_run(&run.samples);
                }
                Err(error) => {
                    suite.progress(&format!(
                        "latency: {} not measured: {error}",
                        peer.client.label()
                    ));
                    peer.results = Percentiles::skipped(&error.to_string());
                    peer.identity = None;
                }
            }
        }
    }
    client.close().await;

    let note = format!(
        "Shadow update → accepted: one `update` of the reported state of a classic shadow, from \
         the call to the accepted reply in hand, one at a time, each client on its own thing \
         ({} per run, fewer if {} s pass first, after {} unmeasured): iotcore's \
         `shadow().update_reported` against AWS's Python SDK v2 (awsiot.iotshadow), a new \
         process per run (tests/peers/bench_shadow.py, {} unmeasured updates each). With QoS 1 \
         reply subscriptions (as in \
         AWS's samples) and with IotShadowClientV2 the Python client waits about 40 ms per \
         update: Nagle's algorithm holds back its next request behind its PUBACK of the reply.",
        rounds.requests,
        rounds.budget.as_secs(),
        rounds.warm_up,
        (PYTHON_WARM_UP / suite.scale()).max(1),
    );
    let peers: Vec<(String, Percentiles)> = peers
        .into_iter()
        .map(|peer| (peer.client.label(), peer.results))
        .collect();
    let [p50, p99] = figure_pair("shadow update → accepted", &ours, &peers, &note);
    Ok(vec![
        p50,
        p99.target(Target::Below {
            value: SHADOW_P99_TARGET_US,
        }),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_run_adds_its_percentiles_in_micros() {
        let mut percentiles = Percentiles::default();
        let samples: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        percentiles.add_run(&samples);
        percentiles.add_run(&[]);
        assert_eq!(percentiles.p50, vec![50.0]);
        assert_eq!(percentiles.p99, vec![99.0]);
        let p99 = percentiles.measurement("iotcore", true);
        assert_eq!(p99.runs, vec![99.0]);
        let skipped = Percentiles::skipped("no Python").measurement("awsiotsdk", false);
        assert_eq!(skipped.skipped.as_deref(), Some("no Python"));
    }

    #[test]
    fn every_run_starts_with_another_contender() {
        assert_eq!(turns(3, 0).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(turns(3, 1).collect::<Vec<_>>(), vec![1, 2, 0]);
        assert_eq!(turns(3, 5).collect::<Vec<_>>(), vec![2, 0, 1]);
    }
}
