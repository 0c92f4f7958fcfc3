//! The service framework (`iotcore::service`) on its own, against Mosquitto:
//! the "service" is a scripted responder, another client that sees each
//! request and answers as the test says (late, out of order, malformed, for
//! other tokens, or not at all). The device's link goes through a fault
//! proxy where a test needs to break it.

mod common;

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use iotcore::service::{
    Correlation, Request, Service, ServiceChannel, ServiceError, ServiceErrorKind,
};
use iotcore::{Client, ConnectionState, QoS, Subscription};
use serde::Deserialize;
use serde_json::{Value, json};

use common::mosquitto::ProxiedMosquitto;
use common::{next, wait_state, within};

static ECHO: Service = Service::new("Echo", Correlation::ClientToken);
static ECHO_BY_TOPIC: Service = Service::new("Echo by topic", Correlation::Topic);
static BOUNDED: Service = Service::new("Bounded", Correlation::ClientToken).with_max_in_flight(2);

/// How long a test waits to be sure something does *not* happen.
const QUIET: Duration = Duration::from_millis(300);

type Setup = ProxiedMosquitto;

impl Setup {
    /// The device under test, through the proxy.
    async fn device(&self, id: &str) -> Client {
        within("device connect", self.via.client(id).connect())
            .await
            .expect("device connects")
    }

    /// The scripted service, answering requests on `svc/<device>/<op>`.
    async fn responder(&self) -> Responder {
        let client = within(
            "responder connect",
            self.direct.client("responder").connect(),
        )
        .await
        .expect("responder connects");
        let requests = within(
            "responder subscribe",
            client.subscribe("svc/+/+", QoS::AtLeastOnce),
        )
        .await
        .expect("responder subscribes");
        Responder { client, requests }
    }
}

/// A request as the responder saw it.
struct Seen {
    topic: String,
    body: Value,
}

impl Seen {
    fn token(&self) -> Option<&str> {
        self.body["clientToken"].as_str()
    }

    fn n(&self) -> i64 {
        self.body["n"].as_i64().expect("a request with n")
    }
}

struct Responder {
    client: Client,
    requests: Subscription,
}

impl Responder {
    async fn next(&mut self) -> Seen {
        let message = next("a request", &mut self.requests).await;
        Seen {
            topic: message.topic().to_owned(),
            body: serde_json::from_slice(message.payload()).expect("a JSON request"),
        }
    }

    /// True when no request arrives for a while.
    async fn quiet(&mut self) -> bool {
        tokio::time::timeout(QUIET, futures_util::StreamExt::next(&mut self.requests))
            .await
            .is_err()
    }

    async fn reply(&self, seen: &Seen, kind: &str, payload: impl Into<bytes::Bytes>) {
        within(
            "reply",
            self.client
                .publish(format!("{}/{kind}", seen.topic), payload, QoS::AtLeastOnce),
        )
        .await
        .expect("reply published");
    }

    /// Accepts `seen`, echoing its token and `n`.
    async fn accept(&self, seen: &Seen) {
        let reply = json!({"clientToken": seen.token(), "n": seen.n()});
        self.reply(seen, "accepted", reply.to_string()).await;
    }
}

#[derive(Debug, Deserialize, PartialEq)]
struct Echo {
    n: i64,
}

/// A request on `svc/dev/{op}` with `{"n": n}`.
fn echo(op: &str, n: i64) -> Request {
    Request::new("Echo", format!("svc/dev/{op}"), json!({"n": n}))
}

/// `echo(op, n)` on `channel`, in a task of its own.
fn spawn_echo(
    channel: &ServiceChannel,
    op: &'static str,
    n: i64,
) -> tokio::task::JoinHandle<Result<Echo, ServiceError>> {
    let channel = channel.clone();
    tokio::spawn(async move { channel.call::<Echo>(echo(op, n)).await })
}

