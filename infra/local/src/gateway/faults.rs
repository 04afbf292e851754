//! Fault and latency injection for `@connections` posts, to see the fan-out hold against what
//! API Gateway does at scale: a latency drawn from a range, a throughput limit answered with
//! 429 `LimitExceededException`, and given shares of 500 and 410 answers (a 410 also drops
//! the connection, losing its `$disconnect`, as a client vanishing would). Deterministic for a
//! seed. Off unless asked for.

use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// What to inject.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultPlan {
    /// Each post waits a latency drawn uniformly from this range.
    pub latency: Option<LatencyRange>,
    /// Posts per second accepted (a token bucket holding a tenth of a second's worth); the
    /// rest are answered 429.
    pub throughput: Option<u32>,
    /// Share of posts answered 500 (0 to 1).
    pub error_rate: f64,
    /// Share of posts answered 410, the connection dropped (0 to 1).
    pub gone_rate: f64,
    pub seed: u64,
}

impl FaultPlan {
    pub fn is_off(&self) -> bool {
        self.latency.is_none() && self.throughput.is_none() && self.error_rate <= 0.0 && self.gone_rate <= 0.0
    }
}

/// `5ms..40ms` (or one value, `10ms`): milliseconds, or microseconds with `us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencyRange {
    pub min: Duration,
    pub max: Duration,
}

impl FromStr for LatencyRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let one = |v: &str| -> Result<Duration, String> {
            let v = v.trim();
            let (number, unit) = v
                .find(|c: char| !c.is_ascii_digit())
                .map_or((v, "ms"), |at| (&v[..at], &v[at..]));
            let n: u64 = number
                .parse()
                .map_err(|_| format!("{v:?} is not a duration like 5ms"))?;
            match unit {
                "ms" => Ok(Duration::from_millis(n)),
                "us" => Ok(Duration::from_micros(n)),
                "s" => Ok(Duration::from_secs(n)),
                other => Err(format!("unknown unit {other:?} (ms, us or s)")),
            }
        };
        let (min, max) = match s.split_once("..") {
            Some((a, b)) => (one(a)?, one(b)?),
            None => (one(s)?, one(s)?),
        };
        if min > max {
            return Err(format!("{s:?}: the range is empty"));
        }
        Ok(LatencyRange { min, max })
    }
}

/// What a post is answered instead of going through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    /// 429 `LimitExceededException`.
    Throttled,
    /// 500 `InternalServerErrorException`.
    Error,
    /// 410 `GoneException`; the connection is dropped.
    Gone,
}

/// A plan being applied: its random numbers and its token bucket.
#[derive(Debug)]
pub struct Faults {
    plan: FaultPlan,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    rng: SplitMix64,
    tokens: f64,
    refilled: Instant,
}

impl Faults {
    pub fn new(plan: FaultPlan) -> Self {
        let tokens = plan.throughput.map_or(0.0, bucket_size);
        Self {
            state: Mutex::new(State {
                rng: SplitMix64(plan.seed),
                tokens,
                refilled: Instant::now(),
            }),
            plan,
        }
    }

    /// Waits the post's latency, then says whether it is answered with a fault.
    pub async fn before_post(&self) -> Option<Injected> {
        let (latency, injected) = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let latency = self.plan.latency.map(|range| {
                let span = (range.max - range.min).as_micros() as u64;
                range.min + Duration::from_micros(if span == 0 { 0 } else { state.rng.next() % (span + 1) })
            });
            (latency, self.decide(&mut state))
        };
        if let Some(latency) = latency {
            tokio::time::sleep(latency).await;
        }
        injected
    }

    fn decide(&self, state: &mut State) -> Option<Injected> {
        if let Some(rate) = self.plan.throughput {
            let now = Instant::now();
            let elapsed = now.duration_since(state.refilled).as_secs_f64();
            state.tokens = (state.tokens + elapsed * f64::from(rate)).min(bucket_size(rate));
            state.refilled = now;
            if state.tokens < 1.0 {
                return Some(Injected::Throttled);
            }
            state.tokens -= 1.0;
        }
        let roll = state.rng.unit();
        if roll < self.plan.gone_rate {
            return Some(Injected::Gone);
        }
        if roll < self.plan.gone_rate + self.plan.error_rate {
            return Some(Injected::Error);
        }
        None
    }
}

/// A tenth of a second's posts, at least one.
fn bucket_size(rate: u32) -> f64 {
    (f64::from(rate) / 10.0).max(1.0)
}

/// SplitMix64: small, fast and reproducible for a seed (not for secrets).
#[derive(Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_ranges_parse() {
        let range: LatencyRange = "5ms..40ms".parse().expect("range");
        assert_eq!(
            (range.min, range.max),
            (Duration::from_millis(5), Duration::from_millis(40))
        );
        let one: LatencyRange = "250us".parse().expect("one value");
        assert_eq!(
            (one.min, one.max),
            (Duration::from_micros(250), Duration::from_micros(250))
        );
        assert!("40ms..5ms".parse::<LatencyRange>().is_err());
        assert!("fast".parse::<LatencyRange>().is_err());
    }

    #[tokio::test]
    async fn the_same_seed_injects_the_same_faults_at_the_given_rates() {
        let plan = FaultPlan {
            error_rate: 0.01,
            gone_rate: 0.005,
            seed: 7,
            ..FaultPlan::default()
        };
        let run = || async {
            let faults = Faults::new(plan.clone());
            let mut seen = Vec::new();
            for _ in 0..20_000 {
                seen.push(faults.before_post().await);
            }
            seen
        };
        let (a, b) = (run().await, run().await);
        assert_eq!(a, b, "deterministic for a seed");
        let count = |kind| a.iter().filter(|i| **i == Some(kind)).count();
        let (errors, gone) = (count(Injected::Error), count(Injected::Gone));
        assert!((150..=250).contains(&errors), "{errors} 500s of 20,000 at 1 %");
        assert!((60..=140).contains(&gone), "{gone} 410s of 20,000 at 0.5 %");
    }

    #[tokio::test(start_paused = true)]
    async fn the_throughput_limit_answers_429_beyond_its_rate() {
        let faults = Faults::new(FaultPlan {
            throughput: Some(1000),
            ..FaultPlan::default()
        });
        // The bucket holds 100; at once, the 101st is throttled.
        let mut first = Vec::new();
        for _ in 0..101 {
            first.push(faults.before_post().await);
        }
        assert!(first[..100].iter().all(Option::is_none));
        assert_eq!(first[100], Some(Injected::Throttled));
        // 50 ms later, 50 more tokens.
        tokio::time::advance(Duration::from_millis(50)).await;
        let mut later = 0;
        while faults.before_post().await.is_none() {
            later += 1;
        }
        assert_eq!(later, 50);
    }
}
