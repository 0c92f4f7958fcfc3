//! The emulator console: what AWS's console gives its users (the MQTT test
//! client, the shadow editor, the registry, a "why was my device
//! disconnected?" page), served on loopback by the running emulator.
//!
//! Server-rendered HTML ([maud] templates), live updates over server-sent
//! events, a few lines of hand-written script (`assets/console.js`) that put
//! the rendered fragments in place; the assets are compiled into the binary.
//! Every page works without the script, only without live updates.
//!
//! One module per view: [`mqtt`], [`shadows`], [`registry`], [`connections`],
//! [`services`] (jobs and Greengrass); [`http`] has the request and response
//! plumbing, [`stream`] the event streams, [`layout`] the page frame.
//!
//! The console has no login: it listens on a loopback address only, and it
//! refuses requests whose `Host` is not a loopback name (DNS rebinding) and
//! form posts from another origin (cross-site requests).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::activity::Activity;
use crate::broker::Broker;
use crate::connection::stopped;
use crate::control::Control;
use crate::data_plane::DataPlane;
use crate::pki::Pki;
use crate::shadow::Shadows;
use crate::store::Store;

mod connections;
mod http;
mod layout;
mod mqtt;
mod registry;
mod services;
mod shadows;
mod stream;

use http::{Method, Request, Response};

/// Where the emulator is, for the overview.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    /// The MQTT listener's address.
    pub(crate) mqtt: SocketAddr,
    /// The data directory.
    pub(crate) data_dir: PathBuf,
}

/// What the console's views read and change.
#[derive(Clone)]
pub(crate) struct Console {
    broker: Arc<Broker>,
    store: Store,
    control: Control,
    data_plane: DataPlane,
    shadows: Shadows,
    /// Where devices connect, shown on the overview.
    place: Place,
    closing: watch::Receiver<bool>,
}

impl Console {
    /// A console over the emulator's parts.
    pub(crate) fn new(
        broker: Arc<Broker>,
        store: Store,
        control: Control,
        data_plane: DataPlane,
        shadows: Shadows,
        place: Place,
        closing: watch::Receiver<bool>,
    ) -> Console {
        Console {
            broker,
            store,
            control,
            data_plane,
            shadows,
            place,
            closing,
        }
    }

    fn activity(&self) -> &Activity {
        self.broker.activity()
    }

    /// Serves the console on `listener` until the emulator stops.
    pub(crate) async fn serve(self, listener: TcpListener) {
        let console = Arc::new(self);
        let closing = console.closing.clone();
        crate::listener::run(listener, closing, "console", move |tcp, peer, _| {
            serve_connection(Arc::clone(&console), tcp, peer)
        })
        .await;
    }

    /// Answers one request.
    async fn respond(&self, request: Request) -> Response {
        if let Some(refusal) = request.refusal() {
            return refusal;
        }
        let path: Vec<&str> = request.path.iter().map(String::as_str).collect();
        match (request.method, path.as_slice()) {
            (Method::Get, []) => self.overview(),
            (Method::Get, ["assets", name]) => layout::asset(name),
            (Method::Get, ["mqtt"]) => mqtt::page(&request),
            (Method::Post, ["mqtt"]) => mqtt::publish(self, &request).await,
            (Method::Get, ["mqtt", "stream"]) => mqtt::stream(self, &request),
            (Method::Get, ["shadows"]) => shadows::list(self),
            (Method::Get, ["shadows", thing]) => shadows::page(self, thing, &request, None).await,
            (Method::Post, ["shadows", thing]) => shadows::edit(self, thing, &request).await,
            (Method::Get, ["shadows", thing, "stream"]) => shadows::stream(self, thing, &request),
            (Method::Get, ["things"]) => registry::things(self),
            (Method::Get, ["certificates"]) => registry::certificates(self, &request),
            (Method::Post, ["certificates", id]) => registry::set_status(self, id, &request),
            (Method::Get, ["policies"]) => registry::policies(self, &request),
            (Method::Get, ["connections"]) => connections::page(self),
            (Method::Get, ["connections", "stream"]) => connections::stream(self),
            (Method::Get, ["jobs"]) => services::jobs(self),
            (Method::Get, ["greengrass"]) => services::greengrass(self),
            _ => http::not_found(&request),
        }
    }

    fn overview(&self) -> Response {
        let counts = (
            self.store.list_things().map(|t| t.len()),
            self.store.list_certificates().map(|c| c.len()),
            self.store.list_shadows().map(|s| s.len()),
        );
        let connections = self.activity().connections().len();
        let sessions = self.broker.sessions_overview();
        let kept = sessions.iter().filter(|s| !s.connected).count();
        layout::page(
            "Overview",
            "/",
            maud::html! {
                p { "Devices connect with MQTT over TLS to " code { (self.place.mqtt) }
                    ", trusting " code { (Pki::ca_cert_path(&self.place.data_dir).display()) } "." }
                dl.figures {
                    @match counts {
                        (Ok(things), Ok(certificates), Ok(shadows)) => {
                            div { dt { a href="/things" { "Things" } } dd { (things) } }
                            div { dt { a href="/certificates" { "Certificates" } } dd { (certificates) } }
                            div { dt { a href="/shadows" { "Shadows" } } dd { (shadows) } }
                        }
                        _ => { div { dt { "Registry" } dd { "cannot be read: see the emulator's log" } } }
                    }
                    div { dt { a href="/connections" { "Connected" } } dd { (connections) } }
                    div { dt { a href="/connections" { "Sessions kept offline" } } dd { (kept) } }
                }
                p { "Start with the " a href="/mqtt?filter=%23" { "MQTT test client" }
                    ", or see " a href="/connections" { "who is connected and why a device was refused" } "." }
            },
        )
    }
}

/// Serves HTTP/1.1 on one accepted connection until it ends or the emulator stops.
async fn serve_connection(console: Arc<Console>, tcp: TcpStream, peer: SocketAddr) {
    let mut closing = console.closing.clone();
    let local = tcp.local_addr().ok();
    let service = service_fn(move |request: hyper::Request<Incoming>| {
        let console = Arc::clone(&console);
        async move {
            let response = match Request::read(request, local).await {
                Ok(request) => console.respond(request).await,
                Err(refusal) => refusal,
            };
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(http::HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(tcp), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stopped(&mut closing) => {
            // Event streams end on their own when the emulator stops.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, "console: connection ended with an error: {e}");
    }
}
