//! What a subscription yields: the actor's new state and what kind of change produced it.

use std::sync::Arc;

use serde_json::Value;

/// One change of a subscribed actor, as seen by the client.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// The whole state after the change (the projection on `paths` for a filtered
    /// subscription). A new value on every change: a state handed out is never mutated.
    pub state: Arc<Value>,
    /// The version the state is at (0: the actor does not exist, this is its default state).
    pub version: u64,
    /// The actor's epoch: versions compare only within one epoch.
    pub epoch: u64,
    pub kind: UpdateKind,
}

/// How the client came to hold the state of an [`Update`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    /// A whole state: the first one of a subscription, a `snapshot` frame, or a resubscribe
    /// the server could not resume.
    Snapshot,
    /// A `delta` frame (JSON Patch) applied to the state held.
    Delta,
    /// The actor was deleted: the state is its default one, at version 0.
    Deleted,
    /// A resubscribe after a reconnect or a gap caught up with the patch of what was missed.
    Resumed,
}
