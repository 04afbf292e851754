// Tests the client end to end over a fake WebSocket and a fake clock: connection states,
// token subprotocols, reconnect with back-off, resubscribe with `since`, ordering through the
// client, call retries with the same idempotency key, timeouts, errors and workflows.

import assert from "node:assert/strict";
import { test } from "node:test";
import { connect, type Client, type ConnectOptions } from "../src/client.js";
import { StatecastError } from "../src/errors.js";
import type { Change } from "../src/replica.js";
import { FakeClock, FakeNetwork, flush, type FakeSocket } from "./fakes.js";

const ACTOR = "todo/groceries";

function setup(options: Partial<ConnectOptions> = {}) {
  const net = new FakeNetwork();
  const clock = new FakeClock();
  const states: string[] = [];
  const client = connect("ws://test/local", { WebSocket: net.WebSocket, clock, random: () => 0.5, keepAliveMs: 0, ...options });
  client.on("state", (s) => states.push(s));
  return { net, clock, client, states };
}

/** Subscribes to ACTOR on an open socket and answers with `state` at `version`. */
function subscribed(client: Client, socket: FakeSocket, state: unknown, version: number, epoch = 1) {
  const seen: { state: unknown; change: Change }[] = [];
  const unsubscribe = client.subscribe(ACTOR, (s, change) => seen.push({ state: s, change }));
  const sub = socket.lastSent("subscribe");
  socket.deliver({ type: "subscribed", id: sub.id, actor: ACTOR, epoch, version, state });
  return { seen, unsubscribe };
}

test("the token travels as the subprotocols bearer, <token>; states go connecting → open", () => {
  const { net, client, states } = setup({ token: "t0k.en" });
  assert.equal(client.state, "connecting");
  assert.deepEqual(net.last.protocols, ["bearer", "t0k.en"]);
  assert.equal(net.last.url, "ws://test/local");
  net.last.open();
  assert.equal(client.state, "open");
  assert.deepEqual(states, ["open"]);
});

test("without a token no subprotocol is asked for", () => {
  const { net } = setup();
  assert.equal(net.last.protocols, undefined);
});

test("subscribe is sent once open, with paths; the listener gets the snapshot", () => {
  const { net, client } = setup();
  const seen: unknown[] = [];
  client.subscribe(ACTOR, (state, change) => seen.push([state, change.kind, change.version]), { paths: ["/items/7", "/title"] });
  assert.equal(net.last.sent.length, 0, "nothing sent before open");
  net.last.open();
  const sub = net.last.lastSent("subscribe");
  assert.deepEqual(sub, { action: "subscribe", id: sub.id, actor: ACTOR, paths: ["/items/7", "/title"] });
  net.last.deliver({ type: "subscribed", id: sub.id, actor: ACTOR, epoch: 1, version: 2, state: { title: "x" } });
  assert.deepEqual(seen, [[{ title: "x" }, "snapshot", 2]]);
});

test("states are new frozen objects, never mutated in place", () => {
  const { net, client } = setup();
  net.last.open();
  const { seen } = subscribed(client, net.last, { items: { 1: { title: "milk", done: false } }, other: { a: 1 } }, 1);
  net.last.deliver({ type: "delta", actor: ACTOR, epoch: 1, from: 1, to: 2, patch: [{ op: "replace", path: "/items/1/done", value: true }] });
  const [first, second] = seen.map((s) => s.state as { items: Record<string, { done: boolean }>; other: object });
  assert.equal(first?.items[1]?.done, false);
  assert.equal(second?.items[1]?.done, true);
  assert.equal(first?.other, second?.other, "untouched subtree shared");
  assert.throws(() => {
    (second as { other: { a: number } }).other.a = 2;
  }, TypeError);
});

