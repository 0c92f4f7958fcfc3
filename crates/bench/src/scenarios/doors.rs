//! MQTT over WebSocket signed with SigV4 (the door of devices behind firewalls that
//! only let HTTPS out, and of apps with Cognito or STS credentials) against mutual
//! TLS, in the same run:
//!
//! * QoS 1 pipelined throughput of the SDK over WebSocket, against the SDK over
//!   mutual TLS and AWS's Python SDK v2 (awscrt) over WebSocket, each publishing to
//!   its own topic of the same `iotcore emulator` (as in the client throughput part);
//! * connect cost: TCP + TLS handshake (+ the HTTP upgrade and its signature for
//!   WebSocket) + CONNECT → CONNACK + DISCONNECT, the SDK over WebSocket against the
//!   SDK over mutual TLS with an ECDSA P-256 device key.
//!
//! The WebSocket clients sign with one of the emulator's access keys, whose policy
//! the emulator checks on every publish as it checks a certificate's.

use std::sync::Arc;

use crate::clients::iotcore;
use crate::clients::python::PythonClient;
use crate::error::{BenchResult, Context};
use crate::harness::AccessKey;
use crate::report::{Better, Figure, Group, Measurement, Target};
use crate::scenarios::connect::{
    CONCURRENCY, CONNECTIONS, Library, POOL_PER_SLOT, Pool, connections_per_second,
};
use crate::scenarios::publish_case::{Case, Mode};
use crate::scenarios::python_peer::PythonPeer;
use crate::scenarios::throughput::WARM_UP_SCALE;
use crate::suite::Suite;

/// The subject's name in the figures.
const OVER_WEBSOCKET: &str = "iotcore over WebSocket + SigV4";
/// The SDK's own mutual TLS, the first peer.
const OVER_MTLS: &str = "iotcore over mutual TLS";

/// Runs the throughput and the connect figures.
pub async fn run(suite: &Suite) -> BenchResult<Vec<Figure>> {
    let key = suite.emulator().access_key("bench-websocket")?;
    let mut figures = throughput(suite, &key).await?;
    figures.push(connect_cost(suite, key).await?);
    Ok(figures)
}

/// The QoS 1 pipelined cases of the client throughput part.
fn cases(suite: &Suite) -> Vec<Case> {
    Case::all(suite.scale())
        .into_iter()
        .filter(|case| case.qos == 1 && case.mode == Mode::Pipelined)
        .collect()
}

async fn throughput(suite: &Suite, key: &AccessKey) -> BenchResult<Vec<Figure>> {
    let cases = cases(suite);
    let port = suite.emulator().port();
    let over_ws = suite.identity("bench-ws-iotcore")?;
    let over_tls = suite.identity("bench-ws-mtls")?;
    let awscrt = suite.identity("bench-ws-awscrt")?;
    let mut python = PythonPeer::new(PythonClient::Awscrt, awscrt, Some(key.clone()));
    let websocket = iotcore::websocket_builder(port, &over_ws, key)?
        .connect()
        .await
        .during("connecting the iotcore client over WebSocket")?;
    let tls = iotcore::connect(port, &over_tls).await?;
    let clients = [(&websocket, over_ws.topic()), (&tls, over_tls.topic())];

    suite.progress("websocket: warming up");
    for case in &cases {
        for (client, topic) in &clients {
            iotcore::publish(client, topic, &case.scaled_down(WARM_UP_SCALE)).await?;
        }
    }
    // rates[case][0: WebSocket, 1: mutual TLS], one value per run.
    let mut rates: Vec<[Vec<f64>; 2]> = cases.iter().map(|_| Default::default()).collect();
    for round in 0..suite.runs() {
        suite.progress(&format!(
            "websocket: throughput run {} of {}",
            round + 1,
            suite.runs()
        ));
        for (case, rates) in cases.iter().zip(&mut rates) {
            for turn in 0..clients.len() {
                let index = (round + turn) % clients.len();
                let (client, topic) = &clients[index];
                let elapsed = iotcore::publish(client, topic, case).await?;
                rates[index].push(case.per_second(elapsed));
            }
        }
        python.run(suite, &cases, round).await;
    }
    websocket.close().await;
    tls.close().await;
    python.note_versions(suite);

    Ok(cases
        .iter()
        .zip(rates)
        .enumerate()
        .map(|(index, (case, [websocket, tls]))| {
            let figure = Figure::new(
                Group::WebSocket,
                case.label(),
                "msgs/s",
                Better::Higher,
                Measurement::new(OVER_WEBSOCKET, websocket),
            )
            .peer(Measurement::new(OVER_MTLS, tls))
            .peer(python.measurement(index))
            .target(Target::Times {
                peer: OVER_MTLS.into(),
                times: 0.8,
            })
            .target(Target::Times {
                peer: PythonClient::Awscrt.package().into(),
                times: 5.0,
            });
            if index > 0 {
                return figure; // the note is said once, under the first
            }
            figure.note(format!(
                "QoS 1 throughput: as in the client throughput part, each client publishing \
                 to its own topic, nobody subscribed; the WebSocket clients sign the upgrade \
                 with SigV4 (static credentials, region us-east-1) and the emulator checks \
                 the access key's policy on every publish; the two iotcore clients connected \
                 at once and taking turns; awsiotsdk over WebSocket \
                 (websockets_with_default_aws_signing) a new process per run; {} in flight",
                crate::scenarios::publish_case::WINDOW
            ))
        })
        .collect())
}

async fn connect_cost(suite: &Suite, key: AccessKey) -> BenchResult<Figure> {
    let connections = (CONNECTIONS / suite.scale()).max(CONCURRENCY);
    suite.progress("websocket: registering things for the connect cost");
    let identities = (0..POOL_PER_SLOT * CONCURRENCY)
        .map(|i| suite.identity(&format!("bench-ws-cc-{i:02}")))
        .collect::<BenchResult<Vec<_>>>()?;
    let pool = Arc::new(Pool::new(identities));
    let port = suite.emulator().port();
    let libraries = [Library::IotcoreWebSocket(Arc::new(key)), Library::Iotcore];

    suite.progress("websocket: connect cost, warming up");
    for library in &libraries {
        connections_per_second(library, port, &pool, CONCURRENCY).await?;
    }
    let mut rates = [Vec::new(), Vec::new()];
    for round in 0..suite.runs() {
        suite.progress(&format!(
            "websocket: connect cost run {} of {} ({connections} connections each)",
            round + 1,
            suite.runs()
        ));
        for turn in 0..libraries.len() {
            let index = (round + turn) % libraries.len();
            let rate = connections_per_second(&libraries[index], port, &pool, connections).await?;
            rates[index].push(rate);
        }
    }
    let [websocket, tls] = rates;
    Ok(Figure::new(
        Group::WebSocket,
        "connect cost".to_owned(),
        "conn/s",
        Better::Higher,
        Measurement::new(OVER_WEBSOCKET, websocket),
    )
    .peer(Measurement::new(
        format!("{OVER_MTLS}, ECDSA P-256 device key"),
        tls,
    ))
    .note(format!(
        "Connect cost: {connections} connections per run, {CONCURRENCY} in flight, a fresh \
         TLS configuration per connection (a full handshake each; server key ECDSA P-256); \
         WebSocket: TLS + HTTP/1.1 upgrade to /mqtt signed with SigV4 (the emulator verifies \
         the signature and looks up the key) + CONNECT → CONNACK + DISCONNECT; mutual TLS: \
         the same without the upgrade, with a client certificate; {} client ids in rotation",
        POOL_PER_SLOT * CONCURRENCY
    )))
}
