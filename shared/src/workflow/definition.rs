//! Workflow definitions: a named DAG of steps, written with a Rust builder or as JSON.
//!
//! A step names an action, its input (a JSON template whose `{"$ref": "..."}` objects read
//! the workflow input or earlier outputs, see [`super::reference`]), the steps it runs after
//! with the outcome each must have had (Logic Apps' `runAfter`), a retry policy, a timeout
//! and an optional compensation action. [`super::validate`] checks a definition when it is
//! registered.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The terminal outcome of a step, as `runAfter` conditions name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed,
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }
}

/// How the delay between attempts grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backoff {
    Fixed,
    Exponential,
}

/// Attempts and the delays between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = no retry).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_backoff")]
    pub backoff: Backoff,
    /// Delay after the first failed attempt.
    #[serde(default = "default_initial_delay_ms")]
    pub initial_delay_ms: u64,
    /// No delay is longer than this.
    #[serde(default = "default_max_delay_ms")]
    pub max_delay_ms: u64,
    /// Draw each delay at random from its upper half, so retries of many instances spread out.
    #[serde(default = "default_jitter")]
    pub jitter: bool,
}

fn default_max_attempts() -> u32 {
    3
}
fn default_backoff() -> Backoff {
    Backoff::Exponential
}
fn default_initial_delay_ms() -> u64 {
    200
}
fn default_max_delay_ms() -> u64 {
    60_000
}
fn default_jitter() -> bool {
    true
}
fn default_timeout_ms() -> u64 {
    30_000
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: default_max_attempts(),
            backoff: default_backoff(),
            initial_delay_ms: default_initial_delay_ms(),
            max_delay_ms: default_max_delay_ms(),
            jitter: default_jitter(),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retry.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    pub fn fixed(max_attempts: u32, delay: Duration) -> Self {
        Self {
            max_attempts,
            backoff: Backoff::Fixed,
            initial_delay_ms: delay.as_millis() as u64,
            max_delay_ms: delay.as_millis() as u64,
            jitter: false,
        }
    }

    pub fn exponential(max_attempts: u32, initial: Duration, max: Duration) -> Self {
        Self {
            max_attempts,
            backoff: Backoff::Exponential,
            initial_delay_ms: initial.as_millis() as u64,
            max_delay_ms: max.as_millis() as u64,
            jitter: true,
        }
    }

    pub fn without_jitter(mut self) -> Self {
        self.jitter = false;
        self
    }

    /// The delay before attempt `failed + 1`, after attempt `failed` (1-based) failed.
    pub fn delay_after(&self, failed: u32) -> Duration {
        let base = match self.backoff {
            Backoff::Fixed => self.initial_delay_ms,
            Backoff::Exponential => self
                .initial_delay_ms
                .saturating_mul(1u64 << failed.saturating_sub(1).min(32)),
        }
        .min(self.max_delay_ms);
        let millis = if self.jitter && base > 1 {
            base / 2 + crate::backoff::random_u64() % (base - base / 2 + 1)
        } else {
            base
        };
        Duration::from_millis(millis)
    }
}

/// One step of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StepDefinition {
    pub name: String,
    /// A registered action name.
    pub action: String,
    /// A JSON template; `{"$ref": "input.x"}` / `{"$ref": "steps.a.output.y"}` are replaced.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub input: Value,
    /// The steps this one waits for, with the outcomes each may have had for this one to run
    /// (otherwise it is skipped). No entry: it runs as soon as the workflow starts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub run_after: BTreeMap<String, Vec<Outcome>>,
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Each attempt fails after this long.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// An action that undoes this step's effect; run (newest first) when the workflow fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compensation: Option<String>,
}

impl StepDefinition {
    pub fn new(name: impl Into<String>, action: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            action: action.into(),
            input: Value::Null,
            run_after: BTreeMap::new(),
            retry: RetryPolicy::default(),
            timeout_ms: default_timeout_ms(),
            compensation: None,
        }
    }

    pub fn input(mut self, input: Value) -> Self {
        self.input = input;
        self
    }

    /// Runs after `step` succeeded.
    pub fn after(self, step: impl Into<String>) -> Self {
        self.after_with(step, &[Outcome::Succeeded])
    }

    /// Runs after `step` ended with one of `outcomes`.
    pub fn after_with(mut self, step: impl Into<String>, outcomes: &[Outcome]) -> Self {
        self.run_after.insert(step.into(), outcomes.to_vec());
        self
    }

    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout_ms = timeout.as_millis() as u64;
        self
    }

    pub fn compensate_with(mut self, action: impl Into<String>) -> Self {
        self.compensation = Some(action.into());
        self
    }

    pub fn timeout_duration(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// A named DAG of steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkflowDefinition {
    pub name: String,
    pub steps: Vec<StepDefinition>,
}

impl WorkflowDefinition {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            steps: Vec::new(),
        }
    }

    pub fn step(mut self, step: StepDefinition) -> Self {
        self.steps.push(step);
        self
    }

    /// Reads a definition from JSON (unvalidated: registration validates).
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    pub fn get(&self, name: &str) -> Option<&StepDefinition> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// The steps that list `step` in their `runAfter`, in definition order.
    pub fn dependents<'a>(&'a self, step: &'a str) -> impl Iterator<Item = &'a StepDefinition> + 'a {
        self.steps.iter().filter(move |s| s.run_after.contains_key(step))
    }

    /// Whether some step runs after `step` failed (so its failure does not fail the workflow).
    pub fn handles_failure_of(&self, step: &str) -> bool {
        self.dependents(step)
            .any(|d| d.run_after.get(step).is_some_and(|o| o.contains(&Outcome::Failed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_and_builder_give_the_same_definition() {
        let built = WorkflowDefinition::new("order")
            .step(StepDefinition::new("reserve", "inventory.reserve").input(json!({"sku": {"$ref": "input.sku"}})))
            .step(
                StepDefinition::new("charge", "payments.charge")
                    .after("reserve")
                    .retry(RetryPolicy::fixed(5, Duration::from_millis(10)))
                    .timeout(Duration::from_secs(2))
                    .compensate_with("payments.refund"),
            );
        let json = r#"{"name":"order","steps":[
            {"name":"reserve","action":"inventory.reserve","input":{"sku":{"$ref":"input.sku"}}},
            {"name":"charge","action":"payments.charge","runAfter":{"reserve":["succeeded"]},
             "retry":{"maxAttempts":5,"backoff":"fixed","initialDelayMs":10,"maxDelayMs":10,"jitter":false},
             "timeoutMs":2000,"compensation":"payments.refund"}]}"#;
        assert_eq!(WorkflowDefinition::from_json(json).expect("parses"), built);
        assert!(WorkflowDefinition::from_json(r#"{"name":"x","steps":[],"extra":1}"#).is_err());
    }

    #[test]
    fn exponential_delays_double_up_to_the_cap() {
        let policy =
            RetryPolicy::exponential(10, Duration::from_millis(100), Duration::from_millis(500)).without_jitter();
        let delays: Vec<u64> = (1..=5).map(|n| policy.delay_after(n).as_millis() as u64).collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
        let jittered = RetryPolicy::exponential(10, Duration::from_millis(100), Duration::from_secs(10));
        for _ in 0..50 {
            let d = jittered.delay_after(3).as_millis();
            assert!((200..=400).contains(&d), "{d}");
        }
    }
}
