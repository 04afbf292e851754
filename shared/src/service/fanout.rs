//! Stream fan-out: each run of consecutive changes of one actor in a batch becomes one frame
//! (delta, snapshot or deleted, see `frames`) posted to every subscriber. Changes of one actor
//! go out in stream order; actors run concurrently.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::{stream, StreamExt};
use tracing::{error, info_span, warn, Instrument};

use crate::batch::{run_key_groups, settle};

use crate::actor::ActorRegistry;
use crate::error::{chain, Error, Result};
use crate::ids::{ActorKey, ConnectionId};
use crate::ports::{ConnectionSender, SubscriptionStore};
use crate::service::frames::{self, RunFrame};
use crate::service::{DisconnectService, Settings};
use crate::stream_events::ActorStreamItem;

/// What one batch did; `failed` holds the sequence numbers to report as batch item failures.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FanoutOutcome {
    pub failed: Vec<String>,
    pub delivered: usize,
    pub gone: usize,
    /// Posts throttled beyond the SDK's retries (their changes are retried).
    pub throttled: usize,
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

    /// Fans out a batch (see [`run_key_groups`]): an actor's consecutive changes go out as
    /// one frame per subscriber; a run that fails retryably is reported from its first
    /// record (the rest of the actor's records wait for the retry); one that can never
    /// succeed is logged and skipped.
    pub async fn fan_out(&self, items: Vec<ActorStreamItem>) -> FanoutOutcome {
        let counts = Counts::default();
        let counts_ref = &counts;
        let failed = run_key_groups(items, self.settings.actor_concurrency, |changes| {
            let span = info_span!("fan_out", actor = %changes[0].1.key());
            async move {
                let runs = match self.settings.coalesce {
                    true => frames::runs(changes),
                    false => changes.into_iter().map(|change| vec![change]).collect(),
                };
                for run in runs {
                    let (Some((first_sequence, first)), Some((_, last))) = (run.first(), run.last()) else {
                        continue;
                    };
                    let frame = frames::frame_for_run(first, last, run.len() > 1, &self.registry, &self.settings);
                    let outcome = self.deliver(first.key(), &frame, counts_ref).await;
                    crate::trace::log_delivered(run.iter().map(|(_, change)| change), outcome.is_ok());
                    if let Some(failed) = settle(first_sequence.clone(), outcome) {
                        return Some(failed);
                    }
                }
                None
            }
            .instrument(span)
        })
        .await;
        FanoutOutcome {
            failed,
            delivered: counts.delivered.into_inner(),
            gone: counts.gone.into_inner(),
            throttled: counts.throttled.into_inner(),
        }
    }

    /// Posts `frame` to every subscriber of `key`, page by page: the whole frame, or the
    /// filtered one for subscribers with `paths` (computed once per distinct filter).
    async fn deliver(&self, key: &ActorKey, frame: &RunFrame<'_>, counts: &Counts) -> Result<()> {
        // Over the message limit, a frame goes out in ordered parts, one after the other.
        let whole = Arc::new(frame.full.to_frames());
        let mut filtered: HashMap<Vec<String>, Option<Arc<Vec<String>>>> = HashMap::new();
        let mut after: Option<ConnectionId> = None;
        let mut gone = Vec::new();
        let mut retry: Option<Error> = None;
        loop {
            let page = self.subscriptions.subscribers(key, after.as_ref()).await?;
            for paths in page.filters.values() {
                if !filtered.contains_key(paths) {
                    filtered.insert(paths.clone(), frame.filtered(paths).map(|f| Arc::new(f.to_frames())));
                }
            }
            let addressed: Vec<(ConnectionId, Arc<Vec<String>>)> = page
                .connections
                .into_iter()
                .filter_map(|to| match page.filters.get(&to) {
                    None => Some((to, whole.clone())),
                    Some(paths) => filtered.get(paths).cloned().flatten().map(|frames| (to, frames)),
                })
                .collect();
            let sends = stream::iter(addressed)
                .map(|(to, frames)| async move {
                    let mut result = Ok(());
                    for frame in frames.iter() {
                        result = self.sender.send(&to, frame).await;
                        if result.is_err() {
                            break;
                        }
                    }
                    (to, result)
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
                    Err(e @ Error::Throttled { .. }) => {
                        counts.throttled.fetch_add(1, Ordering::Relaxed);
                        retry = Some(e);
                    }
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

    /// Where the handler records the batch's metrics.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.settings.metrics
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
}

/// Posts made by one batch, counted across its concurrent actors.
#[derive(Default)]
struct Counts {
    delivered: AtomicUsize,
    gone: AtomicUsize,
    throttled: AtomicUsize,
}
