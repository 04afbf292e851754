//! Stream fan-out: each actor change becomes one frame (delta, snapshot or deleted) posted to
//! every subscriber. Changes of one actor go out in stream order; actors run concurrently.

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::{stream, StreamExt};
use tracing::{error, info_span, warn, Instrument};

use crate::batch::run_in_key_order;

use crate::actor::ActorRegistry;
use crate::delta::{self, Change};
use crate::error::{chain, Error, Result};
use crate::ids::{ActorKey, ConnectionId, Version};
use crate::ports::{ConnectionSender, SubscriptionStore};
use crate::protocol::ServerMessage;
use crate::records::ActorChange;
use crate::service::{DisconnectService, Settings};
use crate::stream_events::ActorStreamItem;

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

    /// Fans out a batch (see [`run_in_key_order`]): a record that fails retryably is
    /// reported and the rest of its actor's records wait for the retry; a record that can
    /// never succeed is logged and skipped.
    pub async fn fan_out(&self, items: Vec<ActorStreamItem>) -> FanoutOutcome {
        let counts = Counts::default();
        let counts_ref = &counts;
        let failed = run_in_key_order(items, self.settings.actor_concurrency, |change| {
            let span = info_span!("fan_out", actor = %change.key());
            async move { self.deliver(&change, counts_ref).await }.instrument(span)
        })
        .await;
        FanoutOutcome {
            failed,
            delivered: counts.delivered.into_inner(),
            gone: counts.gone.into_inner(),
        }
    }

    /// Posts the frame for `change` to every subscriber, page by page.
    async fn deliver(&self, change: &ActorChange, counts: &Counts) -> Result<()> {
        let key = change.key();
        // Over the message limit, a frame cannot be delivered: skipped, never retried.
        let frame = self
            .frame_for(change)
            .to_frame()
            .map_err(|e| Error::TooLarge(e.to_string()))?;
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
                    Ok(()) => {
                        counts.delivered.fetch_add(1, Ordering::Relaxed);
                    }
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
        counts.gone.fetch_add(gone.len(), Ordering::Relaxed);
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

/// Posts made by one batch, counted across its concurrent actors.
#[derive(Default)]
struct Counts {
    delivered: AtomicUsize,
    gone: AtomicUsize,
}
