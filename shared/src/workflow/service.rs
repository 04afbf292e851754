//! The workflow engine's entry points: start, cancel, read an instance, process a batch of
//! workflows-stream records, fire due timers.
//!
//! Every write names the condition that makes it idempotent (see [`super::model`]), so a
//! stream record delivered twice, a batch replayed or a sweep run twice changes nothing.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tracing::debug;

use super::model::{
    Commit, InstanceRecord, InstanceStatus, InstanceUpdate, StepKind, StepRecord, WorkflowChange, WorkflowItem,
    WorkflowWrite, INSTANCE_SK,
};
use super::progress::{initial_state, path, PROGRESS_ACTOR_TYPE};
use super::registry::WorkflowRegistry;
use super::store::WorkflowStore;
use crate::backoff;
use crate::batch::run_in_key_order;
use crate::error::{chain, Error, Result};
use crate::ids::{check_workflow_id, ActorKey, Epoch, TenantId, Version};
use crate::records::{now_millis, ActorRecord};
use crate::stream_events::WorkflowStreamItem;

/// Tunables of the engine; [`WorkflowSettings::default`] is what production uses.
#[derive(Debug, Clone)]
pub struct WorkflowSettings {
    /// Retry delays up to this are waited out in the invocation; longer ones go on a durable
    /// timer (the due-time index, swept on a schedule).
    pub inline_delay_limit: Duration,
    /// Timers fired per sweep.
    pub timer_batch: i32,
    /// Items (steps, instances) whose records are processed at once; one item's records stay
    /// in stream order.
    pub concurrency: usize,
    /// Attempts at a commit that hits a transaction conflict.
    pub commit_attempts: u32,
    /// Largest workflow input accepted (JSON bytes).
    pub max_input_bytes: usize,
    /// Largest step output recorded (JSON bytes); a larger one fails the step. Outputs live
    /// in the instance item and the progress actor, both under DynamoDB's 400 KB item limit.
    pub max_output_bytes: usize,
    /// Where step metrics go (off by default).
    pub metrics: crate::metrics::Metrics,
}

impl Default for WorkflowSettings {
    fn default() -> Self {
        Self {
            inline_delay_limit: Duration::from_secs(1),
            timer_batch: 100,
            concurrency: 8,
            commit_attempts: 8,
            max_input_bytes: 64 * 1024,
            max_output_bytes: 32 * 1024,
            metrics: crate::metrics::Metrics::off(),
        }
    }
}

/// A started (or already existing) instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub workflow_id: String,
    /// The progress actor clients subscribe to.
    pub progress: ActorKey,
    /// False when an instance with this id already existed (an idempotent re-start).
    pub created: bool,
}

pub struct WorkflowService {
    pub(super) store: Arc<dyn WorkflowStore>,
    pub(super) registry: Arc<WorkflowRegistry>,
    pub(super) settings: WorkflowSettings,
}

impl WorkflowService {
    pub fn new(store: Arc<dyn WorkflowStore>, registry: Arc<WorkflowRegistry>, settings: WorkflowSettings) -> Self {
        Self {
            store,
            registry,
            settings,
        }
    }

