//! Local SQS queues for queue triggers: `POST /queues/{queue}` sends a message; a worker per
//! queue delivers batches (up to 10 messages) to the trigger handler as real `SqsEvent`s, as
//! Lambda's SQS event source mapping does with `ReportBatchItemFailures`: the reported
//! messages come back after the visibility timeout, and after `max_receive_count` receives
//! move to the queue's dead-letter list (`GET /queues/{queue}/dead-letters`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use statecast::records::now_millis;
use statecast_trigger::TriggerResponse;
use tokio::sync::{mpsc, watch};
use tracing::warn;

use super::TriggerState;

/// The queue settings of the template's trigger queue (its redrive policy and batch size),
/// with a short visibility timeout so a local retry comes quickly.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    pub batch_size: usize,
    pub max_receive_count: u32,
    pub visibility_timeout: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            batch_size: 10,
            max_receive_count: 3,
            visibility_timeout: Duration::from_millis(200),
        }
    }
}

#[derive(Debug, Clone)]
struct Message {
    id: String,
    body: String,
    sent_at: i64,
    receive_count: u32,
}

/// A message that exhausted its receives.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    pub message_id: String,
    pub body: String,
    pub receive_count: u32,
}

/// What became of a queue's messages so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueCounts {
    pub sent: usize,
    pub succeeded: usize,
    pub dead: Vec<DeadLetter>,
}

/// The local queues, created on first use.
#[derive(Clone)]
pub struct LocalQueues {
    senders: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Message>>>>,
    counts: Arc<watch::Sender<HashMap<String, QueueCounts>>>,
    config: QueueConfig,
    next_id: Arc<std::sync::atomic::AtomicU64>,
}

impl LocalQueues {
    pub fn new(config: QueueConfig) -> Self {
        Self {
            senders: Arc::default(),
            counts: Arc::new(watch::channel(HashMap::new()).0),
            config,
            next_id: Arc::default(),
        }
    }

    /// Sends `body` to `queue`; returns the message id.
    pub fn send(&self, state: &TriggerState, queue: &str, body: String) -> String {
        let n = self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("local-{:x}-{n}", now_millis());
        let message = Message {
            id: id.clone(),
            body,
            sent_at: now_millis(),
            receive_count: 0,
        };
        self.counts
            .send_modify(|c| c.entry(queue.to_owned()).or_default().sent += 1);
        let sender = {
            let mut senders = self.senders.lock().unwrap_or_else(PoisonError::into_inner);
            senders
                .entry(queue.to_owned())
                .or_insert_with(|| self.spawn_worker(state.clone(), queue.to_owned()))
                .clone()
        };
        let _ = sender.send(message);
        id
    }

    /// Waits until `done(counts of queue)` holds.
    pub async fn wait_for(&self, queue: &str, done: impl Fn(&QueueCounts) -> bool) -> QueueCounts {
        let mut rx = self.counts.subscribe();
        let seen = rx
            .wait_for(|all| done(&all.get(queue).cloned().unwrap_or_default()))
            .await
            .map(|all| all.get(queue).cloned().unwrap_or_default());
        seen.unwrap_or_default()
    }

    pub fn counts(&self, queue: &str) -> QueueCounts {
        self.counts.borrow().get(queue).cloned().unwrap_or_default()
    }

    fn spawn_worker(&self, state: TriggerState, queue: String) -> mpsc::UnboundedSender<Message> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
        let redeliver = tx.clone();
        let queues = self.clone();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < queues.config.batch_size {
                    match rx.try_recv() {
                        Ok(message) => batch.push(message),
                        Err(_) => break,
                    }
                }
                queues.deliver(&state, &queue, batch, &redeliver).await;
            }
        });
        tx
    }

    async fn deliver(
        &self,
        state: &TriggerState,
        queue: &str,
        mut batch: Vec<Message>,
        redeliver: &mpsc::UnboundedSender<Message>,
    ) {
        for message in &mut batch {
            message.receive_count += 1;
        }
        let event = json!({"Records": batch.iter().map(|m| record(queue, m)).collect::<Vec<_>>()});
        let failed: Vec<String> = match state.invoke(event).await {
            Ok(TriggerResponse::Batch(response)) => response
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect(),
            // A failed invocation returns the whole batch.
            other => {
                warn!(%queue, outcome = ?other.err().map(|e| e.to_string()), "queue batch invocation failed");
                batch.iter().map(|m| m.id.clone()).collect()
            }
        };
        let (failed, succeeded): (Vec<Message>, Vec<Message>) = batch.into_iter().partition(|m| failed.contains(&m.id));
        let (dead, retry): (Vec<Message>, Vec<Message>) = failed
            .into_iter()
            .partition(|m| m.receive_count >= self.config.max_receive_count);
        self.counts.send_modify(|c| {
            let counts = c.entry(queue.to_owned()).or_default();
            counts.succeeded += succeeded.len();
            counts.dead.extend(dead.into_iter().map(|m| DeadLetter {
                message_id: m.id,
                body: m.body,
                receive_count: m.receive_count,
            }));
        });
        for message in retry {
            let redeliver = redeliver.clone();
            let visibility = self.config.visibility_timeout;
            // The message stays invisible for the visibility timeout, then is received again.
            tokio::spawn(async move {
                tokio::time::sleep(visibility).await;
                let _ = redeliver.send(message);
            });
        }
    }
}

/// One SQS record as Lambda's event source mapping builds it.
fn record(queue: &str, message: &Message) -> Value {
    crate::sqs_record::record(&crate::sqs_record::Received {
        queue,
        id: &message.id,
        body: &message.body,
        sent_at: message.sent_at,
        receive_count: message.receive_count,
        fifo: None,
    })
}

/// `POST /queues/{queue}`: the body is the message.
pub async fn send(State(state): State<TriggerState>, Path(queue): Path<String>, body: Bytes) -> Response {
    let Ok(body) = String::from_utf8(body.to_vec()) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "a message body is UTF-8 text"})),
        )
            .into_response();
    };
    let id = state.queues.send(&state, &queue, body);
    (StatusCode::OK, Json(json!({"MessageId": id}))).into_response()
}

/// `GET /queues/{queue}/dead-letters`.
pub async fn dead_letters(State(state): State<TriggerState>, Path(queue): Path<String>) -> Response {
    Json(state.queues.counts(&queue).dead).into_response()
}
