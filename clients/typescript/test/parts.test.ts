// Tests reassembly of `part` frames through the client: order, duplicates, a missing part
// (timeout, or a newer message for the same actor), a foreign part, and the actor sniffing.

import assert from "node:assert/strict";
import { test } from "node:test";
import { connect } from "../src/client.js";
import { actorOf } from "../src/parts.js";
import type { Change } from "../src/replica.js";
import { FakeClock, FakeNetwork } from "./fakes.js";

const ACTOR = "todo/big";

/** `frame` as JSON cut into `count` parts of message `message`. */
function split(frame: object, count: number, message = "m1") {
  const text = JSON.stringify(frame);
  const size = Math.ceil(text.length / count);
  return Array.from({ length: count }, (_, index) => ({ type: "part", message, index, count, data: text.slice(index * size, (index + 1) * size) }));
}

/** A client holding ACTOR at version 1. */
function holding() {
  const net = new FakeNetwork();
  const clock = new FakeClock();
  const client = connect("ws://test/local", { WebSocket: net.WebSocket, clock, keepAliveMs: 0, partTimeoutMs: 1_000, random: () => 0 });
  net.last.open();
  const seen: { state: unknown; change: Change }[] = [];
  client.subscribe(ACTOR, (state, change) => seen.push({ state, change }));
  const sub = net.last.lastSent("subscribe");
  net.last.deliver({ type: "subscribed", id: sub.id, actor: ACTOR, epoch: 1, version: 1, state: { n: 1 } });
  const socket = net.last;
  const subscribes = () => socket.sentActions("subscribe");
  return { net, clock, client, seen, socket, subscribes };
}

const big = { type: "snapshot", actor: ACTOR, epoch: 1, version: 5, state: { n: 5, blob: "x".repeat(300) } };

test("parts are joined in index order, whatever their arrival order, duplicates ignored", () => {
  const { socket, seen, subscribes, client } = holding();
  const frames: unknown[] = [];
  client.on("frame", (f) => frames.push(f.type));
  const [p0, p1, p2] = split(big, 3);
  for (const part of [p1, p0, p1, p2]) socket.deliver(part as object);
  assert.deepEqual(seen.map((s) => [s.change.kind, s.change.version]), [["snapshot", 1], ["snapshot", 5]]);
  assert.deepEqual(seen[1]?.state, big.state);
  assert.deepEqual(frames, ["part", "part", "part", "part", "snapshot"]);
  assert.equal(subscribes().length, 1, "no resubscribe");
  socket.deliver(p2 as object); // a late duplicate of a finished message
  assert.equal(seen.length, 2);
  assert.equal(subscribes().length, 1);
});

test("a subscribed reply in parts is handled like a whole one", () => {
  const net = new FakeNetwork();
  const client = connect("ws://t", { WebSocket: net.WebSocket, clock: new FakeClock(), keepAliveMs: 0 });
  net.last.open();
  const seen: unknown[] = [];
  client.subscribe(ACTOR, (s) => seen.push(s));
  const id = net.last.lastSent("subscribe").id;
  for (const part of split({ type: "subscribed", id, actor: ACTOR, epoch: 3, version: 9, state: { n: 9 } }, 4, "r")) net.last.deliver(part);
  assert.deepEqual(seen, [{ n: 9 }]);
});

test("a missing part times out: the message is dropped and its actor resubscribed with since", () => {
  const { socket, clock, seen, subscribes } = holding();
  const [p0, p1, p2] = split(big, 3);
  socket.deliver(p0 as object);
  socket.deliver(p2 as object);
  clock.advance(999);
  assert.equal(subscribes().length, 1);
  clock.advance(1);
  assert.equal(subscribes().length, 2);
  assert.deepEqual(subscribes()[1]?.since, { epoch: 1, version: 1 });
  socket.deliver(p1 as object); // too late: ignored
  assert.equal(seen.length, 1);
  assert.equal(subscribes().length, 2);
});

