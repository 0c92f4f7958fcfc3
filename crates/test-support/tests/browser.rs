//! The headless-browser harness: Debian's Chromium, driven over WebDriver by chromedriver, loads
//! a page from a loopback HTTP server, types, clicks, sees the text a script wrote, and takes a
//! screenshot; closing or dropping the harness leaves no browser process behind.
//!
//! Needs `scripts/setup-peers` to have run (Debian's `chromium` and `chromium-driver`).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use fantoccini::Locator;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use iotcore_test_support::{Browser, Error, VIEWPORT, WAIT_TIMEOUT, init_tracing};
use tokio::net::TcpListener;

/// A form whose button writes a greeting a moment after it is clicked (so the harness has to
/// wait for it).
const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>harness page</title></head>
<body>
  <label>Name <input id="name"></label>
  <button id="greet">Greet</button>
  <p id="out">nobody greeted yet</p>
  <script>
    document.getElementById("greet").addEventListener("click", () => {
      const name = document.getElementById("name").value;
      setTimeout(() => {
        document.getElementById("out").textContent = "hello, " + name;
      }, 300);
    });
  </script>
</body></html>
"#;

/// Serves [`PAGE`] on `127.0.0.1:<port>` for every request, counting them.
struct PageServer {
    url: String,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl PageServer {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let counter = counter.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |_: Request<Incoming>| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let mut response =
                            Response::new(Full::new(Bytes::from_static(PAGE.as_bytes())));
                        response.headers_mut().insert(
                            hyper::header::CONTENT_TYPE,
                            "text/html; charset=utf-8".parse().unwrap(),
                        );
                        async { Ok::<_, Infallible>(response) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        PageServer {
            url,
            requests,
            task,
        }
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The process id of the browser a session runs (chromedriver reports it as `goog:processID`).
fn browser_pid(browser: &Browser) -> u32 {
    let capabilities = browser
        .client()
        .capabilities()
        .expect("a session was opened");
    let pid = capabilities
        .get("goog:processID")
        .and_then(|v| v.as_u64())
        .unwrap_or_else(|| panic!("no goog:processID in {capabilities:?}"));
    u32::try_from(pid).unwrap()
}

/// Whether process `pid` still runs (a zombie, killed but not yet reaped, does not).
fn is_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses: `pid (comm) S ...`.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// Waits (bounded by [`WAIT_TIMEOUT`], which only decides when the test fails) until process
/// `pid` is gone.
async fn assert_exits(pid: u32, what: &str) {
    let deadline = tokio::time::Instant::now() + WAIT_TIMEOUT;
    while is_running(pid) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: the browser (pid {pid}) still runs after {WAIT_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The width and height in a PNG's IHDR chunk, after checking the PNG signature.
fn png_size(png: &[u8]) -> (u32, u32) {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    assert!(
        png.starts_with(SIGNATURE),
        "not a PNG: {:?}",
        &png[..png.len().min(16)]
    );
    assert_eq!(&png[12..16], b"IHDR", "a PNG starts with its IHDR chunk");
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

#[tokio::test]
async fn a_page_served_on_loopback_is_typed_into_clicked_read_and_photographed() {
    init_tracing();
    let server = PageServer::start().await;
    let browser = Browser::start().await.unwrap();
    let client = browser.client();

    client.goto(&server.url).await.unwrap();
    assert_eq!(client.title().await.unwrap(), "harness page");
    assert!(server.requests.load(Ordering::SeqCst) >= 1);

    client
        .find(Locator::Css("#name"))
        .await
        .unwrap()
        .send_keys("iotcore")
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Css("button#greet"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let text = browser
        .wait_for_text("#out", "hello, iotcore")
        .await
        .unwrap();
    assert_eq!(text, "hello, iotcore");
    // A selector the browser cannot parse is an error at once, not a wait for the timeout.
    let error = browser.wait_for_text("#[", "x").await.unwrap_err();
    assert!(matches!(error, Error::WebDriver { .. }), "{error}");

    let dir = tempfile::tempdir().unwrap();
    let shot = dir.path().join("shots/page.png");
    browser.screenshot(&shot).await.unwrap();
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(
        png_size(&png),
        VIEWPORT,
        "the screenshot is the fixed viewport"
    );

    let pid = browser_pid(&browser);
    assert!(is_running(pid));
    browser.close().await.unwrap();
    assert_exits(pid, "after close").await;
}

#[tokio::test]
async fn dropping_the_harness_kills_the_browser_it_started() {
    init_tracing();
    let browser = Browser::start().await.unwrap();
    browser.client().goto("about:blank").await.unwrap();
    let pid = browser_pid(&browser);
    assert!(is_running(pid));
    drop(browser);
    assert_exits(pid, "after drop").await;
}
