//! A connection's policy checks and lifecycle events: CONNECT authorization,
//! `iot:Receive` on deliveries, and re-reading the registry when it changes
//! (see [`crate::broker::authz`] and [`crate::lifecycle`]).

use iotcore_mqtt::ReasonCode;
use iotcore_mqtt::packet::Connect;

use std::sync::Arc;

use tokio::task::JoinError;
use tokio::time::Instant;

use super::rules::check_will;
use super::{Connection, End};
use crate::accept::{Identity, Principal};
use crate::authorizer::MqttContext;
use crate::broker::authz::{Grant, Refused};
use crate::lifecycle::DisconnectReason;
use crate::policy::{ConnectAttributes, LoadError};

/// What a custom authorizer's refresh answers: the principal and its grant,
/// or why the connection must end.
pub(super) type Refreshed = Result<(Principal, Grant), String>;

impl Connection {
    /// Authorizes a CONNECT as `client_id` (the one it sent, or the one
    /// assigned for an empty one): a custom authorizer, if the door asked for
    /// one, authenticates it first; the principal must be usable (a
    /// certificate `ACTIVE`, an access key not deleted), and its policies
    /// must allow `iot:Connect` on that id (with the CONNECT's
    /// `iot:ConnectAttributes`) and publishing the will. A policy
    /// refusal is published as a `connect_failed` lifecycle event.
    pub(super) async fn authorize_connect(
        &mut self,
        connect: &Connect,
        client_id: &str,
    ) -> Result<Grant, (ReasonCode, String)> {
        if let Identity::AtConnect(request) = &self.identity {
            let mut request = (**request).clone();
            request.mqtt = Some(MqttContext {
                username: connect.username.clone(),
                password: connect.password.as_ref().map(|p| p.to_vec()),
                client_id: (!connect.client_id.is_empty()).then(|| connect.client_id.clone()),
            });
            let authorization = self
                .shared
                .authz
                .authenticate(&request)
                .await
                .map_err(|refused| (ReasonCode::NOT_AUTHORIZED, refused.to_string()))?;
            tracing::info!(
                client_id,
                peer = %self.peer,
                door = %self.door,
                authorizer = authorization.authorizer,
                principal_id = authorization.principal_id,
                "custom authorizer authenticated the connection"
            );
            self.identity = Identity::Known(Principal::CustomAuthorizer(Arc::new(authorization)));
            self.authorizer_request = Some(Box::new(request));
        }
        let Some(principal) = self.identity.principal() else {
            return Err((ReasonCode::NOT_AUTHORIZED, "not authenticated".into()));
        };
        let mut grant = self
            .shared
            .authz
            .grant(principal, client_id, self.peer.ip())
            .await
            .map_err(|refused| (ReasonCode::NOT_AUTHORIZED, refused.to_string()))?;
        let mut checked = grant
            .check_connect(client_id, ConnectAttributes::of(connect))
            .map_err(|denied| (ReasonCode::NOT_AUTHORIZED, denied.to_string()));
        if let (Ok(()), Some(will)) = (&checked, &connect.will) {
            let limits = &self.broker().config().limits;
            checked = check_will(limits, &mut grant, will).map_err(|r| (r.reason, r.why));
        }
        if let Err((reason, why)) = checked {
            if reason == ReasonCode::NOT_AUTHORIZED {
                self.shared.lifecycle.connect_failed(
                    self.broker(),
                    client_id,
                    self.identity.identifier(),
                    self.peer.ip(),
                );
            }
            return Err((reason, why));
        }
        Ok(grant)
    }

    /// Whether the client may receive a message on `topic` (`iot:Receive`);
    /// a denial is logged, and the message is then not delivered.
    pub(super) fn receivable(&mut self, topic: &str) -> bool {
        let Some(client) = &mut self.client else {
            return false;
        };
        match client.grant.check_receive(topic) {
            Ok(()) => true,
            Err(denied) => {
                tracing::warn!(
                    client_id = client.client_id,
                    action = "receive",
                    topic,
                    "not delivered: {denied}"
                );
                false
            }
        }
    }

