//! Connections: who is connected, with which identity and through which door,
//! their subscriptions, the sessions kept for clients that went away and
//! what waits in them, and a live log of connections, disconnections and
//! refusals with the reason that decided each: the "why was my device
//! disconnected?" page.

use std::time::SystemTime;

use maud::{Markup, html};
use tokio::sync::broadcast::error::RecvError;

use super::Console;
use super::http::Response;
use super::layout;
use super::stream;
use crate::activity::{Event, EventKind, protocol_name};

/// Log entries the page keeps.
const KEPT: usize = 200;

/// `GET /connections`.
pub(super) fn page(console: &Console) -> Response {
    let recent = console.activity().recent();
    layout::page(
        "Connections",
        "/connections",
        html! {
            div data-stream="/connections/stream" {
                div #tables data-mode="replace" { (tables(console)) }
                section aria-labelledby="log-heading" {
                    h2 #log-heading { "Log " span.live aria-live="polite" {} }
                    p.muted { "Connections, disconnections with AWS's disconnectReason, and refusals with "
                        "the statement that decided (or that no statement allowed it), newest first." }
                    ol #log.log data-mode="prepend" data-keep=(KEPT) reversed {
                        @for event in recent.iter().rev() { (entry(event)) }
                    }
                }
            }
        },
    )
}

/// The connected clients and the sessions.
fn tables(console: &Console) -> Markup {
    let connections = console.activity().connections();
    let sessions = console.broker.sessions_overview();
    let now = SystemTime::now();
    html! {
        section aria-labelledby="connected-heading" {
            h2 #connected-heading { "Connected (" (connections.len()) ")" }
            @if connections.is_empty() {
                p.muted { "No device is connected." }
            } @else {
                table #connected {
                    thead { tr {
                        th scope="col" { "Client id" } th scope="col" { "Identity" } th scope="col" { "Door" }
                        th scope="col" { "MQTT" } th scope="col" { "From" } th scope="col" { "Since" }
                        th scope="col" { "Subscriptions" }
                    } }
                    tbody {
                        @for connection in &connections {
                            @let session = sessions.iter().find(|s| s.client_id == connection.client_id);
                            tr data-client-id=(connection.client_id) {
                                td { code { (connection.client_id) } }
                                td { (connection.principal) }
                                td { (connection.door) }
                                td { (protocol_name(connection.protocol)) }
                                td { (connection.peer) }
                                td { (layout::time(connection.since)) }
                                td { @if let Some(session) = session {
                                    @for (filter, qos) in &session.subscriptions {
                                        code { (filter) } " (QoS " (*qos as u8) ") "
                                    }
                                } }
                            }
                        }
                    }
                }
            }
        }
        @let kept: Vec<_> = sessions.iter().filter(|s| !s.expiry.is_zero()).collect();
        section aria-labelledby="sessions-heading" {
            h2 #sessions-heading { "Persistent sessions (" (kept.len()) ")" }
            @if kept.is_empty() {
                p.muted { "No persistent session (clean start off, or MQTT 5 with a session expiry)." }
            } @else {
                table #sessions {
                    thead { tr {
                        th scope="col" { "Client id" } th scope="col" { "MQTT" } th scope="col" { "State" }
                        th scope="col" { "Expires" }
                        th scope="col" { "Queued" } th scope="col" { "Sent, not acknowledged" }
                        th scope="col" { "Subscriptions" }
                    } }
                    tbody {
                        @for session in &kept {
                            tr data-client-id=(session.client_id) {
                                td { code { (session.client_id) } }
                                td { (protocol_name(session.protocol)) }
                                td { @if session.connected { "connected" } @else { "offline" } }
                                td { @match session.detached_at {
                                    Some(at) => {
                                        @let left = (at + session.expiry).duration_since(now).unwrap_or_default();
                                        "in " (left.as_secs()) " s"
                                    }
                                    None => { (session.expiry.as_secs()) " s after it disconnects" }
                                } }
                                td { (session.queued) }
                                td { (session.unacked) }
                                td { @for (filter, qos) in &session.subscriptions {
                                    code { (filter) } " (QoS " (*qos as u8) ") "
                                } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One log entry.
fn entry(event: &Event) -> Markup {
    html! {
        li class={ "event " (event.kind.as_str()) } {
            (layout::time(event.at)) " "
            span.tag { (event.kind.as_str()) }
            " " code { (if event.client_id.is_empty() { "(no client id)" } else { &event.client_id }) } " "
            @match event.kind {
                EventKind::Refused => {
                    (event.label)
                    @if let Some(subject) = &event.subject { " " code { (subject) } }
                    ": "
                }
                EventKind::Disconnected => { strong { (event.label) } ": " }
                EventKind::Connected => {}
            }
            span.why { (event.why) }
        }
    }
}

/// `GET /connections/stream`: each new log entry, and the tables again.
pub(super) fn stream(console: &Console) -> Response {
    let mut events = console.activity().events();
    let console = console.clone();
    stream::respond(&console.closing.clone(), move |updates| async move {
        loop {
            let entry = match events.recv().await {
                Ok(event) => entry(&event),
                Err(RecvError::Lagged(skipped)) => {
                    html! { li.skipped { (skipped) " events skipped: the page fell behind" } }
                }
                Err(RecvError::Closed) => break,
            };
            if !updates.send("log", entry).await || !updates.send("tables", tables(&console)).await
            {
                break;
            }
        }
    })
}
