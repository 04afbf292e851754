//! [`EventSourceMapping`]: the polling task — its shard list, stream refreshes and polling
//! rounds over the runnable shards.

use std::sync::Arc;

use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{info, info_span, warn, Instrument};

use super::handle::{Progress, Shared};
use super::poller::{Ctx, Step};
use super::positions::{persist, ShardPositions};
use super::shard::Shard;
use super::{EsmConfig, EsmHandle, StartingPosition, StreamHandler};

/// A running mapping from one stream to one handler; see the [module docs](super).
pub struct EventSourceMapping {
    ctx: Ctx,
    shards: Vec<Shard>,
    progress: watch::Sender<Progress>,
    described_at: Option<Instant>,
    described_ok: bool,
    /// Polls at once when this changes (some writer says records may be waiting).
    wake: Option<watch::Receiver<()>>,
    /// Positions a previous run saved, for shards not listed yet.
    restored: ShardPositions,
}

impl EventSourceMapping {
    /// Spawns the polling task on the current tokio runtime.
    pub fn start(
        streams: aws_sdk_dynamodbstreams::Client,
        stream_arn: String,
        config: EsmConfig,
        handler: StreamHandler,
    ) -> EsmHandle {
        Self::spawn(streams, stream_arn, config, handler, None)
    }

    /// Like [`EventSourceMapping::start`], and an idle mapping polls as soon as `wake` changes
    /// instead of waiting out [`EsmConfig::poll_interval`] (which still bounds the wait for
    /// writes nobody signals).
    pub fn start_woken_by(
        streams: aws_sdk_dynamodbstreams::Client,
        stream_arn: String,
        config: EsmConfig,
        handler: StreamHandler,
        wake: watch::Receiver<()>,
    ) -> EsmHandle {
        Self::spawn(streams, stream_arn, config, handler, Some(wake))
    }

    fn spawn(
        streams: aws_sdk_dynamodbstreams::Client,
        stream_arn: String,
        config: EsmConfig,
        handler: StreamHandler,
        wake: Option<watch::Receiver<()>>,
    ) -> EsmHandle {
        let shared = Arc::new(Shared::default());
        let (stop, stop_rx) = watch::channel(false);
        let (progress_tx, progress) = watch::channel(Progress::default());
        let span = info_span!("esm", stream = %stream_arn);
        let mapping = EventSourceMapping {
            ctx: Ctx {
                streams,
                stream_arn,
                config,
                handler,
                shared: shared.clone(),
                stop: stop_rx,
            },
            shards: Vec::new(),
            progress: progress_tx,
            described_at: None,
            described_ok: false,
            wake,
            restored: ShardPositions::new(),
        };
        let task = tokio::spawn(mapping.run().instrument(span));
        EsmHandle::new(shared, progress, stop, task)
    }

    async fn run(mut self) {
        let config = &self.ctx.config;
        info!(
            batch_size = config.batch_size,
            max_retry_attempts = config.max_retry_attempts,
            bisect = config.bisect_on_error,
            "event source mapping started"
        );
        let persisting = self.restore_positions().await;
        while !self.ctx.stopping() {
            if self.refresh_due() {
                self.refresh_shards().await;
            }
            let (worked, idle) = self.round().await;
            self.progress.send_modify(|p| {
                p.rounds += 1;
                p.idle = idle;
            });
            if !worked && self.idle().await {
                break;
            }
        }
        if let Some((done, saver)) = persisting {
            let _ = done.send(());
            let _ = saver.await;
        }
        info!("event source mapping stopped");
    }

    /// Loads the positions a previous run saved and starts saving this run's; the returned
    /// sender ends the saver (after it saved the last positions).
    async fn restore_positions(&mut self) -> Option<(oneshot::Sender<()>, JoinHandle<()>)> {
        let store = self.ctx.config.positions.clone()?;
        match store.load(&self.ctx.stream_arn).await {
            Ok(restored) => {
                if !restored.is_empty() {
                    info!(?restored, "continuing after the saved positions");
                }
                self.restored = restored;
            }
            Err(e) => warn!(error = %e, "cannot load the saved positions; starting at the starting position"),
        }
        let (done, finished) = oneshot::channel();
        let positions = self.ctx.shared.positions.subscribe();
        let saver = persist(store, self.ctx.stream_arn.clone(), positions, finished);
        Some((done, tokio::spawn(saver.in_current_span())))
    }

    /// Waits `poll_interval`, or less when woken; returns whether to stop.
    async fn idle(&mut self) -> bool {
        let interval = self.ctx.config.poll_interval;
        let Some(wake) = self.wake.as_mut() else {
            return self.ctx.pause(interval).await;
        };
        let (stop, woken) = tokio::select! {
            stop = self.ctx.pause(interval) => (stop, Ok(())),
            woken = wake.changed() => (self.ctx.stopping(), woken),
        };
        if woken.is_err() {
            // Nobody can wake us any more: plain polling from now on.
            self.wake = None;
        }
        stop
    }

    fn refresh_due(&self) -> bool {
        self.described_at
            .is_none_or(|at| at.elapsed() >= self.ctx.config.shard_refresh_interval)
    }

    async fn refresh_shards(&mut self) {
        self.described_at = Some(Instant::now());
        let listed = match self.ctx.describe_shards().await {
            Ok(listed) => listed,
            Err(message) => {
                warn!(%message, "DescribeStream failed; retrying later");
                return;
            }
        };
        let start = match (self.described_ok, self.ctx.config.starting_position) {
            (false, StartingPosition::Latest) => ShardIteratorType::Latest,
            _ => ShardIteratorType::TrimHorizon,
        };
        for (id, parent) in listed {
            if self.shards.iter().all(|s| s.id != id) {
                info!(shard = %id, parent = ?parent, "new shard");
                let mut shard = Shard::new(id, parent, start.clone());
                if let Some(sequence) = self.restored.remove(&shard.id) {
                    shard.restore(sequence);
                    publish_position(&self.ctx.shared, &shard);
                }
                self.shards.push(shard);
            }
        }
        self.described_ok = true;
    }

    /// A shard is read once its parent (if still known) has ended.
    fn runnable(&self, index: usize) -> bool {
        let shard = &self.shards[index];
        let parent_done = |parent: &String| self.shards.iter().find(|s| &s.id == parent).is_none_or(Shard::ended);
        !shard.ended() && shard.parent.as_ref().is_none_or(parent_done)
    }

    /// Steps every runnable shard once; returns (some shard worked, nothing left to do).
    async fn round(&mut self) -> (bool, bool) {
        let (mut worked, mut idle) = (false, self.described_ok);
        for index in 0..self.shards.len() {
            if !self.runnable(index) || self.ctx.stopping() {
                continue;
            }
            let shard = &mut self.shards[index];
            let step = match shard.not_before {
                Some(at) if at > Instant::now() => Step::Waiting,
                _ => self.ctx.step(shard).await,
            };
            publish_position(&self.ctx.shared, shard);
            if shard.ended() {
                self.described_at = None;
            }
            worked |= step == Step::Worked;
            idle &= step == Step::Idle;
        }
        (worked, idle)
    }
}

/// Publishes `shard`'s checkpoint (to the position saver and the stream trimmer) when it moved.
fn publish_position(shared: &Shared, shard: &Shard) {
    let Some(checkpoint) = shard.checkpoint() else {
        return;
    };
    shared.positions.send_if_modified(|positions| {
        let moved = positions.get(&shard.id).map(String::as_str) != Some(checkpoint);
        if moved {
            positions.insert(shard.id.clone(), checkpoint.to_owned());
        }
        moved
    });
}
