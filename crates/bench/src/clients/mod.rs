//! The MQTT clients the suite drives: ours and the peers.

pub mod iotcore;
pub mod python;
pub mod rumqttc;
