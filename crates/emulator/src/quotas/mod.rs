//! AWS IoT Core's throttling quotas, as the emulator applies them: which
//! figures ([`Quotas`], AWS's by default, each one overridable or lifted), and
//! the rules that hold a client to them, as small state machines on the
//! emulator's clock ([`crate::clock`]), so that their tests need no sleeps.
//!
//! | Quota | AWS | Excess, as AWS treats it |
//! |---|---|---|
//! | publishes per second per connection, inbound and outbound | 100 | an inbound PUBLISH is discarded: no PUBACK (MQTT 5: PUBACK 0x97); an outbound one waits |
//! | bytes per second per connection, read and written | 512 KiB | delayed: the connection reads (and writes) no more until the rate allows |
//! | CONNECTs per second per client id | 1 | refused: MQTT 5 CONNACK 0x97, MQTT 3.1.1 closed |
//! | unacknowledged inbound QoS 1 publishes (Receive Maximum) | 100 | MQTT 5: DISCONNECT 0x93, lifecycle `THROTTLED` |
//! | subscriptions per connection | 50 | SUBACK 0x97 (MQTT 3.1.1: 0x80) for the filters over it |
//! | stored messages replayed per second to a resumed persistent session | 10 | they wait |
//! | shadow requests in flight per connection | 10 | answered 429 on the request's `/rejected` topic |
//!
//! Sources and wording: docs/aws-iot-core-behaviour.md §1.7.

mod bucket;
mod connection;
mod connects;

use std::fmt;
use std::str::FromStr;

pub(crate) use bucket::TokenBucket;
pub(crate) use connection::ConnectionQuotas;
pub(crate) use connects::ConnectRate;

/// The quotas an emulator holds its clients to; `None` lifts one.
///
/// [`Quotas::aws`] (the default) has AWS IoT Core's figures; [`Quotas::off`]
/// lifts them all, for load tests and benchmarks.
///
/// ```
/// use iotcore_emulator::quotas::{Quota, Quotas};
/// let mut quotas = Quotas::aws();
/// assert_eq!(quotas.publishes_per_second, Some(100));
/// quotas.set(Quota::PublishesPerSecond, Some(200)).unwrap();
/// let lifted: iotcore_emulator::quotas::QuotaOverride = "replay-per-second=off".parse().unwrap();
/// quotas.apply(lifted).unwrap();
/// assert_eq!(quotas.replay_per_second, None);
/// assert_eq!(Quotas::off().connects_per_second, None);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Quotas {
    /// PUBLISH packets per second on one connection, received and sent
    /// together. AWS: 100 ("Publish requests per second per connection").
    pub publishes_per_second: Option<u64>,
    /// Bytes per second on one connection, read and written together. AWS:
    /// 512 KiB ("Throughput per second per connection").
    pub bytes_per_second: Option<u64>,
    /// CONNECT packets per second for one client id. AWS: 1 ("Connect requests
    /// per second per client ID").
    pub connects_per_second: Option<u64>,
    /// Unacknowledged QoS 1 publishes a client may have towards the emulator,
    /// announced as MQTT 5 Receive Maximum (at most 65,535). AWS: 100
    /// ("Maximum inbound unacknowledged QoS 1 publish requests").
    pub inbound_in_flight: Option<u64>,
    /// Subscriptions one connection's session may hold. AWS: 50
    /// ("Subscriptions per connection").
    pub subscriptions_per_connection: Option<u64>,
    /// Stored messages per second handed to a resumed persistent session.
    /// AWS: 10 ("sent to the client at a maximum rate of 10 messages per
    /// second").
    pub replay_per_second: Option<u64>,
    /// Shadow requests one connection may have unanswered; more get 429.
    /// AWS: 10.
    pub shadow_in_flight: Option<u64>,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas::aws()
    }
}

impl Quotas {
    /// AWS IoT Core's quotas.
    pub fn aws() -> Quotas {
        Quotas {
            publishes_per_second: Some(100),
            bytes_per_second: Some(512 * 1024),
            connects_per_second: Some(1),
            inbound_in_flight: Some(100),
            subscriptions_per_connection: Some(50),
            replay_per_second: Some(10),
            shadow_in_flight: Some(10),
        }
    }

    /// No quota at all.
    pub fn off() -> Quotas {
        Quotas {
            publishes_per_second: None,
            bytes_per_second: None,
            connects_per_second: None,
            inbound_in_flight: None,
            subscriptions_per_connection: None,
            replay_per_second: None,
            shadow_in_flight: None,
        }
    }

