// The client against the real local stack (target/debug/statecast-local, started here):
// replicas converge to the stored state; two clients joined with presence see each other, get
// each other's broadcasts and see a member leave when its client closes; and a SIGKILL +
// restart on the same data file in the middle of a stream of calls loses no acknowledged call
// and applies none twice.
// Run with `npm run test:integration` (node --experimental-websocket on Node 20).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { connect, type BroadcastMessage, type Change, type Client, type Member } from "../../src/index.js";
import { LocalStack, nodeWebSocket, readStored, uniqueActor, waitFor } from "../support/stack.js";

interface Followed<S> {
  state: S | undefined;
  version: number;
  kinds: Change["kind"][];
}

function follow<S>(client: Client, actor: string): Followed<S> {
  const seen: Followed<S> = { state: undefined, version: -1, kinds: [] };
  client.subscribe<S>(actor, (state, change) => {
    seen.state = state;
    seen.version = change.version;
    seen.kinds.push(change.kind);
  });
  return seen;
}

function client(url: string): Client {
  return connect(url, {
    WebSocket: nodeWebSocket(),
    backoff: { baseMs: 50, capMs: 500 },
    callTimeoutMs: 60_000,
  });
}

function waitOpen(c: Client, timeoutMs = 20_000): Promise<unknown> {
  return waitFor("the client to be open", () => c.state === "open", { timeoutMs });
}