    /// Where the stream handler records its batches' metrics.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.settings.metrics
    }

    /// The writes that start `workflow` for `tenant`: the instance, every step (those with no
    /// dependency runnable at once) and the progress actor. [`Self::start`] commits them;
    /// a caller may add them to a larger commit (an actor method that starts a workflow).
    pub fn start_writes(
        &self,
        tenant: &TenantId,
        workflow: &str,
        input: &Value,
        workflow_id: Option<String>,
    ) -> Result<(Vec<WorkflowWrite>, Started)> {
        let definition = self
            .registry
            .workflow(workflow)
            .ok_or_else(|| Error::UnknownWorkflow(workflow.to_owned()))?;
        if let Some(id) = &workflow_id {
            check_workflow_id(id)?;
        }
        let workflow_id = workflow_id.unwrap_or_else(new_workflow_id);
        let progress = ActorKey::new(tenant.clone(), PROGRESS_ACTOR_TYPE, &workflow_id)?;
        let input_json = input.to_string();
        if input_json.len() > self.settings.max_input_bytes {
            return Err(Error::TooLarge(format!(
                "workflow input is {} bytes; the limit is {}",
                input_json.len(),
                self.settings.max_input_bytes
            )));
        }
        let created_at = now_millis();
        let definition_json =
            serde_json::to_string(definition.as_ref()).map_err(|e| corrupt("definition", e.to_string()))?;
        let instance = InstanceRecord {
            workflow_id: workflow_id.clone(),
            sk: INSTANCE_SK.to_owned(),
            tenant: tenant.clone(),
            workflow: workflow.to_owned(),
            definition: definition_json,
            input: input_json,
            status: InstanceStatus::Running,
            pending: definition.steps.len() as u32,
            completed: Vec::new(),
            outputs: Vec::new(),
            compensation_order: Vec::new(),
            cause: None,
            cancel_requested: false,
            progress: progress.clone(),
            created_at,
            finished_at: None,
            trace: crate::trace::current(),
        };
        let mut writes = vec![WorkflowWrite::PutInstance(Box::new(instance))];
        writes.extend(definition.steps.iter().map(|step| {
            WorkflowWrite::PutStep(StepRecord::new(
                &workflow_id,
                StepKind::Step,
                &step.name,
                step.run_after.len() as u32,
            ))
        }));
        writes.push(WorkflowWrite::PutProgress(ActorRecord {
            actor_key: progress.clone(),
            state: initial_state(&definition, created_at),
            version: Version(1),
            epoch: Epoch(created_at.max(1) as u64),
            updated_at: created_at,
            log: Vec::new(),
            trace: crate::trace::current(),
        }));
        Ok((
            writes,
            Started {
                workflow_id,
                progress,
                created: true,
            },
        ))
    }

    /// Starts `workflow`. With a `workflow_id` the start is idempotent: starting an id that
    /// exists (for the same tenant and workflow) returns it with `created: false`.
    pub async fn start(
        &self,
        tenant: &TenantId,
        workflow: &str,
        input: &Value,
        workflow_id: Option<String>,
    ) -> Result<Started> {
        let (writes, started) = self.start_writes(tenant, workflow, input, workflow_id)?;
        match self.commit(writes).await? {
            Commit::Done => Ok(started),
            Commit::Refused => match self.store.instance(&started.workflow_id).await? {
                Some(existing) if &existing.tenant == tenant && existing.workflow == workflow => Ok(Started {
                    created: false,
                    ..started
                }),
                _ => Err(Error::AlreadyTaken(format!("workflow id {}", started.workflow_id))),
            },
        }
    }

    /// The instance `workflow_id` of `tenant`; another tenant's is reported as not found.
    pub async fn instance_of(&self, tenant: &TenantId, workflow_id: &str) -> Result<InstanceRecord> {
        check_workflow_id(workflow_id)?;
        match self.store.instance(workflow_id).await? {
            Some(instance) if &instance.tenant == tenant => Ok(instance),
            _ => Err(Error::WorkflowNotFound(workflow_id.to_owned())),
        }
    }

    /// Cancels a running instance: its completed steps are compensated (newest first) and it
    /// ends `cancelled`. Returns the status after the request; cancelling a finished
    /// instance changes nothing.
    pub async fn cancel(&self, tenant: &TenantId, workflow_id: &str) -> Result<InstanceStatus> {
        let instance = self.instance_of(tenant, workflow_id).await?;
        if instance.status != InstanceStatus::Running {
            return Ok(instance.status);
        }
        let update = InstanceUpdate {
            workflow_id: workflow_id.to_owned(),
            status: Some(InstanceStatus::Compensating),
            cause: Some("cancelled".to_owned()),
            cancel_requested: true,
            require: Some(InstanceStatus::Running),
            ..Default::default()
        };
        match self.commit(vec![WorkflowWrite::UpdateInstance(update)]).await? {
            Commit::Done => Ok(InstanceStatus::Compensating),
            Commit::Refused => Ok(self.instance_of(tenant, workflow_id).await?.status),
        }
    }

    /// Releases every timer that is due; returns how many fired.
    pub async fn sweep_timers(&self) -> Result<usize> {
        let timers = self.store.due_timers(now_millis(), self.settings.timer_batch).await?;
        let mut fired = 0;
        for timer in timers {
            let write = WorkflowWrite::FireTimer {
                workflow_id: timer.workflow_id,
                sk: timer.sk,
                due_at: timer.due_at,
            };
            if self.commit(vec![write]).await? == Commit::Done {
                fired += 1;
            }
        }
        Ok(fired)
    }

    /// Processes a stream batch; returns the sequence numbers to report as batch item
    /// failures. Records of one item run in order; different items run concurrently (see
    /// [`run_in_key_order`]).
    pub async fn process(&self, items: Vec<WorkflowStreamItem>) -> Vec<String> {
        run_in_key_order(items, self.settings.concurrency, |change| self.handle(change)).await
    }

    async fn handle(&self, change: WorkflowChange) -> Result<()> {
        match (change.old, change.new) {
            (_, Some(WorkflowItem::Step(step))) if step.is_runnable() => self.run(&step).await,
            (old, Some(WorkflowItem::Instance(new))) => {
                let old = match old {
                    Some(WorkflowItem::Instance(old)) => Some(old),
                    _ => None,
                };
                self.on_instance(old.as_deref(), &new).await
            }
            _ => Ok(()),
        }
    }

    async fn on_instance(&self, old: Option<&InstanceRecord>, new: &InstanceRecord) -> Result<()> {
        let was = old.map(|o| o.status);
        if new.status == InstanceStatus::Compensating && was != Some(InstanceStatus::Compensating) {
            return self.begin_compensation(&new.workflow_id).await;
        }
        if new.status == InstanceStatus::Running && new.pending == 0 && old.is_none_or(|o| o.pending != 0) {
            debug!(workflow_id = %new.workflow_id, "every step finished");
            return self
                .finalize(new, InstanceStatus::Succeeded, InstanceStatus::Running)
                .await;
        }
        Ok(())
    }

    /// Ends an instance with `status` (if it still has status `from`).
    pub(super) async fn finalize(
        &self,
        instance: &InstanceRecord,
        status: InstanceStatus,
        from: InstanceStatus,
    ) -> Result<()> {
        let now = now_millis();
        let update = InstanceUpdate {
            workflow_id: instance.workflow_id.clone(),
            status: Some(status),
            finished_at: Some(now),
            require: Some(from),
            ..Default::default()
        };
        let progress = WorkflowWrite::Progress {
            actor: instance.progress.clone(),
            sets: vec![
                (path(&["status"]), Value::from(status.as_str())),
                (path(&["finishedAt"]), Value::from(now)),
            ],
        };
        self.commit(vec![WorkflowWrite::UpdateInstance(update), progress])
            .await?;
        Ok(())
    }

    /// Commits `writes` atomically, retrying transaction conflicts with a short back-off.
    pub async fn commit(&self, writes: Vec<WorkflowWrite>) -> Result<Commit> {
        let mut attempt = 0;
        loop {
            match self.store.commit(writes.clone()).await {
                Err(e) if e.is_retryable() && attempt + 1 < self.settings.commit_attempts => {
                    debug!(attempt, error = %chain(&e), "commit conflict; retrying");
                    backoff::sleep(attempt, Duration::from_millis(5), Duration::from_millis(200)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

/// A new instance id: time-ordered hex, unique enough to never collide in practice (and a
/// collision is refused by the conditional put, never overwritten).
pub fn new_workflow_id() -> String {
    format!("{:011x}{:016x}", now_millis(), backoff::random_u64())
}

pub(super) fn corrupt(what: &'static str, detail: String) -> Error {
    Error::Corrupt { what, detail }
}
