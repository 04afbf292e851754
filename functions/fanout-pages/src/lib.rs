//! Page worker: delivers the pages a fan-out queued for a spread actor (SQS FIFO batches).
//! A batch's pages are grouped by message group (an actor's shard): each group's pages go
//! out one after the other, groups concurrently. A page whose shard cannot be read is
//! reported as a batch item failure together with the pages after it in its group, so the
//! queue gives them back in the same order; nothing of it was posted (see
//! [`FanoutService::deliver_page`]). A page that does not decode, or fails for good, can
//! never succeed: it is logged and dropped (its subscribers see the gap and resubscribe).

use std::collections::HashMap;
use std::time::Instant;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::future::join_all;
use lambda_runtime::{Error, LambdaEvent};
use statecast::error::chain;
use statecast::lambda_events::sqs_batch_response;
use statecast::metrics::{Document, Metric};
use statecast::service::{FanoutOutcome, FanoutService, PageTask};
use tracing::{error, info, warn};

pub async fn handler(service: &FanoutService, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let started = Instant::now();
    let messages = event.payload.records.len();
    let mut groups: Vec<Vec<SqsMessage>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for message in event.payload.records {
        let group = message.attributes.get("MessageGroupId").cloned().unwrap_or_default();
        let at = *index.entry(group).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[at].push(message);
    }
    let results = join_all(groups.into_iter().map(|group| deliver_group(service, group))).await;
    let mut total = FanoutOutcome::default();
    let mut failures = Vec::new();
    for (outcome, failed) in results {
        total.absorb(outcome);
        failures.extend(failed);
    }
    info!(
        pages = messages,
        delivered = total.delivered,
        gone = total.gone,
        throttled = total.throttled,
        failed = failures.len(),
        "delivered pages"
    );
    let metrics = service.metrics();
    if metrics.is_on() {
        metrics.emit(
            Document::new()
                .count(Metric::BatchSize, messages)
                .duration(Metric::BatchDuration, started.elapsed())
                .count(Metric::Deliveries, total.delivered)
                .count(Metric::GoneConnections, total.gone)
                .count(Metric::ThrottledPosts, total.throttled)
                .property("requestId", event.context.request_id.as_str()),
        );
    }
    Ok(sqs_batch_response(failures))
}

/// One group's pages in order; after a failure, that page and the rest are given back.
async fn deliver_group(service: &FanoutService, group: Vec<SqsMessage>) -> (FanoutOutcome, Vec<String>) {
    let mut total = FanoutOutcome::default();
    let mut failed = Vec::new();
    for message in group {
        let id = message.message_id.clone().unwrap_or_default();
        if !failed.is_empty() {
            failed.push(id);
            continue;
        }
        let page = match serde_json::from_str::<PageTask>(message.body.as_deref().unwrap_or("")) {
            Ok(page) => page,
            Err(e) => {
                error!(message = %id, error = %e, "dropped a page that does not decode");
                continue;
            }
        };
        let (actor, shard) = (page.actor.clone(), page.shard);
        match service.deliver_page(page).await {
            Ok(outcome) => total.absorb(outcome),
            Err(e) if e.is_retryable() => {
                warn!(%actor, shard, error = %chain(&e), "could not deliver a page; it is retried");
                failed.push(id);
            }
            Err(e) => error!(%actor, shard, error = %chain(&e), "dropped a page that can never be delivered"),
        }
    }
    (total, failed)
}
