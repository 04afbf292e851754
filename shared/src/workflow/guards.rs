//! An action's guard around each attempt, over the store every instance shares: the breaker
//! is asked first (an open one fails the attempt fast, without calling the action, and the
//! step's retry policy schedules the next; after the cool-down exactly one attempt wins the
//! conditional write that makes it the probe), then a rate slot of the current second is taken
//! (waiting for the next second while the attempt's time allows). The outcome of an attempt
//! that ran is recorded on the breaker.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::action::ActionError;
use super::guard::{ActionGuard, Admission, BreakerState};
use super::store::WorkflowStore;
use crate::records::now_millis;

/// Conditional writes lost to other instances before an attempt gives up its turn.
const CONTENDED: usize = 3;

/// Why an attempt did not run, and the breaker's state to show.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub error: ActionError,
    pub breaker: Option<BreakerState>,
}

pub struct Guards {
    store: Arc<dyn WorkflowStore>,
}

impl Guards {
    pub fn new(store: Arc<dyn WorkflowStore>) -> Self {
        Self { store }
    }

    /// Waits until an attempt of `action` may start (a rate slot is held for the current
    /// second), or refuses it; rate waits end by `deadline`.
    pub async fn admit(&self, action: &str, guard: &ActionGuard, deadline: Instant) -> Result<(), Refusal> {
        let store_failed = |e: crate::Error| Refusal {
            error: ActionError::retryable(format!("guard state of {action} unavailable: {e}")),
            breaker: None,
        };
        if let Some(policy) = &guard.breaker {
            let mut admitted = false;
            for _ in 0..CONTENDED {
                let stored = self
                    .store
                    .breaker(action)
                    .await
                    .map_err(store_failed)?
                    .unwrap_or_default();
                match stored.admit(policy, now_millis()) {
                    (Admission::Run, _) => admitted = true,
                    (Admission::FailFast { until }, _) => return Err(open(action, stored.state, until)),
                    (Admission::Probe, next) => {
                        let next = next.unwrap_or(stored);
                        admitted = self.store.put_breaker(action, &next).await.map_err(store_failed)?;
                    }
                }
                if admitted {
                    break;
                }
            }
            if !admitted {
                return Err(open(action, BreakerState::HalfOpen, now_millis()));
            }
        }
        if let Some(limit) = guard.rate_limit {
            loop {
                let now = now_millis();
                let second = now.div_euclid(1000);
                if self
                    .store
                    .take_rate_slot(action, second, limit)
                    .await
                    .map_err(store_failed)?
                {
                    // A slot taken as the second ended is not used in the next one.
                    if now_millis().div_euclid(1000) == second {
                        break;
                    }
                    continue;
                }
                let wait = Duration::from_millis(((second + 1) * 1000 - now).max(1) as u64);
                if Instant::now() + wait > deadline {
                    return Err(Refusal {
                        error: ActionError::retryable(format!(
                            "rate limited: {action} runs {limit} attempts per second"
                        )),
                        breaker: None,
                    });
                }
                tokio::time::sleep(wait).await;
            }
        }
        Ok(())
    }

    /// Records how an admitted attempt ended (`failed`: a retryable failure or a timeout);
    /// returns the breaker's state after it.
    pub async fn record(&self, action: &str, guard: &ActionGuard, failed: bool) -> Option<BreakerState> {
        let policy = guard.breaker.as_ref()?;
        for _ in 0..CONTENDED {
            let stored = self.store.breaker(action).await.ok()?.unwrap_or_default();
            match stored.after(policy, now_millis(), failed) {
                None => return Some(stored.state),
                Some(next) => {
                    if self.store.put_breaker(action, &next).await.ok()? {
                        return Some(next.state);
                    }
                }
            }
        }
        None
    }
}

fn open(action: &str, state: BreakerState, until: i64) -> Refusal {
    Refusal {
        error: ActionError::retryable(format!("circuit {}: {action} fails fast until {until}", state.as_str())),
        breaker: Some(state),
    }
}