describe("local stack", () => {
  const stack = new LocalStack();
  const clients: Client[] = [];
  let ws = "";

  before(async () => {
    ws = (await stack.start()).ws;
  });
  after(async () => {
    for (const c of clients) c.close();
    await stack.stop();
  });

  test("two subscribers and a fresh one converge on the same todo state", async () => {
    const actor = uniqueActor("todo");
    const a = client(ws);
    const b = client(ws);
    clients.push(a, b);
    const seenA = follow<Record<string, unknown>>(a, actor);
    const seenB = follow<Record<string, unknown>>(b, actor);
    await Promise.all([waitOpen(a), waitOpen(b)]);
    await waitFor("both initial states", () => seenA.version >= 0 && seenB.version >= 0);

    // A burst of concurrent calls from A: adds, then toggles, renames, removes, clear_done.
    const ids = (await Promise.all(Array.from({ length: 30 }, (_, i) => a.call(actor, "add", { title: `item ${i}` })))).map(
      (r) => (r as { id: string }).id,
    );
    assert.equal(new Set(ids).size, 30, "every add got its own id");
    await Promise.all([
      ...ids.filter((_, i) => i % 3 === 0).map((id) => a.call(actor, "toggle", { id })),
      ...ids.filter((_, i) => i % 5 === 1).map((id) => a.call(actor, "rename", { id, title: `renamed ${id}` })),
      ...ids.filter((_, i) => i % 7 === 2).map((id) => a.call(actor, "remove", { id })),
    ]);
    await a.call(actor, "clear_done");
    const last = (await a.call(actor, "add", { title: "last" })) as { id: string };

    const stored = await readStored(ws, actor);
    const items = (stored.state as { items: Record<string, { title: string; done: boolean }> }).items;
    assert.ok(last.id in items);
    assert.equal(Object.values(items).filter((item) => item.done).length, 0, "clear_done removed the done items");
    await waitFor(
      "both replicas at the stored version",
      () => seenA.version === stored.version && seenB.version === stored.version,
      { describe: () => `A ${seenA.version}, B ${seenB.version}, stored ${stored.version}` },
    );
    assert.deepEqual(seenA.state, stored.state);
    assert.deepEqual(seenB.state, stored.state);
    // Through frames only (snapshot, deltas): B never called anything.
    assert.ok(seenB.kinds.includes("delta"), `B followed deltas (${seenB.kinds.join(",")})`);
  });

  test("two members see each other, get each other's broadcasts, and see one leave when it closes", async () => {
    const actor = uniqueActor("todo");
    const ann = client(ws);
    const bob = client(ws);
    clients.push(ann, bob);
    const annRoom = ann.subscribe(actor, () => {}, { presence: { name: "ann" } });
    const bobRoom = bob.subscribe(actor, () => {}, { presence: { name: "bob" } });
    const names = (members: readonly Member[]) => members.map((m) => m.presence.name).sort();
    const both = () => JSON.stringify(names(annRoom.members)) === '["ann","bob"]' && JSON.stringify(names(bobRoom.members)) === '["ann","bob"]';
    await waitFor("each to list both members", both, {
      describe: () => `ann sees ${JSON.stringify(annRoom.members)}, bob sees ${JSON.stringify(bobRoom.members)}`,
    });
    const annMember = annRoom.members.find((m) => m.id === annRoom.memberId);
    assert.ok(annMember !== undefined, "ann's own member is listed under its memberId");
    assert.deepEqual(bobRoom.members.find((m) => m.id === annRoom.memberId)?.presence, { name: "ann" });

    // A metadata change reaches the other member with a higher rev.
    const updated = await ann.updatePresence(actor, { name: "ann", typing: true });
    assert.equal(updated.member.rev, 2);
    await waitFor("bob to see ann typing", () => bobRoom.members.find((m) => m.id === annRoom.memberId)?.presence.typing === true);

    // A broadcast: bob gets it once, from ann's connection; ann left herself out.
    const bobGot: BroadcastMessage[] = [];
    const annGot: BroadcastMessage[] = [];
    bobRoom.onBroadcast((m) => bobGot.push(m));
    annRoom.onBroadcast((m) => annGot.push(m));
    const sent = await annRoom.broadcast("cursor", { x: 3, y: 4 }, { excludeSelf: true });
    assert.equal(sent.recipients, 1, "only bob");
    await waitFor("bob to get the broadcast", () => bobGot.length > 0);
    assert.deepEqual(bobGot, [{ actor, event: "cursor", payload: { x: 3, y: 4 }, from: annMember.connection }]);
    // Both sides settle on a round trip after it: nothing else arrives.
    await Promise.all([ann.ping(), bob.ping()]);
    assert.equal(bobGot.length, 1, "exactly once");
    assert.deepEqual(annGot, [], "excludeSelf");

    // Ann closes her socket: bob sees her leave.
    const leaves: string[] = [];
    bobRoom.onMembers((_, change) => {
      if (change.kind === "leave") leaves.push(change.member.id);
    });
    ann.close();
    await waitFor("bob to see ann leave", () => JSON.stringify(names(bobRoom.members)) === '["bob"]', {
      describe: () => `bob sees ${JSON.stringify(bobRoom.members)}`,
    });
    assert.deepEqual(leaves, [annRoom.memberId]);
  });

  test("SIGKILL and restart mid-stream: no acknowledged increment is lost or applied twice", async () => {
    const actor = uniqueActor("counter");
    const c = client(ws);
    clients.push(c);
    const seen = follow<{ value?: number }>(c, actor);
    const states: string[] = [];
    c.on("state", (s) => states.push(s));
    const resubscribes: Record<string, unknown>[] = [];
    const replies: Record<string, unknown>[] = [];
    const callsSent = new Map<unknown, number>();
    c.on("send", (f) => {
      if (f.action === "subscribe" && "since" in f) resubscribes.push(f);
      if (f.action === "call") callsSent.set(f.idempotencyKey, (callsSent.get(f.idempotencyKey) ?? 0) + 1);
    });
    c.on("frame", (f) => {
      if (f.type === "subscribed" && "resumed" in f) replies.push(f);
    });
    await waitOpen(c);

    const total = 160;
    const concurrency = 4;
    const killAt = [40, 100];
    const resolved: number[] = [];
    const failures: unknown[] = [];
    let issued = 0;
    let inFlight = 0;
    const inFlightAtKill: number[] = [];

    const worker = async () => {
      while (issued < total) {
        issued += 1;
        inFlight += 1;
        try {
          resolved.push((await c.call(actor, "increment", { by: 1 })) as number);
        } catch (error) {
          failures.push(error);
        } finally {
          inFlight -= 1;
        }
      }
    };
    const pump = Promise.all(Array.from({ length: concurrency }, worker));

    for (const at of killAt) {
      await waitFor(`${at} acknowledged increments`, () => resolved.length >= at || failures.length > 0, { timeoutMs: 60_000 });
      assert.deepEqual(failures, []);
      inFlightAtKill.push(inFlight);
      await stack.kill();
      await waitFor("the client to notice the kill", () => c.state === "reconnecting", { timeoutMs: 10_000 });
      await stack.start(); // same port, same --data file
      await waitOpen(c);
    }
    await pump;

    assert.deepEqual(failures, [], "every call resolved");
    assert.equal(resolved.length, total);
    assert.equal(new Set(resolved).size, total, "each resolved value is distinct (no increment applied twice)");
    assert.deepEqual(
      [...resolved].sort((x, y) => x - y),
      Array.from({ length: total }, (_, i) => i + 1),
      "the acknowledged values are exactly 1..N",
    );
    assert.ok(
      inFlightAtKill.every((n) => n > 0),
      `calls were in flight at each kill (${inFlightAtKill.join(", ")})`,
    );

    const resent = [...callsSent.values()].filter((n) => n > 1).length;
    console.log(`# ${total} increments, ${killAt.length} kills with ${inFlightAtKill.join(", ")} calls in flight; ${resent} calls re-sent after a restart`);
    assert.ok(resent > 0, "some calls were re-sent with their idempotency key after a restart");

    const stored = await readStored(ws, actor);
    assert.deepEqual(stored.state, { value: total }, "the stored value equals the number of acknowledged increments");
    await waitFor("the client's replica at the stored version", () => seen.version === stored.version, {
      describe: () => `replica ${seen.version} ${JSON.stringify(seen.state)}, stored ${stored.version}`,
    });
    assert.deepEqual(seen.state, stored.state);
    assert.ok(states.filter((s) => s === "reconnecting").length >= killAt.length, `a reconnect per kill (${states.join(" → ")})`);
    // Each reconnect resubscribed with `since` and the server answered it: `resumed: true` with
    // the missed patch, or (a counter's state is smaller than any patch) `resumed: false` and a snapshot.
    assert.ok(resubscribes.length >= killAt.length, `a subscribe with since after each restart (${resubscribes.length})`);
    assert.ok(replies.length >= killAt.length, `answered with resumed true/false (${JSON.stringify(replies)})`);
    assert.equal(stack.starts, 1 + killAt.length);
  });
});
