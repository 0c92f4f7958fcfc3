//! The set of subscriptions the server has granted, kept across connections.

use std::collections::BTreeMap;

use crate::Properties;
use crate::packet::{Subscription, SubscriptionOptions};

/// AWS IoT Core accepts at most 8 topic filters per SUBSCRIBE.
pub(super) const MAX_FILTERS_PER_SUBSCRIBE: usize = 8;

/// An active subscription: the options and properties it was requested with.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Active {
    options: SubscriptionOptions,
    /// Boxed, and `None` when empty (MQTT 3.1.1, most MQTT 5 subscriptions):
    /// a `Properties` is 344 bytes, and a map node holds room for 11 entries,
    /// which made two subscriptions cost a client about 4 KiB.
    properties: Option<Box<Properties>>,
}

/// Active subscriptions by topic filter.
#[derive(Debug, Default)]
pub(super) struct Subscriptions {
    active: BTreeMap<String, Active>,
}

impl Subscriptions {
    /// Records a granted subscription (replacing an earlier one on the same filter).
    pub(super) fn insert(&mut self, subscription: &Subscription, properties: &Properties) {
        self.active.insert(
            subscription.filter.clone(),
            Active {
                options: subscription.options,
                properties: (*properties != Properties::default())
                    .then(|| Box::new(properties.clone())),
            },
        );
    }

    /// Forgets the subscription on `filter`.
    pub(super) fn remove(&mut self, filter: &str) {
        self.active.remove(filter);
    }

    /// The active subscriptions, by filter.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&str, &SubscriptionOptions)> {
        self.active.iter().map(|(f, a)| (f.as_str(), &a.options))
    }

    /// The active subscriptions grouped for re-sending: at most
    /// [`MAX_FILTERS_PER_SUBSCRIBE`] per SUBSCRIBE, and only filters
    /// subscribed with equal properties (subscription identifier, user
    /// properties) share one.
    pub(super) fn restore_batches(&self) -> Vec<(Vec<Subscription>, Properties)> {
        let mut batches: Vec<(Vec<Subscription>, Properties)> = Vec::new();
        let empty = Properties::default();
        for (filter, active) in &self.active {
            let properties = active.properties.as_deref().unwrap_or(&empty);
            let subscription = Subscription {
                filter: filter.clone(),
                options: active.options,
            };
            match batches.last_mut() {
                Some((subs, props))
                    if subs.len() < MAX_FILTERS_PER_SUBSCRIBE && props == properties =>
                {
                    subs.push(subscription);
                }
                _ => batches.push((vec![subscription], properties.clone())),
            }
        }
        batches
    }
}
