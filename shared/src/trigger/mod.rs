//! Triggers: the outside world driving actors and workflows. A trigger is declared in the
//! application next to its actors and workflows: a name, a tenant, a source (a signed
//! webhook, an SQS queue, a schedule) and a target (an actor method with arguments built from
//! the event by `$ref` templates, or a workflow start). A delivery id (the webhook's delivery
//! header, the SQS message id) makes a redelivery a no-op: it becomes the call's idempotency
//! key or the workflow's start id.
//!
//! # Layout
//! - [`definition`]: the declaration and its builder.
//! - [`validate`]: start-up checks listing every problem; [`schedule`]: `rate(..)`/`cron(..)`.
//! - [`template`]: `$ref` paths into the event, unresolved ones named.
//! - [`signature`]: HMAC-SHA256 `t=…,v1=…` headers; [`verify`]: a webhook's proof of origin.
//! - [`service`]: armed triggers and firing one; [`webhook`]: `POST /hooks/{trigger}`;
//!   [`queue`]: SQS batches with partial failures, and schedule ticks.

pub mod definition;
pub mod queue;
pub mod schedule;
pub mod service;
pub mod signature;
pub mod template;
pub mod validate;
pub mod verify;
pub mod webhook;

pub use definition::{Secret, Source, Target, Trigger, Verification, Webhook};
pub use queue::{QueueError, QueueMessage};
pub use schedule::Schedule;
pub use service::{Armed, Delivery, FireError, Fired, TriggerService};
pub use validate::TriggerError;
pub use webhook::{WebhookReply, WebhookRequest};
