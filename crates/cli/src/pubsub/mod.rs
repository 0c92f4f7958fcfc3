//! `iotcore pub` and `iotcore sub`: mosquitto_pub and mosquitto_sub's habits
//! (`-t`, `-m`, `-f`, `-l`, `-q`, `-r`, `-v`, `-C`, `-W`, `-i`, `-V`) on the
//! SDK's [`iotcore::Client`], to the emulator or AWS IoT Core.
//!
//! What they share: the QoS option (AWS IoT Core has no QoS 2), and telling a
//! refusal by policy apart from other failures. AWS IoT Core refuses a
//! publish or a subscription it does not allow with a reason code on MQTT 5
//! (PUBACK or SUBACK 0x87) and by closing the connection on MQTT 3.1.1, which
//! the SDK reports as [`DisconnectReason::PolicyDenialSuspected`]; either
//! way the command ends with one line saying what the policy must allow.
//! Where and as whom they connect: [`crate::cli_identity`].

pub mod publish;
pub mod subscribe;

use std::fmt;
use std::future::Future;
use std::time::Duration;

use futures_util::FutureExt;
use iotcore::{
    Client, ConnectionState, DisconnectReason, ErrorKind, QoS, ReasonCode, StatusEvents,
};
use tokio_stream::StreamExt;

/// Parses `-q`: 0 or 1. AWS IoT Core has no QoS 2.
fn parse_qos(value: &str) -> Result<QoS, QoSError> {
    match value {
        "0" => Ok(QoS::AtMostOnce),
        "1" => Ok(QoS::AtLeastOnce),
        "2" => Err(QoSError::Two),
        _ => Err(QoSError::Invalid),
    }
}

/// Why a `-q` value is refused.
#[derive(Debug, thiserror::Error)]
enum QoSError {
    #[error("AWS IoT Core does not support QoS 2 (it has QoS 0 and 1 only): use -q 0 or -q 1")]
    Two,
    #[error("QoS is 0 or 1")]
    Invalid,
}

/// A request the policy may refuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Request {
    /// A PUBLISH; `retain`: with the retain flag.
    Publish { retain: bool },
    /// A SUBSCRIBE.
    Subscribe,
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Request::Publish { .. } => "publish to",
            Request::Subscribe => "subscribe to",
        })
    }
}

/// Why a publish or a subscription failed.
#[derive(Debug, thiserror::Error)]
enum RequestError {
    /// Refused by the policy: MQTT 5's 0x87, or the connection closed right
    /// after the request on MQTT 3.1.1.
    #[error("not allowed to {request} {topic}: the policy must allow {}", policy_needs(*request, topic))]
    NotAllowed {
        request: Request,
        topic: String,
        #[source]
        evidence: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Failed otherwise.
    #[error("cannot {request} {topic}")]
    Failed {
        request: Request,
        topic: String,
        #[source]
        source: iotcore::Error,
    },
    /// No answer in time.
    #[error("no answer to the {request} {topic} within {after:?} (--timeout)")]
    NoAnswer {
        request: Request,
        topic: String,
        after: Duration,
    },
}

/// What an IoT policy must allow for `request` on `topic`.
fn policy_needs(request: Request, topic: &str) -> String {
    match request {
        Request::Publish { retain: false } => format!("iot:Publish on topic/{topic}"),
        Request::Publish { retain: true } => {
            format!("iot:Publish and iot:RetainPublish on topic/{topic}")
        }
        Request::Subscribe => format!("iot:Subscribe on topicfilter/{topic}"),
    }
}

/// Runs requests on a connection, watching the connection for AWS IoT
/// Core's MQTT 3.1.1 way of refusing them.
struct Guard {
    events: StatusEvents,
    timeout: Duration,
}

impl Guard {
    /// Watches `client`'s connection from now on; a request gets `timeout` to succeed.
    fn new(client: &Client, timeout: Duration) -> Guard {
        Guard {
            events: client.status_events(),
            timeout,
        }
    }

    /// Awaits `pending`, the `request` for `topic`.
    async fn run<T>(
        &mut self,
        request: Request,
        topic: &str,
        pending: impl Future<Output = Result<T, iotcore::Error>>,
    ) -> Result<T, RequestError> {
        let pending = tokio::time::timeout(self.timeout, pending);
        tokio::pin!(pending);
        let mut watching = true;
        loop {
            tokio::select! {
                biased;
                event = self.events.next(), if watching => match event {
                    Some(event) => {
                        if let Some(refused) = refusal(request, event) {
                            return Err(refused);
                        }
                    }
                    None => watching = false,
                },
                result = &mut pending => {
                    return match result {
                        Ok(Ok(value)) => Ok(value),
                        Ok(Err(e)) => Err(self.explain(request, topic, e)),
                        Err(_) => Err(RequestError::NoAnswer {
                            request,
                            topic: topic.to_owned(),
                            after: self.timeout,
                        }),
                    };
                }
            }
        }
    }

    /// The failure `e` of `request`: a refusal by policy if the server said
    /// so (MQTT 5) or closed the connection right after it (MQTT 3.1.1: a
    /// later QoS 0 publish then fails as offline).
    fn explain(&mut self, request: Request, topic: &str, e: iotcore::Error) -> RequestError {
        while let Some(Some(event)) = self.events.next().now_or_never() {
            if let Some(refused) = refusal(request, event) {
                return refused;
            }
        }
        if e.kind() == ErrorKind::Rejected && e.reason_code() == Some(ReasonCode::NOT_AUTHORIZED) {
            return RequestError::NotAllowed {
                request,
                topic: topic.to_owned(),
                evidence: Box::new(e),
            };
        }
        RequestError::Failed {
            request,
            topic: topic.to_owned(),
            source: e,
        }
    }
}

/// The refusal a connection event shows, if it shows one.
fn refusal(request: Request, event: ConnectionState) -> Option<RequestError> {
    let ConnectionState::Disconnected { reason } = event else {
        return None;
    };
    let DisconnectReason::PolicyDenialSuspected { topic, .. } = &reason else {
        return None;
    };
    Some(RequestError::NotAllowed {
        request,
        topic: topic.clone(),
        evidence: Box::new(reason),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qos_2_is_refused_with_the_reason() {
        assert_eq!(parse_qos("1").unwrap(), QoS::AtLeastOnce);
        assert_eq!(parse_qos("0").unwrap(), QoS::AtMostOnce);
        assert!(matches!(parse_qos("2"), Err(QoSError::Two)));
        assert!(matches!(parse_qos("x"), Err(QoSError::Invalid)));
    }

    #[test]
    fn a_refusal_says_what_the_policy_must_allow() {
        let refused = |request| RequestError::NotAllowed {
            request,
            topic: "dt/x".into(),
            evidence: "test".into(),
        };
        assert_eq!(
            refused(Request::Subscribe).to_string(),
            "not allowed to subscribe to dt/x: the policy must allow iot:Subscribe on topicfilter/dt/x"
        );
        assert_eq!(
            refused(Request::Publish { retain: true }).to_string(),
            "not allowed to publish to dt/x: the policy must allow iot:Publish and \
             iot:RetainPublish on topic/dt/x"
        );
    }
}
