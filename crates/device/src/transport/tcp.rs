//! TCP to the broker.

use std::io;
use std::net::{IpAddr, SocketAddr};

use tokio::net::{TcpSocket, TcpStream};

use crate::status::DisconnectReason;

/// Opens TCP to `host:port` (every resolved address in turn), from
/// `local` when given (the socket is bound to it, the port left to the
/// kernel, before connecting), with `TCP_NODELAY` so that small MQTT packets
/// are not held back by Nagle's algorithm waiting for delayed ACKs.
pub(crate) async fn connect(
    host: &str,
    port: u16,
    local: Option<IpAddr>,
) -> Result<TcpStream, DisconnectReason> {
    let failed = |e: io::Error| DisconnectReason::Network {
        detail: match local {
            Some(local) => format!("TCP connect to {host}:{port} from {local} failed: {e}"),
            None => format!("TCP connect to {host}:{port} failed: {e}"),
        },
    };
    let tcp = match local {
        None => TcpStream::connect((host, port)).await.map_err(failed)?,
        Some(local) => connect_from(host, port, local).await.map_err(failed)?,
    };
    tcp.set_nodelay(true)
        .map_err(|e| DisconnectReason::Network {
            detail: format!("cannot set TCP_NODELAY: {e}"),
        })?;
    Ok(tcp)
}

/// Connects from `local` to the first address of `host` of the same family
/// that answers.
async fn connect_from(host: &str, port: u16, local: IpAddr) -> io::Result<TcpStream> {
    let mut last = None;
    for remote in tokio::net::lookup_host((host, port)).await? {
        if remote.is_ipv4() != local.is_ipv4() {
            continue;
        }
        let socket = match local {
            IpAddr::V4(_) => TcpSocket::new_v4()?,
            IpAddr::V6(_) => TcpSocket::new_v6()?,
        };
        socket.bind(SocketAddr::new(local, 0))?;
        match socket.connect(remote).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!(
                "{host} has no {} address to reach from {local}",
                if local.is_ipv4() { "IPv4" } else { "IPv6" }
            ),
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_local_address_is_the_source_the_server_sees() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        for local in [None, Some(IpAddr::from([127, 0, 0, 2]))] {
            let (client, accepted) =
                tokio::join!(connect("127.0.0.1", port, local), listener.accept());
            let client = client.unwrap();
            let (_, peer) = accepted.unwrap();
            assert_eq!(client.local_addr().unwrap(), peer);
            assert_eq!(peer.ip(), local.unwrap_or(IpAddr::from([127, 0, 0, 1])));
            assert!(client.nodelay().unwrap());
        }
    }

    #[tokio::test]
    async fn a_local_address_of_the_other_family_is_refused_with_the_reason() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let DisconnectReason::Network { detail } =
            connect("127.0.0.1", port, Some("::1".parse().unwrap()))
                .await
                .unwrap_err()
        else {
            panic!("not a network error");
        };
        assert!(
            detail.contains("from ::1") && detail.contains("no IPv6 address"),
            "{detail}"
        );
    }
}
