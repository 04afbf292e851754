//! Registration-time checks of a [`WorkflowDefinition`]: every problem is collected, so one
//! error lists all of them (unknown actions, cycles, missing dependencies, bad references,
//! limits).

use std::collections::{BTreeMap, BTreeSet};

use super::action::ActionRegistry;
use super::definition::WorkflowDefinition;
use super::reference::{references, Reference};

/// Most steps in one workflow. A step's completion is one DynamoDB transaction holding the
/// step, each step that runs after it, the instance and the progress actor (limit 100 items);
/// starting writes every step at once.
pub const MAX_STEPS: usize = 90;
/// Longest attempt timeout: a Lambda invocation lasts at most 15 minutes.
pub const MAX_TIMEOUT_MS: u64 = 14 * 60 * 1000;
pub const MAX_ATTEMPTS: u32 = 100;

/// A definition that cannot be registered, with every reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("workflow {workflow:?} is invalid: {}", problems.join("; "))]
pub struct DefinitionError {
    pub workflow: String,
    pub problems: Vec<String>,
}

/// Names of workflows and steps: 1–64 of `A-Z a-z 0-9 _ - .`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

pub fn validate(definition: &WorkflowDefinition, actions: &ActionRegistry) -> Result<(), DefinitionError> {
    let mut problems = Vec::new();
    if !is_valid_name(&definition.name) {
        problems.push(format!(
            "workflow name {:?} must be 1-64 of A-Z a-z 0-9 _ - .",
            definition.name
        ));
    }
    if definition.steps.is_empty() {
        problems.push("a workflow needs at least one step".to_owned());
    }
    if definition.steps.len() > MAX_STEPS {
        problems.push(format!(
            "{} steps; at most {MAX_STEPS} are allowed",
            definition.steps.len()
        ));
    }
    let mut names = BTreeSet::new();
    for step in &definition.steps {
        if !is_valid_name(&step.name) {
            problems.push(format!("step name {:?} must be 1-64 of A-Z a-z 0-9 _ - .", step.name));
        }
        if !names.insert(step.name.as_str()) {
            problems.push(format!("step {:?} is defined more than once", step.name));
        }
    }
    for step in &definition.steps {
        let at = format!("step {:?}", step.name);
        if !actions.contains(&step.action) {
            problems.push(format!("{at}: action {:?} is not registered", step.action));
        }
        if let Some(compensation) = &step.compensation {
            if !actions.contains(compensation) {
                problems.push(format!("{at}: compensation action {compensation:?} is not registered"));
            }
        }
        for (dependency, outcomes) in &step.run_after {
            if dependency == &step.name {
                problems.push(format!("{at} runs after itself"));
            } else if !names.contains(dependency.as_str()) {
                problems.push(format!("{at} runs after {dependency:?}, which is not a step"));
            }
            if outcomes.is_empty() {
                problems.push(format!("{at}: runAfter {dependency:?} names no outcome"));
            }
        }
        let retry = &step.retry;
        if retry.max_attempts == 0 || retry.max_attempts > MAX_ATTEMPTS {
            problems.push(format!("{at}: maxAttempts must be 1-{MAX_ATTEMPTS}"));
        }
        if retry.initial_delay_ms > retry.max_delay_ms {
            problems.push(format!("{at}: initialDelayMs is above maxDelayMs"));
        }
        if step.timeout_ms == 0 || step.timeout_ms > MAX_TIMEOUT_MS {
            problems.push(format!("{at}: timeoutMs must be 1-{MAX_TIMEOUT_MS}"));
        }
    }
    let cycle = cyclic_steps(definition);
    if !cycle.is_empty() {
        problems.push(format!("steps {} form a cycle", cycle.join(", ")));
    } else {
        let ancestors = ancestors(definition);
        for step in &definition.steps {
            let (found, malformed) = references(&step.input);
            problems.extend(malformed.into_iter().map(|p| format!("step {:?}: {p}", step.name)));
            for reference in found {
                if let Reference::Output { step: source, .. } = reference {
                    let runs_after = ancestors
                        .get(step.name.as_str())
                        .is_some_and(|a| a.contains(source.as_str()));
                    if !names.contains(source.as_str()) {
                        problems.push(format!(
                            "step {:?} reads the output of unknown step {source:?}",
                            step.name
                        ));
                    } else if !runs_after {
                        problems.push(format!(
                            "step {:?} reads the output of {source:?} but does not run after it",
                            step.name
                        ));
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(DefinitionError {
            workflow: definition.name.clone(),
            problems,
        })
    }
}

/// The steps left after repeatedly removing those whose dependencies are all removed (Kahn):
/// empty when the graph has no cycle. Unknown dependencies are ignored here.
fn cyclic_steps(definition: &WorkflowDefinition) -> Vec<String> {
    let known: BTreeSet<&str> = definition.steps.iter().map(|s| s.name.as_str()).collect();
    let mut left: BTreeMap<&str, BTreeSet<&str>> = definition
        .steps
        .iter()
        .map(|s| {
            let deps = s
                .run_after
                .keys()
                .map(String::as_str)
                .filter(|d| known.contains(d))
                .collect();
            (s.name.as_str(), deps)
        })
        .collect();
    loop {
        let ready: Vec<&str> = left.iter().filter(|(_, d)| d.is_empty()).map(|(n, _)| *n).collect();
        if ready.is_empty() {
            break;
        }
        for name in ready {
            left.remove(name);
            for deps in left.values_mut() {
                deps.remove(name);
            }
        }
    }
    left.keys().map(|s| (*s).to_owned()).collect()
}

/// Every step each step (transitively) runs after. Only called on acyclic definitions.
fn ancestors(definition: &WorkflowDefinition) -> BTreeMap<&str, BTreeSet<&str>> {
    fn collect<'a>(definition: &'a WorkflowDefinition, step: &str, into: &mut BTreeSet<&'a str>) {
        if let Some(s) = definition.get(step) {
            for dep in s.run_after.keys() {
                if let Some(d) = definition.get(dep) {
                    if into.insert(d.name.as_str()) {
                        collect(definition, dep, into);
                    }
                }
            }
        }
    }
    definition
        .steps
        .iter()
        .map(|s| {
            let mut set = BTreeSet::new();
            collect(definition, &s.name, &mut set);
            (s.name.as_str(), set)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::definition::StepDefinition;
    use crate::workflow::ActionResult;
    use serde_json::{json, Value};

    fn actions() -> ActionRegistry {
        async fn ok(_: crate::workflow::ActionContext) -> ActionResult {
            Ok(Value::Null)
        }
        ActionRegistry::new().with("a", ok).with("b", ok)
    }

    #[test]
    fn a_valid_dag_passes() {
        let def = WorkflowDefinition::new("w")
            .step(StepDefinition::new("one", "a"))
            .step(StepDefinition::new("two", "b").after("one"))
            .step(
                StepDefinition::new("three", "a")
                    .after("one")
                    .after("two")
                    .input(json!({"x": {"$ref": "steps.one.output.x"}})),
            );
        validate(&def, &actions()).expect("valid");
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let def = WorkflowDefinition::new("bad name!")
            .step(StepDefinition::new("one", "nope").compensate_with("undo"))
            .step(StepDefinition::new("two", "a").after("three"))
            .step(StepDefinition::new("three", "a").after("two"))
            .step(StepDefinition::new("four", "a").after("ghost"))
            .step(StepDefinition::new("four", "a"));
        let err = validate(&def, &actions()).expect_err("invalid");
        let text = err.to_string();
        for expected in [
            "workflow name",
            "action \"nope\" is not registered",
            "compensation action \"undo\"",
            "steps three, two form a cycle",
            "runs after \"ghost\", which is not a step",
            "\"four\" is defined more than once",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in {text}");
        }
        assert_eq!(err.problems.len(), 6, "{:?}", err.problems);
    }

    #[test]
    fn references_must_point_at_steps_that_run_before() {
        let def = WorkflowDefinition::new("w")
            .step(StepDefinition::new("one", "a"))
            .step(StepDefinition::new("two", "a").input(json!({"$ref": "steps.one.output"})))
            .step(StepDefinition::new("three", "a").input(json!({"$ref": "steps.zzz.output"})))
            .step(StepDefinition::new("four", "a").input(json!({"$ref": "outputs.one"})));
        let err = validate(&def, &actions()).expect_err("invalid");
        assert_eq!(err.problems.len(), 3, "{:?}", err.problems);
        assert!(err.problems[0].contains("does not run after"));
    }
}
