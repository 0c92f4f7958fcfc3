//! The MQTT test client: subscribe to topic filters and watch messages
//! arrive live; publish with a QoS and retain.
//!
//! The filters are the page's query (`?filter=a/%23&filter=b`), so that a
//! subscription is a link to share. Messages come from the broker's tap: the
//! console sees every message routed, as AWS's test client sees what its IAM
//! identity may receive; no device policy applies to it.

use std::sync::Arc;

use bytes::Bytes;
use hyper::StatusCode;
use iotcore_mqtt::topic::{MatchMode, matches, validate_aws_topic_filter};
use maud::{Markup, html};
use tokio::sync::broadcast::error::RecvError;

use super::Console;
use super::http::{self, Request, Response, query_string};
use super::layout;
use super::stream;
use crate::broker::message::Message;
use crate::data_plane::PublishRequest;

/// Messages the page keeps (older ones leave as new ones come).
const KEPT: usize = 200;

/// The filters of the page's query, each checked against AWS's rules.
fn filters(request: &Request) -> (Vec<&str>, Vec<String>) {
    let mut valid = Vec::new();
    let mut errors = Vec::new();
    for filter in request.query_all("filter") {
        match validate_aws_topic_filter(filter) {
            Ok(()) if !valid.contains(&filter) => valid.push(filter),
            Ok(()) => {}
            Err(e) => errors.push(format!(
                "{filter:?} is not a topic filter AWS IoT accepts: {e}"
            )),
        }
    }
    (valid, errors)
}

/// The query of a page with `filters`.
fn with_filters<'a>(filters: &[&'a str]) -> Vec<(&'a str, &'a str)> {
    filters.iter().map(|f| ("filter", *f)).collect()
}

/// `GET /mqtt`.
pub(super) fn page(request: &Request) -> Response {
    let (filters, errors) = filters(request);
    let stream_url = format!("/mqtt/stream{}", query_string(with_filters(&filters)));
    layout::page(
        "MQTT test client",
        "/mqtt",
        html! {
            (layout::notice(request))
            @for error in &errors { p.error role="alert" { (error) } }
            div.columns {
                section aria-labelledby="subscribe-heading" {
                    h2 #subscribe-heading { "Subscribe" }
                    form method="get" action="/mqtt" {
                        @for filter in &filters { input type="hidden" name="filter" value=(filter); }
                        label for="filter" { "Topic filter" }
                        input #filter name="filter" required placeholder="device/+/telemetry";
                        button type="submit" { "Subscribe" }
                    }
                    @if filters.is_empty() {
                        p.muted { "No subscription yet: " a href="/mqtt?filter=%23" { "subscribe to #" } " to see everything." }
                    } @else {
                        ul.filters aria-label="Subscriptions" {
                            @for filter in &filters {
                                @let others: Vec<&str> = filters.iter().copied().filter(|f| f != filter).collect();
                                li {
                                    code { (filter) } " "
                                    a href={ "/mqtt" (query_string(with_filters(&others))) } aria-label={ "Unsubscribe from " (filter) } { "unsubscribe" }
                                }
                            }
                        }
                    }
                }
                section aria-labelledby="publish-heading" {
                    h2 #publish-heading { "Publish" }
                    form method="post" action={ "/mqtt" (query_string(with_filters(&filters))) } {
                        label for="topic" { "Topic" }
                        input #topic name="topic" required placeholder="device/sensor-1/commands";
                        div.inline {
                            label for="qos" { "QoS" }
                            select #qos name="qos" {
                                option value="0" { "0" }
                                option value="1" selected { "1" }
                            }
                            label { input type="checkbox" name="retain" value="1"; " Retain" }
                        }
                        label for="payload" { "Payload" }
                        textarea #payload name="payload" rows="5" { "{\n  \"message\": \"Hello from the iotcore console\"\n}" }
                        button type="submit" { "Publish" }
                    }
                }
            }
            section aria-labelledby="messages-heading" data-stream=(stream_url) {
                h2 #messages-heading { "Messages " span.live aria-live="polite" {} }
                @if filters.is_empty() {
                    p.muted { "Subscribe to a topic filter to see its messages." }
                }
                ol #messages.messages data-mode="prepend" data-keep=(KEPT) reversed {}
            }
        },
    )
}

