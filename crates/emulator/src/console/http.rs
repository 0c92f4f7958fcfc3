//! The console's requests and responses: what a view reads of a request (its
//! path, query and form, decoded), and the responses it answers with.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::StatusCode;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use maud::{Markup, html};

use super::layout;

/// How long a client may take to send a request's headers.
pub(super) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest form the console reads (a shadow document is at most 8 KB, a
/// message payload 128 KB).
const MAX_FORM: usize = 256 * 1024;

/// A response of the console.
pub(super) type Response = hyper::Response<BoxBody<Bytes, Infallible>>;

/// The methods the console answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    /// GET (and HEAD).
    Get,
    /// POST: a form.
    Post,
    /// Anything else.
    Other,
}

/// A request, decoded.
#[derive(Debug)]
pub(super) struct Request {
    /// Its method.
    pub(super) method: Method,
    /// The path's segments, percent-decoded.
    pub(super) path: Vec<String>,
    /// The query's pairs, in order.
    pub(super) query: Vec<(String, String)>,
    /// A POST's form fields, in order.
    pub(super) form: Vec<(String, String)>,
    host: Option<String>,
    origin: Option<String>,
    /// The address the console listens on.
    local: Option<SocketAddr>,
}

impl Request {
    /// Reads `request` (its form too); a form too large or unreadable is answered at once.
    pub(super) async fn read(
        request: hyper::Request<Incoming>,
        local: Option<SocketAddr>,
    ) -> Result<Request, Response> {
        let (parts, body) = request.into_parts();
        let method = match parts.method {
            hyper::Method::GET | hyper::Method::HEAD => Method::Get,
            hyper::Method::POST => Method::Post,
            _ => Method::Other,
        };
        let header = |name: header::HeaderName| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let path = parts
            .uri
            .path()
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect();
        let query = pairs(parts.uri.query().unwrap_or("").as_bytes());
        let form = if method == Method::Post {
            match Limited::new(body, MAX_FORM).collect().await {
                Ok(collected) => pairs(&collected.to_bytes()),
                Err(e) => {
                    return Err(error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        &format!("the form could not be read (at most {MAX_FORM} bytes): {e}"),
                    ));
                }
            }
        } else {
            Vec::new()
        };
        Ok(Request {
            method,
            path,
            query,
            form,
            host: header(header::HOST),
            origin: header(header::ORIGIN),
            local,
        })
    }

    /// The first value of query parameter `name`.
    pub(super) fn query(&self, name: &str) -> Option<&str> {
        first(&self.query, name)
    }

    /// Every value of query parameter `name`.
    pub(super) fn query_all(&self, name: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first value of form field `name`.
    pub(super) fn field(&self, name: &str) -> Option<&str> {
        first(&self.form, name)
    }

    /// Refuses a request whose `Host` is not a loopback name (a page of
    /// another site reaching the console through DNS rebinding), and a form
    /// posted from another origin (a cross-site request).
    pub(super) fn refusal(&self) -> Option<Response> {
        let Some(host) = self.host.as_deref() else {
            return Some(error(
                StatusCode::BAD_REQUEST,
                "the request has no Host header",
            ));
        };
        let name = host
            .rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(name, _)| name);
        let loopback = matches!(name, "localhost" | "127.0.0.1" | "[::1]")
            || self
                .local
                .is_some_and(|local| name == local.ip().to_string());
        if !loopback {
            return Some(error(
                StatusCode::FORBIDDEN,
                &format!("the console answers on loopback names only, not {host}"),
            ));
        }
        if self.method == Method::Post {
            if let Some(origin) = &self.origin {
                if origin != &format!("http://{host}") {
                    return Some(error(
                        StatusCode::FORBIDDEN,
                        &format!("a form from {origin} may not change the emulator"),
                    ));
                }
            }
        }
        None
    }
}

fn pairs(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes).into_owned().collect()
}

fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A query string of `pairs`, `?` included (empty for no pairs).
pub(super) fn query_string<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    serializer.extend_pairs(pairs);
    match serializer.finish() {
        query if query.is_empty() => query,
        query => format!("?{query}"),
    }
}

/// A path segment, percent-encoded.
pub(super) fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A response with `body`.
pub(super) fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response {
    let mut response = hyper::Response::new(Full::new(body.into()).boxed());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// An HTML page.
pub(super) fn html(status: StatusCode, markup: Markup) -> Response {
    respond(status, "text/html; charset=utf-8", markup.into_string())
}

/// A 303 to `location` (after a form).
pub(super) fn see_other(location: &str) -> Response {
    let mut response = respond(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "");
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// An error page saying `message`.
pub(super) fn error(status: StatusCode, message: &str) -> Response {
    html(
        status,
        layout::frame(
            status.canonical_reason().unwrap_or("Error"),
            "",
            html! { p.error role="alert" { (message) } },
        ),
    )
}

/// 404 for a path the console does not have.
pub(super) fn not_found(request: &Request) -> Response {
    let path = format!("/{}", request.path.join("/"));
    let (status, message) = match request.method {
        Method::Other => (
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{path} takes GET, or POST for a form"),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            format!("the console has no page {path}"),
        ),
    };
    error(status, &message)
}

/// A 500 for a registry the console could not read, naming what failed.
pub(super) fn unavailable(what: &str, e: impl std::fmt::Display) -> Response {
    tracing::warn!("console: cannot read {what}: {e}");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        &format!("cannot read {what}: {e}"),
    )
}
