//! The event source mapping emulator: polls a table's DynamoDB stream through the Streams API
//! and invokes a handler with `DynamoDbEvent` batches the way AWS Lambda's DynamoDB event
//! source mapping does (batch size, batching window, partial batch responses, retries,
//! bisect on function error, maximum record age, on-failure destination).
//!
//! # Semantics chosen where AWS leaves room
//! - One invocation at a time per shard, shards polled in turn; a child shard is read only
//!   after its parent ended. A shard ends only when `NextShardIterator` is absent, never
//!   because `DescribeStream` shows an `EndingSequenceNumber` (the embedded engine reports
//!   one on its open shard, DESIGN.md §7). The stream is described again every
//!   [`EsmConfig::shard_refresh_interval`] and whenever a shard ends.
//! - After a failure the shard is re-read with `AFTER_SEQUENCE_NUMBER` of the last
//!   checkpointed record, or `AT_SEQUENCE_NUMBER` of the first failed one before any
//!   checkpoint (which, unlike `TRIM_HORIZON`, is also right for a `LATEST` start).
//! - Partial batch response: records before the lowest reported sequence number are
//!   checkpointed and the next invocation starts at it. An empty, null or unknown identifier
//!   fails the whole batch.
//! - Function error with bisect on and more than one record: the batch is split in two and the
//!   halves are invoked in turn; splitting does not count as a retry and has no back-off. A
//!   single record (or any batch with bisect off) is retried after an exponential back-off.
//! - Retries are counted per first record of the retried batch: after `max_retry_attempts`
//!   retries (so `1 + max_retry_attempts` invocations) the retried records go to the
//!   on-failure sink and the shard moves past them.
//! - Records older than `max_record_age` (by `ApproximateCreationDateTime`) go to the sink
//!   without an invocation; records without a creation time never expire.
//! - A handler that panics or exceeds `function_timeout` counts as a function error.
//! - `shutdown` lets an in-flight invocation finish and checkpoint, then stops.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_dynamodbstreams::error::DisplayErrorContext;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, error, info, info_span, instrument, warn, Instrument};

use crate::stream_records::{created_at, to_event_record};

/// The most records one `GetRecords` call may return.
const MAX_RECORDS_PER_READ: usize = 1000;
/// Longest back-off between retries of a failing batch or SDK call.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(2);

/// Where a mapping starts reading shards that exist when it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartingPosition {
    TrimHorizon,
    Latest,
}

/// The mapping's settings; [`Default`] mirrors `template.yaml` (FanoutFunction → ActorChanges).
#[derive(Debug, Clone)]
pub struct EsmConfig {
    pub batch_size: usize,
    /// How long to keep gathering records after the first one before invoking (0: at once).
    pub batching_window: Duration,
    pub max_retry_attempts: u32,
    /// `Duration::MAX` disables the check.
    pub max_record_age: Duration,
    pub bisect_on_error: bool,
    /// `FunctionResponseTypes: [ReportBatchItemFailures]`; off, a response's failures are ignored.
    pub report_batch_item_failures: bool,
    pub starting_position: StartingPosition,
    /// Sleep between polls of an idle stream.
    pub poll_interval: Duration,
    /// First retry back-off; doubles per attempt up to 2 s.
    pub retry_base_delay: Duration,
    pub shard_refresh_interval: Duration,
    /// The function's `Timeout`.
    pub function_timeout: Duration,
}

impl Default for EsmConfig {
    fn default() -> Self {
        EsmConfig {
            batch_size: 100,
            batching_window: Duration::ZERO,
            max_retry_attempts: 10,
            max_record_age: Duration::from_secs(3600),
            bisect_on_error: true,
            report_batch_item_failures: true,
            starting_position: StartingPosition::TrimHorizon,
            poll_interval: Duration::from_millis(10),
            retry_base_delay: Duration::from_millis(50),
            shard_refresh_interval: Duration::from_secs(1),
            function_timeout: Duration::from_secs(60),
        }
    }
}

