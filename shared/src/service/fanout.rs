//! Stream fan-out: each run of consecutive changes of one actor in a batch becomes one frame
//! (delta, snapshot or deleted, see `frames`) posted to every subscriber. Changes of one actor
//! go out in stream order; actors run concurrently. A spread actor's shards go out as pages
//! (see `pages`), which page workers deliver with [`FanoutService::deliver_page`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tracing::{info, info_span, warn, Instrument};

use crate::batch::{run_key_groups, settle};

use crate::actor::ActorRegistry;
use crate::error::{chain, Result};
use crate::ids::{ActorKey, ConnectionId};
use crate::ports::{ConnectionSender, PageQueue, SubscriberCursor, SubscriberPage, SubscriptionStore};
use crate::service::frames::{self, RunFrame};
use crate::service::pages::{self, PageTask};
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
    /// Pages handed to the page workers (one per shard of a spread actor's change).
    pub paged: usize,
}

impl FanoutOutcome {
    /// Adds `other`'s counts (and failures) to these.
    pub fn absorb(&mut self, other: FanoutOutcome) {
        self.failed.extend(other.failed);
        self.delivered += other.delivered;
        self.gone += other.gone;
        self.throttled += other.throttled;
        self.undelivered += other.undelivered;
        self.paged += other.paged;
    }
}

