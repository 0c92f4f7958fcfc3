//! The services' views: jobs with their executions, Greengrass core devices
//! with their addresses and client devices.

use maud::html;

use super::Console;
use super::http::{self, Response};
use super::layout;

/// `GET /jobs`.
pub(super) fn jobs(console: &Console) -> Response {
    let jobs = match console.store.list_jobs() {
        Ok(jobs) => jobs,
        Err(e) => return http::unavailable("the jobs", e),
    };
    layout::page(
        "Jobs",
        "/jobs",
        html! {
            @if jobs.is_empty() {
                p.muted { "No job yet: " code { "iotcore jobs create JOB --thing NAME --document FILE" } "." }
            }
            @for job in jobs.iter().rev() {
                @let executions = console.store.executions_of_job(&job.job_id).unwrap_or_default();
                section.job id={ "job-" (job.job_id) } {
                    h2 { (job.job_id) " " span.tag { (job.status.as_str()) } }
                    @if let Some(description) = &job.description { p { (description) } }
                    p.muted { (job.target_selection.as_str()) ", created " (layout::date(job.created_at))
                        ", targets: " (job.targets.join(", ")) }
                    details {
                        summary { "Job document" }
                        @match serde_json::from_str::<serde_json::Value>(&job.document) {
                            Ok(value) => (layout::json(&value)),
                            Err(_) => pre { (job.document) },
                        }
                    }
                    @if !executions.is_empty() {
                        table {
                            thead { tr {
                                th scope="col" { "Thing" } th scope="col" { "Execution" } th scope="col" { "Status" }
                                th scope="col" { "Queued" } th scope="col" { "Details" }
                            } }
                            tbody {
                                @for execution in &executions {
                                    tr {
                                        td { (execution.thing_name) }
                                        td { (execution.execution_number) }
                                        td { span.tag { (execution.status.as_str()) } }
                                        td { (layout::date(execution.queued_at)) }
                                        td { @for (key, value) in &execution.status_details { code { (key) "=" (value) } " " } }
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

/// `GET /greengrass`.
pub(super) fn greengrass(console: &Console) -> Response {
    let cores = match console.store.list_core_devices() {
        Ok(cores) => cores,
        Err(e) => return http::unavailable("the Greengrass core devices", e),
    };
    layout::page(
        "Greengrass",
        "/greengrass",
        html! {
            @if cores.is_empty() {
                p.muted { "No core device yet: " code { "iotcore greengrass core create NAME" } "." }
            }
            @for core in &cores {
                @let clients = console.store.client_devices(&core.thing_name).unwrap_or_default();
                section.core {
                    h2 { (core.thing_name) }
                    p.muted { "Created " (layout::date(core.created_at)) "; "
                        (core.certificate_authorities.len()) " CA certificate(s) for discovery." }
                    h3 { "Addresses" }
                    @if core.connectivity.is_empty() {
                        p.muted { "None: discovery answers 404 until the core reports one." }
                    } @else {
                        ul { @for address in &core.connectivity {
                            li { code { (address.host_address) ":" (address.port) } " " (address.metadata) }
                        } }
                    }
                    h3 { "Client devices" }
                    @if clients.is_empty() {
                        p.muted { "None associated." }
                    } @else {
                        ul { @for client in &clients {
                            li { (client.thing_name) " " span.muted { "since " (layout::date(client.associated_at)) } }
                        } }
                    }
                }
            }
        },
    )
}
