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
//! - With [`EsmConfig::positions`], each shard's checkpoint is saved as it moves (the latest
//!   one, off the polling loop, and the last one before `shutdown` returns) and a restarted
//!   mapping continues after it instead of at its starting position; a saved position the
//!   stream no longer holds (`TrimmedDataAccessException`) restarts at the trim horizon.
//! - An idle mapping polls every [`EsmConfig::poll_interval`]; one started with
//!   [`EventSourceMapping::start_woken_by`] also polls as soon as its wake signal changes
//!   (local mode: after every gateway route invocation, so a `call`'s change is read at once).
//!
//! # Layout
//! - `config`: [`EsmConfig`], [`StartingPosition`], the retry back-off.
//! - `handle`: [`EsmHandle`] and the stats and on-failure sink it shares with the polling task.
//! - `mapping`: [`EventSourceMapping`]: the polling task, its shard list and rounds.
//! - `poller`: one shard's step: describe, iterators, reads.
//! - `invoke`: handler invocation and applying its outcome (checkpoint, bisect, retry, sink).
//! - `shard`: per-shard cursor, checkpoint, retry count and bisect segments.
//! - [`positions`]: the position per shard kept across restarts ([`PositionStore`], [`DynamoPositions`]).
//! - here: the small public types ([`FailedBatch`], [`EsmStats`], [`StreamHandler`], …) and [`stream_arn`].

mod config;
mod handle;
mod invoke;
mod mapping;
mod poller;
pub mod positions;
mod shard;

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::error::DisplayErrorContext;
use futures::future::BoxFuture;
use futures::FutureExt;

pub use config::{EsmConfig, StartingPosition};
pub use handle::{EsmHandle, EsmObserver};
pub use mapping::EventSourceMapping;
pub use positions::{DynamoPositions, PositionError, PositionStore, ShardPositions};

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
