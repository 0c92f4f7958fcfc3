//! The test cases of AWS IoT Device Advisor: their ids, what each checks,
//! and what the qualifying server does to the device for it.
//!
//! Source: AWS IoT developer guide, "Device Advisor test cases"
//! (`device-advisor-tests-*.md`); the list and what each case checks are in
//! the project's research notes and docs/guide/qualify.md.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::pki::ServerCertificateFlaw;

/// A Device Advisor test case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum CaseId {
    /// The TLS handshake completes.
    TlsConnect,
    /// The ClientHello offers a cipher suite AWS IoT Core recommends.
    TlsSupportAwsIotCipherSuites,
    /// A QoS 1 message in maximum-size TLS records: the device takes it.
    TlsReceiveMaximumSizeFragments,
    /// A server certificate 20 % larger than AWS IoT Core's: the device copes.
    TlsLargeSizeServerCert,
    /// A server certificate signed by an unknown CA: the device refuses it.
    TlsUnsecureServerCert,
    /// A server certificate for another host name: the device refuses it.
    TlsIncorrectSubjectNameServerCert,
    /// An expired server certificate: the device refuses it.
    TlsExpiredServerCert,
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
    /// The session is kept: the device reconnects, does not subscribe again,
    /// and takes the message stored for it.
    MqttPersistentSessionHappyCase,
    /// The session expired: the device subscribes again after reconnecting.
    MqttExpiredPersistentSession,
    /// The device reports its state to its shadow.
    ShadowPublishReportedState,
    /// Desired is set: the device reports the desired state as its own.
    ShadowUpdateReportedState,
    /// A job is queued for the device: it runs it and reports SUCCEEDED.
    JobExecution,
    /// The policies attached to the device's certificate allow no wildcard.
    SecurityDevicePolicies,
    /// The long-duration scenarios, one after the other (opt-in: it runs
    /// for as long as its settings say).
    MqttLongDuration,
}

/// Where a case belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Category {
    /// TLS.
    Tls,
    /// MQTT.
    Mqtt,
    /// Device Shadow.
    Shadow,
    /// Jobs.
    Jobs,
    /// Permissions and policies.
    Permissions,
    /// Long duration.
    LongDuration,
}

impl CaseId {
    /// Every case, in Device Advisor's order.
    pub const ALL: [CaseId; 25] = [
        CaseId::TlsConnect,
        CaseId::TlsSupportAwsIotCipherSuites,
        CaseId::TlsReceiveMaximumSizeFragments,
        CaseId::TlsLargeSizeServerCert,
        CaseId::TlsUnsecureServerCert,
        CaseId::TlsIncorrectSubjectNameServerCert,
        CaseId::TlsExpiredServerCert,
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
        CaseId::MqttPersistentSessionHappyCase,
        CaseId::MqttExpiredPersistentSession,
        CaseId::ShadowPublishReportedState,
        CaseId::ShadowUpdateReportedState,
        CaseId::JobExecution,
        CaseId::SecurityDevicePolicies,
        CaseId::MqttLongDuration,
    ];

