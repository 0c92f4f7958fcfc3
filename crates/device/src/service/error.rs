//! Why a service request failed: one error for every service.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::Error;

/// What kind of failure a [`ServiceError`] is, and so whose move it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServiceErrorKind {
    /// The service refused the request (`…/rejected`); see
    /// [`ServiceError::rejection`] for AWS's code and message.
    Rejected,
    /// No reply within the request's timeout: the connection is down, the
    /// service is slow, or the policy does not let the client publish to the
    /// request topic or subscribe to and receive its reply topics.
    Timeout,
    /// The MQTT request under the service request failed (client closed,
    /// offline queue full, publish or subscription refused); see
    /// [`ServiceError::client_error`].
    Client,
    /// The connection dropped after the request was sent and the reply cannot
    /// come any more: the client reconnected without the broker's stored
    /// session (replies published meanwhile are lost), or the broker refused
    /// to restore the reply subscriptions. The request may or may not have
    /// taken effect; read the state, or send it again if that is safe.
    ConnectionLost,
    /// The service's reply is not the JSON the service sends.
    InvalidReply,
    /// The request is invalid and was not sent.
    InvalidRequest,
}

/// A service's refusal (`…/rejected`), in whichever of AWS's shapes it came:
/// Device Shadow's `{"code": 404, "message": …}`, Jobs'
/// `{"code": "ResourceNotFound", "message": …, "executionState": …}`, fleet
/// provisioning's `{"statusCode": 400, "errorCode": …, "errorMessage": …}`.
///
/// The raw document is kept ([`payload`](Self::payload),
/// [`decode`](Self::decode)) for fields only one service has, such as Jobs'
/// `executionState`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    status_code: Option<u16>,
    error_code: Option<String>,
    message: String,
    client_token: Option<String>,
    payload: Bytes,
}

impl Rejection {
    /// Reads a rejection document; `Err` says why it is not one.
    pub(crate) fn parse(payload: &Bytes) -> Result<Rejection, String> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Code {
            Number(u16),
            Text(String),
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Document {
            code: Option<Code>,
            status_code: Option<u16>,
            error_code: Option<String>,
            message: Option<String>,
            error_message: Option<String>,
            client_token: Option<String>,
        }
        let document: Document = serde_json::from_slice(payload)
            .map_err(|e| format!("not a JSON error document: {e}"))?;
        let (mut status_code, mut error_code) = (document.status_code, document.error_code);
        match document.code {
            Some(Code::Number(code)) => status_code = status_code.or(Some(code)),
            Some(Code::Text(code)) => error_code = error_code.or(Some(code)),
            None => {}
        }
        if status_code.is_none() && error_code.is_none() {
            return Err("an error document without a code".to_owned());
        }
        Ok(Rejection {
            status_code,
            error_code,
            message: document
                .message
                .or(document.error_message)
                .unwrap_or_default(),
            client_token: document.client_token,
            payload: payload.clone(),
        })
    }

    /// The numeric status: Device Shadow's `code` (400, 404, 409, 413, 429,
    /// 500…), fleet provisioning's `statusCode`.
    pub fn status_code(&self) -> Option<u16> {
        self.status_code
    }

    /// The symbolic code: Jobs' `code` (`ResourceNotFound`,
    /// `VersionMismatch`…), fleet provisioning's `errorCode`
    /// (`InvalidCertificateOwnershipToken`…).
    pub fn error_code(&self) -> Option<&str> {
        self.error_code.as_deref()
    }

    /// AWS's message (`message` or `errorMessage`; empty when absent).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The `clientToken` the service echoed, if any.
    pub fn client_token(&self) -> Option<&str> {
        self.client_token.as_deref()
    }

    /// The whole document as received.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// The whole document as the service's own error type (say, one with
    /// Jobs' `executionState`).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.payload)
    }

    /// True for the refusals that say "try again later": 429 and 5xx,
    /// `RequestThrottled`, `InternalError`, `InternalFailure`,
    /// `ServiceUnavailable`, `ThrottlingException`.
    pub fn is_retryable(&self) -> bool {
        self.status_code
            .is_some_and(|code| code == 429 || (500..600).contains(&code))
            || matches!(
                self.error_code(),
                Some(
                    "RequestThrottled"
                        | "InternalError"
                        | "InternalFailure"
                        | "ServiceUnavailable"
                        | "ThrottlingException"
                )
            )
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.status_code, &self.error_code) {
            (Some(status), Some(code)) => write!(f, "{status} {code}")?,
            (Some(status), None) => write!(f, "{status}")?,
            (None, Some(code)) => f.write_str(code)?,
            (None, None) => f.write_str("an error")?,
        }
        write!(f, " {:?}", self.message)
    }
}