test("duplicates are not delivered; a gap resubscribes with since and chains kept frames", () => {
  const { net, client } = setup();
  net.last.open();
  const { seen } = subscribed(client, net.last, { n: 1 }, 1);
  net.last.deliver({ type: "delta", actor: ACTOR, epoch: 1, from: 1, to: 2, patch: [{ op: "replace", path: "/n", value: 2 }] });
  net.last.deliver({ type: "delta", actor: ACTOR, epoch: 1, from: 1, to: 2, patch: [{ op: "replace", path: "/n", value: 2 }] });
  assert.equal(seen.length, 2, "duplicate dropped");
  net.last.deliver({ type: "delta", actor: ACTOR, epoch: 1, from: 4, to: 5, patch: [{ op: "replace", path: "/n", value: 5 }] });
  const resub = net.last.lastSent("subscribe");
  assert.deepEqual(resub.since, { epoch: 1, version: 2 });
  assert.equal(seen.length, 2, "the frame ahead is kept, not applied");
  net.last.deliver({ type: "subscribed", id: resub.id, actor: ACTOR, epoch: 1, version: 4, resumed: true, from: 2, patch: [{ op: "replace", path: "/n", value: 4 }] });
  assert.deepEqual(seen.slice(2).map((s) => [s.change.kind, s.state]), [["resumed", { n: 4 }], ["delta", { n: 5 }]]);
});

test("an epoch change without a snapshot resubscribes without since", () => {
  const { net, client } = setup();
  net.last.open();
  subscribed(client, net.last, { n: 1 }, 1);
  net.last.deliver({ type: "delta", actor: ACTOR, epoch: 2, from: 3, to: 4, patch: [] });
  const resub = net.last.lastSent("subscribe");
  assert.equal(resub.since, undefined);
  assert.equal(net.last.sentActions("subscribe").length, 2);
});

test("a reply to an older subscribe request is ignored", () => {
  const { net, client } = setup();
  net.last.open();
  const { seen } = subscribed(client, net.last, { n: 1 }, 1);
  const first = net.last.lastSent("subscribe");
  net.last.deliver({ type: "delta", actor: ACTOR, epoch: 1, from: 5, to: 6, patch: [] }); // gap → resubscribe
  net.last.deliver({ type: "subscribed", id: first.id, actor: ACTOR, epoch: 1, version: 9, state: { n: "stale reply" } });
  assert.equal(seen.length, 1);
});

test("reconnect: full-jitter back-off, resubscribe with since and paths, resume applies", () => {
  const { net, clock, client, states } = setup({ backoff: { baseMs: 100, capMs: 1000 } });
  net.last.open();
  const seen: Change[] = [];
  client.subscribe(ACTOR, (_s, c) => seen.push(c), { paths: ["/items"] });
  const sub = net.last.lastSent("subscribe");
  net.last.deliver({ type: "subscribed", id: sub.id, actor: ACTOR, epoch: 7, version: 3, state: { items: {} } });

  net.last.drop();
  assert.equal(client.state, "reconnecting");
  assert.deepEqual(clock.pendingDelays(), [50], "random(0, min(1000, 100·2^0)) with random = 0.5");
  clock.advance(49);
  assert.equal(net.sockets.length, 1);
  clock.advance(1);
  assert.equal(net.sockets.length, 2);
  net.last.drop(); // the attempt fails
  assert.deepEqual(clock.pendingDelays(), [100], "attempt 1: 0.5 · 200");
  clock.advance(100);
  net.last.drop();
  assert.deepEqual(clock.pendingDelays(), [200]);
  clock.advance(200);
  net.last.drop();
  assert.deepEqual(clock.pendingDelays(), [400]);
  clock.advance(400);
  net.last.drop();
  assert.deepEqual(clock.pendingDelays(), [500], "capped: 0.5 · min(1000, 1600)");
  clock.advance(500);
  net.last.open();
  assert.deepEqual(states, ["open", "reconnecting", "open"]);
  const resub = net.last.lastSent("subscribe");
  assert.deepEqual(resub, { action: "subscribe", id: resub.id, actor: ACTOR, since: { epoch: 7, version: 3 }, paths: ["/items"] });
  net.last.deliver({ type: "subscribed", id: resub.id, actor: ACTOR, epoch: 7, version: 4, resumed: true, from: 3, patch: [{ op: "add", path: "/items/1", value: {} }] });
  assert.deepEqual(seen.map((c) => [c.kind, c.version]), [["snapshot", 3], ["resumed", 4]]);
  net.last.drop();
  assert.deepEqual(clock.pendingDelays(), [50], "a successful open resets the attempts");
});

