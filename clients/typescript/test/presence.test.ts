// Tests presence and broadcast: the member list's ordering rule on its own (MemberList), then
// through the client over a fake WebSocket: joining, frames before the reply, out-of-order
// frames, presence updates, re-joining after a reconnect, broadcasts in and out, and errors.

import assert from "node:assert/strict";
import { test } from "node:test";
import { connect, type BroadcastMessage, type ConnectOptions } from "../src/client.js";
import { StatecastError } from "../src/errors.js";
import { MemberList, type Member, type MembersChange } from "../src/presence.js";
import { FakeClock, FakeNetwork, flush } from "./fakes.js";

const ACTOR = "todo/room";

function member(id: string, rev = 1, presence: Record<string, unknown> = { name: id }, joinedAt = 1000): Member {
  return { id, connection: `conn-${id}`, presence, joinedAt, rev };
}
const ids = (members: readonly Member[]) => members.map((m) => `${m.id}@${m.rev}`);

// ---- MemberList on its own ----

test("an update before its join keeps the higher rev; the late join is ignored", () => {
  const list = new MemberList();
  assert.equal(list.apply("update", member("a", 2, { name: "ann 2" })), true);
  assert.equal(list.apply("join", member("a", 1)), false, "an older rev changes nothing");
  assert.equal(list.apply("update", member("a", 2, { name: "other" })), false, "the same rev changes nothing");
  assert.deepEqual(list.get("a")?.presence, { name: "ann 2" });
  assert.equal(list.apply("update", member("a", 3, { name: "ann 3" })), true);
  assert.deepEqual(ids(list.list()), ["a@3"]);
});

test("a leave deletes the member for good: a join or update arriving after it is ignored", () => {
  const list = new MemberList();
  list.apply("join", member("a"));
  assert.equal(list.apply("leave", member("a", 1)), true);
  assert.equal(list.apply("update", member("a", 5)), false);
  assert.equal(list.apply("join", member("a", 1)), false);
  // A leave that overtook its own join: the join never shows.
  assert.equal(list.apply("leave", member("b", 1)), false, "nothing held, nothing changed");
  assert.equal(list.apply("join", member("b", 1)), false);
  assert.deepEqual(list.list(), []);
});

test("a reply's members merge with the frames that came first, by the same rule", () => {
  const list = new MemberList();
  list.apply("join", member("late", 1)); // joined after the server read the room
  list.apply("update", member("a", 3)); // newer than the reply's copy
  list.apply("leave", member("gone", 1)); // left after the read
  assert.equal(list.merge([member("a", 2), member("gone", 1), member("b", 1)]), true);
  assert.deepEqual(ids(list.list()).sort(), ["a@3", "b@1", "late@1"]);
});

test("a fork starts empty but still ignores the ids that left", () => {
  const list = new MemberList();
  list.apply("join", member("a"));
  list.apply("leave", member("b"));
  const next = list.fork();
  assert.deepEqual(next.list(), []);
  assert.equal(next.apply("join", member("b")), false, "b left before the fork");
  next.apply("leave", member("a"));
  assert.equal(list.apply("update", member("a", 2)), false, "a left in the fork: both forget it");
});

test("the list is frozen, oldest join first, and a new array only after a change", () => {
  const list = new MemberList();
  list.apply("join", member("z", 1, {}, 1));
  list.apply("join", member("y", 1, {}, 2));
  list.apply("join", member("x", 1, {}, 2));
  const first = list.list();
  assert.deepEqual(ids(first), ["z@1", "x@1", "y@1"]);
  assert.equal(list.list(), first, "unchanged: the same array");
  assert.ok(Object.isFrozen(first) && Object.isFrozen(first[0]) && Object.isFrozen(first[0]?.presence));
  list.apply("join", member("x", 1));
  assert.equal(list.list(), first, "an ignored frame does not make a new array");
  list.apply("leave", member("z"));
  assert.notEqual(list.list(), first);
});

// ---- through the client ----

