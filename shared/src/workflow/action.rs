//! Actions: the Rust functions steps and compensations run, registered by name.
//!
//! An action gets an [`ActionContext`] with its resolved input and an idempotency key that is
//! the same on every run of one attempt (`<workflow id>/<step>/<attempt>`, with
//! `/compensate` for a compensation). A step whose result could not be recorded (a crash,
//! a lost write) is run again with the same key, so an action with an external effect passes
//! the key on (payment APIs take one) or checks it itself to keep the effect single.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::Value;

use crate::ids::TenantId;

/// What an action is told about the run it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionContext {
    pub tenant: TenantId,
    pub workflow_id: String,
    pub step: String,
    /// 1-based.
    pub attempt: u32,
    pub idempotency_key: String,
    pub input: Value,
}

/// Why an action failed; a retryable failure is tried again while the policy allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ActionError {
    pub message: String,
    pub retryable: bool,
}

impl ActionError {
    /// A failure worth retrying (a timeout, a dependency that may recover).
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }

    /// A failure no retry can fix (a declined card, invalid input).
    pub fn terminal(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }
}

pub type ActionResult = Result<Value, ActionError>;

/// A registered action. Any `Fn(ActionContext) -> impl Future<Output = ActionResult>` is one.
pub trait Action: Send + Sync {
    fn run(&self, context: ActionContext) -> BoxFuture<'static, ActionResult>;
}

impl<F, Fut> Action for F
where
    F: Fn(ActionContext) -> Fut + Send + Sync,
    Fut: Future<Output = ActionResult> + Send + 'static,
{
    fn run(&self, context: ActionContext) -> BoxFuture<'static, ActionResult> {
        Box::pin(self(context))
    }
}

/// Actions by name.
#[derive(Clone, Default)]
pub struct ActionRegistry {
    actions: HashMap<String, Arc<dyn Action>>,
    guards: HashMap<String, super::guard::ActionGuard>,
}

impl ActionRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, name: impl Into<String>, action: impl Action + 'static) -> Self {
        self.register(name, action);
        self
    }

    pub fn register(&mut self, name: impl Into<String>, action: impl Action + 'static) {
        self.actions.insert(name.into(), Arc::new(action));
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Action>> {
        self.actions.get(name).cloned()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.actions.contains_key(name)
    }

    /// Guards `name`'s attempts with a circuit breaker and/or a rate limit.
    pub fn set_guard(&mut self, name: impl Into<String>, guard: super::guard::ActionGuard) {
        self.guards.insert(name.into(), guard);
    }

    pub fn guard(&self, name: &str) -> Option<&super::guard::ActionGuard> {
        self.guards.get(name)
    }
}
