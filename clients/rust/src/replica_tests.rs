//! Unit tests of the ordering rules in `replica.rs`.

use serde_json::{json, Value};

use super::*;
use crate::protocol::{Deleted, Delta, Snapshot};

fn patch(ops: Value) -> Patch {
    serde_json::from_value(ops).unwrap_or_else(|e| panic!("test patch: {e}"))
}

fn delta(epoch: u64, from: u64, to: u64, value: i64) -> StreamFrame {
    StreamFrame::Delta(Delta {
        actor: "counter/c".into(),
        epoch,
        from,
        to,
        patch: patch(json!([{"op": "replace", "path": "/value", "value": value}])),
    })
}

fn snapshot(epoch: u64, version: u64, value: i64) -> StreamFrame {
    StreamFrame::Snapshot(Snapshot {
        actor: "counter/c".into(),
        epoch,
        version,
        state: json!({"value": value}),
    })
}

fn deleted(epoch: u64, version: u64) -> StreamFrame {
    StreamFrame::Deleted(Deleted {
        actor: "counter/c".into(),
        epoch,
        version,
    })
}

fn fresh(epoch: u64, version: u64, value: i64) -> Subscribed {
    Subscribed {
        id: Some(json!(1)),
        actor: "counter/c".into(),
        epoch,
        version,
        state: Some(json!({"value": value})),
        resumed: None,
        from: None,
        patch: None,
    }
}

fn resumed(epoch: u64, from: u64, version: u64, ops: Value) -> Subscribed {
    Subscribed {
        id: Some(json!(2)),
        actor: "counter/c".into(),
        epoch,
        version,
        state: None,
        resumed: Some(true),
        from: Some(from),
        patch: Some(patch(ops)),
    }
}

/// A replica holding `{"value": value}` at (epoch, version).
fn holding(filtered: bool, epoch: u64, version: u64, value: i64) -> Replica {
    let mut replica = Replica::new(filtered);
    replica.await_reply(Some(1));
    let outcome = replica.subscribed(fresh(epoch, version, value));
    assert_eq!(outcome.resync, Resync::None);
    replica
}

fn versions(outcome: &Outcome) -> Vec<(u64, UpdateKind)> {
    outcome.updates.iter().map(|u| (u.version, u.kind)).collect()
}

fn value(replica: &Replica) -> Value {
    replica.current().map(|u| (*u.state).clone()).unwrap_or(Value::Null)
}

/// Frames that arrive before the subscribe reply are kept, then applied if they chain on it.
#[test]
fn frames_before_the_reply_are_kept_and_chain_on_it() {
    let mut replica = Replica::new(false);
    replica.await_reply(Some(1));
    assert_eq!(replica.receive(delta(7, 3, 4, 4)).resync, Resync::None);
    assert_eq!(replica.receive(delta(7, 2, 3, 3)).resync, Resync::None);
    assert_eq!(replica.kept_count(), 2);
    let outcome = replica.subscribed(fresh(7, 2, 2));
    assert_eq!(
        versions(&outcome),
        vec![
            (2, UpdateKind::Snapshot),
            (3, UpdateKind::Delta),
            (4, UpdateKind::Delta)
        ]
    );
    assert_eq!(outcome.resync, Resync::None);
    assert_eq!(value(&replica), json!({"value": 4}));
    assert_eq!(replica.kept_count(), 0);
}

/// Deltas apply in order; a repeated delta, an older snapshot or a delta ending at or below
/// the held version are duplicates (`to <= held`) and dropped.
#[test]
fn duplicates_are_dropped() {
    let mut replica = holding(false, 7, 1, 1);
    assert_eq!(
        versions(&replica.receive(delta(7, 1, 2, 2))),
        vec![(2, UpdateKind::Delta)]
    );
    for duplicate in [
        delta(7, 1, 2, 2),
        delta(7, 0, 1, 1),
        snapshot(7, 2, 2),
        snapshot(7, 1, 1),
    ] {
        let outcome = replica.receive(duplicate);
        assert!(outcome.updates.is_empty());
        assert_eq!(outcome.resync, Resync::None);
    }
    assert_eq!(value(&replica), json!({"value": 2}));
    assert_eq!(
        versions(&replica.receive(snapshot(7, 5, 5))),
        vec![(5, UpdateKind::Snapshot)]
    );
}

