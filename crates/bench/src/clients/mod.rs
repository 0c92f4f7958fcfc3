//! The MQTT clients the suite drives: ours and the peers.

pub mod echo;
pub mod iotcore;
pub mod python;
pub mod python_shadow;
pub mod rumqttc;
