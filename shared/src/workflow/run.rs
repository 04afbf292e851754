//! Running one step or compensation: read the instance and the step, run the action under
//! its timeout, then record the result and release the steps that became ready, all in one
//! commit; or schedule the next attempt; or start the saga of compensations.
//!
//! Exactly-once bookkeeping: a step runs only while its stored item is runnable at the
//! attempt the stream record shows, and its result is recorded only if it still is
//! (`FinishStep`'s condition). A duplicate record finds the step finished and does nothing;
//! a crash after the action but before the commit leaves the step runnable, so the retried
//! record runs the action again with the same idempotency key.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tokio::time::Instant;
use tracing::{debug, info, info_span, warn, Instrument};

use super::action::{ActionContext, ActionError};
use super::definition::{Outcome, StepDefinition, WorkflowDefinition};
use super::guard::BreakerState;
use super::guards::Guards;
use super::model::{
    Commit, InstanceRecord, InstanceStatus, InstanceUpdate, StepKind, StepRecord, StepState, WorkflowWrite,
};
use super::progress::{path, StepView};
use super::reference::resolve;
use super::service::{corrupt, WorkflowService};
use crate::error::Result;
use crate::metrics::{Document, Metric};
use crate::records::now_millis;
use crate::trace;

/// What an attempt ended with.
pub(super) enum Ended {
    Succeeded(Value),
    Failed(String),
    Skipped,
}

impl WorkflowService {
    pub(super) async fn run(&self, seen: &StepRecord) -> Result<()> {
        let (instance, step) = self.store.instance_and_step(&seen.workflow_id, &seen.sk).await?;
        let (Some(instance), Some(step)) = (instance, step) else {
            warn!(workflow_id = %seen.workflow_id, sk = %seen.sk, "step or instance is missing");
            return Ok(());
        };
        // Every line about this step names the request that started the instance.
        let trace = instance.trace.as_ref();
        let span = info_span!(
            "step",
            workflow_id = %step.workflow_id,
            step = %step.name,
            request_id = trace::request_id(trace),
            xray_trace_id = trace::xray_trace_id(trace),
        );
        self.run_loaded(seen, instance, step).instrument(span).await
    }