impl EsmConfig {
    /// Back-off before retry number `attempt` (0-based): `retry_base_delay × 2^attempt`, capped
    /// at 2 s (or at `retry_base_delay` when that is larger).
    pub fn retry_backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.min(16);
        self.retry_base_delay
            .saturating_mul(factor)
            .min(MAX_RETRY_DELAY.max(self.retry_base_delay))
    }
}

/// Why records went to the on-failure sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureReason {
    /// The handler reported them as batch item failures on every attempt.
    RetriesExhausted,
    /// The handler returned an error (or panicked, or timed out) on every attempt.
    FunctionError { message: String },
    /// Older than `max_record_age`; never invoked.
    RecordTooOld,
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureReason::RetriesExhausted => f.write_str("retries exhausted"),
            FailureReason::FunctionError { message } => write!(f, "function error: {message}"),
            FailureReason::RecordTooOld => f.write_str("record too old"),
        }
    }
}

/// One entry of the on-failure sink (the emulated on-failure destination).
#[derive(Debug, Clone)]
pub struct FailedBatch {
    pub shard_id: String,
    pub first_sequence_number: String,
    pub last_sequence_number: String,
    pub record_count: usize,
    /// Invocations made with these records first (0 for records too old).
    pub attempts: u32,
    pub reason: FailureReason,
    pub records: Vec<EventRecord>,
}

/// Counters since the mapping started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EsmStats {
    pub invocations: u64,
    /// Records handed to the handler, redeliveries included.
    pub records_delivered: u64,
    /// Records checkpointed after the handler succeeded with them.
    pub records_processed: u64,
    /// Records sent to the on-failure sink.
    pub records_failed: u64,
    /// Invocations repeated after a failure (bisection excluded).
    pub retries: u64,
    pub bisections: u64,
}

/// The function the mapping invokes, as Lambda would.
pub type StreamHandler =
    Arc<dyn Fn(Event) -> BoxFuture<'static, Result<DynamoDbEventResponse, lambda_runtime::Error>> + Send + Sync>;

/// Wraps an async closure as a [`StreamHandler`].
pub fn stream_handler<F, Fut>(f: F) -> StreamHandler
where
    F: Fn(Event) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<DynamoDbEventResponse, lambda_runtime::Error>> + Send + 'static,
{
    Arc::new(move |event| f(event).boxed())
}

/// Failure to find a table's stream.
#[derive(Debug, thiserror::Error)]
pub enum EsmError {
    #[error("DescribeTable {table}: {message}")]
    DescribeTable { table: String, message: String },
    #[error("table {0} has no stream")]
    NoStream(String),
}

/// The ARN of `table`'s latest stream.
pub async fn stream_arn(dynamo: &aws_sdk_dynamodb::Client, table: &str) -> Result<String, EsmError> {
    let described = dynamo
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| EsmError::DescribeTable {
            table: table.to_owned(),
            message: DisplayErrorContext(&e).to_string(),
        })?;
    described
        .table
        .and_then(|t| t.latest_stream_arn)
        .ok_or_else(|| EsmError::NoStream(table.to_owned()))
}

#[derive(Default)]
struct Shared {
    failures: Mutex<Vec<FailedBatch>>,
    stats: Mutex<EsmStats>,
}

