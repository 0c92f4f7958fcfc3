//! Why a shadow request failed.

use std::fmt;

use iotcore_model::topics::{ShadowOperation, TopicError};

use crate::error::Error;
use crate::service::{Rejection, ServiceError, ServiceErrorKind};

/// Which shadow a request was for: a thing's classic shadow or one of its
/// named shadows.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ShadowId {
    thing: String,
    name: Option<String>,
}

impl ShadowId {
    pub(crate) fn new(thing: String, name: Option<String>) -> Self {
        ShadowId { thing, name }
    }

    /// The thing the shadow belongs to.
    pub fn thing(&self) -> &str {
        &self.thing
    }

    /// The shadow's name; `None` for the classic shadow.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl fmt::Display for ShadowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            None => write!(f, "the classic shadow of thing '{}'", self.thing),
            Some(name) => write!(f, "shadow '{name}' of thing '{}'", self.thing),
        }
    }
}

/// What kind of failure a [`ShadowError`] is, and so whose move it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ShadowErrorKind {
    /// The Device Shadow service refused the request (`…/rejected`); see
    /// [`ShadowError::code`] and [`ShadowError::rejection`]. 409 means the
    /// `version` was not the shadow's current one, 404 that the shadow does
    /// not exist.
    Rejected,
    /// No reply within the request's timeout: the connection is down, or the
    /// policy does not let the client publish to the request topic or
    /// subscribe to and receive the reply topics.
    Timeout,
    /// The MQTT request under the shadow request failed (client closed,
    /// offline queue full, subscription refused…); see [`ShadowError::client_error`].
    Client,
    /// The connection dropped after the request was sent and the client
    /// reconnected without the broker's session, so the reply is lost (see
    /// [`crate::service`]). The request may have been applied: read the
    /// shadow again before repeating an update.
    ConnectionLost,
    /// The request is invalid and was not sent: a name AWS does not accept, or
    /// a state that is not a JSON object.
    InvalidRequest,
    /// The service's reply is not the JSON AWS sends.
    InvalidReply,
    /// The shadow's state does not deserialize into the application's type.
    Decode,
}

/// A shadow request that failed.
///
/// Opaque on purpose, like [`crate::Error`]: [`kind`](Self::kind) says what
/// happened, [`code`](Self::code), [`rejection`](Self::rejection) and the
/// other methods give details, and the message (`Display`) says what to do.
/// A failed request carries the framework's [`ServiceError`]
/// ([`service_error`](Self::service_error)).
pub struct ShadowError {
    inner: Box<Inner>,
}

#[derive(Debug)]
struct Inner {
    operation: Option<ShadowOperation>,
    shadow: Option<ShadowId>,
    detail: Detail,
}

