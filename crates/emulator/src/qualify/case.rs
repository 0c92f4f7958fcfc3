//! The test cases of AWS IoT Device Advisor: their ids, what each checks,
//! and what the qualifying server does to the device for it.
//!
//! Source: AWS IoT developer guide, "Device Advisor test cases"
//! (`device-advisor-tests-*.md`); the list and what each case checks are in
//! the project's research notes and docs/guide/qualify.md.

use std::fmt;
use std::str::FromStr;

/// A Device Advisor test case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum CaseId {
    /// The TLS handshake completes.
    TlsConnect,
    /// The ClientHello offers a cipher suite AWS IoT Core recommends.
    TlsSupportAwsIotCipherSuites,
    /// The device sends CONNECT.
    MqttConnect,
    /// The device answers an inbound QoS 1 PUBLISH with PUBACK.
    MqttClientPubackQos1,
    /// CONNACK withheld: the device retries with jittered exponential backoff.
    MqttConnectJitterBackoffRetries,
    /// CONNACK withheld: the device retries with exponential backoff.
    MqttConnectExponentialBackoffRetries,
    /// The server disconnects the device after CONNACK, again and again: it backs off.
    MqttReconnectBackoffRetriesOnServerDisconnect,
    /// The connection drops right after CONNACK, again and again: the device backs off.
    MqttReconnectBackoffRetriesOnUnstableConnection,
    /// The device publishes.
    MqttPublish,
    /// PUBACK withheld: the device publishes again with the same packet id, without reconnecting.
    MqttPublishRetryNoPuback,
    /// The device subscribes.
    MqttSubscribe,
    /// SUBACK withheld: the device subscribes again with the same packet id.
    MqttSubscribeRetryNoSuback,
    /// PUBACK, SUBACK and PINGRESP withheld: the device gives the connection up.
    MqttNoAckPingResp,
}

/// Where a case belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// TLS.
    Tls,
    /// MQTT.
    Mqtt,
}

impl CaseId {
    /// Every case, in Device Advisor's order.
    pub const ALL: [CaseId; 13] = [
        CaseId::TlsConnect,
        CaseId::TlsSupportAwsIotCipherSuites,
        CaseId::MqttConnect,
        CaseId::MqttClientPubackQos1,
        CaseId::MqttConnectJitterBackoffRetries,
        CaseId::MqttConnectExponentialBackoffRetries,
        CaseId::MqttReconnectBackoffRetriesOnServerDisconnect,
        CaseId::MqttReconnectBackoffRetriesOnUnstableConnection,
        CaseId::MqttPublish,
        CaseId::MqttPublishRetryNoPuback,
        CaseId::MqttSubscribe,
        CaseId::MqttSubscribeRetryNoSuback,
        CaseId::MqttNoAckPingResp,
    ];

