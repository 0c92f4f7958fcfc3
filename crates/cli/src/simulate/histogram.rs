//! A compact log-linear latency histogram: 16 linear buckets per power of two,
//! so any percentile is within 1/16 (6.25 %) of the true value, in a fixed
//! array of a few hundred counters whatever the number of samples.

use std::time::Duration;

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