/// `echo(op, n)` on `channel`, accepted by the responder: the reply the
/// request gets must be its own.
async fn accepted_echo(
    channel: &ServiceChannel,
    responder: &mut Responder,
    op: &'static str,
    n: i64,
) {
    let request = spawn_echo(channel, op, n);
    let seen = responder.next().await;
    assert_eq!(seen.n(), n);
    responder.accept(&seen).await;
    assert_eq!(
        within("a request", request).await.unwrap().unwrap(),
        Echo { n }
    );
}

/// Task `n` asked `echo(_, n)`: each must have had its own reply.
async fn each_got_its_own_reply(tasks: Vec<tokio::task::JoinHandle<Result<Echo, ServiceError>>>) {
    for (n, task) in (0..).zip(tasks) {
        assert_eq!(
            within("a request", task).await.unwrap().unwrap(),
            Echo { n }
        );
    }
}

fn token_channel(device: &Client, op: &str) -> ServiceChannel {
    ServiceChannel::new(device, &ECHO, [format!("svc/dev/{op}/+")])
}

fn topic_channel(device: &Client, op: &str) -> ServiceChannel {
    ServiceChannel::new(
        device,
        &ECHO_BY_TOPIC,
        [
            format!("svc/dev/{op}/accepted"),
            format!("svc/dev/{op}/rejected"),
        ],
    )
}

#[tokio::test]
async fn replies_are_matched_by_client_token_among_interleaved_concurrent_requests() {
    let s = Setup::start().await;
    let device = s.device("dev").await;
    let mut responder = s.responder().await;
    let channel = token_channel(&device, "echo");

    let requests = join_all((0..6).map(|n| {
        let channel = channel.clone();
        async move { channel.call::<Echo>(echo("echo", n)).await }
    }));
    let answers = async {
        let mut seen = Vec::new();
        for _ in 0..6 {
            let request = responder.next().await;
            assert!(request.token().is_some(), "the channel sets a clientToken");
            seen.push(request);
        }
        let mut tokens: Vec<_> = seen.iter().map(|s| s.token().unwrap().to_owned()).collect();
        tokens.sort();
        tokens.dedup();
        assert_eq!(tokens.len(), 6, "every request has its own token");
        // Last asked, first answered; odd ones refused in Jobs' shape.
        for request in seen.iter().rev() {
            if request.n() % 2 == 0 {
                responder.accept(request).await;
            } else {
                let refusal = json!({
                    "code": "InvalidStateTransition",
                    "message": format!("{} is odd", request.n()),
                    "clientToken": request.token(),
                    "executionState": {"n": request.n()},
                });
                responder
                    .reply(request, "rejected", refusal.to_string())
                    .await;
            }
        }
    };
    let (results, ()) = within("requests", futures_util::future::join(requests, answers)).await;
    for (n, result) in results.into_iter().enumerate() {
        let n = n as i64;
        if n % 2 == 0 {
            assert_eq!(result.unwrap(), Echo { n });
        } else {
            let e = result.unwrap_err();
            assert_eq!(e.kind(), ServiceErrorKind::Rejected, "{e}");
            let rejection = e.rejection().unwrap();
            assert_eq!(rejection.error_code(), Some("InvalidStateTransition"));
            assert_eq!(rejection.message(), format!("{n} is odd"));
            let raw: Value = rejection.decode().unwrap();
            assert_eq!(raw["executionState"]["n"], n, "the raw document is kept");
            assert!(!e.is_retryable());
            assert_eq!(e.service(), "Echo");
            assert_eq!(e.topic(), "svc/dev/echo");
        }
    }
    device.close().await;
}

#[tokio::test]
async fn a_reply_for_an_unknown_token_is_ignored_and_goes_to_the_event_stream() {
    let s = Setup::start().await;
    let device = s.device("dev").await;
    let mut responder = s.responder().await;
    let channel = token_channel(&device, "echo");
    let mut events = channel.events();

    let request = spawn_echo(&channel, "echo", 7);
    let seen = responder.next().await;
    for stray in [
        json!({"clientToken": "someone-else", "n": -1}).to_string(),
        json!({"n": -2}).to_string(),
        "not json".to_owned(),
    ] {
        responder.reply(&seen, "accepted", stray).await;
    }
    let e = json!({"code": 500, "message": "not yours", "clientToken": "someone-else"});
    responder.reply(&seen, "rejected", e.to_string()).await;
    responder.accept(&seen).await;

    assert_eq!(
        within("the request", request).await.unwrap().unwrap(),
        Echo { n: 7 }
    );
    let mut strays = Vec::new();
    for _ in 0..4 {
        let event = next("a stray reply", &mut events).await;
        strays.push(event.payload_str().unwrap().to_owned());
    }
    assert!(strays[0].contains("someone-else"), "{strays:?}");
    assert_eq!(strays[2], "not json");
    assert!(strays[3].contains("not yours"));
    device.close().await;
}

