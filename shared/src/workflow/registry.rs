//! Registered workflows and the actions their steps run.

use std::collections::HashMap;
use std::sync::Arc;

use super::action::{Action, ActionRegistry};
use super::definition::WorkflowDefinition;
use super::guard::ActionGuard;
use super::validate::{validate, DefinitionError};

#[derive(Clone, Default)]
pub struct WorkflowRegistry {
    actions: ActionRegistry,
    workflows: HashMap<String, Arc<WorkflowDefinition>>,
}

impl std::fmt::Debug for WorkflowRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&str> = self.names().collect();
        names.sort_unstable();
        f.debug_struct("WorkflowRegistry").field("workflows", &names).finish()
    }
}

impl WorkflowRegistry {
    pub fn new(actions: ActionRegistry) -> Self {
        Self {
            actions,
            workflows: HashMap::new(),
        }
    }

    /// Adds an action; register actions before the workflows that use them.
    pub fn action(mut self, name: impl Into<String>, action: impl Action + 'static) -> Self {
        self.actions.register(name, action);
        self
    }

    /// Validates and adds `definition`, replacing one of the same name.
    pub fn register(&mut self, definition: WorkflowDefinition) -> Result<(), DefinitionError> {
        validate(&definition, &self.actions)?;
        self.workflows.insert(definition.name.clone(), Arc::new(definition));
        Ok(())
    }

    pub fn with(mut self, definition: WorkflowDefinition) -> Result<Self, DefinitionError> {
        self.register(definition)?;
        Ok(self)
    }

    /// Reads, validates and adds a JSON definition.
    pub fn register_json(&mut self, json: &str) -> Result<(), DefinitionError> {
        let definition = WorkflowDefinition::from_json(json).map_err(|e| DefinitionError {
            workflow: String::new(),
            problems: vec![format!("not a workflow definition: {e}")],
        })?;
        self.register(definition)
    }

    pub fn workflow(&self, name: &str) -> Option<Arc<WorkflowDefinition>> {
        self.workflows.get(name).cloned()
    }

    pub fn actions(&self) -> &ActionRegistry {
        &self.actions
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.workflows.keys().map(String::as_str)
    }

    /// Guards the attempts of registered action `name`; every problem is listed.
    pub fn guard(&mut self, name: &str, guard: ActionGuard) -> Result<(), DefinitionError> {
        let mut problems = Vec::new();
        if !self.actions.contains(name) {
            problems.push(format!("action {name:?} is not registered"));
        }
        if let Some(breaker) = &guard.breaker {
            if breaker.failures == 0 {
                problems.push("a breaker opens after at least 1 failure".to_owned());
            }
            if breaker.window.is_zero() || breaker.open_for.is_zero() {
                problems.push("a breaker's window and open time must be above zero".to_owned());
            }
        }
        if guard.rate_limit == Some(0) {
            problems.push("a rate limit allows at least 1 attempt per second".to_owned());
        }
        if !problems.is_empty() {
            return Err(DefinitionError {
                workflow: format!("(guard of {name})"),
                problems,
            });
        }
        self.actions.set_guard(name, guard);
        Ok(())
    }
}
