//! Circuit breakers and rate limits for actions, declared per action and kept in DynamoDB so
//! every Lambda sees the same state. This module is the pure part: the policies and the
//! breaker's state machine (closed → open after N retryable failures within a window →
//! half-open after a cool-down, when one attempt probes → closed on its success, open again on
//! its failure). Rate limits are slots per calendar second, counted in the store.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What guards one action.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionGuard {
    pub breaker: Option<BreakerPolicy>,
    /// Attempts per second across all instances.
    pub rate_limit: Option<u32>,
}

impl ActionGuard {
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens after `failures` retryable failures within `window`; half-opens after `open_for`.
    pub fn breaker(mut self, failures: u32, window: Duration, open_for: Duration) -> Self {
        self.breaker = Some(BreakerPolicy {
            failures,
            window,
            open_for,
        });
        self
    }

    /// At most `per_second` attempts start in any calendar second, across all instances.
    pub fn rate_limit(mut self, per_second: u32) -> Self {
        self.rate_limit = Some(per_second);
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    pub failures: u32,
    pub window: Duration,
    pub open_for: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        }
    }
}

/// A breaker as stored (one item per action); `version` guards every change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Breaker {
    pub state: BreakerState,
    /// Failures counted in the window that began at `window_start` (ms).
    pub failures: u32,
    pub window_start: i64,
    /// When it opened, or when the half-open probe started (ms).
    pub since: i64,
    pub version: u64,
}

impl Default for Breaker {
    fn default() -> Self {
        Self {
            state: BreakerState::Closed,
            failures: 0,
            window_start: 0,
            since: 0,
            version: 0,
        }
    }
}

/// Whether an attempt may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Run,
    /// Runs as the half-open probe (the change must be stored first; one instance wins).
    Probe,
    /// Fails without calling the action, until `until` (ms).
    FailFast {
        until: i64,
    },
}

impl Breaker {
    /// What an attempt at `now` may do, and the state to store first (for a probe).
    pub fn admit(&self, policy: &BreakerPolicy, now: i64) -> (Admission, Option<Breaker>) {
        let until = self.since + policy.open_for.as_millis() as i64;
        match self.state {
            BreakerState::Closed => (Admission::Run, None),
            // Open, or half-open with its probe still in flight: fail fast.
            BreakerState::Open | BreakerState::HalfOpen if now < until => (Admission::FailFast { until }, None),
            // The cool-down is over (or a probe never reported back): this attempt probes.
            BreakerState::Open | BreakerState::HalfOpen => (
                Admission::Probe,
                Some(self.next(BreakerState::HalfOpen, self.failures, self.window_start, now)),
            ),
        }
    }

    /// The state after an attempt admitted earlier ended at `now`; `None` when unchanged.
    /// Only retryable failures count: a terminal one is the dependency answering.
    pub fn after(&self, policy: &BreakerPolicy, now: i64, failed: bool) -> Option<Breaker> {
        match (self.state, failed) {
            (BreakerState::Closed, false) if self.failures == 0 => None,
            (_, false) => Some(self.next(BreakerState::Closed, 0, now, now)),
            (BreakerState::HalfOpen, true) => {
                Some(self.next(BreakerState::Open, self.failures, self.window_start, now))
            }
            // A late failure of an attempt admitted before it opened changes nothing.
            (BreakerState::Open, true) => None,
            (BreakerState::Closed, true) => {
                let expired = now - self.window_start > policy.window.as_millis() as i64;
                let (failures, start) = match expired {
                    true => (1, now),
                    false => (self.failures + 1, self.window_start),
                };
                let state = match failures >= policy.failures {
                    true => BreakerState::Open,
                    false => BreakerState::Closed,
                };
                Some(self.next(state, failures, start, now))
            }
        }
    }

    fn next(&self, state: BreakerState, failures: u32, window_start: i64, now: i64) -> Breaker {
        let since = match state {
            BreakerState::Closed => self.since,
            _ => now,
        };
        Breaker {
            state,
            failures,
            window_start,
            since,
            version: self.version + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: BreakerPolicy = BreakerPolicy {
        failures: 3,
        window: Duration::from_secs(10),
        open_for: Duration::from_secs(5),
    };

    #[test]
    fn a_breaker_opens_fails_fast_half_opens_and_closes() {
        let mut b = Breaker::default();
        for t in [1_000, 2_000] {
            b = b.after(&POLICY, t, true).expect("counted");
            assert_eq!((b.state, b.admit(&POLICY, t).0), (BreakerState::Closed, Admission::Run));
        }
        b = b.after(&POLICY, 3_000, true).expect("opens");
        assert_eq!(b.state, BreakerState::Open);
        assert_eq!(b.admit(&POLICY, 7_999).0, Admission::FailFast { until: 8_000 });
        let (admission, probing) = b.admit(&POLICY, 8_000);
        assert_eq!(admission, Admission::Probe);
        let probing = probing.expect("stored before probing");
        assert_eq!(probing.state, BreakerState::HalfOpen);
        assert_eq!(
            probing.admit(&POLICY, 8_001).0,
            Admission::FailFast { until: 13_000 },
            "one probe at a time"
        );
        let reopened = probing.after(&POLICY, 8_500, true).expect("the probe failed");
        assert_eq!((reopened.state, reopened.since), (BreakerState::Open, 8_500));
        let closed = probing.after(&POLICY, 8_500, false).expect("the probe succeeded");
        assert_eq!((closed.state, closed.failures), (BreakerState::Closed, 0));
        assert_eq!(
            closed.after(&POLICY, 9_000, false),
            None,
            "a closed breaker is not rewritten"
        );
    }

    #[test]
    fn failures_outside_the_window_start_a_new_count() {
        let b = Breaker::default().after(&POLICY, 0, true).expect("counted");
        let b = b.after(&POLICY, 5_000, true).expect("counted");
        let b = b.after(&POLICY, 20_000, true).expect("a new window");
        assert_eq!((b.state, b.failures, b.window_start), (BreakerState::Closed, 1, 20_000));
    }
}
