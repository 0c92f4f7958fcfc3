//! SUBACK: the server's answer to SUBSCRIBE.

use crate::{Properties, ReasonCode};

/// A SUBACK packet.
///
/// One reason code per requested filter: the granted QoS (0x00, 0x01, 0x02) or
/// a failure (0x80 and above). MQTT 3.1.1 knows only 0x00–0x02 and 0x80; other
/// failures are sent as 0x80 to a 3.1.1 client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubAck {
    /// The acknowledged packet identifier.
    pub packet_id: u16,
    /// One code per filter, in request order.
    pub reasons: Vec<ReasonCode>,
    /// MQTT 5 properties.
    pub properties: Properties,
}
