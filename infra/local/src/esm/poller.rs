//! One polling step of a shard ([`Ctx::step`]) and the Streams API calls behind it:
//! `DescribeStream`, `GetShardIterator`, `GetRecords` with the batching window, SDK back-off.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::dynamodb::EventRecord;
use aws_sdk_dynamodbstreams::error::DisplayErrorContext;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, instrument, warn};

use super::handle::Shared;
use super::shard::{Cursor, Shard};
use super::{EsmConfig, StreamHandler};
use crate::stream_records::to_event_record;

/// The most records one `GetRecords` call may return.
const MAX_RECORDS_PER_READ: usize = 1000;

/// Records read for one invocation and the iterator after them.
struct Batch {
    records: Vec<EventRecord>,
    next: Option<String>,
}

/// What one polling step of a shard did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    Idle,
    Worked,
    Waiting,
}

/// Everything a step needs besides the shard: clients, settings, handler, outputs.
pub(super) struct Ctx {
    pub(super) streams: aws_sdk_dynamodbstreams::Client,
    pub(super) stream_arn: String,
    pub(super) config: EsmConfig,
    pub(super) handler: StreamHandler,
    pub(super) shared: Arc<Shared>,
    pub(super) stop: watch::Receiver<bool>,
}

impl Ctx {
    pub(super) fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Sleeps `duration` unless asked to stop first; returns whether to stop.
    pub(super) async fn pause(&mut self, duration: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(duration) => self.stopping(),
            changed = self.stop.changed() => changed.is_err() || self.stopping(),
        }
    }

    /// Every shard of the stream as (id, parent id), following `LastEvaluatedShardId`.
    pub(super) async fn describe_shards(&self) -> Result<Vec<(String, Option<String>)>, String> {
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
    pub(super) async fn step(&mut self, shard: &mut Shard) -> Step {
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
                // A saved position the stream no longer holds: AWS carries on at the horizon.
                let trimmed = e
                    .as_service_error()
                    .is_some_and(|s| s.is_trimmed_data_access_exception());
                if trimmed && sequence.is_some() {
                    shard.restart_at_horizon();
                }
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
}
