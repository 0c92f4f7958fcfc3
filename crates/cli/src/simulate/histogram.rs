//! A compact log-linear latency histogram: 16 linear buckets per power of two,
//! so any percentile is within 1/16 (6.25 %) of the true value, in a fixed
//! array of a few hundred counters whatever the number of samples.
//!
//! Histograms merge exactly ([`Histogram::merge`]): the shards of a fleet
//! write theirs as [`Buckets`] in their JSON summaries, and the merged
//! histogram's percentiles are those of one histogram fed every sample.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Linear sub-buckets per power of two (a power of two itself).
const SUB_BUCKETS: u64 = 16;
/// log2 of [`SUB_BUCKETS`].
const SUB_BITS: u32 = SUB_BUCKETS.trailing_zeros();
/// Enough buckets for every `u64` microsecond value.
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB_BUCKETS as usize;

/// Latencies in microseconds.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: Box::new([0; BUCKETS]),
            total: 0,
            max: 0,
        }
    }
}

impl Histogram {
    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.counts[bucket_of(micros)] += 1;
        self.total += 1;
        self.max = self.max.max(micros);
    }

    /// How many samples were recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest sample, exactly.
    pub fn max(&self) -> Option<Duration> {
        (self.total > 0).then(|| Duration::from_micros(self.max))
    }

    /// The value below which `quantile` (0.0–1.0) of the samples lie: the
    /// upper bound of the bucket that holds it, never above the maximum.
    pub fn quantile(&self, quantile: f64) -> Option<Duration> {
        if self.total == 0 {
            return None;
        }
        // The rank of the sample asked for, 1-based: the ceiling of q × n.
        let rank = ((quantile.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(Duration::from_micros(upper_bound(index).min(self.max)));
            }
        }
        Some(Duration::from_micros(self.max))
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// The non-empty buckets and the maximum, for a JSON summary.
    pub fn to_buckets(&self) -> Buckets {
        Buckets {
            max_us: self.max().map(|_| self.max),
            buckets: self
                .counts
                .iter()
                .enumerate()
                .filter(|(_, count)| **count > 0)
                .map(|(index, count)| (upper_bound(index), *count))
                .collect(),
        }
    }

    /// The histogram that [`Histogram::to_buckets`] wrote, checked: every
    /// bound must be one of this scheme's bucket bounds.
    pub fn from_buckets(buckets: &Buckets) -> Result<Histogram, String> {
        let mut histogram = Histogram::default();
        for &(bound, count) in &buckets.buckets {
            let index = bucket_of(bound);
            if upper_bound(index) != bound {
                return Err(format!(
                    "{bound} µs is not a bucket bound of this histogram (log-linear,                      {SUB_BUCKETS} buckets per power of two)"
                ));
            }
            histogram.counts[index] += count;
            histogram.total += count;
        }
        match (histogram.total, buckets.max_us) {
            (0, None) => Ok(histogram),
            (0, Some(_)) => Err("a maximum without samples".to_owned()),
            (_, None) => Err("samples without a maximum".to_owned()),
            (_, Some(max)) => {
                // The maximum lies in the highest non-empty bucket.
                let highest = histogram.counts.iter().rposition(|&c| c > 0);
                if highest != Some(bucket_of(max)) {
                    return Err(format!("the maximum {max} µs is not in the highest bucket"));
                }
                histogram.max = max;
                Ok(histogram)
            }
        }
    }
}

/// A histogram as a JSON summary carries it: its non-empty buckets as
/// `[upper bound in µs, count]` pairs, and its exact maximum.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Buckets {
    /// The largest sample in microseconds; `null` when there is none.
    pub max_us: Option<u64>,
    /// `(upper bound in µs, samples)` of each non-empty bucket, in order.
    pub buckets: Vec<(u64, u64)>,
}

/// The bucket holding `value`: values below [`SUB_BUCKETS`] have their own;
/// above, each power of two `[2^e, 2^(e+1))` is split in [`SUB_BUCKETS`].
fn bucket_of(value: u64) -> usize {
    if value < SUB_BUCKETS {
        return value as usize;
    }
    let exponent = 63 - value.leading_zeros();
    let sub = (value >> (exponent - SUB_BITS)) & (SUB_BUCKETS - 1);
    ((exponent - SUB_BITS + 1) as u64 * SUB_BUCKETS + sub) as usize
}

