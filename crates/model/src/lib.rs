//! Sans-IO models of AWS IoT Core's services, shared by the device SDK and the
//! emulator: reserved topic builders and parsers, and the JSON messages of the
//! Device Shadow and fleet provisioning services.
//!
//! * [`names`]: thing and shadow name rules.
//! * [`topics`]: the Device Shadow topics ([`topics::ShadowTopic`]).
//! * [`shadow`]: shadow requests, replies and the document algebra.
//! * [`provisioning`]: fleet provisioning's topics, messages and errors.
//! * [`jobs`]: the Jobs device API's topics, requests, replies, notifications
//!   and errors.
//! * [`greengrass`]: Greengrass discovery's response and errors, and a core
//!   device's connectivity information.
//!
//! Nothing here reads a clock or a socket: time is a parameter.
//!
//! # Where to start
//!
//! A client builds a [`topics::ShadowTopic`] to publish to and parses the
//! topic a reply came on; the service side parses a request
//! ([`shadow::UpdateRequest::parse`]) and applies it to a
//! [`shadow::ShadowDocument`], which returns the new document and every reply
//! to publish:
//!
//! ```
//! use iotcore_model::shadow::{ShadowDocument, UpdateRequest};
//! use iotcore_model::topics::{ShadowOperation, ShadowTopic, ShadowTopicKind};
//!
//! let topic = ShadowTopic::parse("$aws/things/lamp-1/shadow/update/delta")?;
//! assert_eq!((topic.thing(), topic.operation()), ("lamp-1", ShadowOperation::Update));
//! assert_eq!(topic.kind(), ShadowTopicKind::Delta);
//!
//! let request = UpdateRequest::parse(br#"{"state":{"desired":{"led":"on"}}}"#)?;
//! let outcome = ShadowDocument::empty(0).apply_update(&request, 1_700_000_000)?;
//! assert_eq!(outcome.document.version(), 1);
//! assert!(outcome.delta.is_some()); // desired differs from reported
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! For fleet provisioning the same pair is
//! [`provisioning::ProvisioningTopic`] and the request types of
//! [`provisioning`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod greengrass;
pub mod jobs;
pub mod names;
pub mod provisioning;
pub mod shadow;
pub mod topics;

/// The README's example, compiled and run as a doctest so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
