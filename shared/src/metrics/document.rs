//! One EMF document: the values of some [`Metric`]s for one operation, their dimensions and
//! extra properties (a request id, say) that stay searchable in CloudWatch Logs.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::{Metric, NAMESPACE};

/// EMF accepts at most this many values per metric in one document.
const MAX_VALUES: usize = 100;

/// Values to record together; see [`super::Metrics::emit`].
#[derive(Debug, Clone, Default)]
pub struct Document {
    values: BTreeMap<Metric, Vec<f64>>,
    outcome: Option<String>,
    properties: Map<String, Value>,
}

impl Document {
    pub fn new() -> Self {
        Self::default()
    }

    /// The `Outcome` dimension of the metrics split by it ([`Metric::by_outcome`]).
    pub fn outcome(mut self, outcome: impl Into<String>) -> Self {
        self.outcome = Some(outcome.into());
        self
    }

    /// Adds `n` to a count.
    pub fn count(self, metric: Metric, n: usize) -> Self {
        self.value(metric, n as f64)
    }

    /// Adds a duration, in milliseconds.
    pub fn duration(self, metric: Metric, duration: Duration) -> Self {
        self.value(metric, duration.as_secs_f64() * 1000.0)
    }

    /// Adds one value (a metric given several values keeps them all, up to 100).
    pub fn value(mut self, metric: Metric, value: f64) -> Self {
        let values = self.values.entry(metric).or_default();
        if values.len() < MAX_VALUES {
            values.push(value);
        }
        self
    }

    /// A property that is no metric (`requestId`, `traceId`): searchable, not aggregated.
    pub fn property(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.properties.insert(name.to_owned(), value.into());
        self
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The JSON line for `function` at `timestamp` (ms); `None` without values.
    pub(super) fn to_line(&self, function: &str, timestamp: i64) -> Option<String> {
        if self.values.is_empty() {
            return None;
        }
        let mut root = self.properties.clone();
        let mut plain = Vec::new();
        let mut split = Vec::new();
        for (metric, values) in &self.values {
            let definition = json!({"Name": metric.name(), "Unit": metric.unit().as_str()});
            match metric.by_outcome() {
                true => split.push(definition),
                false => plain.push(definition),
            }
            let value = match values.as_slice() {
                [one] => json!(one),
                many => json!(many),
            };
            root.insert(metric.name().to_owned(), value);
        }
        let mut directives = Vec::new();
        if !plain.is_empty() {
            directives.push(json!({"Namespace": NAMESPACE, "Dimensions": [["FunctionName"]], "Metrics": plain}));
        }
        if !split.is_empty() {
            directives.push(json!({
                "Namespace": NAMESPACE,
                "Dimensions": [["FunctionName", "Outcome"]],
                "Metrics": split,
            }));
            let outcome = self.outcome.as_deref().unwrap_or("none");
            root.insert("Outcome".to_owned(), json!(outcome));
        }
        root.insert("FunctionName".to_owned(), json!(function));
        root.insert(
            "_aws".to_owned(),
            json!({"Timestamp": timestamp, "CloudWatchMetrics": directives}),
        );
        Some(Value::Object(root).to_string())
    }
}
