//! The port the workflow engine stores through (DynamoDB in `crate::dynamo`).

use async_trait::async_trait;

use super::guard::Breaker;
use super::model::{Commit, InstanceRecord, StepRecord, Timer, WorkflowWrite};
use crate::error::Result;

#[async_trait]
pub trait WorkflowStore: Send + Sync {
    /// Makes every write or none (one transaction); [`Commit::Refused`] when a condition
    /// did not hold.
    async fn commit(&self, writes: Vec<WorkflowWrite>) -> Result<Commit>;
    /// A strongly consistent read of an instance.
    async fn instance(&self, workflow_id: &str) -> Result<Option<InstanceRecord>>;
    /// Strongly consistent reads of an instance and one of its step items, in one request.
    async fn instance_and_step(
        &self,
        workflow_id: &str,
        sk: &str,
    ) -> Result<(Option<InstanceRecord>, Option<StepRecord>)>;
    /// Up to `limit` timers due at or before `now` (ms), earliest first.
    async fn due_timers(&self, now: i64, limit: i32) -> Result<Vec<Timer>>;

    /// The stored circuit breaker of `action` (strongly consistent), if any.
    async fn breaker(&self, action: &str) -> Result<Option<Breaker>> {
        Err(no_guards(action))
    }

    /// Stores `next` if the stored breaker is still at `next.version - 1` (absent for 0);
    /// false when another instance changed it first.
    async fn put_breaker(&self, action: &str, _next: &Breaker) -> Result<bool> {
        Err(no_guards(action))
    }

    /// Takes one of the `limit` slots of `action` in calendar second `second` (unix); false
    /// when every slot is taken.
    async fn take_rate_slot(&self, action: &str, _second: i64, _limit: u32) -> Result<bool> {
        Err(no_guards(action))
    }
}

/// A store without guard state (test doubles): guarded actions fail as a dependency fault.
fn no_guards(action: &str) -> crate::error::Error {
    crate::error::Error::Dependency {
        operation: "action guard",
        retryable: false,
        source: format!("this store keeps no guard state (action {action:?})").into(),
    }
}
