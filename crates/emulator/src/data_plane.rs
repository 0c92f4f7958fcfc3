//! AWS IoT's HTTP data plane (`iot-data`) on the running emulator: Publish,
//! GetRetainedMessage, ListRetainedMessages, Get/Update/DeleteThingShadow and
//! ListNamedShadowsForThing. Messages published here are routed like MQTT
//! publishes (retained ones kept, subscribers' `iot:Receive` checked on
//! delivery); shadow updates publish the same accepted, delta and documents
//! messages as MQTT updates do.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use iotcore_model::names::validate_thing_name;
use iotcore_mqtt::topic::validate_aws_topic_name;
use iotcore_mqtt::{Properties, QoS};
use serde::{Deserialize, Serialize};

use crate::broker::Broker;
use crate::broker::message::Message;
use crate::control::{ControlError, ErrorCode};
use crate::shadow::{ShadowApiError, Shadows};
use crate::store::Store;

/// Publish's request (AWS's query string and `x-amz-mqtt5-*` headers, decoded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishRequest {
    /// The topic.
    pub topic: String,
    /// 0 (the default) or 1.
    pub qos: Option<i64>,
    /// Retain the message.
    pub retain: bool,
    /// The payload.
    pub payload: Bytes,
    /// MQTT 5 user properties, in order.
    pub user_properties: Vec<(String, String)>,
    /// MQTT 5 payload format: UTF8_DATA or UNSPECIFIED_BYTES.
    pub payload_format_indicator: Option<String>,
    /// MQTT 5 content type.
    pub content_type: Option<String>,
    /// MQTT 5 response topic.
    pub response_topic: Option<String>,
    /// MQTT 5 correlation data.
    pub correlation_data: Option<Bytes>,
    /// MQTT 5 message expiry, seconds.
    pub message_expiry: Option<i64>,
}

/// GetRetainedMessage's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetRetainedMessageResponse {
    /// The topic.
    pub topic: String,
    /// The payload, base64.
    pub payload: String,
    /// Its QoS.
    pub qos: u8,
    /// When it was retained, epoch milliseconds.
    pub last_modified_time: i64,
    /// Its user properties: base64 of a JSON array of one-entry objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_properties: Option<String>,
}

/// One message in ListRetainedMessages' response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetainedMessageSummary {
    /// The topic.
    pub topic: String,
    /// The payload's size in bytes.
    pub payload_size: i64,
    /// Its QoS.
    pub qos: u8,
    /// When it was retained, epoch milliseconds.
    pub last_modified_time: i64,
}

/// ListRetainedMessages' response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListRetainedMessagesResponse {
    /// The retained messages of this page, by topic.
    pub retained_topics: Vec<RetainedMessageSummary>,
    /// The token of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// ListNamedShadowsForThing's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListNamedShadowsResponse {
    /// The shadow names of this page.
    pub results: Vec<String>,
    /// The token of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    /// When the list was made, epoch seconds.
    pub timestamp: i64,
}

/// The emulator's `iot-data` operations. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DataPlane {
    broker: Arc<Broker>,
    shadows: Shadows,
    store: Store,
}

impl DataPlane {
    pub(crate) fn new(broker: Arc<Broker>, shadows: Shadows, store: Store) -> DataPlane {
        DataPlane {
            broker,
            shadows,
            store,
        }
    }

    /// Publish: routes the message to subscribers like an MQTT publish; a
    /// retained message, and a QoS 1 message queued for persistent sessions,
    /// is stored before this returns.
    pub async fn publish(&self, request: PublishRequest) -> Result<(), ControlError> {
        let message = self.message(request)?;
        if let Some(stored) = self.broker.publish_durably(message, None) {
            stored
                .await
                .map_err(|e| ControlError::new(ErrorCode::InternalFailure, e.to_string()))?;
        }
        Ok(())
    }

    /// Checks a publish as AWS does and makes the message.
    fn message(&self, request: PublishRequest) -> Result<Message, ControlError> {
        validate_aws_topic_name(&request.topic)
            .map_err(|e| ControlError::invalid(format!("topic {:?}: {e}", request.topic)))?;
        let qos = match request.qos {
            None | Some(0) => QoS::AtMostOnce,
            Some(1) => QoS::AtLeastOnce,
            Some(q) => {
                return Err(ControlError::invalid(format!(
                    "qos {q} is not supported: give 0 or 1"
                )));
            }
        };
        let max = self.broker.config().limits.max_payload;
        if request.payload.len() > max {
            return Err(ControlError::new(
                ErrorCode::RequestEntityTooLarge,
                format!(
                    "the payload of {} bytes exceeds the {max}-byte limit",
                    request.payload.len()
                ),
            ));
        }
        if request.retain && request.topic.starts_with('$') {
            return Err(ControlError::invalid(
                "messages on reserved topics ($…) cannot be retained",
            ));
        }
        let payload_format_indicator = match request.payload_format_indicator.as_deref() {
            None => None,
            Some("UNSPECIFIED_BYTES") => Some(0),
            Some("UTF8_DATA") => {
                if std::str::from_utf8(&request.payload).is_err() {
                    return Err(ControlError::invalid(
                        "the payload is not UTF-8 although its format says UTF8_DATA",
                    ));
                }
                Some(1)
            }
            Some(other) => {
                return Err(ControlError::invalid(format!(
                    "payloadFormatIndicator {other:?} is not UNSPECIFIED_BYTES or UTF8_DATA"
                )));
            }
        };
        let message_expiry_interval = match request.message_expiry {
            None => None,
            Some(secs) => Some(u32::try_from(secs).map_err(|_| {
                ControlError::invalid(format!("messageExpiry {secs} is out of range"))
            })?),
        };
        let properties = Properties {
            payload_format_indicator,
            content_type: request.content_type,
            response_topic: request.response_topic,
            correlation_data: request.correlation_data,
            user_properties: request.user_properties,
            message_expiry_interval,
            ..Properties::default()
        };
        Ok(Message::new(
            request.topic.into(),
            request.payload,
            qos,
            request.retain,
            &properties,
            SystemTime::now(),
        ))
    }

