//! `--shard K/N`: which slice of the fleet this process runs, so that N
//! processes (machines, pods) together run every device of `--devices` once.
//!
//! Shard K of N runs the contiguous devices `(K-1)·D/N .. K·D/N` (rounded
//! down) of a fleet of D: the slices follow one another, cover `0..D`
//! exactly, and differ in size by at most one, whatever N divides.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Shard `index` of `count`, 1-based as the command line writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Which shard, 1 to `count`.
    pub index: u32,
    /// How many shards the fleet is split into.
    pub count: u32,
}

impl Shard {
    /// The whole fleet in one process.
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };

    /// The devices (0-based indices) this shard runs of a fleet of `devices`.
    pub fn range(self, devices: usize) -> Range<usize> {
        let bound = |k: u32| (devices as u128 * u128::from(k) / u128::from(self.count)) as usize;
        bound(self.index - 1)..bound(self.index)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let malformed = || {
            format!(
                "{text:?} is not a shard: give K/N, shard K of N with 1 ≤ K ≤ N (e.g. 2/8 for \
                 the second of eight)"
            )
        };
        let (k, n) = text.split_once('/').ok_or_else(malformed)?;
        let parse = |s: &str| s.trim().parse::<u32>().map_err(|_| malformed());
        let (index, count) = (parse(k)?, parse(n)?);
        if count == 0 || index == 0 {
            return Err(malformed());
        }
        if index > count {
            return Err(format!(
                "shard {index}/{count}: K is above N; the shards of {count} are 1/{count} to \
                 {count}/{count}"
            ));
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_device_exactly_once_in_order() {
        for devices in 0..=64 {
            for count in 1..=24 {
                let mut next = 0;
                let mut sizes = Vec::new();
                for index in 1..=count {
                    let range = Shard { index, count }.range(devices);
                    assert_eq!(range.start, next, "{index}/{count} of {devices}");
                    next = range.end;
                    sizes.push(range.len());
                }
                assert_eq!(next, devices, "{count} shards of {devices}");
                let (min, max) = (sizes.iter().min(), sizes.iter().max());
                assert!(max.unwrap() - min.unwrap() <= 1, "{sizes:?}");
            }
        }
    }

    #[test]
    fn large_fleets_split_without_overflow() {
        let devices = 1_000_000;
        let last = Shard { index: 7, count: 7 };
        assert_eq!(last.range(devices).end, devices);
        assert_eq!(Shard::WHOLE.range(devices), 0..devices);
        assert_eq!(Shard { index: 1, count: 3 }.range(100_000), 0..33_333);
    }

    #[test]
    fn shards_parse_and_malformed_ones_are_refused() {
        assert_eq!("2/8".parse(), Ok(Shard { index: 2, count: 8 }));
        assert_eq!("1/1".parse(), Ok(Shard::WHOLE));
        assert_eq!(Shard { index: 3, count: 4 }.to_string(), "3/4");
        for bad in ["", "3", "0/4", "1/0", "a/b", "2/3/4", "-1/2"] {
            let err = bad.parse::<Shard>().unwrap_err();
            assert!(err.contains("not a shard"), "{bad}: {err}");
        }
        assert!("5/4".parse::<Shard>().unwrap_err().contains("K is above N"));
    }
}
