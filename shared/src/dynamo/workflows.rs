//! The workflows table behind [`WorkflowStore`]: commits go through `commit` (see
//! `workflow_writes` for each write); a failed condition is [`Commit::Refused`], a
//! transaction conflict a retryable error.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::KeysAndAttributes;

use super::commit::Committed;
use super::workflow_writes::workflow_key;
use super::{from_item, s, DynamoStore, WORKFLOWS_BY_DUE};
use crate::error::{Error, Result};
use crate::sdk_error::dependency;
use crate::workflow::guard::Breaker;
use crate::workflow::model::{
    due_key, Commit, InstanceRecord, StepRecord, Timer, WorkflowWrite, INSTANCE_SK, TIMER_SHARD,
};
use crate::workflow::WorkflowStore;

#[async_trait]
impl WorkflowStore for DynamoStore {
    async fn commit(&self, writes: Vec<WorkflowWrite>) -> Result<Commit> {
        let ops = writes.iter().map(|w| self.op(w)).collect::<Result<Vec<_>>>()?;
        Ok(match self.commit_ops(ops).await? {
            Committed::Done => Commit::Done,
            Committed::Refused(_) => Commit::Refused,
        })
    }

    async fn instance(&self, workflow_id: &str) -> Result<Option<InstanceRecord>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.workflows)
            .set_key(Some(workflow_key(workflow_id, INSTANCE_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dependency("GetItem workflow", e))?;
        output.item.map(|item| from_item(item, "workflow instance")).transpose()
    }

    async fn instance_and_step(
        &self,
        workflow_id: &str,
        sk: &str,
    ) -> Result<(Option<InstanceRecord>, Option<StepRecord>)> {
        let keys = KeysAndAttributes::builder()
            .keys(workflow_key(workflow_id, INSTANCE_SK))
            .keys(workflow_key(workflow_id, sk))
            .consistent_read(true)
            .build()
            .map_err(|e| Error::Corrupt {
                what: "workflow read",
                detail: e.to_string(),
            })?;
        let mut pending = HashMap::from([(self.tables.workflows.clone(), keys)]);
        let (mut instance, mut step) = (None, None);
        for attempt in 0..6u32 {
            let output = self
                .client
                .batch_get_item()
                .set_request_items(Some(pending))
                .send()
                .await
                .map_err(|e| dependency("BatchGetItem workflow", e))?;
            for item in output.responses.unwrap_or_default().into_values().flatten() {
                if item.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str) == Some(INSTANCE_SK) {
                    instance = Some(from_item(item, "workflow instance")?);
                } else {
                    step = Some(from_item(item, "workflow step")?);
                }
            }
            pending = output.unprocessed_keys.unwrap_or_default();
            if pending.is_empty() {
                return Ok((instance, step));
            }
            crate::backoff::sleep(
                attempt,
                std::time::Duration::from_millis(10),
                std::time::Duration::from_millis(500),
            )
            .await;
        }
        Err(Error::Dependency {
            operation: "BatchGetItem workflow",
            retryable: true,
            source: "keys left unprocessed after every attempt".into(),
        })
    }

    async fn due_timers(&self, now: i64, limit: i32) -> Result<Vec<Timer>> {
        let output = self
            .client
            .query()
            .table_name(&self.tables.workflows)
            .index_name(WORKFLOWS_BY_DUE)
            .key_condition_expression("#shard = :shard AND #due <= :now")
            .expression_attribute_names("#shard", "timerShard")
            .expression_attribute_names("#due", "dueAt")
            .expression_attribute_values(":shard", s(TIMER_SHARD))
            .expression_attribute_values(":now", s(due_key(now)))
            .limit(limit.max(1))
            .send()
            .await
            .map_err(|e| dependency("Query workflow timers", e))?;
        output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| from_item(item, "workflow timer"))
            .collect()
    }

    async fn breaker(&self, action: &str) -> Result<Option<Breaker>> {
        self.load_breaker(action).await
    }

    async fn put_breaker(&self, action: &str, next: &Breaker) -> Result<bool> {
        self.store_breaker(action, next).await
    }

    async fn take_rate_slot(&self, action: &str, second: i64, limit: u32) -> Result<bool> {
        self.take_slot(action, second, limit).await
    }
}
