//! Actors-stream handler: decodes the batch, fans every change out to its subscribers and
//! reports the records to retry as batch item failures. A record that does not decode is
//! skipped on its own (see [`statecast::stream_events`]). Each batch records one EMF document
//! (size, duration, deliveries, gone and throttled posts, and each record's lag).

use std::time::Instant;

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::DynamoDbEventResponse;
use lambda_runtime::{Error, LambdaEvent};
use statecast::lambda_events::batch_response;
use statecast::metrics::{Document, Metric};
use statecast::records::now_millis;
use statecast::service::FanoutService;
use statecast::stream_events::actor_stream_item;
use tracing::info;

pub async fn handler(service: &FanoutService, event: LambdaEvent<Event>) -> Result<DynamoDbEventResponse, Error> {
    let started = Instant::now();
    let records = event.payload.records.len();
    let metered = service.metrics().is_on();
    let created: Vec<i64> = match metered {
        true => event
            .payload
            .records
            .iter()
            .map(|r| r.change.approximate_creation_date_time.timestamp_millis())
            .collect(),
        false => Vec::new(),
    };
    let items = event.payload.records.into_iter().map(actor_stream_item).collect();
    let outcome = service.fan_out(items).await;
    info!(
        records,
        delivered = outcome.delivered,
        gone = outcome.gone,
        throttled = outcome.throttled,
        failed = outcome.failed.len(),
        "fanned out"
    );
    if metered {
        let now = now_millis();
        let lags = created.iter().filter(|&&c| c > 0).map(|c| (now - c).max(0) as f64);
        let document = lags.fold(Document::new(), |d, lag| d.value(Metric::FanoutLag, lag));
        service.metrics().emit(
            document
                .count(Metric::BatchSize, records)
                .duration(Metric::BatchDuration, started.elapsed())
                .count(Metric::Deliveries, outcome.delivered)
                .count(Metric::GoneConnections, outcome.gone)
                .count(Metric::ThrottledPosts, outcome.throttled)
                .property("requestId", event.context.request_id.as_str()),
        );
    }
    Ok(batch_response(outcome.failed))
}
