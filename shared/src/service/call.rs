//! `call`: load → run the method → conditional write, retried on version conflicts.

use std::time::Duration;

use serde_json::Value;
use tracing::debug;

use crate::actor::Effects;
use crate::backoff;
use crate::delta::serialized_len;
use crate::error::{Error, Result};
use crate::ids::{ActorKey, Epoch, Version};
use crate::records::{now_millis, ActorRecord};
use crate::service::MessageService;
use crate::workflow::model::{Commit, WorkflowWrite};

const BACKOFF_BASE: Duration = Duration::from_millis(2);
const BACKOFF_CAP: Duration = Duration::from_millis(100);

impl MessageService {
    /// Runs `method` on the actor and returns its value and the version it produced. A method
    /// that leaves the state as it was writes nothing and returns the version it read.
    pub(super) async fn call(&self, key: &ActorKey, method: &str, args: Value) -> Result<(Value, Version)> {
        let actor = self.actor_type(key)?;
        for attempt in 0..self.settings.max_call_attempts {
            let stored = self.actors.load(key).await?;
            let outcome = actor.invoke(stored.as_ref().map(|r| &r.state), method, args.clone())?;
            let (version, epoch, unchanged) = match &stored {
                Some(r) => (r.version, r.epoch, r.state == outcome.state),
                None => (Version::NONE, new_epoch(), outcome.state == actor.default_state()),
            };
            if unchanged && outcome.effects.is_empty() {
                return Ok((outcome.value, version));
            }
            let size = serialized_len(&outcome.state);
            if size > self.settings.max_state_bytes {
                return Err(Error::TooLarge(format!(
                    "the new state of {key} would be {size} bytes; the limit is {}",
                    self.settings.max_state_bytes
                )));
            }
            let record = ActorRecord {
                actor_key: key.clone(),
                state: outcome.state,
                version: version.next(),
                epoch,
                updated_at: now_millis(),
            };
            if !outcome.effects.is_empty() {
                let next = if unchanged { version } else { record.version };
                let save = (!unchanged).then_some((record, version));
                if self.save_with_effects(key, save, &outcome.effects).await? {
                    return Ok((outcome.value, next));
                }
                debug!(%key, attempt, "version conflict; retrying");
                backoff::sleep(attempt, BACKOFF_BASE, BACKOFF_CAP).await;
                continue;
            }
            match self.actors.save(&record, version).await {
                Ok(()) => return Ok((outcome.value, record.version)),
                Err(Error::Conflict(_)) => {
                    debug!(%key, attempt, "version conflict; retrying");
                    backoff::sleep(attempt, BACKOFF_BASE, BACKOFF_CAP).await;
                }
                Err(other) => return Err(other),
            }
        }
        Err(Error::Conflict(key.address()))
    }
}

impl MessageService {
    /// Stores the new state (if it changed) and starts the workflows the method asked for in
    /// one transaction; false when the version moved on (retry the call).
    async fn save_with_effects(
        &self,
        key: &ActorKey,
        save: Option<(ActorRecord, Version)>,
        effects: &Effects,
    ) -> Result<bool> {
        let workflows = self.workflows()?;
        let mut writes = Vec::new();
        if let Some((record, expected)) = save {
            writes.push(WorkflowWrite::SaveActor { record, expected });
        }
        for start in effects.workflow_starts() {
            let (start_writes, _) = workflows.start_writes(
                key.tenant(),
                &start.workflow,
                &start.input,
                Some(start.workflow_id.clone()),
            )?;
            writes.extend(start_writes);
        }
        if writes.len() > MAX_TRANSACTION_ITEMS {
            return Err(Error::TooLarge(format!(
                "the call would write {} items in one transaction; the limit is {MAX_TRANSACTION_ITEMS}",
                writes.len()
            )));
        }
        Ok(workflows.commit(writes).await? == Commit::Done)
    }
}

/// DynamoDB's limit on the items of one transaction.
const MAX_TRANSACTION_ITEMS: usize = 100;

/// A new actor's epoch: its creation time in milliseconds, so a re-created actor gets another.
fn new_epoch() -> Epoch {
    Epoch(now_millis().max(1) as u64)
}
