//! Queue and schedule events: each SQS message becomes one call or start (once per message
//! id, so a redelivered message is a no-op); a batch reports the messages that failed, so the
//! rest proceed and the failed ones return to the queue (and, after its retries, to its
//! dead-letter queue). A schedule tick fires its trigger with the time.

use std::collections::BTreeMap;

use futures::stream::{self, StreamExt};
use serde_json::{json, Value};
use tracing::warn;

use super::definition::Source;
use super::service::{Delivery, FireError, Fired, TriggerService};

/// Messages of one batch handled at once.
const CONCURRENCY: usize = 8;

/// One queue message, as the SQS adapter reads it.
#[derive(Debug, Clone)]
pub struct QueueMessage {
    pub message_id: String,
    /// The queue's logical name (what a queue trigger declares).
    pub queue: String,
    pub body: String,
    /// String message attributes.
    pub attributes: BTreeMap<String, String>,
}

/// Why a message was not applied.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("no trigger reads queue {0:?}")]
    NoTrigger(String),
    #[error("the message body is not JSON: {0}")]
    NotJson(String),
    #[error(transparent)]
    Fire(#[from] FireError),
}

impl TriggerService {
    /// Applies a batch; returns the ids of the messages that failed.
    pub async fn queue_batch(&self, messages: Vec<QueueMessage>) -> Vec<String> {
        let outcomes: Vec<(String, Result<Fired, QueueError>)> = stream::iter(messages)
            .map(|message| async move {
                let outcome = self.queue_message(&message).await;
                (message.message_id, outcome)
            })
            .buffered(CONCURRENCY)
            .collect()
            .await;
        outcomes
            .into_iter()
            .filter_map(|(id, outcome)| {
                let error = outcome.err()?;
                warn!(message_id = %id, error = %crate::error::chain(&error), "queue message failed");
                Some(id)
            })
            .collect()
    }

    /// Applies one message.
    pub async fn queue_message(&self, message: &QueueMessage) -> Result<Fired, QueueError> {
        let armed = self
            .for_queue(&message.queue)
            .ok_or_else(|| QueueError::NoTrigger(message.queue.clone()))?;
        let body: Value = serde_json::from_str(&message.body).map_err(|e| QueueError::NotJson(e.to_string()))?;
        let event = json!({
            "trigger": armed.trigger.name,
            "body": body,
            "messageId": message.message_id,
            "attributes": message.attributes,
            "queue": message.queue,
        });
        let delivery = Delivery::new(&message.message_id, message.body.as_bytes());
        Ok(self.fire(armed, &event, Some(&delivery)).await?)
    }

    /// Fires schedule trigger `name` for the tick at `time` (unix milliseconds).
    pub async fn tick(&self, name: &str, time: i64) -> Result<Fired, FireError> {
        let armed = self
            .get(name)
            .filter(|a| matches!(a.trigger.source, Source::Schedule { .. }))
            .ok_or_else(|| FireError::UnknownTrigger {
                kind: "schedule",
                name: name.to_owned(),
            })?;
        let event = json!({"trigger": name, "time": time});
        self.fire(armed, &event, None).await
    }
}