function setup(options: Partial<ConnectOptions> = {}) {
  const net = new FakeNetwork();
  const clock = new FakeClock();
  const client = connect("ws://test/local", { WebSocket: net.WebSocket, clock, random: () => 0.5, keepAliveMs: 0, ...options });
  return { net, clock, client };
}

/** Joins ACTOR with `presence` on an open socket; returns the handle and every members change seen. */
function joined(presence: Record<string, unknown> = { name: "me" }) {
  const env = setup();
  env.net.last.open();
  const handle = env.client.subscribe(ACTOR, () => {}, { presence });
  const changes: { members: string[]; change: MembersChange }[] = [];
  handle.onMembers((members, change) => changes.push({ members: ids(members), change }));
  return { ...env, handle, changes };
}

function reply(id: unknown, members: Member[], memberId?: string) {
  return { type: "subscribed", id, actor: ACTOR, epoch: 1, version: 0, state: {}, members, ...(memberId === undefined ? {} : { memberId }) };
}
const presence = (event: string, m: Member) => ({ type: "presence", actor: ACTOR, event, member: m });

test("subscribe with presence joins; the reply's members and memberId land on the handle", () => {
  const { net, handle, changes } = joined({ name: "me", colour: "red" });
  const sub = net.last.lastSent("subscribe");
  assert.deepEqual(sub, { action: "subscribe", id: sub.id, actor: ACTOR, presence: { name: "me", colour: "red" } });
  assert.deepEqual(handle.members, []);
  net.last.deliver(reply(sub.id, [member("me"), member("other")], "me"));
  assert.deepEqual(ids(handle.members), ["me@1", "other@1"]);
  assert.equal(handle.memberId, "me");
  assert.equal(handle.actor, ACTOR);
  assert.deepEqual(changes, [{ members: ["me@1", "other@1"], change: { kind: "sync" } }]);
});

test("members: true follows the list without joining", () => {
  const { net, client } = setup();
  net.last.open();
  const handle = client.subscribe(ACTOR, () => {}, { members: true });
  const sub = net.last.lastSent("subscribe");
  assert.equal(sub.members, true);
  assert.equal("presence" in sub, false);
  net.last.deliver(reply(sub.id, [member("a")]));
  assert.deepEqual(ids(handle.members), ["a@1"]);
  assert.equal(handle.memberId, undefined);
});

test("presence frames before the reply are kept and merged with it", () => {
  const { net, handle, changes } = joined();
  const sub = net.last.lastSent("subscribe");
  net.last.deliver(presence("join", member("early")));
  net.last.deliver(presence("update", member("a", 2, { name: "a2" })));
  net.last.deliver(presence("leave", member("b")));
  net.last.deliver(reply(sub.id, [member("me"), member("a", 1), member("b", 1)], "me"));
  assert.deepEqual(ids(handle.members), ["a@2", "early@1", "me@1"]);
  assert.deepEqual(handle.members.find((m) => m.id === "a")?.presence, { name: "a2" });
  assert.deepEqual(changes.at(-1), { members: ["a@2", "early@1", "me@1"], change: { kind: "sync" } });
});

test("out-of-order join, update and leave converge; listeners hear only real changes", () => {
  const { net, handle, changes } = joined();
  const sub = net.last.lastSent("subscribe");
  net.last.deliver(reply(sub.id, [member("me")], "me"));
  changes.length = 0;
  net.last.deliver(presence("update", member("x", 3, { at: 3 })));
  net.last.deliver(presence("join", member("x", 1)));
  net.last.deliver(presence("update", member("x", 2, { at: 2 })));
  assert.deepEqual(handle.members.find((m) => m.id === "x")?.presence, { at: 3 });
  net.last.deliver(presence("leave", member("y")));
  net.last.deliver(presence("join", member("y")));
  net.last.deliver(presence("leave", member("x", 3)));
  net.last.deliver(presence("update", member("x", 4)));
  assert.deepEqual(ids(handle.members), ["me@1"]);
  assert.deepEqual(
    changes.map((c) => [c.change.kind, c.members]),
    [
      ["update", ["me@1", "x@3"]],
      ["leave", ["me@1"]],
    ],
  );
});

