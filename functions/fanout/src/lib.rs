//! Actors-stream handler: decodes the batch, fans every change out to its subscribers and
//! reports the records to retry as batch item failures.

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::DynamoDbEventResponse;
use lambda_runtime::{Error, LambdaEvent};
use statecast::lambda_events::{batch_response, stream_item};
use statecast::service::FanoutService;
use tracing::info;

pub async fn handler(service: &FanoutService, event: LambdaEvent<Event>) -> Result<DynamoDbEventResponse, Error> {
    let records = event.payload.records.len();
    let items = event.payload.records.into_iter().map(stream_item).collect();
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
