//! TLS session resumption for a client that talks to one server at a time.
//!
//! rustls's `ClientSessionMemoryCache` is made for a process that talks to
//! many servers: even at its smallest it builds a hash table on creation and,
//! on the first handshake, room for eight TLS 1.3 tickets, about 2 KiB that
//! every client keeps for its whole life (heaptrack, `iotcore simulate` at
//! 2,000 devices; BENCHMARKS.md, "Toward 100,000 devices"). A client of this
//! SDK connects to one server name (a Greengrass device tries its cores one
//! after another), resumes with one ticket, and is sent fresh ones on every
//! handshake: [`LastServerSession`] remembers the last server's key exchange
//! group, its TLS 1.2 session and its newest TLS 1.3 ticket, and nothing until
//! the first handshake.

use std::sync::{Mutex, MutexGuard, PoisonError};

use rustls::NamedGroup;
use rustls::client::{ClientSessionStore, Tls12ClientSessionValue, Tls13ClientSessionValue};
use rustls::pki_types::ServerName;

/// What resuming with the last server needs.
#[derive(Debug)]
struct Remembered {
    server_name: ServerName<'static>,
    kx_hint: Option<NamedGroup>,
    tls12: Option<Tls12ClientSessionValue>,
    tls13: Option<Tls13ClientSessionValue>,
}

/// A [`ClientSessionStore`] that remembers one server: the last one a
/// handshake was made with. Anything stored for another server name replaces
/// it; a lookup for another name finds nothing.
#[derive(Debug, Default)]
pub(crate) struct LastServerSession {
    last: Mutex<Option<Box<Remembered>>>,
}

impl LastServerSession {
    fn lock(&self) -> MutexGuard<'_, Option<Box<Remembered>>> {
        self.last.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Edits what is remembered of `server_name`, forgetting another server.
    fn edit(&self, server_name: ServerName<'static>, edit: impl FnOnce(&mut Remembered)) {
        let mut last = self.lock();
        let remembered = match &mut *last {
            Some(r) if r.server_name == server_name => r,
            other => other.insert(Box::new(Remembered {
                server_name,
                kx_hint: None,
                tls12: None,
                tls13: None,
            })),
        };
        edit(remembered);
    }

    /// Reads what is remembered of `server_name`, if it is the last server.
    fn read<T>(
        &self,
        server_name: &ServerName<'_>,
        read: impl FnOnce(&mut Remembered) -> Option<T>,
    ) -> Option<T> {
        match &mut *self.lock() {
            Some(r) if r.server_name == *server_name => read(r),
            _ => None,
        }
    }
}

impl ClientSessionStore for LastServerSession {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.edit(server_name, |r| r.kx_hint = Some(group));
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.read(server_name, |r| r.kx_hint)
    }

    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.edit(server_name, |r| r.tls12 = Some(value));
    }

    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.read(server_name, |r| r.tls12.clone())
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.read(server_name, |r| r.tls12.take());
    }

    /// Keeps the newest ticket only: a client resumes one connection at a
    /// time, and every handshake brings new tickets.
    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        self.edit(server_name, |r| r.tls13 = Some(value));
    }

    /// A ticket is used once (RFC 8446 C.4): taking it forgets it.
    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        self.read(server_name, |r| r.tls13.take())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::{ClientConnection, HandshakeKind, ServerConfig, ServerConnection};

    use super::*;
    use crate::transport::tls::client_config;
    use crate::transport::tls::tests::{exchange, server_config};

    fn handshake(
        client: &Arc<rustls::ClientConfig>,
        server: &Arc<ServerConfig>,
        name: &str,
    ) -> HandshakeKind {
        let name = ServerName::try_from(name.to_owned()).unwrap();
        let mut c = ClientConnection::new(client.clone(), name).unwrap();
        let mut s = ServerConnection::new(server.clone()).unwrap();
        exchange(&mut c, &mut s);
        assert!(!c.is_handshaking());
        c.handshake_kind().unwrap()
    }

    #[test]
    fn a_client_resumes_with_the_last_server_on_every_reconnection() {
        let (server, cert) = server_config("broker.example");
        let client = client_config(None, &[cert], None).unwrap();
        assert_eq!(
            handshake(&client, &server, "broker.example"),
            HandshakeKind::Full
        );
        // Each handshake brings new tickets: the client resumes again and again.
        for _ in 0..3 {
            assert_eq!(
                handshake(&client, &server, "broker.example"),
                HandshakeKind::Resumed
            );
        }
    }

    #[test]
    fn another_server_name_replaces_the_last_one() {
        let (a, a_cert) = server_config("a.example");
        let (b, b_cert) = server_config("b.example");
        let client = client_config(None, &[a_cert, b_cert], None).unwrap();
        assert_eq!(handshake(&client, &a, "a.example"), HandshakeKind::Full);
        assert_eq!(handshake(&client, &b, "b.example"), HandshakeKind::Full);
        assert_eq!(handshake(&client, &b, "b.example"), HandshakeKind::Resumed);
        assert_eq!(handshake(&client, &a, "a.example"), HandshakeKind::Full);
    }

    #[test]
    fn what_is_remembered_belongs_to_the_last_server_only() {
        let store = LastServerSession::default();
        let a = ServerName::try_from("a.example").unwrap();
        let b = ServerName::try_from("b.example").unwrap();
        store.set_kx_hint(a.clone(), NamedGroup::X25519);
        assert_eq!(store.kx_hint(&a), Some(NamedGroup::X25519));
        assert_eq!(store.kx_hint(&b), None);
        assert!(store.take_tls13_ticket(&a).is_none());
        assert!(store.tls12_session(&a).is_none());
        store.set_kx_hint(b.clone(), NamedGroup::secp256r1);
        assert_eq!(store.kx_hint(&a), None);
        assert_eq!(store.kx_hint(&b), Some(NamedGroup::secp256r1));
    }
}
