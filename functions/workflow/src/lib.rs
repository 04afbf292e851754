//! Workflows-stream handler: runs the step each record makes runnable, and (on the
//! scheduled event) fires due durable timers.
//!
//! One function serves both triggers: a DynamoDB stream batch (`Records`) is processed with
//! partial batch failures; any other event (the EventBridge schedule) sweeps the timers.

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::DynamoDbEventResponse;
use lambda_runtime::{Error, LambdaEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use statecast::lambda_events::batch_response;
use statecast::workflow::WorkflowService;
use statecast::workflow_events::workflow_stream_item;
use tracing::info;

/// What invokes the function.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum WorkflowEvent {
    /// The workflows table's stream.
    Stream(Event),
    /// The timer schedule (an EventBridge scheduled event; its content is not used).
    Schedule(Value),
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
    let records = batch.records.len();
    let items = batch.records.into_iter().map(workflow_stream_item).collect();
    let failed = service.process(items).await;
    info!(records, failed = failed.len(), "workflow records processed");
    batch_response(failed)
}