    async fn run_loaded(&self, seen: &StepRecord, instance: InstanceRecord, step: StepRecord) -> Result<()> {
        if !step.is_runnable() || step.attempt != seen.attempt {
            debug!(workflow_id = %step.workflow_id, sk = %step.sk, "already handled");
            return Ok(());
        }
        let definition: WorkflowDefinition =
            serde_json::from_str(&instance.definition).map_err(|e| corrupt("workflow definition", e.to_string()))?;
        let Some(def) = definition.get(&step.name) else {
            return Err(corrupt(
                "workflow step",
                format!("{} is not in the definition", step.name),
            ));
        };
        let runs_now = match step.kind {
            StepKind::Step => instance.status == InstanceStatus::Running,
            // A late compensation (its step finished after the instance stopped) runs even
            // once the instance has ended.
            StepKind::Compensation => instance.status != InstanceStatus::Running,
        };
        if !runs_now {
            return self.cancel_step(&instance, &step).await;
        }
        if step.kind == StepKind::Step && step.unmet > 0 {
            return self
                .finish_step(&instance, &definition, &step, None, Ended::Skipped)
                .await;
        }
        let input = step_input(&instance, def)?;
        let (action, input) = match step.kind {
            StepKind::Step => (def.action.as_str(), input),
            StepKind::Compensation => {
                let output = output_of(&instance, &step.name)?;
                let Some(compensation) = def.compensation.as_deref() else {
                    return Err(corrupt("compensation", format!("{} has no compensation", step.name)));
                };
                (compensation, json!({"input": input, "output": output}))
            }
        };
        let started_at = now_millis();
        self.show(
            &instance,
            &step,
            StepView {
                status: "running",
                attempts: step.attempt,
                started_at: Some(started_at),
                ..Default::default()
            },
        )
        .await?;
        let (result, breaker) = self.execute(&instance, &step, def, action, input).await;
        let outcome = match &result {
            Ok(_) => "succeeded",
            Err(e) if e.retryable && step.attempt < def.retry.max_attempts => "retried",
            Err(_) => "failed",
        };
        let ran_for = (now_millis() - started_at).max(0) as f64;
        self.settings.metrics.emit(
            Document::new()
                .outcome(outcome)
                .count(Metric::WorkflowSteps, 1)
                .value(Metric::StepDuration, ran_for)
                .property("workflowId", step.workflow_id.as_str())
                .property("step", step.name.as_str())
                .property("compensation", step.kind == StepKind::Compensation)
                .property("requestId", trace::request_id(instance.trace.as_ref())),
        );
        match result {
            Ok(output) => {
                let size = output.to_string().len();
                if size > self.settings.max_output_bytes {
                    let error = format!(
                        "output is {size} bytes; the limit is {}",
                        self.settings.max_output_bytes
                    );
                    let ended = Ended::Failed(error);
                    return self
                        .finish(&instance, &definition, &step, Some(started_at), ended)
                        .await;
                }
                let ended = Ended::Succeeded(output);
                match self
                    .finish(&instance, &definition, &step, Some(started_at), ended)
                    .await
                {
                    // A result DynamoDB refuses for good must not leave the step runnable forever.
                    Err(e) if !e.is_retryable() => {
                        warn!(error = %crate::error::chain(&e), "the result could not be recorded");
                        let ended = Ended::Failed(format!("the result could not be recorded: {e}"));
                        self.finish(&instance, &definition, &step, Some(started_at), ended)
                            .await
                    }
                    other => other,
                }
            }
            Err(e) if e.retryable && step.attempt < def.retry.max_attempts => {
                self.retry(&instance, &step, def, started_at, &e.message, breaker).await
            }
            Err(e) => {
                let ended = Ended::Failed(e.message);
                self.finish(&instance, &definition, &step, Some(started_at), ended)
                    .await
            }
        }
    }

    /// Runs one attempt of `action` (within its guard, if it has one); returns the result and
    /// the state of the action's circuit breaker after it.
    async fn execute(
        &self,
        instance: &InstanceRecord,
        step: &StepRecord,
        def: &StepDefinition,
        action: &str,
        input: Value,
    ) -> (Result<Value, ActionError>, Option<BreakerState>) {
        let Some(handler) = self.registry.actions().get(action) else {
            let error = ActionError::terminal(format!("action {action:?} is not registered in this deployment"));
            return (Err(error), None);
        };
        let timeout = def.timeout_duration();
        let guard = self.registry.actions().guard(action);
        let guards = Guards::new(self.store.clone());
        if let Some(guard) = guard {
            if let Err(refusal) = guards.admit(action, guard, Instant::now() + timeout).await {
                debug!(workflow_id = %step.workflow_id, step = %step.name, %action, error = %refusal.error, "attempt refused by its guard");
                return (Err(refusal.error), refusal.breaker);
            }
        }
        let suffix = match step.kind {
            StepKind::Step => String::new(),
            StepKind::Compensation => "/compensate".to_owned(),
        };
        let context = ActionContext {
            tenant: instance.tenant.clone(),
            workflow_id: instance.workflow_id.clone(),
            step: step.name.clone(),
            attempt: step.attempt,
            idempotency_key: format!("{}/{}{suffix}/{}", instance.workflow_id, step.name, step.attempt),
            input,
        };
        let result = match tokio::time::timeout(timeout, handler.run(context)).await {
            Ok(result) => result,
            Err(_) => Err(ActionError::retryable(format!("timed out after {} ms", def.timeout_ms))),
        };
        let breaker = match guard {
            Some(guard) => {
                let failed = result.as_ref().is_err_and(|e| e.retryable);
                guards.record(action, guard, failed).await
            }
            None => None,
        };
        (result, breaker)
    }

