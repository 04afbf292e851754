//! The saga: when an instance stops running (a step failed for good, or `workflow.cancel`),
//! the compensations of its succeeded steps run one at a time, newest first, as a chain of
//! `comp#<step>` items; the last one ends the instance `failed` (or `cancelled`). A step that
//! finishes after the chain was written gets a compensation of its own, outside the chain.

use serde_json::{json, Value};
use tracing::info;

use super::model::{InstanceRecord, InstanceStatus, InstanceUpdate, StepKind, StepRecord, StepState, WorkflowWrite};
use super::progress::{path, StepView};
use super::run::Ended;
use super::service::WorkflowService;
use crate::error::Result;
use crate::records::now_millis;

impl WorkflowService {
    /// Writes the compensation chain (newest completed step first), or ends the instance at
    /// once when nothing needs compensating.
    pub(super) async fn begin_compensation(&self, workflow_id: &str) -> Result<()> {
        let Some(instance) = self.store.instance(workflow_id).await? else {
            return Ok(());
        };
        if instance.status != InstanceStatus::Compensating || !instance.compensation_order.is_empty() {
            return Ok(());
        }
        let mut order: Vec<String> = Vec::new();
        for step in instance.completed.iter().rev() {
            if !order.contains(step) {
                order.push(step.clone());
            }
        }
        if order.is_empty() {
            let status = final_status(&instance);
            return self.finalize(&instance, status, InstanceStatus::Compensating).await;
        }
        info!(workflow_id, ?order, "compensating");
        let mut writes: Vec<WorkflowWrite> = order
            .iter()
            .enumerate()
            .map(|(i, name)| {
                WorkflowWrite::PutStep(StepRecord::new(
                    workflow_id,
                    StepKind::Compensation,
                    name,
                    u32::from(i > 0),
                ))
            })
            .collect();
        let mut sets = vec![(path(&["status"]), Value::from(InstanceStatus::Compensating.as_str()))];
        if let Some(cause) = &instance.cause {
            sets.push((path(&["cause"]), Value::from(cause.as_str())));
        }
        sets.extend(order.iter().map(|name| {
            (
                path(&["steps", name, "compensation"]),
                json!({"status": "waiting", "attempts": 0}),
            )
        }));
        writes.push(WorkflowWrite::UpdateInstance(InstanceUpdate {
            workflow_id: workflow_id.to_owned(),
            compensation_order: Some(order),
            require: Some(InstanceStatus::Compensating),
            ..Default::default()
        }));
        writes.push(WorkflowWrite::Progress {
            actor: instance.progress.clone(),
            sets,
        });
        self.commit(writes).await?;
        Ok(())
    }

    /// Records a compensation's outcome and releases the next one; after the last (or a
    /// failed one) the instance ends failed (or cancelled).
    pub(super) async fn finish_compensation(
        &self,
        instance: &InstanceRecord,
        step: &StepRecord,
        started_at: Option<i64>,
        ended: Ended,
    ) -> Result<()> {
        let (state, output, error) = match &ended {
            Ended::Succeeded(output) => (StepState::Succeeded, Some(output), None),
            Ended::Failed(error) => (StepState::Failed, None, Some(error.as_str())),
            Ended::Skipped => (StepState::Skipped, None, None),
        };
        let now = now_millis();
        let mut writes = vec![WorkflowWrite::FinishStep {
            workflow_id: step.workflow_id.clone(),
            sk: step.sk.clone(),
            attempt: step.attempt,
            status: state,
        }];
        let view = StepView {
            status: state.as_str(),
            attempts: step.attempt,
            started_at,
            finished_at: Some(now),
            output,
            error,
            next_attempt_at: None,
            breaker: None,
        };
        let mut sets = vec![(path(&["steps", &step.name, "compensation"]), view.to_value())];
        let order = &instance.compensation_order;
        if !order.contains(&step.name) {
            // A late compensation (see `finish_step`): outside the chain, it ends nothing.
            writes.push(WorkflowWrite::Progress {
                actor: instance.progress.clone(),
                sets,
            });
            self.commit(writes).await?;
            return Ok(());
        }
        let next = order
            .iter()
            .position(|s| s == &step.name)
            .and_then(|i| order.get(i + 1));
        let end = match (state, next) {
            (StepState::Succeeded, Some(next)) => {
                writes.push(WorkflowWrite::ResolveDependency {
                    workflow_id: step.workflow_id.clone(),
                    sk: StepRecord::sk_for(StepKind::Compensation, next),
                    dependency: step.name.clone(),
                    unmet: false,
                });
                None
            }
            (StepState::Succeeded, None) => Some((final_status(instance), instance.cause.clone())),
            _ => {
                let cause = format!(
                    "{}; compensation of {} failed: {}",
                    instance.cause.as_deref().unwrap_or("failed"),
                    step.name,
                    error.unwrap_or("")
                );
                Some((InstanceStatus::Failed, Some(cause)))
            }
        };
        if let Some((status, cause)) = end {
            writes.push(WorkflowWrite::UpdateInstance(InstanceUpdate {
                workflow_id: step.workflow_id.clone(),
                status: Some(status),
                cause: cause.clone(),
                finished_at: Some(now),
                require: Some(InstanceStatus::Compensating),
                ..Default::default()
            }));
            sets.push((path(&["status"]), Value::from(status.as_str())));
            sets.push((path(&["finishedAt"]), Value::from(now)));
            if let Some(cause) = cause {
                sets.push((path(&["cause"]), Value::from(cause)));
            }
        }
        writes.push(WorkflowWrite::Progress {
            actor: instance.progress.clone(),
            sets,
        });
        self.commit(writes).await?;
        Ok(())
    }
}

pub(super) fn final_status(instance: &InstanceRecord) -> InstanceStatus {
    if instance.cancel_requested {
        InstanceStatus::Cancelled
    } else {
        InstanceStatus::Failed
    }
}
