//! The brokers the suite measures against and the identities of its clients.

mod emulator;
mod identity;
mod mosquitto;
mod process;

pub use emulator::EmulatorProcess;
pub use identity::{AccessKey, Identity};
pub use mosquitto::MosquittoBroker;
pub use process::{ProcessUsage, cpu_ticks_per_second};