    async fn finish(
        &self,
        instance: &InstanceRecord,
        definition: &WorkflowDefinition,
        step: &StepRecord,
        started_at: Option<i64>,
        ended: Ended,
    ) -> Result<()> {
        match step.kind {
            StepKind::Step => self.finish_step(instance, definition, step, started_at, ended).await,
            StepKind::Compensation => self.finish_compensation(instance, step, started_at, ended).await,
        }
    }

    /// Records a step's outcome, resolves it for every step that runs after it, and counts it
    /// done on the instance; an unhandled failure also turns the instance to compensating.
    async fn finish_step(
        &self,
        instance: &InstanceRecord,
        definition: &WorkflowDefinition,
        step: &StepRecord,
        started_at: Option<i64>,
        ended: Ended,
    ) -> Result<()> {
        let (state, outcome) = match &ended {
            Ended::Succeeded(_) => (StepState::Succeeded, Outcome::Succeeded),
            Ended::Failed(_) => (StepState::Failed, Outcome::Failed),
            Ended::Skipped => (StepState::Skipped, Outcome::Skipped),
        };
        let def = definition.get(&step.name);
        let mut writes = vec![WorkflowWrite::FinishStep {
            workflow_id: step.workflow_id.clone(),
            sk: step.sk.clone(),
            attempt: step.attempt,
            status: state,
        }];
        for dependent in definition.dependents(&step.name) {
            let runs = dependent
                .run_after
                .get(&step.name)
                .is_some_and(|o| o.contains(&outcome));
            writes.push(WorkflowWrite::ResolveDependency {
                workflow_id: step.workflow_id.clone(),
                sk: StepRecord::sk_for(StepKind::Step, &dependent.name),
                dependency: step.name.clone(),
                unmet: !runs,
            });
        }
        let mut update = InstanceUpdate {
            workflow_id: step.workflow_id.clone(),
            pending_delta: -1,
            ..Default::default()
        };
        let (output, error) = match &ended {
            Ended::Succeeded(output) => {
                update.output = Some((step.name.clone(), output.clone()));
                if def.is_some_and(|d| d.compensation.is_some()) {
                    update.completed = Some(step.name.clone());
                }
                (Some(output), None)
            }
            Ended::Failed(error) => (None, Some(error.as_str())),
            Ended::Skipped => (None, None),
        };
        let unhandled = matches!(ended, Ended::Failed(_)) && !definition.handles_failure_of(&step.name);
        // A step with a compensation is recorded as completed only while the instance runs;
        // if it stopped meanwhile, the step gets a compensation of its own (below).
        let compensable = matches!(ended, Ended::Succeeded(_)) && def.is_some_and(|d| d.compensation.is_some());
        if compensable {
            update.require = Some(InstanceStatus::Running);
        }
        if let (true, Some(error)) = (unhandled, error) {
            update.status = Some(InstanceStatus::Compensating);
            update.cause = Some(format!("step {} failed: {error}", step.name));
            update.require = Some(InstanceStatus::Running);
        }
        let view = StepView {
            status: state.as_str(),
            attempts: if matches!(ended, Ended::Skipped) {
                0
            } else {
                step.attempt
            },
            started_at,
            finished_at: Some(now_millis()),
            output,
            error,
            next_attempt_at: None,
            breaker: None,
        };
        let mut shown = view.to_value();
        writes.push(WorkflowWrite::UpdateInstance(update.clone()));
        writes.push(self.progress_value(instance, step, shown.clone()));
        info!(workflow_id = %step.workflow_id, step = %step.name, status = state.as_str(), "step finished");
        if self.commit(writes.clone()).await? == Commit::Refused && (unhandled || compensable) {
            // The instance stopped running while the action ran (or this is a duplicate, which
            // the step's own condition refuses again): record the outcome without moving the
            // instance, and undo a completed step's effect with a compensation of its own.
            writes.truncate(writes.len() - 2);
            writes.push(WorkflowWrite::UpdateInstance(InstanceUpdate {
                status: None,
                cause: None,
                require: None,
                completed: None,
                ..update
            }));
            if compensable {
                info!(workflow_id = %step.workflow_id, step = %step.name, "finished after the instance stopped; compensating it");
                writes.push(WorkflowWrite::PutStep(StepRecord::new(
                    &step.workflow_id,
                    StepKind::Compensation,
                    &step.name,
                    0,
                )));
                shown["compensation"] = json!({"status": "waiting", "attempts": 0});
            }
            writes.push(self.progress_value(instance, step, shown));
            self.commit(writes).await?;
        }
        Ok(())
    }

