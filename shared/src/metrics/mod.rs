//! Metrics in CloudWatch Embedded Metric Format (EMF): one JSON document per line on stdout,
//! which CloudWatch Logs turns into metrics — no API call, nothing to wait for.
//!
//! Every metric the functions record is a [`Metric`] (name, unit, dimensions); the README's
//! "Operations" table lists them and the dashboard in `template.yaml` shows them (both checked by
//! tests). A function builds one [`Metrics`] (its name is the `FunctionName` dimension) with a
//! [`MetricsWriter`]: [`StdoutWriter`] on Lambda, [`CaptureWriter`] in tests, none (off) by
//! default.

mod document;
mod writer;

use std::fmt;
use std::sync::Arc;

pub use document::Document;
pub use writer::{CaptureWriter, MetricsWriter, StdoutWriter};

/// The namespace of every metric.
pub const NAMESPACE: &str = "Statecast";

/// CloudWatch units used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// Every metric a function (or local mode's stream emulator) records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// `$connect` stored a connection.
    ConnectionsOpened,
    /// `$disconnect` removed a connection.
    ConnectionsClosed,
    /// A `call` answered, by `Outcome` (`ok` or the error code).
    Calls,
    /// How long a `call` took in the function, by `Outcome`.
    CallLatency,
    /// A call's conditional write lost to another writer (each retry counts).
    Conflicts,
    /// Frames posted to subscribers.
    Deliveries,
    /// Posts answered 410 Gone (the connection and its subscriptions are removed).
    GoneConnections,
    /// Posts API Gateway throttled (beyond the SDK's retries; the change is retried).
    ThrottledPosts,
    /// Now minus the stream record's creation time, one value per record fanned out.
    FanoutLag,
    /// Records in a stream batch.
    BatchSize,
    /// How long a stream batch took.
    BatchDuration,
    /// Workflow steps (and compensations) run, by `Outcome` (`succeeded`, `failed`, `retried`).
    WorkflowSteps,
    /// How long a step's action ran, by `Outcome`.
    StepDuration,
    /// Records a stream mapping gave up on and described on its on-failure destination. Local
    /// mode's emulator records it; on AWS the queue's `NumberOfMessagesSent` counts them.
    OnFailureRecords,
}

impl Metric {
    pub const ALL: [Metric; 14] = [
        Metric::ConnectionsOpened,
        Metric::ConnectionsClosed,
        Metric::Calls,
        Metric::CallLatency,
        Metric::Conflicts,
        Metric::Deliveries,
        Metric::GoneConnections,
        Metric::ThrottledPosts,
        Metric::FanoutLag,
        Metric::BatchSize,
        Metric::BatchDuration,
        Metric::WorkflowSteps,
        Metric::StepDuration,
        Metric::OnFailureRecords,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::ConnectionsOpened => "ConnectionsOpened",
            Metric::ConnectionsClosed => "ConnectionsClosed",
            Metric::Calls => "Calls",
            Metric::CallLatency => "CallLatency",
            Metric::Conflicts => "Conflicts",
            Metric::Deliveries => "Deliveries",
            Metric::GoneConnections => "GoneConnections",
            Metric::ThrottledPosts => "ThrottledPosts",
            Metric::FanoutLag => "FanoutLag",
            Metric::BatchSize => "BatchSize",
            Metric::BatchDuration => "BatchDuration",
            Metric::WorkflowSteps => "WorkflowSteps",
            Metric::StepDuration => "StepDuration",
            Metric::OnFailureRecords => "OnFailureRecords",
        }
    }

    pub fn unit(self) -> Unit {
        match self {
            Metric::CallLatency | Metric::FanoutLag | Metric::BatchDuration | Metric::StepDuration => {
                Unit::Milliseconds
            }
            _ => Unit::Count,
        }
    }

    /// Whether the metric is split by an `Outcome` dimension (besides `FunctionName`).
    pub fn by_outcome(self) -> bool {
        matches!(
            self,
            Metric::Calls | Metric::CallLatency | Metric::WorkflowSteps | Metric::StepDuration
        )
    }

    /// Recorded only by local mode (AWS has its own metric for it).
    pub fn local_only(self) -> bool {
        self == Metric::OnFailureRecords
    }
}

/// Where one function's metrics go, and the `FunctionName` dimension they carry. Cheap to
/// clone; [`Metrics::off`] (the default) writes nothing.
#[derive(Clone)]
pub struct Metrics {
    writer: Option<Arc<dyn MetricsWriter>>,
    function: Arc<str>,
}

impl Metrics {
    /// Metrics of `function` written to `writer`.
    pub fn new(function: impl Into<String>, writer: Arc<dyn MetricsWriter>) -> Self {
        Self {
            writer: Some(writer),
            function: function.into().into(),
        }
    }

    /// Metrics of `function` on stdout, where Lambda's log capture picks them up.
    pub fn stdout(function: impl Into<String>) -> Self {
        Self::new(function, Arc::new(StdoutWriter))
    }

    /// Metrics on stdout named after the Lambda function running this process
    /// (`AWS_LAMBDA_FUNCTION_NAME`, which the dashboard uses), or `fallback` outside Lambda.
    pub fn lambda(fallback: &str) -> Self {
        let name = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| fallback.to_owned());
        Self::stdout(name)
    }

    /// Records nothing.
    pub fn off() -> Self {
        Self {
            writer: None,
            function: "".into(),
        }
    }

    /// The same writer, for another function (local mode runs them all in one process).
    pub fn for_function(&self, function: impl Into<String>) -> Self {
        Self {
            writer: self.writer.clone(),
            function: function.into().into(),
        }
    }

    pub fn is_on(&self) -> bool {
        self.writer.is_some()
    }

    pub fn function(&self) -> &str {
        &self.function
    }

    /// Writes `document` (nothing when off or when it holds no value).
    pub fn emit(&self, document: Document) {
        if let Some(writer) = &self.writer {
            if let Some(line) = document.to_line(&self.function, crate::records::now_millis()) {
                writer.write_line(&line);
            }
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::off()
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("function", &self.function)
            .field("on", &self.is_on())
            .finish()
    }
}

#[cfg(test)]
mod tests;
