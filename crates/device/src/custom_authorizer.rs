//! Custom authorizers: a token checked by the account's authorizer Lambda
//! instead of a client certificate or SigV4.
//!
//! AWS IoT Core takes them on port 443 only: over MQTT with ALPN `mqtt`
//! (the authorizer's name, the token and its signature in the query of the
//! CONNECT user name, the password passed through to the Lambda), or over
//! WebSocket at `/mqtt` (the same values as upgrade headers). See
//! [`crate::ClientBuilder::custom_authorizer`].
//!
//! ```
//! use iotcore::CustomAuthorizer;
//!
//! let authorizer = CustomAuthorizer::new("my-authorizer")
//!     .token("tokenKey", "the-token")
//!     .signature("base64-signature-of-the-token")
//!     .username("device-42")
//!     .password("secret");
//! ```

use std::fmt;

use bytes::Bytes;

/// The username query key naming the authorizer.
pub(crate) const NAME_KEY: &str = "x-amz-customauthorizer-name";
/// The username query key of the token's signature.
pub(crate) const SIGNATURE_KEY: &str = "x-amz-customauthorizer-signature";

/// How the device presents itself to a custom authorizer.
#[derive(Clone, PartialEq, Eq)]
pub struct CustomAuthorizer {
    pub(crate) name: Option<String>,
    pub(crate) token: Option<(String, String)>,
    pub(crate) signature: Option<String>,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<Bytes>,
    /// Over WebSocket: the pairs go in the upgrade URL's query, not in headers.
    pub(crate) in_websocket_query: bool,
}

impl fmt::Debug for CustomAuthorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomAuthorizer")
            .field("name", &self.name)
            .field("token_key_name", &self.token.as_ref().map(|(k, _)| k))
            .field("signed", &self.signature.is_some())
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("in_websocket_query", &self.in_websocket_query)
            .finish()
    }
}

impl CustomAuthorizer {
    /// The authorizer called `name` in the account.
    pub fn new(name: impl Into<String>) -> CustomAuthorizer {
        CustomAuthorizer {
            name: Some(name.into()),
            ..CustomAuthorizer::default_authorizer()
        }
    }

    /// The account's default authorizer (`SetDefaultAuthorizer`): no name is sent.
    pub fn default_authorizer() -> CustomAuthorizer {
        CustomAuthorizer {
            name: None,
            token: None,
            signature: None,
            username: None,
            password: None,
            in_websocket_query: false,
        }
    }

    /// The token, under the authorizer's token key name.
    pub fn token(mut self, key_name: impl Into<String>, token: impl Into<String>) -> Self {
        self.token = Some((key_name.into(), token.into()));
        self
    }

    /// The token's signature (base64 of RSA-SHA256 over the token), for an
    /// authorizer with signing enabled.
    pub fn signature(mut self, signature: impl Into<String>) -> Self {
        self.signature = Some(signature.into());
        self
    }

    /// The user name the Lambda sees (before the query the client adds).
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// The password the Lambda gets (base64-encoded by AWS IoT Core).
    pub fn password(mut self, password: impl Into<Bytes>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Over WebSocket, sends the authorizer's name, the token and its
    /// signature in the query of the upgrade's URL
    /// (`/mqtt?x-amz-customauthorizer-name=…&token=…`), as AWS's browser SDK
    /// does, instead of as headers of the upgrade (the default). No effect
    /// over MQTT, where they always travel in the user name's query.
    pub fn in_websocket_query(mut self) -> Self {
        self.in_websocket_query = true;
        self
    }

    /// The `key=value` pairs the authorizer reads, in AWS's order.
    pub(crate) fn query(&self) -> Vec<(&str, &str)> {
        let mut query = Vec::new();
        if let Some(name) = &self.name {
            query.push((NAME_KEY, name.as_str()));
        }
        if let Some((key, token)) = &self.token {
            query.push((key.as_str(), token.as_str()));
        }
        if let Some(signature) = &self.signature {
            query.push((SIGNATURE_KEY, signature.as_str()));
        }
        query
    }
}