    /// Schedules the next attempt: at once after a short delay waited out here, or on a
    /// durable timer.
    async fn retry(
        &self,
        instance: &InstanceRecord,
        step: &StepRecord,
        def: &StepDefinition,
        started_at: i64,
        error: &str,
        breaker: Option<BreakerState>,
    ) -> Result<()> {
        let delay = def.retry.delay_after(step.attempt);
        let next_at = now_millis() + delay.as_millis() as i64;
        let view = StepView {
            status: "retrying",
            attempts: step.attempt,
            started_at: Some(started_at),
            error: Some(error),
            next_attempt_at: Some(next_at),
            breaker: breaker.map(BreakerState::as_str),
            ..Default::default()
        };
        self.show(instance, step, view).await?;
        let due_at = if delay <= self.settings.inline_delay_limit {
            tokio::time::sleep(delay).await;
            None
        } else {
            Some(next_at)
        };
        debug!(workflow_id = %step.workflow_id, step = %step.name, attempt = step.attempt, ?delay, "retrying");
        let write = WorkflowWrite::RetryStep {
            workflow_id: step.workflow_id.clone(),
            sk: step.sk.clone(),
            attempt: step.attempt,
            due_at,
        };
        self.commit(vec![write]).await?;
        Ok(())
    }

    /// Marks a step that became runnable after its instance stopped: it never runs.
    async fn cancel_step(&self, instance: &InstanceRecord, step: &StepRecord) -> Result<()> {
        let view = StepView {
            status: StepState::Cancelled.as_str(),
            attempts: step.attempt.saturating_sub(1),
            ..Default::default()
        };
        let writes = vec![
            WorkflowWrite::FinishStep {
                workflow_id: step.workflow_id.clone(),
                sk: step.sk.clone(),
                attempt: step.attempt,
                status: StepState::Cancelled,
            },
            self.progress_write(instance, step, &view),
        ];
        self.commit(writes).await?;
        Ok(())
    }

    async fn show(&self, instance: &InstanceRecord, step: &StepRecord, view: StepView<'_>) -> Result<()> {
        self.commit(vec![self.progress_write(instance, step, &view)]).await?;
        Ok(())
    }

    fn progress_write(&self, instance: &InstanceRecord, step: &StepRecord, view: &StepView<'_>) -> WorkflowWrite {
        self.progress_value(instance, step, view.to_value())
    }

    fn progress_value(&self, instance: &InstanceRecord, step: &StepRecord, value: Value) -> WorkflowWrite {
        let at = match step.kind {
            StepKind::Step => path(&["steps", &step.name]),
            StepKind::Compensation => path(&["steps", &step.name, "compensation"]),
        };
        WorkflowWrite::Progress {
            actor: instance.progress.clone(),
            sets: vec![(at, value)],
        }
    }
}

fn parse(json: &str, what: &'static str) -> Result<Value> {
    serde_json::from_str(json).map_err(|e| corrupt(what, e.to_string()))
}

/// The step's input template resolved against the workflow input and the outputs so far.
fn step_input(instance: &InstanceRecord, def: &StepDefinition) -> Result<Value> {
    let input = parse(&instance.input, "workflow input")?;
    let outputs = instance
        .outputs
        .iter()
        .map(|o| Ok((o.step.clone(), parse(&o.json, "step output")?)))
        .collect::<Result<BTreeMap<_, _>>>()?;
    Ok(resolve(&def.input, &input, &outputs))
}

fn output_of(instance: &InstanceRecord, step: &str) -> Result<Value> {
    instance
        .output(step)
        .map(|json| parse(json, "step output"))
        .transpose()
        .map(|v| v.unwrap_or(Value::Null))
}