#[tokio::test]
async fn topic_correlation_runs_one_request_at_a_time_in_arrival_order() {
    let s = Setup::start().await;
    let device = s.device("dev").await;
    let mut responder = s.responder().await;
    let channel = topic_channel(&device, "prov");

    let mut tasks = Vec::new();
    for n in 0..3 {
        tasks.push(spawn_echo(&channel, "prov", n));
        // Let it take its place in the queue before the next one comes.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for n in 0..3 {
        let seen = responder.next().await;
        assert_eq!(seen.n(), n, "in arrival order");
        assert_eq!(seen.token(), None, "no clientToken with topic correlation");
        assert!(
            responder.quiet().await,
            "the next request waits until this one has its reply"
        );
        // No token to echo: the reply is taken by topic alone.
        responder
            .reply(&seen, "accepted", json!({"n": seen.n()}).to_string())
            .await;
    }
    each_got_its_own_reply(tasks).await;
    device.close().await;
}

#[tokio::test]
async fn a_request_without_a_reply_times_out_and_gives_up_its_turn() {
    let s = Setup::start().await;
    let device = s.device("dev").await;
    let mut responder = s.responder().await;
    let channel = topic_channel(&device, "prov").with_timeout(Duration::from_millis(300));
    assert_eq!(channel.timeout(), Duration::from_millis(300));

    let e = within(
        "the unanswered request",
        channel.call::<Echo>(echo("prov", 1)),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ServiceErrorKind::Timeout, "{e}");
    assert_eq!(e.timeout(), Some(Duration::from_millis(300)));
    assert!(e.is_retryable());
    assert!(e.to_string().contains("no reply within 300ms"), "{e}");
    assert_eq!(responder.next().await.n(), 1);

    let channel = channel.with_timeout(Duration::from_secs(10));
    accepted_echo(&channel, &mut responder, "prov", 2).await;
    device.close().await;
}

#[tokio::test]
async fn a_dropped_request_future_cancels_cleanly() {
    let s = Setup::start().await;
    let device = s.device("dev").await;
    let mut responder = s.responder().await;

    // Topic correlation: dropping the request gives its turn to the next.
    let by_topic = topic_channel(&device, "prov");
    let abandoned = spawn_echo(&by_topic, "prov", 1);
    assert_eq!(responder.next().await.n(), 1);
    abandoned.abort();
    assert!(abandoned.await.unwrap_err().is_cancelled());
    accepted_echo(&by_topic, &mut responder, "prov", 2).await;

    // Token correlation: the dropped request's late reply is nobody's.
    let by_token = token_channel(&device, "echo");
    let mut events = by_token.events();
    let abandoned = by_token.call::<Echo>(echo("echo", 3));
    let seen = {
        tokio::pin!(abandoned);
        tokio::select! {
            _ = &mut abandoned => panic!("no reply was sent"),
            seen = responder.next() => seen,
        }
    }; // the request's future is dropped here
    responder.accept(&seen).await;
    let late = next("the late reply", &mut events).await;
    assert_eq!(
        late.payload_str()
            .map(|p| p.contains(seen.token().unwrap())),
        Some(true)
    );
    accepted_echo(&by_token, &mut responder, "echo", 4).await;
    device.close().await;
}

