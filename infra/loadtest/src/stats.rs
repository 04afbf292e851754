//! Latency samples and their percentiles (nearest rank), in milliseconds.

use std::time::Duration;

/// A set of latency samples, summarised by nearest-rank percentiles.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    sorted: Vec<Duration>,
}

impl Samples {
    pub fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Self { sorted: samples }
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The smallest sample with at least `p` percent of all samples at or below it
    /// (nearest rank); `None` without samples. `p` is clamped to 0..=100.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        let n = self.sorted.len();
        if n == 0 {
            return None;
        }
        let rank = ((p.clamp(0.0, 100.0) / 100.0) * n as f64).ceil() as usize;
        Some(self.sorted[rank.clamp(1, n) - 1])
    }

    pub fn max(&self) -> Option<Duration> {
        self.sorted.last().copied()
    }

    /// [`Samples::percentile`] in milliseconds; 0 without samples.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        self.percentile(p).map_or(0.0, millis)
    }

    /// [`Samples::max`] in milliseconds; 0 without samples.
    pub fn max_ms(&self) -> f64 {
        self.max().map_or(0.0, millis)
    }
}

pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Samples {
        Samples::new(values.iter().map(|&v| Duration::from_millis(v)).collect())
    }

    /// Nearest rank: p50 of 1..=100 is 50, p90 is 90, p99 is 99, p100 is the max.
    #[test]
    fn nearest_rank_percentiles_of_one_to_a_hundred() {
        let s = ms(&(1..=100).rev().collect::<Vec<_>>());
        assert_eq!(s.percentile_ms(50.0), 50.0);
        assert_eq!(s.percentile_ms(90.0), 90.0);
        assert_eq!(s.percentile_ms(99.0), 99.0);
        assert_eq!(s.percentile_ms(100.0), 100.0);
        assert_eq!(s.max_ms(), 100.0);
    }

    /// With few samples the high percentiles are the slowest sample, never an interpolation.
    #[test]
    fn few_samples_round_up_to_a_real_sample() {
        let s = ms(&[30, 10, 20]);
        assert_eq!(s.percentile_ms(0.0), 10.0);
        assert_eq!(s.percentile_ms(50.0), 20.0);
        assert_eq!(s.percentile_ms(90.0), 30.0);
        assert_eq!(s.percentile_ms(99.0), 30.0);
    }

    /// One sample is every percentile.
    #[test]
    fn one_sample_is_every_percentile() {
        let s = ms(&[7]);
        for p in [0.0, 50.0, 99.0, 100.0] {
            assert_eq!(s.percentile_ms(p), 7.0);
        }
    }

    /// No samples: no percentile, reported as 0 ms.
    #[test]
    fn no_samples_have_no_percentile() {
        let s = ms(&[]);
        assert!(s.is_empty());
        assert_eq!(s.percentile(50.0), None);
        assert_eq!(s.percentile_ms(99.0), 0.0);
        assert_eq!(s.max_ms(), 0.0);
    }

    /// Out-of-range percentiles are clamped instead of panicking.
    #[test]
    fn out_of_range_percentiles_are_clamped() {
        let s = ms(&[1, 2, 3]);
        assert_eq!(s.percentile_ms(-5.0), 1.0);
        assert_eq!(s.percentile_ms(250.0), 3.0);
    }
}
