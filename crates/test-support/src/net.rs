//! Loopback port helpers.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};

/// Returns a TCP port on 127.0.0.1 that was free a moment ago.
///
/// The port is found by binding `127.0.0.1:0` and releasing it, so another process may take it
/// before the caller binds it: callers that start a server on it should retry on "address in use".
///
/// # Panics
///
/// If no socket can be bound on the loopback interface at all.
pub fn free_port() -> u16 {
    try_free_port().unwrap_or_else(|e| panic!("cannot bind a TCP socket on 127.0.0.1: {e}"))
}

pub(crate) fn try_free_port() -> io::Result<u16> {
    Ok(TcpListener::bind(loopback(0))?.local_addr()?.port())
}

/// `127.0.0.1:<port>`.
pub(crate) fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_can_be_bound_again() {
        let port = free_port();
        assert_ne!(port, 0);
        TcpListener::bind(loopback(port)).expect("the port handed out is bindable");
    }
}
