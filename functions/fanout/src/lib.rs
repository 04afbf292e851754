//! Actors-stream handler: decodes the batch, fans every change out to its subscribers and
//! reports the records to retry as batch item failures.
//!
//! The runtime deserializes the payload straight into an [`ActorStreamEvent`]: the images'
//! DynamoDB JSON becomes actor records without an `AttributeValue` tree in between, and a
//! record that does not decode is skipped on its own (see [`statecast::stream_json`]).

use aws_lambda_events::streams::DynamoDbEventResponse;
use lambda_runtime::{Error, LambdaEvent};
use statecast::lambda_events::batch_response;
use statecast::service::FanoutService;
use statecast::stream_json::ActorStreamEvent;
use tracing::info;

pub async fn handler(
    service: &FanoutService,
    event: LambdaEvent<ActorStreamEvent>,
) -> Result<DynamoDbEventResponse, Error> {
    let records = event.payload.records.len();
    let items = event.payload.into_stream_items();
    let outcome = service.fan_out(items).await;
    info!(
        records,
        delivered = outcome.delivered,
        gone = outcome.gone,
        failed = outcome.failed.len(),
        "fanned out"
    );
    Ok(batch_response(outcome.failed))
}
