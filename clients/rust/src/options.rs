//! How a client connects: the token, the reconnect back-off (exponential, full jitter) and
//! the call timeout; and what a subscription follows.

use std::time::Duration;

/// Options of [`crate::Client::connect`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Sent as the subprotocols `bearer, <token>` (`Sec-WebSocket-Protocol`).
    pub token: Option<String>,
    pub backoff: Backoff,
    /// How long a call may wait for its answer, reconnects included.
    pub call_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            token: None,
            backoff: Backoff::default(),
            call_timeout: Duration::from_secs(10),
        }
    }
}

/// Reconnect delays: attempt `n` (0-based) waits a random time in `[0, min(cap, base · 2ⁿ))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    /// Attempts in a row without an open connection before the client gives up (state
    /// `Closed`); `None` retries for ever.
    pub max_attempts: Option<u32>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(250),
            cap: Duration::from_secs(30),
            max_attempts: None,
        }
    }
}

impl Backoff {
    /// The delay before reconnect attempt `attempt`, given a random `fraction` in [0, 1).
    pub fn delay(&self, attempt: u32, fraction: f64) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        let bound = self.base.saturating_mul(factor).min(self.cap);
        bound.mul_f64(fraction.clamp(0.0, 1.0))
    }

    /// Whether `attempts` failed attempts in a row mean giving up.
    pub fn exhausted(&self, attempts: u32) -> bool {
        self.max_attempts.is_some_and(|max| attempts >= max)
    }
}

/// Options of [`crate::Client::subscribe`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscribeOptions {
    /// JSON Pointers (1 to 16): hold only the projection of the state on them, and get only
    /// the changes under them.
    pub paths: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_bound_doubles_up_to_the_cap_and_jitter_spans_it() {
        let backoff = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
            max_attempts: Some(3),
        };
        let almost_one = 0.999_999;
        assert_eq!(backoff.delay(0, 0.0), Duration::ZERO);
        assert!(backoff.delay(0, almost_one) < Duration::from_millis(100));
        assert!(backoff.delay(2, almost_one) > Duration::from_millis(399));
        assert!(backoff.delay(2, almost_one) < Duration::from_millis(400));
        assert!(backoff.delay(10, almost_one) < Duration::from_secs(1));
        assert!(backoff.delay(u32::MAX, almost_one) < Duration::from_secs(1));
        assert_eq!(backoff.delay(3, 0.5), Duration::from_millis(400));
        assert!(!backoff.exhausted(2));
        assert!(backoff.exhausted(3));
        assert!(!Backoff::default().exhausted(u32::MAX));
    }
}
