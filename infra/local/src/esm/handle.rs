//! [`EsmHandle`], the caller's side of a running mapping, and what it shares with the polling
//! task: the stats, the on-failure sink and the round progress.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::error;

use super::positions::ShardPositions;
use super::{EsmStats, FailedBatch};

/// The stats and the on-failure sink, written by the polling task and read through the handle.
#[derive(Default)]
pub(super) struct Shared {
    failures: Mutex<Vec<FailedBatch>>,
    stats: Mutex<EsmStats>,
    /// The last record processed or sunk, by shard.
    pub(super) positions: watch::Sender<ShardPositions>,
}

impl Shared {
    fn stats_now(&self) -> EsmStats {
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn failures_now(&self) -> Vec<FailedBatch> {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(super) fn stats(&self, update: impl FnOnce(&mut EsmStats)) {
        update(&mut self.stats.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// Appends one entry to the on-failure sink.
    pub(super) fn push_failure(&self, failed: FailedBatch) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(failed);
    }
}

/// Published after every polling round.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Progress {
    pub(super) rounds: u64,
    /// The round found nothing to read, invoke or retry.
    pub(super) idle: bool,
}

/// Reads what a mapping shares (see [`EsmHandle::observer`]).
#[derive(Clone)]
pub struct EsmObserver {
    shared: Arc<Shared>,
}

impl EsmObserver {
    pub fn stats(&self) -> EsmStats {
        self.shared.stats_now()
    }

    pub fn failures(&self) -> Vec<FailedBatch> {
        self.shared.failures_now()
    }

    /// The last record processed or sunk, by shard.
    pub fn positions(&self) -> ShardPositions {
        self.shared.positions.borrow().clone()
    }
}

/// Controls a running mapping. Dropping it stops the mapping too (without waiting).
pub struct EsmHandle {
    shared: Arc<Shared>,
    progress: watch::Receiver<Progress>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl EsmHandle {
    pub(super) fn new(
        shared: Arc<Shared>,
        progress: watch::Receiver<Progress>,
        stop: watch::Sender<bool>,
        task: JoinHandle<()>,
    ) -> EsmHandle {
        EsmHandle {
            shared,
            progress,
            stop,
            task: Some(task),
        }
    }

    /// Everything sent to the on-failure sink so far, oldest first.
    pub fn failures(&self) -> Vec<FailedBatch> {
        self.shared.failures_now()
    }

    pub fn stats(&self) -> EsmStats {
        self.shared.stats_now()
    }

    /// A read-only view of the stats, the sink and the positions that outlives no one's
    /// control of the mapping (local mode's inspector holds one).
    pub fn observer(&self) -> EsmObserver {
        EsmObserver {
            shared: self.shared.clone(),
        }
    }

    /// The sequence number of the last record processed (or sent to the sink) on each shard,
    /// updated as the mapping moves on: every record up to it may be trimmed for this mapping.
    pub fn positions(&self) -> watch::Receiver<ShardPositions> {
        self.shared.positions.subscribe()
    }

    /// Waits until a polling round that started after this call found nothing left to do:
    /// every record written before the call has been processed or sent to the sink.
    /// `false` on timeout or when the mapping has stopped.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let mut progress = self.progress.clone();
        // The round in progress may have read before the call; the one after it has not.
        let target = progress.borrow_and_update().rounds + 2;
        let idle = async move { progress.wait_for(|p| p.idle && p.rounds >= target).await.is_ok() };
        tokio::time::timeout(timeout, idle).await.unwrap_or(false)
    }

    pub fn is_running(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops polling after the in-flight invocation (if any) and waits for the task to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            if let Err(e) = task.await {
                error!(error = %e, "event source mapping task failed");
            }
        }
    }
}

impl Drop for EsmHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