pub struct FanoutService {
    subscriptions: Arc<dyn SubscriptionStore>,
    poster: Poster,
    cleanup: DisconnectService,
    registry: Arc<ActorRegistry>,
    settings: Settings,
    /// Where a spread actor's pages go (none: every shard is posted here).
    pages: Option<Arc<dyn PageQueue>>,
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
            pages: None,
        }
    }

    /// Hands a spread actor's pages to workers through `queue`.
    pub fn with_pages(mut self, queue: Arc<dyn PageQueue>) -> Self {
        self.pages = Some(queue);
        self
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
        counts.outcome(failed)
    }

    /// Posts `frame` to every subscriber of `key`. An actor in one partition is posted here
    /// (and spread over several once it has more than `spread_at` subscribers); a spread
    /// actor's shards go to the page workers as one page each (or, without workers or for a
    /// frame too large for a page message, are posted here, concurrently).
    async fn deliver(&self, key: &ActorKey, frame: &RunFrame<'_>, counts: &Counts) -> Result<()> {
        let first = self.subscriptions.subscribers(key, None).await?;
        let shards = first.shards.max(1);
        if shards == 1 {
            let shard = self.read_shard(key, frame, 0, Some(first)).await?;
            if shard.targets.len() > self.settings.spread_at {
                self.spread(key, shard.targets.len()).await;
            }
            self.post_shard(key, shard, counts).await;
            return Ok(());
        }
        if let Some(queue) = &self.pages {
            match pages::page_messages(key, frame, shards) {
                Some(messages) => {
                    queue.enqueue(messages).await?;
                    counts.paged.fetch_add(shards as usize, Ordering::Relaxed);
                    return Ok(());
                }
                None => warn!(actor = %key, "the frame is too large for a page message: posting every shard here"),
            }
        }
        let mut first = Some(first);
        let shards = (0..shards).map(|shard| self.deliver_shard(key, frame, shard, first.take(), counts));
        futures::future::try_join_all(shards).await?;
        Ok(())
    }

    /// Delivers one page a fan-out queued (see [`pages`]): the frame to every subscriber of
    /// its shard. Fails only when the shard cannot be read, before anything was posted, so
    /// the page's retry sends nobody the frame twice.
    pub async fn deliver_page(&self, page: PageTask) -> Result<FanoutOutcome> {
        let counts = Counts::default();
        let PageTask { actor, shard, frame } = page;
        self.deliver_shard(&actor, &frame, shard, None, &counts).await?;
        Ok(counts.outcome(Vec::new()))
    }

    /// Reads every subscriber of `key`'s shard `shard` (from its first page when given), then
    /// posts to them (see [`FanoutService::post_shard`]).
    async fn deliver_shard(
        &self,
        key: &ActorKey,
        frame: &RunFrame<'_>,
        shard: u32,
        first: Option<SubscriberPage>,
        counts: &Counts,
    ) -> Result<()> {
        let shard = self.read_shard(key, frame, shard, first).await?;
        self.post_shard(key, shard, counts).await;
        Ok(())
    }

    /// Every subscriber of one shard with the frame (parts) it gets: the whole one, or the
    /// filtered one for subscribers with `paths` (computed once per distinct filter). All
    /// of a shard is read before anything is posted, so a failed read posts nothing.
    async fn read_shard(
        &self,
        key: &ActorKey,
        frame: &RunFrame<'_>,
        shard: u32,
        first: Option<SubscriberPage>,
    ) -> Result<Addressed> {
        let whole = Arc::new(frame.whole.clone());
        let mut filtered: HashMap<Vec<String>, Option<Arc<Vec<String>>>> = HashMap::new();
        let mut addressed = Addressed::default();
        let mut page = match first {
            Some(page) => page,
            None => {
                let start = SubscriberCursor::shard(shard);
                self.subscriptions.subscribers(key, Some(&start)).await?
            }
        };
        loop {
            for paths in page.filters.values() {
                if !filtered.contains_key(paths) {
                    filtered.insert(paths.clone(), frame.filtered(paths).map(Arc::new));
                }
            }
            let filters = &page.filters;
            addressed
                .targets
                .extend(page.connections.into_iter().filter_map(|to| match filters.get(&to) {
                    None => Some((to, whole.clone())),
                    Some(paths) => filtered.get(paths).cloned().flatten().map(|frames| (to, frames)),
                }));
            addressed.gone.extend(page.expired);
            match page.next.filter(|next| next.shard == shard) {
                Some(next) => page = self.subscriptions.subscribers(key, Some(&next)).await?,
                None => return Ok(addressed),
            }
        }
    }

    /// Posts one shard's frames and removes the connections found gone (or expired).
    async fn post_shard(&self, key: &ActorKey, shard: Addressed, counts: &Counts) {
        let Addressed { targets, mut gone } = shard;
        let posted = self.poster.post(targets).await;
        counts.delivered.fetch_add(posted.delivered, Ordering::Relaxed);
        counts.throttled.fetch_add(posted.throttled, Ordering::Relaxed);
        counts
            .undelivered
            .fetch_add(posted.undelivered.len(), Ordering::Relaxed);
        gone.extend(posted.gone);
        counts.gone.fetch_add(gone.len(), Ordering::Relaxed);
        for connection in gone {
            self.remove_gone(key, &connection).await;
        }
    }

    /// Spreads `key`'s later subscriptions over `spread_shards` partitions (a failure is
    /// logged: the next change tries again).
    async fn spread(&self, key: &ActorKey, subscribers: usize) {
        let shards = self.settings.spread_shards.max(2);
        match self.subscriptions.spread(key, shards).await {
            Ok(()) => info!(actor = %key, subscribers, shards, "spread the actor's subscriptions"),
            Err(e) => warn!(actor = %key, error = %chain(&e), "could not spread the actor's subscriptions"),
        }
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

/// One shard's subscribers with their frames, and the connections to remove.
#[derive(Default)]
struct Addressed {
    targets: Vec<(ConnectionId, Arc<Vec<String>>)>,
    gone: Vec<ConnectionId>,
}

/// Posts made by one batch, counted across its concurrent actors.
#[derive(Default)]
struct Counts {
    delivered: AtomicUsize,
    gone: AtomicUsize,
    throttled: AtomicUsize,
    undelivered: AtomicUsize,
    paged: AtomicUsize,
}

impl Counts {
    fn outcome(self, failed: Vec<String>) -> FanoutOutcome {
        FanoutOutcome {
            failed,
            delivered: self.delivered.into_inner(),
            gone: self.gone.into_inner(),
            throttled: self.throttled.into_inner(),
            undelivered: self.undelivered.into_inner(),
            paged: self.paged.into_inner(),
        }
    }
}
