//! What the inspector saw go by: the last calls and frames, every actor's latest image, and
//! each stream mapping's last batch. Bounded, in memory, local mode only.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::Serialize;
use serde_json::Value;

/// Calls kept.
const CALLS: usize = 50;
/// Frames kept (client → server, replies and pushes together).
const FRAMES: usize = 100;
/// Characters of a frame kept.
const FRAME_CHARS: usize = 2_000;

/// One `call` a client made, with what it got.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallEntry {
    pub at: i64,
    pub connection: String,
    pub request_id: String,
    pub actor: Value,
    pub method: Value,
    pub args: Value,
    /// `result` or `error`.
    pub outcome: String,
    /// The result's value and version, or the error's code and message.
    pub reply: Value,
    pub duration_ms: f64,
}

/// Which way a frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Client → server.
    In,
    /// The `$default` route response.
    Reply,
    /// An `@connections` post (the fan-out).
    Push,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FrameEntry {
    pub at: i64,
    pub connection: String,
    pub direction: Direction,
    /// The frame's text (cut at 2,000 characters).
    pub text: String,
    pub bytes: usize,
    /// False when the post failed (gone, throttled, too large).
    pub delivered: bool,
}

/// An actor as its latest stream image shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActorEntry {
    pub key: String,
    pub actor_type: String,
    pub state: Value,
    pub version: u64,
    pub epoch: u64,
    pub updated_at: i64,
    /// The request that wrote this version.
    pub request_id: Option<String>,
    pub deleted: bool,
}

/// The last batch a mapping handed its function.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchEntry {
    pub at: i64,
    pub records: usize,
    /// When the batch was handled minus the newest record's creation time (IteratorAge).
    pub lag_ms: Option<i64>,
    pub failed_records: usize,
    /// The function returned an error.
    pub error: Option<String>,
}

#[derive(Debug, Default)]
pub struct Journal {
    calls: Mutex<VecDeque<CallEntry>>,
    frames: Mutex<VecDeque<FrameEntry>>,
    actors: Mutex<BTreeMap<String, ActorEntry>>,
    batches: Mutex<BTreeMap<String, BatchEntry>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn push_bounded<T>(queue: &Mutex<VecDeque<T>>, item: T, bound: usize) {
    let mut queue = lock(queue);
    if queue.len() == bound {
        queue.pop_front();
    }
    queue.push_back(item);
}

impl Journal {
    pub fn call(&self, entry: CallEntry) {
        push_bounded(&self.calls, entry, CALLS);
    }

    pub fn frame(&self, connection: &str, direction: Direction, text: &str, delivered: bool) {
        let entry = FrameEntry {
            at: statecast::records::now_millis(),
            connection: connection.to_owned(),
            direction,
            text: text.chars().take(FRAME_CHARS).collect(),
            bytes: text.len(),
            delivered,
        };
        push_bounded(&self.frames, entry, FRAMES);
    }

    /// Keeps `entry` unless a newer version of the actor is already known.
    pub fn actor(&self, entry: ActorEntry) {
        let mut actors = lock(&self.actors);
        let newer = actors
            .get(&entry.key)
            .is_some_and(|known| (known.epoch, known.version) > (entry.epoch, entry.version));
        if !newer {
            actors.insert(entry.key.clone(), entry);
        }
    }

    pub fn batch(&self, mapping: &str, entry: BatchEntry) {
        lock(&self.batches).insert(mapping.to_owned(), entry);
    }

    /// Newest first.
    pub fn calls(&self) -> Vec<CallEntry> {
        lock(&self.calls).iter().rev().cloned().collect()
    }

    /// Newest first.
    pub fn frames(&self) -> Vec<FrameEntry> {
        lock(&self.frames).iter().rev().cloned().collect()
    }

    pub fn actors(&self) -> Vec<ActorEntry> {
        lock(&self.actors).values().cloned().collect()
    }

    pub fn last_batch(&self, mapping: &str) -> Option<BatchEntry> {
        lock(&self.batches).get(mapping).cloned()
    }
}