#[tokio::test]
async fn requests_in_flight_are_bounded_per_service_across_its_channels() {
    let s = Setup::start().await;
    let device = s.device("dev").await;
    let mut responder = s.responder().await;
    let a = ServiceChannel::new(&device, &BOUNDED, ["svc/dev/a/+"]);
    let b = ServiceChannel::new(&device, &BOUNDED, ["svc/dev/b/+"]);

    let tasks: Vec<_> = (0..4)
        .map(|n| {
            if n % 2 == 0 {
                spawn_echo(&a, "a", n)
            } else {
                spawn_echo(&b, "b", n)
            }
        })
        .collect();
    let first = responder.next().await;
    let second = responder.next().await;
    assert!(responder.quiet().await, "a third request waits for a place");
    responder.accept(&first).await;
    let third = responder.next().await;
    assert!(responder.quiet().await);
    responder.accept(&second).await;
    responder.accept(&third).await;
    let fourth = responder.next().await;
    responder.accept(&fourth).await;
    each_got_its_own_reply(tasks).await;
    device.close().await;
}

#[tokio::test]
async fn malformed_replies_and_invalid_requests_are_typed_errors() {
    let s = Setup::start().await;
    let device = s.device("dev").await;
    let mut responder = s.responder().await;
    let by_token = token_channel(&device, "echo");
    let by_topic = topic_channel(&device, "prov");

    async fn answered(
        responder: &mut Responder,
        channel: &ServiceChannel,
        op: &'static str,
        kind: &str,
        reply: impl Fn(&Seen) -> String,
    ) -> ServiceError {
        let request = spawn_echo(channel, op, 1);
        let seen = responder.next().await;
        responder.reply(&seen, kind, reply(&seen)).await;
        within("the request", request).await.unwrap().unwrap_err()
    }

    // An accepted reply that is ours but not what the caller expects.
    let e = answered(&mut responder, &by_token, "echo", "accepted", |seen| {
        json!({"clientToken": seen.token(), "n": "one"}).to_string()
    })
    .await;
    assert_eq!(e.kind(), ServiceErrorKind::InvalidReply, "{e}");
    assert!(e.to_string().contains("svc/dev/echo/accepted"), "{e}");
    // A rejection that is ours but not an error document.
    let e = answered(&mut responder, &by_token, "echo", "rejected", |seen| {
        json!({"clientToken": seen.token()}).to_string()
    })
    .await;
    assert_eq!(e.kind(), ServiceErrorKind::InvalidReply, "{e}");
    // By topic, even a reply that is not JSON is this request's.
    for kind in ["accepted", "rejected"] {
        let e = answered(&mut responder, &by_topic, "prov", kind, |_| {
            "\u{0}garbage".to_owned()
        })
        .await;
        assert_eq!(e.kind(), ServiceErrorKind::InvalidReply, "{kind}: {e}");
        assert!(!e.is_retryable());
    }
    // By token, a reply that is not JSON cannot be anyone's: it is ignored
    // and the request ends with its timeout.
    let short = by_token.clone().with_timeout(Duration::from_millis(500));
    let e = answered(&mut responder, &short, "echo", "accepted", |_| {
        "not json".to_owned()
    })
    .await;
    assert_eq!(e.kind(), ServiceErrorKind::Timeout, "{e}");

    // Refused before sending: a reply topic the channel does not cover, and a
    // body that cannot carry a clientToken.
    let e = by_token
        .call::<Echo>(Request::new("Echo", "svc/dev/other", json!({})))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ServiceErrorKind::InvalidRequest, "{e}");
    assert!(e.to_string().contains("nothing was sent"), "{e}");
    let e = by_token
        .call::<Echo>(Request::new("Echo", "svc/dev/echo", json!([1, 2])))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ServiceErrorKind::InvalidRequest, "{e}");
    assert!(e.to_string().contains("not an array"), "{e}");
    assert!(responder.quiet().await, "nothing was sent");
    device.close().await;
}

