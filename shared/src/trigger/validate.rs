//! Start-up checks of an application's triggers: every problem of every trigger is collected
//! into one [`TriggerError`] (bad names, duplicates, missing tenants or targets, unknown actor
//! types or workflows, references outside the event, bad schedules and header names).

use std::collections::BTreeSet;

use serde_json::Value;

use super::definition::{Source, Target, Trigger, Verification};
use super::schedule::Schedule;
use super::template::{self, QUEUE_FIELDS, SCHEDULE_FIELDS, WEBHOOK_FIELDS};
use crate::actor::ActorRegistry;
use crate::ids::{ActorAddress, TenantId};
use crate::workflow::{WorkflowRegistry, PROGRESS_ACTOR_TYPE};

/// Lambda's synchronous payload limit bounds any webhook body.
pub const MAX_BODY_LIMIT: usize = 6 * 1024 * 1024;

/// Triggers that cannot be served, with every reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid triggers: {}", problems.join("; "))]
pub struct TriggerError {
    pub problems: Vec<String>,
}

/// Trigger names are URL path segments: 1–64 of `A-Z a-z 0-9 _ -` (a workflow name without dots).
pub fn is_valid_name(name: &str) -> bool {
    crate::workflow::validate::is_valid_name(name) && !name.contains('.')
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Checks `triggers` against the application's actor types and workflows.
pub fn validate(
    triggers: &[Trigger],
    actors: &ActorRegistry,
    workflows: &WorkflowRegistry,
) -> Result<(), TriggerError> {
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    for trigger in triggers {
        let mut add = |problem: String| problems.push(format!("trigger {:?}: {problem}", trigger.name));
        if !is_valid_name(&trigger.name) {
            add("the name must be 1-64 of A-Z a-z 0-9 _ -".into());
        }
        if !names.insert(trigger.name.as_str()) {
            add("the name is declared twice".into());
        }
        match &trigger.tenant {
            None => add("no tenant: a trigger acts for one tenant, set with .tenant(..)".into()),
            Some(tenant) => {
                if let Err(e) = TenantId::new(tenant.clone()) {
                    add(format!("invalid tenant: {e}"));
                }
            }
        }
        let fields = source_problems(&trigger.source, &mut add);
        match &trigger.target {
            None => add("no target: declare .call(..) or .start_workflow(..)".into()),
            Some(target) => target_problems(target, fields, actors, workflows, &mut add),
        }
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(TriggerError { problems }),
    }
}

/// The source's problems; returns the fields its events have.
fn source_problems(source: &Source, add: &mut impl FnMut(String)) -> &'static [&'static str] {
    match source {
        Source::Webhook(hook) => {
            if let Verification::Hmac { header, tolerance, .. } = &hook.verification {
                if !is_header_name(header) {
                    add(format!("signature header {header:?} is not a header name"));
                }
                if tolerance.is_zero() {
                    add("the signature tolerance must be above zero".into());
                }
            }
            if let Some(header) = hook.delivery_header.as_deref().filter(|h| !is_header_name(h)) {
                add(format!("delivery header {header:?} is not a header name"));
            }
            if hook.max_body_bytes == 0 || hook.max_body_bytes > MAX_BODY_LIMIT {
                add(format!("the body limit must be 1..={MAX_BODY_LIMIT} bytes"));
            }
            WEBHOOK_FIELDS
        }
        Source::Queue { queue } => {
            let valid = !queue.is_empty()
                && queue.len() <= 80
                && queue
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid {
                add(format!("queue name {queue:?} must be 1-80 of A-Z a-z 0-9 - _"));
            }
            QUEUE_FIELDS
        }
        Source::Schedule { expression } => {
            if let Err(e) = Schedule::parse(expression) {
                add(e);
            }
            SCHEDULE_FIELDS
        }
    }
}

fn target_problems(
    target: &Target,
    fields: &[&str],
    actors: &ActorRegistry,
    workflows: &WorkflowRegistry,
    add: &mut impl FnMut(String),
) {
    let templates: Vec<&Value> = match target {
        Target::Call {
            actor_type,
            id,
            method,
            args,
        } => {
            if actor_type == PROGRESS_ACTOR_TYPE {
                add("workflow progress actors are read-only".into());
            } else if actors.get(actor_type).is_none() {
                add(format!("no actor type {actor_type:?} is registered"));
            }
            match id {
                Value::String(id) => {
                    if let Err(e) = ActorAddress::parse(&format!("{actor_type}/{id}")) {
                        add(format!("actor {actor_type}/{id}: {e}"));
                    }
                }
                Value::Object(_) => {}
                _ => add("the actor id must be a string or a {\"$ref\": ..} template (call \"type/id\")".into()),
            }
            if method.is_empty() {
                add("the method is empty".into());
            }
            vec![id, args]
        }
        Target::StartWorkflow { workflow, input } => {
            if workflows.workflow(workflow).is_none() {
                add(format!("no workflow {workflow:?} is registered"));
            }
            vec![input]
        }
    };
    for problem in templates.into_iter().flat_map(|t| template::check(t, fields)) {
        add(problem);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::trigger::definition::Secret;

    #[test]
    fn every_problem_of_every_trigger_is_listed_in_one_error() {
        let app = crate::app::application().expect("valid");
        let triggers = vec![
            Trigger::webhook("ok", Verification::None).tenant("dev").call(
                "todo/a",
                "add",
                json!({"title": {"$ref": "body.title"}}),
            ),
            Trigger::webhook("ok", Verification::hmac(Secret::value("s")))
                .tenant("dev")
                .delivery_header("bad header")
                .call("nope/a", "x", json!({"x": {"$ref": "input.x"}})),
            Trigger::schedule("bad name!", "every day").start_workflow("missing", json!({})),
            Trigger::queue("q", "inbox").tenant("dev"),
        ];
        let error = validate(&triggers, app.actors(), app.workflows()).expect_err("invalid");
        let expected = [
            "\"ok\": the name is declared twice",
            "delivery header \"bad header\"",
            "no actor type \"nope\"",
            "\"input.x\" must start with one of",
            "\"bad name!\": the name must be",
            "\"bad name!\": no tenant",
            "every day",
            "no workflow \"missing\"",
            "\"q\": no target",
        ];
        for text in expected {
            assert!(error.problems.iter().any(|p| p.contains(text)), "{text} in {error}");
        }
        assert_eq!(error.problems.len(), expected.len(), "{error}");
    }
}
