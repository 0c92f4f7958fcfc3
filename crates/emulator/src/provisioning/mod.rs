//! Fleet provisioning by claim: provisioning templates, claim certificates, and
//! the device MQTT API (CreateKeysAndCertificate, CreateCertificateFromCsr,
//! RegisterThing) — docs/aws-iot-core-behaviour.md §4.
//!
//! The cloud side, usable with or without a running emulator (it is what
//! `iotcore template …` does):
//!
//! * [`Control::create_template`](crate::control::Control::create_template) stores a
//!   template after [`ProvisioningTemplate::parse`] checked it (see
//!   [`template`] for the format the emulator takes);
//! * [`Control::create_claim`](crate::control::Control::create_claim) issues a claim
//!   certificate for a template, with a policy
//!   ([`claim_policy_document`]) that allows exactly that template's
//!   provisioning topics; [`write_claim_files`] writes it for a device.
//!
//! The device side is a service of the running emulator. A connection that
//! receives an authorized PUBLISH on a request topic hands it over instead of
//! routing it; the reply goes to that connection's session only, on the
//! `/accepted` or `/rejected` topic, if the client subscribed to it (AWS: the
//! results come "through the same MQTT connection used to publish the API
//! request"; "subscribe to the response topics before publishing").
//!
//! * CreateKeysAndCertificate makes an RSA 2048 key and a certificate
//!   (subject `CN=AWS IoT Certificate`, as AWS's), CreateCertificateFromCsr
//!   signs the device's CSR with the emulator's CA. Either registers the
//!   certificate `PENDING_ACTIVATION` with an ownership token valid for one
//!   hour of the emulator's [`Clock`](crate::clock::Clock).
//! * RegisterThing checks the token (it works once), runs the template's
//!   pre-provisioning hook if it has one ([`hook`]: a local command that gets
//!   AWS's Lambda input on stdin and answers `{"allowProvisioning": …,
//!   "parameterOverrides": {…}}`), applies the template, writes the result in
//!   one transaction, and answers `{"deviceConfiguration": {…}, "thingName": …}`.
//! * Expired tokens are dropped every minute, with their certificates if
//!   nothing activated or attached them; a RegisterThing with an expired token
//!   is refused and drops its certificate at once.
//! * The `cbor` topics are not served: the emulator logs each such request and
//!   does not answer it.

mod claim;
pub mod hook;
mod intrinsics;
mod service;
pub mod template;

pub(crate) use claim::create_claim;
pub use claim::{
    ClaimCredentials, ClaimError, claim_policy_document, claim_policy_name, write_claim_files,
};
pub use template::{ProvisioningTemplate, Rendered, TemplateProblem};

pub(crate) use service::ProvisioningService;

/// How long an ownership token lets RegisterThing use its certificate.
pub const TOKEN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(3600);
