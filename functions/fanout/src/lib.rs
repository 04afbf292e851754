//! Actors-stream handler: decodes the batch, fans every change out to its subscribers and
//! reports the records to retry as batch item failures. A record that does not decode is
//! skipped on its own (see [`statecast::stream_events`]).

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::DynamoDbEventResponse;
use lambda_runtime::{Error, LambdaEvent};
use statecast::lambda_events::batch_response;
use statecast::service::FanoutService;
use statecast::stream_events::actor_stream_item;
use tracing::info;

pub async fn handler(service: &FanoutService, event: LambdaEvent<Event>) -> Result<DynamoDbEventResponse, Error> {
    let records = event.payload.records.len();
    let items = event.payload.records.into_iter().map(actor_stream_item).collect();
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
