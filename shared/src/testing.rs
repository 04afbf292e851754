//! Test doubles (feature `testing`): a sender that records frames and answers "gone" for
//! chosen connections, or fails retryably for others.

use std::collections::HashSet;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::ids::ConnectionId;
use crate::ports::ConnectionSender;

#[derive(Default)]
pub struct RecordingSender {
    sent: Mutex<Vec<(ConnectionId, String)>>,
    gone: Mutex<HashSet<ConnectionId>>,
    failing: Mutex<HashSet<ConnectionId>>,
}

impl RecordingSender {
    pub fn new() -> Self {
        Self::default()
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