test("a newer snapshot for the same actor supersedes an unfinished message", () => {
  const { socket, seen, subscribes } = holding();
  const [p0, p1, p2] = split(big, 3, "old");
  socket.deliver(p0 as object);
  socket.deliver({ type: "snapshot", actor: ACTOR, epoch: 1, version: 6, state: { n: 6 } });
  socket.deliver(p1 as object);
  socket.deliver(p2 as object); // the rest of the dropped message is ignored
  assert.deepEqual(seen.map((s) => s.change.version), [1, 6]);
  assert.equal(subscribes().length, 1, "the newer state makes a resubscribe needless");
});

test("part 0 of a newer message for the same actor supersedes an unfinished one", () => {
  const { socket, seen, subscribes } = holding();
  const first = split(big, 3, "first");
  socket.deliver(first[0] as object);
  for (const part of split({ ...big, version: 7 }, 3, "second")) socket.deliver(part);
  for (const part of first.slice(1)) socket.deliver(part);
  assert.deepEqual(seen.map((s) => s.change.version), [1, 7]);
  assert.equal(subscribes().length, 1);
});

test("a superseded message resubscribes when its actor still awaits a reply", () => {
  const net = new FakeNetwork();
  const client = connect("ws://t", { WebSocket: net.WebSocket, clock: new FakeClock(), keepAliveMs: 0 });
  net.last.open();
  const seen: unknown[] = [];
  client.subscribe(ACTOR, (s) => seen.push(s));
  const id = net.last.lastSent("subscribe").id;
  const reply = { type: "subscribed", id, actor: ACTOR, epoch: 1, version: 4, state: { n: 4, blob: "x".repeat(300) } };
  net.last.deliver(split(reply, 3, "reply")[0] as object);
  net.last.deliver({ type: "snapshot", actor: ACTOR, epoch: 1, version: 5, state: { n: 5 } }); // kept until a reply
  const again = net.last.sentActions("subscribe");
  assert.equal(again.length, 2);
  net.last.deliver({ type: "subscribed", id: again[1]?.id, actor: ACTOR, epoch: 1, version: 4, state: { n: 4 } });
  assert.deepEqual(seen, [{ n: 4 }, { n: 5 }], "the reply, then the kept snapshot");
  for (const part of split(reply, 3, "reply").slice(1)) net.last.deliver(part);
  assert.equal(seen.length, 2, "the old reply's remaining parts are ignored");
});

test("a foreign part (another count for the same message) drops it and resubscribes", () => {
  const { socket, seen, subscribes } = holding();
  const [p0, p1] = split(big, 3);
  socket.deliver(p0 as object);
  socket.deliver({ ...(p1 as object), count: 4 });
  assert.equal(subscribes().length, 2);
  for (const part of split(big, 3).slice(1)) socket.deliver(part); // the rest of the dropped message
  assert.equal(seen.length, 1, "never completed");
});

test("a lost message whose actor is unknown resubscribes every actor", () => {
  const { socket, clock, subscribes } = holding();
  const [, p1] = split(big, 3);
  socket.deliver(p1 as object); // part 0 (naming the actor) never came
  clock.advance(1_000);
  assert.deepEqual(subscribes().map((f) => f.actor), [ACTOR, ACTOR]);
});

test("unfinished parts are forgotten when the connection drops", () => {
  const { net, socket, clock } = holding();
  socket.deliver(split(big, 3)[0] as object);
  socket.drop();
  assert.deepEqual(clock.pendingDelays(), [0], "only the reconnect timer is left");
  clock.advance(0);
  net.last.open();
  clock.advance(5_000);
  assert.equal(net.last.sentActions("subscribe").length, 1, "just the reconnect resubscribe");
});

test("actorOf reads the actor of the first part, escapes included", () => {
  assert.equal(actorOf('{"type":"snapshot","actor":"todo/a\\"b","epoch":1,"version":2,"state":{"actor":"x"'), 'todo/a"b');
  assert.equal(actorOf('{"type":"subscribed","id":4,"actor":"todo/z","epoch":1'), "todo/z");
  assert.equal(actorOf('{"type":"subscribed","id":4,"act'), undefined);
  assert.equal(actorOf('{"type":"delta","actor":"todo/z"'), undefined);
});
