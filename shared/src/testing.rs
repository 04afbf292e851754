//! Test doubles (feature `testing`): a sender that records frames and answers "gone" for
//! chosen connections, or fails retryably for others; optionally each post takes a while and
//! more than a given number in flight are answered 429, as API Gateway throttles.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::ids::ConnectionId;
use crate::ports::ConnectionSender;

#[derive(Default)]
pub struct RecordingSender {
    sent: Mutex<Vec<(ConnectionId, String)>>,
    gone: Mutex<HashSet<ConnectionId>>,
    failing: Mutex<HashSet<ConnectionId>>,
    /// (latency of each post, posts in flight beyond which the answer is 429).
    throttle: Option<(Duration, usize)>,
    in_flight: AtomicUsize,
    throttled: AtomicUsize,
}

impl RecordingSender {
    pub fn new() -> Self {
        Self::default()
    }

    /// Each post takes `latency`; one that would make more than `capacity` in flight is
    /// answered 429 (after the latency, as a throttled request takes a round trip too).
    pub fn throttling(latency: Duration, capacity: usize) -> Self {
        Self {
            throttle: Some((latency, capacity)),
            ..Self::default()
        }
    }

    /// Posts answered 429 so far.
    pub fn throttled(&self) -> usize {
        self.throttled.load(Ordering::Relaxed)
    }

    /// Posts to `id` will fail with [`Error::ConnectionGone`] (as a 410 does).
    pub fn mark_gone(&self, id: &ConnectionId) {
        lock(&self.gone).insert(id.clone());
    }

    /// Posts to `id` will fail with a retryable error (as a throttle does).
    pub fn mark_failing(&self, id: &ConnectionId, failing: bool) {
        let mut set = lock(&self.failing);
        if failing {
            set.insert(id.clone());
        } else {
            set.remove(id);
        }
    }

    /// Every frame delivered so far, in order.
    pub fn sent(&self) -> Vec<(ConnectionId, String)> {
        lock(&self.sent).clone()
    }

    /// The frames delivered to `id`, parsed.
    pub fn frames_to(&self, id: &ConnectionId) -> Vec<serde_json::Value> {
        lock(&self.sent)
            .iter()
            .filter(|(to, _)| to == id)
            .filter_map(|(_, frame)| serde_json::from_str(frame).ok())
            .collect()
    }

    pub fn clear(&self) {
        lock(&self.sent).clear();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[async_trait]
impl ConnectionSender for RecordingSender {
    async fn send(&self, to: &ConnectionId, frame: &str) -> Result<()> {
        if let Some((latency, capacity)) = self.throttle {
            let admitted = self.in_flight.fetch_add(1, Ordering::SeqCst) < capacity;
            tokio::time::sleep(latency).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            if !admitted {
                self.throttled.fetch_add(1, Ordering::Relaxed);
                return Err(Error::Throttled {
                    operation: "PostToConnection",
                    source: "LimitExceededException (429)".into(),
                });
            }
        }
        if lock(&self.gone).contains(to) {
            return Err(Error::ConnectionGone(to.clone()));
        }
        if lock(&self.failing).contains(to) {
            return Err(Error::Dependency {
                operation: "PostToConnection",
                retryable: true,
                source: "throttled".into(),
            });
        }
        lock(&self.sent).push((to.clone(), frame.to_owned()));
        Ok(())
    }
}
