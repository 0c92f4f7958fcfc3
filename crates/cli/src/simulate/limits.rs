//! What a fleet needs of this machine, checked before it starts: a file
//! descriptor per socket, and an ephemeral port per connection from each
//! source address to the one broker address and port.
//!
//! Linux picks a client's port from `net.ipv4.ip_local_port_range`
//! (32768–60999 by default: 28,232 ports). Connections to one
//! (address, port) from one source address need distinct ports, so one
//! source address reaches at most that many devices to one endpoint. Load
//! tools spread devices over several source addresses; on loopback every
//! address of 127.0.0.0/8 is one, and `--source-addresses N` uses
//! 127.0.0.1 … 127.0.0.N.

use std::net::{IpAddr, Ipv4Addr};

/// Descriptors kept free for everything but the devices' sockets.
pub const SPARE_DESCRIPTORS: u64 = 64;
/// The most loopback source addresses: 127.0.0.1 … 127.0.0.254.
pub const MAX_SOURCE_ADDRESSES: u8 = 254;

/// What the run asks for.
#[derive(Clone, Copy, Debug)]
pub struct Need {
    /// Devices this process runs.
    pub devices: u64,
    /// Whether the emulator runs in this process (two sockets per device).
    pub embedded: bool,
    /// Source addresses the devices are spread over.
    pub source_addresses: u64,
}

/// What the machine gives.
#[derive(Clone, Copy, Debug)]
pub struct Machine {
    /// Soft and hard limits on open files (`ulimit -n`, `ulimit -Hn`).
    pub open_files: Option<(u64, u64)>,
    /// `net.ipv4.ip_local_port_range`.
    pub port_range: Option<(u16, u16)>,
}

impl Machine {
    /// This process's limits, read from /proc (`None` where unreadable: not
    /// checked).
    pub fn current() -> Machine {
        Machine {
            open_files: open_files_limits(),
            port_range: port_range(),
        }
    }
}

/// A limit the fleet does not fit in, and what to change.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LimitError {
    /// Not enough file descriptors under the soft limit, which can be raised.
    #[error(
        "{devices} devices need about {needed} open files ({per_device} per device{why}), but the \
         limit is {soft}: raise it with `ulimit -n {needed}` (up to the hard limit, {hard}){hint}"
    )]
    RaiseSoftLimit {
        /// Devices asked for.
        devices: u64,
        /// Descriptors needed.
        needed: u64,
        /// Sockets per device in this process.
        per_device: u64,
        /// Why that many.
        why: &'static str,
        /// The soft limit.
        soft: u64,
        /// The hard limit.
        hard: u64,
        /// What else helps.
        hint: &'static str,
    },
    /// Not enough file descriptors even under the hard limit.
    #[error(
        "{devices} devices need about {needed} open files ({per_device} per device{why}), more \
         than the hard limit of {hard} (`ulimit -Hn`), which only root raises (limits.conf, \
         systemd's LimitNOFILE=, a container's --ulimit nofile=): run at most {fits} devices per \
         process, with --shard K/N in several processes{hint}"
    )]
    OverHardLimit {
        /// Devices asked for.
        devices: u64,
        /// Descriptors needed.
        needed: u64,
        /// Sockets per device in this process.
        per_device: u64,
        /// Why that many.
        why: &'static str,
        /// The hard limit.
        hard: u64,
        /// Devices that fit under it.
        fits: u64,
        /// What else helps.
        hint: &'static str,
    },
    /// More connections per source address than ephemeral ports.
    #[error(
        "{devices} devices from {sources} source address{plural} need {per_source} ephemeral \
         ports per address to reach the endpoint's one address and port, but \
         net.ipv4.ip_local_port_range ({low}–{high}) has {ports}: {fix}"
    )]
    TooFewPorts {
        /// Devices asked for.
        devices: u64,
        /// Source addresses.
        sources: u64,
        /// "es" or "".
        plural: &'static str,
        /// Connections from the busiest source address.
        per_source: u64,
        /// The range's bounds.
        low: u16,
        /// The range's upper bound.
        high: u16,
        /// Ports in the range.
        ports: u64,
        /// What to change.
        fix: String,
    },
}