    /// These quotas without their rates (publishes, bytes, CONNECTs and
    /// replayed messages per second); the counts (in flight, subscriptions)
    /// stay. For tests that connect and publish faster than AWS allows but
    /// rely on its other quotas.
    pub fn without_rates(self) -> Quotas {
        Quotas {
            publishes_per_second: None,
            bytes_per_second: None,
            connects_per_second: None,
            replay_per_second: None,
            ..self
        }
    }

    fn slot(&mut self, quota: Quota) -> &mut Option<u64> {
        match quota {
            Quota::PublishesPerSecond => &mut self.publishes_per_second,
            Quota::BytesPerSecond => &mut self.bytes_per_second,
            Quota::ConnectsPerSecond => &mut self.connects_per_second,
            Quota::InboundInFlight => &mut self.inbound_in_flight,
            Quota::SubscriptionsPerConnection => &mut self.subscriptions_per_connection,
            Quota::ReplayPerSecond => &mut self.replay_per_second,
            Quota::ShadowInFlight => &mut self.shadow_in_flight,
        }
    }

    /// Sets one quota's figure (`None`: lifted).
    ///
    /// # Errors
    ///
    /// A figure of 0 (lift the quota instead), or an inbound in-flight figure
    /// above 65,535 (MQTT's Receive Maximum is 16 bits).
    pub fn set(&mut self, quota: Quota, value: Option<u64>) -> Result<(), QuotaError> {
        match value {
            Some(0) => return Err(QuotaError::Zero(quota)),
            Some(v) if quota == Quota::InboundInFlight && v > u64::from(u16::MAX) => {
                return Err(QuotaError::TooLarge(quota, u64::from(u16::MAX)));
            }
            _ => {}
        }
        *self.slot(quota) = value;
        Ok(())
    }

    /// Applies an override (what `--quota NAME=VALUE` says).
    ///
    /// # Errors
    ///
    /// As [`Quotas::set`].
    pub fn apply(&mut self, change: QuotaOverride) -> Result<(), QuotaError> {
        self.set(change.quota, change.value)
    }

    /// The Receive Maximum announced to clients.
    pub(crate) fn receive_maximum(&self) -> u16 {
        self.inbound_in_flight
            .map_or(u16::MAX, |v| u16::try_from(v.max(1)).unwrap_or(u16::MAX))
    }

    /// The most subscriptions a session may hold.
    pub(crate) fn max_subscriptions(&self) -> usize {
        self.subscriptions_per_connection
            .map_or(usize::MAX, |v| usize::try_from(v).unwrap_or(usize::MAX))
    }

    /// The most shadow requests one connection may have unanswered.
    pub(crate) fn max_shadow_in_flight(&self) -> usize {
        self.shadow_in_flight.map_or(usize::MAX, |v| {
            usize::try_from(v.max(1)).unwrap_or(usize::MAX)
        })
    }
}

/// One of the [`Quotas`], by the name the command line gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Quota {
    /// `publish-per-second`: [`Quotas::publishes_per_second`].
    PublishesPerSecond,
    /// `bytes-per-second`: [`Quotas::bytes_per_second`].
    BytesPerSecond,
    /// `connect-per-second`: [`Quotas::connects_per_second`].
    ConnectsPerSecond,
    /// `inbound-in-flight`: [`Quotas::inbound_in_flight`].
    InboundInFlight,
    /// `subscriptions-per-connection`: [`Quotas::subscriptions_per_connection`].
    SubscriptionsPerConnection,
    /// `replay-per-second`: [`Quotas::replay_per_second`].
    ReplayPerSecond,
    /// `shadow-in-flight`: [`Quotas::shadow_in_flight`].
    ShadowInFlight,
}

impl Quota {
    /// Every quota, in the order of [`Quotas`]' fields.
    pub const ALL: [Quota; 7] = [
        Quota::PublishesPerSecond,
        Quota::BytesPerSecond,
        Quota::ConnectsPerSecond,
        Quota::InboundInFlight,
        Quota::SubscriptionsPerConnection,
        Quota::ReplayPerSecond,
        Quota::ShadowInFlight,
    ];

    /// Its command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Quota::PublishesPerSecond => "publish-per-second",
            Quota::BytesPerSecond => "bytes-per-second",
            Quota::ConnectsPerSecond => "connect-per-second",
            Quota::InboundInFlight => "inbound-in-flight",
            Quota::SubscriptionsPerConnection => "subscriptions-per-connection",
            Quota::ReplayPerSecond => "replay-per-second",
            Quota::ShadowInFlight => "shadow-in-flight",
        }
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Quota {
    type Err = QuotaError;

    fn from_str(name: &str) -> Result<Quota, QuotaError> {
        Quota::ALL
            .into_iter()
            .find(|q| q.name() == name)
            .ok_or_else(|| QuotaError::UnknownName(name.to_owned()))
    }
}

