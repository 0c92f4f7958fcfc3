//! Live updates: a server-sent event stream whose events carry rendered HTML.
//! Each event's name is the id of the element it updates on the page; the
//! page's script puts it in place (`assets/console.js`).

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{self, HeaderValue};
use maud::Markup;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use super::http::Response;
use crate::connection::stopped;

/// Events rendered and not yet written before the producer waits.
const BUFFERED: usize = 64;
/// A comment this often tells a browser the stream is alive, and finds a
/// browser that went away.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Where a stream's producer sends its updates.
pub(super) struct Updates {
    tx: mpsc::Sender<Bytes>,
}

impl Updates {
    /// Sends `markup` to the element `target`; `false` once the page went away.
    pub(super) async fn send(&self, target: &str, markup: Markup) -> bool {
        self.tx
            .send(event(target, &markup.into_string()))
            .await
            .is_ok()
    }
}

/// One event: `event: <target>`, then each line of `html` as `data:`.
fn event(target: &str, html: &str) -> Bytes {
    let mut frame = format!("event: {target}\n");
    for line in html.lines() {
        frame.push_str("data: ");
        frame.push_str(line);
        frame.push('\n');
    }
    if html.is_empty() {
        frame.push_str("data: \n");
    }
    frame.push('\n');
    Bytes::from(frame)
}

/// A `text/event-stream` response fed by `produce`, run on its own task
/// until the page goes away or the emulator stops (then the stream ends, so
/// that shutdown does not wait for the browser).
pub(super) fn respond<F, Fut>(closing: &watch::Receiver<bool>, produce: F) -> Response
where
    F: FnOnce(Updates) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(BUFFERED);
    let mut closing = closing.clone();
    let keep_alive = tx.clone();
    let producer = produce(Updates { tx });
    tokio::spawn(async move {
        tokio::select! {
            () = producer => {}
            () = stopped(&mut closing) => {}
            () = async {
                loop {
                    tokio::time::sleep(KEEP_ALIVE).await;
                    if keep_alive.send(Bytes::from_static(b": keep-alive\n\n")).await.is_err() {
                        break;
                    }
                }
            } => {}
        }
    });
    let body = StreamBody::new(
        ReceiverStream::new(rx).map(|bytes| Ok::<_, Infallible>(Frame::data(bytes))),
    );
    let mut response = hyper::Response::new(BodyExt::boxed(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_of_the_html_is_a_data_line() {
        let frame = event("log", "<li>a</li>\n<li>b</li>");
        assert_eq!(
            &frame[..],
            b"event: log\ndata: <li>a</li>\ndata: <li>b</li>\n\n"
        );
        assert_eq!(&event("x", "")[..], b"event: x\ndata: \n\n");
    }
}
