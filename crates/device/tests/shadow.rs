//! The shadow client against the in-process emulator's Device Shadow service.

mod shadow_support;

use std::collections::HashSet;
use std::time::Duration;

use futures_util::future::join_all;
use iotcore::ConnectionState;
use iotcore::shadow::{ShadowErrorKind, ShadowOperation, UpdateRequest};
use iotcore_test_support::FaultProxy;
use serde_json::{Value, json};
use shadow_support::{Harness, next, object, within};

#[tokio::test]
async fn get_update_and_delete_a_classic_shadow() {
    let h = Harness::start().await;
    let device = h.device("lamp-1").await;
    let shadow = device.shadow();
    assert_eq!(shadow.id().thing(), "lamp-1");

    let missing = within("get", shadow.get()).await.unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
    assert_eq!(missing.kind(), ShadowErrorKind::Rejected);
    assert_eq!(
        missing.message(),
        Some("No shadow exists with name: 'lamp-1'")
    );
    assert_eq!(missing.operation(), Some(ShadowOperation::Get));
    assert!(missing.client_token().is_some(), "AWS echoes our token");

    let accepted = within(
        "report",
        shadow.update_reported(json!({"on": false, "fw": "1.0"})),
    )
    .await
    .unwrap();
    assert_eq!(accepted.version, 1);
    assert_eq!(
        accepted.state.reported,
        Some(json!({"on": false, "fw": "1.0"}))
    );
    assert_eq!(accepted.state.desired, None);

    let accepted = within("desire", shadow.update_desired(json!({"on": true})))
        .await
        .unwrap();
    assert_eq!(accepted.version, 2);

    let document = within("get", shadow.get()).await.unwrap();
    assert_eq!(document.version, 2);
    assert_eq!(document.state.desired, Some(object(json!({"on": true}))));
    assert_eq!(document.state.delta, Some(object(json!({"on": true}))));
    assert!(document.metadata.reported.is_some());

    // null deletes a key; the delta goes once reported matches.
    within(
        "report",
        shadow.update_reported(json!({"on": true, "fw": null})),
    )
    .await
    .unwrap();
    let document = within("get", shadow.get()).await.unwrap();
    assert_eq!(document.state.reported, Some(object(json!({"on": true}))));
    assert_eq!(document.state.delta, None);

    let deleted = within("delete", shadow.delete()).await.unwrap();
    assert_eq!(deleted.version, 3);
    assert!(
        within("get", shadow.get())
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        within("delete", shadow.delete())
            .await
            .unwrap_err()
            .is_not_found()
    );
    device.close().await;
    h.shutdown().await;
}

#[tokio::test]
async fn named_shadows_are_separate_documents() {
    let h = Harness::start().await;
    let device = h.device("lamp-2").await;
    let config = device.named_shadow("config");
    assert_eq!(config.id().name(), Some("config"));
    within("report", config.update_reported(json!({"interval": 5})))
        .await
        .unwrap();
    let missing = within("classic get", device.shadow().get())
        .await
        .unwrap_err();
    assert!(missing.is_not_found());
    let document = within("named get", config.get()).await.unwrap();
    assert_eq!(
        document.state.reported,
        Some(object(json!({"interval": 5})))
    );
    let missing = within("other named get", device.named_shadow("other").get())
        .await
        .unwrap_err();
    assert_eq!(
        missing.message(),
        Some("No shadow exists with name: 'other'")
    );
    device.close().await;
}

#[tokio::test]
async fn an_update_at_a_stale_version_is_a_typed_409() {
    let h = Harness::start().await;
    let device = h.device("lamp-3").await;
    let shadow = device.shadow();
    let first = within("report", shadow.update_reported(json!({"n": 1})))
        .await
        .unwrap();
    let second = within(
        "report at the current version",
        shadow.update(UpdateRequest::reported(object(json!({"n": 2}))).with_version(first.version)),
    )
    .await
    .unwrap();
    assert_eq!(second.version, first.version + 1);
    let conflict = within(
        "report at a stale version",
        shadow.update(UpdateRequest::reported(object(json!({"n": 3}))).with_version(first.version)),
    )
    .await
    .unwrap_err();
    assert!(conflict.is_version_conflict(), "{conflict}");
    assert_eq!(conflict.code(), Some(409));
    assert_eq!(conflict.message(), Some("Version conflict"));
    assert!(conflict.client_token().is_some());
    assert!(
        conflict.to_string().contains("read it again and retry"),
        "{conflict}"
    );
    let document = within("get", shadow.get()).await.unwrap();
    assert_eq!(
        document.state.reported,
        Some(object(json!({"n": 2}))),
        "nothing applied"
    );
    device.close().await;
}

