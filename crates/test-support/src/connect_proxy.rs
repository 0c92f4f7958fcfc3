//! An HTTP CONNECT proxy (hyper's HTTP/1.1 server), with or without basic
//! authentication, counting the tunnels it made.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::net::loopback;

/// A CONNECT proxy on `127.0.0.1:<ephemeral>`.
///
/// It answers `CONNECT host:port` with `200` and then relays bytes both ways;
/// any other method gets `405`. With [`with_basic_auth`](Self::with_basic_auth)
/// a request without the right `Proxy-Authorization: Basic …` gets `407`
/// and no tunnel. Only loopback targets are allowed (`403` otherwise).
/// Dropping the proxy stops its listener.
#[derive(Debug)]
pub struct ConnectProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Shared {
    /// `Basic <base64>` expected, if any.
    authorization: Option<String>,
    /// The targets of the tunnels made, in order.
    tunnels: Mutex<Vec<String>>,
    /// CONNECT requests refused for missing or wrong credentials.
    refused: Mutex<usize>,
}

impl ConnectProxy {
    /// A proxy that asks for no credentials.
    pub async fn start() -> io::Result<ConnectProxy> {
        ConnectProxy::spawn(Shared::default()).await
    }

    /// A proxy that requires `user:password` (HTTP basic authentication).
    pub async fn with_basic_auth(user: &str, password: &str) -> io::Result<ConnectProxy> {
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        ConnectProxy::spawn(Shared {
            authorization: Some(format!("Basic {credentials}")),
            ..Shared::default()
        })
        .await
    }

    async fn spawn(shared: Shared) -> io::Result<ConnectProxy> {
        let listener = TcpListener::bind(loopback(0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(shared);
        let accept_task = tokio::spawn(accept(listener, shared.clone()));
        Ok(ConnectProxy {
            addr,
            shared,
            accept_task,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The targets (`host:port`) of every tunnel made so far.
    pub fn tunnels(&self) -> Vec<String> {
        self.shared
            .tunnels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// How many CONNECT requests were refused with `407`.
    pub fn refused(&self) -> usize {
        *self
            .shared
            .refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(request, shared.clone()));
            let served = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades()
                .await;
            if let Err(e) = served {
                tracing::debug!(error = %e, "proxy connection ended");
            }
        });
    }
}

fn respond(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

async fn answer(
    request: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    if request.method() != Method::CONNECT {
        return Ok(respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "only CONNECT is served",
        ));
    }
    if let Some(expected) = &shared.authorization {
        let given = request
            .headers()
            .get(header::PROXY_AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            *shared.refused.lock().unwrap_or_else(|p| p.into_inner()) += 1;
            let mut response = respond(
                StatusCode::PROXY_AUTHENTICATION_REQUIRED,
                "proxy credentials missing or wrong",
            );
            response.headers_mut().insert(
                header::PROXY_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"iotcore-test\""),
            );
            return Ok(response);
        }
    }
    let Some(target) = request.uri().authority().map(|a| a.to_string()) else {
        return Ok(respond(StatusCode::BAD_REQUEST, "CONNECT needs host:port"));
    };
    let Some(upstream) = loopback_target(&target) else {
        return Ok(respond(StatusCode::FORBIDDEN, "only loopback targets"));
    };
    let upstream = match TcpStream::connect(upstream).await {
        Ok(upstream) => upstream,
        Err(_) => return Ok(respond(StatusCode::BAD_GATEWAY, "target unreachable")),
    };
    shared
        .tunnels
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(target);
    tokio::spawn(async move {
        match hyper::upgrade::on(request).await {
            Ok(upgraded) => {
                let mut client = TokioIo::new(upgraded);
                let mut upstream = upstream;
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            }
            Err(e) => tracing::debug!(error = %e, "proxy upgrade failed"),
        }
    });
    Ok(respond(StatusCode::OK, ""))
}

/// The address of a `localhost`/`127.0.0.1`/`[::1]` target.
fn loopback_target(target: &str) -> Option<SocketAddr> {
    let (host, port) = target.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    match host.trim_start_matches('[').trim_end_matches(']') {
        "localhost" => Some(loopback(port)),
        ip => ip
            .parse::<std::net::IpAddr>()
            .ok()
            .filter(|ip| ip.is_loopback())
            .map(|ip| SocketAddr::new(ip, port)),
    }
}
