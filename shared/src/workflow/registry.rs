//! Registered workflows and the actions their steps run.

use std::collections::HashMap;
use std::sync::Arc;

use super::action::{Action, ActionRegistry};
use super::definition::WorkflowDefinition;
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
}