impl Shared {
    fn stats(&self, update: impl FnOnce(&mut EsmStats)) {
        update(&mut self.stats.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

/// Published after every polling round.
#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    rounds: u64,
    /// The round found nothing to read, invoke or retry.
    idle: bool,
}

/// Controls a running mapping. Dropping it stops the mapping too (without waiting).
pub struct EsmHandle {
    shared: Arc<Shared>,
    progress: watch::Receiver<Progress>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl EsmHandle {
    /// Everything sent to the on-failure sink so far, oldest first.
    pub fn failures(&self) -> Vec<FailedBatch> {
        self.shared
            .failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn stats(&self) -> EsmStats {
        *self.shared.stats.lock().unwrap_or_else(PoisonError::into_inner)
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

/// Where the next read of a shard starts.
#[derive(Debug, Clone)]
enum Cursor {
    Request(ShardIteratorType, Option<String>),
    Iterator(String),
    Ended,
}

impl Cursor {
    fn after_batch(next: Option<String>) -> Cursor {
        next.map_or(Cursor::Ended, Cursor::Iterator)
    }
}

/// Consecutive failures of the batch starting at `start`.
#[derive(Debug)]
struct Retry {
    start: String,
    failures: u32,
}

#[derive(Debug)]
struct Shard {
    id: String,
    parent: Option<String>,
    start: ShardIteratorType,
    cursor: Cursor,
    /// Sequence number of the last record processed or sent to the sink.
    checkpoint: Option<String>,
    retry: Option<Retry>,
    /// Sizes of the pending halves of bisected batches, in stream order.
    segments: VecDeque<usize>,
    sdk_errors: u32,
    not_before: Option<Instant>,
}

impl Shard {
    fn new(id: String, parent: Option<String>, start: ShardIteratorType) -> Shard {
        Shard {
            id,
            parent,
            cursor: Cursor::Request(start.clone(), None),
            start,
            checkpoint: None,
            retry: None,
            segments: VecDeque::new(),
            sdk_errors: 0,
            not_before: None,
        }
    }

    fn ended(&self) -> bool {
        matches!(self.cursor, Cursor::Ended)
    }

    fn next_limit(&self, batch_size: usize) -> usize {
        self.segments
            .front()
            .copied()
            .unwrap_or(batch_size)
            .clamp(1, batch_size.max(1))
    }

    /// Re-reads from the checkpoint, else from `first_pending`, else from the start.
    fn resume(&mut self, first_pending: Option<&str>) {
        self.cursor = match (&self.checkpoint, first_pending) {
            (Some(done), _) => Cursor::Request(ShardIteratorType::AfterSequenceNumber, Some(done.clone())),
            (None, Some(first)) => Cursor::Request(ShardIteratorType::AtSequenceNumber, Some(first.to_owned())),
            (None, None) => Cursor::Request(self.start.clone(), None),
        };
    }

    /// Checkpoints `records` (processed or sunk) and shrinks the pending bisect segments.
    fn move_past(&mut self, records: &[EventRecord]) {
        if let Some(last) = records.last().and_then(sequence) {
            self.checkpoint = Some(last.to_owned());
        }
        let mut left = records.len();
        while let Some(front) = self.segments.front_mut().filter(|_| left > 0) {
            let taken = left.min(*front);
            *front -= taken;
            left -= taken;
            if *front == 0 {
                self.segments.pop_front();
            }
        }
    }

    /// Replaces the segment of the failed batch of `len` records by its two halves.
    fn bisect(&mut self, len: usize) {
        let front = self.segments.pop_front().unwrap_or(len);
        if front > len {
            self.segments.push_front(front - len);
        }
        let first = len / 2;
        self.segments.push_front(len - first);
        self.segments.push_front(first);
    }

    /// Counts one more failure of the batch starting at `start`; returns the count.
    fn record_failure(&mut self, start: &str) -> u32 {
        match &mut self.retry {
            Some(retry) if retry.start == start => retry.failures += 1,
            _ => {
                self.retry = Some(Retry {
                    start: start.to_owned(),
                    failures: 1,
                })
            }
        }
        self.retry.as_ref().map_or(1, |r| r.failures)
    }
}

fn sequence(record: &EventRecord) -> Option<&str> {
    record.change.sequence_number.as_deref()
}

/// Records read for one invocation and the iterator after them.
struct Batch {
    records: Vec<EventRecord>,
    next: Option<String>,
}

/// What the handler's answer means for a batch.
enum Invocation {
    Success,
    /// Index of the first record to retry (> 0: the records before it succeeded).
    PartialFailure(usize),
    Error(String),
}

/// What one polling step of a shard did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Idle,
    Worked,
    Waiting,
}

/// Everything a step needs besides the shard: clients, settings, handler, outputs.
struct Ctx {
    streams: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    config: EsmConfig,
    handler: StreamHandler,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
}

/// A running mapping from one stream to one handler; see the module docs.
pub struct EventSourceMapping {
    ctx: Ctx,
    shards: Vec<Shard>,
    progress: watch::Sender<Progress>,
    described_at: Option<Instant>,
    described_ok: bool,
}

impl EventSourceMapping {
    /// Spawns the polling task on the current tokio runtime.
    pub fn start(
        streams: aws_sdk_dynamodbstreams::Client,
        stream_arn: String,
        config: EsmConfig,
        handler: StreamHandler,
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
        };
        let task = tokio::spawn(mapping.run().instrument(span));
        EsmHandle {
            shared,
            progress,
            stop,
            task: Some(task),
        }
    }

    async fn run(mut self) {
        info!(config = ?self.ctx.config, "event source mapping started");
        while !self.ctx.stopping() {
            if self.refresh_due() {
                self.refresh_shards().await;
            }
            let (worked, idle) = self.round().await;
            self.progress.send_modify(|p| {
                p.rounds += 1;
                p.idle = idle;
            });
            if !worked && self.ctx.pause(self.ctx.config.poll_interval).await {
                break;
            }
        }
        info!("event source mapping stopped");
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
                self.shards.push(Shard::new(id, parent, start.clone()));
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
            if shard.ended() {
                self.described_at = None;
            }
            worked |= step == Step::Worked;
            idle &= step == Step::Idle;
        }
        (worked, idle)
    }
}

impl Ctx {
    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Sleeps `duration` unless asked to stop first; returns whether to stop.
    async fn pause(&mut self, duration: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(duration) => self.stopping(),
            changed = self.stop.changed() => changed.is_err() || self.stopping(),
        }
    }

    /// Every shard of the stream as (id, parent id), following `LastEvaluatedShardId`.
    async fn describe_shards(&self) -> Result<Vec<(String, Option<String>)>, String> {
        let mut shards = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let described = self
                .streams
                .describe_stream()
                .stream_arn(&self.stream_arn)
                .set_exclusive_start_shard_id(after.clone())
                .send()
                .await
                .map_err(|e| DisplayErrorContext(&e).to_string())?;
            let Some(description) = described.stream_description else {
                return Ok(shards);
            };
            let listed = description.shards.unwrap_or_default();
            shards.extend(
                listed
                    .into_iter()
                    .filter_map(|s| Some((s.shard_id?, s.parent_shard_id))),
            );
            let last = description.last_evaluated_shard_id;
            if last.is_none() || last == after {
                return Ok(shards);
            }
            after = last;
        }
    }

    /// Reads the shard's next batch and invokes the handler with it.
    #[instrument(skip_all, fields(shard = %shard.id))]
    async fn step(&mut self, shard: &mut Shard) -> Step {
        let Some(iterator) = self.iterator(shard).await else {
            return if shard.ended() { Step::Worked } else { Step::Waiting };
        };
        let limit = shard.next_limit(self.config.batch_size);
        let Batch { mut records, next } = match self.read_batch(iterator, limit).await {
            Ok(batch) => batch,
            Err(expired) => {
                if expired {
                    shard.resume(None);
                }
                self.back_off_after_sdk_error(shard);
                return Step::Waiting;
            }
        };
        shard.sdk_errors = 0;
        if records.is_empty() {
            shard.cursor = Cursor::after_batch(next);
            return if shard.ended() { Step::Worked } else { Step::Idle };
        }
        self.sink_expired(shard, &mut records);
        if records.is_empty() {
            shard.cursor = Cursor::after_batch(next);
            return Step::Worked;
        }
        let outcome = self.invoke(&records).await;
        self.settle(shard, records, next, outcome);
        Step::Worked
    }

    /// The shard's current iterator, asking for one when the cursor is a request.
    async fn iterator(&mut self, shard: &mut Shard) -> Option<String> {
        let (kind, sequence) = match &shard.cursor {
            Cursor::Iterator(iterator) => return Some(iterator.clone()),
            Cursor::Ended => return None,
            Cursor::Request(kind, sequence) => (kind.clone(), sequence.clone()),
        };
        let requested = self
            .streams
            .get_shard_iterator()
            .stream_arn(&self.stream_arn)
            .shard_id(&shard.id)
            .shard_iterator_type(kind.clone())
            .set_sequence_number(sequence.clone())
            .send()
            .await;
        match requested {
            Ok(out) => {
                debug!(?kind, ?sequence, "positioned");
                shard.cursor = Cursor::after_batch(out.shard_iterator);
                match &shard.cursor {
                    Cursor::Iterator(iterator) => Some(iterator.clone()),
                    _ => None,
                }
            }
            Err(e) => {
                warn!(error = %DisplayErrorContext(&e), ?kind, ?sequence, "GetShardIterator failed");
                self.back_off_after_sdk_error(shard);
                None
            }
        }
    }

    fn back_off_after_sdk_error(&self, shard: &mut Shard) {
        let delay = self.config.retry_backoff(shard.sdk_errors);
        shard.sdk_errors = shard.sdk_errors.saturating_add(1);
        shard.not_before = Some(Instant::now() + delay);
    }

    /// Up to `limit` records from `iterator`, gathering for `batching_window` after the first.
    /// `Err(true)` when the iterator expired or points at trimmed data (the shard must be re-positioned).
    async fn read_batch(&mut self, iterator: String, limit: usize) -> Result<Batch, bool> {
        let mut batch = Batch {
            records: Vec::new(),
            next: Some(iterator),
        };
        let mut deadline = None;
        while let Some(iterator) = batch.next.clone() {
            let wanted = (limit - batch.records.len()).min(MAX_RECORDS_PER_READ);
            let (records, next) = self.get_records(iterator, wanted).await?;
            batch.records.extend(records);
            batch.next = next;
            if batch.records.is_empty() || batch.records.len() >= limit {
                break;
            }
            let deadline = *deadline.get_or_insert_with(|| Instant::now() + self.config.batching_window);
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.pause(left.min(self.config.poll_interval)).await {
                break;
            }
        }
        Ok(batch)
    }

    async fn get_records(&self, iterator: String, limit: usize) -> Result<(Vec<EventRecord>, Option<String>), bool> {
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        match self
            .streams
            .get_records()
            .shard_iterator(iterator)
            .limit(limit)
            .send()
            .await
        {
            Ok(page) => {
                let records = page.records.unwrap_or_default().into_iter();
                let records = records.map(|r| to_event_record(r, &self.stream_arn)).collect();
                Ok((records, page.next_shard_iterator))
            }
            Err(e) => {
                // DynamoDB Local answers TrimmedDataAccess to a TRIM_HORIZON iterator taken on an
                // empty shard once records arrive: re-position, as for an expired iterator.
                let expired = e
                    .as_service_error()
                    .is_some_and(|s| s.is_expired_iterator_exception() || s.is_trimmed_data_access_exception());
                warn!(error = %DisplayErrorContext(&e), expired, "GetRecords failed");
                Err(expired)
            }
        }
    }

    /// Sends the leading records older than `max_record_age` to the sink and checkpoints them.
    fn sink_expired(&self, shard: &mut Shard, records: &mut Vec<EventRecord>) {
        let now = SystemTime::now();
        let too_old = |record: &EventRecord| {
            created_at(record)
                .and_then(|at| now.duration_since(at).ok())
                .is_some_and(|age| age > self.config.max_record_age)
        };
        let expired = records.iter().take_while(|r| too_old(r)).count();
        if expired > 0 {
            let fresh = records.split_off(expired);
            let old = std::mem::replace(records, fresh);
            shard.move_past(&old);
            self.sink(shard, old, FailureReason::RecordTooOld, 0);
        }
    }

    /// Calls the handler in its own task, so a panic or a timeout is a function error.
    async fn invoke(&self, records: &[EventRecord]) -> Invocation {
        let count = records.len() as u64;
        self.shared.stats(|s| {
            s.invocations += 1;
            s.records_delivered += count;
        });
        let mut event = Event::default();
        event.records = records.to_vec();
        debug!(records = count, first = ?records.first().and_then(sequence), "invoking");
        let handler = self.handler.clone();
        let mut call = tokio::spawn(async move { handler(event).await }.in_current_span());
        match tokio::time::timeout(self.config.function_timeout, &mut call).await {
            Ok(Ok(Ok(response))) => self.classify(records, &response.batch_item_failures),
            Ok(Ok(Err(e))) => Invocation::Error(e.to_string()),
            Ok(Err(e)) => Invocation::Error(format!("function crashed: {e}")),
            Err(_) => {
                call.abort();
                Invocation::Error(format!("timed out after {:?}", self.config.function_timeout))
            }
        }
    }

    /// The lowest reported failure; an empty, null or unknown identifier fails the batch.
    fn classify(&self, records: &[EventRecord], failures: &[DynamoDbBatchItemFailure]) -> Invocation {
        if !self.config.report_batch_item_failures || failures.is_empty() {
            return Invocation::Success;
        }
        let position = |failure: &DynamoDbBatchItemFailure| {
            let id = failure.item_identifier.as_deref().filter(|id| !id.is_empty())?;
            records.iter().position(|r| sequence(r) == Some(id))
        };
        let first = failures.iter().map(|f| position(f).unwrap_or(0)).min().unwrap_or(0);
        Invocation::PartialFailure(first)
    }

    /// Checkpoints, bisects, schedules a retry or sinks, according to the handler's answer.
    fn settle(&self, shard: &mut Shard, mut records: Vec<EventRecord>, next: Option<String>, outcome: Invocation) {
        match outcome {
            Invocation::Success => {
                self.shared.stats(|s| s.records_processed += records.len() as u64);
                shard.move_past(&records);
                shard.retry = None;
                shard.cursor = Cursor::after_batch(next);
            }
            Invocation::PartialFailure(first) => {
                let failed = records.split_off(first);
                self.shared.stats(|s| s.records_processed += records.len() as u64);
                shard.move_past(&records);
                self.retry_or_sink(shard, failed, next, FailureReason::RetriesExhausted);
            }
            Invocation::Error(message) if self.config.bisect_on_error && records.len() > 1 => {
                warn!(records = records.len(), %message, "function error; bisecting the batch");
                self.shared.stats(|s| s.bisections += 1);
                shard.bisect(records.len());
                shard.resume(records.first().and_then(sequence));
            }
            Invocation::Error(message) => {
                self.retry_or_sink(shard, records, next, FailureReason::FunctionError { message });
            }
        }
    }

    /// Schedules a retry of `failed` after a back-off, or sinks it once retries are exhausted.
    fn retry_or_sink(&self, shard: &mut Shard, failed: Vec<EventRecord>, next: Option<String>, reason: FailureReason) {
        let first = failed.first().and_then(sequence).unwrap_or_default().to_owned();
        let failures = shard.record_failure(&first);
        if failures > self.config.max_retry_attempts {
            shard.move_past(&failed);
            shard.retry = None;
            shard.cursor = Cursor::after_batch(next);
            self.sink(shard, failed, reason, failures);
            return;
        }
        let delay = self.config.retry_backoff(failures - 1);
        warn!(first = %first, records = failed.len(), attempt = failures, ?delay, %reason, "batch failed; retrying");
        self.shared.stats(|s| s.retries += 1);
        shard.resume(Some(&first));
        shard.not_before = Some(Instant::now() + delay);
    }

    /// The on-failure destination: logs the records and keeps them for inspection.
    fn sink(&self, shard: &Shard, records: Vec<EventRecord>, reason: FailureReason, attempts: u32) {
        let bound = |record: Option<&EventRecord>| record.and_then(sequence).unwrap_or_default().to_owned();
        let failed = FailedBatch {
            shard_id: shard.id.clone(),
            first_sequence_number: bound(records.first()),
            last_sequence_number: bound(records.last()),
            record_count: records.len(),
            attempts,
            reason,
            records,
        };
        error!(
            shard = %failed.shard_id,
            first = %failed.first_sequence_number,
            last = %failed.last_sequence_number,
            records = failed.record_count,
            attempts,
            reason = %failed.reason,
            "records sent to the on-failure destination"
        );
        self.shared.stats(|s| s.records_failed += failed.record_count as u64);
        self.shared
            .failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(failed);
    }
}
