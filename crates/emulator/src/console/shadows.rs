//! Shadows: every thing's classic and named shadows; one shadow's desired,
//! reported and delta side by side, an editor for desired, and the versions
//! the shadow went through while the page was open.

use hyper::StatusCode;
use iotcore_model::shadow::GetAccepted;
use iotcore_model::topics::shadow_topic_prefix;
use maud::{Markup, html};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::Console;
use super::http::{self, Request, Response, query_string, segment};
use super::layout;
use super::stream;
use crate::shadow::ShadowApiError;

/// Versions the history keeps.
const KEPT: usize = 100;

/// `GET /shadows`.
pub(super) fn list(console: &Console) -> Response {
    let shadows = match console.store.list_shadows() {
        Ok(shadows) => shadows,
        Err(e) => return http::unavailable("the shadows", e),
    };
    layout::page(
        "Shadows",
        "/shadows",
        html! {
            @if shadows.is_empty() {
                p.muted { "No shadow yet. A device creates its shadow with its first update; "
                    "or open a thing's shadow from " a href="/things" { "Things" } " and set desired." }
            } @else {
                table {
                    thead { tr { th scope="col" { "Thing" } th scope="col" { "Shadow" } th scope="col" { "Version" } } }
                    tbody {
                        @for (thing, name, version) in &shadows {
                            tr {
                                td { (thing) }
                                td { a href=(shadow_url(thing, name_of(name))) { (label(name_of(name))) } }
                                td { (version) }
                            }
                        }
                    }
                }
            }
        },
    )
}

fn name_of(name: &str) -> Option<&str> {
    (!name.is_empty()).then_some(name)
}

fn label(name: Option<&str>) -> String {
    name.map_or_else(|| "classic".to_owned(), |name| format!("named: {name}"))
}

/// The page of `thing`'s shadow `name` (`None`: classic).
pub(super) fn shadow_url(thing: &str, name: Option<&str>) -> String {
    format!(
        "/shadows/{}{}",
        segment(thing),
        query_string(name.map(|n| ("name", n)))
    )
}

/// `GET /shadows/{thing}`; after a refused edit, `edited` is the text sent and why it was refused.
pub(super) async fn page(
    console: &Console,
    thing: &str,
    request: &Request,
    edited: Option<(&str, String)>,
) -> Response {
    let name = request.query("name").filter(|n| !n.is_empty());
    let shadow = console.shadows.get(thing, name).await;
    let current = match &shadow {
        Ok(document) => Some(document),
        Err(ShadowApiError::Rejected(e)) if e.code() == 404 => None,
        Err(ShadowApiError::InvalidName(e)) => {
            return http::error(StatusCode::BAD_REQUEST, &e.to_string());
        }
        Err(e) => return http::error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let desired_text = match &edited {
        Some((text, _)) => (*text).to_owned(),
        None => pretty(
            &current
                .and_then(|d| d.state.desired.clone())
                .map_or(json!({}), Value::Object),
        ),
    };
    let stream_url = format!(
        "/shadows/{}/stream{}",
        segment(thing),
        query_string(name.map(|n| ("name", n)))
    );
    let title = match name {
        Some(name) => format!("Shadow {name} of {thing}"),
        None => format!("Classic shadow of {thing}"),
    };
    let status = if edited.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    http::html(
        status,
        layout::frame(
            &title,
            "/shadows",
            html! {
                (layout::notice(request))
                @if let Some((_, why)) = &edited { p.error role="alert" { (why) } }
                div data-stream=(stream_url) {
                    div #state data-mode="replace" { (state(current)) }
                    section aria-labelledby="edit-heading" {
                        h2 #edit-heading { "Edit desired" }
                        form method="post" action=(shadow_url(thing, name)) {
                            label for="desired" { "Desired state (JSON; a key set to null is removed)" }
                            textarea #desired name="desired" rows="8" spellcheck="false" { (desired_text) }
                            button type="submit" { "Update desired" }
                        }
                    }
                    section aria-labelledby="history-heading" {
                        h2 #history-heading { "Versions while this page is open " span.live aria-live="polite" {} }
                        ol #history.history data-mode="prepend" data-keep=(KEPT) reversed {}
                    }
                }
            },
        ),
    )
}

/// Desired, reported and delta side by side.
fn state(document: Option<&GetAccepted>) -> Markup {
    let Some(document) = document else {
        return html! { p.muted { "This shadow does not exist yet: update desired to create it, or let the device report." } };
    };
    let section = |value: &Option<serde_json::Map<String, Value>>| match value {
        Some(object) => layout::json(&Value::Object(object.clone())),
        None => html! { p.muted { "(none)" } },
    };
    html! {
        p { "Version " strong.version { (document.version) } }
        div.sides {
            section.side #desired-state { h2 { "Desired" } (section(&document.state.desired)) }
            section.side #reported-state { h2 { "Reported" } (section(&document.state.reported)) }
            section.side #delta-state { h2 { "Delta" } (section(&document.state.delta)) }
        }
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// `POST /shadows/{thing}`: sets desired to the form's JSON.
pub(super) async fn edit(console: &Console, thing: &str, request: &Request) -> Response {
    let name = request.query("name").filter(|n| !n.is_empty());
    let text = request.field("desired").unwrap_or("");
    let desired = match serde_json::from_str::<Value>(text) {
        Ok(value @ (Value::Object(_) | Value::Null)) => value,
        Ok(_) => {
            let why = "desired must be a JSON object (or null to remove it)".to_owned();
            return page(console, thing, request, Some((text, why))).await;
        }
        Err(e) => {
            let why = format!("desired is not valid JSON: {e}");
            return page(console, thing, request, Some((text, why))).await;
        }
    };
    let update = json!({ "state": { "desired": desired } }).to_string();
    match console.shadows.update(thing, name, update.as_bytes()).await {
        Ok(accepted) => {
            let mut query: Vec<(&str, &str)> = name.map(|n| ("name", n)).into_iter().collect();
            let done = format!("Desired updated: version {}", accepted.version);
            query.push(("done", &done));
            http::see_other(&format!(
                "/shadows/{}{}",
                segment(thing),
                query_string(query)
            ))
        }
        Err(e) => page(console, thing, request, Some((text, e.to_string()))).await,
    }
}

/// `GET /shadows/{thing}/stream`: each new version as the shadow service
/// publishes its documents, and the state panels again.
pub(super) fn stream(console: &Console, thing: &str, request: &Request) -> Response {
    let name = request
        .query("name")
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    let topic = match shadow_topic_prefix(thing, name.as_deref()) {
        Ok(prefix) => format!("{prefix}/update/documents"),
        Err(e) => return http::error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let (thing, shadows) = (thing.to_owned(), console.shadows.clone());
    let mut messages = console.activity().messages();
    stream::respond(&console.closing, move |updates| async move {
        loop {
            let documents = match messages.recv().await {
                Ok(message) if message.topic == topic => message,
                Ok(_) | Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            };
            let current = shadows.get(&thing, name.as_deref()).await.ok();
            if !updates.send("state", state(current.as_ref())).await
                || !updates.send("history", version(&documents.payload)).await
            {
                break;
            }
        }
    })
}

/// One version, from a `…/update/documents` message: what changed.
fn version(payload: &[u8]) -> Markup {
    let documents: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
    let current = &documents["current"];
    html! {
        li {
            (layout::time(std::time::SystemTime::now())) " "
            "version " strong { (current["version"]) }
            details {
                summary { "state" }
                (layout::json(&current["state"]))
            }
        }
    }
}