#[derive(Debug, thiserror::Error)]
enum Detail {
    /// The request went to the service and failed there or on the way.
    #[error("{}", .0.detail())]
    Service(ServiceError),
    #[error("{0}; nothing was sent")]
    InvalidName(#[source] TopicError),
    #[error("{0}; nothing was sent")]
    InvalidState(String),
    #[error(
        "the {what} does not fit {type_name}: {source}; mark the fields a document may lack \
         #[serde(default)]"
    )]
    Decode {
        what: &'static str,
        type_name: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl ShadowError {
    fn new(operation: Option<ShadowOperation>, shadow: Option<&ShadowId>, detail: Detail) -> Self {
        ShadowError {
            inner: Box::new(Inner {
                operation,
                shadow: shadow.cloned(),
                detail,
            }),
        }
    }

    /// `operation` on `shadow` failed in the service framework.
    pub(crate) fn service(
        operation: ShadowOperation,
        shadow: &ShadowId,
        error: ServiceError,
    ) -> Self {
        Self::new(Some(operation), Some(shadow), Detail::Service(error))
    }

    pub(crate) fn invalid_name(error: TopicError) -> Self {
        Self::new(None, None, Detail::InvalidName(error))
    }

    pub(crate) fn invalid_state(detail: impl Into<String>) -> Self {
        Self::new(None, None, Detail::InvalidState(detail.into()))
    }

    /// `what` (say "desired state") does not deserialize into `type_name`.
    pub(crate) fn decode(
        what: &'static str,
        type_name: &'static str,
        source: serde_json::Error,
    ) -> Self {
        Self::new(
            None,
            None,
            Detail::Decode {
                what,
                type_name,
                source,
            },
        )
    }

    /// The same error, about `operation` on `shadow` (for errors found before
    /// the request had both).
    pub(crate) fn about(mut self, operation: ShadowOperation, shadow: &ShadowId) -> Self {
        self.inner.operation.get_or_insert(operation);
        if self.inner.shadow.is_none() {
            self.inner.shadow = Some(shadow.clone());
        }
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ShadowErrorKind {
        match &self.inner.detail {
            Detail::Service(e) => match e.kind() {
                ServiceErrorKind::Rejected => ShadowErrorKind::Rejected,
                ServiceErrorKind::Timeout => ShadowErrorKind::Timeout,
                ServiceErrorKind::Client => ShadowErrorKind::Client,
                ServiceErrorKind::ConnectionLost => ShadowErrorKind::ConnectionLost,
                ServiceErrorKind::InvalidReply => ShadowErrorKind::InvalidReply,
                ServiceErrorKind::InvalidRequest => ShadowErrorKind::InvalidRequest,
            },
            Detail::InvalidName(_) | Detail::InvalidState(_) => ShadowErrorKind::InvalidRequest,
            Detail::Decode { .. } => ShadowErrorKind::Decode,
        }
    }

    /// The framework's error, when the request was sent (or about to be).
    pub fn service_error(&self) -> Option<&ServiceError> {
        match &self.inner.detail {
            Detail::Service(e) => Some(e),
            _ => None,
        }
    }

    /// The service's refusal (AWS's `code`, `message`, `clientToken`, and
    /// the whole document: [`Rejection::decode`] into [`ErrorResponse`]
    /// gives its `timestamp` too), for [`ShadowErrorKind::Rejected`].
    ///
    /// [`ErrorResponse`]: super::ErrorResponse
    pub fn rejection(&self) -> Option<&Rejection> {
        self.service_error().and_then(ServiceError::rejection)
    }

    /// AWS's code (400, 404, 409, 413, 429, 500…), for [`ShadowErrorKind::Rejected`].
    pub fn code(&self) -> Option<u16> {
        self.rejection().and_then(Rejection::status_code)
    }

    /// AWS's message, for [`ShadowErrorKind::Rejected`].
    pub fn message(&self) -> Option<&str> {
        self.rejection().map(Rejection::message)
    }

    /// The `clientToken` the service echoed, for [`ShadowErrorKind::Rejected`].
    pub fn client_token(&self) -> Option<&str> {
        self.rejection().and_then(Rejection::client_token)
    }

    /// True for 409 `Version conflict`: the request's `version` was not the
    /// shadow's current version.
    pub fn is_version_conflict(&self) -> bool {
        self.code() == Some(409)
    }

    /// True for 404: the shadow does not exist.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }

    /// True when the same request may succeed if sent again (see
    /// [`ServiceError::is_retryable`]); a 409 is not, since the request
    /// itself must change.
    pub fn is_retryable(&self) -> bool {
        self.service_error().is_some_and(ServiceError::is_retryable)
    }

    /// The operation that failed, when a request was made.
    pub fn operation(&self) -> Option<ShadowOperation> {
        self.inner.operation
    }

    /// The shadow the request was for, when known.
    pub fn shadow(&self) -> Option<&ShadowId> {
        self.inner.shadow.as_ref()
    }

    /// The client's error, for [`ShadowErrorKind::Client`].
    pub fn client_error(&self) -> Option<&Error> {
        self.service_error().and_then(ServiceError::client_error)
    }
}

impl fmt::Display for ShadowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.inner.operation, &self.inner.shadow) {
            (Some(operation), Some(shadow)) => write!(f, "shadow {operation} of {shadow}: ")?,
            (None, Some(shadow)) => write!(f, "{shadow}: ")?,
            (Some(operation), None) => write!(f, "shadow {operation}: ")?,
            (None, None) => {}
        }
        fmt::Display::fmt(&self.inner.detail, f)
    }
}

impl fmt::Debug for ShadowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShadowError")
            .field("kind", &self.kind())
            .field("operation", &self.inner.operation)
            .field("shadow", &self.inner.shadow)
            .field("detail", &self.inner.detail)
            .finish()
    }
}

