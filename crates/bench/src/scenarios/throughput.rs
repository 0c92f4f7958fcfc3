//! Client throughput: publishes per second of one client over mutual TLS to the
//! emulator, for each [`Case`], the iotcore SDK against the other clients: rumqttc
//! (same process), AWS's IoT Device SDK v2 for Python (awscrt) and paho-mqtt (each a
//! subprocess, see [`python`]).
//!
//! Each client publishes to its own topic that nobody subscribes to, so the figures
//! measure the publish path (client, TLS, broker ingest) alone. QoS 1 "delivered"
//! means acknowledged (PUBACK); QoS 0 "delivered" means read by the broker: the
//! timing ends with the PUBACK of one more QoS 1 publish (not counted). The
//! clients take turns, never two at once, alternating who goes first. In each run a
//! Python client is a new process, connected once for all cases and warmed up first.

use crate::clients::python::PythonClient;
use crate::clients::{iotcore, rumqttc::Rumqttc};
use crate::error::BenchResult;
use crate::report::{Better, Figure, Group, Measurement, Target};
use crate::scenarios::publish_case::{Case, Mode};
use crate::scenarios::python_peer::PythonPeer;
use crate::suite::Suite;

/// Warm-up before the first run: each case once with this many times fewer messages.
pub(super) const WARM_UP_SCALE: usize = 10;

/// Runs every case [`Suite::runs`] times per client.
pub async fn run(suite: &Suite) -> BenchResult<Vec<Figure>> {
    let cases = Case::all(suite.scale());
    let port = suite.emulator().port();
    let ours = suite.identity("bench-tp-iotcore")?;
    let theirs = suite.identity("bench-tp-rumqttc")?;
    let mut pythons = Vec::new();
    for client in PythonClient::ALL {
        let identity = suite.identity(&format!("bench-tp-{}", client.name()))?;
        pythons.push(PythonPeer::new(client, identity, None));
    }
    let client = iotcore::connect(port, &ours).await?;
    let rumqttc = Rumqttc::connect(port, &theirs).await?;
    let (our_topic, their_topic) = (ours.topic(), theirs.topic());

    suite.progress("client throughput: warming up");
    for case in &cases {
        let case = case.scaled_down(WARM_UP_SCALE);
        iotcore::publish(&client, &our_topic, &case).await?;
        rumqttc.publish(&their_topic, &case).await?;
    }
    let mut rates: Vec<[Vec<f64>; 2]> = cases.iter().map(|_| Default::default()).collect();
    for round in 0..suite.runs() {
        suite.progress(&format!(
            "client throughput: run {} of {}",
            round + 1,
            suite.runs()
        ));
        for (case, rates) in cases.iter().zip(&mut rates) {
            let per_second = |elapsed| case.per_second(elapsed);
            if round % 2 == 0 {
                rates[0].push(per_second(
                    iotcore::publish(&client, &our_topic, case).await?,
                ));
                rates[1].push(per_second(rumqttc.publish(&their_topic, case).await?));
            } else {
                rates[1].push(per_second(rumqttc.publish(&their_topic, case).await?));
                rates[0].push(per_second(
                    iotcore::publish(&client, &our_topic, case).await?,
                ));
            }
        }
        for turn in 0..pythons.len() {
            let next = (round + turn) % pythons.len();
            pythons[next].run(suite, &cases, round).await;
        }
    }
    client.close().await;
    rumqttc.close().await?;
    for python in &pythons {
        python.note_versions(suite);
    }

    Ok(cases
        .iter()
        .zip(rates)
        .enumerate()
        .map(|(index, (case, [ours, theirs]))| {
            let figure = Figure::new(
                Group::ClientThroughput,
                case.label(),
                "msgs/s",
                Better::Higher,
                Measurement::new("iotcore", ours),
            )
            .peer(Measurement::new(suite.version_of("rumqttc"), theirs));
            let figure = pythons.iter().fold(figure, |figure, python| {
                figure.peer(python.measurement(index))
            });
            match case.mode {
                Mode::Pipelined => figure
                    .target(Target::Times {
                        peer: "rumqttc".into(),
                        times: 1.5,
                    })
                    .target(Target::Times {
                        peer: PythonClient::Awscrt.package().into(),
                        times: 5.0,
                    }),
                Mode::Sequential => figure,
            }
        })
        .collect())
}