test("after maxAttempts failed reconnects the client closes and pending calls reject", async () => {
  const { net, clock, client, states } = setup({ backoff: { baseMs: 10, capMs: 10, maxAttempts: 2 } });
  const call = client.call(ACTOR, "add", { title: "x" }, { timeoutMs: 60_000 });
  net.last.drop();
  clock.advance(10);
  net.last.drop();
  clock.advance(10);
  net.last.drop();
  assert.equal(client.state, "closed");
  assert.equal(net.sockets.length, 3);
  assert.deepEqual(states, ["reconnecting", "closed"]);
  await assert.rejects(call, (e: unknown) => e instanceof StatecastError && e.code === "closed");
  assert.deepEqual(clock.pendingDelays(), []);
});

test("a call resolves with the result value and carries an idempotency key", async () => {
  const { net, client } = setup();
  net.last.open();
  const promise = client.call(ACTOR, "add", { title: "milk" });
  const sent = net.last.lastSent("call");
  assert.equal(sent.actor, ACTOR);
  assert.equal(sent.method, "add");
  assert.deepEqual(sent.args, { title: "milk" });
  assert.match(String(sent.idempotencyKey), /^[0-9a-f-]{32,36}$/);
  net.last.deliver({ type: "result", id: sent.id, value: { id: "1" }, version: 1 });
  assert.deepEqual(await promise, { id: "1" });
});

test("a call is re-sent with the same id and idempotency key after a reconnect", async () => {
  const { net, clock, client } = setup();
  net.last.open();
  const promise = client.call(ACTOR, "toggle", { id: "1" });
  const first = net.last.lastSent("call");
  net.last.drop();
  clock.advance(1_000);
  net.last.open();
  const again = net.last.lastSent("call");
  assert.deepEqual(again, first);
  net.last.deliver({ type: "result", id: again.id, value: { done: true }, version: 2 });
  assert.deepEqual(await promise, { done: true });
});

test("a call made while disconnected is sent on open", async () => {
  const { net, client } = setup();
  const promise = client.call(ACTOR, "clear_done");
  assert.equal(net.last.sent.length, 0);
  net.last.open();
  const sent = net.last.lastSent("call");
  assert.equal("args" in sent, false, "no args when none given");
  net.last.deliver({ type: "result", id: sent.id, value: { removed: 0 }, version: 0 });
  assert.deepEqual(await promise, { removed: 0 });
});

test("a call times out with code timeout; a late result is ignored", async () => {
  const { net, clock, client } = setup({ callTimeoutMs: 2_000 });
  net.last.open();
  let settled = false;
  const promise = client.call(ACTOR, "add", { title: "x" }).finally(() => (settled = true));
  clock.advance(1_999);
  await flush();
  assert.equal(settled, false);
  clock.advance(1);
  await assert.rejects(promise, (e: unknown) => e instanceof StatecastError && e.code === "timeout");
  net.last.deliver({ type: "result", id: net.last.lastSent("call").id, value: 1, version: 1 }); // no throw, no effect
});

