//! Greengrass discovery over HTTPS: `GET /greengrass/discover/thing/{thingName}`
//! with the client device's IoT certificate (mutual TLS), on the API port
//! (AWS's discovery port is 8443) and on the MQTT port with ALPN
//! `x-amzn-http-ca` (AWS's port 443).
//!
//! The decision is the control layer's ([`Control::discover`]); this module
//! writes it as AWS does (wave2-protocols.md §4.1):
//! * 200 with the `GGGroups` JSON;
//! * 403 `{"message":null,"traceId":"<uuid>"}` when the policies do not allow
//!   `greengrass:Discover` on the thing;
//! * 404 `{"errorMessage":"The thing provided for discovery was not found"}`
//!   when no associated core device has connectivity information;
//! * no answer at all (the connection is closed) when the certificate is not
//!   ACTIVE or not attached to the thing.
//!
//! The 403 and 404 carry `x-amzn-ErrorType` (AWS's Java SDK reports the
//! header; its value is not documented: `AccessDeniedException` and
//! `ResourceNotFoundException` here).

use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;
use iotcore_model::greengrass::{DiscoverForbidden, DiscoverNotFound, NOT_FOUND_MESSAGE};
use serde::Serialize;

use super::ApiResponse;
use super::error::{AwsError, ERROR_TYPE_HEADER};
use super::server::hang_up;
use crate::control::{Control, Discovery};

/// Answers a discovery request for `thing` made with certificate
/// `certificate_id` from `peer`.
pub(crate) async fn answer(
    control: &Control,
    certificate_id: &str,
    thing: &str,
    peer: SocketAddr,
) -> Result<ApiResponse, AwsError> {
    let control = control.clone();
    let (certificate_id, thing) = (certificate_id.to_owned(), thing.to_owned());
    let who = format!("thing {thing:?}, certificate {certificate_id}");
    let discovery = tokio::task::spawn_blocking(move || {
        control.discover(&certificate_id, &thing, Some(peer.ip()))
    })
    .await
    .map_err(|e| AwsError::internal_failure(e.to_string()))?
    .map_err(|e| AwsError::internal_failure(e.to_string()))?;
    Ok(match discovery {
        Discovery::Found(response) => {
            tracing::debug!(%peer, who, groups = response.groups.len(), "Greengrass discovery");
            json(StatusCode::OK, None, &response)
        }
        Discovery::Forbidden(why) => {
            tracing::info!(%peer, who, "Greengrass discovery refused (403): {why}");
            json(
                StatusCode::FORBIDDEN,
                Some("AccessDeniedException"),
                &DiscoverForbidden {
                    message: None,
                    trace_id: crate::ids::new_uuid(),
                },
            )
        }
        Discovery::NotFound => {
            tracing::info!(
                %peer,
                who,
                "Greengrass discovery found nothing (404): the thing is not associated with a \
                 core device that has connectivity information"
            );
            json(
                StatusCode::NOT_FOUND,
                Some("ResourceNotFoundException"),
                &DiscoverNotFound {
                    error_message: NOT_FOUND_MESSAGE.to_owned(),
                },
            )
        }
        Discovery::Refused(why) => {
            tracing::info!(%peer, who, "Greengrass discovery: connection closed unanswered, as AWS does: {why}");
            hang_up()
        }
    })
}

fn json(
    status: StatusCode,
    error_type: Option<&'static str>,
    body: &impl Serialize,
) -> ApiResponse {
    let body = serde_json::to_vec(body).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(error_type) = error_type {
        headers.insert(ERROR_TYPE_HEADER, HeaderValue::from_static(error_type));
    }
    response
}
