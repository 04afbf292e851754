//! What a running workflow stores in the workflows table, and the writes the engine asks the
//! store to make atomically.
//!
//! Items share the partition key `workflowId`:
//! - `sk = "instance"`: [`InstanceRecord`]: definition, input, outputs, status, the number of
//!   steps still open, the succeeded steps that have a compensation (in completion order).
//! - `sk = "step#<name>"` / `"comp#<name>"`: [`StepRecord`]: one step or compensation with its
//!   join counter (`remaining` dependencies, `unmet` ones whose outcome did not match), its
//!   attempt and, while a retry waits on a durable timer, `dueAt`.
//!
//! A step record is *runnable* when it is waiting, has no dependency left and no timer: every
//! stream record that shows a runnable step runs it (once: see `service`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{ActorKey, TenantId};
use crate::records::ActorRecord;

pub const INSTANCE_SK: &str = "instance";
/// The partition of the due-time index: every pending timer, ordered by `dueAt`.
pub const TIMER_SHARD: &str = "due";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceStatus {
    Running,
    /// A step failed (or the instance was cancelled): compensations are running.
    Compensating,
    Succeeded,
    Failed,
    Cancelled,
}

impl InstanceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::Running => "running",
            InstanceStatus::Compensating => "compensating",
            InstanceStatus::Succeeded => "succeeded",
            InstanceStatus::Failed => "failed",
            InstanceStatus::Cancelled => "cancelled",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            InstanceStatus::Succeeded | InstanceStatus::Failed | InstanceStatus::Cancelled
        )
    }
}

/// One workflow run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceRecord {
    pub workflow_id: String,
    pub sk: String,
    pub tenant: TenantId,
    pub workflow: String,
    /// The definition as JSON, copied at start so a redeploy never changes a running instance.
    pub definition: String,
    /// The workflow input as JSON.
    pub input: String,
    pub status: InstanceStatus,
    /// Steps not yet succeeded, failed or skipped.
    pub pending: u32,
    /// Succeeded steps that have a compensation, in the order they finished.
    #[serde(default)]
    pub completed: Vec<String>,
    /// Step outputs, in the order the steps succeeded. A list rather than a map: an empty
    /// map would be written at start, and DynamoDB Local's stream mangles empty maps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<StepOutput>,
    /// The order compensations run in, fixed when compensation starts.
    #[serde(default)]
    pub compensation_order: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(default)]
    pub cancel_requested: bool,
    pub progress: ActorKey,
    pub created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
    /// The request that started the instance (see [`crate::trace`]); its steps log it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<crate::trace::Trace>,
}

/// One succeeded step's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepOutput {
    pub step: String,
    /// The output as JSON.
    pub json: String,
}

impl InstanceRecord {
    /// The recorded output of `step` (as JSON), if it succeeded.
    pub fn output(&self, step: &str) -> Option<&str> {
        self.outputs.iter().find(|o| o.step == step).map(|o| o.json.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Step,
    Compensation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Waiting,
    Succeeded,
    Failed,
    Skipped,
    /// Not run because the instance stopped running first.
    Cancelled,
}

impl StepState {
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Waiting => "waiting",
            StepState::Succeeded => "succeeded",
            StepState::Failed => "failed",
            StepState::Skipped => "skipped",
            StepState::Cancelled => "cancelled",
        }
    }
}

/// One step (or compensation) of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    pub workflow_id: String,
    pub sk: String,
    pub kind: StepKind,
    pub name: String,
    pub status: StepState,
    /// Dependencies not yet resolved.
    pub remaining: u32,
    /// Dependencies whose outcome was not one this step runs after.
    #[serde(default)]
    pub unmet: u32,
    /// Dependencies already resolved (a string set, so resolving twice is refused).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved: Vec<String>,
    /// 1-based attempt that runs next (or ran last).
    pub attempt: u32,
    /// Zero-padded milliseconds: the retry waits for the timer sweep until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timer_shard: Option<String>,
}

impl StepRecord {
    pub fn sk_for(kind: StepKind, name: &str) -> String {
        match kind {
            StepKind::Step => format!("step#{name}"),
            StepKind::Compensation => format!("comp#{name}"),
        }
    }

    pub fn new(workflow_id: &str, kind: StepKind, name: &str, remaining: u32) -> Self {
        Self {
            workflow_id: workflow_id.to_owned(),
            sk: Self::sk_for(kind, name),
            kind,
            name: name.to_owned(),
            status: StepState::Waiting,
            remaining,
            unmet: 0,
            resolved: Vec::new(),
            attempt: 1,
            due_at: None,
            timer_shard: None,
        }
    }

    /// Waiting, nothing left to wait for, no timer pending.
    pub fn is_runnable(&self) -> bool {
        self.status == StepState::Waiting && self.remaining == 0 && self.due_at.is_none()
    }
}

/// `dueAt` as stored: fixed width, so the index orders it as a number.
pub fn due_key(millis: i64) -> String {
    format!("{:015}", millis.max(0))
}

/// A pending durable timer, as the due-time index lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timer {
    pub workflow_id: String,
    pub sk: String,
    pub due_at: String,
}

/// Which item changed and how, decoded from a workflows stream record.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkflowItem {
    Instance(Box<InstanceRecord>),
    Step(StepRecord),
}

#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowChange {
    pub old: Option<WorkflowItem>,
    pub new: Option<WorkflowItem>,
}

/// A change to the instance item. `None` fields are left alone.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InstanceUpdate {
    pub workflow_id: String,
    /// Added to `pending`.
    pub pending_delta: i64,
    /// Stored under `outputs.<step>`.
    pub output: Option<(String, Value)>,
    /// Appended to `completed`.
    pub completed: Option<String>,
    pub compensation_order: Option<Vec<String>>,
    pub status: Option<InstanceStatus>,
    /// Kept if the instance already has a cause.
    pub cause: Option<String>,
    pub cancel_requested: bool,
    pub finished_at: Option<i64>,
    /// The write happens only if the instance has this status.
    pub require: Option<InstanceStatus>,
}

/// One write of an atomic commit; each carries the condition that makes it idempotent.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkflowWrite {
    /// Only if no instance with this id exists.
    PutInstance(Box<InstanceRecord>),
    /// Only if the item does not exist.
    PutStep(StepRecord),
    /// The progress actor's first version; only if it does not exist.
    PutProgress(ActorRecord),
    /// Ends a step's attempt; only if it is still waiting at `attempt` with nothing to wait for.
    FinishStep {
        workflow_id: String,
        sk: String,
        attempt: u32,
        status: StepState,
    },
    /// Schedules attempt `attempt + 1`; only if the step is still waiting at `attempt`.
    /// `due_at` (ms) puts it on a durable timer.
    RetryStep {
        workflow_id: String,
        sk: String,
        attempt: u32,
        due_at: Option<i64>,
    },
    /// Counts `dependency` as resolved for `sk`; only once per dependency.
    ResolveDependency {
        workflow_id: String,
        sk: String,
        dependency: String,
        unmet: bool,
    },
    /// Releases a timer; only if the step still waits for that very timer.
    FireTimer {
        workflow_id: String,
        sk: String,
        due_at: String,
    },
    UpdateInstance(InstanceUpdate),
    /// Sets fields inside the progress actor's `state` and bumps its version.
    Progress {
        actor: ActorKey,
        sets: Vec<(Vec<String>, Value)>,
    },
}

/// Whether a commit happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    Done,
    /// A condition did not hold: nothing was written (a duplicate, or state moved on).
    Refused,
}
