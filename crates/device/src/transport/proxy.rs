//! HTTP proxies: a tunnel to the broker opened with `CONNECT host:port`.
//!
//! The CONNECT request and the proxy's answer go through hyper's HTTP/1.1
//! client; on `200` the upgraded connection is the tunnel every door then
//! runs TLS over. `Proxy-Authorization: Basic …` is sent when the proxy URL
//! carries a user name. The environment (`HTTPS_PROXY`, `NO_PROXY`) is read
//! only when the application asks for it ([`crate::ClientBuilder::proxy_from_env`]).

use std::net::IpAddr;

use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use percent_encoding::percent_decode_str;

use crate::error::ConfigError;
use crate::status::DisconnectReason;
use crate::transport::tcp;
use crate::transport::{Raw, RawIo};

/// The most of a refusal's body kept for the error message.
const MAX_REFUSAL_BODY: usize = 512;

/// An HTTP proxy, parsed from `http://[user:password@]host[:port]`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Proxy {
    host: String,
    port: u16,
    /// `Basic <base64(user:password)>`.
    authorization: Option<String>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("authorization", &self.authorization.as_ref().map(|_| "…"))
            .finish()
    }
}

impl Proxy {
    /// Parses a proxy URL. Only `http://` proxies are supported (the tunnel
    /// itself carries TLS to the broker); the port defaults to 80. A user
    /// name and password may be percent-encoded.
    pub(crate) fn parse(url: &str) -> Result<Proxy, ConfigError> {
        let invalid = |why: &'static str| ConfigError::InvalidProxy {
            url: redact(url),
            why,
        };
        let uri: Uri = url.parse().map_err(|_| {
            invalid("it is not a URL (expected http://[user:password@]host[:port])")
        })?;
        match uri.scheme_str() {
            Some("http") => {}
            None => return Err(invalid("it has no scheme (expected http://…)")),
            Some(_) => {
                return Err(invalid(
                    "only http:// proxies are supported (the tunnel carries TLS itself)",
                ));
            }
        }
        let authority = uri.authority().ok_or_else(|| invalid("it names no host"))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err(invalid("it names no host"));
        }
        let authorization = match authority.as_str().rsplit_once('@') {
            None => None,
            Some((userinfo, _)) => {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let decode = |s: &str| {
                    percent_decode_str(s)
                        .decode_utf8()
                        .map(|s| s.into_owned())
                        .map_err(|_| invalid("its user name or password is not UTF-8"))
                };
                let credentials = format!("{}:{}", decode(user)?, decode(password)?);
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(credentials)
                ))
            }
        };
        Ok(Proxy {
            host: host.to_owned(),
            port: authority.port_u16().unwrap_or(80),
            authorization,
        })
    }

    /// The proxy the environment names for `host`, if any: `HTTPS_PROXY`
    /// (or `https_proxy`), unless `NO_PROXY` (or `no_proxy`) exempts the host.
    pub(crate) fn from_env(host: &str) -> Result<Option<Proxy>, ConfigError> {
        let var = |names: [&str; 2]| {
            names
                .into_iter()
                .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
        };
        let Some(url) = var(["HTTPS_PROXY", "https_proxy"]) else {
            return Ok(None);
        };
        if var(["NO_PROXY", "no_proxy"]).is_some_and(|list| no_proxy_matches(&list, host)) {
            return Ok(None);
        }
        Proxy::parse(url.trim()).map(Some)
    }

    /// `host:port`, for messages.
    fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Opens TCP to the proxy and asks it for a tunnel to `host:port`.
    /// TCP leaves from `local` when given.
    pub(crate) async fn tunnel(
        &self,
        host: &str,
        port: u16,
        local: Option<IpAddr>,
    ) -> Result<Raw, DisconnectReason> {
        let proxy = self.address();
        let failed = |detail: String| DisconnectReason::Proxy {
            proxy: proxy.clone(),
            detail,
        };
        let tcp = tcp::connect(&self.host, self.port, local).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(tcp))
                .await
                .map_err(|e| failed(format!("HTTP handshake failed: {e}")))?;
        // The connection task ends once the tunnel is handed over (or the
        // request fails and the sender is dropped).
        tokio::spawn(async move {
            if let Err(e) = connection.with_upgrades().await {
                tracing::debug!(error = %e, "proxy connection ended");
            }
        });
        let target = format!("{host}:{port}");
        let mut request = Request::builder()
            .method(Method::CONNECT)
            .uri(target.as_str())
            .header(header::HOST, target.as_str());
        if let Some(authorization) = &self.authorization {
            request = request.header(header::PROXY_AUTHORIZATION, authorization.as_str());
        }
        let request = request
            .body(Empty::new())
            .map_err(|e| failed(format!("cannot build CONNECT {target}: {e}")))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| failed(format!("CONNECT {target} failed: {e}")))?;
        let status = response.status();
        if status != StatusCode::OK {
            let body = refusal_body(response.into_body()).await;
            return Err(DisconnectReason::ProxyRefused {
                proxy,
                status: status.as_u16(),
                detail: match body {
                    Some(body) => format!("{status}: {body}"),
                    None => status.to_string(),
                },
            });
        }
        let upgraded = hyper::upgrade::on(response)
            .await
            .map_err(|e| failed(format!("the tunnel to {target} failed: {e}")))?;
        Ok(Box::new(TokioIo::new(upgraded)) as Box<dyn RawIo>)
    }
}