test("updatePresence sends presence.update, resolves with the reply and updates this member", async () => {
  const { net, handle } = joined();
  const sub = net.last.lastSent("subscribe");
  net.last.deliver(reply(sub.id, [member("me")], "me"));
  const updating = handle.updatePresence({ name: "me", typing: true });
  const frame = net.last.lastSent("presence.update");
  assert.deepEqual(frame, { action: "presence.update", id: frame.id, actor: ACTOR, presence: { name: "me", typing: true } });
  const mine = member("me", 2, { name: "me", typing: true });
  net.last.deliver({ type: "sent", id: frame.id, actor: ACTOR, recipients: 3, member: mine });
  assert.deepEqual(await updating, { actor: ACTOR, recipients: 3, member: mine });
  assert.deepEqual(ids(handle.members), ["me@2"]);
});

test("a reconnect re-joins with the last accepted presence and rebuilds the list from the reply", async () => {
  const { net, clock, handle, changes } = joined({ name: "me" });
  const first = net.last;
  first.deliver(reply(first.lastSent("subscribe").id, [member("me"), member("a"), member("b")], "me"));
  const updating = handle.updatePresence({ name: "me", away: true });
  const update = first.lastSent("presence.update");
  first.deliver({ type: "sent", id: update.id, actor: ACTOR, recipients: 2, member: member("me", 2, { name: "me", away: true }) });
  await updating;
  first.drop();
  clock.advance(60_000);
  const second = net.last;
  assert.notEqual(second, first);
  second.open();
  const resub = second.lastSent("subscribe");
  assert.deepEqual(resub.presence, { name: "me", away: true }, "the last presence the server accepted");
  assert.deepEqual(ids(handle.members), ["a@1", "b@1", "me@2"], "the old list stays until the reply");
  second.deliver(presence("join", member("c")));
  second.deliver(reply(resub.id, [member("a"), member("me2", 1, { name: "me", away: true }, 2000)], "me2"));
  assert.deepEqual(ids(handle.members), ["a@1", "c@1", "me2@1"], "b left while we were away; c joined before the reply");
  assert.equal(handle.memberId, "me2");
  assert.deepEqual(changes.at(-1)?.change, { kind: "sync" });
});

test("broadcast sends the frame and resolves with the recipients; incoming ones reach the handle and client", async () => {
  const { net, client, handle } = joined();
  net.last.deliver(reply(net.last.lastSent("subscribe").id, [member("me")], "me"));
  const sending = handle.broadcast("cursor", { x: 1, y: 2 }, { excludeSelf: true });
  const frame = net.last.lastSent("broadcast");
  assert.deepEqual(frame, { action: "broadcast", id: frame.id, actor: ACTOR, event: "cursor", payload: { x: 1, y: 2 }, excludeSelf: true });
  net.last.deliver({ type: "sent", id: frame.id, actor: ACTOR, recipients: 4 });
  assert.deepEqual(await sending, { actor: ACTOR, recipients: 4 });

  const onHandle: BroadcastMessage[] = [];
  const onClient: BroadcastMessage[] = [];
  const stop = handle.onBroadcast((m) => onHandle.push(m));
  client.on("broadcast", (m) => onClient.push(m));
  const incoming = { actor: ACTOR, event: "typing", payload: { on: true }, from: "conn-a" };
  net.last.deliver({ type: "broadcast", ...incoming });
  assert.deepEqual(onHandle, [incoming]);
  assert.deepEqual(onClient, [incoming]);
  stop();
  net.last.deliver({ type: "broadcast", ...incoming, payload: null });
  assert.equal(onHandle.length, 1, "removed");
  assert.equal(onClient.length, 2);
});

