//! Stream fan-out: each run of consecutive changes of one actor in a batch becomes one frame
//! (delta, snapshot or deleted, see `frames`) posted to every subscriber. Changes of one actor
//! go out in stream order; actors run concurrently.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tracing::{info_span, Instrument};

use crate::batch::{run_key_groups, settle};

use crate::actor::ActorRegistry;
use crate::error::Result;
use crate::ids::{ActorKey, ConnectionId};
use crate::ports::{ConnectionSender, SubscriptionStore};
use crate::service::frames::{self, RunFrame};
use crate::service::posting::{PostLimits, Poster};
use crate::service::{DisconnectService, Settings};
use crate::stream_events::ActorStreamItem;

/// What one batch did; `failed` holds the sequence numbers to report as batch item failures.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FanoutOutcome {
    pub failed: Vec<String>,
    pub delivered: usize,
    pub gone: usize,
    /// Posts answered 429 (each tried again at a lower concurrency).
    pub throttled: usize,
    /// Subscribers given up on after their tries: they see a gap and resubscribe.
    pub undelivered: usize,
}

pub struct FanoutService {
    subscriptions: Arc<dyn SubscriptionStore>,
    poster: Poster,
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
        let limits = PostLimits {
            initial: settings.send_concurrency.max(1),
            max: settings.send_concurrency.max(1) * 8,
            ..PostLimits::default()
        };
        Self {
            subscriptions,
            poster: Poster::new(sender, limits),
            cleanup,
            registry,
            settings,
        }
    }

    /// Fans out a batch (see [`run_key_groups`]): an actor's consecutive changes go out as
    /// one frame per subscriber. A throttled or failed post is tried again for that
    /// subscriber alone (see [`Poster`]), so no retry re-sends to one that has the frame; a
    /// subscriber still failing after its tries is given up (it sees the gap at the next
    /// change and resubscribes). A run whose subscribers cannot be read is reported from its
    /// first record (the rest of the actor's records wait for the retry); one that can never
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
            undelivered: counts.undelivered.into_inner(),
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
            gone.extend(page.expired);
            let posted = self.poster.post(addressed).await;
            counts.delivered.fetch_add(posted.delivered, Ordering::Relaxed);
            counts.throttled.fetch_add(posted.throttled, Ordering::Relaxed);
            counts
                .undelivered
                .fetch_add(posted.undelivered.len(), Ordering::Relaxed);
            gone.extend(posted.gone);
            after = page.next;
            if after.is_none() {
                break;
            }
        }
        counts.gone.fetch_add(gone.len(), Ordering::Relaxed);
        for connection in gone {
            self.remove_gone(key, &connection).await;
        }
        Ok(())
    }

    /// Where the handler records the batch's metrics.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.settings.metrics
    }

    /// A 410 means the client left without a `$disconnect` we saw: drop it and all it held.
    async fn remove_gone(&self, key: &ActorKey, connection: &ConnectionId) {
        self.cleanup.remove_gone(connection, key).await;
    }
}

/// Posts made by one batch, counted across its concurrent actors.
#[derive(Default)]
struct Counts {
    delivered: AtomicUsize,
    gone: AtomicUsize,
    throttled: AtomicUsize,
    undelivered: AtomicUsize,
}