/// Why a request's reply can no longer come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lost {
    /// The client reconnected without the broker's session.
    FreshSession,
    /// The broker did not restore the reply subscriptions.
    Subscriptions,
}

impl Lost {
    fn why(self) -> &'static str {
        match self {
            Lost::FreshSession => "the client reconnected without the broker's stored session",
            Lost::Subscriptions => "the broker did not restore the reply subscriptions",
        }
    }
}

fn advice_text(advice: Option<&'static str>) -> String {
    advice.map(|a| format!(": {a}")).unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum Detail {
    #[error(
        "the {service} service rejected it with {rejection}{}",
        advice_text(*.advice)
    )]
    Rejected {
        service: &'static str,
        rejection: Rejection,
        advice: Option<&'static str>,
    },
    #[error(
        "no reply within {0:?}: check the connection status, and that the policy allows \
         iot:Publish on the request topic and iot:Subscribe/iot:Receive on its reply topics"
    )]
    Timeout(Duration),
    #[error("the MQTT request failed: {0}")]
    Client(#[source] Error),
    #[error(
        "the connection dropped after the request was sent, and {}: the reply is lost; the \
         request may or may not have taken effect, so read the state again or send it again \
         if that is safe",
        .0.why()
    )]
    ConnectionLost(Lost),
    #[error("the reply on {topic} is not valid ({detail}); the service is at fault")]
    InvalidReply { topic: String, detail: String },
    #[error("{0}; nothing was sent")]
    InvalidRequest(String),
}

/// A service request (shadow, fleet provisioning, jobs…) that failed.
///
/// Opaque on purpose, like [`crate::Error`]: [`kind`](Self::kind) says what
/// happened and whose move it is, [`rejection`](Self::rejection) has AWS's
/// code and message when the service refused, and the message (`Display`)
/// says what to do.
pub struct ServiceError {
    inner: Box<Inner>,
}

#[derive(Debug)]
struct Inner {
    service: &'static str,
    operation: &'static str,
    topic: String,
    detail: Detail,
}

impl ServiceError {
    pub(crate) fn new(
        service: &'static str,
        operation: &'static str,
        topic: &str,
        detail: Detail,
    ) -> ServiceError {
        ServiceError {
            inner: Box::new(Inner {
                service,
                operation,
                topic: topic.to_owned(),
                detail,
            }),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ServiceErrorKind {
        match &self.inner.detail {
            Detail::Rejected { .. } => ServiceErrorKind::Rejected,
            Detail::Timeout(_) => ServiceErrorKind::Timeout,
            Detail::Client(_) => ServiceErrorKind::Client,
            Detail::ConnectionLost(_) => ServiceErrorKind::ConnectionLost,
            Detail::InvalidReply { .. } => ServiceErrorKind::InvalidReply,
            Detail::InvalidRequest(_) => ServiceErrorKind::InvalidRequest,
        }
    }

    /// The service's name (`Device Shadow`, `fleet provisioning`, `Jobs`…).
    pub fn service(&self) -> &'static str {
        self.inner.service
    }

    /// The operation that failed (`get`, `RegisterThing`…).
    pub fn operation(&self) -> &'static str {
        self.inner.operation
    }

    /// The request topic.
    pub fn topic(&self) -> &str {
        &self.inner.topic
    }

    /// The service's refusal, for [`ServiceErrorKind::Rejected`].
    pub fn rejection(&self) -> Option<&Rejection> {
        match &self.inner.detail {
            Detail::Rejected { rejection, .. } => Some(rejection),
            _ => None,
        }
    }

    /// The client's error, for [`ServiceErrorKind::Client`].
    pub fn client_error(&self) -> Option<&Error> {
        match &self.inner.detail {
            Detail::Client(error) => Some(error),
            _ => None,
        }
    }

    /// How long the request waited, for [`ServiceErrorKind::Timeout`].
    pub fn timeout(&self) -> Option<Duration> {
        match &self.inner.detail {
            Detail::Timeout(after) => Some(*after),
            _ => None,
        }
    }

    /// True when the same request may succeed if sent again unchanged: a
    /// timeout, a lost connection, a transient client error (offline queue
    /// full…), or a refusal that says "later" ([`Rejection::is_retryable`]).
    /// Whether sending it again is *safe* is the caller's call: a request
    /// that timed out or lost its reply may have taken effect.
    pub fn is_retryable(&self) -> bool {
        match &self.inner.detail {
            Detail::Timeout(_) | Detail::ConnectionLost(_) => true,
            Detail::Client(error) => error.is_transient(),
            Detail::Rejected { rejection, .. } => rejection.is_retryable(),
            Detail::InvalidReply { .. } | Detail::InvalidRequest(_) => false,
        }
    }