test("a call queued while the server is down is timed only from when it is sent", async () => {
  const { net, clock, client } = setup({ callTimeoutMs: 2_000, backoff: { baseMs: 5_000, capMs: 5_000, maxAttempts: 10 } });
  net.last.open();
  net.last.drop();
  let settled = false;
  const promise = client.call(ACTOR, "add", { title: "offline" }).finally(() => (settled = true));
  clock.advance(5_000); // longer than the call timeout, still reconnecting
  await flush();
  assert.equal(settled, false, "not timed out while queued");
  net.last.open();
  const sent = net.last.lastSent("call");
  clock.advance(1_999);
  await flush();
  assert.equal(settled, false);
  net.last.deliver({ type: "result", id: sent.id, value: { id: "9" }, version: 9 });
  assert.deepEqual(await promise, { id: "9" });
});

test("the per-call timeout overrides the default", async () => {
  const { net, clock, client } = setup({ callTimeoutMs: 10_000 });
  net.last.open();
  const promise = client.call(ACTOR, "add", {}, { timeoutMs: 50 });
  clock.advance(50);
  await assert.rejects(promise, { code: "timeout" });
});

test("server errors reject with a StatecastError carrying code, message and request id", async () => {
  const { net, client } = setup();
  net.last.open();
  const notFound = client.call(ACTOR, "toggle", { id: "9" });
  net.last.deliver({ type: "error", id: net.last.lastSent("call").id, code: "not_found", message: 'no todo item "9"' });
  await assert.rejects(notFound, (e: unknown) => {
    assert.ok(e instanceof StatecastError);
    assert.deepEqual([e.code, e.message, e.requestId], ["not_found", 'no todo item "9"', undefined]);
    return true;
  });
  const internal = client.call(ACTOR, "add", {});
  net.last.deliver({ type: "error", id: net.last.lastSent("call").id, code: "internal", message: "internal error; request id 4f1c-77" });
  await assert.rejects(internal, { code: "internal", requestId: "4f1c-77" });
});

test("API Gateway's own error reply and id-less errors surface as error events", () => {
  const { net, client } = setup();
  net.last.open();
  const errors: unknown[] = [];
  client.on("error", (e) => errors.push(e));
  net.last.deliver({ message: "Internal server error", connectionId: "c1", requestId: "r-1" });
  net.last.deliver({ type: "error", code: "bad_request", message: "unknown action" });
  assert.deepEqual(
    errors.map((e) => (e instanceof StatecastError ? [e.code, e.requestId] : e)),
    [["internal", "r-1"], ["bad_request", undefined]],
  );
});

test("a refused subscription reaches onError", () => {
  const { net, client } = setup();
  net.last.open();
  const errors: string[] = [];
  client.on("error", () => errors.push("event"));
  client.subscribe("secret/x", () => assert.fail("no state"), { onError: (e) => errors.push(e.code) });
  net.last.deliver({ type: "error", id: net.last.lastSent("subscribe").id, code: "forbidden", message: "no" });
  assert.deepEqual(errors, ["forbidden", "event"]);
});

test("unsubscribing the last listener sends unsubscribe and stops deliveries", () => {
  const { net, client } = setup();
  net.last.open();
  const { seen, unsubscribe } = subscribed(client, net.last, { n: 1 }, 1);
  unsubscribe();
  unsubscribe(); // idempotent
  assert.deepEqual(net.last.sentActions("unsubscribe").map((f) => f.actor), [ACTOR]);
  net.last.deliver({ type: "delta", actor: ACTOR, epoch: 1, from: 1, to: 2, patch: [] });
  assert.equal(seen.length, 1);
  net.last.drop();
});

test("a second listener shares the subscription and gets the current state; other paths are refused", async () => {
  const { net, client } = setup();
  net.last.open();
  subscribed(client, net.last, { n: 1 }, 1);
  const late: unknown[] = [];
  const off = client.subscribe(ACTOR, (s, c) => late.push([s, c.kind]));
  await flush();
  assert.deepEqual(late, [[{ n: 1 }, "snapshot"]]);
  assert.equal(net.last.sentActions("subscribe").length, 1);
  assert.throws(() => client.subscribe(ACTOR, () => {}, { paths: ["/n"] }), { code: "bad_request" });
  off();
  assert.equal(net.last.sentActions("unsubscribe").length, 0, "the first listener still holds it");
});

