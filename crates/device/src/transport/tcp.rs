//! TCP to the broker.

use tokio::net::TcpStream;

use crate::status::DisconnectReason;

/// Opens TCP to `host:port` (every resolved address in turn), with
/// `TCP_NODELAY` so that small MQTT packets are not held back by Nagle's
/// algorithm waiting for delayed ACKs.
pub(crate) async fn connect(host: &str, port: u16) -> Result<TcpStream, DisconnectReason> {
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|e| DisconnectReason::Network {
            detail: format!("TCP connect to {host}:{port} failed: {e}"),
        })?;
    tcp.set_nodelay(true)
        .map_err(|e| DisconnectReason::Network {
            detail: format!("cannot set TCP_NODELAY: {e}"),
        })?;
    Ok(tcp)
}
