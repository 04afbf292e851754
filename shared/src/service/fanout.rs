//! Stream fan-out: each actor change becomes one frame (delta, snapshot or deleted) posted to
//! every subscriber. Changes of one actor go out in stream order; actors run concurrently.

use std::borrow::Cow;
use std::sync::Arc;

use futures::{stream, StreamExt};
use tracing::{error, info_span, warn, Instrument};

use crate::actor::ActorRegistry;
use crate::delta::{self, Change};
use crate::error::{chain, Error, Result};
use crate::ids::{ActorKey, ConnectionId, Version};
use crate::ports::{ConnectionSender, SubscriptionStore};
use crate::protocol::ServerMessage;
use crate::records::ActorChange;
use crate::service::{DisconnectService, Settings};

/// One stream record: its sequence number and what it decoded to.
#[derive(Debug)]
pub struct StreamItem {
    pub sequence: String,
    pub change: Result<ActorChange>,
}

/// What one batch did; `failed` holds the sequence numbers to report as batch item failures.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FanoutOutcome {
    pub failed: Vec<String>,
    pub delivered: usize,
    pub gone: usize,
}

pub struct FanoutService {
    subscriptions: Arc<dyn SubscriptionStore>,
    sender: Arc<dyn ConnectionSender>,
    cleanup: DisconnectService,
    registry: Arc<ActorRegistry>,
    settings: Settings,
}

impl FanoutService {
    pub fn new(
        subscriptions: Arc<dyn SubscriptionStore>,
        sender: Arc<dyn ConnectionSender>,
        cleanup: DisconnectService,
        registry: Arc<ActorRegistry>,
        settings: Settings,
    ) -> Self {
        Self {
            subscriptions,
            sender,
            cleanup,
            registry,
            settings,
        }
    }

    /// Fans out a batch. A record that fails retryably is reported (and the rest of its
    /// actor's records wait for the retry); a record that can never succeed is logged and skipped.
    pub async fn fan_out(&self, items: Vec<StreamItem>) -> FanoutOutcome {
        let mut outcome = FanoutOutcome::default();
        let mut groups: Vec<(ActorKey, Vec<(String, ActorChange)>)> = Vec::new();
        for item in items {
            match item.change {
                Ok(change) => match groups.iter_mut().find(|(key, _)| key == change.key()) {
                    Some((_, changes)) => changes.push((item.sequence, change)),
                    None => groups.push((change.key().clone(), vec![(item.sequence, change)])),
                },
                Err(e) => {
                    error!(sequence = %item.sequence, error = %chain(&e), "skipping a stream record that cannot be decoded")
                }
            }
        }
        let results: Vec<ActorOutcome> = stream::iter(groups)
            .map(|(key, changes)| {
                let span = info_span!("fan_out_actor", actor = %key);
                self.fan_out_actor(changes).instrument(span)
            })
            .buffer_unordered(self.settings.actor_concurrency.max(1))
            .collect()
            .await;
        for r in results {
            outcome.delivered += r.delivered;
            outcome.gone += r.gone;
            outcome.failed.extend(r.failed);
        }
        outcome
    }

    async fn fan_out_actor(&self, changes: Vec<(String, ActorChange)>) -> ActorOutcome {
        let mut outcome = ActorOutcome::default();
        for (sequence, change) in changes {
            match self.deliver(&change, &mut outcome).await {
                Ok(()) => {}
                Err(e) if e.is_retryable() => {
                    warn!(%sequence, error = %chain(&e), "fan-out failed; the record will be retried");
                    outcome.failed = Some(sequence);
                    return outcome;
                }
                Err(e) => error!(%sequence, error = %chain(&e), "fan-out cannot deliver this change; skipped"),
            }
        }
        outcome
    }

    /// Posts the frame for `change` to every subscriber, page by page.
    async fn deliver(&self, change: &ActorChange, outcome: &mut ActorOutcome) -> Result<()> {
        let key = change.key();
        let frame = self.frame_for(change).to_json();
        let mut after: Option<ConnectionId> = None;
        let mut gone = Vec::new();
        let mut retry: Option<Error> = None;
        loop {
            let page = self.subscriptions.subscribers(key, after.as_ref()).await?;
            let sends = stream::iter(page.connections)
                .map(|to| {
                    let frame = &frame;
                    async move {
                        let result = self.sender.send(&to, frame).await;
                        (to, result)
                    }
                })
                .buffer_unordered(self.settings.send_concurrency.max(1))
                .collect::<Vec<_>>()
                .await;
            for (to, result) in sends {
                match result {
                    Ok(()) => outcome.delivered += 1,
                    Err(Error::ConnectionGone(_)) => gone.push(to),
                    Err(e) if e.is_retryable() => retry = Some(e),
                    Err(e) => error!(connection = %to, error = %chain(&e), "could not post to a subscriber"),
                }
            }
            after = page.next;
            if after.is_none() {
                break;
            }
        }
        outcome.gone += gone.len();
        for connection in gone {
            self.remove_gone(key, &connection).await;
        }
        retry.map_or(Ok(()), Err)
    }

    /// A 410 means the client left without a `$disconnect` we saw: drop it and all it held.
    async fn remove_gone(&self, key: &ActorKey, connection: &ConnectionId) {
        let result = async {
            self.subscriptions.delete_subscription(key, connection).await?;
            self.cleanup.disconnect(connection).await
        }
        .await;
        if let Err(e) = result {
            warn!(%connection, error = %chain(&e), "could not clean up a gone connection; TTL will");
        }
    }

    fn frame_for(&self, change: &ActorChange) -> ServerMessage {
        let (old_state, old_epoch, from, new) = match change {
            ActorChange::Deleted { old } => {
                return ServerMessage::Deleted {
                    actor: old.actor_key.address(),
                    epoch: old.epoch,
                    version: old.version,
                }
            }
            ActorChange::Created { new } => {
                let default = self.registry.get(new.actor_key.actor_type()).map(|a| a.default_state());
                (default.map(Cow::Owned), new.epoch, Version::NONE, new)
            }
            ActorChange::Updated { old, new } => (Some(Cow::Borrowed(&old.state)), old.epoch, old.version, new),
        };
        let snapshot = || ServerMessage::Snapshot {
            actor: new.actor_key.address(),
            epoch: new.epoch,
            version: new.version,
            state: new.state.clone(),
        };
        match old_state {
            Some(old_state) if old_epoch == new.epoch => match delta::change(&old_state, &new.state) {
                Change::Delta(patch) => ServerMessage::Delta {
                    actor: new.actor_key.address(),
                    epoch: new.epoch,
                    from,
                    to: new.version,
                    patch,
                },
                Change::Snapshot => snapshot(),
            },
            _ => snapshot(),
        }
    }
}

#[derive(Default)]
struct ActorOutcome {
    failed: Option<String>,
    delivered: usize,
    gone: usize,
}
