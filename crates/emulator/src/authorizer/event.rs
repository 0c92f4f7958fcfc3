//! What a device presented to a custom authorizer, and AWS's Lambda input
//! event built from it (AWS IoT developer guide, "Defining your Lambda
//! function"; research wave2-protocols.md §2.3):
//!
//! ```json
//! {"token": "…", "signatureVerified": true, "protocols": ["tls", "http", "mqtt"],
//!  "protocolData": {"tls": {"serverName": "…"},
//!                   "http": {"headers": {"…": "…"}, "queryString": "?…"},
//!                   "mqtt": {"username": "…", "password": "<base64>", "clientId": "…"}},
//!  "connectionMetadata": {"id": "<uuid>"}}
//! ```
//!
//! Fields that do not apply are left out.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value, json};

/// The HTTP upgrade of a WebSocket connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HttpContext {
    /// The headers, names in lowercase.
    pub(crate) headers: BTreeMap<String, String>,
    /// The raw query string, `?` included (empty without one).
    pub(crate) query_string: String,
}

/// The MQTT CONNECT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MqttContext {
    /// The username as sent, query included.
    pub(crate) username: Option<String>,
    /// The password's bytes.
    pub(crate) password: Option<Vec<u8>>,
    /// The client id, when the device sent one.
    pub(crate) client_id: Option<String>,
}

/// What a device presented: its TLS server name, HTTP upgrade and CONNECT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AuthRequest {
    /// The TLS SNI, if any.
    pub(crate) server_name: Option<String>,
    /// The WebSocket upgrade, if the device came that way.
    pub(crate) http: Option<HttpContext>,
    /// The CONNECT, if the request is one (TestInvokeAuthorizer may have none).
    pub(crate) mqtt: Option<MqttContext>,
    /// An explicit token and signature (TestInvokeAuthorizer's `token` and
    /// `tokenSignature`), looked at before anything else.
    pub(crate) explicit: Vec<(String, String)>,
}

impl AuthRequest {
    /// The value of `name` (a token key name, `x-amz-customauthorizer-name`,
    /// `…-signature`): from the explicit parameters, the MQTT username's
    /// query, the upgrade's query (percent-decoded), then its headers
    /// (name case-insensitive).
    pub(crate) fn parameter(&self, name: &str) -> Option<String> {
        if let Some((_, v)) = self.explicit.iter().find(|(k, _)| k == name) {
            return Some(v.clone());
        }
        let username = self
            .mqtt
            .as_ref()
            .and_then(|m| m.username.as_deref())
            .and_then(|u| u.split_once('?'))
            .map(|(_, query)| query);
        let upgrade = self
            .http
            .as_ref()
            .map(|h| h.query_string.trim_start_matches('?'));
        let from_query = [username, upgrade]
            .into_iter()
            .flatten()
            .find_map(|query| query_value(query, name));
        from_query.or_else(|| {
            let http = self.http.as_ref()?;
            http.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        })
    }

    /// AWS's Lambda input event, as JSON text.
    pub(crate) fn event(&self, token: Option<&str>, signature_verified: bool) -> String {
        let mut protocols = vec!["tls"];
        let mut data = Map::new();
        let mut tls = Map::new();
        if let Some(name) = &self.server_name {
            tls.insert("serverName".into(), Value::from(name.as_str()));
        }
        data.insert("tls".into(), Value::Object(tls));
        if let Some(http) = &self.http {
            protocols.push("http");
            data.insert(
                "http".into(),
                json!({"headers": http.headers, "queryString": http.query_string}),
            );
        }
        if let Some(mqtt) = &self.mqtt {
            protocols.push("mqtt");
            let mut fields = Map::new();
            if let Some(username) = &mqtt.username {
                fields.insert("username".into(), Value::from(username.as_str()));
            }
            if let Some(password) = &mqtt.password {
                fields.insert("password".into(), Value::from(BASE64.encode(password)));
            }
            if let Some(client_id) = &mqtt.client_id {
                fields.insert("clientId".into(), Value::from(client_id.as_str()));
            }
            data.insert("mqtt".into(), Value::Object(fields));
        }
        let mut event = Map::new();
        if let Some(token) = token {
            event.insert("token".into(), Value::from(token));
        }
        event.insert("signatureVerified".into(), Value::from(signature_verified));
        event.insert("protocols".into(), Value::from(protocols));
        event.insert("protocolData".into(), Value::Object(data));
        event.insert(
            "connectionMetadata".into(),
            json!({"id": crate::ids::new_uuid()}),
        );
        Value::Object(event).to_string()
    }
}

