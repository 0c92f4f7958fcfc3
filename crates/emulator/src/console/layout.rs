//! The frame of every console page (navigation, assets) and the small
//! renderings the views share: times, payloads, JSON.

use std::time::SystemTime;

use base64::Engine;
use hyper::StatusCode;
use maud::{DOCTYPE, Markup, html};
use time::OffsetDateTime;
use time::macros::format_description;

use super::http::{self, Response};

/// The console's style sheet and script, compiled in.
const STYLE: &str = include_str!("assets/console.css");
const SCRIPT: &str = include_str!("assets/console.js");

/// The views, in the navigation's order: path and label.
const VIEWS: [(&str, &str); 9] = [
    ("/", "Overview"),
    ("/mqtt", "MQTT test client"),
    ("/shadows", "Shadows"),
    ("/things", "Things"),
    ("/certificates", "Certificates"),
    ("/policies", "Policies"),
    ("/connections", "Connections"),
    ("/jobs", "Jobs"),
    ("/greengrass", "Greengrass"),
];

/// A page of the console: `title`, the navigation with `current` marked, `body`.
pub(super) fn frame(title: &str, current: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · iotcore emulator" }
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to the content" }
                header {
                    span.brand { "iotcore emulator" }
                    nav aria-label="Views" {
                        ul {
                            @for (path, label) in VIEWS {
                                li {
                                    @if path == current {
                                        a href=(path) aria-current="page" { (label) }
                                    } @else {
                                        a href=(path) { (label) }
                                    }
                                }
                            }
                        }
                    }
                }
                main #main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A 200 page.
pub(super) fn page(title: &str, current: &str, body: Markup) -> Response {
    http::html(StatusCode::OK, frame(title, current, body))
}

/// A compiled-in asset.
pub(super) fn asset(name: &str) -> Response {
    match name {
        "console.css" => http::respond(StatusCode::OK, "text/css; charset=utf-8", STYLE),
        "console.js" => http::respond(StatusCode::OK, "text/javascript; charset=utf-8", SCRIPT),
        _ => http::error(StatusCode::NOT_FOUND, &format!("no asset {name}")),
    }
}

/// A notice after a form: what was done, or what went wrong.
pub(super) fn notice(request: &super::http::Request) -> Markup {
    html! {
        @if let Some(done) = request.query("done") {
            p.notice role="status" { (done) }
        }
        @if let Some(error) = request.query("error") {
            p.error role="alert" { (error) }
        }
    }
}

/// `at` as a UTC time of day, the full date in its tooltip.
pub(super) fn time(at: SystemTime) -> Markup {
    let at = OffsetDateTime::from(at);
    let day = at
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
        ))
        .unwrap_or_default();
    let clock = at
        .format(format_description!(
            "[hour]:[minute]:[second].[subsecond digits:3]"
        ))
        .unwrap_or_default();
    html! { time datetime=(day) title=(day) { (clock) } }
}

/// A Unix time in seconds, as a date.
pub(super) fn date(unix: i64) -> Markup {
    match OffsetDateTime::from_unix_timestamp(unix) {
        Ok(at) => html! {
            (at.format(format_description!("[year]-[month]-[day] [hour]:[minute]:[second]")).unwrap_or_default())
        },
        Err(_) => html! { (unix) },
    }
}

/// A message payload: JSON pretty-printed, other text as it is, bytes in base64.
pub(super) fn payload(bytes: &[u8]) -> Markup {
    if bytes.is_empty() {
        return html! { span.muted { "(empty)" } };
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) {
        return json(&value);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => html! { pre.payload { (text) } },
        Err(_) => html! {
            pre.payload { (base64::engine::general_purpose::STANDARD.encode(bytes)) }
            span.muted { "(" (bytes.len()) " bytes, not UTF-8: shown in base64)" }
        },
    }
}

/// A JSON value, pretty-printed.
pub(super) fn json(value: &serde_json::Value) -> Markup {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    html! { pre.json { (text) } }
}

/// A certificate id, shortened, the whole id in its tooltip.
pub(super) fn certificate_id(id: &str) -> Markup {
    html! { code title=(id) { (short_id(id)) "…" } }
}

/// The first 12 characters of a certificate id: how the console names one.
pub(super) fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}
