//! The application this deployment serves, declared once: every Lambda function, local mode
//! and the tests build their services from [`application`]. To add an actor type, write it in
//! a file of its own (see `actor/counter.rs`) and register it here with one `.actor(..)` line.

use crate::actor::{Counter, TodoList};
use crate::application::Application;
use crate::workflow::example::with_order_workflow;
use crate::workflow::DefinitionError;

/// The actor types and workflows of this deployment. Fails at start-up, listing every
/// problem, when a workflow definition is invalid.
pub fn application() -> Result<Application, DefinitionError> {
    let app = Application::new().actor(Counter).actor(TodoList);
    with_order_workflow(app)
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
    }
}
