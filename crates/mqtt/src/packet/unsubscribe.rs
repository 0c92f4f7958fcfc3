//! UNSUBSCRIBE: a client drops topic filters.

use crate::Properties;

/// An UNSUBSCRIBE packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Packet identifier (non-zero).
    pub packet_id: u16,
    /// At least one topic filter.
    pub filters: Vec<String>,
    /// MQTT 5 properties.
    pub properties: Properties,
}
