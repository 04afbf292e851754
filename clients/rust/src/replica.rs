//! The ordering rules for one subscribed actor: which (epoch, version) the client holds,
//! applying deltas that chain, dropping duplicates, keeping frames that arrive ahead, and
//! saying when to resubscribe (with `since` after a gap, without it after an epoch change or
//! a patch that does not apply). Pure logic: no I/O, no timers.

use std::collections::VecDeque;
use std::sync::Arc;

use json_patch::Patch;
use serde_json::Value;

use crate::protocol::{Since, StreamFrame, Subscribed};
use crate::update::{Update, UpdateKind};

/// Frames kept while a reply is awaited or past a gap; beyond this the oldest go (the
/// resubscribe recovers).
const MAX_KEPT: usize = 512;

/// What the owner must do after a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resync {
    None,
    /// Resubscribe sending the held epoch and version (something was missed).
    Since,
    /// Resubscribe without them (the state held is not trustworthy, or the epoch changed).
    Fresh,
}

/// The updates a frame produced, in order, and whether to resubscribe.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub updates: Vec<Update>,
    pub resync: Resync,
}

impl Outcome {
    fn new(updates: Vec<Update>, resync: Resync) -> Outcome {
        Outcome { updates, resync }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Apply,
    /// Already held (delivery is at least once): dropped.
    Stale,
    /// Past a gap: kept until the gap is filled.
    Ahead,
    /// Another epoch: only a fresh subscription says where it stands.
    Epoch,
    /// Starts inside what is held but ends past it: cannot be applied.
    Overlap,
}

#[derive(Debug, Clone)]
struct Held {
    epoch: u64,
    version: u64,
    state: Arc<Value>,
}

/// The state of one actor as the client holds it.
#[derive(Debug, Clone)]
pub struct Replica {
    /// A subscription with `paths`: the server skips versions that do not touch them, so a
    /// delta `from..to` applies to any held version in `from..to`.
    filtered: bool,
    held: Option<Held>,
    /// The id of the subscribe request whose reply is awaited; frames are kept until it arrives.
    awaiting: Option<u64>,
    /// The state at version 0, once learnt from a reply or snapshot at version 0.
    default_state: Option<Arc<Value>>,
    kept: VecDeque<StreamFrame>,
    last_deleted: Option<(u64, u64)>,
}

impl Replica {
    pub fn new(filtered: bool) -> Replica {
        Replica {
            filtered,
            held: None,
            awaiting: None,
            default_state: None,
            kept: VecDeque::new(),
            last_deleted: None,
        }
    }

    /// What to send as `since` when resubscribing, if anything is held.
    pub fn since(&self) -> Option<Since> {
        self.held.as_ref().map(|h| Since {
            epoch: h.epoch,
            version: h.version,
        })
    }

    /// The state held, as an update for a late joiner.
    pub fn current(&self) -> Option<Update> {
        self.held.as_ref().map(|h| update(h, UpdateKind::Snapshot))
    }

    pub fn awaiting(&self) -> Option<u64> {
        self.awaiting
    }

    /// A subscribe request `id` was sent: frames are kept until its reply.
    pub fn await_reply(&mut self, id: Option<u64>) {
        self.awaiting = id;
    }

    /// Frames kept for later.
    #[cfg(test)]
    pub fn kept_count(&self) -> usize {
        self.kept.len()
    }

    /// A `delta`, `snapshot` or `deleted` frame for this actor.
    pub fn receive(&mut self, frame: StreamFrame) -> Outcome {
        if self.awaiting.is_some() || self.held.is_none() {
            self.keep(frame);
            return Outcome::new(Vec::new(), Resync::None);
        }
        match self.verdict(&frame) {
            Verdict::Apply => {
                let mut updates = Vec::new();
                if self.apply(frame, &mut updates) {
                    self.drain(updates)
                } else {
                    Outcome::new(updates, Resync::Fresh)
                }
            }
            Verdict::Stale => Outcome::new(Vec::new(), Resync::None),
            Verdict::Ahead => {
                self.keep(frame);
                Outcome::new(Vec::new(), Resync::Since)
            }
            Verdict::Epoch => {
                self.keep(frame);
                Outcome::new(Vec::new(), Resync::Fresh)
            }
            Verdict::Overlap => Outcome::new(Vec::new(), Resync::Since),
        }
    }

    /// The reply to the awaited subscribe request.
    pub fn subscribed(&mut self, frame: Subscribed) -> Outcome {
        self.awaiting = None;
        let mut updates = Vec::new();
        if frame.resumed == Some(true) {
            let Some(held) = &self.held else {
                return Outcome::new(updates, Resync::Fresh);
            };
            if frame.epoch != held.epoch {
                return Outcome::new(updates, Resync::Fresh);
            }
            if frame.version <= held.version {
                // A resume to a version already held: a duplicate.
                return self.drain(updates);
            }
            if frame.from != Some(held.version) {
                return Outcome::new(updates, Resync::Fresh);
            }
            let Some(next) = patched(&held.state, frame.patch.as_ref()) else {
                return Outcome::new(updates, Resync::Fresh);
            };
            updates.push(self.set(next, frame.epoch, frame.version, UpdateKind::Resumed));
        } else {
            let Some(state) = frame.state else {
                return Outcome::new(updates, Resync::Fresh);
            };
            updates.push(self.set(state, frame.epoch, frame.version, UpdateKind::Snapshot));
        }
        self.drain(updates)
    }