impl std::error::Error for ShadowError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.inner.detail {
            // Its text is ours already: go on with what it wraps.
            Detail::Service(e) => std::error::Error::source(e),
            detail => std::error::Error::source(detail),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> ShadowId {
        ShadowId::new("dev1".into(), Some("config".into()))
    }

    #[test]
    fn a_rejection_exposes_aws_code_message_and_token() {
        use crate::service::{Detail, Rejection};
        let payload = bytes::Bytes::from_static(
            br#"{"code":409,"message":"Version conflict","clientToken":"tok-1","timestamp":7}"#,
        );
        let rejection = Rejection::parse(&payload).unwrap();
        let service = ServiceError::new(
            "Device Shadow",
            "update",
            "$aws/things/dev1/shadow/name/config/update",
            Detail::Rejected {
                service: "Device Shadow",
                advice: Some("another update changed the shadow first; read it again and retry"),
                rejection,
            },
        );
        let e = ShadowError::service(ShadowOperation::Update, &id(), service);
        assert_eq!(e.kind(), ShadowErrorKind::Rejected);
        assert_eq!(e.code(), Some(409));
        assert_eq!(e.message(), Some("Version conflict"));
        assert_eq!(e.client_token(), Some("tok-1"));
        let document: iotcore_model::shadow::ErrorResponse =
            e.rejection().unwrap().decode().unwrap();
        assert_eq!(document.timestamp, Some(7));
        assert!(e.is_version_conflict());
        assert!(!e.is_not_found());
        assert!(!e.is_retryable());
        assert_eq!(
            e.to_string(),
            "shadow update of shadow 'config' of thing 'dev1': the Device Shadow service \
             rejected it with 409 \"Version conflict\": another update changed the shadow \
             first; read it again and retry"
        );
    }

    #[test]
    fn every_kind_of_framework_failure_keeps_its_meaning_for_shadows() {
        use crate::service::{Detail, Lost};
        let topic = "$aws/things/dev1/shadow/get";
        let cases = [
            (
                Detail::Timeout(std::time::Duration::from_secs(1)),
                ShadowErrorKind::Timeout,
            ),
            (Detail::Client(Error::closed()), ShadowErrorKind::Client),
            (
                Detail::ConnectionLost(Lost::FreshSession),
                ShadowErrorKind::ConnectionLost,
            ),
            (
                Detail::InvalidReply {
                    topic: format!("{topic}/accepted"),
                    detail: "x".into(),
                },
                ShadowErrorKind::InvalidReply,
            ),
            (
                Detail::InvalidRequest("x".into()),
                ShadowErrorKind::InvalidRequest,
            ),
        ];
        for (detail, kind) in cases {
            let service = ServiceError::new("Device Shadow", "get", topic, detail);
            let e = ShadowError::service(ShadowOperation::Get, &id(), service);
            assert_eq!(e.kind(), kind, "{e}");
            assert!(
                e.to_string()
                    .starts_with("shadow get of shadow 'config' of thing 'dev1': "),
                "{e}"
            );
            assert_eq!(e.code(), None);
            assert!(e.service_error().is_some());
        }
    }

    #[test]
    fn errors_found_before_sending_get_their_context_later() {
        let name_error =
            iotcore_model::topics::shadow_topic_prefix("dev1", Some("a/b")).unwrap_err();
        let e = ShadowError::invalid_name(name_error);
        assert_eq!(e.kind(), ShadowErrorKind::InvalidRequest);
        assert_eq!(e.operation(), None);
        let e = e.about(ShadowOperation::Get, &id());
        assert_eq!(e.operation(), Some(ShadowOperation::Get));
        assert_eq!(e.shadow(), Some(&id()));
        assert!(e.to_string().ends_with("nothing was sent"), "{e}");
        assert_eq!(e.code(), None);
    }

    #[test]
    fn errors_are_send_sync_and_small() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<ShadowError>();
        assert_eq!(
            std::mem::size_of::<ShadowError>(),
            std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn the_classic_shadow_is_named_by_its_thing() {
        let classic = ShadowId::new("dev1".into(), None);
        assert_eq!(classic.to_string(), "the classic shadow of thing 'dev1'");
        assert_eq!(classic.name(), None);
        assert_eq!(classic.thing(), "dev1");
    }
}