#[tokio::test]
async fn invalid_requests_are_refused_with_aws_errors_or_before_sending() {
    let h = Harness::start().await;
    let device = h.device("lamp-4").await;
    let shadow = device.shadow();
    // Seven levels in `reported`; AWS's maximum is six.
    let too_deep = json!({"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}});
    let e = within("deep report", shadow.update_reported(too_deep))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(400), "{e}");
    assert_eq!(
        e.message(),
        Some("JSON contains too many levels of nesting; maximum is 6")
    );
    let e = within("array report", shadow.update_reported(json!([1, 2])))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ShadowErrorKind::InvalidRequest, "{e}");
    let e = within("bad name", device.named_shadow("a/b").get())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ShadowErrorKind::InvalidRequest, "{e}");
    assert!(e.to_string().contains("invalid shadow name"), "{e}");
    device.close().await;
}

/// Each reply echoes the state its request sent; a reply handed to the wrong
/// request would show another request's value.
fn assert_echoes(accepted: &iotcore::shadow::UpdateAccepted, section: &str, sent: &Value) {
    let echoed = match section {
        "desired" => &accepted.state.desired,
        _ => &accepted.state.reported,
    };
    assert_eq!(
        echoed.as_ref(),
        Some(sent),
        "a reply went to the wrong request"
    );
}

#[tokio::test]
async fn many_requests_in_flight_each_get_their_own_reply() {
    let h = Harness::start().await;
    let device = h.device("lamp-5").await;
    let shadow = device.shadow();
    // More than AWS's 10 in flight per connection: the client holds the rest
    // back instead of meeting 429.
    let requests = (0..40).map(|i| {
        let shadow = shadow.clone();
        async move {
            let sent = json!({"n": i});
            let accepted = shadow.update_reported(sent.clone()).await.unwrap();
            assert_echoes(&accepted, "reported", &sent);
            accepted.version
        }
    });
    let versions: HashSet<u64> = within("40 updates", join_all(requests))
        .await
        .into_iter()
        .collect();
    assert_eq!(versions, (1..=40).collect());
    let gets = (0..15).map(|_| shadow.get());
    for document in within("15 gets", join_all(gets)).await {
        assert_eq!(document.unwrap().version, 40);
    }
    device.close().await;
}

#[tokio::test]
async fn a_second_client_on_the_same_shadow_never_takes_our_replies() {
    let h = Harness::start().await;
    let device = h.device("lamp-6").await;
    let app = h.app("fleet-app").await;
    let mine = device.shadow();
    let theirs = app.thing_shadow("lamp-6", None);
    // Both clients subscribe to the same reply topics and see every reply.
    let device_side = (0..20).map(|i| {
        let shadow = mine.clone();
        async move {
            let sent = json!({"device": i});
            let accepted = shadow.update_reported(sent.clone()).await.unwrap();
            assert_echoes(&accepted, "reported", &sent);
        }
    });
    let app_side = (0..20).map(|i| {
        let shadow = theirs.clone();
        async move {
            let sent = json!({"app": i});
            let accepted = shadow.update_desired(sent.clone()).await.unwrap();
            assert_echoes(&accepted, "desired", &sent);
        }
    });
    within(
        "interleaved updates",
        futures_util::future::join(join_all(device_side), join_all(app_side)),
    )
    .await;
    let document = within("get", theirs.get()).await.unwrap();
    assert_eq!(document.version, 40);
    device.close().await;
    app.close().await;
}