/// A change to one quota: `NAME=VALUE`, VALUE a positive whole number or
/// `off` (e.g. `publish-per-second=200`, `connect-per-second=off`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaOverride {
    /// Which quota.
    pub quota: Quota,
    /// Its new figure; `None` lifts it.
    pub value: Option<u64>,
}

impl FromStr for QuotaOverride {
    type Err = QuotaError;

    fn from_str(text: &str) -> Result<QuotaOverride, QuotaError> {
        let (name, value) = text
            .split_once('=')
            .ok_or_else(|| QuotaError::Syntax(text.to_owned()))?;
        let quota: Quota = name.trim().parse()?;
        let value = match value.trim() {
            "off" => None,
            number => Some(
                number
                    .replace('_', "")
                    .parse::<u64>()
                    .map_err(|_| QuotaError::Syntax(text.to_owned()))?,
            ),
        };
        if value == Some(0) {
            return Err(QuotaError::Zero(quota));
        }
        Ok(QuotaOverride { quota, value })
    }
}

/// A quota setting that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuotaError {
    /// Not `NAME=VALUE` with VALUE a whole number or `off`.
    #[error("'{0}' is not NAME=VALUE (VALUE a whole number or 'off'), e.g. publish-per-second=200")]
    Syntax(String),
    /// No quota has this name.
    #[error(
        "no quota is named '{0}'; the quotas are: publish-per-second, bytes-per-second, connect-per-second, inbound-in-flight, subscriptions-per-connection, replay-per-second, shadow-in-flight"
    )]
    UnknownName(String),
    /// A figure of 0.
    #[error("{0}=0 would refuse everything; use {0}=off to lift the quota")]
    Zero(Quota),
    /// A figure above what the protocol can carry.
    #[error("{0} is at most {1}")]
    TooLarge(Quota, u64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse_by_name_with_a_number_or_off() {
        let change: QuotaOverride = "publish-per-second=200".parse().unwrap();
        assert_eq!(change.quota, Quota::PublishesPerSecond);
        assert_eq!(change.value, Some(200));
        let change: QuotaOverride = "bytes-per-second=1_048_576".parse().unwrap();
        assert_eq!(change.value, Some(1_048_576));
        let change: QuotaOverride = "connect-per-second=off".parse().unwrap();
        assert_eq!(change.value, None);
        for quota in Quota::ALL {
            assert_eq!(quota.name().parse::<Quota>(), Ok(quota));
        }
    }

    #[test]
    fn bad_overrides_say_what_is_wrong() {
        assert!(matches!(
            "publish-per-second".parse::<QuotaOverride>(),
            Err(QuotaError::Syntax(_))
        ));
        assert!(matches!(
            "publish-per-second=fast".parse::<QuotaOverride>(),
            Err(QuotaError::Syntax(_))
        ));
        assert!(matches!(
            "publishes=1".parse::<QuotaOverride>(),
            Err(QuotaError::UnknownName(_))
        ));
        assert_eq!(
            "replay-per-second=0".parse::<QuotaOverride>(),
            Err(QuotaError::Zero(Quota::ReplayPerSecond))
        );
        let mut quotas = Quotas::aws();
        assert_eq!(
            quotas.set(Quota::InboundInFlight, Some(70_000)),
            Err(QuotaError::TooLarge(Quota::InboundInFlight, 65_535))
        );
        assert_eq!(quotas, Quotas::aws(), "nothing changed");
    }

    #[test]
    fn off_lifts_every_quota_and_aws_has_awss_figures() {
        let off = Quotas::off();
        assert_eq!(off.receive_maximum(), u16::MAX);
        assert_eq!(off.max_subscriptions(), usize::MAX);
        assert_eq!(off.max_shadow_in_flight(), usize::MAX);
        let aws = Quotas::default();
        assert_eq!(aws.receive_maximum(), 100);
        assert_eq!(aws.max_subscriptions(), 50);
        assert_eq!(aws.max_shadow_in_flight(), 10);
        assert_eq!(aws.bytes_per_second, Some(524_288));
        let counts = Quotas::aws().without_rates();
        assert_eq!(counts.publishes_per_second, None);
        assert_eq!(counts.connects_per_second, None);
        assert_eq!(counts.subscriptions_per_connection, Some(50));
        assert_eq!(counts.shadow_in_flight, Some(10));
        let mut all_set = Quotas::off();
        for quota in Quota::ALL {
            all_set.set(quota, Some(7)).unwrap();
        }
        assert!(!format!("{all_set:?}").contains("None"), "{all_set:?}");
    }
}
