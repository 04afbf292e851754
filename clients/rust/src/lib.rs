//! Rust client for Statecast: hold a WebSocket, subscribe to actors (keyed, versioned JSON
//! state) and receive every change as a new state, call their methods.
//!
//! ```no_run
//! # async fn demo() -> Result<(), statecast_client::ClientError> {
//! use futures::StreamExt;
//! use statecast_client::{Client, Options, SubscribeOptions};
//!
//! let client = Client::connect("ws://127.0.0.1:8787/local", Options::default())?;
//! let mut counter = client.subscribe("counter/c1", SubscribeOptions::default());
//! client.call("counter/c1", "increment", serde_json::json!({"by": 2})).await?;
//! while let Some(update) = counter.next().await {
//!     println!("v{} {}", update.version, update.state);
//! }
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - `client`: the public handle ([`Client`]): connect, subscribe, call, state, close.
//! - `subscription`: a subscription as a `Stream` of [`Update`]s; dropping it unsubscribes.
//! - `connection`: the background task: socket, keep-alive, reconnects with back-off;
//!   `tls`: rustls for `wss://`.
//! - `router`: the bookkeeping between sockets: pending calls, subscriptions, frames to send.
//! - `replica`: the ordering rules of one actor's state (pure, unit-tested).
//! - `parts`: reassembly of messages split into `part` frames (pure, unit-tested).
//! - `protocol`: the wire frames; `options`: connect and subscribe options, back-off;
//!   `error`: [`ClientError`]; `update`: [`Update`]; `random`: jitter and idempotency keys.

mod client;
mod connection;
mod error;
mod options;
mod parts;
mod protocol;
mod random;
mod replica;
mod router;
mod subscription;
mod tls;
mod update;

pub use client::Client;
pub use connection::ConnectionState;
pub use error::{ClientError, ErrorCode};
pub use options::{Backoff, Options, SubscribeOptions};
pub use subscription::Subscription;
pub use update::{Update, UpdateKind};
