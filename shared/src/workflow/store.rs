//! The port the workflow engine stores through (DynamoDB in `crate::dynamo`).

use async_trait::async_trait;

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
}