    /// Device Advisor's id: `MQTT_Publish_Retry_No_Puback`.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseId::TlsConnect => "TLS_Connect",
            CaseId::TlsSupportAwsIotCipherSuites => "TLS_Support_AWS_IoT_Cipher_Suites",
            CaseId::MqttConnect => "MQTT_Connect",
            CaseId::MqttClientPubackQos1 => "MQTT_Client_Puback_Qos1",
            CaseId::MqttConnectJitterBackoffRetries => "MQTT_Connect_Jitter_Backoff_Retries",
            CaseId::MqttConnectExponentialBackoffRetries => {
                "MQTT_Connect_Exponential_Backoff_Retries"
            }
            CaseId::MqttReconnectBackoffRetriesOnServerDisconnect => {
                "MQTT_Reconnect_Backoff_Retries_On_Server_Disconnect"
            }
            CaseId::MqttReconnectBackoffRetriesOnUnstableConnection => {
                "MQTT_Reconnect_Backoff_Retries_On_Unstable_Connection"
            }
            CaseId::MqttPublish => "MQTT_Publish",
            CaseId::MqttPublishRetryNoPuback => "MQTT_Publish_Retry_No_Puback",
            CaseId::MqttSubscribe => "MQTT_Subscribe",
            CaseId::MqttSubscribeRetryNoSuback => "MQTT_Subscribe_Retry_No_Suback",
            CaseId::MqttNoAckPingResp => "MQTT_No_Ack_PingResp",
        }
    }

    /// Its category.
    pub fn category(self) -> Category {
        match self {
            CaseId::TlsConnect | CaseId::TlsSupportAwsIotCipherSuites => Category::Tls,
            _ => Category::Mqtt,
        }
    }

    /// What the device must do to pass, in a sentence.
    pub fn checks(self) -> &'static str {
        match self {
            CaseId::TlsConnect => "completes a TLS handshake with the endpoint",
            CaseId::TlsSupportAwsIotCipherSuites => {
                "offers, in its ClientHello, a cipher suite AWS IoT Core recommends"
            }
            CaseId::MqttConnect => "sends CONNECT",
            CaseId::MqttClientPubackQos1 => {
                "answers with PUBACK a QoS 1 message sent to a filter it subscribed to"
            }
            CaseId::MqttConnectJitterBackoffRetries => {
                "retries a CONNECT left unanswered at least 5 times, with jittered exponential \
                 backoff (strict exponential passes with a warning, constant or linear fails)"
            }
            CaseId::MqttConnectExponentialBackoffRetries => {
                "retries a CONNECT left unanswered at least 5 times, each wait longer than the \
                 last (exponential; jittered exponential passes)"
            }
            CaseId::MqttReconnectBackoffRetriesOnServerDisconnect => {
                "reconnects after the server disconnects it, at least 5 times, backing off \
                 (constant or linear fails)"
            }
            CaseId::MqttReconnectBackoffRetriesOnUnstableConnection => {
                "reconnects after the connection drops right after CONNACK, at least 5 times, \
                 backing off (constant or linear fails)"
            }
            CaseId::MqttPublish => "publishes a message",
            CaseId::MqttPublishRetryNoPuback => {
                "publishes a QoS 1 message left without PUBACK again, with the same packet id \
                 and DUP set, without reconnecting"
            }
            CaseId::MqttSubscribe => "subscribes to a topic filter",
            CaseId::MqttSubscribeRetryNoSuback => {
                "subscribes again, with the same packet id, when SUBACK does not come"
            }
            CaseId::MqttNoAckPingResp => {
                "closes the connection when PUBACK, SUBACK and PINGRESP stop coming"
            }
        }
    }

    /// Whether AWS's qualification list has it (the cases a device must pass
    /// to be listed in the AWS Partner Device Catalog).
    pub fn in_qualification_suite(self) -> bool {
        matches!(
            self,
            CaseId::TlsConnect
                | CaseId::TlsSupportAwsIotCipherSuites
                | CaseId::MqttConnect
                | CaseId::MqttSubscribe
                | CaseId::MqttPublish
        )
    }

    /// What the qualifying server does to the device during the case.
    pub fn faults(self) -> Faults {
        let mut faults = Faults::default();
        match self {
            CaseId::MqttConnectJitterBackoffRetries
            | CaseId::MqttConnectExponentialBackoffRetries => {
                faults.connack = ConnackPlan::WithholdCycles {
                    withheld: WITHHELD_PER_CYCLE,
                }
            }
            CaseId::MqttReconnectBackoffRetriesOnServerDisconnect => {
                faults.connack = ConnackPlan::DisconnectAfter;
            }
            CaseId::MqttReconnectBackoffRetriesOnUnstableConnection => {
                faults.connack = ConnackPlan::CloseAfter;
            }
            CaseId::MqttClientPubackQos1 => faults.send_to_subscriber = true,
            CaseId::MqttPublishRetryNoPuback => faults.withhold_puback = true,
            CaseId::MqttSubscribeRetryNoSuback => faults.withhold_suback = true,
            CaseId::MqttNoAckPingResp => {
                faults.withhold_puback = true;
                faults.withhold_suback = true;
                faults.withhold_pingresp = true;
            }
            _ => {}
        }
        faults
    }
}

/// CONNECTs left unanswered before one is let through, in the CONNACK cases
/// (Device Advisor: "at least 5 times; the 6th is allowed through").
pub const WITHHELD_PER_CYCLE: usize = 5;

impl fmt::Display for CaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is no Device Advisor case this build knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a Device Advisor test case this version runs (see `iotcore qualify --list`)")]
pub struct UnknownCase(pub String);

impl FromStr for CaseId {
    type Err = UnknownCase;

    /// Device Advisor's id, in any case.
    fn from_str(text: &str) -> Result<CaseId, UnknownCase> {
        CaseId::ALL
            .into_iter()
            .find(|case| case.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| UnknownCase(text.to_owned()))
    }
}

/// When the server answers CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnackPlan {
    /// Always, at once.
    #[default]
    Always,
    /// Leaves `withheld` CONNECTs in a row unanswered, answers the next, and
    /// starts over when that connection ends.
    WithholdCycles {
        /// CONNECTs left unanswered per cycle.
        withheld: usize,
    },
    /// Answers, then sends DISCONNECT 0x8B server shutting down (MQTT 5; MQTT
    /// 3.1.1 has no server DISCONNECT) and closes.
    DisconnectAfter,
    /// Answers, then closes the connection without a word.
    CloseAfter,
}

/// What the qualifying server withholds or does during a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Faults {
    /// When CONNECT is answered.
    pub connack: ConnackPlan,
    /// No PUBACK for the device's QoS 1 PUBLISHes.
    pub withhold_puback: bool,
    /// No SUBACK.
    pub withhold_suback: bool,
    /// No PINGRESP.
    pub withhold_pingresp: bool,
    /// After each SUBSCRIBE, a QoS 1 message to the first filter (its
    /// wildcards filled in).
    pub send_to_subscriber: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_back_whatever_their_case() {
        for case in CaseId::ALL {
            assert_eq!(case.as_str().parse::<CaseId>(), Ok(case));
            assert_eq!(case.as_str().to_lowercase().parse::<CaseId>(), Ok(case));
        }
        assert!("MQTT_Nothing".parse::<CaseId>().is_err());
    }
}
