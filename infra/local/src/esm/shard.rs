//! One shard's reading state: where the next read starts ([`Cursor`]), the checkpoint, the
//! retry count of the failing batch and the pending bisect segments.

use std::collections::VecDeque;

use aws_lambda_events::dynamodb::EventRecord;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use tokio::time::Instant;

/// Where the next read of a shard starts.
#[derive(Debug, Clone)]
pub(super) enum Cursor {
    Request(ShardIteratorType, Option<String>),
    Iterator(String),
    Ended,
}

impl Cursor {
    pub(super) fn after_batch(next: Option<String>) -> Cursor {
        next.map_or(Cursor::Ended, Cursor::Iterator)
    }
}

/// Consecutive failures of the batch starting at `start`.
#[derive(Debug)]
pub(super) struct Retry {
    start: String,
    failures: u32,
}

#[derive(Debug)]
pub(super) struct Shard {
    pub(super) id: String,
    pub(super) parent: Option<String>,
    start: ShardIteratorType,
    pub(super) cursor: Cursor,
    /// Sequence number of the last record processed or sent to the sink.
    checkpoint: Option<String>,
    pub(super) retry: Option<Retry>,
    /// Sizes of the pending halves of bisected batches, in stream order.
    segments: VecDeque<usize>,
    pub(super) sdk_errors: u32,
    pub(super) not_before: Option<Instant>,
}

impl Shard {
    pub(super) fn new(id: String, parent: Option<String>, start: ShardIteratorType) -> Shard {
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

    /// Continues after `sequence`, the position a previous run of the mapping saved.
    pub(super) fn restore(&mut self, sequence: String) {
        self.cursor = Cursor::Request(ShardIteratorType::AfterSequenceNumber, Some(sequence.clone()));
        self.checkpoint = Some(sequence);
    }

    /// Where the saved position is gone from the stream (trimmed): start over at the horizon.
    pub(super) fn restart_at_horizon(&mut self) {
        self.cursor = Cursor::Request(ShardIteratorType::TrimHorizon, None);
    }

    /// The sequence number of the last record processed or sent to the sink.
    pub(super) fn checkpoint(&self) -> Option<&str> {
        self.checkpoint.as_deref()
    }

    pub(super) fn ended(&self) -> bool {
        matches!(self.cursor, Cursor::Ended)
    }

    pub(super) fn next_limit(&self, batch_size: usize) -> usize {
        self.segments
            .front()
            .copied()
            .unwrap_or(batch_size)
            .clamp(1, batch_size.max(1))
    }

    /// Re-reads from the checkpoint, else from `first_pending`, else from the start.
    pub(super) fn resume(&mut self, first_pending: Option<&str>) {
        self.cursor = match (&self.checkpoint, first_pending) {
            (Some(done), _) => Cursor::Request(ShardIteratorType::AfterSequenceNumber, Some(done.clone())),
            (None, Some(first)) => Cursor::Request(ShardIteratorType::AtSequenceNumber, Some(first.to_owned())),
            (None, None) => Cursor::Request(self.start.clone(), None),
        };
    }

    /// Checkpoints `records` (processed or sunk) and shrinks the pending bisect segments.
    pub(super) fn move_past(&mut self, records: &[EventRecord]) {
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
    pub(super) fn bisect(&mut self, len: usize) {
        let front = self.segments.pop_front().unwrap_or(len);
        if front > len {
            self.segments.push_front(front - len);
        }
        let first = len / 2;
        self.segments.push_front(len - first);
        self.segments.push_front(first);
    }

    /// Counts one more failure of the batch starting at `start`; returns the count.
    pub(super) fn record_failure(&mut self, start: &str) -> u32 {
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

/// A record's stream sequence number.
pub(super) fn sequence(record: &EventRecord) -> Option<&str> {
    record.change.sequence_number.as_deref()
}