    /// GetRetainedMessage.
    pub fn get_retained_message(
        &self,
        topic: &str,
    ) -> Result<GetRetainedMessageResponse, ControlError> {
        let message = self
            .broker
            .retained_message(topic, SystemTime::now())
            .ok_or_else(|| {
                ControlError::not_found(format!("No retained message for topic {topic}"))
            })?;
        let record = self.store.retained(topic)?;
        let user_properties = (!message.properties().user_properties.is_empty()).then(|| {
            let pairs: Vec<serde_json::Value> = message
                .properties()
                .user_properties
                .iter()
                .map(|(k, v)| serde_json::json!({ k: v }))
                .collect();
            BASE64.encode(serde_json::Value::Array(pairs).to_string())
        });
        Ok(GetRetainedMessageResponse {
            topic: message.topic.to_string(),
            payload: BASE64.encode(&message.payload),
            qos: message.qos as u8,
            last_modified_time: record.map_or_else(now_millis, |r| r.updated_at * 1000),
            user_properties,
        })
    }

    /// ListRetainedMessages, by topic.
    pub fn list_retained_messages(
        &self,
        next_token: Option<&str>,
        max_results: Option<i64>,
    ) -> Result<ListRetainedMessagesResponse, ControlError> {
        let mut records = self.store.all_retained()?;
        records.sort_by(|a, b| a.topic.cmp(&b.topic));
        let page = crate::control::paginate(
            records,
            |r| r.topic.as_str(),
            next_token,
            max_results,
            50,
            200,
        )?;
        Ok(ListRetainedMessagesResponse {
            retained_topics: page
                .items
                .into_iter()
                .map(|r| RetainedMessageSummary {
                    payload_size: i64::try_from(r.payload.len()).unwrap_or(i64::MAX),
                    qos: r.qos,
                    last_modified_time: r.updated_at * 1000,
                    topic: r.topic,
                })
                .collect(),
            next_token: page.next,
        })
    }

    /// GetThingShadow: the document, as MQTT's get/accepted carries it.
    pub async fn get_thing_shadow(
        &self,
        thing: &str,
        shadow: Option<&str>,
    ) -> Result<Vec<u8>, ControlError> {
        let reply = self
            .shadows
            .get(thing, shadow)
            .await
            .map_err(shadow_error)?;
        to_json(&reply)
    }

    /// UpdateThingShadow: the update/accepted document.
    pub async fn update_thing_shadow(
        &self,
        thing: &str,
        shadow: Option<&str>,
        document: &[u8],
    ) -> Result<Vec<u8>, ControlError> {
        let reply = self
            .shadows
            .update(thing, shadow, document)
            .await
            .map_err(shadow_error)?;
        to_json(&reply)
    }

    /// DeleteThingShadow: `{"version":N,"timestamp":T}`.
    pub async fn delete_thing_shadow(
        &self,
        thing: &str,
        shadow: Option<&str>,
    ) -> Result<Vec<u8>, ControlError> {
        let reply = self
            .shadows
            .delete(thing, shadow)
            .await
            .map_err(shadow_error)?;
        to_json(&reply)
    }

    /// ListNamedShadowsForThing.
    pub fn list_named_shadows_for_thing(
        &self,
        thing: &str,
        next_token: Option<&str>,
        page_size: Option<i64>,
    ) -> Result<ListNamedShadowsResponse, ControlError> {
        validate_thing_name(thing).map_err(|e| ControlError::invalid(e.to_string()))?;
        let page = crate::control::paginate(
            self.store.named_shadows(thing)?,
            |n| n.as_str(),
            next_token,
            page_size,
            25,
            100,
        )?;
        Ok(ListNamedShadowsResponse {
            results: page.items,
            next_token: page.next,
            timestamp: now_millis() / 1000,
        })
    }
}

/// A shadow service refusal as AWS's `iot-data` error.
fn shadow_error(e: ShadowApiError) -> ControlError {
    match e {
        ShadowApiError::Rejected(error) => {
            let code = match error.code() {
                400 => ErrorCode::InvalidRequest,
                404 => ErrorCode::ResourceNotFound,
                409 => ErrorCode::Conflict,
                413 => ErrorCode::RequestEntityTooLarge,
                415 => ErrorCode::UnsupportedDocumentEncoding,
                _ => ErrorCode::InternalFailure,
            };
            ControlError::new(code, error.to_string())
        }
        ShadowApiError::InvalidName(e) => ControlError::invalid(e.to_string()),
        e => ControlError::new(ErrorCode::InternalFailure, e.to_string()),
    }
}

/// A reply as the shadow service publishes it on MQTT.
fn to_json(reply: &impl Serialize) -> Result<Vec<u8>, ControlError> {
    serde_json::to_vec(reply)
        .map_err(|e| ControlError::new(ErrorCode::InternalFailure, e.to_string()))
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
