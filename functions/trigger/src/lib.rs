//! Trigger handler: one function for the three ways in. An HTTP API request
//! (`POST /hooks/{trigger}`, payload format 2.0) is a webhook; an SQS batch (`Records`) is
//! applied with partial batch failures; `{"schedule": "<trigger>"}` (the schedule's input) is
//! a tick. The work is the shared [`TriggerService`]'s; this crate only adapts the events.

mod http;
mod sqs;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use statecast::records::now_millis;
use statecast::trigger::TriggerService;
use tracing::info;

pub use http::{webhook_request, webhook_response};
pub use sqs::{queue_messages, QueueNames};

/// What the function needs, built once per container.
pub struct Deps {
    pub service: TriggerService,
    pub queues: QueueNames,
}

impl Deps {
    pub fn new(service: TriggerService, queues: QueueNames) -> Self {
        Self { service, queues }
    }
}

/// What invokes the function.
#[derive(Debug)]
pub enum TriggerEvent {
    Http(Box<ApiGatewayV2httpRequest>),
    Queue(SqsEvent),
    Schedule { trigger: String },
}

/// Dispatches on the event's shape: `Records` is an SQS batch, `requestContext` an HTTP API
/// request, `schedule` a tick; anything else is refused (and fails the invocation).
impl<'de> Deserialize<'de> for TriggerEvent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let value = Value::deserialize(deserializer)?;
        let invalid = |what: &str, e: serde_json::Error| D::Error::custom(format!("invalid {what}: {e}"));
        if value.get("Records").is_some() {
            return serde_json::from_value(value)
                .map(TriggerEvent::Queue)
                .map_err(|e| invalid("SQS event", e));
        }
        if value.get("requestContext").is_some() {
            return serde_json::from_value(value)
                .map(|r| TriggerEvent::Http(Box::new(r)))
                .map_err(|e| invalid("HTTP API request", e));
        }
        if let Some(trigger) = value.get("schedule").and_then(Value::as_str) {
            return Ok(TriggerEvent::Schedule {
                trigger: trigger.to_owned(),
            });
        }
        Err(D::Error::custom(
            "expected an HTTP API request, an SQS event (Records) or a schedule input ({\"schedule\": name})",
        ))
    }
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum TriggerResponse {
    Http(Box<ApiGatewayV2httpResponse>),
    Batch(SqsBatchResponse),
    Scheduled(Value),
}

pub async fn handler(deps: &Deps, event: LambdaEvent<TriggerEvent>) -> Result<TriggerResponse, Error> {
    match event.payload {
        TriggerEvent::Http(request) => {
            let reply = match webhook_request(&request) {
                Ok(request) => deps.service.webhook(&request).await,
                Err(reply) => reply,
            };
            Ok(TriggerResponse::Http(Box::new(webhook_response(&reply))))
        }
        TriggerEvent::Queue(batch) => {
            let records = batch.records.len();
            let failed = deps.service.queue_batch(queue_messages(batch, &deps.queues)).await;
            info!(records, failed = failed.len(), "queue batch applied");
            Ok(TriggerResponse::Batch(sqs::batch_response(failed)))
        }
        TriggerEvent::Schedule { trigger } => {
            // A failed tick fails the invocation, so EventBridge retries it.
            let fired = deps.service.tick(&trigger, now_millis()).await?;
            info!(%trigger, "schedule fired");
            Ok(TriggerResponse::Scheduled(fired.to_json()))
        }
    }
}
