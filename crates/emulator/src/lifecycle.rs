//! Lifecycle events, published as AWS IoT Core publishes them
//! (docs/aws-iot-core-behaviour.md §2, from AWS's "Lifecycle events" page):
//!
//! * `$aws/events/presence/connected/<client id>` once a CONNECT is accepted;
//! * `$aws/events/presence/disconnected/<client id>` when the connection ends,
//!   with `clientInitiatedDisconnect` and `disconnectReason`;
//! * `$aws/events/presence/connect_failed/<client id>` when the policy refuses
//!   the CONNECT (`connectFailureReason` `AUTHORIZATION_FAILED`);
//! * `$aws/events/subscriptions/subscribed/<client id>` and `…/unsubscribed/…`
//!   with the filters of each SUBSCRIBE / UNSUBSCRIBE.
//!
//! Payload keys and their order follow AWS's examples. `principalIdentifier` is
//! the certificate id; `sessionIdentifier` a UUID kept while a persistent session
//! is resumed; `versionNumber` counts the connections of a client id from 0, a
//! connect and its disconnect sharing one (AWS resets it after an hour
//! disconnected; the emulator keeps counting). `thingName` is omitted: AWS sends it
//! only for the "exclusive thing" association, which the emulator does not have.
//! Client ids with `+` or `#` get no events, as on AWS. The events are QoS 1
//! messages, routed (and authorized with `iot:Receive`) like any other.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::broker::Broker;
use crate::broker::session::SessionKey;
use crate::ids::new_uuid;
use crate::services::reply::publish_json;

/// Why a connection ended, in AWS's `disconnectReason` words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DisconnectReason {
    /// Authentication or authorization failed (a denied publish or subscribe
    /// over MQTT 3.1.1, a certificate made inactive or revoked).
    AuthError,
    /// The client sent DISCONNECT.
    ClientInitiatedDisconnect,
    /// The client broke a rule (protocol error, payload or topic limits).
    ClientError,
    /// The connection was cut without DISCONNECT.
    ConnectionLost,
    /// Another connection took the client id over.
    DuplicateClientId,
    /// Nothing received for 1.5 × the keep-alive.
    MqttKeepAliveTimeout,
    /// The server closed it (the emulator is stopping).
    ServerInitiatedDisconnect,
    /// A custom authorizer's `disconnectAfterInSeconds` ran out.
    CustomAuthTtlExpiration,
    /// The client exceeded a quota the emulator closes the connection for
    /// (more unacknowledged QoS 1 publishes than the Receive Maximum).
    Throttled,
    /// A WebSocket connection reached AWS's 24-hour limit.
    WebSocketTtlExpiration,
}

impl DisconnectReason {
    /// AWS's word for it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::AuthError => "AUTH_ERROR",
            DisconnectReason::ClientInitiatedDisconnect => "CLIENT_INITIATED_DISCONNECT",
            DisconnectReason::ClientError => "CLIENT_ERROR",
            DisconnectReason::ConnectionLost => "CONNECTION_LOST",
            DisconnectReason::DuplicateClientId => "DUPLICATE_CLIENTID",
            DisconnectReason::MqttKeepAliveTimeout => "MQTT_KEEP_ALIVE_TIMEOUT",
            DisconnectReason::ServerInitiatedDisconnect => "SERVER_INITIATED_DISCONNECT",
            DisconnectReason::CustomAuthTtlExpiration => "CUSTOMAUTH_TTL_EXPIRATION",
            DisconnectReason::Throttled => "THROTTLED",
            DisconnectReason::WebSocketTtlExpiration => "WEBSOCKET_TTL_EXPIRATION",
        }
    }
}

/// A subscription event's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubscriptionEvent {
    /// `subscribed`.
    Subscribed,
    /// `unsubscribed`.
    Unsubscribed,
}

/// What the events of one accepted connection share.
#[derive(Debug, Clone)]
pub(crate) struct Presence {
    client_id: String,
    principal: String,
    session_id: String,
    version: u64,
}

/// Per client id: the connection count and the current session's identifier.
#[derive(Debug)]
struct ClientRecord {
    next_version: u64,
    session_key: SessionKey,
    session_id: String,
}