/// Checks `need` against `machine`: descriptors first, then ports.
pub fn check(need: Need, machine: Machine) -> Result<(), LimitError> {
    check_descriptors(need, machine)?;
    check_ports(need, machine)
}

fn check_descriptors(need: Need, machine: Machine) -> Result<(), LimitError> {
    let Some((soft, hard)) = machine.open_files else {
        return Ok(());
    };
    let (per_device, why, hint) = if need.embedded {
        (
            2,
            ": its socket and the embedded emulator's",
            "; or run `iotcore emulator` separately and pass --endpoint, which halves the need",
        )
    } else {
        (1, "", "")
    };
    let needed = need.devices * per_device + SPARE_DESCRIPTORS;
    if needed <= soft {
        return Ok(());
    }
    if needed <= hard {
        return Err(LimitError::RaiseSoftLimit {
            devices: need.devices,
            needed,
            per_device,
            why,
            soft,
            hard,
            hint,
        });
    }
    Err(LimitError::OverHardLimit {
        devices: need.devices,
        needed,
        per_device,
        why,
        hard,
        fits: hard.saturating_sub(SPARE_DESCRIPTORS) / per_device,
        hint,
    })
}

fn check_ports(need: Need, machine: Machine) -> Result<(), LimitError> {
    let Some((low, high)) = machine.port_range else {
        return Ok(());
    };
    let ports = u64::from(high.saturating_sub(low)) + 1;
    let sources = need.source_addresses.max(1);
    let per_source = need.devices.div_ceil(sources);
    if per_source <= ports {
        return Ok(());
    }
    let enough = need.devices.div_ceil(ports);
    let fix = if enough <= u64::from(MAX_SOURCE_ADDRESSES) {
        format!(
            "use --source-addresses {enough} (loopback endpoints: 127.0.0.1 … 127.0.0.{enough}), \
             widen the range (`sysctl net.ipv4.ip_local_port_range=\"1024 65535\"`), or run \
             shards (--shard K/N) from several machines"
        )
    } else {
        "widen the range (`sysctl net.ipv4.ip_local_port_range=\"1024 65535\"`) or run shards \
         (--shard K/N) from several machines"
            .to_owned()
    };
    Err(LimitError::TooFewPorts {
        devices: need.devices,
        sources,
        plural: if sources == 1 { "" } else { "es" },
        per_source,
        low,
        high,
        ports,
        fix,
    })
}

/// The source address of device `index` when the fleet spreads over `count`
/// loopback addresses: 127.0.0.1 … 127.0.0.`count` in turn; `None` (the
/// kernel's choice) for one.
pub fn source_address(index: usize, count: u8) -> Option<IpAddr> {
    if count <= 1 {
        return None;
    }
    let last = (index % usize::from(count)) as u8 + 1;
    Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
}

/// The soft and hard limits on open file descriptors, from /proc/self/limits.
pub fn open_files_limits() -> Option<(u64, u64)> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut values = line["Max open files".len()..]
        .split_whitespace()
        .map(|value| match value {
            "unlimited" => Some(u64::MAX),
            n => n.parse().ok(),
        });
    Some((values.next()??, values.next()??))
}

