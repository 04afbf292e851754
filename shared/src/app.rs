//! The application this deployment serves, declared once: every Lambda function, local mode
//! and the tests build their services from [`application`]. To add an actor type, write it in
//! a file of its own (see `actor/counter.rs`) and register it here with one `.actor(..)` line.

use serde_json::json;

use crate::actor::{Counter, TodoList};
use crate::application::Application;
use crate::trigger::{Secret, Trigger, TriggerError, Verification};
use crate::workflow::example::with_order_workflow;
use crate::workflow::DefinitionError;

/// Why the application cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Workflow(#[from] DefinitionError),
    #[error(transparent)]
    Trigger(#[from] TriggerError),
}

/// The actor types, workflows and triggers of this deployment. Fails at start-up, listing
/// every problem, when a workflow definition or a trigger is invalid.
pub fn application() -> Result<Application, AppError> {
    let app = with_order_workflow(Application::new().actor(Counter).actor(TodoList))?;
    Ok(app.triggers(example_triggers())?)
}

/// The example triggers, all acting for tenant `dev` (local mode's tenant):
/// - `todo-add`: a webhook signed with `TODO_HOOK_SECRET` whose body `{"list", "title"}`
///   adds an item to `todo/<list>`, once per `Statecast-Delivery` id;
/// - `todo-inbox`: the same from the messages of the `todo-inbox` queue;
/// - `nightly-clear`: clears the done items of `todo/groceries` at 03:00 UTC.
pub fn example_triggers() -> Vec<Trigger> {
    let add = json!({"title": {"$ref": "body.title"}});
    let list = || json!({"$ref": "body.list"});
    vec![
        Trigger::webhook("todo-add", Verification::hmac(Secret::env("TODO_HOOK_SECRET")))
            .tenant("dev")
            .delivery_header("Statecast-Delivery")
            .call_keyed("todo", list(), "add", add.clone()),
        Trigger::queue("todo-inbox", "todo-inbox")
            .tenant("dev")
            .call_keyed("todo", list(), "add", add),
        Trigger::schedule("nightly-clear", "cron(0 3 * * ? *)")
            .tenant("dev")
            .call("todo/groceries", "clear_done", json!({})),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_application_serves_the_examples() {
        let app = application().expect("valid");
        for actor_type in ["counter", "todo", crate::workflow::PROGRESS_ACTOR_TYPE] {
            assert!(app.actors().get(actor_type).is_some(), "{actor_type} is registered");
        }
        assert!(app.workflows().workflow("order").is_some());
        assert_eq!(app.trigger_list().len(), 3);
    }
}