    /// What went wrong, without the operation and topic (for the errors of
    /// the services that name those their own way).
    pub(crate) fn detail(&self) -> &Detail {
        &self.inner.detail
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} on {}: {}",
            self.inner.operation, self.inner.topic, self.inner.detail
        )
    }
}

impl fmt::Debug for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceError")
            .field("kind", &self.kind())
            .field("service", &self.inner.service)
            .field("operation", &self.inner.operation)
            .field("topic", &self.inner.topic)
            .field("detail", &self.inner.detail)
            .finish()
    }
}

impl std::error::Error for ServiceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.inner.detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Rejection, String> {
        Rejection::parse(&Bytes::from(json.to_owned()))
    }

    #[test]
    fn rejections_are_read_in_each_of_aws_shapes() {
        let shadow =
            parse(r#"{"code":404,"message":"No shadow exists","clientToken":"t1","timestamp":5}"#)
                .unwrap();
        assert_eq!(shadow.status_code(), Some(404));
        assert_eq!(shadow.error_code(), None);
        assert_eq!(shadow.message(), "No shadow exists");
        assert_eq!(shadow.client_token(), Some("t1"));
        assert_eq!(shadow.to_string(), r#"404 "No shadow exists""#);

        let jobs = parse(
            r#"{"code":"VersionMismatch","message":"v","clientToken":"t2",
                "executionState":{"status":"IN_PROGRESS","versionNumber":3}}"#,
        )
        .unwrap();
        assert_eq!(jobs.status_code(), None);
        assert_eq!(jobs.error_code(), Some("VersionMismatch"));
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct JobsError {
            execution_state: serde_json::Value,
        }
        let decoded: JobsError = jobs.decode().unwrap();
        assert_eq!(decoded.execution_state["versionNumber"], 3);

        let provisioning = parse(
            r#"{"statusCode":400,"errorCode":"InvalidCertificateOwnershipToken","errorMessage":"empty"}"#,
        )
        .unwrap();
        assert_eq!(provisioning.status_code(), Some(400));
        assert_eq!(
            provisioning.error_code(),
            Some("InvalidCertificateOwnershipToken")
        );
        assert_eq!(provisioning.message(), "empty");
        assert_eq!(
            provisioning.to_string(),
            r#"400 InvalidCertificateOwnershipToken "empty""#
        );
    }

    #[test]
    fn documents_that_are_not_rejections_are_refused_without_panicking() {
        for bad in [
            "",
            "not json",
            "[1,2]",
            "{}",
            r#"{"message":"no code"}"#,
            r#"{"code":true}"#,
            r#"{"code":70000}"#,
            "\u{0}\u{1}",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn retryable_refusals_are_the_ones_that_say_later() {
        for (json, retry) in [
            (r#"{"code":429,"message":""}"#, true),
            (r#"{"code":500,"message":""}"#, true),
            (r#"{"code":409,"message":""}"#, false),
            (r#"{"code":"RequestThrottled","message":""}"#, true),
            (r#"{"code":"InvalidStateTransition","message":""}"#, false),
        ] {
            assert_eq!(parse(json).unwrap().is_retryable(), retry, "{json}");
        }
    }

    #[test]
    fn errors_say_what_failed_and_are_small() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<ServiceError>();
        assert_eq!(
            std::mem::size_of::<ServiceError>(),
            std::mem::size_of::<usize>()
        );
        let rejection = parse(r#"{"code":409,"message":"Version conflict"}"#).unwrap();
        let e = ServiceError::new(
            "Device Shadow",
            "update",
            "$aws/things/t/shadow/update",
            Detail::Rejected {
                service: "Device Shadow",
                rejection,
                advice: Some("read it again and retry"),
            },
        );
        assert_eq!(e.kind(), ServiceErrorKind::Rejected);
        assert!(!e.is_retryable());
        assert_eq!(
            e.to_string(),
            "update on $aws/things/t/shadow/update: the Device Shadow service rejected it with \
             409 \"Version conflict\": read it again and retry"
        );
        let lost = ServiceError::new(
            "Jobs",
            "UpdateJobExecution",
            "$aws/things/t/jobs/j/update",
            Detail::ConnectionLost(Lost::FreshSession),
        );
        assert_eq!(lost.kind(), ServiceErrorKind::ConnectionLost);
        assert!(lost.is_retryable());
        assert!(
            lost.to_string()
                .contains("without the broker's stored session")
        );
    }
}
