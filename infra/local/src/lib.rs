//! Local mode: the whole stack in one process, with no AWS account — an API Gateway
//! WebSocket emulator with `@connections`, an embedded DynamoDB-compatible engine with
//! Streams, and an event source mapping emulator invoking the same handler functions the
//! Lambdas run.
//!
//! # Layout
//! - [`stack`]: starts and stops everything ([`LocalStack`], [`LocalOptions`]).
//! - [`engine`]: the embedded (or external) DynamoDB endpoint, loopback SDK config, TTL sweeper.
//! - [`gateway`]: WebSocket routes, API Gateway events, quotas, the `@connections` API (over HTTP,
//!   and in-process for the fan-out).
//! - [`esm`]: the event source mapping emulator (stream → handler batches, retries, bisect, on-failure sink).
//! - [`stream_records`]: Streams API records → Lambda `DynamoDbEvent` records.
//! - [`tick`]: periodic background tasks until shutdown.
//! - [`workflows`]: the workflow function on the workflows stream and the timer sweep tick.
//! - [`triggers`]: webhooks, local queues and schedules through the trigger function.
//! - [`page`]: the demo page served at `/`; [`inspector`]: the inspector at `/_inspector`.
//! - [`logging`]: the binary's log output (quiet by default, `-v`, `--log-format json`).

pub mod engine;
pub mod esm;
pub mod gateway;
pub mod inspector;
pub mod logging;
pub mod page;
pub mod pages;
pub mod sqs_record;
pub mod stack;
pub mod stream_records;
pub mod tick;
pub mod triggers;
pub mod workflows;

pub use stack::{local_secret, LocalOptions, LocalStack, StartError, DEV_SECRET};
