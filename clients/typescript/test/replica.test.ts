// Tests the ordering rules for one actor (Replica): chaining, duplicates, frames ahead,
// gaps, epoch changes, version 0 and deletion, resume replies.

import assert from "node:assert/strict";
import { test } from "node:test";
import type { DeltaFrame, SubscribedFrame } from "../src/protocol.js";
import { Replica } from "../src/replica.js";

const A = "todo/a";
const E = 100;

function fresh(state: unknown, version: number, epoch = E, id = 1): SubscribedFrame {
  return { type: "subscribed", id, actor: A, epoch, version, state };
}
function delta(from: number, to: number, patch: unknown[], epoch = E): DeltaFrame {
  return { type: "delta", actor: A, epoch, from, to, patch };
}
const set = (path: string, value: unknown) => ({ op: "add", path, value });

/** A replica holding `{n: version}` at `version`. */
function holding(version: number, epoch = E): Replica {
  const r = new Replica();
  r.awaiting = 1;
  r.subscribed(fresh({ n: version }, version, epoch));
  return r;
}

test("a fresh reply is a frozen snapshot", () => {
  const r = new Replica();
  r.awaiting = 1;
  const out = r.subscribed(fresh({ items: {} }, 3));
  assert.equal(out.resync, "none");
  assert.deepEqual(out.updates, [{ state: { items: {} }, change: { kind: "snapshot", epoch: E, version: 3 } }]);
  assert.ok(Object.isFrozen(r.state));
  assert.deepEqual(r.since(), { epoch: E, version: 3 });
});

test("a delta that chains applies; the old state is untouched", () => {
  const r = holding(3);
  const before = r.state;
  const out = r.receive(delta(3, 4, [set("/n", 4)]));
  assert.deepEqual(out.updates.map((u) => u.state), [{ n: 4 }]);
  assert.deepEqual(out.updates[0]?.change, { kind: "delta", epoch: E, version: 4, from: 3, patch: [set("/n", 4)] });
  assert.deepEqual(before, { n: 3 });
  assert.notEqual(r.state, before);
  assert.ok(Object.isFrozen(r.state));
});

test("a coalesced delta spanning several versions applies", () => {
  const r = holding(3);
  r.receive(delta(3, 9, [set("/n", 9)]));
  assert.equal(r.version, 9);
});

test("duplicates (to <= held) are dropped", () => {
  const r = holding(5);
  for (const d of [delta(4, 5, [set("/n", "dup")]), delta(2, 3, [set("/n", "old")])]) {
    assert.deepEqual(r.receive(d), { updates: [], resync: "none" });
  }
  assert.deepEqual(r.state, { n: 5 });
});

test("a frame ahead is kept, asks for since, and chains after the resume reply", () => {
  const r = holding(3);
  const out = r.receive(delta(5, 6, [set("/n", 6)]));
  assert.deepEqual(out, { updates: [], resync: "since" });
  assert.equal(r.keptCount, 1);
  r.awaiting = 2;
  r.receive(delta(4, 5, [set("/x", "kept while awaiting")])); // stale after the reply
  const reply = r.subscribed({ type: "subscribed", id: 2, actor: A, epoch: E, version: 5, resumed: true, from: 3, patch: [set("/n", 5)] });
  assert.deepEqual(reply.updates.map((u) => u.change.kind), ["resumed", "delta"]);
  assert.deepEqual(r.state, { n: 6 });
  assert.equal(r.version, 6);
  assert.equal(r.keptCount, 0);
  assert.equal(reply.resync, "none");
});

test("a delta straddling the held version cannot apply: resync since, not kept", () => {
  const r = holding(5);
  assert.deepEqual(r.receive(delta(4, 7, [])), { updates: [], resync: "since" });
  assert.equal(r.keptCount, 0);
});

test("frames still ahead after the reply ask for another resync", () => {
  const r = holding(3);
  r.receive(delta(8, 9, []));
  r.awaiting = 2;
  const out = r.subscribed({ type: "subscribed", id: 2, actor: A, epoch: E, version: 5, resumed: true, from: 3, patch: [] });
  assert.equal(out.resync, "since");
  assert.equal(r.keptCount, 1);
});

test("an epoch change without a snapshot resyncs fresh; new-epoch frames chain after it, old ones go", () => {
  const r = holding(5);
  assert.equal(r.receive(delta(10, 11, [set("/n", 11)], 200)).resync, "fresh");
  r.awaiting = 2;
  r.receive(delta(5, 6, [set("/n", 6)], E)); // old epoch
  const out = r.subscribed(fresh({ n: 10 }, 10, 200, 2));
  assert.deepEqual(out.updates.map((u) => [u.change.kind, u.change.epoch, u.change.version]), [
    ["snapshot", 200, 10],
    ["delta", 200, 11],
  ]);
  assert.equal(r.keptCount, 0);
});