test("a throwing listener does not stop the others", () => {
  const { net, client } = setup();
  net.last.open();
  const errors: unknown[] = [];
  client.on("error", (e) => errors.push(e));
  client.subscribe(ACTOR, () => {
    throw new Error("boom");
  });
  const { seen } = subscribed(client, net.last, { n: 1 }, 1);
  assert.equal(seen.length, 1);
  assert.equal((errors[0] as Error).message, "boom");
});

test("startWorkflow sends a workflowId (for safe retries) and resolves with the instance", async () => {
  const { net, client } = setup();
  net.last.open();
  const promise = client.startWorkflow("order", { sku: "A-1", quantity: 1, amount: 40 });
  const sent = net.last.lastSent("workflow.start");
  assert.deepEqual(sent.input, { sku: "A-1", quantity: 1, amount: 40 });
  assert.equal(typeof sent.workflowId, "string");
  const value = { workflowId: sent.workflowId, actor: `workflow/${String(sent.workflowId)}`, created: true };
  net.last.deliver({ type: "result", id: sent.id, value, version: 1 });
  assert.deepEqual(await promise, value);
  const status = client.workflowStatus("w1");
  assert.equal(net.last.lastSent("workflow.status").workflowId, "w1");
  net.last.deliver({ type: "result", id: net.last.lastSent("workflow.status").id, value: { status: "running" }, version: 2 });
  assert.deepEqual(await status, { status: "running" });
  const cancel = client.cancelWorkflow("w1");
  net.last.deliver({ type: "error", id: net.last.lastSent("workflow.cancel").id, code: "conflict", message: "already done" });
  await assert.rejects(cancel, { code: "conflict" });
});

test("ping resolves on pong", async () => {
  const { net, client } = setup();
  net.last.open();
  const ping = client.ping();
  net.last.deliver({ type: "pong", id: net.last.lastSent("ping").id });
  await ping;
  assert.equal(net.last.sentActions("ping").length, 1);
});

test("keep-alive pings go out at the interval while open", () => {
  const { net, clock } = setup({ keepAliveMs: 1_000 });
  net.last.open();
  clock.advance(999);
  assert.equal(net.last.sentActions("ping").length, 0);
  clock.advance(1);
  clock.advance(1_000);
  assert.equal(net.last.sentActions("ping").length, 2);
});

test("close(): state closed, pending requests reject, no reconnect", async () => {
  const { net, clock, client, states } = setup();
  net.last.open();
  const call = client.call(ACTOR, "add", {});
  client.close();
  assert.equal(net.last.closed, true);
  assert.deepEqual(states, ["open", "closed"]);
  await assert.rejects(call, { code: "closed" });
  clock.advance(60_000);
  assert.equal(net.sockets.length, 1);
  await assert.rejects(client.call(ACTOR, "add", {}), { code: "closed" });
  assert.throws(() => client.subscribe(ACTOR, () => {}), { code: "closed" });
});

test("a frame over 128 KB is refused locally with too_large", async () => {
  const { net, client } = setup();
  net.last.open();
  await assert.rejects(client.call(ACTOR, "add", { title: "x".repeat(130 * 1024) }), { code: "too_large" });
  assert.equal(net.last.sentActions("call").length, 0);
});

test("the frame hook sees every parsed frame received; send sees frames sent", () => {
  const { net, client } = setup();
  const received: unknown[] = [];
  const sent: unknown[] = [];
  client.on("frame", (f) => received.push(f.type));
  client.on("send", (f) => sent.push(f.action));
  net.last.open();
  client.subscribe(ACTOR, () => {});
  net.last.deliver({ type: "pong", id: 99 });
  net.last.deliver("not json");
  assert.deepEqual(received, ["pong"]);
  assert.deepEqual(sent, ["subscribe"]);
});