/// The start of a refusal's body, as text, if it has one.
async fn refusal_body(body: hyper::body::Incoming) -> Option<String> {
    let limited = http_body_util::Limited::new(body, MAX_REFUSAL_BODY);
    let bytes = limited.collect().await.ok()?.to_bytes();
    let text = String::from_utf8_lossy(&bytes).trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// True when the `NO_PROXY` list exempts `host`: `*`, the host itself, or a
/// domain it is in (`example.com` and `.example.com` both cover
/// `a.example.com`). Ports in the list are ignored; case does not matter.
fn no_proxy_matches(list: &str, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    list.split(',').map(str::trim).any(|entry| {
        if entry == "*" {
            return true;
        }
        let entry = entry
            .rsplit_once(':')
            .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
            .map_or(entry, |(name, _)| name)
            .trim_start_matches('.')
            .to_ascii_lowercase();
        !entry.is_empty()
            && (host == entry
                || host
                    .strip_suffix(entry.as_str())
                    .is_some_and(|rest| rest.ends_with('.')))
    })
}

/// The URL with its password hidden, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:…{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_url_gives_host_port_and_basic_credentials() {
        let proxy = Proxy::parse("http://alice:s%40cret@proxy.local:3128").unwrap();
        assert_eq!(proxy.address(), "proxy.local:3128");
        // base64("alice:s@cret")
        assert_eq!(
            proxy.authorization.as_deref(),
            Some("Basic YWxpY2U6c0BjcmV0")
        );
        let plain = Proxy::parse("http://127.0.0.1").unwrap();
        assert_eq!(plain.address(), "127.0.0.1:80");
        assert_eq!(plain.authorization, None);
        let v6 = Proxy::parse("http://[::1]:8080/").unwrap();
        assert_eq!(v6.address(), "::1:8080");
    }

    #[test]
    fn a_bad_proxy_url_is_a_config_error_that_hides_the_password() {
        for url in [
            "https://proxy:443",
            "proxy.local:3128",
            "http://",
            "not a url",
        ] {
            assert!(
                matches!(Proxy::parse(url), Err(ConfigError::InvalidProxy { .. })),
                "{url}"
            );
        }
        let error = Proxy::parse("socks5://bob:hunter2@proxy:1080").unwrap_err();
        let text = error.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("socks5://bob:…@proxy:1080"), "{text}");
    }

    #[test]
    fn no_proxy_matches_hosts_domains_and_star() {
        let list = "localhost, .internal.example, iot.test:8443,10.0.0.1";
        assert!(no_proxy_matches(list, "localhost"));
        assert!(no_proxy_matches(list, "a.internal.example"));
        assert!(no_proxy_matches(list, "internal.example"));
        assert!(no_proxy_matches(list, "IOT.test"));
        assert!(no_proxy_matches(list, "10.0.0.1"));
        assert!(!no_proxy_matches(list, "notinternal.example"));
        assert!(!no_proxy_matches(
            list,
            "xxxx-ats.iot.eu-west-1.amazonaws.com"
        ));
        assert!(no_proxy_matches("*", "anything"));
        assert!(!no_proxy_matches("", "anything"));
    }
}
