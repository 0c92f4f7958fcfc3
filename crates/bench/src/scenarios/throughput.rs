//! Client throughput: publishes per second of one client over mutual TLS to the
//! emulator, for each [`Case`], the iotcore SDK against the other clients.
//!
//! Each client publishes to its own topic that nobody subscribes to, so the figures
//! measure the publish path (client, TLS, broker ingest) alone. QoS 1 "delivered"
//! means acknowledged (PUBACK); QoS 0 "delivered" means read by the broker: the
//! timing ends with the PUBACK of one more QoS 1 publish (not counted). The
//! clients take turns, never two at once, alternating who goes first.

use crate::clients::{iotcore, rumqttc::Rumqttc};
use crate::error::BenchResult;
use crate::report::{Better, Figure, Group, Measurement, Target};
use crate::scenarios::publish_case::{Case, Mode};
use crate::suite::Suite;

/// Warm-up before the first run: each case once with this many times fewer messages.
const WARM_UP_SCALE: usize = 10;

/// Runs every case [`Suite::runs`] times per client.
pub async fn run(suite: &Suite) -> BenchResult<Vec<Figure>> {
    let cases = Case::all(suite.scale());
    let port = suite.emulator().port();
    let ours = suite.identity("bench-tp-iotcore")?;
    let theirs = suite.identity("bench-tp-rumqttc")?;
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
            let rate = |elapsed: std::time::Duration| case.count as f64 / elapsed.as_secs_f64();
            if round % 2 == 0 {
                rates[0].push(rate(iotcore::publish(&client, &our_topic, case).await?));
                rates[1].push(rate(rumqttc.publish(&their_topic, case).await?));
            } else {
                rates[1].push(rate(rumqttc.publish(&their_topic, case).await?));
                rates[0].push(rate(iotcore::publish(&client, &our_topic, case).await?));
            }
        }
    }
    client.close().await;
    rumqttc.close().await?;

    Ok(cases
        .iter()
        .zip(rates)
        .map(|(case, [ours, theirs])| {
            let figure = Figure::new(
                Group::ClientThroughput,
                case.label(),
                "msgs/s",
                Better::Higher,
                Measurement::new("iotcore", ours),
            )
            .peer(Measurement::new(suite.version_of("rumqttc"), theirs));
            match case.mode {
                Mode::Pipelined => figure.target(Target::Times {
                    peer: "rumqttc".into(),
                    times: 1.5,
                }),
                Mode::Sequential => figure,
            }
        })
        .collect())
}
