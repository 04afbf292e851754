//! Workflows-stream handler: runs the step each record makes runnable, and (on the
//! scheduled event) fires due durable timers.
//!
//! One function serves both triggers: a DynamoDB stream batch (`Records`) is processed with
//! partial batch failures; any other event (the EventBridge schedule) sweeps the timers.

use std::time::Instant;

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::DynamoDbEventResponse;
use lambda_runtime::{Error, LambdaEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use statecast::lambda_events::batch_response;
use statecast::metrics::{Document, Metric};
use statecast::stream_events::workflow_stream_item;
use statecast::workflow::WorkflowService;
use tracing::info;

/// What invokes the function.
#[derive(Debug)]
pub enum WorkflowEvent {
    /// The workflows table's stream.
    Stream(Event),
    /// The timer schedule (an EventBridge scheduled event; its content is not used).
    Schedule(Value),
}

/// Dispatches on the event's shape: `Records` is a stream batch (which must then decode, or
/// the invocation fails and the mapping retries it: a batch is never mistaken for a tick and
/// dropped); `source: "aws.events"` is the schedule; anything else is refused.
impl<'de> Deserialize<'de> for WorkflowEvent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let value = Value::deserialize(deserializer)?;
        if value.get("Records").is_some() {
            return serde_json::from_value(value)
                .map(WorkflowEvent::Stream)
                .map_err(|e| D::Error::custom(format!("invalid DynamoDB stream event: {e}")));
        }
        if value.get("source").and_then(Value::as_str) == Some("aws.events") {
            return Ok(WorkflowEvent::Schedule(value));
        }
        Err(D::Error::custom(
            "expected a DynamoDB stream event (Records) or a scheduled event (source aws.events)",
        ))
    }
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum WorkflowResponse {
    Batch(DynamoDbEventResponse),
    Swept { fired: usize },
}

pub async fn handler(service: &WorkflowService, event: LambdaEvent<WorkflowEvent>) -> Result<WorkflowResponse, Error> {
    match event.payload {
        WorkflowEvent::Stream(batch) => Ok(WorkflowResponse::Batch(stream_handler(service, batch).await)),
        WorkflowEvent::Schedule(_) => {
            let fired = service.sweep_timers().await?;
            if fired > 0 {
                info!(fired, "timers fired");
            }
            Ok(WorkflowResponse::Swept { fired })
        }
    }
}

/// Processes one stream batch; the failed records come back as batch item failures.
pub async fn stream_handler(service: &WorkflowService, batch: Event) -> DynamoDbEventResponse {
    let started = Instant::now();
    let records = batch.records.len();
    let items = batch.records.into_iter().map(workflow_stream_item).collect();
    let failed = service.process(items).await;
    info!(records, failed = failed.len(), "workflow records processed");
    service.metrics().emit(
        Document::new()
            .count(Metric::BatchSize, records)
            .duration(Metric::BatchDuration, started.elapsed()),
    );
    batch_response(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_told_apart_by_shape_and_a_broken_batch_is_an_error() {
        let stream: WorkflowEvent = serde_json::from_str(r#"{"Records": []}"#).expect("stream");
        assert!(matches!(stream, WorkflowEvent::Stream(e) if e.records.is_empty()));
        let tick: WorkflowEvent =
            serde_json::from_str(r#"{"source": "aws.events", "detail-type": "Scheduled Event"}"#).expect("tick");
        assert!(matches!(tick, WorkflowEvent::Schedule(_)));
        let broken = serde_json::from_str::<WorkflowEvent>(r#"{"Records": [{"eventName": 7}]}"#);
        assert!(broken
            .expect_err("refused")
            .to_string()
            .contains("invalid DynamoDB stream event"));
        assert!(serde_json::from_str::<WorkflowEvent>(r#"{"hello": 1}"#).is_err());
    }
}
