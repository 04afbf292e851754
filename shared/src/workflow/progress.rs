//! Progress as an actor: each instance's status lives in actor `workflow/<id>` of its
//! tenant, so clients subscribe to it and get deltas through the ordinary fan-out.
//!
//! State shape:
//! ```json
//! {"workflow": "order", "status": "running", "createdAt": 1700000000000,
//!  "steps": {"reserve": {"status": "succeeded", "attempts": 1, "startedAt": …, "finishedAt": …,
//!                        "output": {…}, "compensation": {"status": "succeeded", "attempts": 1}}},
//!  "cause": "…", "finishedAt": …}
//! ```
//! A retrying step of an action with a circuit breaker also shows the breaker's state
//! (`"breaker": "open"`, `"half-open"` or `"closed"`).
//! Step statuses: `waiting`, `running`, `retrying`, `succeeded`, `failed`, `skipped`,
//! `cancelled`; instance statuses: see [`super::InstanceStatus`].

use serde_json::{json, Map, Value};

use super::definition::WorkflowDefinition;
use super::model::InstanceStatus;
use crate::actor::{Actor, ActorError};
use crate::protocol::ErrorCode;

/// The actor type of progress actors.
pub const PROGRESS_ACTOR_TYPE: &str = "workflow";

/// The read-only actor type clients subscribe to; only the workflow engine writes it.
pub struct WorkflowProgress;

impl Actor for WorkflowProgress {
    type State = Value;

    fn actor_type(&self) -> &'static str {
        PROGRESS_ACTOR_TYPE
    }

    fn call(&self, _state: &mut Value, _method: &str, _args: Value) -> Result<Value, ActorError> {
        Err(ActorError::new(
            ErrorCode::Forbidden,
            "workflow progress is read-only; use workflow.cancel or workflow.status",
        ))
    }
}

/// The first state: every step waiting.
pub fn initial_state(definition: &WorkflowDefinition, created_at: i64) -> Value {
    let steps: Map<String, Value> = definition
        .steps
        .iter()
        .map(|s| (s.name.clone(), json!({"status": "waiting", "attempts": 0})))
        .collect();
    json!({
        "workflow": definition.name,
        "status": InstanceStatus::Running.as_str(),
        "createdAt": created_at,
        "steps": steps,
    })
}

/// A path inside the state.
pub fn path(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| (*p).to_owned()).collect()
}

/// What one step shows.
#[derive(Debug, Clone, Default)]
pub struct StepView<'a> {
    pub status: &'a str,
    pub attempts: u32,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub output: Option<&'a Value>,
    pub error: Option<&'a str>,
    pub next_attempt_at: Option<i64>,
    /// The state of the action's circuit breaker after a retryable failure, when it has one.
    pub breaker: Option<&'a str>,
}

impl StepView<'_> {
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        map.insert("status".into(), json!(self.status));
        map.insert("attempts".into(), json!(self.attempts));
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(v) = value {
                map.insert(key.into(), v);
            }
        };
        put("startedAt", self.started_at.map(Value::from));
        put("finishedAt", self.finished_at.map(Value::from));
        put("output", self.output.cloned());
        put("error", self.error.map(Value::from));
        put("nextAttemptAt", self.next_attempt_at.map(Value::from));
        put("breaker", self.breaker.map(Value::from));
        Value::Object(map)
    }
}
