//! Workflows: named DAGs of steps run as step-chained Lambda invocations, event-sourced in
//! the workflows table.
//!
//! `workflow.start` writes the instance, every step and a progress actor in one
//! transaction. The workflows table's stream invokes `functions/workflow`, which runs one
//! step per record ([`WorkflowService::process`]): it runs the action under the step's
//! idempotency key and timeout, then in one transaction records the result, counts the step
//! resolved for each step that runs after it (a join becomes runnable when its counter
//! reaches zero, which exactly one write can do) and updates the instance and progress
//! actor. The records those writes produce run the next steps. Retries wait in the
//! invocation when short and on a durable timer (the `byDue` index, swept on a schedule)
//! when long. A step that fails for good with no step running after its failure turns the
//! instance to compensating: the compensations of the succeeded steps run newest first,
//! then the instance ends failed (or cancelled, after `workflow.cancel`).
//!
//! # Layout
//! - [`definition`]: steps, `runAfter`, retry policy, the builder and JSON form.
//! - [`reference`]: `{"$ref": …}` input templates.
//! - [`validate`]: registration checks listing every problem.
//! - [`action`], [`registry`]: actions and workflows by name; [`example`]: the `order` saga.
//! - [`guard`]: circuit breakers and rate limits declared per action; [`guards`]: applying
//!   them around attempts over the shared store.
//! - [`model`]: stored items and the writes a commit is made of; [`store`]: the port.
//! - [`progress`]: the read-only `workflow` actor type and its state shape.
//! - `service`: start, cancel, batches, timers; `run`: one step's execution; `saga`: the
//!   compensation chain.

pub mod action;
pub mod definition;
pub mod example;
pub mod guard;
pub mod guards;
pub mod model;
pub mod progress;
pub mod reference;
pub mod registry;
mod run;
mod saga;
mod service;
pub mod store;
pub mod validate;

pub use action::{Action, ActionContext, ActionError, ActionRegistry, ActionResult};
pub use definition::{Backoff, Outcome, RetryPolicy, StepDefinition, WorkflowDefinition};
pub use guard::{ActionGuard, BreakerState};
pub use guards::Guards;
pub use model::{InstanceRecord, InstanceStatus, StepKind, StepRecord, StepState, WorkflowChange, WorkflowItem};
pub use progress::{WorkflowProgress, PROGRESS_ACTOR_TYPE};
pub use registry::WorkflowRegistry;
pub use service::{new_workflow_id, Started, WorkflowService, WorkflowSettings};
pub use store::WorkflowStore;
pub use validate::DefinitionError;