/// A delta past a gap is kept and asks for a resubscribe with `since`; once the missing one
/// arrives both apply in order.
#[test]
fn frames_ahead_are_kept_until_the_gap_fills() {
    let mut replica = holding(false, 7, 1, 1);
    let ahead = replica.receive(delta(7, 2, 3, 3));
    assert!(ahead.updates.is_empty());
    assert_eq!(ahead.resync, Resync::Since);
    assert_eq!(replica.since(), Some(Since { epoch: 7, version: 1 }));
    let filled = replica.receive(delta(7, 1, 2, 2));
    assert_eq!(versions(&filled), vec![(2, UpdateKind::Delta), (3, UpdateKind::Delta)]);
    assert_eq!(filled.resync, Resync::None);
}

/// After a gap the resubscribe resumes with the missed patch; kept frames past it then apply.
#[test]
fn a_gap_is_closed_by_a_resume() {
    let mut replica = holding(false, 7, 1, 1);
    assert_eq!(replica.receive(delta(7, 3, 4, 4)).resync, Resync::Since);
    replica.await_reply(Some(2));
    assert_eq!(
        replica.receive(delta(7, 4, 5, 5)).resync,
        Resync::None,
        "kept while awaiting"
    );
    let outcome = replica.subscribed(resumed(
        7,
        1,
        3,
        json!([{"op": "replace", "path": "/value", "value": 3}]),
    ));
    assert_eq!(
        versions(&outcome),
        vec![(3, UpdateKind::Resumed), (4, UpdateKind::Delta), (5, UpdateKind::Delta)]
    );
    assert_eq!(outcome.resync, Resync::None);
    assert_eq!(value(&replica), json!({"value": 5}));
}

/// A resume to the version already held (nothing missed) yields nothing.
#[test]
fn a_resume_to_a_version_already_held_is_a_duplicate() {
    let mut replica = holding(false, 7, 5, 5);
    replica.await_reply(Some(2));
    let outcome = replica.subscribed(resumed(7, 5, 5, json!([])));
    assert!(outcome.updates.is_empty());
    assert_eq!(outcome.resync, Resync::None);
    assert_eq!(replica.awaiting(), None);
    let older = replica.subscribed(resumed(7, 3, 4, json!([])));
    assert!(older.updates.is_empty());
    assert_eq!(older.resync, Resync::None);
}

/// A resume from a version or epoch not held, or with a patch that does not apply, cannot
/// be trusted: resubscribe without `since`.
#[test]
fn a_resume_that_does_not_fit_asks_for_a_fresh_subscription() {
    let mut replica = holding(false, 7, 5, 5);
    assert_eq!(replica.subscribed(resumed(8, 5, 6, json!([]))).resync, Resync::Fresh);
    assert_eq!(replica.subscribed(resumed(7, 4, 6, json!([]))).resync, Resync::Fresh);
    let broken = json!([{"op": "remove", "path": "/missing"}]);
    assert_eq!(replica.subscribed(resumed(7, 5, 6, broken)).resync, Resync::Fresh);
    assert_eq!(value(&replica), json!({"value": 5}), "the held state is untouched");
}

/// `resumed: false` (the server could not serve `since`) replaces the state, even a newer one.
#[test]
fn a_resume_refused_replaces_the_state() {
    let mut replica = holding(false, 7, 5, 5);
    let mut reply = fresh(9, 2, 20);
    reply.resumed = Some(false);
    let outcome = replica.subscribed(reply);
    assert_eq!(versions(&outcome), vec![(2, UpdateKind::Snapshot)]);
    assert_eq!(replica.since(), Some(Since { epoch: 9, version: 2 }));
    assert_eq!(value(&replica), json!({"value": 20}));
}

/// A delta of another epoch is kept and asks for a fresh subscription; a snapshot of another
/// epoch simply replaces the state.
#[test]
fn another_epoch_needs_a_fresh_subscription_or_a_snapshot() {
    let mut replica = holding(false, 7, 5, 5);
    assert_eq!(replica.receive(delta(8, 1, 2, 2)).resync, Resync::Fresh);
    let mut replica = holding(false, 7, 5, 5);
    assert_eq!(
        versions(&replica.receive(snapshot(8, 1, 1))),
        vec![(1, UpdateKind::Snapshot)]
    );
}

