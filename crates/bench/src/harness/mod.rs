//! The brokers the suite measures against and the identities of its clients.

mod broker_peer;
mod emulator;
mod identity;
mod mosquitto;
mod process;
mod rumqttd;

pub use broker_peer::PeerKind;
pub use emulator::EmulatorProcess;
pub use identity::{AccessKey, Identity};
pub use process::{ProcessUsage, cpu_ticks_per_second};
pub use rumqttd::RUMQTTD_SETTINGS;
