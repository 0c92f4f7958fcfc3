//! Limits and AWS IoT Core behaviour switches of a server session.

use std::time::Duration;

/// What a server session does with a SUBSCRIBE that asks for QoS 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qos2Subscribe {
    /// AWS IoT Core: "When QoS level 2 is requested, the message broker
    /// doesn't send a PUBACK or SUBACK." MQTT 3.1.1: the SUBSCRIBE is ignored
    /// (no SUBACK; [`Event::SubscribeIgnored`](super::Event::SubscribeIgnored)
    /// reports it). MQTT 5: DISCONNECT 0x9B (QoS not supported), the closest
    /// code AWS documents.
    Refuse,
    /// MQTT specification: the subscription is granted at QoS 1 (the
    /// [`Event::Subscribe`](super::Event::Subscribe) shows QoS 1 for it).
    GrantQoS1,
}

/// Configuration of a [`ServerSession`](super::ServerSession).
///
/// [`ServerConfig::aws`] (also the `Default`) reproduces AWS IoT Core;
/// [`ServerConfig::standard`] follows the MQTT specification.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Largest packet accepted from the client, fixed header included; a larger
    /// one closes the connection (MQTT 5: DISCONNECT 0x95). Announced as MQTT 5
    /// Maximum Packet Size.
    pub max_incoming_packet_size: usize,
    /// Receive Maximum: most unacknowledged QoS 1 publishes the client may
    /// have outstanding towards us (MQTT 5: more is a protocol error 0x93).
    pub receive_maximum: u16,
    /// Most QoS 1 deliveries in flight to the client (the client's Receive
    /// Maximum lowers it); further ones wait in order.
    pub max_inflight: u16,
    /// Topic Alias Maximum announced to MQTT 5 clients (0: no aliases).
    pub topic_alias_maximum: u16,
    /// A requested keep-alive between 1 and this is raised to it.
    pub min_keep_alive: u16,
    /// A requested keep-alive above this is lowered to it.
    pub max_keep_alive: u16,
    /// Whether a keep-alive of 0 disables the keep-alive check; if not, 0
    /// means `max_keep_alive`.
    pub allow_zero_keep_alive: bool,
    /// How long a new connection may take to send CONNECT.
    pub connect_timeout: Duration,
    /// What to do with a QoS 2 SUBSCRIBE.
    pub qos2_subscribe: Qos2Subscribe,
}

impl ServerConfig {
    /// AWS IoT Core's broker, with the values it announces in an MQTT 5 CONNACK
    /// (Receive Maximum 100, Maximum Packet Size 149,504, Topic Alias Maximum
    /// 8, as logged by the AWS CRT client in aws/aws-iot-device-sdk-cpp-v2#586),
    /// its 100 unacknowledged outbound publishes per client, keep-alive clamped
    /// to 30..=1200 s with 0 meaning 1200 s, and QoS 2 subscriptions refused.
    /// The connect timeout (10 s) is this emulator's choice.
    pub fn aws() -> ServerConfig {
        ServerConfig {
            max_incoming_packet_size: 149_504,
            receive_maximum: 100,
            max_inflight: 100,
            topic_alias_maximum: 8,
            min_keep_alive: 30,
            max_keep_alive: 1200,
            allow_zero_keep_alive: false,
            connect_timeout: Duration::from_secs(10),
            qos2_subscribe: Qos2Subscribe::Refuse,
        }
    }

    /// The MQTT specification: any keep-alive honoured (0 disables it), QoS 2
    /// subscriptions granted at QoS 1, no packet size limit below MQTT's own.
    pub fn standard() -> ServerConfig {
        ServerConfig {
            max_incoming_packet_size: crate::packet::MAX_PACKET_SIZE,
            receive_maximum: u16::MAX,
            max_inflight: u16::MAX,
            topic_alias_maximum: 0,
            min_keep_alive: 0,
            max_keep_alive: u16::MAX,
            allow_zero_keep_alive: true,
            connect_timeout: Duration::from_secs(10),
            qos2_subscribe: Qos2Subscribe::GrantQoS1,
        }
    }

    /// The keep-alive the server applies for a CONNECT asking for `requested` seconds.
    pub fn effective_keep_alive(&self, requested: u16) -> u16 {
        if requested == 0 {
            if self.allow_zero_keep_alive {
                0
            } else {
                self.max_keep_alive
            }
        } else {
            requested.clamp(
                self.min_keep_alive.min(self.max_keep_alive),
                self.max_keep_alive,
            )
        }
    }
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig::aws()
    }
}

#[cfg(test)]
mod tests {
    use super::ServerConfig;

    #[test]
    fn aws_keep_alive_is_clamped_to_30_1200_and_zero_means_1200() {
        let aws = ServerConfig::aws();
        assert_eq!(aws.effective_keep_alive(0), 1200);
        assert_eq!(aws.effective_keep_alive(1), 30);
        assert_eq!(aws.effective_keep_alive(29), 30);
        assert_eq!(aws.effective_keep_alive(30), 30);
        assert_eq!(aws.effective_keep_alive(1200), 1200);
        assert_eq!(aws.effective_keep_alive(1201), 1200);
        assert_eq!(aws.effective_keep_alive(u16::MAX), 1200);
    }

    #[test]
    fn standard_keep_alive_is_honoured() {
        let standard = ServerConfig::standard();
        assert_eq!(standard.effective_keep_alive(0), 0);
        assert_eq!(standard.effective_keep_alive(5), 5);
        assert_eq!(standard.effective_keep_alive(u16::MAX), u16::MAX);
    }
}
