//! The parts of the suite, one module per [`Group`](crate::report::Group).

pub mod brokers;
pub mod connect;
pub mod doors;
pub mod footprint;
pub mod latency;
pub mod publish_case;
pub mod python_peer;
pub mod throughput;