test("rate_limited rejects with retryAfterMs; forbidden and too_large keep their codes", async () => {
  const { net, client } = joined();
  const limited = client.broadcast(ACTOR, "cursor", {});
  net.last.deliver({ type: "error", id: net.last.lastSent("broadcast").id, code: "rate_limited", message: "slow down", retryAfterMs: 250 });
  await assert.rejects(limited, (e: unknown) => e instanceof StatecastError && e.code === "rate_limited" && e.retryAfterMs === 250);
  const forbidden = client.broadcast("todo/elsewhere", "cursor");
  net.last.deliver({ type: "error", id: net.last.lastSent("broadcast").id, code: "forbidden", message: "not subscribed" });
  await assert.rejects(forbidden, (e: unknown) => e instanceof StatecastError && e.code === "forbidden" && e.retryAfterMs === undefined);
  const big = client.updatePresence(ACTOR, { blob: "x".repeat(2000) });
  net.last.deliver({ type: "error", id: net.last.lastSent("presence.update").id, code: "too_large", message: "1 KB" });
  await assert.rejects(big, (e: unknown) => e instanceof StatecastError && e.code === "too_large");
});

test("broadcasts and presence updates are never queued or re-sent: disconnected", async () => {
  const { net, clock, client } = setup();
  await assert.rejects(client.broadcast(ACTOR, "cursor"), (e: unknown) => e instanceof StatecastError && e.code === "disconnected");
  net.last.open();
  client.subscribe(ACTOR, () => {}, { presence: { name: "me" } });
  const inFlight = client.broadcast(ACTOR, "cursor", { x: 1 });
  const updating = client.updatePresence(ACTOR, { name: "new" });
  net.last.drop();
  await assert.rejects(inFlight, (e: unknown) => e instanceof StatecastError && e.code === "disconnected");
  await assert.rejects(updating, (e: unknown) => e instanceof StatecastError && e.code === "disconnected");
  clock.advance(60_000);
  net.last.open();
  assert.deepEqual(net.last.sentActions("broadcast"), []);
  assert.deepEqual(net.last.sentActions("presence.update"), []);
  assert.deepEqual(net.last.lastSent("subscribe").presence, { name: "me" }, "the refused update is not the re-join's presence");
});

test("presence is set on the first subscribe only; removing a handle removes its listeners", async () => {
  const { net, client, handle } = joined();
  net.last.deliver(reply(net.last.lastSent("subscribe").id, [member("me")], "me"));
  assert.throws(() => client.subscribe(ACTOR, () => {}, { presence: { name: "again" } }), (e: unknown) => e instanceof StatecastError && e.code === "bad_request");
  const second = client.subscribe(ACTOR, () => {}, { members: true });
  assert.deepEqual(ids(second.members), ["me@1"], "a later handle sees the shared list");
  const heard: string[] = [];
  second.onMembers((_, change) => heard.push(change.kind));
  second.onBroadcast((m) => heard.push(m.event));
  second();
  net.last.deliver(presence("join", member("x")));
  net.last.deliver({ type: "broadcast", actor: ACTOR, event: "e", payload: 1, from: "c" });
  await flush();
  assert.deepEqual(heard, []);
  assert.equal(net.last.sentActions("unsubscribe").length, 0, "the first handle still holds the subscription");
  handle.unsubscribe();
  assert.equal(net.last.sentActions("unsubscribe").length, 1);
});

test("malformed presence, broadcast and sent frames are ignored", () => {
  const { net, handle, changes } = joined();
  net.last.deliver(reply(net.last.lastSent("subscribe").id, [], "me"));
  net.last.deliver({ type: "presence", actor: ACTOR, event: "join", member: { id: "a", rev: 1 } });
  net.last.deliver({ type: "presence", actor: ACTOR, event: "wave", member: member("a") });
  net.last.deliver({ type: "presence", actor: ACTOR, event: "join", member: { ...member("a"), rev: 0 } });
  assert.deepEqual(handle.members, []);
  assert.equal(changes.length, 1, "only the reply's sync");
  // A reply with a malformed member list is not a reply: the subscription still awaits one.
  const { net: net2, handle: handle2 } = joined();
  net2.last.deliver(reply(net2.last.lastSent("subscribe").id, [{ id: "a" } as unknown as Member]));
  assert.equal(handle2.memberId, undefined);
  net2.last.deliver(reply(net2.last.lastSent("subscribe").id, [member("a")], "a"));
  assert.equal(handle2.memberId, "a");
});
