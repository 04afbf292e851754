//! Fan-out load tool: N WebSocket subscribers on one counter, M sequential `increment` calls
//! (or `broadcast`s), and for each the time until every subscriber got the change (or the
//! broadcast) — against ours (local mode) and against a raw in-memory broadcast server, the
//! ceiling a gateway could reach here.
//!
//! # Layout
//! - [`target`]: starts, drives and stops the ceiling or ours; one [`Report`] each.
//! - [`ceiling`]: the raw broadcast server speaking just enough of the wire protocol.
//! - [`driver`]: connects the clients, sends the calls or broadcasts, measures all-delivered latency.
//! - [`client`]: one client's connect + subscribe and its reader task.
//! - [`verify`]: every client got every version (or broadcast) exactly once and in order.
//! - [`stats`]: nearest-rank percentiles.
//! - [`rss`]: this process's peak resident memory while a target ran.
//! - [`report`]: the JSON lines and the human table.

pub mod ceiling;
pub mod client;
pub mod driver;
pub mod report;
pub mod rss;
pub mod stats;
pub mod target;
pub mod verify;

use std::time::Duration;

use tokio_tungstenite::tungstenite;

pub use driver::{drive, DriverOptions, Measurement, MessageKind};
pub use report::Report;
pub use target::Target;

/// Why a run could not be carried out at all (delivery failures are counted in the report).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("client {client} cannot connect: {source}")]
    Connect {
        client: usize,
        #[source]
        source: Box<tungstenite::Error>,
    },
    #[error("client {client}: {source}")]
    Socket {
        client: usize,
        #[source]
        source: Box<tungstenite::Error>,
    },
    #[error("client {client} was not subscribed; the server answered {reply}")]
    Refused { client: usize, reply: String },
    #[error("client {client}'s socket closed before the `subscribed` reply")]
    Closed { client: usize },
    #[error("client {client} was not subscribed within {timeout:?}")]
    SubscribeTimeout { client: usize, timeout: Duration },
    #[error("subscribers disagree on the actor's starting version ({first} vs {other})")]
    VersionsDisagree { first: u64, other: u64 },
    #[error("a run needs at least one subscriber")]
    NoSubscribers,
    #[error("cannot start the ceiling server: {0}")]
    Ceiling(#[source] std::io::Error),
    #[error("cannot start the local stack: {0}")]
    Stack(#[from] statecast_local::StartError),
}