/// The device's link drops after its request reached the responder (and the
/// broker acknowledged it), and the responder replies while the device is
/// away. Returns the request's task.
async fn reply_while_the_device_is_away(
    s: &Setup,
    device: &Client,
    responder: &mut Responder,
    timeout: Duration,
) -> tokio::task::JoinHandle<Result<Echo, ServiceError>> {
    let channel = token_channel(device, "echo").with_timeout(timeout);
    let request = spawn_echo(&channel, "echo", 5);
    let seen = responder.next().await;
    // A PUBACK for a later publish means the request's came before it.
    within(
        "a later publish",
        device.publish("svc/dev/marker/x", "", QoS::AtLeastOnce),
    )
    .await
    .expect("marker published");
    let mut status = device.status();
    s.proxy.refuse(true);
    s.proxy.cut();
    wait_state(&mut status, "the drop", |state| !state.is_connected()).await;
    responder.accept(&seen).await;
    s.proxy.refuse(false);
    request
}

#[tokio::test]
async fn a_reply_lost_to_a_reconnect_without_the_session_fails_the_request_at_once() {
    let s = Setup::start().await;
    let device = s.device("dev").await;
    let mut responder = s.responder().await;
    let timeout = Duration::from_secs(60);
    let started = Instant::now();
    let request = reply_while_the_device_is_away(&s, &device, &mut responder, timeout).await;

    let e = within("the request", request).await.unwrap().unwrap_err();
    assert_eq!(e.kind(), ServiceErrorKind::ConnectionLost, "{e}");
    assert!(e.is_retryable());
    assert!(
        started.elapsed() < timeout,
        "it did not wait for its timeout"
    );
    assert!(matches!(
        *device.status().borrow(),
        ConnectionState::Connected {
            session_present: false
        }
    ));
    // The channel still works: its subscriptions were restored.
    let channel = token_channel(&device, "echo");
    accepted_echo(&channel, &mut responder, "echo", 6).await;
    device.close().await;
}

#[tokio::test]
async fn a_request_across_a_reconnect_that_keeps_the_session_gets_its_reply() {
    let s = Setup::start().await;
    let device = within(
        "device connect",
        s.via
            .client("dev")
            .persistent_session(Duration::from_secs(600))
            .connect(),
    )
    .await
    .expect("device connects");
    let mut responder = s.responder().await;
    let request =
        reply_while_the_device_is_away(&s, &device, &mut responder, Duration::from_secs(60)).await;

    assert_eq!(
        within("the request", request).await.unwrap().unwrap(),
        Echo { n: 5 }
    );
    assert!(matches!(
        *device.status().borrow(),
        ConnectionState::Connected {
            session_present: true
        }
    ));
    device.close().await;
}

#[tokio::test]
async fn a_request_made_while_offline_waits_for_the_connection_and_gets_its_reply() {
    let s = Setup::start().await;
    let device = s.device("dev").await;
    let mut responder = s.responder().await;
    let channel = token_channel(&device, "echo");
    within("subscribe", channel.subscribe()).await.unwrap();
    let mut status = device.status();
    s.proxy.refuse(true);
    s.proxy.cut();
    wait_state(&mut status, "the drop", |state| !state.is_connected()).await;

    let request = spawn_echo(&channel, "echo", 8);
    assert!(responder.quiet().await, "offline: the request waits");
    s.proxy.refuse(false);
    let seen = responder.next().await;
    responder.accept(&seen).await;
    assert_eq!(
        within("the request", request).await.unwrap().unwrap(),
        Echo { n: 8 }
    );
    device.close().await;
}

#[tokio::test]
async fn requests_fail_with_the_client_error_once_the_client_is_closed() {
    let s = Setup::start().await;
    let device = s.device("dev").await;
    let mut responder = s.responder().await;
    let channel = token_channel(&device, "echo");
    let waiting = spawn_echo(&channel, "echo", 1);
    responder.next().await;
    device.close().await;
    for e in [
        within("the waiting request", waiting)
            .await
            .unwrap()
            .unwrap_err(),
        channel.call::<Echo>(echo("echo", 2)).await.unwrap_err(),
    ] {
        assert_eq!(e.kind(), ServiceErrorKind::Client, "{e}");
        assert_eq!(
            e.client_error().map(iotcore::Error::kind),
            Some(iotcore::ErrorKind::Closed)
        );
    }
}
