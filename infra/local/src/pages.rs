//! Local SQS FIFO queue for fan-out pages: the fan-out's pages for a spread actor go here,
//! and the page worker's handler (`functions/fanout-pages`) gets them as real `SqsEvent`s,
//! as Lambda's SQS event source mapping delivers a FIFO queue: the messages of one group
//! (an actor's shard) in order, one batch of a group at a time, groups concurrently (up to
//! `workers` invocations at once). A message reported as a batch item failure is received
//! again before the rest of its group, after the visibility timeout; after
//! `max_receive_count` receives it goes to the dead letters. A message whose deduplication
//! id was seen in the last 5 minutes is dropped, as SQS does.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use futures::future::BoxFuture;
use serde_json::json;
use statecast::ports::{PageQueue, QueuedPage};
use statecast::records::now_millis;
use tokio::sync::{watch, Semaphore};
use tracing::warn;

/// The page worker's handler.
pub type PagesHandler =
    Arc<dyn Fn(SqsEvent) -> BoxFuture<'static, Result<SqsBatchResponse, lambda_runtime::Error>> + Send + Sync>;

/// The template's page queue settings (batch size, redrive, the worker's maximum
/// concurrency), with a short visibility timeout.
#[derive(Debug, Clone)]
pub struct PageQueueConfig {
    pub batch_size: usize,
    pub max_receive_count: u32,
    pub visibility_timeout: Duration,
    /// Worker invocations at once (Lambda's concurrency for the queue).
    pub workers: usize,
    pub dedup_window: Duration,
}

impl Default for PageQueueConfig {
    fn default() -> Self {
        Self {
            batch_size: 10,
            max_receive_count: 5,
            visibility_timeout: Duration::from_millis(100),
            workers: 16,
            dedup_window: Duration::from_secs(300),
        }
    }
}

/// What became of the pages so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageCounts {
    pub sent: usize,
    pub deduplicated: usize,
    pub succeeded: usize,
    /// Receives that came back as failures (each received again, or dead).
    pub retried: usize,
    pub dead: usize,
}

#[derive(Debug, Clone)]
struct Message {
    id: String,
    body: String,
    group: String,
    dedup: String,
    sent_at: i64,
    receive_count: u32,
}

#[derive(Default)]
struct Group {
    queue: VecDeque<Message>,
    running: bool,
}

#[derive(Default)]
struct State {
    groups: HashMap<String, Group>,
    seen: HashMap<String, Instant>,
    next_id: u64,
}

/// The local page queue, delivering to `handler`.
#[derive(Clone)]
pub struct LocalPageQueue {
    state: Arc<Mutex<State>>,
    handler: PagesHandler,
    workers: Arc<Semaphore>,
    counts: Arc<watch::Sender<PageCounts>>,
    config: PageQueueConfig,
}

impl LocalPageQueue {
    pub fn new(handler: PagesHandler, config: PageQueueConfig) -> Self {
        Self {
            state: Arc::default(),
            handler,
            workers: Arc::new(Semaphore::new(config.workers.max(1))),
            counts: Arc::new(watch::channel(PageCounts::default()).0),
            config,
        }
    }