/// `POST /mqtt`: publishes the form's message, then back to the page.
pub(super) async fn publish(console: &Console, request: &Request) -> Response {
    let (filters, _) = filters(request);
    let mut back = with_filters(&filters);
    let topic = request.field("topic").unwrap_or("").trim().to_owned();
    let qos = request.field("qos").unwrap_or("0");
    let retain = request.field("retain").is_some();
    let payload = request.field("payload").unwrap_or("").to_owned();
    let outcome = match qos.parse::<i64>() {
        Ok(qos @ 0..=1) => console
            .data_plane
            .publish(PublishRequest {
                topic: topic.clone(),
                qos: Some(qos),
                retain,
                payload: Bytes::from(payload),
                ..PublishRequest::default()
            })
            .await
            .map_err(|e| e.to_string()),
        _ => Err(format!("QoS {qos}: AWS IoT Core takes QoS 0 or 1")),
    };
    let message = match &outcome {
        Ok(()) => format!(
            "Published to {topic} (QoS {qos}{})",
            if retain { ", retained" } else { "" }
        ),
        Err(e) => format!("Not published: {e}"),
    };
    back.push((if outcome.is_ok() { "done" } else { "error" }, &message));
    http::see_other(&format!("/mqtt{}", query_string(back)))
}

/// `GET /mqtt/stream`: the messages matching the page's filters, as they are routed.
pub(super) fn stream(console: &Console, request: &Request) -> Response {
    let (filters, errors) = filters(request);
    if !errors.is_empty() {
        return http::error(StatusCode::BAD_REQUEST, &errors.join("; "));
    }
    let filters: Vec<String> = filters.into_iter().map(str::to_owned).collect();
    let mut messages = console.activity().messages();
    stream::respond(&console.closing, move |updates| async move {
        loop {
            let row = match messages.recv().await {
                Ok(message) if wanted(&filters, &message) => row(&message),
                Ok(_) => continue,
                Err(RecvError::Lagged(skipped)) => html! {
                    li.skipped { (skipped) " messages skipped: the page fell behind" }
                },
                Err(RecvError::Closed) => break,
            };
            if !updates.send("messages", row).await {
                break;
            }
        }
    })
}

fn wanted(filters: &[String], message: &Message) -> bool {
    filters
        .iter()
        .any(|filter| matches(filter, &message.topic, MatchMode::Aws))
}

/// One message, as the list shows it.
fn row(message: &Arc<Message>) -> Markup {
    let properties = message.properties();
    html! {
        li.message {
            div.meta {
                (layout::time(std::time::SystemTime::now())) " "
                code.topic { (message.topic) }
                span.tag { "QoS " (message.qos as u8) }
                @if message.retain { span.tag { "retained" } }
            }
            (layout::payload(&message.payload))
            @if properties.content_type.is_some() || properties.response_topic.is_some()
                || properties.correlation_data.is_some() || !properties.user_properties.is_empty()
                || properties.payload_format_indicator.is_some() {
                dl.properties {
                    @if let Some(indicator) = properties.payload_format_indicator {
                        dt { "Payload format" } dd { @if indicator == 1 { "UTF-8" } @else { "bytes" } }
                    }
                    @if let Some(content_type) = &properties.content_type {
                        dt { "Content type" } dd { (content_type) }
                    }
                    @if let Some(topic) = &properties.response_topic {
                        dt { "Response topic" } dd { code { (topic) } }
                    }
                    @if let Some(data) = &properties.correlation_data {
                        dt { "Correlation data" } dd { code { (String::from_utf8_lossy(data)) } }
                    }
                    @for (name, value) in &properties.user_properties {
                        dt { "User property " code { (name) } } dd { (value) }
                    }
                }
            }
        }
    }
}