/// The largest value that falls in bucket `index`.
fn upper_bound(index: usize) -> u64 {
    let index = index as u64;
    if index < SUB_BUCKETS {
        return index;
    }
    let exponent = (index / SUB_BUCKETS) as u32 + SUB_BITS - 1;
    let sub = index % SUB_BUCKETS;
    let width = 1u64 << (exponent - SUB_BITS);
    let low = (1u64 << exponent) + sub * width;
    low.saturating_add(width - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_lands_in_a_bucket_whose_bounds_hold_it() {
        for value in (0..5000).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let index = bucket_of(value);
            assert!(index < BUCKETS, "{value} -> {index}");
            assert!(upper_bound(index) >= value, "{value} above its bucket");
            if index > 0 {
                assert!(
                    upper_bound(index - 1) < value,
                    "{value} in too high a bucket"
                );
            }
        }
    }

    #[test]
    fn percentiles_are_within_one_sixteenth_of_the_true_value() {
        let mut histogram = Histogram::default();
        for micros in 1..=10_000 {
            histogram.record(Duration::from_micros(micros));
        }
        for (q, exact) in [(0.5, 5_000.0), (0.9, 9_000.0), (0.99, 9_900.0)] {
            let got = histogram.quantile(q).unwrap().as_micros() as f64;
            assert!(
                (got - exact).abs() / exact <= 1.0 / 16.0,
                "q{q}: {got} vs {exact}"
            );
            assert!(got >= exact, "q{q}: {got} below the true {exact}");
        }
        assert_eq!(histogram.quantile(1.0), Some(Duration::from_micros(10_000)));
        assert_eq!(histogram.max(), Some(Duration::from_micros(10_000)));
        assert_eq!(histogram.count(), 10_000);
    }

    #[test]
    fn merged_histograms_have_the_percentiles_of_one_fed_everything() {
        let mut rng_state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            // xorshift: spread samples over several powers of two.
            rng_state ^= rng_state << 13;
            rng_state ^= rng_state >> 7;
            rng_state ^= rng_state << 17;
            rng_state % 200_000
        };
        let mut whole = Histogram::default();
        let mut parts = [
            Histogram::default(),
            Histogram::default(),
            Histogram::default(),
        ];
        for i in 0..30_000 {
            let sample = Duration::from_micros(next());
            whole.record(sample);
            parts[i % 3].record(sample);
        }
        let mut merged = Histogram::default();
        for part in &parts {
            // Through the JSON form, as `simulate merge` reads them.
            let json = serde_json::to_string(&part.to_buckets()).unwrap();
            let read = Histogram::from_buckets(&serde_json::from_str(&json).unwrap()).unwrap();
            merged.merge(&read);
        }
        assert_eq!(merged.count(), whole.count());
        assert_eq!(merged.max(), whole.max());
        for q in [0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(merged.quantile(q), whole.quantile(q), "q{q}");
        }
        assert_eq!(merged.to_buckets(), whole.to_buckets());
        // Merging changes the percentiles: the parts' differ from the whole's.
        assert_ne!(parts[0].to_buckets(), whole.to_buckets());
    }

    #[test]
    fn buckets_from_another_scheme_are_refused() {
        let read = |max_us, buckets| Histogram::from_buckets(&Buckets { max_us, buckets });
        let refused = |max_us, buckets| read(max_us, buckets).err().unwrap();
        assert!(refused(Some(100), vec![(100, 1)]).contains("not a bucket bound"));
        assert!(refused(None, vec![(3, 1)]).contains("without a maximum"));
        assert!(refused(Some(3), vec![]).contains("without samples"));
        assert!(refused(Some(9_000), vec![(3, 1)]).contains("highest bucket"));
        let empty = read(None, vec![]).ok().unwrap();
        assert_eq!(empty.count(), 0);
    }

    #[test]
    fn an_empty_histogram_has_no_percentiles_and_a_median_is_its_bucket_bound() {
        let mut a = Histogram::default();
        assert_eq!(a.quantile(0.5), None);
        assert_eq!(a.max(), None);
        a.record(Duration::from_millis(3));
        a.record(Duration::from_millis(7));
        assert_eq!(a.count(), 2);
        assert_eq!(a.max(), Some(Duration::from_millis(7)));
        assert_eq!(a.quantile(0.5), Some(Duration::from_micros(3071)));
    }
}