    /// Device Advisor's id: `MQTT_Publish_Retry_No_Puback`.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseId::TlsConnect => "TLS_Connect",
            CaseId::TlsSupportAwsIotCipherSuites => "TLS_Support_AWS_IoT_Cipher_Suites",
            CaseId::TlsReceiveMaximumSizeFragments => "TLS_Receive_Maximum_Size_Fragments",
            CaseId::TlsLargeSizeServerCert => "TLS_Large_Size_Server_Cert",
            CaseId::TlsUnsecureServerCert => "TLS_Unsecure_Server_Cert",
            CaseId::TlsIncorrectSubjectNameServerCert => "TLS_Incorrect_Subject_Name_Server_Cert",
            CaseId::TlsExpiredServerCert => "TLS_Expired_Server_Cert",
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
            CaseId::MqttPersistentSessionHappyCase => "MQTT_Persistent_Session_Happy_Case",
            CaseId::MqttExpiredPersistentSession => "MQTT_Expired_Persistent_Session",
            CaseId::ShadowPublishReportedState => "Shadow_Publish_Reported_State",
            CaseId::ShadowUpdateReportedState => "Shadow_Update_Reported_State",
            CaseId::JobExecution => "Job_Execution",
            CaseId::SecurityDevicePolicies => "Security_Device_Policies",
            CaseId::MqttLongDuration => "MQTT_Long_Duration",
        }
    }

    /// Its category.
    pub fn category(self) -> Category {
        match self {
            CaseId::TlsConnect
            | CaseId::TlsSupportAwsIotCipherSuites
            | CaseId::TlsReceiveMaximumSizeFragments
            | CaseId::TlsLargeSizeServerCert
            | CaseId::TlsUnsecureServerCert
            | CaseId::TlsIncorrectSubjectNameServerCert
            | CaseId::TlsExpiredServerCert => Category::Tls,
            CaseId::ShadowPublishReportedState | CaseId::ShadowUpdateReportedState => {
                Category::Shadow
            }
            CaseId::JobExecution => Category::Jobs,
            CaseId::SecurityDevicePolicies => Category::Permissions,
            CaseId::MqttLongDuration => Category::LongDuration,
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
            CaseId::TlsReceiveMaximumSizeFragments => {
                "answers with PUBACK a 64 KiB QoS 1 message, sent in maximum-size (16 KiB) TLS \
                 records, on a filter it subscribed to"
            }
            CaseId::TlsLargeSizeServerCert => {
                "completes the handshake and connects when the server certificate is 20 % \
                 larger than AWS IoT Core's"
            }
            CaseId::TlsUnsecureServerCert => {
                "refuses a server certificate that no CA it trusts signed"
            }
            CaseId::TlsIncorrectSubjectNameServerCert => {
                "refuses a server certificate issued for another host name"
            }
            CaseId::TlsExpiredServerCert => "refuses an expired server certificate",
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
            CaseId::MqttPersistentSessionHappyCase => {
                "connects without clean session, subscribes, and after the connection is cut \
                 reconnects to the kept session without subscribing again and acknowledges \
                 the message stored for it"
            }
            CaseId::MqttExpiredPersistentSession => {
                "connects without clean session, subscribes, and when the session is gone after \
                 the connection is cut, subscribes again"
            }
            CaseId::ShadowPublishReportedState => {
                "publishes its reported state to its shadow's update topic"
            }
            CaseId::ShadowUpdateReportedState => {
                "subscribes to its shadow's delta and, when desired is set, reports the desired \
                 values as its own"
            }
            CaseId::JobExecution => {
                "takes the job queued for it (told on notify-next, or asking with get, \
                 start-next or $next), reads its document, and reports the execution SUCCEEDED \
                 with UpdateJobExecution"
            }
            CaseId::SecurityDevicePolicies => {
                "has policies (given with --policy) that allow no wildcard action or resource \
                 (one within the device's own resources passes with a warning)"
            }
            CaseId::MqttLongDuration => {
                "stays up through the long-duration scenarios: retries within the window, \
                 reconnects, answers QoS 1 and large messages, resumes its session, gives up a \
                 silent connection, comes back after random drops, backs off, and reconnects \
                 after a long server outage"
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
                | CaseId::TlsReceiveMaximumSizeFragments
                | CaseId::TlsLargeSizeServerCert
                | CaseId::TlsUnsecureServerCert
                | CaseId::TlsIncorrectSubjectNameServerCert
                | CaseId::TlsExpiredServerCert
                | CaseId::MqttConnect
                | CaseId::MqttSubscribe
                | CaseId::MqttPublish
        )
    }

    /// Whether it runs only when asked for by name or with its own suite
    /// (it takes as long as its settings say: minutes to hours).
    pub fn opt_in(self) -> bool {
        self == CaseId::MqttLongDuration
    }

    /// What the qualifying server does to the device during the case.
    pub fn faults(self) -> Faults {
        let mut faults = Faults::default();
        match self {
            CaseId::TlsLargeSizeServerCert => {
                faults.certificate = Some(ServerCertificateFlaw::Large {
                    min_bytes: LARGE_CERTIFICATE_BYTES,
                });
            }
            CaseId::TlsUnsecureServerCert => {
                faults.certificate = Some(ServerCertificateFlaw::UnknownCa);
            }
            CaseId::TlsIncorrectSubjectNameServerCert => {
                faults.certificate = Some(ServerCertificateFlaw::IncorrectSubjectName);
            }
            CaseId::TlsExpiredServerCert => {
                faults.certificate = Some(ServerCertificateFlaw::Expired);
            }
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
            CaseId::MqttClientPubackQos1 => faults.send_to_subscriber = Some(SMALL_PAYLOAD),
            CaseId::TlsReceiveMaximumSizeFragments => {
                faults.send_to_subscriber = Some(FRAGMENTED_PAYLOAD);
            }
            CaseId::MqttPersistentSessionHappyCase => {
                faults.session = Some(SessionPlan::Kept);
            }
            CaseId::MqttExpiredPersistentSession => {
                faults.session = Some(SessionPlan::Expired);
            }
            CaseId::ShadowUpdateReportedState => faults.set_desired = true,
            CaseId::JobExecution => faults.queue_job = true,
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

/// The size of the large server certificate: 20 % above 5,000 bytes, the
/// order of AWS IoT Core's certificate chain (Device Advisor's exact
/// reference size is not published).
pub const LARGE_CERTIFICATE_BYTES: usize = 6_000;

/// What the qualifying server withholds or does during a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Faults {
    /// The flawed server certificate presented instead of the right one.
    pub certificate: Option<ServerCertificateFlaw>,
    /// When CONNECT is answered.
    pub connack: ConnackPlan,
    /// No PUBACK for the device's QoS 1 PUBLISHes.
    pub withhold_puback: bool,
    /// No SUBACK.
    pub withhold_suback: bool,
    /// No PINGRESP.
    pub withhold_pingresp: bool,
    /// After each SUBSCRIBE, a QoS 1 message of this many bytes to the first
    /// filter (its wildcards filled in).
    pub send_to_subscriber: Option<usize>,
    /// The persistent-session cases: the connection is cut after the first
    /// SUBACK, and the session is then kept or gone.
    pub session: Option<SessionPlan>,
    /// When the device subscribes to its classic shadow's delta, desired is
    /// set (clientToken `DeviceAdvisorShadowTestCaseSetup`, as Device Advisor's).
    pub set_desired: bool,
    /// A job is queued for the device when it first subscribes to its Jobs
    /// notifications or sends a Jobs request, and its Jobs requests are
    /// answered.
    pub queue_job: bool,
    /// A PUBACK or SUBACK withheld is sent after this long, or at once when
    /// the device sends the packet again (the long-duration case's retry
    /// window); `None`: never.
    pub release_after: Option<Duration>,
    /// Connections end as soon as they are accepted: the server is down.
    pub refuse_connections: bool,
    /// Each connection is cut at a random time in this range after CONNACK
    /// (intermittent connectivity).
    pub cut_randomly: Option<(Duration, Duration)>,
}

/// What becomes of the device's session when its connection is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionPlan {
    /// Kept: the next CONNACK says session present, and a message stored
    /// for the subscription follows.
    Kept,
    /// Gone: the next CONNACK says no session.
    Expired,
}

/// The payload of the message `MQTT_Client_Puback_Qos1` sends, in bytes.
pub const SMALL_PAYLOAD: usize = 64;
/// The payload `TLS_Receive_Maximum_Size_Fragments` sends: four records of
/// TLS's maximum 16 KiB of plaintext.
pub const FRAGMENTED_PAYLOAD: usize = 64 * 1024;

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
