//! Sans-IO models of AWS IoT Core's services, shared by the device SDK and the
//! emulator: reserved topic builders and parsers, and the JSON messages of the
//! shadow, jobs, provisioning and discovery services.
//!
//! * [`names`]: thing and shadow name rules.
//! * [`topics`]: the Device Shadow topics ([`topics::ShadowTopic`]).
//! * [`shadow`]: shadow requests, replies and the document algebra.
//! * [`provisioning`]: fleet provisioning's topics, messages and errors.
//!
//! Nothing here reads a clock or a socket: time is a parameter.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod names;
pub mod provisioning;
pub mod shadow;
pub mod topics;
