//! The recent changes kept with each actor (in its item, written in the same conditional write
//! as the state): one JSON Patch per version, bounded by age, count and bytes. Any Lambda that
//! reads the actor can serve a resuming subscriber from it, and the fan-out sends the patches
//! the writer already computed instead of diffing the images.

use std::time::Duration;

use json_patch::Patch;
use serde::{Deserialize, Serialize};

use crate::ids::Version;

/// One change: the patch taking version `v - 1` to `v`, as JSON text, written at `at` (ms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub v: Version,
    pub at: i64,
    pub p: String,
}

/// How much history each actor keeps; [`ChangeLogSettings::default`] is what production uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeLogSettings {
    /// Changes older than this are dropped (and never served).
    pub retention: Duration,
    /// At most this many changes per actor.
    pub max_entries: usize,
    /// At most this many bytes of patches per actor (also bounded by the room left in the
    /// item next to the state).
    pub max_bytes: usize,
    /// And at most this share of the state's size (every write rewrites the log: this bounds
    /// what it adds to each write's bytes).
    pub max_share_percent: usize,
}

impl Default for ChangeLogSettings {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(24 * 3600),
            max_entries: 100,
            max_bytes: 8 * 1024,
            max_share_percent: 12,
        }
    }
}

/// Bytes an entry takes in the item (its patch text plus a little for the other fields).
fn entry_bytes(entry: &LogEntry) -> usize {
    entry.p.len() + 24
}

/// Appends the change to `to` (with `patch`, the step from `to - 1`) and trims the log to the
/// settings and to `room` bytes. A log that does not end at `to - 1` is restarted: entries
/// must follow each other without a gap.
pub fn append(
    log: &mut Vec<LogEntry>,
    to: Version,
    patch: &Patch,
    now: i64,
    settings: &ChangeLogSettings,
    room: usize,
) {
    if log.last().is_some_and(|last| last.v.next() != to) {
        log.clear();
    }
    let text = serde_json::to_string(patch).unwrap_or_default();
    log.push(LogEntry {
        v: to,
        at: now,
        p: text,
    });
    let oldest_kept = now - settings.retention.as_millis() as i64;
    log.retain(|e| e.at >= oldest_kept);
    let budget = settings.max_bytes.min(room);
    let mut bytes: usize = log.iter().map(entry_bytes).sum();
    let mut drop = 0;
    while drop < log.len() && (log.len() - drop > settings.max_entries || bytes > budget) {
        bytes -= entry_bytes(&log[drop]);
        drop += 1;
    }
    log.drain(..drop);
}

/// The patch taking version `from` to `to`, when the log holds every step in between and
/// each is within the retention window; `None` otherwise (send a snapshot).
pub fn patch_between(log: &[LogEntry], from: Version, to: Version, now: i64, retention: Duration) -> Option<Patch> {
    if from > to {
        return None;
    }
    let oldest_kept = now - retention.as_millis() as i64;
    let mut ops = Vec::new();
    let mut at = from;
    for entry in log.iter().filter(|e| e.v > from && e.v <= to) {
        if entry.v != at.next() || entry.at < oldest_kept {
            return None;
        }
        let step: Patch = serde_json::from_str(&entry.p).ok()?;
        ops.extend(step.0);
        at = entry.v;
    }
    (at == to).then_some(Patch(ops))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn patch(value: i64) -> Patch {
        serde_json::from_value(json!([{"op": "replace", "path": "/value", "value": value}])).expect("patch")
    }

    fn settings() -> ChangeLogSettings {
        ChangeLogSettings::default()
    }

    #[test]
    fn consecutive_patches_make_one_patch_between_any_two_versions() {
        let mut log = Vec::new();
        for v in 1..=5 {
            append(&mut log, Version(v), &patch(v as i64), 1_000, &settings(), usize::MAX);
        }
        let p = patch_between(&log, Version(2), Version(5), 1_000, settings().retention).expect("covered");
        assert_eq!(p.0.len(), 3);
        assert_eq!(
            patch_between(&log, Version(5), Version(5), 1_000, settings().retention),
            Some(Patch(vec![]))
        );
        assert_eq!(
            patch_between(&log, Version(0), Version(5), 1_000, settings().retention).map(|p| p.0.len()),
            Some(5)
        );
        assert_eq!(
            patch_between(&log, Version(4), Version(6), 1_000, settings().retention),
            None,
            "future"
        );
    }

    #[test]
    fn the_log_keeps_its_bounds_and_never_has_a_gap() {
        let bounded = ChangeLogSettings {
            max_entries: 3,
            ..settings()
        };
        let mut log = Vec::new();
        for v in 1..=10 {
            append(&mut log, Version(v), &patch(v as i64), 1_000, &bounded, usize::MAX);
        }
        assert_eq!(log.iter().map(|e| e.v.0).collect::<Vec<_>>(), vec![8, 9, 10]);
        assert_eq!(
            patch_between(&log, Version(6), Version(10), 1_000, bounded.retention),
            None,
            "past the bound"
        );
        assert!(patch_between(&log, Version(7), Version(10), 1_000, bounded.retention).is_some());

        append(&mut log, Version(15), &patch(15), 1_000, &bounded, usize::MAX);
        assert_eq!(log.len(), 1, "a write that skipped versions restarts the log");

        append(&mut log, Version(16), &patch(16), 1_000, &bounded, 10);
        assert!(log.is_empty(), "no room in the item: nothing kept");
    }

    #[test]
    fn changes_past_the_retention_are_neither_kept_nor_served() {
        let hour = 3_600_000;
        let mut log = Vec::new();
        append(&mut log, Version(1), &patch(1), 0, &settings(), usize::MAX);
        append(&mut log, Version(2), &patch(2), 23 * hour, &settings(), usize::MAX);
        assert_eq!(
            patch_between(&log, Version(0), Version(2), 24 * hour + 1, settings().retention),
            None
        );
        assert!(patch_between(&log, Version(1), Version(2), 24 * hour + 1, settings().retention).is_some());
        append(&mut log, Version(3), &patch(3), 25 * hour, &settings(), usize::MAX);
        assert_eq!(log.iter().map(|e| e.v.0).collect::<Vec<_>>(), vec![2, 3]);
    }
}