    fn verdict(&self, frame: &StreamFrame) -> Verdict {
        let Some(held) = &self.held else {
            return Verdict::Ahead;
        };
        match frame {
            StreamFrame::Snapshot(f) if f.epoch != held.epoch || f.version > held.version => Verdict::Apply,
            StreamFrame::Snapshot(_) => Verdict::Stale,
            StreamFrame::Deleted(f) => {
                let repeated = self.last_deleted == Some((f.epoch, f.version));
                let older = f.epoch == held.epoch && (held.version == 0 || f.version < held.version);
                if repeated || older {
                    Verdict::Stale
                } else {
                    Verdict::Apply
                }
            }
            // Version 0 is the default state whatever its epoch.
            StreamFrame::Delta(f) if f.from == 0 && held.version == 0 => Verdict::Apply,
            StreamFrame::Delta(f) if f.epoch != held.epoch => Verdict::Epoch,
            StreamFrame::Delta(f) if f.to <= held.version => Verdict::Stale,
            StreamFrame::Delta(f) if f.from == held.version || (self.filtered && f.from < held.version) => {
                Verdict::Apply
            }
            StreamFrame::Delta(f) if f.from > held.version => Verdict::Ahead,
            StreamFrame::Delta(_) => Verdict::Overlap,
        }
    }

    /// Applies a frame judged `Apply`; `false` when the state is no longer trustworthy.
    fn apply(&mut self, frame: StreamFrame, updates: &mut Vec<Update>) -> bool {
        match frame {
            StreamFrame::Snapshot(f) => {
                updates.push(self.set(f.state, f.epoch, f.version, UpdateKind::Snapshot));
                true
            }
            StreamFrame::Deleted(f) => {
                self.last_deleted = Some((f.epoch, f.version));
                let known = self.default_state.clone();
                let state = known.clone().unwrap_or_else(|| Arc::new(Value::Null));
                let held = Held {
                    epoch: f.epoch,
                    version: 0,
                    state,
                };
                updates.push(update(&held, UpdateKind::Deleted));
                self.held = Some(held);
                // Without the default state, a fresh subscription teaches it.
                known.is_some()
            }
            StreamFrame::Delta(f) => {
                let next = self.held.as_ref().and_then(|h| patched(&h.state, Some(&f.patch)));
                let Some(next) = next else {
                    return false;
                };
                updates.push(self.set(next, f.epoch, f.to, UpdateKind::Delta));
                true
            }
        }
    }

    /// Applies kept frames that now chain and drops those that never will; `Since` if some
    /// remain ahead.
    fn drain(&mut self, mut updates: Vec<Update>) -> Outcome {
        'progress: loop {
            let mut index = 0;
            while index < self.kept.len() {
                let verdict = match self.kept.get(index) {
                    Some(frame) => self.verdict(frame),
                    None => break,
                };
                if verdict == Verdict::Ahead {
                    index += 1;
                    continue;
                }
                let Some(frame) = self.kept.remove(index) else { break };
                if verdict == Verdict::Apply {
                    if !self.apply(frame, &mut updates) {
                        return Outcome::new(updates, Resync::Fresh);
                    }
                    continue 'progress;
                }
            }
            break;
        }
        let resync = if self.kept.is_empty() {
            Resync::None
        } else {
            Resync::Since
        };
        Outcome::new(updates, resync)
    }

    fn set(&mut self, state: Value, epoch: u64, version: u64, kind: UpdateKind) -> Update {
        let held = Held {
            epoch,
            version,
            state: Arc::new(state),
        };
        if version == 0 {
            self.default_state = Some(held.state.clone());
        }
        let out = update(&held, kind);
        self.held = Some(held);
        out
    }

    fn keep(&mut self, frame: StreamFrame) {
        self.kept.push_back(frame);
        if self.kept.len() > MAX_KEPT {
            self.kept.pop_front();
        }
    }
}

fn update(held: &Held, kind: UpdateKind) -> Update {
    Update {
        state: held.state.clone(),
        version: held.version,
        epoch: held.epoch,
        kind,
    }
}

/// `state` with `patch` applied, as a new value (the held one is never mutated).
fn patched(state: &Value, patch: Option<&Patch>) -> Option<Value> {
    let mut next = state.clone();
    if let Some(patch) = patch {
        json_patch::patch(&mut next, patch).ok()?;
    }
    Some(next)
}

#[cfg(test)]
#[path = "replica_tests.rs"]
mod tests;