#[tokio::test]
async fn deltas_and_documents_stream_the_cloud_sides_changes() {
    let h = Harness::start().await;
    let device = h.device("lamp-7").await;
    let app = h.app("fleet-app").await;
    let shadow = device.shadow();
    within(
        "report",
        shadow.update_reported(json!({"led": "off", "fw": "1.0"})),
    )
    .await
    .unwrap();
    let mut deltas = within("deltas", shadow.deltas()).await.unwrap();
    let mut documents = within("documents", shadow.documents()).await.unwrap();

    let cloud = app.thing_shadow("lamp-7", None);
    within(
        "desire",
        cloud.update_desired(json!({"led": "on", "fw": "1.0"})),
    )
    .await
    .unwrap();
    let delta = next("delta", &mut deltas).await;
    assert_eq!(
        delta.state,
        object(json!({"led": "on"})),
        "only what differs"
    );
    assert_eq!(delta.version, 2);
    assert!(delta.metadata.contains_key("led"));
    let event = next("documents", &mut documents).await;
    assert_eq!(event.current.version(), 2);
    assert_eq!(event.previous.map(|p| p.version()), Some(1));

    // Through the emulator's cloud-side API too (AWS's UpdateThingShadow).
    within(
        "API update",
        h.shadows()
            .update("lamp-7", None, br#"{"state":{"desired":{"led":"blink"}}}"#),
    )
    .await
    .unwrap();
    let delta = next("delta", &mut deltas).await;
    assert_eq!(delta.state, object(json!({"led": "blink"})));
    assert_eq!(deltas.dropped_events(), 0);
    device.close().await;
    assert!(
        within("end of deltas", futures_util::StreamExt::next(&mut deltas))
            .await
            .is_none()
    );
    app.close().await;
}

#[tokio::test]
async fn a_typed_shadow_round_trips_the_applications_struct() {
    #[derive(Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(default)]
    struct Lamp {
        on: bool,
        brightness: u8,
        schedule: Vec<String>,
    }
    let h = Harness::start().await;
    let device = h.device("lamp-8").await;
    let app = h.app("fleet-app").await;
    let lamp = device.shadow().typed::<Lamp>();
    let state = Lamp {
        on: true,
        brightness: 40,
        schedule: vec!["07:00".into(), "19:30".into()],
    };
    let accepted = within("typed report", lamp.report(&state)).await.unwrap();
    within(
        "partial desire",
        app.thing_shadow("lamp-8", None)
            .update_desired(json!({"brightness": 90})),
    )
    .await
    .unwrap();
    let document = within("typed get", lamp.get()).await.unwrap();
    assert_eq!(document.reported, Some(state));
    assert_eq!(
        document.desired,
        Some(Lamp {
            brightness: 90,
            ..Lamp::default()
        })
    );
    assert_eq!(document.delta, Some(object(json!({"brightness": 90}))));
    assert_eq!(document.version, accepted.version + 1);
    let stale = within(
        "typed report at a stale version",
        lamp.report_at(&Lamp::default(), accepted.version),
    )
    .await
    .unwrap_err();
    assert!(stale.is_version_conflict());
    device.close().await;
    app.close().await;
}

#[tokio::test]
async fn a_request_without_a_reply_times_out_and_later_requests_still_work() {
    let h = Harness::start().await;
    let credentials = h.register("lamp-9", iotcore_emulator::policy::PolicyTemplate::Thing);
    let proxy = FaultProxy::start(h.addr()).await.expect("proxy");
    let device = within(
        "connect",
        h.builder("lamp-9", &credentials, proxy.port())
            .keep_alive(Duration::from_secs(30))
            .connect(),
    )
    .await
    .unwrap();
    let shadow = device.shadow().with_timeout(Duration::from_millis(300));
    assert_eq!(shadow.timeout(), Duration::from_millis(300));
    assert!(
        within("get", shadow.get())
            .await
            .unwrap_err()
            .is_not_found()
    );
    proxy.stall();
    let e = within("stalled get", shadow.get()).await.unwrap_err();
    assert_eq!(e.kind(), ShadowErrorKind::Timeout, "{e}");
    assert!(e.to_string().contains("no reply within 300ms"), "{e}");
    proxy.resume();
    let shadow = shadow.with_timeout(Duration::from_secs(10));
    assert!(
        within("get after resume", shadow.get())
            .await
            .unwrap_err()
            .is_not_found()
    );
    device.close().await;
}

#[tokio::test]
async fn requests_fail_once_the_client_is_closed() {
    let h = Harness::start().await;
    let device = h.device("lamp-10").await;
    let shadow = device.shadow();
    within("report", shadow.update_reported(json!({"a": 1})))
        .await
        .unwrap();
    device.close().await;
    assert!(matches!(*device.status().borrow(), ConnectionState::Closed));
    let e = within("get after close", shadow.get()).await.unwrap_err();
    assert_eq!(e.kind(), ShadowErrorKind::Client, "{e}");
    assert_eq!(
        e.client_error().map(iotcore::Error::kind),
        Some(iotcore::ErrorKind::Closed)
    );
}

#[tokio::test]
async fn an_application_unsubscribes_from_shadows_it_is_done_with() {
    let h = Harness::start().await;
    let app = h.app("fleet-app").await;
    // Three reply subscriptions per shadow: 20 shadows would pass AWS's 50
    // subscriptions per connection without unsubscribing.
    for i in 0..20 {
        let shadow = app.thing_shadow(format!("bulb-{i}"), None);
        within("desire", shadow.update_desired(json!({"on": true})))
            .await
            .unwrap_or_else(|e| panic!("bulb-{i}: {e}"));
        within("unsubscribe", shadow.unsubscribe()).await.unwrap();
        within("unsubscribe again", shadow.unsubscribe())
            .await
            .unwrap();
    }
    // A shadow used again subscribes again.
    let document = within("get", app.thing_shadow("bulb-0", None).get())
        .await
        .unwrap();
    assert_eq!(document.state.desired, Some(object(json!({"on": true}))));
    app.close().await;
}