    /// The registry changed: re-reads the principal's status and policies.
    /// A certificate no longer `ACTIVE` (or deleted) ends the connection
    /// (MQTT 5: DISCONNECT 0x87); new policies apply to the next request.
    pub(super) async fn on_registry_change(&mut self) {
        let Some(client) = &self.client else { return };
        let client_id = client.client_id.clone();
        let Some(principal) = self.identity.principal() else {
            return;
        };
        let reloaded = self
            .shared
            .authz
            .grant(principal, &client_id, self.peer.ip())
            .await;
        match reloaded {
            Ok(grant) => {
                tracing::debug!(client_id, "policies re-read after a registry change");
                if let Some(client) = &mut self.client {
                    client.grant = grant;
                }
            }
            Err(e @ (Refused::Task(_) | Refused::Load(LoadError::Store(_)))) => {
                tracing::warn!(client_id, "keeping the current policies: {e}");
            }
            Err(refused) => {
                tracing::warn!(
                    client_id,
                    peer = %self.peer,
                    principal = %self.identity,
                    "disconnected: {refused}"
                );
                self.end_with(End::Closed(
                    DisconnectReason::AuthError,
                    refused.to_string(),
                ));
                self.server.disconnect(ReasonCode::NOT_AUTHORIZED);
            }
        }
    }
}

impl Connection {
    /// A custom authorizer's `refreshAfterInSeconds` is over: runs its
    /// function again with the CONNECT's request, in a task of its own (the
    /// function may take up to its timeout), while the connection goes on;
    /// [`Connection::refreshed`] applies the answer.
    pub(super) fn start_refresh(&mut self) {
        let Some(client) = &mut self.client else {
            return;
        };
        client.refresh_at = None;
        let Some(request) = self.authorizer_request.clone() else {
            return;
        };
        let (shared, client_id, ip) = (
            Arc::clone(&self.shared),
            client.client_id.clone(),
            self.peer.ip(),
        );
        self.refreshing = Some(tokio::spawn(async move {
            let authorization = shared
                .authz
                .authenticate(&request)
                .await
                .map_err(|refused| refused.to_string())?;
            let principal = Principal::CustomAuthorizer(Arc::new(authorization));
            let grant = shared
                .authz
                .grant(&principal, &client_id, ip)
                .await
                .map_err(|refused| refused.to_string())?;
            Ok((principal, grant))
        }));
    }

    /// The refresh's answer: the connection's new policies (and the next
    /// refresh), or its end (AUTH_ERROR, MQTT 5 DISCONNECT 0x87) on a denial
    /// or failure.
    pub(super) fn refreshed(&mut self, answer: Result<Refreshed, JoinError>) {
        self.refreshing = None;
        let Some(client) = &self.client else {
            return;
        };
        let client_id = client.client_id.clone();
        let refreshed = answer.unwrap_or_else(|e| Err(format!("the refresh did not finish: {e}")));
        match refreshed {
            Ok((principal, grant)) => {
                tracing::info!(
                    client_id,
                    principal = %principal,
                    "the custom authorizer refreshed the connection's policies"
                );
                let next = principal.refresh_after();
                self.identity = Identity::Known(principal);
                if let Some(client) = &mut self.client {
                    client.grant = grant;
                    client.refresh_at = next.map(|after| Instant::now() + after);
                }
            }
            Err(why) => {
                tracing::warn!(
                    client_id,
                    peer = %self.peer,
                    door = %self.door,
                    "disconnected: the custom authorizer's refresh failed: {why}"
                );
                self.end_with(End::Closed(DisconnectReason::AuthError, why));
                self.server.disconnect(ReasonCode::NOT_AUTHORIZED);
            }
        }
    }

    /// Publishes a `subscribed` / `unsubscribed` lifecycle event for `topics`.
    pub(super) fn subscription_event(
        &self,
        kind: crate::lifecycle::SubscriptionEvent,
        topics: &[String],
    ) {
        if let Some(client) = &self.client {
            self.shared
                .lifecycle
                .subscriptions(self.broker(), &client.presence, kind, topics);
        }
    }
}