/// The lifecycle event publisher shared by every connection.
#[derive(Debug, Default)]
pub(crate) struct Lifecycle {
    clients: Mutex<HashMap<String, ClientRecord>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Connected<'a> {
    client_id: &'a str,
    timestamp: u64,
    event_type: &'static str,
    session_identifier: &'a str,
    principal_identifier: &'a str,
    ip_address: String,
    version_number: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Disconnected<'a> {
    client_id: &'a str,
    timestamp: u64,
    event_type: &'static str,
    session_identifier: &'a str,
    principal_identifier: &'a str,
    client_initiated_disconnect: bool,
    disconnect_reason: &'static str,
    version_number: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConnectFailed<'a> {
    client_id: &'a str,
    timestamp: u64,
    event_type: &'static str,
    connect_failure_reason: &'static str,
    principal_identifier: &'a str,
    session_identifier: &'a str,
    ip_address: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Subscriptions<'a> {
    client_id: &'a str,
    timestamp: u64,
    event_type: &'static str,
    session_identifier: &'a str,
    principal_identifier: &'a str,
    topics: &'a [String],
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// AWS sends no lifecycle events for client ids with MQTT wildcards.
fn has_events(client_id: &str) -> bool {
    !client_id.contains(['+', '#'])
}

impl Lifecycle {
    fn clients(&self) -> MutexGuard<'_, HashMap<String, ClientRecord>> {
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes `connected` for a CONNECT accepted on session `session_key`
    /// and returns what the connection's later events share.
    pub(crate) fn connected(
        &self,
        broker: &Broker,
        client_id: &str,
        certificate_id: &str,
        session_key: SessionKey,
        ip: IpAddr,
    ) -> Presence {
        let (version, session_id) = {
            let mut clients = self.clients();
            let record = clients
                .entry(client_id.to_owned())
                .or_insert_with(|| ClientRecord {
                    next_version: 0,
                    session_key,
                    session_id: new_uuid(),
                });
            if record.session_key != session_key {
                record.session_key = session_key;
                record.session_id = new_uuid();
            }
            let version = record.next_version;
            record.next_version += 1;
            (version, record.session_id.clone())
        };
        let presence = Presence {
            client_id: client_id.to_owned(),
            principal: certificate_id.to_owned(),
            session_id,
            version,
        };
        if has_events(client_id) {
            let event = Connected {
                client_id,
                timestamp: now_millis(),
                event_type: "connected",
                session_identifier: &presence.session_id,
                principal_identifier: certificate_id,
                ip_address: ip.to_string(),
                version_number: version,
            };
            publish_json(
                broker,
                format!("$aws/events/presence/connected/{client_id}"),
                &event,
            );
        }
        presence
    }

    /// Publishes `disconnected` for the connection of `presence`.
    pub(crate) fn disconnected(
        &self,
        broker: &Broker,
        presence: &Presence,
        reason: DisconnectReason,
    ) {
        if !has_events(&presence.client_id) {
            return;
        }
        let event = Disconnected {
            client_id: &presence.client_id,
            timestamp: now_millis(),
            event_type: "disconnected",
            session_identifier: &presence.session_id,
            principal_identifier: &presence.principal,
            client_initiated_disconnect: reason == DisconnectReason::ClientInitiatedDisconnect,
            disconnect_reason: reason.as_str(),
            version_number: presence.version,
        };
        let topic = format!("$aws/events/presence/disconnected/{}", presence.client_id);
        publish_json(broker, topic, &event);
    }

    /// Publishes `connect_failed` for a CONNECT the policy refused.
    pub(crate) fn connect_failed(
        &self,
        broker: &Broker,
        client_id: &str,
        certificate_id: &str,
        ip: IpAddr,
    ) {
        if client_id.is_empty() || !has_events(client_id) {
            return;
        }
        let event = ConnectFailed {
            client_id,
            timestamp: now_millis(),
            event_type: "connect_failed",
            connect_failure_reason: "AUTHORIZATION_FAILED",
            principal_identifier: certificate_id,
            session_identifier: &new_uuid(),
            ip_address: ip.to_string(),
        };
        let topic = format!("$aws/events/presence/connect_failed/{client_id}");
        publish_json(broker, topic, &event);
    }

    /// Publishes `subscribed` or `unsubscribed` with `topics`, the filters of one
    /// SUBSCRIBE or UNSUBSCRIBE (nothing when empty).
    pub(crate) fn subscriptions(
        &self,
        broker: &Broker,
        presence: &Presence,
        kind: SubscriptionEvent,
        topics: &[String],
    ) {
        if topics.is_empty() || !has_events(&presence.client_id) {
            return;
        }
        let name = match kind {
            SubscriptionEvent::Subscribed => "subscribed",
            SubscriptionEvent::Unsubscribed => "unsubscribed",
        };
        let event = Subscriptions {
            client_id: &presence.client_id,
            timestamp: now_millis(),
            event_type: name,
            session_identifier: &presence.session_id,
            principal_identifier: &presence.principal,
            topics,
        };
        let topic = format!("$aws/events/subscriptions/{name}/{}", presence.client_id);
        publish_json(broker, topic, &event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_keys_follow_aws_order() {
        let event = Disconnected {
            client_id: "c",
            timestamp: 1,
            event_type: "disconnected",
            session_identifier: "s",
            principal_identifier: "p",
            client_initiated_disconnect: true,
            disconnect_reason: DisconnectReason::ClientInitiatedDisconnect.as_str(),
            version_number: 0,
        };
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"clientId":"c","timestamp":1,"eventType":"disconnected","sessionIdentifier":"s","principalIdentifier":"p","clientInitiatedDisconnect":true,"disconnectReason":"CLIENT_INITIATED_DISCONNECT","versionNumber":0}"#
        );
    }

    #[test]
    fn wildcard_client_ids_get_no_events() {
        assert!(has_events("dev-1"));
        assert!(!has_events("a+b"));
        assert!(!has_events("a#"));
    }
}