test("a delta from 0 applies to the default state whatever its epoch", () => {
  const r = new Replica();
  r.awaiting = 1;
  r.subscribed(fresh({ items: {}, nextId: 0 }, 0, 0));
  const out = r.receive(delta(0, 1, [set("/nextId", 1)], 777));
  assert.deepEqual(out.updates[0]?.state, { items: {}, nextId: 1 });
  assert.equal(r.epoch, 777);
});

test("snapshots replace when newer or of another epoch, else are dropped", () => {
  const r = holding(5);
  assert.equal(r.receive({ type: "snapshot", actor: A, epoch: E, version: 5, state: { n: "same" } }).updates.length, 0);
  assert.equal(r.receive({ type: "snapshot", actor: A, epoch: E, version: 4, state: { n: "old" } }).updates.length, 0);
  assert.equal(r.receive({ type: "snapshot", actor: A, epoch: E, version: 7, state: { n: 7 } }).updates[0]?.change.kind, "snapshot");
  assert.equal(r.receive({ type: "snapshot", actor: A, epoch: 300, version: 2, state: { n: 2 } }).updates.length, 1);
  assert.deepEqual([r.epoch, r.version, r.state], [300, 2, { n: 2 }]);
});

test("deleted goes back to the default state at version 0, once", () => {
  const r = new Replica();
  r.awaiting = 1;
  r.subscribed(fresh({ items: {} }, 0));
  r.receive(delta(0, 1, [set("/items/1", "milk")]));
  const out = r.receive({ type: "deleted", actor: A, epoch: E, version: 1 });
  assert.deepEqual(out.updates, [{ state: { items: {} }, change: { kind: "deleted", epoch: E, version: 0 } }]);
  r.receive(delta(0, 1, [set("/items/2", "eggs")])); // re-created
  assert.equal(r.receive({ type: "deleted", actor: A, epoch: E, version: 1 }).updates.length, 0, "duplicate deletion");
  assert.deepEqual(r.state, { items: { 2: "eggs" } });
});

test("deleted without a known default state resubscribes fresh to learn it", () => {
  const r = holding(4);
  const out = r.receive({ type: "deleted", actor: A, epoch: E, version: 5 });
  assert.equal(out.resync, "fresh");
  assert.equal(out.updates[0]?.change.kind, "deleted");
  assert.equal(r.version, 0);
});

test("a stale deletion (older than held) is dropped", () => {
  const r = holding(6);
  assert.deepEqual(r.receive({ type: "deleted", actor: A, epoch: E, version: 5 }), { updates: [], resync: "none" });
});

test("a resume reply that does not start at the held version resyncs fresh", () => {
  const r = holding(3);
  r.awaiting = 2;
  const out = r.subscribed({ type: "subscribed", id: 2, actor: A, epoch: E, version: 6, resumed: true, from: 4, patch: [] });
  assert.deepEqual(out, { updates: [], resync: "fresh" });
  assert.deepEqual(r.state, { n: 3 });
});

test("a patch that does not apply resyncs fresh and keeps the state", () => {
  const r = holding(3);
  const out = r.receive(delta(3, 4, [{ op: "remove", path: "/missing" }]));
  assert.deepEqual(out, { updates: [], resync: "fresh" });
  assert.deepEqual([r.version, r.state], [3, { n: 3 }]);
});

test("before any state, frames are kept", () => {
  const r = new Replica();
  r.awaiting = 1;
  r.receive(delta(3, 4, [set("/n", 4)]));
  r.receive(delta(2, 3, [set("/n", 3)])); // older than the reply
  const out = r.subscribed(fresh({ n: 3 }, 3));
  assert.deepEqual(out.updates.map((u) => u.change.version), [3, 4]);
  assert.deepEqual(r.state, { n: 4 });
});

test("a resume to a version already held (the fan-out was faster) is a duplicate", () => {
  const r = holding(5);
  r.awaiting = 2;
  const out = r.subscribed({ type: "subscribed", id: 2, actor: A, epoch: E, version: 5, resumed: true, from: 3, patch: [set("/n", 5)] });
  assert.equal(out.resync, "none");
  assert.equal(r.version, 5);
  assert.deepEqual(r.state, { n: 5 });
});

test("a filtered delta applies from any held version in [from, to)", () => {
  const r = new Replica(true);
  r.awaiting = 1;
  r.subscribed(fresh({ n: 5 }, 9));
  const out = r.receive(delta(5, 12, [set("/n", 12)]));
  assert.equal(out.resync, "none");
  assert.equal(r.version, 12);
  assert.deepEqual(r.state, { n: 12 });
  const unfiltered = holding(9);
  assert.equal(unfiltered.receive(delta(5, 12, [set("/n", 12)])).resync, "since", "unfiltered: an overlap");
});