/// The percent-decoded value of `name` in a raw query (`a=1&b=2`; a later
/// `?`, as old SDKs appended their metrics, also separates).
fn query_value(query: &str, name: &str) -> Option<String> {
    query.split(['&', '?']).find_map(|piece| {
        let (key, value) = piece.split_once('=').unwrap_or((piece, ""));
        let key = percent_decode_str(key).decode_utf8_lossy();
        (key == name).then(|| percent_decode_str(value).decode_utf8_lossy().into_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mqtt(username: &str) -> AuthRequest {
        AuthRequest {
            server_name: Some("localhost".into()),
            mqtt: Some(MqttContext {
                username: Some(username.into()),
                password: Some(b"pw".to_vec()),
                client_id: Some("dev-1".into()),
            }),
            ..AuthRequest::default()
        }
    }

    #[test]
    fn the_username_query_names_the_authorizer_token_and_signature() {
        // As AWS's Python SDK builds it, metrics appended.
        let request = mqtt(
            "me?x-amz-customauthorizer-name=my-auth&x-amz-customauthorizer-signature=ab%2Bc%3D\
             &tok=t1&SDK=PythonV2&Version=1.2.3",
        );
        assert_eq!(
            request.parameter("x-amz-customauthorizer-name").as_deref(),
            Some("my-auth")
        );
        assert_eq!(
            request
                .parameter("x-amz-customauthorizer-signature")
                .as_deref(),
            Some("ab+c=")
        );
        assert_eq!(request.parameter("tok").as_deref(), Some("t1"));
        assert_eq!(request.parameter("missing"), None);
        // An old SDK's second `?`.
        let request = mqtt("me?x-amz-customauthorizer-name=a?SDK=JavaV2");
        assert_eq!(
            request.parameter("x-amz-customauthorizer-name").as_deref(),
            Some("a")
        );
    }

    #[test]
    fn headers_and_the_upgrade_query_are_looked_at_too() {
        let request = AuthRequest {
            http: Some(HttpContext {
                headers: [("x-amz-customauthorizer-name".to_owned(), "h".to_owned())].into(),
                query_string: "?tok=q".into(),
            }),
            ..AuthRequest::default()
        };
        assert_eq!(
            request.parameter("X-Amz-CustomAuthorizer-Name").as_deref(),
            Some("h")
        );
        assert_eq!(request.parameter("tok").as_deref(), Some("q"));
    }

    #[test]
    fn the_event_has_aws_shape_and_leaves_out_what_does_not_apply() {
        let event: Value = serde_json::from_str(&mqtt("me").event(Some("t"), true)).unwrap();
        assert_eq!(event["token"], "t");
        assert_eq!(event["signatureVerified"], true);
        assert_eq!(event["protocols"], json!(["tls", "mqtt"]));
        assert_eq!(event["protocolData"]["tls"]["serverName"], "localhost");
        assert_eq!(event["protocolData"]["mqtt"]["username"], "me");
        assert_eq!(event["protocolData"]["mqtt"]["password"], "cHc=");
        assert_eq!(event["protocolData"]["mqtt"]["clientId"], "dev-1");
        assert!(event["protocolData"].get("http").is_none());
        assert_eq!(
            event["connectionMetadata"]["id"].as_str().unwrap().len(),
            36
        );
        let without: Value =
            serde_json::from_str(&AuthRequest::default().event(None, false)).unwrap();
        assert!(without.get("token").is_none());
    }
}
