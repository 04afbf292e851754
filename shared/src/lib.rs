//! Statecast: real-time, stateful backends on AWS serverless.
//!
//! Clients hold a WebSocket to API Gateway, subscribe to actors (keyed, versioned state with
//! methods) and receive every change as a JSON Patch delta, fanned out from the actors
//! table's DynamoDB stream. This crate is the whole domain plus its AWS adapters; the Lambda
//! crates under `functions/` only wire it up.
//!
//! # Layout
//!
//! The application:
//! - [`app`]: this deployment's actor types and workflows, declared once.
//! - [`application`]: the `Application` type, the `Stores` and the `Services` built from them.
//!
//! Domain (no AWS types):
//! - [`ids`]: `ConnectionId`, `TenantId`, `ActorKey`, `ActorAddress`, `Version`, `Epoch`.
//! - [`protocol`]: client and server frames, error codes, the frame parser.
//! - [`actor`]: the `Actor` trait, the registry, and the `counter` and `todo` examples.
//! - [`delta`]: JSON Patch diff/apply and the delta-or-snapshot rule.
//! - [`changelog`]: the recent patches kept with each actor, for resuming subscribers.
//! - [`projection`]: filtered subscriptions (a state's projection on JSON Pointers).
//! - [`records`]: what is stored (connections, subscriptions, actors) and actor changes.
//! - [`ports`]: the store and sender traits services depend on.
//! - [`service`]: connect, disconnect, handle a message, fan out a stream batch.
//! - [`workflow`]: DAG workflows run step by step from the workflows table's stream.
//! - [`trigger`]: webhooks, queues and schedules that call actors and start workflows.
//! - [`error`]: the error type callers branch on; [`backoff`]: jittered retry delays.
//! - [`batch`]: stream batches run in key order, with partial failures.
//!
//! Adapters:
//! - [`dynamo`]: the DynamoDB store and table definitions.
//! - [`connections_api`]: `@connections` sender.
//! - [`lambda_events`]: Lambda event JSON in and out; [`stream_events`]: stream records
//!   decoded into actor and workflow changes.
//! - [`config`]: environment configuration.
//!
//! Operations:
//! - [`metrics`]: CloudWatch Embedded Metric Format lines; [`trace`]: the request id that
//!   travels with a change from the call to its deliveries.

pub mod actor;
pub mod app;
pub mod application;
pub mod backoff;
pub mod batch;
pub mod changelog;
pub mod config;
pub mod connections_api;
pub mod delta;
pub mod dynamo;
pub mod error;
pub mod ids;
pub mod lambda_events;
pub mod metrics;
pub mod pages_queue;
pub mod ports;
pub mod presence;
pub mod projection;
pub mod protocol;
pub mod records;
mod sdk_error;
pub mod service;
pub mod stream_events;
#[cfg(feature = "testing")]
pub mod testing;
pub mod trace;
pub mod trigger;
pub mod workflow;

pub use error::{Error, Result};