    pub fn counts(&self) -> watch::Receiver<PageCounts> {
        self.counts.subscribe()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Delivers `group`'s messages batch by batch until it is empty.
    async fn run_group(self, group: String) {
        loop {
            let Ok(_permit) = self.workers.clone().acquire_owned().await else {
                return;
            };
            let batch: Vec<Message> = {
                let mut state = self.state();
                let Some(entry) = state.groups.get_mut(&group) else {
                    return;
                };
                let n = entry.queue.len().min(self.config.batch_size);
                if n == 0 {
                    entry.running = false;
                    return;
                }
                entry
                    .queue
                    .drain(..n)
                    .map(|mut m| {
                        m.receive_count += 1;
                        m
                    })
                    .collect()
            };
            let failed = self.invoke(&batch).await;
            let (retry, done): (Vec<Message>, Vec<Message>) = batch.into_iter().partition(|m| failed.contains(&m.id));
            let (dead, retry): (Vec<Message>, Vec<Message>) = retry
                .into_iter()
                .partition(|m| m.receive_count >= self.config.max_receive_count);
            for message in &dead {
                warn!(group = %message.group, id = %message.id, "a fan-out page went to the dead letters");
            }
            self.counts.send_modify(|c| {
                c.succeeded += done.len();
                c.retried += retry.len() + dead.len();
                c.dead += dead.len();
            });
            if !retry.is_empty() {
                // Invisible for the visibility timeout, then first in its group again.
                tokio::time::sleep(self.config.visibility_timeout).await;
                let mut state = self.state();
                if let Some(entry) = state.groups.get_mut(&group) {
                    for message in retry.into_iter().rev() {
                        entry.queue.push_front(message);
                    }
                }
            }
        }
    }

    /// One worker invocation; returns the ids to receive again.
    async fn invoke(&self, batch: &[Message]) -> Vec<String> {
        let event = json!({"Records": batch.iter().map(record).collect::<Vec<_>>()});
        let event: SqsEvent = match serde_json::from_value(event) {
            Ok(event) => event,
            Err(e) => {
                warn!(error = %e, "could not build a page batch event");
                return batch.iter().map(|m| m.id.clone()).collect();
            }
        };
        match (self.handler)(event).await {
            Ok(response) => response
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect(),
            Err(e) => {
                warn!(error = %e, "page worker invocation failed");
                batch.iter().map(|m| m.id.clone()).collect()
            }
        }
    }
}

#[async_trait]
impl PageQueue for LocalPageQueue {
    async fn enqueue(&self, pages: Vec<QueuedPage>) -> statecast::Result<()> {
        let mut start = Vec::new();
        let (mut sent, mut deduplicated) = (0, 0);
        {
            let mut state = self.state();
            let now = Instant::now();
            let window = self.config.dedup_window;
            state.seen.retain(|_, at| now.duration_since(*at) < window);
            for page in pages {
                if state.seen.insert(page.dedup.clone(), now).is_some() {
                    deduplicated += 1;
                    continue;
                }
                state.next_id += 1;
                let message = Message {
                    id: format!("page-{}", state.next_id),
                    body: page.body,
                    group: page.group.clone(),
                    dedup: page.dedup,
                    sent_at: now_millis(),
                    receive_count: 0,
                };
                sent += 1;
                let group = state.groups.entry(page.group.clone()).or_default();
                group.queue.push_back(message);
                if !group.running {
                    group.running = true;
                    start.push(page.group);
                }
            }
        }
        self.counts.send_modify(|c| {
            c.sent += sent;
            c.deduplicated += deduplicated;
        });
        for group in start {
            tokio::spawn(self.clone().run_group(group));
        }
        Ok(())
    }
}

/// One FIFO SQS record as Lambda's event source mapping builds it.
fn record(message: &Message) -> serde_json::Value {
    crate::sqs_record::record(&crate::sqs_record::Received {
        queue: "statecast-fanout-pages.fifo",
        id: &message.id,
        body: &message.body,
        sent_at: message.sent_at,
        receive_count: message.receive_count,
        fifo: Some((&message.group, &message.dedup)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::sqs::BatchItemFailure;

    fn page(group: &str, body: &str) -> QueuedPage {
        QueuedPage {
            group: group.into(),
            dedup: format!("{group}@{body}"),
            body: body.into(),
        }
    }

    /// Fails `flaky` on its first receive and `poison` always, reporting the rest of the
    /// group's batch with it (as the page worker does); records what succeeded, in order.
    fn handler(delivered: Arc<Mutex<Vec<String>>>) -> PagesHandler {
        let flaky_seen = Arc::new(std::sync::atomic::AtomicBool::new(false));
        Arc::new(move |event: SqsEvent| {
            let delivered = delivered.clone();
            let flaky_seen = flaky_seen.clone();
            Box::pin(async move {
                let mut response = SqsBatchResponse::default();
                let mut failing = false;
                for message in event.records {
                    let body = message.body.clone().unwrap_or_default();
                    let fails = body == "poison" || (body == "flaky" && !flaky_seen.swap(true, Ordering::SeqCst));
                    failing |= fails;
                    if failing {
                        let mut failure = BatchItemFailure::default();
                        failure.item_identifier = message.message_id.unwrap_or_default();
                        response.batch_item_failures.push(failure);
                    } else {
                        delivered.lock().unwrap_or_else(PoisonError::into_inner).push(body);
                    }
                }
                Ok(response)
            })
        })
    }

    use std::sync::atomic::Ordering;

    #[tokio::test]
    async fn a_group_keeps_its_order_through_retries_and_duplicates_are_dropped() {
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let config = PageQueueConfig {
            visibility_timeout: Duration::from_millis(1),
            ..PageQueueConfig::default()
        };
        let queue = LocalPageQueue::new(handler(delivered.clone()), config);
        let mut counts = queue.counts();
        let first = vec![
            page("g", "a"),
            page("g", "flaky"),
            page("g", "c"),
            page("g", "d"),
            page("p", "poison"),
        ];
        queue.enqueue(first).await.expect("enqueue");
        queue.enqueue(vec![page("g", "a")]).await.expect("enqueue");
        let done = counts
            .wait_for(|c| c.succeeded == 4 && c.dead == 1)
            .await
            .expect("counts")
            .clone();
        assert_eq!(done.sent, 5);
        assert_eq!(done.deduplicated, 1, "the second `a` has the same deduplication id");
        assert_eq!(
            done.retried,
            3 + 5,
            "flaky, c and d once (one batch); poison five times"
        );
        assert_eq!(
            *delivered.lock().unwrap_or_else(PoisonError::into_inner),
            ["a", "flaky", "c", "d"],
            "the group's order held through the retry"
        );
    }
}
