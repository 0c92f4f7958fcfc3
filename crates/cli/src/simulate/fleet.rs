//! The fleet: devices started at the ramp rate, run until the stop signal,
//! then closed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

use super::device::{self, Plan};
use super::identities::Identity;
use super::stats::Stats;

/// Starts one device per identity, `ramp` per second, and returns when
/// `stop` has turned true and every device has closed its connection.
pub async fn run(
    identities: Vec<Identity>,
    ramp: f64,
    plan: Arc<Plan>,
    stats: Arc<Stats>,
    mut stop: watch::Receiver<bool>,
) {
    let mut devices = JoinSet::new();
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / ramp));
    // Behind schedule (a busy machine), catch up: the rate is per second overall.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    for (index, identity) in identities.into_iter().enumerate() {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.wait_for(|stopped| *stopped) => break,
        }
        devices.spawn(device::run(
            index,
            identity,
            plan.clone(),
            stats.clone(),
            stop.clone(),
        ));
    }
    // Devices return after the stop signal, once closed.
    while let Some(joined) = devices.join_next().await {
        if let Err(e) = joined
            && e.is_panic()
        {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}