/// An unfiltered delta starting below the held version but ending past it cannot apply.
#[test]
fn an_overlapping_delta_asks_for_since() {
    let mut replica = holding(false, 7, 3, 3);
    let outcome = replica.receive(delta(7, 2, 5, 5));
    assert!(outcome.updates.is_empty());
    assert_eq!(outcome.resync, Resync::Since);
}

/// Filtered subscriptions skip versions that do not touch their paths: a delta applies when
/// the held version v satisfies `from <= v < to`.
#[test]
fn a_filtered_delta_applies_from_any_version_in_its_range() {
    let mut replica = holding(true, 7, 3, 3);
    assert_eq!(
        versions(&replica.receive(delta(7, 2, 5, 5))),
        vec![(5, UpdateKind::Delta)]
    );
    assert_eq!(
        versions(&replica.receive(delta(7, 5, 9, 9))),
        vec![(9, UpdateKind::Delta)]
    );
    let stale = replica.receive(delta(7, 5, 9, 9));
    assert!(stale.updates.is_empty());
    assert_eq!(stale.resync, Resync::None);
    let ahead = replica.receive(delta(7, 10, 12, 12));
    assert_eq!(ahead.resync, Resync::Since);
    assert_eq!(
        versions(&replica.receive(delta(7, 9, 10, 10))),
        vec![(10, UpdateKind::Delta), (12, UpdateKind::Delta)]
    );
}

/// `deleted` falls back to the default state (learnt at version 0), once; a delta from 0
/// then applies whatever its epoch.
#[test]
fn deleted_falls_back_to_the_default_state() {
    let mut replica = holding(false, 0, 0, 0);
    assert_eq!(
        versions(&replica.receive(delta(7, 0, 1, 1))),
        vec![(1, UpdateKind::Delta)]
    );
    let gone = replica.receive(deleted(7, 1));
    assert_eq!(versions(&gone), vec![(0, UpdateKind::Deleted)]);
    assert_eq!(gone.resync, Resync::None);
    assert_eq!(value(&replica), json!({"value": 0}));
    assert!(
        replica.receive(deleted(7, 1)).updates.is_empty(),
        "a repeated deleted is a duplicate"
    );
    assert_eq!(
        versions(&replica.receive(delta(9, 0, 1, 4))),
        vec![(1, UpdateKind::Delta)]
    );
}

/// Without a known default state, `deleted` asks for a fresh subscription.
#[test]
fn deleted_without_a_known_default_asks_for_a_fresh_subscription() {
    let mut replica = holding(false, 7, 3, 3);
    let gone = replica.receive(deleted(7, 3));
    assert_eq!(versions(&gone), vec![(0, UpdateKind::Deleted)]);
    assert_eq!(gone.resync, Resync::Fresh);
    assert!(
        replica.receive(deleted(7, 2)).updates.is_empty(),
        "older than held is stale"
    );
}

/// A patch that does not apply leaves the state untrusted: resubscribe fresh.
#[test]
fn a_patch_that_does_not_apply_asks_for_a_fresh_subscription() {
    let mut replica = holding(false, 7, 1, 1);
    let frame = StreamFrame::Delta(Delta {
        actor: "counter/c".into(),
        epoch: 7,
        from: 1,
        to: 2,
        patch: patch(json!([{"op": "test", "path": "/value", "value": 99}])),
    });
    let outcome = replica.receive(frame);
    assert!(outcome.updates.is_empty());
    assert_eq!(outcome.resync, Resync::Fresh);
}

/// Every change hands out a new value; states already handed out stay as they were.
#[test]
fn states_handed_out_are_never_mutated() {
    let mut replica = holding(false, 7, 1, 1);
    let before = replica.current().map(|u| u.state);
    replica.receive(delta(7, 1, 2, 2));
    assert_eq!(before.as_deref(), Some(&json!({"value": 1})));
    assert_eq!(value(&replica), json!({"value": 2}));
}

/// Nothing held yet: frames are kept (no reply awaited means none was sent yet).
#[test]
fn nothing_is_applied_before_a_state_is_held() {
    let mut replica = Replica::new(false);
    assert_eq!(replica.since(), None);
    assert!(replica.receive(snapshot(7, 1, 1)).updates.is_empty());
    assert_eq!(replica.kept_count(), 1);
}
