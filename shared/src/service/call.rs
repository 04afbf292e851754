//! `call`: load → run the method → one conditional write (with the workflow starts the
//! method asked for), retried on version conflicts with jittered back-off until the call's
//! time budget is spent. Calls to one actor within this process take turns (first come,
//! first served), so only writers in other processes can make a call retry.

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;
use tracing::debug;

use crate::actor::Effects;
use crate::backoff;
use crate::changelog;
use crate::delta::{self, serialized_len};
use crate::error::{Error, Result};
use crate::ids::{ActorKey, Epoch, Version};
use crate::metrics::{Document, Metric};
use crate::ports::ActorWrite;
use crate::records::{now_millis, ActorRecord, MAX_ITEM_BYTES};
use crate::service::idempotent::Recording;
use crate::service::MessageService;
use crate::workflow::model::WorkflowWrite;

const BACKOFF_BASE: Duration = Duration::from_millis(2);
const BACKOFF_CAP: Duration = Duration::from_millis(50);

/// Patch bytes an actor may always keep, however small its state.
const MIN_LOG_BYTES: usize = 1024;

/// Room kept in an actor item for its key, version, epoch and attribute names.
const ITEM_OVERHEAD: usize = 2 * 1024;

/// DynamoDB's limit on the items of one transaction.
const MAX_TRANSACTION_ITEMS: usize = 100;

impl MessageService {
    /// Runs `method` on the actor and returns its value and the version it produced. A method
    /// that leaves the state as it was (and starts nothing) writes nothing and returns the
    /// version it read.
    /// With `recording`, the result is recorded under its idempotency key in the same write
    /// (a call that changes nothing then still writes its key, checking the version).
    pub(super) async fn call(
        &self,
        key: &ActorKey,
        method: &str,
        args: Value,
        recording: Option<&Recording>,
    ) -> Result<(Value, Version)> {
        let actor = self.actor_type(key)?;
        let _turn = self.turns.turn(key).await;
        let deadline = Instant::now() + self.settings.call_retry_budget;
        let mut attempt = 0;
        loop {
            let stored = self.actors.load(key).await?;
            let outcome = actor.invoke(stored.as_ref().map(|r| &r.state), method, args.clone())?;
            let (expected, epoch, unchanged) = match &stored {
                Some(r) => (r.version, r.epoch, r.state == outcome.state),
                None => (Version::NONE, new_epoch(), outcome.state == actor.default_state()),
            };
            if unchanged && outcome.effects.is_empty() && recording.is_none() {
                return Ok((outcome.value, expected));
            }
            let record = if unchanged {
                None
            } else {
                let size = self.check_size(key, &outcome.state)?;
                let now = now_millis();
                let (old_state, mut log) = match stored {
                    Some(r) => (r.state, r.log),
                    None => (actor.default_state(), Vec::new()),
                };
                let patch = delta::diff(&old_state, &outcome.state);
                // Every write rewrites the log, so it is kept small next to the state (a share
                // of its size, 1 KB at least): a client that missed more downloads the state.
                let share = size * self.settings.change_log.max_share_percent / 100;
                let room = MAX_ITEM_BYTES
                    .saturating_sub(size + ITEM_OVERHEAD)
                    .min(share.max(MIN_LOG_BYTES));
                changelog::append(&mut log, expected.next(), &patch, now, &self.settings.change_log, room);
                Some(ActorRecord {
                    actor_key: key.clone(),
                    state: outcome.state,
                    version: expected.next(),
                    epoch,
                    updated_at: now,
                    log,
                    trace: crate::trace::current(),
                })
            };
            let version = record.as_ref().map_or(expected, |r| r.version);
            let write = ActorWrite {
                key: key.clone(),
                expected,
                record,
                with: self.effect_writes(key, &outcome.effects)?,
                call: recording.map(|r| r.record(key, method, &outcome.value, version)),
            };
            match self.actors.write(write).await {
                Ok(()) => return Ok((outcome.value, version)),
                Err(Error::VersionConflict(k)) => {
                    self.settings.metrics.emit(Document::new().count(Metric::Conflicts, 1));
                    if Instant::now() >= deadline {
                        return Err(Error::VersionConflict(k));
                    }
                    debug!(%key, attempt, "version conflict; retrying");
                    let pause = backoff::delay(attempt, BACKOFF_BASE, BACKOFF_CAP);
                    tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
                    attempt += 1;
                }
                Err(other) => return Err(other),
            }
        }
    }

    /// Records a call's outcome (`ok` or its error code) and latency.
    pub(super) fn record_call<T>(&self, started: std::time::Instant, result: &Result<T>) {
        let outcome = match result {
            Ok(_) => "ok".to_owned(),
            Err(e) => e.code().to_string(),
        };
        let mut document = Document::new()
            .outcome(outcome)
            .count(Metric::Calls, 1)
            .duration(Metric::CallLatency, started.elapsed());
        if let Some(trace) = crate::trace::current() {
            document = document.property("requestId", trace.request_id);
        }
        self.settings.metrics.emit(document);
    }

    /// The state's JSON size, if within the limit.
    fn check_size(&self, key: &ActorKey, state: &Value) -> Result<usize> {
        let size = serialized_len(state);
        if size > self.settings.max_state_bytes {
            return Err(Error::TooLarge(format!(
                "the new state of {key} would be {size} bytes; the limit is {}",
                self.settings.max_state_bytes
            )));
        }
        Ok(size)
    }

    /// The writes that start the workflows a method asked for.
    fn effect_writes(&self, key: &ActorKey, effects: &Effects) -> Result<Vec<WorkflowWrite>> {
        let mut writes = Vec::new();
        for start in effects.workflow_starts() {
            let (start_writes, _) = self.workflows.start_writes(
                key.tenant(),
                &start.workflow,
                &start.input,
                Some(start.workflow_id.clone()),
            )?;
            writes.extend(start_writes);
        }
        if writes.len() + 1 > MAX_TRANSACTION_ITEMS {
            return Err(Error::TooLarge(format!(
                "the call would write {} items in one transaction; the limit is {MAX_TRANSACTION_ITEMS}",
                writes.len() + 1
            )));
        }
        Ok(writes)
    }
}

/// A new actor's epoch: its creation time in milliseconds, so a re-created actor gets another.
fn new_epoch() -> Epoch {
    Epoch(now_millis().max(1) as u64)
}