/// `net.ipv4.ip_local_port_range`: the ports Linux gives outgoing connections.
fn port_range() -> Option<(u16, u16)> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut bounds = text.split_whitespace().map(str::parse::<u16>);
    match (bounds.next()?, bounds.next()?) {
        (Ok(low), Ok(high)) if low <= high => Some((low, high)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINUX_DEFAULT: Machine = Machine {
        open_files: Some((20_000, 20_000)),
        port_range: Some((32_768, 60_999)),
    };

    fn need(devices: u64, embedded: bool, source_addresses: u64) -> Need {
        Need {
            devices,
            embedded,
            source_addresses,
        }
    }

    fn roomy(port_range: (u16, u16)) -> Machine {
        Machine {
            open_files: Some((1 << 20, 1 << 20)),
            port_range: Some(port_range),
        }
    }

    #[test]
    fn descriptors_count_both_ends_when_the_emulator_is_embedded() {
        assert_eq!(check(need(9_968, true, 1), LINUX_DEFAULT), Ok(()));
        let error = check(need(9_969, true, 1), LINUX_DEFAULT).unwrap_err();
        assert!(
            matches!(
                error,
                LimitError::OverHardLimit {
                    needed: 20_002,
                    fits: 9_968,
                    ..
                }
            ),
            "{error:?}"
        );
        assert_eq!(check(need(19_936, false, 1), LINUX_DEFAULT), Ok(()));
    }

    #[test]
    fn a_soft_limit_under_the_hard_one_says_how_far_to_raise_it() {
        let machine = Machine {
            open_files: Some((1_024, 200_000)),
            ..LINUX_DEFAULT
        };
        let message = check(need(100_000, false, 4), machine)
            .unwrap_err()
            .to_string();
        assert!(message.contains("`ulimit -n 100064`"), "{message}");
        assert!(message.contains("hard limit, 200000"), "{message}");
    }

    #[test]
    fn a_hard_limit_too_low_says_who_raises_it_and_how_many_fit() {
        let message = check(need(100_000, false, 4), LINUX_DEFAULT)
            .unwrap_err()
            .to_string();
        assert!(message.contains("hard limit of 20000"), "{message}");
        assert!(message.contains("at most 19936 devices"), "{message}");
        assert!(message.contains("--shard"), "{message}");
    }

    #[test]
    fn one_source_address_reaches_as_many_devices_as_the_range_has_ports() {
        let range = (32_768, 60_999); // 28,232 ports
        assert_eq!(check(need(28_232, false, 1), roomy(range)), Ok(()));
        let error = check(need(100_000, false, 1), roomy(range)).unwrap_err();
        assert_eq!(
            error,
            LimitError::TooFewPorts {
                devices: 100_000,
                sources: 1,
                plural: "",
                per_source: 100_000,
                low: 32_768,
                high: 60_999,
                ports: 28_232,
                fix: "use --source-addresses 4 (loopback endpoints: 127.0.0.1 … 127.0.0.4), \
                      widen the range (`sysctl net.ipv4.ip_local_port_range=\"1024 65535\"`), \
                      or run shards (--shard K/N) from several machines"
                    .to_owned(),
            }
        );
        // Three addresses give 33,334 connections to each: still too many.
        assert!(check(need(100_000, false, 3), roomy(range)).is_err());
        assert_eq!(check(need(100_000, false, 4), roomy(range)), Ok(()));
    }

    #[test]
    fn beyond_the_loopback_addresses_only_a_wider_range_or_shards_help() {
        let message = check(need(300_000, false, 1), roomy((60_000, 60_999)))
            .unwrap_err()
            .to_string();
        assert!(!message.contains("--source-addresses"), "{message}");
        assert!(message.contains("ip_local_port_range"), "{message}");
    }

    #[test]
    fn unreadable_limits_are_not_checked() {
        let unknown = Machine {
            open_files: None,
            port_range: None,
        };
        assert_eq!(check(need(1_000_000, true, 1), unknown), Ok(()));
    }

    #[test]
    fn devices_take_the_loopback_source_addresses_in_turn() {
        assert_eq!(source_address(0, 1), None);
        assert_eq!(source_address(5, 0), None);
        let addresses: Vec<_> = (0..5).map(|i| source_address(i, 3).unwrap()).collect();
        assert_eq!(
            addresses,
            [
                "127.0.0.1",
                "127.0.0.2",
                "127.0.0.3",
                "127.0.0.1",
                "127.0.0.2"
            ]
            .map(|a| a.parse::<IpAddr>().unwrap())
        );
        assert_eq!(
            source_address(253, MAX_SOURCE_ADDRESSES),
            Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 254)))
        );
    }

    #[test]
    fn this_process_reads_its_limits() {
        let machine = Machine::current();
        let (soft, hard) = machine.open_files.unwrap();
        assert!(soft > 0 && soft <= hard);
        let (low, high) = machine.port_range.unwrap();
        assert!(low <= high);
    }
}
