//! What the qualifying server saw the device do, and what it did itself:
//! the transcript a case is graded on.

use std::time::Duration;

use iotcore_mqtt::ProtocolVersion;

/// One thing seen on one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// When, from the start of the case.
    pub at: Duration,
    /// Which connection of the case (1 for the first).
    pub connection: u32,
    /// What.
    pub seen: Seen,
}

/// What the server saw, or did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Seen {
    /// A ClientHello offering these cipher suites (rustls's names).
    Hello {
        /// The suites, in the client's order.
        cipher_suites: Vec<String>,
    },
    /// A connection refused before TLS: the server was down.
    Refused,
    /// The TLS handshake completed.
    Handshake,
    /// The TLS handshake failed (the device refused the server, or the reverse).
    HandshakeFailed(String),
    /// CONNECT.
    Connect {
        /// Its client id.
        client_id: String,
        /// Clean start (MQTT 3.1.1: clean session).
        clean_start: bool,
        /// Its keep-alive, seconds.
        keep_alive: u16,
        /// Its protocol.
        protocol: ProtocolVersion,
    },
    /// The server answered CONNECT with CONNACK.
    ConnAckSent,
    /// The server left CONNECT unanswered.
    ConnAckWithheld,
    /// PUBLISH from the device.
    Publish {
        /// The topic.
        topic: String,
        /// 0 or 1.
        qos: u8,
        /// The packet id (QoS 1).
        packet_id: Option<u16>,
        /// DUP.
        dup: bool,
    },
    /// SUBSCRIBE.
    Subscribe {
        /// The packet id.
        packet_id: u16,
        /// The filters.
        filters: Vec<String>,
    },
    /// The server sent a QoS 1 PUBLISH with this packet id.
    PublishSent {
        /// Its packet id.
        packet_id: u16,
        /// Its topic.
        topic: String,
    },
    /// PUBACK from the device.
    PubAck {
        /// The packet id acknowledged.
        packet_id: u16,
    },
    /// A request to the Device Shadow service (a PUBLISH to a shadow's
    /// `get`, `update` or `delete` topic).
    ShadowRequest {
        /// `get`, `update` or `delete`.
        operation: String,
        /// The request's JSON (`null` if it was not JSON).
        request: serde_json::Value,
    },
    /// The server set the shadow's desired state (the case's setup).
    DesiredSet {
        /// The desired state it set.
        desired: serde_json::Value,
    },
    /// The case's job was queued for the device.
    JobQueued {
        /// Its id.
        job_id: String,
    },
    /// The case's job could not be queued (the device's client id is no
    /// valid thing name, …).
    JobNotQueued(String),
    /// A request to the Jobs service (a PUBLISH under `$aws/things/{thing}/jobs/`).
    JobsRequest {
        /// AWS's name of the operation (`UpdateJobExecution`, …).
        api: String,
        /// The job it named (`$next` included).
        job_id: Option<String>,
        /// The status an update asked for.
        status: Option<String>,
        /// Whether the service accepted it.
        accepted: bool,
    },
    /// A policy given as attached to the device's certificate, checked.
    PolicyChecked {
        /// Its name (the file it came from).
        name: String,
        /// The wildcards it allows beyond the device's own resources.
        wildcards: Vec<String>,
        /// The wildcards it allows within them (after the device's client id
        /// or thing name).
        scoped_wildcards: Vec<String>,
    },
    /// No policy was given to check.
    NoPolicyGiven,
    /// PINGREQ.
    PingReq,
    /// DISCONNECT from the device.
    Disconnect,
    /// The connection ended.
    Closed {
        /// The server closed it (a fault of the case), not the device.
        by_server: bool,
    },
}
