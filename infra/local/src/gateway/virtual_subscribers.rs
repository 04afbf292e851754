//! Simulated subscribers: connections without a socket, registered in the gateway like real
//! ones (posts to them succeed, queue, or answer 410 the same way), whose frames are checked as
//! they arrive — each follows one actor's versions by the client rule — and counted, so a
//! fan-out to 100,000 subscribers runs on one machine.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::registry::Outbound;
use super::Gateway;

/// What the simulated subscribers received, across all of them.
#[derive(Debug, Default)]
pub struct Tally {
    /// Per version reached: how many subscribers reached it, and when the last one did.
    reached: Mutex<HashMap<u64, (usize, Instant)>>,
    /// Frames for a version a subscriber already held.
    pub duplicates: AtomicUsize,
    /// Deltas that did not follow on from what a subscriber held.
    pub gaps: AtomicUsize,
    /// Frames received in all.
    pub frames: AtomicUsize,
    /// Subscribers whose connection the server ended (e.g. an injected 410).
    pub ended: AtomicUsize,
    changed: Notify,
    /// Whether to keep a [`Receipt`] of every frame that moved a subscriber on.
    keeping_receipts: AtomicBool,
    receipts: Mutex<Vec<Receipt>>,
}

/// A frame that took one subscriber to version `to` (a delta's `to`, a snapshot's `version`),
/// and the wall-clock time it arrived, to hold against the time the change was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    pub to: u64,
    pub at: SystemTime,
}

impl Tally {
    /// How many subscribers hold `version` (or a later one reached through it), and when the
    /// last of them got it.
    pub fn reached(&self, version: u64) -> (usize, Option<Instant>) {
        let reached = self.reached.lock().unwrap_or_else(|p| p.into_inner());
        reached.get(&version).map_or((0, None), |(n, at)| (*n, Some(*at)))
    }

    /// Waits until each of `count` subscribers reached `version` or was dropped (its
    /// connection ended), or `timeout` passes; returns how many reached it.
    pub async fn wait_for(&self, version: u64, count: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            let (n, _) = self.reached(version);
            if n + self.ended.load(Ordering::Relaxed) >= count {
                return n;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.reached(version).0;
            }
        }
    }

    /// From now on, keep a [`Receipt`] of every frame that moves a subscriber on (duplicates
    /// are only counted), until [`Tally::take_receipts`].
    pub fn keep_receipts(&self) {
        self.keeping_receipts.store(true, Ordering::Relaxed);
    }

    /// The receipts kept so far, in no particular order across subscribers; keeping goes on.
    pub fn take_receipts(&self) -> Vec<Receipt> {
        std::mem::take(&mut *self.receipts.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn receive(&self, to: u64, at: SystemTime) {
        if self.keeping_receipts.load(Ordering::Relaxed) {
            let mut receipts = self.receipts.lock().unwrap_or_else(|p| p.into_inner());
            receipts.push(Receipt { to, at });
        }
    }

    fn record(&self, version: u64) {
        let mut reached = self.reached.lock().unwrap_or_else(|p| p.into_inner());
        let entry = reached.entry(version).or_insert((0, Instant::now()));
        entry.0 += 1;
        entry.1 = Instant::now();
        drop(reached);
        self.changed.notify_waiters();
    }
}

/// Simulated subscribers opened in one gateway.
pub struct VirtualSubscribers {
    pub ids: Vec<String>,
    pub tally: Arc<Tally>,
}

impl Gateway {
    /// Opens `count` simulated connections (as if their `$connect` had succeeded; the caller
    /// stores their connection and subscription records).
    pub fn open_virtual(&self, count: usize) -> VirtualSubscribers {
        let tally = Arc::new(Tally::default());
        let mut ids = Vec::with_capacity(count);
        for _ in 0..count {
            let connection = self.registry.open_virtual(self.limits.max_queued_bytes);
            let Some(mut rx) = connection.rx.lock().unwrap_or_else(|p| p.into_inner()).take() else {
                continue;
            };
            ids.push(connection.id.clone());
            let tally = tally.clone();
            tokio::spawn(async move {
                let mut held = 0u64;
                let ended = connection.closed_by_server();
                tokio::pin!(ended);
                loop {
                    let out = tokio::select! {
                        out = rx.recv() => out,
                        _ = &mut ended => {
                            tally.ended.fetch_add(1, Ordering::Relaxed);
                            tally.changed.notify_waiters();
                            return;
                        }
                    };
                    let Some(out) = out else { return };
                    connection.dequeued(&out);
                    let Outbound::Text(text) = out else { continue };
                    tally.frames.fetch_add(1, Ordering::Relaxed);
                    held = follow(&tally, held, &text);
                }
            });
        }
        VirtualSubscribers { ids, tally }
    }
}

/// Applies one frame to a subscriber holding `held` by the client rule; returns what it holds.
fn follow(tally: &Tally, held: u64, text: &str) -> u64 {
    let arrived = SystemTime::now();
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        return held;
    };
    let number = |name: &str| frame[name].as_u64();
    let (from, to) = match frame["type"].as_str() {
        Some("delta") => (number("from"), number("to")),
        Some("snapshot" | "deleted") => (None, number("version")),
        _ => return held,
    };
    let Some(to) = to else { return held };
    if to <= held {
        tally.duplicates.fetch_add(1, Ordering::Relaxed);
        return held;
    }
    if from.is_some_and(|from| from > held) {
        tally.gaps.fetch_add(1, Ordering::Relaxed);
    }
    tally.receive(to, arrived);
    // Every version this frame takes the subscriber through is reached now.
    for version in held + 1..=to {
        tally.record(version);
    }
    to
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_rule_counts_duplicates_and_gaps() {
        let tally = Tally::default();
        let mut held = 0;
        for frame in [
            r#"{"type":"snapshot","version":1}"#,
            r#"{"type":"delta","from":1,"to":2}"#,
            r#"{"type":"delta","from":1,"to":2}"#,
            r#"{"type":"delta","from":4,"to":5}"#,
        ] {
            held = follow(&tally, held, frame);
        }
        assert_eq!(held, 5);
        assert_eq!(tally.duplicates.load(Ordering::Relaxed), 1);
        assert_eq!(tally.gaps.load(Ordering::Relaxed), 1);
        assert_eq!(tally.reached(2).0, 1);
        assert!(tally.take_receipts().is_empty(), "receipts are kept only when asked");
    }

    /// Once asked, every frame that moves the subscriber on leaves a receipt of its `to`
    /// version; a duplicate leaves none.
    #[test]
    fn receipts_name_the_version_each_frame_brought() {
        let tally = Tally::default();
        tally.keep_receipts();
        let mut held = 0;
        for frame in [
            r#"{"type":"snapshot","version":1}"#,
            r#"{"type":"delta","from":1,"to":3}"#,
            r#"{"type":"delta","from":2,"to":3}"#,
        ] {
            held = follow(&tally, held, frame);
        }
        let receipts = tally.take_receipts();
        assert_eq!(receipts.iter().map(|r| r.to).collect::<Vec<_>>(), [1, 3]);
        assert!(receipts[0].at <= receipts[1].at);
        assert!(tally.take_receipts().is_empty(), "taken once");
    }
}
