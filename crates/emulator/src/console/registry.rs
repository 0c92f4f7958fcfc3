//! The registry: things, certificates (activate, deactivate, revoke: a
//! connected device is disconnected at once), policies with their versions,
//! and `policy explain` as a form.

use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use maud::{Markup, html};

use super::Console;
use super::http::{self, Request, Response, query_string, segment};
use super::layout;
use super::shadows::shadow_url;
use crate::control::UpdateCertificateRequest;
use crate::policy::{Action, ConnectAttributes};

/// `GET /things`.
pub(super) fn things(console: &Console) -> Response {
    let things = match console.store.list_things() {
        Ok(things) => things,
        Err(e) => return http::unavailable("the things", e),
    };
    layout::page(
        "Things",
        "/things",
        html! {
            @if things.is_empty() {
                p.muted { "No thing yet: " code { "iotcore thing create NAME" } " makes one with its certificate." }
            } @else {
                table {
                    thead { tr {
                        th scope="col" { "Name" } th scope="col" { "Type" } th scope="col" { "Attributes" }
                        th scope="col" { "Certificates" } th scope="col" { "Shadow" }
                    } }
                    tbody {
                        @for thing in &things {
                            @let principals = console.store.thing_principals(&thing.name).unwrap_or_default();
                            tr {
                                td { (thing.name) }
                                td { (thing.thing_type.as_deref().unwrap_or("")) }
                                td { @for (key, value) in &thing.attributes { code { (key) "=" (value) } " " } }
                                td { @for id in &principals { a href="/certificates" { (layout::certificate_id(id)) } " " } }
                                td { a href=(shadow_url(&thing.name, None)) { "classic" } }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// `GET /certificates`.
pub(super) fn certificates(console: &Console, request: &Request) -> Response {
    let certificates = match console.store.list_certificates() {
        Ok(certificates) => certificates,
        Err(e) => return http::unavailable("the certificates", e),
    };
    layout::page(
        "Certificates",
        "/certificates",
        html! {
            (layout::notice(request))
            p { "A certificate made inactive or revoked disconnects the devices using it at once; "
                "see why on " a href="/connections" { "Connections" } "." }
            table {
                thead { tr {
                    th scope="col" { "Id" } th scope="col" { "Status" } th scope="col" { "Things" }
                    th scope="col" { "Policies" } th scope="col" { "Created" } th scope="col" { "Change" }
                } }
                tbody {
                    @for certificate in &certificates {
                        @let policies = console.store.certificate_policies(&certificate.id).unwrap_or_default();
                        @let status = certificate.status.as_str();
                        tr data-certificate=(certificate.id) {
                            td { (layout::certificate_id(&certificate.id)) }
                            td { span class={ "status " (status.to_ascii_lowercase()) } { (status) } }
                            td { (certificate.things.join(", ")) }
                            td { @for policy in &policies { a href={ "/policies#" (policy.name) } { (policy.name) } " " } }
                            td { (layout::date(certificate.created_at)) }
                            td {
                                form.inline method="post" action={ "/certificates/" (segment(&certificate.id)) } {
                                    @for (new_status, label) in [("ACTIVE", "Activate"), ("INACTIVE", "Deactivate"), ("REVOKED", "Revoke")] {
                                        @if new_status != status {
                                            button type="submit" name="status" value=(new_status)
                                                aria-label={ (label) " certificate " (certificate.id) } { (label) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// `POST /certificates/{id}`: UpdateCertificate.
pub(super) fn set_status(console: &Console, id: &str, request: &Request) -> Response {
    let status = request.field("status").unwrap_or("");
    let result = console
        .control
        .update_certificate(UpdateCertificateRequest {
            certificate_id: id.to_owned(),
            new_status: status.to_owned(),
        });
    let (key, message) = match result {
        Ok(()) => (
            "done",
            format!("Certificate {} is now {status}", layout::short_id(id)),
        ),
        Err(e) => (
            "error",
            format!("Certificate {} unchanged: {e}", layout::short_id(id)),
        ),
    };
    http::see_other(&format!(
        "/certificates{}",
        query_string([(key, message.as_str())])
    ))
}

/// `GET /policies`: every policy and its versions; the explain form and its answer.
pub(super) fn policies(console: &Console, request: &Request) -> Response {
    let policies = match console.store.list_policies() {
        Ok(policies) => policies,
        Err(e) => return http::unavailable("the policies", e),
    };
    let certificates = console.store.list_certificates().unwrap_or_default();
    layout::page(
        "Policies",
        "/policies",
        html! {
            section aria-labelledby="explain-heading" {
                h2 #explain-heading { "Explain a decision" }
                p { "What the emulator would decide for a device: the statement that allows or denies, "
                    "as " code { "iotcore policy explain" } " says it." }
                form.explain method="get" action="/policies#explain-heading" {
                    label for="cert" { "Certificate" }
                    select #cert name="cert" required {
                        @for certificate in &certificates {
                            option value=(certificate.id) selected[request.query("cert") == Some(certificate.id.as_str())] {
                                (layout::short_id(&certificate.id)) "… " (certificate.things.join(", "))
                            }
                        }
                    }
                    label for="action" { "Action" }
                    select #action name="action" {
                        @for action in Action::ALL {
                            option value=(action.name()) selected[request.query("action") == Some(action.name())] { (action.name()) }
                        }
                    }
                    fieldset.connect-attributes {
                        legend { "The CONNECT asks for (" code { "iot:ConnectAttributes" } ", " code { "iot:Connect" } " only)" }
                        label { input type="checkbox" name="persistent" value="1" checked[ticked(request, "persistent")]; " A persistent session (" code { (ConnectAttributes::PERSISTENT_CONNECT) } ")" }
                        label { input type="checkbox" name="will" value="1" checked[ticked(request, "will")]; " A will (" code { (ConnectAttributes::LAST_WILL) } ")" }
                    }
                    label for="resource" { "Topic, filter, client id or ARN" }
                    input #resource name="resource" required value=(request.query("resource").unwrap_or(""));
                    label for="client_id" { "Client id of the connection (default: the certificate's thing)" }
                    input #client_id name="client_id" value=(request.query("client_id").unwrap_or(""));
                    button type="submit" { "Explain" }
                }
                @if request.query("cert").is_some() { (explain(console, request)) }
            }
            h2 { "Policies" }
            @if policies.is_empty() { p.muted { "No policy yet." } }
            @for policy in &policies {
                section.policy id=(policy.name) {
                    h3 { (policy.name) }
                    p { "Default version " (policy.default_version) "; attached to "
                        (policy.certificates.len()) " certificate(s)." }
                    @for version in policy.versions.iter().rev() {
                        details open[version.version == policy.default_version] {
                            summary { "Version " (version.version)
                                @if version.version == policy.default_version { " (default)" }
                                ", " (layout::date(version.created_at)) }
                            (document(&version.document))
                        }
                    }
                }
            }
        },
    )
}

fn document(text: &str) -> Markup {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value) => layout::json(&value),
        Err(_) => html! { pre { (text) } },
    }
}

/// Whether the explain form's checkbox `name` was ticked.
fn ticked(request: &Request, name: &str) -> bool {
    request.query(name).is_some()
}

/// The answer to the explain form.
fn explain(console: &Console, request: &Request) -> Markup {
    let answer = || -> Result<Markup, String> {
        let id = request.query("cert").unwrap_or("");
        let action =
            Action::from_str(request.query("action").unwrap_or("")).map_err(|e| e.to_string())?;
        let resource = request.query("resource").unwrap_or("");
        let client_id = match request.query("client_id").filter(|c| !c.is_empty()) {
            Some(client_id) => client_id.to_owned(),
            None => console
                .store
                .certificate(id)
                .map_err(|e| e.to_string())?
                .and_then(|c| c.things.into_iter().next())
                .ok_or("the certificate is attached to no thing: give the client id")?,
        };
        let source = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let (principal, status) = console
            .control
            .principal(id, &client_id, Some(source))
            .map_err(|e| e.to_string())?;
        let connect = ConnectAttributes {
            persistent_connect: ticked(request, "persistent"),
            last_will: ticked(request, "will"),
        };
        let decision = principal.explain(action, resource, connect);
        let verdict = if decision.is_allowed() {
            "ALLOW"
        } else {
            "DENY"
        };
        Ok(html! {
            div.answer role="status" {
                p { strong class={ "verdict " (verdict.to_ascii_lowercase()) } { (verdict) } " " (decision.to_string()) }
                p.muted { "Connection: " (principal.describe()) }
                @if status != crate::store::CertificateStatus::Active {
                    p.error { "The certificate is " (status.as_str()) ": the emulator refuses it before any policy is evaluated." }
                }
            }
        })
    };
    answer().unwrap_or_else(|why| html! { p.error role="alert" { "Cannot explain: " (why) } })
}
