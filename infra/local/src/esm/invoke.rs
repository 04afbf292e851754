//! Invoking the handler with a batch and applying its outcome to the shard: checkpoint,
//! bisect, retry with back-off, or the on-failure sink (also for records too old to invoke).

use std::time::SystemTime;

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::DynamoDbBatchItemFailure;
use statecast::metrics::{Document, Metric};
use tokio::time::Instant;
use tracing::{debug, error, warn, Instrument};

use super::poller::Ctx;
use super::shard::{sequence, Cursor, Shard};
use super::{FailedBatch, FailureReason};
use crate::stream_records::created_at;

/// What the handler's answer means for a batch.
pub(super) enum Invocation {
    Success,
    /// Index of the first record to retry (> 0: the records before it succeeded).
    PartialFailure(usize),
    Error(String),
}

impl Ctx {
    /// Sends the leading records older than `max_record_age` to the sink and checkpoints them.
    pub(super) fn sink_expired(&self, shard: &mut Shard, records: &mut Vec<EventRecord>) {
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
    pub(super) async fn invoke(&self, records: &[EventRecord]) -> Invocation {
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
    pub(super) fn settle(
        &self,
        shard: &mut Shard,
        mut records: Vec<EventRecord>,
        next: Option<String>,
        outcome: Invocation,
    ) {
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
        let document = Document::new().count(Metric::OnFailureRecords, failed.record_count);
        self.config
            .metrics
            .emit(document.property("reason", failed.reason.to_string()));
        self.shared.push_failure(failed);
    }
}
